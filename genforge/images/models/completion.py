"""Image completion: fill the masked pixels of given images from a trained image model.

``mask`` is 1 where a pixel is to be filled and 0 where it is given (the shape of the images). Every family
fills in its own way, and :meth:`~genforge.images.models.base.ImageGenerator.complete` puts the given pixels
back exactly afterwards:

* one-pass generators (GANs, VAEs): :func:`latent_fill` searches the latent that best explains the visible
  pixels (Adam on ``sum(visible * (decode(z) - x)^2) + prior * |z|^2 / 2``, from the encoder's guess for
  VAEs, from noise otherwise), then decodes it; a class-conditional model without labels screens every
  class with a short search, carries on only with the :data:`KEEP` classes that fit best, and keeps the best
  fit of those;
* ``ddpm``: RePaint, ``flow``: the visible pixels on their straight path (:mod:`genforge.core.diffusion.inpaint`),
  the diffusion families' own ``fill``.
"""

from __future__ import annotations

import torch

FILL_STEPS = 200     # Adam steps of the latent search
FILL_LR = 0.05
PRIOR = 1.0          # weight of the Gaussian prior on the latent (per latent, against per-pixel error)
SCREEN_STEPS = 25    # steps of the short search that screens every class of a conditional model ...
KEEP = 2             # ... and the classes per image the search then carries on with


def latent_fill(model, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor | None, gen: torch.Generator,
                steps: int = FILL_STEPS) -> torch.Tensor:
    """The decoded latent that fits the visible pixels of ``x`` best (see the module docstring)."""
    if model.conditional and y is None:
        return _every_class(model, x, mask, gen, steps)
    return _search(model, x, mask, y, gen, steps)[0]


def _every_class(model, x, mask, gen, steps):
    """A class-conditional model without labels: every class screened by a short search, the :data:`KEEP` best
    per image searched on from where the screen stopped, the best fit of those kept (about 4x fewer decoder
    passes than searching every class all the way, on MNIST's 10)."""
    n, k = len(x), model.num_classes
    screen, keep = min(SCREEN_STEPS, steps), min(KEEP, k)
    xs, ms = x.repeat(k, 1, 1, 1), mask.repeat(k, 1, 1, 1)
    ys = torch.arange(k).repeat_interleave(n).to(x.device)
    out, err, z = _search(model, xs, ms, ys, gen, screen)
    if steps > screen:
        top = err.view(k, n).topk(keep, dim=0, largest=False).indices  # (keep, n): the classes that fit best
        pick = (top * n + torch.arange(n, device=top.device)).flatten()
        out, err, _ = _search(model, xs[pick], ms[pick], ys[pick], gen, steps - screen, z0=z[pick])
        k = keep
    best = err.view(k, n).argmin(0)
    return out.view(k, n, *x.shape[1:])[best, torch.arange(n)]


def _search(model, x, mask, y, gen, steps, z0=None):
    """Adam on the latent for ``steps``, from ``z0`` (or the model's initial latent): the decoded images, their
    error on the visible pixels and the latents."""
    z = (model.initial_latent(x, mask, y, gen) if z0 is None else z0).detach().clone().requires_grad_(True)
    visible = 1 - mask
    params = [p for net in model.nets.values() for p in net.parameters()]
    was = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    opt = torch.optim.Adam([z], lr=FILL_LR)
    try:
        with torch.enable_grad():
            for _ in range(steps):
                err = ((model.decode(z, y) - x) ** 2 * visible).flatten(1).sum(1)
                loss = (err + PRIOR * 0.5 * (z ** 2).flatten(1).sum(1)).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        for p, w in zip(params, was):
            p.requires_grad_(w)
    with torch.no_grad():
        out = model.decode(z, y)
        return out, ((out - x) ** 2 * visible).flatten(1).sum(1), z.detach()
