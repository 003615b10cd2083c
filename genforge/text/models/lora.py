"""LoRA (Hu et al. 2021): low-rank adapters over frozen linear layers, in a few lines of PyTorch.

``W x`` becomes ``W x + (alpha / rank) * B A x`` with ``A`` (rank x in) drawn like a Linear weight and
``B`` (out x rank) zero, so an adapted model starts exactly where its base was. Only ``A`` and ``B``
train; :func:`add_lora` returns them as one ``nn.ModuleDict`` (what a LoRA run saves) and
:func:`merge_lora` folds them back into plain weights. Why our own module and not ``peft``:
see ARCHITECTURE.md.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from genforge.core.errors import ConfigError


def parse_lora(text: str | dict | None) -> dict[str, Any] | None:
    """``"rank=8,alpha=16"`` (or a dict) -> ``{"rank": 8, "alpha": 16.0}``; alpha defaults to the rank."""
    if text is None:
        return None
    items = dict(text) if isinstance(text, dict) else {}
    if not isinstance(text, dict):
        for part in str(text).split(","):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in ("rank", "alpha"):
                raise ConfigError(f"--lora expects rank=R[,alpha=A] (e.g. --lora rank=8), got '{text}'")
            items[key.strip()] = value.strip()
    try:
        rank = int(items["rank"])
        alpha = float(items.get("alpha", rank))
    except (KeyError, ValueError):
        raise ConfigError(f"--lora expects rank=R[,alpha=A] with a whole rank (e.g. --lora rank=8), got '{text}'") from None
    if rank < 1 or alpha <= 0:
        raise ConfigError(f"--lora needs rank >= 1 and alpha > 0, got rank={rank}, alpha={alpha:g}")
    return {"rank": rank, "alpha": alpha}


class LoRAAdapter(nn.Module):
    """The trainable pair ``A``, ``B`` of one adapted layer."""

    def __init__(self, in_features: int, out_features: int, rank: int):
        super().__init__()
        self.lora_a = nn.Parameter(torch.empty(rank, in_features))
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))  # as nn.Linear initialises its weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B A x`` (unscaled); a module call of its own so that DP-SGD can take per-example gradients of it."""
        return F.linear(F.linear(x, self.lora_a), self.lora_b)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a :class:`LoRAAdapter`."""

    def __init__(self, base: nn.Linear, adapter: LoRAAdapter, scale: float):
        super().__init__()
        self.base, self.adapter, self.scale = base, adapter, scale
        for p in base.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.adapter(x) * self.scale


def add_lora(model: nn.Module, targets: tuple[str, ...], rank: int, alpha: float) -> nn.ModuleDict:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose name ends with one of ``targets`` in a
    :class:`LoRALinear`; returns the adapters by layer name (dots as ``__``)."""
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = nn.ModuleDict()
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.split(".")[-1] in targets:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            adapter = LoRAAdapter(module.in_features, module.out_features, rank)
            adapter.to(module.weight.device)
            setattr(parent, attr, LoRALinear(module, adapter, alpha / rank))
            adapters[name.replace(".", "__")] = adapter
    if not adapters:
        raise ConfigError(f"this model has no layers named {', '.join(targets)} to adapt with LoRA")
    return adapters

