"""``tvae``: the tabular VAE (Xu et al. 2019), made conditional.

Encoder and decoder are small MLPs over the transformer's matrix; numbers get a Gaussian
likelihood with a learned scale per value column, categories a softmax. genforge trains it
with a partial conditional vector (half the rows unconditioned, the other half with each
categorical column of the row given with probability ``p_cond``), so the same model samples unconditionally (empty condition) or for any
combination of ``where`` values.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from genforge.core.config import ModelConfig
from genforge.core.train import distributed as dist
from genforge.core.train.optim import adam
from genforge.tables.models.base import NeuralTableGenerator
from genforge.tables.models.cond import CondSpec
from genforge.core.registry import register


Beta = Annotated[float, Field(ge=0, lt=1)]


class TVAEConfig(ModelConfig):
    latent_dim: int = Field(128, gt=0)
    hidden_dims: tuple[int, ...] = Field((128, 128), description="MLP widths of encoder and decoder")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    betas: tuple[Beta, Beta] = Field((0.5, 0.9), description="Adam betas; (0.5, 0.9) as ctgan and the benchmarked "
                                                             "version, (0.9, 0.999) as the usual TVAE")
    batch_size: int = Field(500, gt=0)
    loss_factor: float = Field(2.0, gt=0, description="weight of the reconstruction term")
    p_cond: float = Field(0.3, ge=0, le=1, description="chance each categorical column joins the training condition")
    max_modes: int = Field(10, gt=0)
    max_categories: int = Field(100, gt=1)


def mlp(i: int, dims, o: int) -> nn.Sequential:
    layers = []
    for h in dims:
        layers += [nn.Linear(i, h), nn.ReLU()]
        i = h
    return nn.Sequential(*layers, nn.Linear(i, o))


class Decoder(nn.Module):
    def __init__(self, in_dim: int, dims, out_dim: int):
        super().__init__()
        self.net = mlp(in_dim, dims, out_dim)
        self.sigma = nn.Parameter(torch.full((out_dim,), 0.1))

    def forward(self, z):
        return self.net(z)


@register
class TVAE(NeuralTableGenerator):
    name = "tvae"
    description = "tabular VAE (mode-specific normalisation, Gaussian/softmax likelihood), conditional on any categories"
    Config: ClassVar = TVAEConfig
    sampling_names = ("encoder", "decoder")
    supports_dp = True

    def private_parts(self):
        """DP-SGD on encoder and decoder; the decoder's output scale stays at its start (a bare parameter)."""
        from genforge.tables.models.private import table_parts

        return table_parts(self, {"vae": ("encoder", "decoder")}, freeze=("decoder.sigma",),
                           what="encoder and decoder (both see the rows)")

    def transformer_options(self):
        return {"max_modes": self.config.max_modes, "max_categories": self.config.max_categories}

    def make_networks(self):
        c, t = self.config, self.transformer
        self.cond = CondSpec(t)
        scalar = torch.zeros(t.dim, dtype=torch.bool)
        for sp in t.spans:
            if sp.kind == "scalar":
                scalar[sp.start:sp.end] = True
        self.scalar_mask = scalar
        return {"encoder": mlp(t.dim + self.cond.dim, c.hidden_dims, 2 * c.latent_dim),
                "decoder": Decoder(c.latent_dim + self.cond.dim, tuple(reversed(c.hidden_dims)), t.dim)}

    def make_optimizers(self):
        params = [p for n in ("encoder", "decoder") for p in self.nets[n].parameters()]
        return {"vae": adam(params, self.config.lr, tuple(self.config.betas), self.config.weight_decay)}

    def _cond(self, x: torch.Tensor) -> torch.Tensor:
        if not self.cond.blocks:
            return x.new_zeros(len(x), 0)
        # half the rows train unconditionally (how plain sampling runs), half with a random subset of
        # their own categories as the condition (how where= sampling runs)
        mask = (dist.rand(len(x), len(self.cond.blocks)) < self.config.p_cond) & (dist.rand(len(x), 1) < 0.5)
        return self.cond.vectors(self.cond.cats_of(x.cpu()), mask).to(x.device)

    def train_step(self, x, y):
        c, enc, dec = self.config, self.nets["encoder"], self.nets["decoder"]
        cond = self._cond(x)
        mu, logvar = enc(torch.cat([x, cond], 1)).chunk(2, dim=1)
        z = mu + dist.randn(*mu.shape, like=mu) * (0.5 * logvar).exp()
        out = dec(torch.cat([z, cond], 1))
        sigma = dec.sigma
        rec = x.new_zeros(())
        for sp in self.transformer.spans:
            if sp.kind == "scalar":
                s = sigma[sp.start:sp.end]
                rec = rec + (((x[:, sp.start:sp.end] - torch.tanh(out[:, sp.start:sp.end])) ** 2 / (2 * s**2)).sum()
                             + torch.log(s).sum() * len(x))
            else:
                rec = rec + F.cross_entropy(out[:, sp.start:sp.end], x[:, sp.start:sp.end].argmax(1), reduction="sum")
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()
        loss = (c.loss_factor * rec + kl) / len(x)
        opt = self.optimizers["vae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            sigma.clamp_(0.01, 1.0)
        return {"loss": loss.detach(), "kl": (kl / len(x)).detach()}

    def generate(self, n, where, gen):
        cond = self.cond.from_where(n, where) if (where and self.cond.blocks) else torch.zeros(n, self.cond.dim)
        z = torch.randn(n, self.config.latent_dim, generator=gen)
        dec = self.nets["decoder"]
        out = dec(torch.cat([z, cond], 1).to(self.device)).float().cpu()
        res = torch.empty_like(out)
        for sp in self.transformer.spans:
            block = out[:, sp.start:sp.end]
            if sp.kind == "scalar":
                noise = torch.randn(block.shape, generator=gen) * dec.sigma[sp.start:sp.end].detach().cpu()
                res[:, sp.start:sp.end] = (torch.tanh(block) + noise).clamp(-1, 1)
            else:  # draw from p(x|z), not its mode: argmax collapses minority categories onto the majority
                pick = torch.multinomial(F.softmax(block, dim=1), 1, generator=gen).squeeze(1)
                res[:, sp.start:sp.end] = F.one_hot(pick, sp.end - sp.start).to(out.dtype)
        return res
