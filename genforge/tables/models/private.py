"""What differential privacy means for the table models: the private networks and what preprocessing saw.

A table model's schema and encoding (category lists, value ranges, the Gaussian modes of numbers) are fitted
on the data before training. DP-SGD covers the networks' training only; the run records whether the
encoding came from the user's metadata or from the data itself, outside the guarantee, and every report
says so.
"""

from __future__ import annotations

import torch

from genforge.core.train.private import PrivateParts

FROM_DATA = ("the schema and encoding (category lists and frequencies, value ranges, Gaussian modes, category pairs "
             "seen together) were fitted on the training rows without noise: NOT covered by the guarantee")
CTGAN_WEIGHT_CLIP = 0.01  # WGAN's weight clipping (Arjovsky et al. 2017), as DP-WGAN (Xie et al. 2018)
FREQUENCY_SHARE = 0.1     # of epsilon, for CTGAN's noisy category frequencies


def table_parts(model, optimizers: dict[str, tuple[str, ...]], **options) -> PrivateParts:
    """:class:`PrivateParts` for a neural table model, with its preprocessing stated."""
    return PrivateParts(optimizers, unit="row", preprocessing=FROM_DATA, **options)


def ctgan_parts(model) -> PrivateParts:
    """CTGAN under DP-SGD: the discriminator is private (per pac group of rows, each row in one group); its
    gradient penalty cannot be clipped per example, so the Lipschitz constraint is WGAN's weight clipping;
    training-by-sampling (which picks rows by their categories' frequencies) becomes uniform rows conditioned on
    their own categories; the category frequencies the generator samples with are released once with noise."""
    blocks = len(model.transformer.discrete_blocks())
    releases = (("category frequencies", FREQUENCY_SHARE, blocks ** 0.5),) if blocks else ()
    return table_parts(model, {"D": ("D",)}, per_step=lambda batch: batch // model.config.pac,
                       weight_clip=CTGAN_WEIGHT_CLIP, releases=releases,
                       what="the discriminator (the generator sees rows only through it); WGAN with weight clipping "
                            "instead of the gradient penalty; uniform rows instead of training-by-sampling")


def private_batch(model, data, batch_size: int, gen: torch.Generator):
    """A CTGAN batch under DP: ``batch_size`` distinct rows drawn uniformly, each conditioned on its own category
    in one random column (and, for half the rows, on its others with probability ``p_extra``)."""
    cond = model.cond
    if not hasattr(cond, "freq"):
        noisy_frequencies(model, data)
    rows = torch.randperm(len(data.x), generator=gen)[:batch_size]
    x = data.x[rows]
    if not cond.blocks:
        return x, torch.zeros(len(x), 0)
    nb = len(cond.blocks)
    pick = torch.randint(nb, (len(x),), generator=gen)
    joint = torch.rand(len(x), 1, generator=gen) < 0.5
    mask = (torch.rand(len(x), nb, generator=gen) < model.config.p_extra) & joint
    mask[torch.arange(len(x)), pick] = True
    return x, cond.vectors(cond.cats_of(x), mask)


def noisy_frequencies(model, data) -> None:
    """Category frequencies per conditional block with the plan's Gaussian noise on the counts (drawn once, from
    the trainer's seeded generator; a resumed run finds them in the generator's checkpointed buffer)."""
    g = model.nets["G"]
    if g.cond_freq.abs().sum() > 0:  # restored from a checkpoint: never drawn (or paid for) twice
        model.cond.set_freq(g.cond_freq.detach().cpu())
        return
    release = next(r for r in model.dp_plan["releases"] if r["what"] == "category frequencies")
    cats = model.cond.cats_of(data.x)
    counts = torch.zeros_like(g.cond_freq.cpu())
    for b, (_, s, e, _) in enumerate(model.cond.blocks):
        k = e - s
        noisy = torch.bincount(cats[:, b], minlength=k).float() + \
            torch.randn(k) * release["noise_multiplier"] * release["sensitivity"]
        counts[b, :k] = noisy.clamp(min=0) + 1e-3  # every category stays possible
    freq = counts / counts.sum(1, keepdim=True)
    model.cond.set_freq(freq)
    g.cond_freq.copy_(freq)
