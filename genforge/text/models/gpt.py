"""``gpt``: a decoder-only transformer in plain PyTorch, nanoGPT style.

Token and position embeddings, ``n_layer`` pre-norm blocks (LayerNorm -> causal self-attention ->
residual, LayerNorm -> 4x MLP with GELU -> residual), a final LayerNorm and a head tied to the
token embedding. Attention is one fused q/k/v projection and ``F.scaled_dot_product_attention``
(causal). Weights start as in GPT-2: normal(0, 0.02), residual projections scaled by
1/sqrt(2 n_layer). Generation keeps a preallocated KV cache (:class:`KVCache`), so a new token
costs one position, not the whole text.

Presets (:data:`PRESETS`) fill in the size; any of it can be set on top (``--set n_layer=6``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional as F

from genforge.core.registry import register
from genforge.text.models.base import TextConfig, TextGenerator

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64, "batch_size": 16, "dropout": 0.0},
    "small": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128, "batch_size": 16, "dropout": 0.0},
    "base": {"n_layer": 6, "n_head": 6, "n_embd": 192, "block_size": 256, "batch_size": 16, "dropout": 0.1},
}
#: The preset a plain ``--model gpt`` trains: provisional, the one expected to reach the lowest validation
#: loss in 10 minutes on 2 CPU cores (see benchmarks/text_vs_reference.py --presets).
DEFAULT_PRESET = "small"


class GPTConfig(TextConfig):
    preset: Literal["tiny", "small", "base"] = Field(DEFAULT_PRESET, description="size: tiny, small or base")
    n_layer: int = Field(4, ge=1)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(128, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: bool = Field(True, description="biases in the linear layers and LayerNorms")
    tie_weights: bool = Field(True, description="the output head shares the token embedding")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, values: Any) -> Any:
        if isinstance(values, dict):
            preset = values.get("preset", DEFAULT_PRESET)
            values = {**PRESETS.get(preset, {}), **values}
        return values

    @model_validator(mode="after")
    def _heads_divide(self) -> "GPTConfig":
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        return self


class KVCache:
    """Keys and values of every layer for up to ``size`` positions, preallocated; ``length`` are filled."""

    def __init__(self, n_layer: int, batch: int, n_head: int, size: int, head_dim: int, like: torch.Tensor):
        shape = (n_layer, batch, n_head, size, head_dim)
        self.k = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.v = torch.zeros(shape, dtype=like.dtype, device=like.device)
        self.length = 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new positions of ``layer``; returns its keys and values so far."""
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        # a new token attends to everything before it; a window read from the start needs the causal mask
        causal = T > 1
        if causal and k.size(2) != T:
            raise RuntimeError("a KV cache takes a whole window from empty, then one token at a time")
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=causal)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """ids (B, T) -> logits (B, T, vocab); with a ``cache`` the ids continue the cached positions."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int, dropout: float,
                 bias: bool = True, tie_weights: bool = True):
        super().__init__()
        self.block_size, self.n_head = block_size, n_head
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = None if tie_weights else nn.Linear(n_embd, vocab_size, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self, batch: int) -> KVCache:
        """An empty cache for ``batch`` rows of up to ``block_size`` positions."""
        c = self.wte.embedding_dim
        return KVCache(len(self.blocks), batch, self.n_head, self.block_size, c // self.n_head, self.wte.weight)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        start = cache.length if cache is not None else 0
        pos = torch.arange(start, start + idx.size(1), device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.length += idx.size(1)
        x = self.ln_f(x)
        return self.lm_head(x) if self.lm_head is not None else F.linear(x, self.wte.weight)


class GPTDecoder:
    """The sampling loop's view of a :class:`GPT`: a KV cache per window."""

    def __init__(self, lm: GPT):
        self.lm, self.context = lm, lm.block_size

    def start(self, ids: torch.Tensor):
        cache = self.lm.new_cache(ids.size(0))
        return self.lm(ids, cache)[:, -1], cache

    def step(self, ids: torch.Tensor, cache: KVCache):
        return self.lm(ids, cache)[:, -1], cache


@register
class GPTModel(TextGenerator):
    name = "gpt"
    description = "decoder-only transformer (nanoGPT style; presets tiny/small/base), KV-cache sampling, LoRA"
    Config = GPTConfig
    lora_targets: ClassVar[tuple[str, ...]] = ("qkv", "proj", "fc")  # attention and MLP projections
    supports_dp = True  # LoRA fine-tuning only (text.models.private)

    def private_parts(self):
        """DP-SGD on the LoRA adapters of a fine-tuning run (:func:`genforge.text.models.private.lora_parts`)."""
        from genforge.text.models.private import lora_parts

        return lora_parts(self)
    arch_keys: ClassVar[tuple[str, ...]] = ("preset", "block_size", "n_layer", "n_head", "n_embd", "bias",
                                            "tie_weights")

    @property
    def context(self) -> int:
        return self.config.block_size

    def make_lm(self, vocab_size: int) -> GPT:
        c = self.config
        return GPT(vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd, c.dropout, c.bias, c.tie_weights)

    def decoder(self, lm: GPT) -> GPTDecoder:
        return GPTDecoder(lm)
