"""Diffusion image models: ``ddpm`` (denoising diffusion) and ``flow`` (flow matching on straight paths).

The pieces are kept apart, as in diffusers:

* the **network** — :class:`~genforge.images.models.unet.UNet`, the same for both families;
* the **maths** — noise schedules, DDPM/DDIM steps, flow interpolation and Euler/Heun steps, guidance:
  :mod:`genforge.core.diffusion`, shared with other modalities;
* the **families** here — the training objective (with label dropout, so that one network is both
  class-conditional and unconditional: classifier-free guidance), EMA weights for sampling, and the
  sampling loop behind ``sample(n, sampling_steps=, guidance=, sampler=)``.

A family is class-conditional when its data has labels (``conditional: None``, the default) and
unconditional otherwise or with ``conditional=false``; the run's ``config.yaml`` records which.

Sampling randomness: flow's starting noise is drawn at once from the seed (like the GANs' latents);
ddpm draws each sample's starting noise and its ancestral steps' noise from a generator of its own,
seeded from the draw's seed, so a sample depends on the seed and its position, never on how a
draw is chunked, and the first k samples of a draw of n are the draw of k.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from genforge.core.config import ModelConfig
from genforge.core.diffusion import NoiseSchedule, denoise, guided, integrate, interpolate, velocity_target
from genforge.core.diffusion.inpaint import flow_inpaint, repaint
from genforge.core.diffusion.samplers import row_noise
from genforge.core.errors import ConfigError, DataError
from genforge.core.registry import register
from genforge.core.train import distributed as dist
from genforge.core.train.ema import EMA
from genforge.core.train.optim import adam
from genforge.images.models.base import ImageGenerator
from genforge.images.models.unet import UNet, check_unet_size

FLOW_MAX_STEPS = 1000  # flow time is continuous; beyond this many steps an ODE solve gains nothing
FLOW_TIME_SCALE = 1000.0  # flow time t in [0, 1] enters the time embedding as t * 1000, like a DDPM timestep


class DiffusionConfig(ModelConfig):
    """What ``ddpm`` and ``flow`` share: the UNet, label dropout, EMA, optimiser and sampling defaults.

    The default network (width 16, channels 16/32/64 at 28/14/7 pixels for MNIST, about 0.7M parameters)
    is sized so that 10,000 28x28 samples at the default steps take about two minutes on two CPU cores.
    """

    image_shape: tuple[int, int, int] | None = Field(None, description="(C, H, W); taken from the data when unset")
    conditional: bool | None = Field(None, description="class-conditional (default: when the data has labels)")
    num_classes: int = Field(0, ge=0, description="classes of a conditional run; taken from the data")
    class_names: list[str] | None = None
    width: int = Field(16, gt=0, description="UNet channels at full resolution")
    channel_mult: tuple[int, ...] = Field((1, 2, 4), min_length=1, description="channel multiplier per resolution")
    res_blocks: int = Field(1, gt=0, description="residual blocks per resolution (one more on the way up)")
    attention_levels: int = Field(1, ge=0, description="self-attention at this many of the lowest resolutions")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout inside the residual blocks")
    cond_drop: float = Field(0.1, ge=0, lt=1, description="share of training labels replaced by the null class "
                                                           "(what classifier-free guidance needs; 0: no guidance)")
    guidance: float = Field(1.0, ge=0, description="default classifier-free guidance weight (1: plain conditional; "
                                                    "above 1 costs a second network call per step)")
    ema: float = Field(0.999, ge=0, lt=1, description="EMA decay of the weights used for sampling (0: off)")
    # 1e-3: after 150 MNIST steps the held-out flow loss was 0.335 at 5e-4, 0.266 at 1e-3, 0.252 at 2e-3 (no warm-up
    # or decay here, so the highest is not taken for 20-minute runs); provisional until the quiet-machine benchmark
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    batch_size: int = Field(64, gt=0)

    @model_validator(mode="after")
    def _check_levels(self) -> "DiffusionConfig":
        if any(m < 1 for m in self.channel_mult):
            raise ValueError(f"channel_mult values must be positive, got {list(self.channel_mult)}")
        if self.attention_levels > len(self.channel_mult):
            raise ValueError(f"attention_levels {self.attention_levels} is more than the {len(self.channel_mult)} "
                             f"resolutions of channel_mult")
        return self


class DDPMConfig(DiffusionConfig):
    schedule: Literal["linear", "cosine"] = Field("cosine", description="beta schedule")
    prediction: Literal["eps", "v"] = Field("v", description="what the network predicts: noise (eps) or v")
    timesteps: int = Field(1000, gt=1, description="training steps of the noise schedule")
    sampler: Literal["ddim", "ddpm"] = Field("ddim", description="ddim (deterministic) or ddpm (ancestral)")
    sampling_steps: int = Field(10, gt=0, description="default sampler steps (at most timesteps)")

    @model_validator(mode="after")
    def _check_steps(self) -> "DDPMConfig":
        if self.sampling_steps > self.timesteps:
            raise ValueError(f"sampling_steps {self.sampling_steps} is more than the schedule's {self.timesteps} "
                             f"timesteps")
        return self


class FlowConfig(DiffusionConfig):
    sampler: Literal["euler", "heun"] = Field("euler", description="ODE solver: euler (1 call a step) or heun (2)")
    sampling_steps: int = Field(8, gt=0, le=FLOW_MAX_STEPS, description="default solver steps")


class _ConditionalIfLabelled:
    """``conditional`` of a family whose runs are class-conditional when their data has labels: on an
    instance, what its config says; on the class, True (the family can take labels)."""

    def __get__(self, obj, owner=None) -> bool:
        return True if obj is None else bool(obj.config.conditional)


class _Diffusion(ImageGenerator):
    """A UNet trained to denoise (or to carry noise to data), sampled in several network calls."""

    conditional = _ConditionalIfLabelled()
    sampling_only = ("unet_ema",)
    sampling_controls: ClassVar[frozenset[str]] = frozenset({"sampling_steps", "guidance", "sampler"})
    sample_batch = 128  # a UNet's activations at 1000 rows fall out of the CPU caches: 1.6x slower per image
    samplers: ClassVar[tuple[str, ...]] = ()
    max_steps_why: ClassVar[str] = ""

    @property
    def sampling_names(self) -> tuple[str, ...]:
        return ("unet_ema",) if self.config.ema > 0 else ("unet",)

    # -- data and networks -------------------------------------------------------------------------
    def adopt_data(self, data, **options) -> None:
        """Take the data's shape and classes; decide (once) whether the run is class-conditional."""
        c = self.config
        if c.conditional is None:
            c.conditional = data.y is not None
        elif c.conditional and data.y is None:
            raise DataError(f"model '{self.name}' is conditional and needs labelled data (class sub-folders, IDX "
                            f"labels, or 'y' in the .npz); drop --set conditional=true to train it unconditionally")
        if not c.conditional and c.guidance != 1:
            raise ConfigError(f"guidance={c.guidance:g} needs a class-conditional run, and this '{self.name}' run "
                              f"learns without labels; drop --set guidance, or train on labelled data")
        super().adopt_data(data, **options)

    def resolve_labels(self, n: int, labels):
        """As for every image model; an unconditional run says it was trained without labels."""
        if labels is not None and not self.conditional:
            raise ConfigError(f"this '{self.name}' run is unconditional (it was trained without labels) and cannot "
                              f"take a label; train it on labelled data to sample by class")
        return super().resolve_labels(n, labels)

    def check_buildable(self) -> None:
        super().check_buildable()
        check_unet_size(self.image_shape, len(self.config.channel_mult))

    def make_networks(self):
        c = self.config
        unet = UNet(c.image_shape, width=c.width, channel_mult=c.channel_mult, res_blocks=c.res_blocks,
                    attention_levels=c.attention_levels, num_classes=self.num_classes if self.conditional else 0,
                    dropout=c.dropout)
        nets = {"unet": unet}
        if c.ema > 0:
            nets["unet_ema"] = EMA(unet, c.ema)
        return nets

    def make_optimizers(self):
        return {"unet": adam(self.nets["unet"].parameters(), self.config.lr, (0.9, 0.999))}

    # -- training ------------------------------------------------------------------------------------
    def train_step(self, x, y):
        y = self.drop_labels(y, x)
        loss = self.loss(self.nets["unet"], x, y)
        opt = self.optimizers["unet"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if "unet_ema" in self.nets:
            self.nets["unet_ema"].update()
        return {"loss": loss.detach()}

    def drop_labels(self, y: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        """Labels with a ``cond_drop`` share replaced by the null class (drawn for the global batch)."""
        if y is None or self.config.cond_drop == 0:
            return y
        drop = dist.rand(len(y), like=x) < self.config.cond_drop
        return torch.where(drop, torch.full_like(y, self.num_classes), y)

    def loss(self, net, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:  # pragma: no cover - abstract
        """The training objective on a batch of clean images ``x`` (labels ``y``, some dropped)."""
        raise NotImplementedError

    # -- sampling ------------------------------------------------------------------------------------
    def sampling_options(self, sampling_steps: int | None = None, guidance: float | None = None,
                         sampler: str | None = None) -> dict[str, Any]:
        """Validate the sampling controls (one-line errors with the fix) and fill in the run's defaults."""
        c = self.config
        steps = c.sampling_steps if sampling_steps is None else sampling_steps
        top = self.max_sampling_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= top:
            raise ConfigError(f"--sampling-steps must be a whole number from 1 to {top} ({self.max_steps_why}) for "
                              f"this '{self.name}' run, got {steps!r}")
        sampler = c.sampler if sampler is None else sampler
        if sampler not in self.samplers:
            raise ConfigError(f"unknown sampler '{sampler}' for '{self.name}'; choose {' or '.join(self.samplers)}")
        if guidance is not None:
            self._check_guidance(guidance)
        weight = float(guidance if guidance is not None else c.guidance) if self.conditional else 1.0
        return {"sampling_steps": steps, "guidance": weight, "sampler": sampler}

    def _check_guidance(self, guidance) -> None:
        if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not guidance >= 0:
            raise ConfigError(f"--guidance must be a number of 0 or more (1: the plain conditional model, 0: "
                              f"unconditional, above 1: stronger class guidance), got {guidance!r}")
        if not self.conditional:
            raise ConfigError(f"--guidance needs a class-conditional run, and this '{self.name}' run was trained "
                              f"without labels; drop --guidance, or train on labelled data")
        if guidance != 1 and self.config.cond_drop == 0:
            raise ConfigError(f"this '{self.name}' run was trained with cond_drop=0, so it has no unconditional mode "
                              f"to guide with; drop --guidance, or train with --set cond_drop=0.1")

    @property
    def max_sampling_steps(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def fill(self, x, mask, y, gen):
        """Diffusion families fill during sampling (RePaint, the flow's straight path); an unlabelled
        conditional run completes with its unconditional mode (the null class)."""
        if self.conditional and y is None and self.config.cond_drop == 0:
            raise ConfigError(f"this '{self.name}' run was trained with cond_drop=0, so it needs the images' labels to "
                              f"complete them: put them as 'y' in the images' .npz")
        return self.inpaint(x, mask, y, gen, **self.sampling_options())

    def sampling_net(self):
        """The network sampled from: the EMA weights when there are some."""
        return self.nets["unet_ema"].shadow if "unet_ema" in self.nets else self.nets["unet"]


@register
class DDPM(_Diffusion):
    name = "ddpm"
    description = "denoising diffusion: UNet, DDIM or ancestral sampling, classifier-free guidance (--guidance)"
    Config: ClassVar = DDPMConfig
    samplers = ("ddim", "ddpm")
    max_steps_why = "the schedule's training timesteps"

    @property
    def schedule(self) -> NoiseSchedule:
        """The noise schedule of the config (built once per schedule and length)."""
        c = self.config
        cached = getattr(self, "_schedule", None)
        if cached is None or (cached.kind, cached.timesteps) != (c.schedule, c.timesteps):
            self._schedule = cached = NoiseSchedule(c.schedule, c.timesteps)
        return cached

    @property
    def max_sampling_steps(self) -> int:
        return int(self.config.timesteps)

    def loss(self, net, x, y):
        c, s = self.config, self.schedule
        t = (dist.rand(len(x), like=x) * c.timesteps).long().clamp_(max=c.timesteps - 1)
        eps = dist.randn(*x.shape, like=x)
        out = net(s.add_noise(x, eps, t), t, y)
        return F.mse_loss(out.float(), s.target(x, eps, t, c.prediction))

    def noise(self, n, generator):
        """Per sample, from its own seed: its starting noise and the seed of its ancestral steps' noise (so the
        first k samples of a draw of n are the draw of k)."""
        seeds = torch.randint(0, 2 ** 62, (n,), generator=generator)
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds.tolist()]
        x = torch.stack([torch.randn(self.image_shape, generator=g) for g in gens])
        return x, torch.cat([torch.randint(0, 2 ** 62, (1,), generator=g) for g in gens])

    def inpaint(self, known, mask, y, gen, *, sampling_steps: int, guidance: float, sampler: str):
        """RePaint with the ancestral sampler (:func:`~genforge.core.diffusion.inpaint.repaint`)."""
        x, seeds = self.noise(len(known), gen)
        predict = guided(self.sampling_net(), y, 1.0 if y is not None else 0.0)
        return repaint(predict, known, mask, x.to(known.device), self.schedule, sampling_steps,
                       prediction=self.config.prediction, noise=row_noise(seeds))

    def decode(self, z, y, *, sampling_steps: int, guidance: float, sampler: str):
        x, seeds = z
        predict = guided(self.sampling_net(), y, guidance)
        return denoise(predict, x, self.schedule, sampling_steps, sampler=sampler, prediction=self.config.prediction,
                       noise=row_noise(seeds) if sampler == "ddpm" else None)


@register
class Flow(_Diffusion):
    name = "flow"
    description = "flow matching on straight paths: the ddpm UNet in a few Euler/Heun steps (cheap sampling)"
    Config: ClassVar = FlowConfig
    samplers = ("euler", "heun")
    max_steps_why = "flow's limit"

    @property
    def max_sampling_steps(self) -> int:
        return FLOW_MAX_STEPS

    def loss(self, net, x, y):
        t = dist.rand(len(x), like=x)
        x0 = dist.randn(*x.shape, like=x)
        out = net(interpolate(x0, x, t), t * FLOW_TIME_SCALE, y)
        return F.mse_loss(out.float(), velocity_target(x0, x))

    def noise(self, n, generator):
        return torch.randn(n, *self.image_shape, generator=generator)

    def inpaint(self, known, mask, y, gen, *, sampling_steps: int, guidance: float, sampler: str):
        """Euler steps with the visible pixels on their straight path (:func:`~genforge.core.diffusion.inpaint.flow_inpaint`)."""
        net = self.sampling_net()
        velocity = guided(lambda x, t, yy: net(x, t * FLOW_TIME_SCALE, yy), y, 1.0 if y is not None else 0.0)
        return flow_inpaint(velocity, known, mask, self.noise(len(known), gen).to(known.device), sampling_steps)

    def decode(self, z, y, *, sampling_steps: int, guidance: float, sampler: str):
        net = self.sampling_net()
        velocity = guided(lambda x, t, yy: net(x, t * FLOW_TIME_SCALE, yy), y, guidance)
        return integrate(velocity, z, sampling_steps, sampler)
