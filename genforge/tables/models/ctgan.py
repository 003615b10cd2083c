"""``ctgan``: the conditional tabular GAN (Xu et al. 2019), in plain PyTorch.

* mode-specific normalisation of numbers and one-hot categories (:mod:`genforge.tables.data.transform`);
* a conditional vector with training-by-sampling (:mod:`genforge.tables.models.cond`), extended to
  several columns at once so ``where`` with many columns needs no rejection sampling;
* a residual generator with tanh / Gumbel-softmax outputs, a PacGAN discriminator
  (``pac`` rows judged together against mode collapse), WGAN-GP loss.

The discriminator is frozen during the generator's update (no wasted weight gradients), batches
are gathered from in-memory tensors, and all conditional sampling is vectorised: these, not
different maths, are where the speed over the reference implementation comes from.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field, field_validator
from torch import nn

from genforge.core.config import ModelConfig
from genforge.core.train import distributed as dist
from genforge.core.errors import DataError
from genforge.core.train.optim import adam
from genforge.core.train.penalties import gradient_penalty
from genforge.tables.models.base import NeuralTableGenerator
from genforge.tables.models.cond import CondSpec, activate
from genforge.core.registry import register


class CTGANConfig(ModelConfig):
    z_dim: int = Field(128, gt=0, description="noise size")
    generator_dims: tuple[int, ...] = Field((256, 256), description="residual layer widths of G")
    discriminator_dims: tuple[int, ...] = Field((256, 256), description="layer widths of D")
    lr: float = Field(2e-4, gt=0)
    lr_d: float | None = Field(None, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    batch_size: int = Field(500, gt=0, description="rows per step (a multiple of pac)")
    pac: int = Field(10, gt=0, description="rows the discriminator judges together (PacGAN)")
    gp_weight: float = Field(10.0, ge=0)
    p_extra: float = Field(0.3, ge=0, le=1, description="chance each other column joins the training condition")
    max_modes: int = Field(10, gt=0, description="Gaussian modes per numeric column")
    max_categories: int = Field(100, gt=1, description="categories kept per column (rarer ones pooled)")

    @field_validator("pac")
    @classmethod
    def _pac_fits_a_batch(cls, pac: int, info):
        batch = info.data.get("batch_size")
        if batch is not None and pac > batch:
            raise ValueError(f"pac must not exceed batch_size ({batch})")
        return pac


class Residual(nn.Module):
    def __init__(self, i: int, o: int):
        super().__init__()
        self.fc, self.bn = nn.Linear(i, o), nn.BatchNorm1d(o)

    def forward(self, x):
        return torch.cat([torch.relu(self.bn(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    def __init__(self, in_dim: int, dims, out_dim: int, cond_shape: tuple[int, int]):
        super().__init__()
        layers, d = [], in_dim
        for h in dims:
            layers.append(Residual(d, h))
            d += h
        self.body = nn.Sequential(*layers, nn.Linear(d, out_dim))
        self.register_buffer("cond_freq", torch.zeros(cond_shape))  # real category frequencies (sampling)

    def forward(self, z):
        return self.body(z)


class Discriminator(nn.Module):
    def __init__(self, in_dim: int, dims, pac: int):
        super().__init__()
        layers, d = [], in_dim * pac
        for h in dims:
            layers += [nn.Linear(d, h), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            d = h
        self.pac = pac
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x):
        return self.net(x.reshape(-1, x.shape[1] * self.pac))


@register
class CTGAN(NeuralTableGenerator):
    name = "ctgan"
    description = "conditional tabular GAN (mode-specific normalisation, training-by-sampling, PacGAN, WGAN-GP)"
    Config: ClassVar = CTGANConfig
    sampling_names = ("G",)
    supports_dp = True
    dp_plan = None

    def private_parts(self):
        """A private discriminator (see :func:`genforge.tables.models.private.ctgan_parts`)."""
        from genforge.tables.models.private import ctgan_parts

        return ctgan_parts(self)

    def transformer_options(self):
        return {"max_modes": self.config.max_modes, "max_categories": self.config.max_categories}

    def prepare(self, df, metadata=None, seed: int = 0) -> None:
        super().prepare(df, metadata, seed)
        self._check_rows(len(df))  # before a run directory is made, not at the first batch

    def _check_rows(self, n: int) -> None:
        if n < self.config.pac:
            raise DataError(f"ctgan needs at least pac={self.config.pac} rows; the table has {n} "
                            f"(or set pac lower: --set pac=1)")

    def make_networks(self):
        c, t = self.config, self.transformer
        self.cond = CondSpec(t)
        g = Generator(c.z_dim + self.cond.dim, c.generator_dims, t.dim, (len(self.cond.blocks), self.cond.kmax))
        d = Discriminator(t.dim + self.cond.dim, c.discriminator_dims, c.pac)
        return {"G": g, "D": d}

    def make_optimizers(self):
        c = self.config
        return {"G": adam(self.nets["G"].parameters(), c.lr, (0.5, 0.9), c.weight_decay),
                "D": adam(self.nets["D"].parameters(), c.lr_d or c.lr, (0.5, 0.9), c.weight_decay)}

    @property
    def batch_multiple(self) -> int:
        return self.config.pac  # the discriminator judges pac rows together, on every process

    def batch_source(self, df):
        """Training-by-sampling: the model picks each batch's rows through its conditional vector."""
        from genforge.core.train.batches import SamplerBatches

        data = self.training_data(df)
        if self.dp_plan:  # DP: uniform rows, noisy frequencies (tables.models.private)
            from genforge.tables.models.private import private_batch

            return SamplerBatches(lambda b, gen: private_batch(self, data, b - b % self.config.pac, gen), len(data.x))
        return SamplerBatches(lambda b, gen: self.next_batch(data, b, gen), len(data.x))

    def next_batch(self, data, batch_size: int, gen: torch.Generator):
        """Training-by-sampling: rows chosen through the conditional vector (see :class:`CondSpec`)."""
        self._check_rows(len(data.x))
        if self.cond.blocks and not hasattr(self.cond, "rows_flat"):
            self.on_data(data)
        batch_size -= batch_size % self.config.pac
        if not self.cond.blocks:
            idx = torch.randint(len(data.x), (batch_size,), generator=gen)
            return data.x[idx], torch.zeros(batch_size, 0)
        rows, cond = self.cond.sample_training(batch_size, gen, self.config.p_extra)
        return data.x[rows], cond

    def _fake(self, cond: torch.Tensor, gen=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if gen is None:  # training: noise for the global batch, this process's slice
            z = dist.randn(len(cond), self.config.z_dim, like=cond)
        else:
            z = torch.randn(len(cond), self.config.z_dim, generator=gen).to(self.device)
        raw = self.nets["G"](torch.cat([z, cond.to(self.device)], dim=1))
        logits = [raw[:, s:e] for _, s, e, _ in self.cond.blocks]
        return raw, logits

    def train_step(self, x, cond):
        c, G, D = self.config, self.nets["G"], self.nets["D"]
        spans = self.transformer.spans
        raw, _ = self._fake(cond)
        fake = activate(raw, spans)
        real_in, fake_in = torch.cat([x, cond], 1), torch.cat([fake.detach(), cond], 1)
        d_real, d_fake = D(real_in), D(fake_in)
        # WGAN-GP on pac-grouped interpolates (one mixing weight per pac group, as CTGAN)
        gp = gradient_penalty(D, real_in, fake_in, group=D.pac) if c.gp_weight and not self.dp_plan else torch.zeros(())
        loss_d = d_fake.mean() - d_real.mean() + c.gp_weight * gp
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["D"].step()

        D.requires_grad_(False)
        raw, logits = self._fake(cond)
        fake = activate(raw, spans)
        loss_cond = self.cond.cond_loss(logits, cond) if self.cond.blocks else torch.zeros(())
        loss_g = -D(torch.cat([fake, cond], 1)).mean() + loss_cond
        self.optimizers["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["G"].step()
        D.requires_grad_(True)
        return {"d": loss_d.detach(), "g": loss_g.detach(), "cond": loss_cond.detach()}

    def on_data(self, data) -> None:
        """Index the rows per category for training-by-sampling (first batch of a fit or a resume)."""
        if self.cond.blocks:
            self.cond.fit(data.x)
            self.nets["G"].cond_freq.copy_(self.cond.freq)

    def generate(self, n, where, gen):
        if not hasattr(self.cond, "freq") and self.cond.blocks:
            self.cond.set_freq(self.nets["G"].cond_freq.cpu())
        if not self.cond.blocks:
            cond = torch.zeros(n, 0)
        elif where:
            cond = self.cond.from_where(n, where)
            free = [i for i, w in enumerate(where) if not w] if isinstance(where, list) else []
            if free:  # rows without a condition (in a per-row list) are drawn as unconditional ones
                cond[free] = self.cond.sample_original(len(free), gen)
        else:
            cond = self.cond.sample_original(n, gen)
        raw, _ = self._fake(cond, gen)
        return activate(raw.float().cpu(), self.transformer.spans, hard=True, gen=gen)
