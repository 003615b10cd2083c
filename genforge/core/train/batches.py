"""Batch sources: where the Trainer's batches come from. A model picks one in ``batch_source(data)``.

Every source draws the *global* batch (all processes together) from the trainer's seeded
``torch.Generator``; with several processes each takes its own slice (see
:mod:`genforge.core.train.distributed`), so data order does not depend on the process count.
Each source can save and restore its position exactly (tensors + JSON, no pickle).

* :class:`TensorBatches` — in-memory tensors, a fresh permutation each epoch (images, encoded tables);
* :class:`SamplerBatches` — the model chooses the rows (CTGAN's training-by-sampling);
* :class:`TokenWindows` — random fixed-length windows over a 1-D token stream, memory-mapped from
  disk when the corpus is large (language models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch

from genforge.core.errors import DataError

Batch = tuple[torch.Tensor, "torch.Tensor | None"]


@runtime_checkable
class BatchSource(Protocol):
    """What the Trainer asks of a batch source."""

    def __len__(self) -> int:
        """Number of examples (rows, images, token positions): caps the batch size."""

    def next(self, batch_size: int, gen: torch.Generator) -> Batch:
        """The next global batch ``(x, y or None)`` of ``batch_size`` examples."""

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Position in the data, as tensors and JSON (for the checkpoint)."""

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""


class TensorBatches:
    """Batches from in-memory tensors ``x`` (and labels ``y``): shuffled without replacement, a new
    permutation each epoch (like ``DataLoader(shuffle=True, drop_last=True)``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None):
        self.x, self.y = x, y
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def __len__(self) -> int:
        return len(self.x)

    def next(self, batch_size: int, gen: torch.Generator) -> Batch:
        n = len(self.x)
        if self.perm is None or self.pos + batch_size > n:
            self.perm = torch.randperm(n, generator=gen)
            self.pos = 0
        idx = self.perm[self.pos:self.pos + batch_size]
        self.pos += batch_size
        return self.x[idx], (self.y[idx] if self.y is not None else None)

    def state(self):
        return ({"data.perm": self.perm} if self.perm is not None else {}), {"pos": self.pos}

    def load_state(self, tensors, meta):
        self.perm = tensors.get("data.perm")
        self.pos = int(meta.get("pos", 0))


class SamplerBatches:
    """Batches the model draws itself: ``sample(batch_size, gen) -> (x, y)`` over ``n`` examples.

    Its only state is the trainer's generator, which the checkpoint already holds."""

    def __init__(self, sample: Callable[[int, torch.Generator], Batch], n: int):
        self.sample, self.n = sample, n

    def __len__(self) -> int:
        return self.n

    def next(self, batch_size: int, gen: torch.Generator) -> Batch:
        return self.sample(batch_size, gen)

    def state(self):
        return {}, {}

    def load_state(self, tensors, meta):
        pass


class TokenWindows:
    """Random windows of ``block_size`` tokens over a 1-D token stream; ``y`` is ``x`` shifted by one.

    ``tokens`` is a 1-D integer tensor or numpy array (a ``np.memmap`` keeps a large corpus on
    disk: only the windows drawn are read). Draws are with replacement, as nanoGPT does.
    """

    def __init__(self, tokens, block_size: int):
        if block_size < 1:
            raise DataError(f"block_size must be at least 1, got {block_size}")
        n = len(tokens)
        if n < block_size + 1:
            raise DataError(f"the text has {n} tokens; a window of {block_size} needs at least {block_size + 1} "
                            f"(use more text or a smaller block_size)")
        self.tokens, self.block_size = tokens, int(block_size)

    @classmethod
    def from_file(cls, path: str | Path, block_size: int, dtype: str = "uint16") -> "TokenWindows":
        """Windows over a flat binary token file (e.g. uint16 ids), memory-mapped, never read whole."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"token file '{p}' does not exist; write the encoded corpus first")
        itemsize = np.dtype(dtype).itemsize
        if p.stat().st_size % itemsize:
            raise DataError(f"token file '{p}' is not a whole number of {dtype} values; it is damaged")
        return cls(np.memmap(p, dtype=dtype, mode="r"), block_size)

    def __len__(self) -> int:
        return len(self.tokens) - self.block_size

    def next(self, batch_size: int, gen: torch.Generator) -> Batch:
        starts = torch.randint(len(self.tokens) - self.block_size, (batch_size,), generator=gen)
        if torch.is_tensor(self.tokens):
            offsets = torch.arange(self.block_size + 1)
            win = self.tokens[starts[:, None] + offsets].long()
        else:
            win = torch.from_numpy(np.stack([np.asarray(self.tokens[s:s + self.block_size + 1], dtype=np.int64)
                                             for s in starts.tolist()]))
        return win[:, :-1], win[:, 1:]

    def state(self):
        return {}, {}

    def load_state(self, tensors, meta):
        pass
