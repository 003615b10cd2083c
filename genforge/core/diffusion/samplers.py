"""Samplers of a trained denoiser: DDPM ancestral steps, deterministic DDIM steps, guidance, the loop.

A sampler never sees the network: it calls ``predict(x_t, t)`` (one timestep tensor per row) and
turns the output into ``(x0, eps)`` with :func:`~genforge.core.diffusion.schedule.to_x0_eps`.

* :func:`ddpm_step` — one step of the reverse Markov chain (Ho et al. 2020), with the posterior
  variance ("fixed small"); on a sub-sequence of timesteps the betas are those of the respaced
  chain, ``1 - a_t / a_prev`` (Nichol & Dhariwal 2021);
* :func:`ddim_step` — the DDIM update (Song et al. 2021); ``eta = 0`` is deterministic;
* :func:`sampling_timesteps` — the timesteps a few-step sampler visits ("trailing" spacing: the
  first is always ``T - 1``, the noisiest, which matches the pure noise the sampler starts from);
* :func:`guided` — classifier-free guidance (Ho & Salimans 2022) around a conditional ``predict``;
* :func:`row_noise` — per-row noise streams, so that a sample does not depend on its batch;
* :func:`denoise` — the loop.
"""

from __future__ import annotations

import math
from typing import Callable, Literal

import torch

from genforge.core.diffusion.schedule import NoiseSchedule, Prediction, to_x0_eps

Sampler = Literal["ddim", "ddpm"]
Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def sampling_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` timesteps from ``timesteps - 1`` down, evenly spaced ("trailing"): 1000, 10 -> 999, 899, ..., 99."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be between 1 and {timesteps}, got {steps}")
    return [int(round(timesteps - i * timesteps / steps)) - 1 for i in range(steps)]


def ddim_step(x_t: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, a_t: float, a_prev: float,
              eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """``x_prev`` from ``x_t`` and the predicted ``(x0, eps)``; ``eta = 0`` adds no noise (deterministic)."""
    sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) if eta else 0.0
    x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma ** 2, 0.0)) * eps
    return x + sigma * noise if sigma else x


def ddpm_step(x_t: torch.Tensor, x0: torch.Tensor, a_t: float, a_prev: float,
              noise: torch.Tensor | None) -> torch.Tensor:
    """``x_prev`` drawn from the posterior ``q(x_prev | x_t, x0)`` with the predicted ``x0``.

    ``noise`` (standard normal, like ``x_t``) is not used on the last step (``a_prev = 1``: no variance).
    """
    beta = 1 - a_t / a_prev
    mean = (math.sqrt(a_prev) * beta / (1 - a_t)) * x0 + (math.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t)) * x_t
    var = beta * (1 - a_prev) / (1 - a_t)
    return mean + math.sqrt(var) * noise if var > 0 else mean


def guided(predict: Callable, y: torch.Tensor | None, weight: float) -> Predict:
    """``predict(x, t, y)`` with classifier-free guidance: ``out(None) + weight * (out(y) - out(None))``,
    where ``predict(x, t, None)`` is the unconditional model (the null class).

    ``weight`` 1 is the plain conditional model (one network call), 0 the unconditional one, above 1
    stronger class guidance (two calls per step). The two calls are made separately, not as one batch,
    so that each row meets the network at the same position whatever the chunking of a draw.
    """
    if y is None or weight == 1:
        return lambda x, t: predict(x, t, y)
    if weight == 0:
        return lambda x, t: predict(x, t, None)

    def both(x, t):
        uncond = predict(x, t, None)
        return uncond + weight * (predict(x, t, y) - uncond)

    return both


def row_noise(seeds: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``noise(x)``: standard normal noise like ``x`` whose row ``i`` comes from its own generator seeded
    with ``seeds[i]``, so a row's noise never depends on which other rows share its batch."""
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds.tolist()]

    def draw(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens]).to(x.device, x.dtype)

    return draw


@torch.no_grad()
def denoise(predict: Predict, x: torch.Tensor, schedule: NoiseSchedule, steps: int, *,
            sampler: Sampler = "ddim", prediction: Prediction = "eps", eta: float = 0.0,
            noise: Callable[[torch.Tensor], torch.Tensor] | None = None,
            clip: float | None = 1.0) -> torch.Tensor:
    """Run ``steps`` sampler steps from pure noise ``x`` (at timestep ``T - 1``) to clean data.

    ``noise(x)`` draws standard normal noise like ``x`` (``ddpm``, or ``ddim`` with ``eta > 0``);
    ``clip`` bounds the predicted ``x0`` to ``[-clip, clip]`` (data in [-1, 1]; None: no bound), and the
    noise estimate is recomputed from the bounded ``x0``.
    """
    ts = sampling_timesteps(schedule.timesteps, steps)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        a_t, a_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
        out = predict(x, torch.full((len(x),), t, device=x.device, dtype=torch.long)).to(x.dtype)
        x0, eps = to_x0_eps(x, out, a_t, prediction)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        if sampler == "ddpm":
            x = ddpm_step(x, x0, a_t, a_prev, noise(x) if t_prev >= 0 else None)
        elif sampler == "ddim":
            x = ddim_step(x, x0, eps, a_t, a_prev, eta, noise(x) if eta and t_prev >= 0 else None)
        else:
            raise ValueError(f"unknown sampler '{sampler}'; use ddim or ddpm")
    return x
