"""The one optimizer helper every model family uses."""

from __future__ import annotations

import torch


def adam(params, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused CPU/GPU kernel where this torch build has it (same maths, fewer passes)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - older builds
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
