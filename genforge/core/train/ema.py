"""Exponential moving average of a network's weights (used for sampling from GANs)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Keeps ``shadow = decay * shadow + (1 - decay) * model`` after every :meth:`update`.

    Buffers (BatchNorm running statistics) are copied, not averaged. During the first
    steps the effective decay is ``min(decay, (1 + n) / (10 + n))`` so the average is not
    dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        super().__init__()
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self._src = [model]  # not a submodule: the source is saved by its owner

    @torch.no_grad()
    def update(self) -> None:
        model = self._src[0]
        n = int(self.num_updates)
        d = min(self.decay, (1 + n) / (10 + n))
        ema_p = list(self.shadow.parameters())
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - d)
        for b_ema, b in zip(self.shadow.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.num_updates += 1

    def forward(self, *args, **kwargs):
        return self.shadow(*args, **kwargs)
