"""The denoising network of the diffusion families: a small UNet (Ronneberger et al. 2015, as in DDPM).

``UNet(x_t, t, y) -> output shaped like x_t``. Plain PyTorch, sized for 8x8 to 64x64 images:

* a sinusoidal **time embedding** (``t`` is a float: a DDPM timestep 0..T-1, or flow time x 999),
  through a two-layer MLP, added in every residual block;
* a **class embedding** with one extra row, the *null class* (index ``num_classes``), which training
  feeds in place of the label now and then so the same network is also unconditional — what
  classifier-free guidance needs;
* **residual blocks** (GroupNorm, SiLU, 3x3 conv; the embedding added between the two convs),
  ``res_blocks`` per resolution; the channels are ``width * channel_mult[level]``;
* **self-attention** at the lowest ``attention_levels`` resolutions and in the middle;
* stride-2 convolutions down, nearest-neighbour upsampling + conv up, skip connections between.

The image size must halve ``len(channel_mult) - 1`` times down to at least 2x2 (:func:`check_unet_size`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genforge.core.errors import ConfigError


def groups_for(channels: int) -> int:
    """GroupNorm groups: 8 when they divide the channels (the usual 32 is too many for narrow nets)."""
    return math.gcd(8, channels)


def check_unet_size(image_shape, levels: int) -> None:
    """Refuse an image size the UNet cannot halve ``levels - 1`` times (down to at least 2x2)."""
    h = int(image_shape[-1])
    k = 2 ** (levels - 1)
    if h % k or h // k < 2:
        raise ConfigError(
            f"image size {h}x{h} cannot be halved {levels - 1} times by the UNet (channel_mult has {levels} levels); "
            f"sizes that work are multiples of {k} from {max(2 * k, 8)} (e.g. {', '.join(str(s) for s in _examples(k))}): "
            f"pass --size N, or --set channel_mult=[...] with fewer levels")


def _examples(k: int) -> list[int]:
    return [s for s in (8, 16, 28, 32, 64) if s % k == 0 and s // k >= 2] or [2 * k]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(B,) -> (B, dim)`` of (possibly fractional) timesteps, as in DDPM."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class Pointwise(nn.Module):
    """A 1x1 convolution computed as one matrix product per image.

    ``nn.Conv2d(kernel_size=1)`` runs as a single GEMM over all ``B * H * W`` pixels, whose blocking (and
    so its float rounding) depends on the batch size; a per-image product does not, which keeps samples
    identical for any sampling batch size (the rule of ``images.models.base.SAMPLE_ALIGN``). It is also
    faster on a CPU at these sizes.
    """

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        conv = nn.Conv2d(ch_in, ch_out, 1)  # the usual initialisation
        self.weight = nn.Parameter(conv.weight.detach().view(ch_out, ch_in).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        return (self.weight @ x.flatten(2) + self.bias[:, None]).view(b, -1, h, w)


class ResBlock(nn.Module):
    """``x + conv(act(norm(conv(act(norm(x))) + emb))))``, with a 1x1 conv on the skip when channels change."""

    def __init__(self, ch_in: int, ch_out: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups_for(ch_in), ch_in)
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, ch_out)
        self.norm2 = nn.GroupNorm(groups_for(ch_out), ch_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = Pointwise(ch_in, ch_out) if ch_in != ch_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, ch: int, heads: int = 1):
        super().__init__()
        self.heads = heads if ch % heads == 0 else 1
        self.norm = nn.GroupNorm(groups_for(ch), ch)
        self.qkv = Pointwise(ch, 3 * ch)
        self.proj = Pointwise(ch, ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # (b, heads, hw, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """Predicts noise / velocity for images ``(B, C, H, W)`` at times ``t`` (B,), optionally for classes ``y``.

    ``num_classes > 0`` adds a class embedding of ``num_classes + 1`` rows; ``y = None`` (or the null
    index ``num_classes``) is the unconditional model.
    """

    def __init__(self, image_shape, width: int = 32, channel_mult=(1, 2, 2), res_blocks: int = 1,
                 attention_levels: int = 1, heads: int = 1, num_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        c = int(image_shape[0])
        check_unet_size(image_shape, len(channel_mult))
        self.width, self.num_classes = width, num_classes
        emb = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.class_emb = nn.Embedding(num_classes + 1, emb) if num_classes else None
        self.conv_in = nn.Conv2d(c, width, 3, padding=1)
        chans = [width * m for m in channel_mult]
        levels = len(chans)
        attn_from = levels - attention_levels
        self.down = nn.ModuleList()
        skips, ch = [width], width
        for i, ch_out in enumerate(chans):
            for _ in range(res_blocks):
                self.down.append(_Stage(ResBlock(ch, ch_out, emb, dropout), Attention(ch_out, heads) if i >= attn_from else None))
                ch = ch_out
                skips.append(ch)
            if i < levels - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb, dropout), Attention(ch, heads), ResBlock(ch, ch, emb, dropout)])
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            for _ in range(res_blocks + 1):
                self.up.append(_Stage(ResBlock(ch + skips.pop(), chans[i], emb, dropout),
                                      Attention(chans[i], heads) if i >= attn_from else None))
                ch = chans[i]
            if i > 0:
                self.up.append(_Upsample(ch))
        self.norm_out = nn.GroupNorm(groups_for(ch), ch)
        self.conv_out = nn.Conv2d(ch, c, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The time (and class) embedding ``(B, 4 * width)``; ``y = None`` means the null class."""
        e = self.time_mlp(timestep_embedding(t, self.width))
        if self.class_emb is not None:
            if y is None:
                y = torch.full((len(t),), self.num_classes, device=t.device, dtype=torch.long)
            e = e + self.class_emb(y)
        return e

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, _Stage) else layer(h)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb)), emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], dim=1), emb) if isinstance(layer, _Stage) else layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Stage(nn.Module):
    """A residual block, then (at low resolutions) self-attention."""

    def __init__(self, block: ResBlock, attn: Attention | None):
        super().__init__()
        self.block, self.attn = block, attn

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.block(x, emb)
        return self.attn(h) if self.attn is not None else h


class _Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
