"""The optimizer helpers every model family uses: Adam, and AdamW for language models."""

from __future__ import annotations

import torch


def _fused(cls, params, **options):
    """``cls(params, fused=True, ...)`` where this torch build has the fused CPU/GPU kernel (same maths)."""
    params = list(params)
    try:
        return cls(params, fused=True, **options)
    except (RuntimeError, TypeError):  # pragma: no cover - older builds
        return cls(params, **options)


def adam(params, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused CPU/GPU kernel where this torch build has it (same maths, fewer passes)."""
    return _fused(torch.optim.Adam, params, lr=lr, betas=betas, weight_decay=weight_decay)


def adamw(param_groups, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW (decoupled weight decay), fused where available; ``param_groups`` may set their own decay."""
    return _fused(torch.optim.AdamW, param_groups, lr=lr, betas=betas, weight_decay=weight_decay)
