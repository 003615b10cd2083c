"""Diffusion and flow-matching maths shared by every modality (images today, tables next).

Nothing here knows about networks or data: a sampler gets a ``predict(x, t)`` function and tensors.

* :mod:`~genforge.core.diffusion.schedule` — beta schedules (linear, cosine), ``alphas_cumprod``,
  forward noising and the conversions between epsilon-, v- and x0-predictions;
* :mod:`~genforge.core.diffusion.samplers` — the DDPM ancestral step, the deterministic DDIM step,
  the timesteps a few-step sampler visits, classifier-free guidance and the denoising loop;
* :mod:`~genforge.core.diffusion.flow` — conditional flow matching on straight paths: interpolation,
  the velocity target, and Euler / Heun integration.
"""

from genforge.core.diffusion.schedule import NoiseSchedule, beta_schedule
from genforge.core.diffusion.samplers import denoise, guided, sampling_timesteps
from genforge.core.diffusion.flow import integrate, interpolate, velocity_target

__all__ = ["NoiseSchedule", "beta_schedule", "denoise", "guided", "sampling_timesteps", "integrate",
           "interpolate", "velocity_target"]
