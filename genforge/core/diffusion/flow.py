"""Conditional flow matching on straight paths (rectified flow; Lipman et al. 2023, Liu et al. 2023).

Time runs from ``t = 0`` (noise ``x0 ~ N(0, I)``) to ``t = 1`` (data ``x1``) on the straight line
``x_t = (1 - t) x0 + t x1``; a network learns the velocity ``x1 - x0`` of that line at ``x_t``, and
sampling integrates ``dx/dt = v(x, t)`` from noise with a few Euler or Heun steps.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch

Method = Literal["euler", "heun"]
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(1 - t) x0 + t x1`` with one ``t`` per row (``x0`` noise at ``t = 0``, ``x1`` data at ``t = 1``)."""
    t = t.to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))
    return (1 - t) * x0 + t * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """The velocity of the straight path from ``x0`` to ``x1``: ``x1 - x0``."""
    return x1 - x0


def euler_step(velocity: Velocity, x: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One Euler step of ``dx/dt = velocity(x, t)`` from ``t`` to ``t_next``."""
    return x + (t_next - t) * velocity(x, _times(x, t))


def heun_step(velocity: Velocity, x: torch.Tensor, t: float, t_next: float) -> torch.Tensor:
    """One Heun step (explicit trapezoid: an Euler guess, then the mean of both slopes); second order."""
    dt = t_next - t
    v = velocity(x, _times(x, t))
    v_next = velocity(x + dt * v, _times(x, t_next))
    return x + dt * 0.5 * (v + v_next)


def _times(x: torch.Tensor, t: float) -> torch.Tensor:
    return torch.full((len(x),), t, device=x.device, dtype=x.dtype)


@torch.no_grad()
def integrate(velocity: Velocity, x: torch.Tensor, steps: int, method: Method = "euler") -> torch.Tensor:
    """Carry noise ``x`` (``t = 0``) to data (``t = 1``) in ``steps`` equal steps of ``method``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    step = {"euler": euler_step, "heun": heun_step}.get(method)
    if step is None:
        raise ValueError(f"unknown method '{method}'; use euler or heun")
    for i in range(steps):
        x = step(velocity, x, i / steps, (i + 1) / steps)
    return x
