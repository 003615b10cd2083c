"""Image completion: fill the masked pixels of given images from a trained image model.

``mask`` is 1 where a pixel is to be filled and 0 where it is given (the shape of the images). Every family
fills in its own way, and :meth:`~genforge.images.models.base.ImageGenerator.complete` puts the given pixels
back exactly afterwards:

* one-pass generators (GANs, VAEs): :func:`latent_fill` searches the latent that best explains the visible
  pixels (Adam on ``sum(visible * (decode(z) - x)^2) + prior * |z|^2 / 2``, from the encoder's guess for
  VAEs, from noise otherwise), then decodes it; a class-conditional model without labels tries every
  class and keeps the best fit;
* ``ddpm``: RePaint, ``flow``: the visible pixels on their straight path (:mod:`genforge.core.diffusion.inpaint`),
  the diffusion families' own ``fill``.
"""

from __future__ import annotations

import torch

FILL_STEPS = 200     # Adam steps of the latent search
FILL_LR = 0.05
PRIOR = 1.0          # weight of the Gaussian prior on the latent (per latent, against per-pixel error)


def latent_fill(model, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor | None, gen: torch.Generator,
                steps: int = FILL_STEPS) -> torch.Tensor:
    """The decoded latent that fits the visible pixels of ``x`` best (see the module docstring)."""
    if model.conditional and y is None:  # try every class, keep the best fit per image
        k = model.num_classes
        xs, ms = x.repeat(k, 1, 1, 1), mask.repeat(k, 1, 1, 1)
        ys = torch.arange(k).repeat_interleave(len(x)).to(x.device)
        out, err = _search(model, xs, ms, ys, gen, steps)
        best = err.view(k, len(x)).argmin(0)
        return out.view(k, len(x), *x.shape[1:])[best, torch.arange(len(x))]
    return _search(model, x, mask, y, gen, steps)[0]


def _search(model, x, mask, y, gen, steps):
    z = model.initial_latent(x, mask, y, gen).detach().clone().requires_grad_(True)
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
        return out, ((out - x) ** 2 * visible).flatten(1).sum(1)
