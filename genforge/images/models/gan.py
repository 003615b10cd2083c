"""Generative adversarial networks: ``mlp-gan``, ``dcgan`` and ``cgan``.

Networks (plain PyTorch), losses and the training step are kept apart:

* :class:`MLPGenerator` / :class:`MLPDiscriminator` — the tutorial MLP GAN, kept faithful
  (G: z 100 -> 256 -> 512 -> C*H*W, LeakyReLU(0.2), Tanh; D: C*H*W -> 512 -> 256 -> 1).
* :class:`ConvGenerator` / :class:`ConvDiscriminator` — DCGAN-style, optionally
  class-conditional (label embedding concatenated to z in G, projection discriminator).
* :func:`d_loss` / :func:`g_loss` — non-saturating BCE, hinge, WGAN-GP.

The discriminator scores real and fake images in one batch (it has no BatchNorm, so the
maths is the same as two calls) and is frozen during the generator's update, which skips
computing gradients nobody uses.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from genforge.core.config import ModelConfig
from genforge.images.models.base import PIXELS, ImageGenerator
from genforge.core.train.optim import adam
from genforge.images.models.layers import ConvDecoder, ConvEncoder, maybe_sn, refresh_batchnorm
from genforge.core.registry import register
from genforge.core.train.ema import EMA
from genforge.core.train import distributed as dist
from genforge.core.train.penalties import gradient_penalty

Loss = Literal["bce", "hinge", "wgan-gp"]


# -- networks -------------------------------------------------------------------------------------
class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, image_shape):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.net = nn.Sequential(
            nn.Linear(z_dim, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, math.prod(self.image_shape)), nn.Tanh(),
        )

    def forward(self, z, y=None):
        return self.net(z).view(-1, *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Returns logits; the tutorial's final Sigmoid is folded into the (more stable) loss."""

    def __init__(self, image_shape, spectral_norm: bool = False):
        super().__init__()
        d = math.prod(image_shape)
        self.net = nn.Sequential(
            maybe_sn(nn.Linear(d, 512), spectral_norm), nn.LeakyReLU(0.2),
            maybe_sn(nn.Linear(512, 256), spectral_norm), nn.LeakyReLU(0.2),
            maybe_sn(nn.Linear(256, 1), spectral_norm),
        )

    def forward(self, x, y=None):
        return self.net(x.flatten(1)).squeeze(1)


class ConvGenerator(nn.Module):
    """z (and an optional class embedding) -> image in [-1, 1]."""

    def __init__(self, z_dim: int, image_shape, width: int, num_classes: int = 0, embed_dim: int = 32):
        super().__init__()
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.decoder = ConvDecoder(z_dim + (embed_dim if num_classes else 0), image_shape, width, norm=True)

    def forward(self, z, y=None):
        if self.embed is not None:
            z = torch.cat([z, self.embed(y)], dim=1)
        return torch.tanh(self.decoder(z))


class ConvDiscriminator(nn.Module):
    """image -> logit; with classes, adds the projection term <embed(y), features> (Miyato & Koyama 2018)."""

    def __init__(self, image_shape, width: int, spectral_norm: bool, num_classes: int = 0):
        super().__init__()
        self.encoder = ConvEncoder(image_shape, width, spectral_norm)
        self.out = maybe_sn(nn.Linear(self.encoder.out_dim, 1), spectral_norm)
        self.embed = maybe_sn(nn.Embedding(num_classes, self.encoder.out_dim), spectral_norm) if num_classes else None

    def forward(self, x, y=None):
        h = self.encoder(x)
        logit = self.out(h).squeeze(1)
        if self.embed is not None:
            logit = logit + (self.embed(y) * h).sum(1)
        return logit


# -- losses -----------------------------------------------------------------------------------------
def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss on real and fake logits (WGAN-GP's penalty is added separately)."""
    if kind == "bce":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return fake.mean() - real.mean()


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss on the discriminator's logits for fake images (non-saturating for BCE)."""
    return F.softplus(-fake).mean() if kind == "bce" else -fake.mean()


# -- configs --------------------------------------------------------------------------------------
class GANConfig(ModelConfig):
    """Hyper-parameters shared by the GAN families (defaults: dcgan's, chosen for quality)."""

    image_shape: tuple[int, int, int] | None = Field(None, description="(C, H, W); taken from the data when unset")
    num_classes: int = Field(0, ge=0, description="classes for conditional models; taken from the data")
    class_names: list[str] | None = None
    z_dim: int = Field(100, gt=0, description="latent noise size")
    width: int = Field(64, gt=0, description="channels of the first discriminator layer")
    loss: Loss = Field("hinge", description="bce (non-saturating), hinge or wgan-gp")
    spectral_norm: bool = Field(True, description="spectral normalisation in the discriminator")
    ema: float = Field(0.999, ge=0, lt=1, description="EMA decay of generator weights for sampling (0: off)")
    lr: float = Field(2e-4, gt=0, description="generator learning rate")
    lr_d: float | None = Field(None, gt=0, description="discriminator learning rate (default: lr)")
    beta1: float = Field(0.0, ge=0, lt=1, description="Adam beta1 (0 as in SN-GAN; the tutorial MLP GAN uses 0.5)")
    beta2: float = Field(0.9, ge=0, lt=1, description="Adam beta2")
    batch_size: int = Field(64, gt=0)
    d_steps: int = Field(1, gt=0, description="discriminator updates per generator update")
    gp_weight: float = Field(10.0, ge=0, description="gradient-penalty weight for wgan-gp")


class MLPGANConfig(GANConfig):
    """The tutorial's settings: BCE, no spectral norm, no EMA, Adam(2e-4, betas 0.5/0.999)."""

    loss: Loss = "bce"
    spectral_norm: bool = False
    ema: float = Field(0.0, ge=0, lt=1)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)


# -- the families --------------------------------------------------------------------------------
class _GAN(ImageGenerator):
    Config: ClassVar = GANConfig
    sampling_only = ("G_ema",)
    supports_dp = True

    def private_parts(self):
        """DP-SGD on the discriminator, the only network that sees real images (the generator learns through it:
        post-processing). Its real and fake images are one batch, so each step clips 2 x batch gradients."""
        from genforge.core.train.private import PrivateParts, refuse

        c = self.config
        if c.spectral_norm:
            raise refuse(self.name, "Opacus cannot take per-image gradients through spectral normalisation; add "
                                    "--set spectral_norm=false to train it privately")
        if c.loss == "wgan-gp":
            raise refuse(self.name, "a gradient penalty cannot be clipped per image; use --loss hinge or bce")
        if c.d_steps != 1:
            raise refuse(self.name, "each private step must see a fresh batch; use --set d_steps=1")
        return PrivateParts({"D": ("D",)}, per_step=lambda batch: 2 * batch, unit="image", preprocessing=PIXELS,
                            what="the discriminator (the generator sees images only through it)")

    @property
    def sampling_names(self) -> tuple[str, ...]:
        return ("G_ema",) if self.config.ema > 0 else ("G",)

    def make_gd(self) -> tuple[nn.Module, nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_networks(self):
        G, D = self.make_gd()
        nets = {"G": G, "D": D}
        if self.config.ema > 0:
            nets["G_ema"] = EMA(G, self.config.ema)
        self._bn_stale = True
        return nets

    def make_optimizers(self):
        c = self.config
        betas = (c.beta1, c.beta2)
        return {"G": adam(self.nets["G"].parameters(), c.lr, betas),
                "D": adam(self.nets["D"].parameters(), c.lr_d or c.lr, betas)}

    def train_step(self, x, y):
        c, G, D = self.config, self.nets["G"], self.nets["D"]
        opt_g, opt_d = self.optimizers["G"], self.optimizers["D"]
        b = x.shape[0]
        out = {}
        fake = G(dist.randn(b, c.z_dim, like=x), y)
        for i in range(c.d_steps):
            f = fake.detach() if i == 0 else G(dist.randn(b, c.z_dim, like=x), y).detach()
            logits = D(torch.cat([x, f]), torch.cat([y, y]) if y is not None else None)
            loss_d = d_loss(c.loss, logits[:b], logits[b:])
            if c.loss == "wgan-gp":
                gp = gradient_penalty(lambda h: D(h, y), x, f)
                loss_d = loss_d + c.gp_weight * gp
                out["gp"] = gp.detach()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        D.requires_grad_(False)
        loss_g = g_loss(c.loss, D(fake, y))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
        if "G_ema" in self.nets:
            self.nets["G_ema"].update()
        self._bn_stale = True
        out.update(d=loss_d.detach(), g=loss_g.detach())
        return out

    def prepare_sampling(self):
        if "G_ema" in self.nets and getattr(self, "_bn_stale", True):
            gen = torch.Generator().manual_seed(0)
            k = self.num_classes
            shadow = self.nets["G_ema"].shadow

            device = next(shadow.parameters()).device

            def make_input(i):
                z = torch.randn(256, self.config.z_dim, generator=gen).to(device)
                y = torch.randint(0, k, (256,), generator=gen).to(device) if k else None
                return z, y

            refresh_batchnorm(shadow, make_input)
            self._bn_stale = False

    def noise(self, n, generator):
        return torch.randn(n, self.config.z_dim, generator=generator)

    def decode(self, z, y):
        net = self.nets["G_ema"].shadow if "G_ema" in self.nets else self.nets["G"]
        return net(z, y)


@register
class MLPGAN(_GAN):
    name = "mlp-gan"
    convolutional = False
    description = "the tutorial MLP GAN (100-256-512-784 G, 784-512-256-1 D, BCE): the classic baseline"
    Config: ClassVar = MLPGANConfig

    def make_gd(self):
        c = self.config
        return MLPGenerator(c.z_dim, c.image_shape), MLPDiscriminator(c.image_shape, c.spectral_norm)


@register
class DCGAN(_GAN):
    name = "dcgan"
    description = "convolutional GAN (hinge loss, spectral norm, EMA); 8x8 to 64x64, grayscale or RGB"

    def make_gd(self):
        c = self.config
        return (ConvGenerator(c.z_dim, c.image_shape, c.width),
                ConvDiscriminator(c.image_shape, c.width, c.spectral_norm))


@register
class CGAN(_GAN):
    name = "cgan"
    description = "class-conditional DCGAN (label embedding in G, projection discriminator); sample with --label"
    conditional = True

    def make_gd(self):
        c = self.config
        return (ConvGenerator(c.z_dim, c.image_shape, c.width, c.num_classes),
                ConvDiscriminator(c.image_shape, c.width, c.spectral_norm, c.num_classes))
