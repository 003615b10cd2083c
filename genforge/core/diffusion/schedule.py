"""Noise schedules of denoising diffusion and the conversions between what a network predicts.

The forward process noises clean data ``x0`` to ``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps`` with
``a_t = alphas_cumprod[t]`` (Ho et al. 2020). A network predicts one of

* ``eps`` — the noise (Ho et al.);
* ``v`` — ``sqrt(a_t) eps - sqrt(1 - a_t) x0`` (Salimans & Ho 2022), better behaved where
  ``a_t`` is near 0 (the first steps of a cosine schedule) and for few-step samplers;

and :func:`to_x0_eps` turns either back into ``(x0, eps)``, which is all a sampler needs.
Schedules are kept in float64 (the products of a thousand factors near 1) and converted when used.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Schedule = Literal["linear", "cosine"]
Prediction = Literal["eps", "v"]
MAX_BETA = 0.999  # the cosine schedule's last betas are clipped here (Nichol & Dhariwal 2021)


def beta_schedule(kind: Schedule, timesteps: int) -> torch.Tensor:
    """The ``timesteps`` betas (float64) of a ``linear`` or ``cosine`` schedule.

    ``linear``: from 1e-4 to 0.02 for 1000 steps (Ho et al.), both ends scaled by ``1000 / timesteps``
    so that a shorter schedule still ends in (almost) pure noise. ``cosine``: ``alphas_cumprod`` follows
    ``cos((t / T + s) / (1 + s) * pi / 2) ** 2`` with ``s = 0.008``, betas clipped at 0.999.
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be at least 1, got {timesteps}")
    if kind == "linear":
        scale = 1000 / timesteps
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    if kind == "cosine":
        def f(t: float) -> float:
            return math.cos((t / timesteps + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - f(i + 1) / f(i), MAX_BETA) for i in range(timesteps)], dtype=torch.float64)
    raise ValueError(f"unknown beta schedule '{kind}'; use linear or cosine")


def v_target(x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor | float) -> torch.Tensor:
    """The v-prediction target ``sqrt(a) eps - sqrt(1 - a) x0`` at ``alphas_cumprod = a``."""
    a = torch.as_tensor(a, dtype=x0.dtype, device=x0.device)
    return a.sqrt() * eps - (1 - a).sqrt() * x0


def to_x0_eps(x_t: torch.Tensor, out: torch.Tensor, a: torch.Tensor | float,
              prediction: Prediction) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, eps)`` from a network output ``out`` (an ``eps`` or ``v`` prediction) at ``x_t``."""
    a = torch.as_tensor(a, dtype=x_t.dtype, device=x_t.device)
    s, r = a.sqrt(), (1 - a).sqrt()
    if prediction == "eps":
        return (x_t - r * out) / s, out
    if prediction == "v":
        return s * x_t - r * out, r * x_t + s * out
    raise ValueError(f"unknown prediction '{prediction}'; use eps or v")


class NoiseSchedule:
    """A discrete schedule of ``timesteps`` noise levels: ``betas`` and ``alphas_cumprod`` (float64).

    ``alpha_bar(t)`` is 1 for ``t < 0`` (clean data): the value the last sampling step goes to.
    """

    def __init__(self, kind: Schedule = "cosine", timesteps: int = 1000):
        self.kind, self.timesteps = kind, int(timesteps)
        self.betas = beta_schedule(kind, self.timesteps)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, dim=0)

    def alpha_bar(self, t: int) -> float:
        """``alphas_cumprod[t]`` as a float (1.0 for ``t < 0``)."""
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def _rows(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``alphas_cumprod[t]`` per row, shaped to broadcast over ``like``."""
        a = self.alphas_cumprod.to(like.device)[t.long()].to(like.dtype)
        return a.view(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps`` for one timestep per row."""
        a = self._rows(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * eps

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, prediction: Prediction) -> torch.Tensor:
        """What a network trained for ``prediction`` should output at ``x_t`` (one timestep per row)."""
        if prediction == "eps":
            return eps
        if prediction == "v":
            return v_target(x0, eps, self._rows(t, x0))
        raise ValueError(f"unknown prediction '{prediction}'; use eps or v")
