"""Differential privacy for language models: DP-SGD on the LoRA adapters of a fine-tuned gpt.

Only the adapters train (the base is frozen and came from another corpus), so only their gradients see this
corpus; Opacus takes their per-example gradients through :func:`_adapter_grad_sample`. The example is one
training window of ``block_size`` tokens; windows overlap, so a passage of text is protected as a group of
up to ``block_size`` examples, and the run says so. Under DP the run keeps its last weights instead of the
ones with the best validation loss (choosing by a loss on this corpus would look at it outside the guarantee).
"""

from __future__ import annotations

import torch

from genforge.core.train.private import PrivateParts, refuse
from genforge.text.models.lora import LoRAAdapter

_REGISTERED = False


def _adapter_grad_sample(layer: LoRAAdapter, activations, backprops: torch.Tensor) -> dict:
    """Per-example gradients of ``B A x`` summed over the window's positions: ``x`` ``(n, T, in)``, ``g`` ``(n, T, out)``."""
    x = activations[0]
    g = backprops
    h = torch.einsum("nti,ri->ntr", x, layer.lora_a)
    return {layer.lora_b: torch.einsum("nto,ntr->nor", g, h),
            layer.lora_a: torch.einsum("ntr,nti->nri", torch.einsum("nto,or->ntr", g, layer.lora_b), x)}


def _register() -> None:
    global _REGISTERED
    if not _REGISTERED:
        from opacus.grad_sample import register_grad_sampler

        register_grad_sampler(LoRAAdapter)(_adapter_grad_sample)
        _REGISTERED = True


def lora_parts(model) -> PrivateParts:
    """What DP-SGD protects in a LoRA fine-tuning run (refused for full fine-tuning or training from scratch)."""
    if not model.config.lora_rank:
        raise refuse(model.name, "DP-SGD fine-tunes LoRA adapters only; use --init RUN --lora rank=R")
    _register()
    block = model.config.block_size
    return PrivateParts({"adamw": (model.adapters,)}, unit="window",
                        what="the LoRA adapters (the base network is frozen and was trained on another corpus)",
                        preprocessing=f"none: the base run's tokenizer; the validation loss of the held-out text is "
                                      f"logged outside the guarantee, and the last weights are kept (not the best); "
                                      f"an example is one {block}-token window, so a passage is protected as a group "
                                      f"of up to {block} examples")
