"""Regularisers shared by the adversarial families of every modality."""

from __future__ import annotations

from typing import Callable

import torch

from genforge.core.train import distributed as dist


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     group: int = 1) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``(||grad critic(x_hat)|| - 1)^2`` on random interpolates.

    ``critic`` maps a batch shaped like ``real`` to one score per row (bind any labels or
    conditions in a lambda). ``group`` > 1 is PacGAN's: consecutive ``group`` rows share one
    mixing weight and the norm is taken over each group's joint gradient, as CTGAN does.
    One uniform draw per group from the global random state (``len(real) // group`` numbers; drawn for
    the global batch when several processes train, see :mod:`genforge.core.train.distributed`).
    """
    groups = real.shape[0] // group
    ones = (1,) * (real.dim() - 1)
    a = dist.rand(groups, *ones, like=real)
    if group > 1:
        a = a.unsqueeze(1).expand(groups, group, *ones).reshape(-1, *ones)
    x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.reshape(groups, -1).norm(dim=1) - 1) ** 2).mean()
