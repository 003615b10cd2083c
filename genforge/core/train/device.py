"""Devices and numeric precision for training, sampling and evaluation.

``--device auto|cpu|cuda|mps`` (``cuda:N`` too): ``auto`` picks a CUDA GPU, then Apple's MPS, else
the CPU. ``--precision fp32|bf16``: bf16 runs the forward passes under ``torch.autocast`` (weights,
optimizer state and checkpoints stay fp32, so a bf16 run resumes or samples anywhere).
"""

from __future__ import annotations

import contextlib
import re

import torch

from genforge.core.errors import ConfigError

PRECISIONS = ("fp32", "bf16")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """A torch.device for ``name``; a device this machine lacks is a one-line ConfigError with the fix."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m:
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA GPU is visible to torch on this machine; "
                              f"use --device cpu (or auto, which picks a GPU when there is one)")
        index = int(m.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s), "
                              f"numbered from 0; pick one of them or use --device auto")
        return torch.device("cuda", index)
    if name == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ConfigError("--device mps: Apple's Metal backend is not available here; use --device cpu or auto")
        return torch.device("mps")
    raise ConfigError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps")


def check_precision(precision: str, device: torch.device) -> str:
    """Refuse a precision the device cannot train in, saying what to use instead."""
    if precision == "fp16":
        raise ConfigError("--precision fp16 is not supported (it needs loss scaling and overflows in GAN losses); "
                          "use --precision bf16, which has fp32's range, or fp32")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r} is unknown; use fp32 or bf16")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("--precision bf16: this GPU has no bf16 support; use --precision fp32")
    if precision == "bf16" and device.type == "mps":
        raise ConfigError("--precision bf16 is not supported on mps; use --precision fp32")
    return precision


def check_runtime(config) -> torch.device:
    """Refuse a device or precision this machine cannot train with (a TrainConfig's); returns the device."""
    device = resolve_device(config.device)
    check_precision(config.precision, device)
    return device


def autocast(device: torch.device, precision: str):
    """The context a training step runs in: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_bf16_kind() -> str:
    """What this CPU offers for bf16 matrix maths (for benchmark notes): AMX, AVX-512 BF16, or none."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:  # pragma: no cover - not Linux
        return "unknown"
    if "amx_bf16" in flags:
        return "AMX-BF16"
    if "avx512_bf16" in flags:
        return "AVX-512 BF16"
    return "no native bf16 (emulated)"
