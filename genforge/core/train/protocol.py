"""The trainer protocol: what a model must offer for the one :class:`~genforge.core.train.Trainer`.

This is the only place it is written down; :class:`~genforge.core.generator.NeuralGenerator`
implements it for every neural family, and the Trainer checks it up front instead of discovering
methods at run time.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from genforge.core.train.batches import BatchSource


@runtime_checkable
class Trainable(Protocol):
    """A model the Trainer can drive.

    * ``name`` — the registry name (written into checkpoints);
    * ``train_batch_size`` — examples per step *per process*; ``batch_multiple`` — that batch is
      rounded down to a multiple of it (CTGAN's pac);
    * ``build()`` — create the networks for the adopted data (no-op when they exist);
    * ``to(device)`` — move the networks (before ``configure_optimizers``);
    * ``configure_optimizers()`` then ``optimizers`` — named optimizers (checkpointed by name);
    * ``state_modules()`` — every module the checkpoint holds (networks, EMA copies);
    * ``batch_source(data)`` — a :class:`~genforge.core.train.batches.BatchSource` over the data;
    * ``train_step(x, y)`` — one optimisation step on a batch already on the device; returns
      detached scalar losses; it draws noise through :mod:`genforge.core.train.distributed`;
    * ``train()`` / ``eval()`` — module modes;
    * ``save_weights(run)`` — write ``model.safetensors`` (the sampling weights) into a run.
    """

    name: str
    optimizers: dict[str, torch.optim.Optimizer]

    @property
    def train_batch_size(self) -> int: ...

    @property
    def batch_multiple(self) -> int: ...

    def build(self) -> None: ...

    def to(self, device: torch.device) -> None: ...

    def configure_optimizers(self) -> None: ...

    def state_modules(self) -> dict[str, nn.Module]: ...

    def batch_source(self, data) -> BatchSource: ...

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]: ...

    def train(self) -> None: ...

    def eval(self) -> None: ...

    def save_weights(self, run) -> None: ...
