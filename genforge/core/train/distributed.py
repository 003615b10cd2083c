"""Data-parallel training over several processes with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Processes are started by PyTorch's elastic launcher (``torchrun``, or ``genforge train --nproc N``,
which calls the same launcher). Each process holds the full model; the trainer draws the *global*
batch from the shared seed and every process trains on its own slice of it (:func:`shard`);
gradients are averaged across processes just before each optimizer step (:func:`average_gradients_before_step`),
which is what DistributedDataParallel does, done at the optimizer so that models keep their own
training steps (several optimizers, gradient penalties, frozen networks). Noise that a training step
draws goes through :func:`randn` / :func:`rand`, which draw it for the global batch and slice it the
same way, so N processes with batch B each follow 1 process with batch N*B up to float rounding.
BatchNorm statistics stay per process (as in DDP without SyncBatchNorm). Only rank 0 writes files.

With one process every function here is a plain pass-through (no ``torch.distributed`` at all).
"""

from __future__ import annotations

import os
from typing import Iterable

import torch
import torch.distributed as dist

from genforge.core.errors import GenforgeError

_DEVICE = torch.device("cpu")  # where collective tensors live (the GPU with NCCL)


class PeerLost(GenforgeError):
    """Another training process stopped (killed, or failed with its own error): this one stops quietly;
    the launcher reports the failure once, with where the last checkpoint is."""


def launched() -> bool:
    """Whether this process was started by torchrun as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else int(os.environ.get("RANK", "0")) if launched() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def world_size_planned() -> int:
    """The number of processes this run trains with, known before the process group is joined."""
    return world() if active() else int(os.environ.get("WORLD_SIZE", "1")) if launched() else 1


def is_writer() -> bool:
    """Rank 0 (or the only process): the one that writes the run directory and prints."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun; returns the device this process uses."""
    if not launched() or active():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    global _DEVICE
    _DEVICE = device if device.type == "cuda" else torch.device("cpu")
    return device


def shutdown() -> None:
    """Leave the process group (a no-op when not in one)."""
    if active():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - a peer already gone; nothing left to release
            pass


def shard(t: torch.Tensor | None) -> torch.Tensor | None:
    """This process's rows of a global batch (all of it with one process)."""
    if t is None or world() == 1:
        return t
    b = t.shape[0] // world()
    return t[rank() * b:(rank() + 1) * b]


def randn(b: int, *shape: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """Standard normal noise for this process's ``b`` rows, drawn from the global CPU generator for the
    whole global batch (so results do not depend on the process count or the device)."""
    x = shard(torch.randn(b * world(), *shape))
    return x if like is None else x.to(device=like.device)


def rand(b: int, *shape: int, like: torch.Tensor | None = None) -> torch.Tensor:
    """Uniform [0, 1) noise, drawn like :func:`randn`."""
    x = shard(torch.rand(b * world(), *shape))
    return x if like is None else x.to(device=like.device)


def _flat_all_reduce_mean(tensors: list[torch.Tensor]) -> None:
    if not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients_before_step(optimizers: Iterable[torch.optim.Optimizer]) -> list:
    """Hook every optimizer so that its ``step()`` first averages its gradients over all processes
    (one flat all-reduce per step). Returns the hook handles (``.remove()`` to undo)."""
    if world() == 1:
        return []

    def hook(opt, args, kwargs):
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        _flat_all_reduce_mean(grads)

    return [opt.register_step_pre_hook(hook) for opt in optimizers]


def broadcast_modules(modules: dict[str, torch.nn.Module]) -> None:
    """Make every process start from rank 0's weights and buffers."""
    if world() == 1:
        return
    for mod in modules.values():
        for t in mod.state_dict().values():
            dist.broadcast(t, 0)


def mean_over_processes(values: dict[str, float]) -> dict[str, float]:
    """Average logged losses over processes (a no-op with one)."""
    if world() == 1 or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_DEVICE)
    dist.all_reduce(t)
    return {k: float(v) / world() for k, v in zip(keys, t.tolist())}


def anywhere(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any (one small all-reduce per call)."""
    if world() == 1:
        return flag
    t = torch.tensor([1 if flag else 0], device=_DEVICE)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def peer_failure(err: BaseException) -> bool:
    """Whether ``err`` says another process of the group is gone (not a bug of this one)."""
    if world() == 1:
        return False
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err)
    return any(s in text for s in ("Connection closed by peer", "Connection reset by peer", "NCCL", "gloo",
                                   "Broken pipe"))


def agree(flag: bool) -> bool:
    """Rank 0's decision, shared by all (e.g. 'the time budget is spent')."""
    if world() == 1:
        return flag
    t = torch.tensor([1 if flag else 0], device=_DEVICE)
    dist.broadcast(t, 0)
    return bool(t.item())
