"""Filling the masked part of an image with a trained denoiser or flow, the visible part held to the given pixels.

* :func:`repaint` (Lugmayr et al. 2022, RePaint): run the ancestral DDPM chain; after each step the visible
  pixels are replaced by the *given* image noised to the same level, so the model only ever invents the
  masked ones, conditioned on what it sees; ``resample`` times per step the result is noised back one
  step and denoised again, which lets the invented part agree with the visible part.
* :func:`flow_inpaint`: the same idea on a straight-path flow: the visible pixels follow the line from the
  starting noise to the given image, ``x_t = (1 - t) x0 + t x_known``, the masked ones follow the model.

``mask`` is 1 where a pixel is to be filled and 0 where it is given; both return the image at the end of
the chain, whose visible pixels the caller replaces by the given ones exactly.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from genforge.core.diffusion.flow import Velocity, interpolate
from genforge.core.diffusion.samplers import Predict, ddpm_step, sampling_timesteps
from genforge.core.diffusion.schedule import NoiseSchedule, Prediction, to_x0_eps

Noise = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def repaint(predict: Predict, known: torch.Tensor, mask: torch.Tensor, x: torch.Tensor, schedule: NoiseSchedule,
            steps: int, *, prediction: Prediction, noise: Noise, resample: int = 4) -> torch.Tensor:
    """RePaint from pure noise ``x`` over ``steps`` respaced timesteps (see the module docstring)."""
    ts = sampling_timesteps(schedule.timesteps, steps)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        a_t, a_prev = schedule.alpha_bar(t), schedule.alpha_bar(t_prev)
        for r in range(resample):
            out = predict(x, torch.full((len(x),), t, device=x.device, dtype=torch.long)).to(x.dtype)
            x0, _ = to_x0_eps(x, out, a_t, prediction)
            unknown = ddpm_step(x, x0.clamp(-1, 1), a_t, a_prev, noise(x) if t_prev >= 0 else None)
            seen = math.sqrt(a_prev) * known + (math.sqrt(1 - a_prev) * noise(x) if t_prev >= 0 else 0)
            x_prev = mask * unknown + (1 - mask) * seen
            if r + 1 < resample and t_prev >= 0:  # back up one step: x_t ~ q(x_t | x_prev)
                keep = a_t / a_prev
                x = math.sqrt(keep) * x_prev + math.sqrt(1 - keep) * noise(x)
            else:
                x = x_prev
    return x


@torch.no_grad()
def flow_inpaint(velocity: Velocity, known: torch.Tensor,
                 mask: torch.Tensor, x0: torch.Tensor, steps: int) -> torch.Tensor:
    """Euler steps from noise ``x0`` (``t = 0``) to ``t = 1``, the visible pixels on their straight line."""
    x = x0
    for i in range(steps):
        t, t_next = i / steps, (i + 1) / steps
        x = x + (t_next - t) * velocity(x, torch.full((len(x),), t, device=x.device, dtype=x.dtype))
        line = interpolate(x0, known, torch.full((len(x),), t_next, device=x.device))
        x = mask * x + (1 - mask) * line
    return x
