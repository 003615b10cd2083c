"""Convolutional building blocks shared by the image model families.

Plain PyTorch in the nanoGPT spirit: a decoder that grows a vector into an image by
stride-2 transposed convolutions, and an encoder that shrinks an image into a vector
by stride-2 convolutions. Both adapt to 8x8, 28x28, 32x32 and 64x64 inputs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

from genforge.core.errors import ConfigError


def num_resamples(size: int) -> int:
    """How many x2 up/down-samplings between ``size`` and a base resolution >= 4.

    8 -> 1 (4x4 base), 28 -> 2 (7x7), 32 -> 3 (4x4), 64 -> 4 (4x4).
    """
    k = 0
    while size % (2 ** (k + 1)) == 0 and size // 2 ** (k + 1) >= 4:
        k += 1
    return k


def check_image_shape(shape) -> tuple[int, int, int]:
    """Validate a ``(C, H, W)`` image shape for the conv models."""
    c, h, w = (int(v) for v in shape)
    if c not in (1, 3):
        raise ConfigError(f"image_shape {tuple(shape)}: 1 (grayscale) or 3 (RGB) channels are supported")
    if h != w or h < 8:
        raise ConfigError(f"image_shape {tuple(shape)}: square images of at least 8x8 are supported; "
                          f"use --size N with N >= 8 (e.g. 8, 16, 28, 32 or 64)")
    return c, h, w


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module`` in spectral normalisation when ``enabled``."""
    return _sn(module) if enabled else module


class ConvDecoder(nn.Module):
    """``(B, in_dim) -> (B, C, H, W)`` raw outputs (apply tanh/sigmoid outside).

    Linear to ``width * 2**(k-1)`` channels at the base resolution, then ``k`` stride-2
    transposed convolutions halving the channels (BatchNorm + ReLU between when ``norm``),
    the last one producing the image channels.
    """

    def __init__(self, in_dim: int, image_shape, width: int = 64, norm: bool = True):
        super().__init__()
        c, h, _ = check_image_shape(image_shape)
        k = num_resamples(h)
        self.base = h // 2**k
        ch = width * 2 ** max(k - 1, 0)
        self.ch = ch
        self.fc = nn.Linear(in_dim, ch * self.base * self.base)
        self.fc_act = nn.Sequential(nn.BatchNorm2d(ch) if norm else nn.Identity(), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=not norm),
                       nn.BatchNorm2d(ch // 2) if norm else nn.Identity(), nn.ReLU(inplace=True)]
            ch //= 2
        if k >= 1:
            layers.append(nn.ConvTranspose2d(ch, c, 4, 2, 1))
        else:
            layers.append(nn.Conv2d(ch, c, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.ch, self.base, self.base)
        return self.net(self.fc_act(h))


class ConvEncoder(nn.Module):
    """``(B, C, H, W) -> (B, out_dim)`` features: ``k`` stride-2 convolutions doubling channels.

    No batch normalisation (so a discriminator can see real and fake images in one
    batch); LeakyReLU(0.2); optional spectral normalisation on every layer.
    """

    def __init__(self, image_shape, width: int = 64, spectral_norm: bool = False):
        super().__init__()
        c, h, _ = check_image_shape(image_shape)
        k = max(num_resamples(h), 1)
        layers: list[nn.Module] = []
        ch_in, ch = c, width
        for _ in range(k):
            layers += [maybe_sn(nn.Conv2d(ch_in, ch, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2, inplace=True)]
            ch_in, ch = ch, ch * 2
        self.net = nn.Sequential(*layers)
        self.out_dim = ch_in * (h // 2**k) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


@torch.no_grad()
def refresh_batchnorm(net: nn.Module, make_input, batches: int = 16) -> None:
    """Recompute BatchNorm running statistics of ``net`` as an exact average over ``batches``.

    Used for EMA generators, whose averaged weights do not match the running statistics
    copied from the trained network ("standing statistics").
    """
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    was_training = net.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    net.train()
    for i in range(batches):
        net(*make_input(i))
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    net.train(was_training)
