"""Variational autoencoders: ``vae`` and the class-conditional ``cvae``.

A convolutional encoder gives the mean and log-variance of q(z|x[,y]); a convolutional
decoder maps z (with a one-hot class for ``cvae``) back to pixel logits. The loss is the
negative ELBO with a beta weight on the KL term (beta-VAE): Bernoulli likelihood on
pixels rescaled to [0, 1] (``recon="bce"``, sharper digits) or Gaussian (``"mse"``).
Sampling decodes z ~ N(0, I); :meth:`VAE.reconstruct` encodes and decodes inputs.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from genforge.core.config import ModelConfig
from genforge.core.train import distributed as dist
from genforge.core.errors import ConfigError
from genforge.images.models.base import PIXELS, ImageGenerator
from genforge.core.train.optim import adam
from genforge.images.models.layers import ConvDecoder, ConvEncoder
from genforge.core.registry import register


class VAEConfig(ModelConfig):
    image_shape: tuple[int, int, int] | None = Field(None, description="(C, H, W); taken from the data when unset")
    num_classes: int = Field(0, ge=0)
    class_names: list[str] | None = None
    latent_dim: int = Field(16, gt=0, description="size of z")
    width: int = Field(32, gt=0, description="channels of the first encoder layer")
    beta: float = Field(1.0, ge=0, description="weight of the KL term")
    recon: Literal["bce", "mse"] = Field("bce", description="pixel likelihood: bce (Bernoulli) or mse (Gaussian)")
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, gt=0)


class Encoder(nn.Module):
    def __init__(self, image_shape, width: int, latent_dim: int, num_classes: int = 0):
        super().__init__()
        self.conv = ConvEncoder(image_shape, width)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.conv.out_dim + num_classes, 2 * latent_dim)

    def forward(self, x, y=None):
        h = self.conv(x)
        if self.num_classes:
            h = torch.cat([h, F.one_hot(y, self.num_classes).to(h.dtype)], dim=1)
        mu, logvar = self.fc(h).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)


class Decoder(nn.Module):
    def __init__(self, image_shape, width: int, latent_dim: int, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.net = ConvDecoder(latent_dim + num_classes, image_shape, width * 2, norm=False)

    def forward(self, z, y=None):
        if self.num_classes:
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        return self.net(z)  # logits / raw outputs


@register
class VAE(ImageGenerator):
    name = "vae"
    description = "convolutional VAE (beta weight on KL); samples from the prior, reconstructs inputs"
    Config: ClassVar = VAEConfig
    sampling_names = ("encoder", "decoder")
    supports_dp = True

    def private_parts(self):
        """DP-SGD on encoder and decoder (both see the images); nothing else looks at the data."""
        from genforge.core.train.private import PrivateParts

        return PrivateParts({"vae": ("encoder", "decoder")}, what="encoder and decoder (both see the images)",
                            unit="image", preprocessing=PIXELS)

    def make_networks(self):
        c, k = self.config, self.num_classes if self.conditional else 0
        return {"encoder": Encoder(c.image_shape, c.width, c.latent_dim, k),
                "decoder": Decoder(c.image_shape, c.width, c.latent_dim, k)}

    def make_optimizers(self):
        params = [p for n in ("encoder", "decoder") for p in self.nets[n].parameters()]
        return {"vae": adam(params, self.config.lr, (0.9, 0.999))}

    def to_image(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output -> image in [-1, 1] (the likelihood's mean)."""
        return torch.tanh(out / 2) if self.config.recon == "bce" else torch.tanh(out)

    def train_step(self, x, y):
        c = self.config
        mu, logvar = self.nets["encoder"](x, y)
        z = mu + dist.randn(*mu.shape, like=mu) * (0.5 * logvar).exp()
        out = self.nets["decoder"](z, y)
        if c.recon == "bce":
            rec = F.binary_cross_entropy_with_logits(out, (x + 1) / 2, reduction="sum") / x.shape[0]
        else:
            rec = F.mse_loss(torch.tanh(out), x, reduction="sum") / x.shape[0]
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / x.shape[0]
        loss = rec + c.beta * kl
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach(), "recon": rec.detach(), "kl": kl.detach()}

    def noise(self, n, generator):
        return torch.randn(n, self.config.latent_dim, generator=generator)

    def decode(self, z, y):
        return self.to_image(self.nets["decoder"](z, y))

    def initial_latent(self, x, mask, y, gen):
        """The encoder's mean for the image with its masked pixels set to grey."""
        mu, _ = self.nets["encoder"](x * (1 - mask), y)
        return mu

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, labels=None) -> torch.Tensor:
        """Encode ``x`` (images in [-1, 1]) and decode the posterior mean; same shape as ``x``."""
        self.eval()
        if self.conditional and labels is None:
            raise ConfigError(f"model '{self.name}' needs the images' labels to reconstruct them: reconstruct(x, labels)")
        y = self.resolve_labels(len(x), labels) if self.conditional else None
        y = y.to(self.device) if y is not None else None
        mu, _ = self.nets["encoder"](x.to(self.device), y)
        return self.to_image(self.nets["decoder"](mu, y)).float().clamp_(-1, 1).cpu()


@register
class CVAE(VAE):
    name = "cvae"
    description = "class-conditional VAE: the class is given to encoder and decoder; sample with --label"
    conditional = True
