"""Conditional vectors for the neural table models (CTGAN's training-by-sampling, extended).

The conditional vector concatenates a one-hot block per conditionable (categorical/boolean)
column. CTGAN conditions on one column at a time; genforge additionally conditions on each
other column of the same real row with probability ``p_extra``, so a model learns joint
conditionals and ``where={"sex": "Female", "income": ">50K"}`` is answered directly instead
of by rejection sampling.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from genforge.core.errors import ConfigError


class CondSpec:
    """Layout of the conditional vector and the row indices per category, built from encoded data."""

    def __init__(self, transformer, x: torch.Tensor | None = None):
        self.blocks = [(col, start, end, list(labels)) for col, start, end, labels in transformer.discrete_blocks()]
        sizes = [end - start for _, start, end, _ in self.blocks]
        self.offsets = np.cumsum([0] + sizes)[:-1].astype(np.int64)
        self.dim = int(sum(sizes))
        self.transformer = transformer
        if x is not None and self.blocks:
            self.fit(x)

    def cats_of(self, x: torch.Tensor) -> torch.Tensor:
        """The category index of every conditionable column in encoded rows ``x``: ``(n, blocks)``."""
        return torch.stack([x[:, s:e].argmax(1) for _, s, e, _ in self.blocks], dim=1)

    def fit(self, x: torch.Tensor) -> None:
        """Per-row categories, log-frequency sampling tables and row lists per category."""
        cats = self.cats_of(x)
        self.row_cats = cats
        kmax = max(e - s for _, s, e, _ in self.blocks)
        counts = torch.zeros(len(self.blocks), kmax)
        for b in range(len(self.blocks)):
            counts[b, : self.blocks[b][2] - self.blocks[b][1]] = torch.bincount(cats[:, b], minlength=self.blocks[b][2] - self.blocks[b][1]).float()
        self.set_freq(counts / counts.sum(1, keepdim=True))
        logf = torch.where(counts > 0, torch.log1p(counts), torch.zeros_like(counts))
        self.log_freq = logf / logf.sum(1, keepdim=True)
        # rows sorted by (block, category): flat index + start/count per (block, category)
        order, starts, lens = [], torch.zeros(len(self.blocks), kmax, dtype=torch.long), counts.long()
        pos = 0
        for b in range(len(self.blocks)):
            idx = torch.argsort(cats[:, b], stable=True)
            order.append(idx)
            starts[b] = pos + torch.cumsum(torch.cat([torch.zeros(1), counts[b, :-1]]), 0).long()
            pos += len(idx)
        self.rows_flat = torch.cat(order)
        self.starts, self.lens = starts, lens

    @property
    def kmax(self) -> int:
        return max((e - s for _, s, e, _ in self.blocks), default=0)

    def set_freq(self, freq: torch.Tensor) -> None:
        """Real category frequencies per block ``(blocks, kmax)`` (saved with the model)."""
        self.freq = freq
        self.last_nonzero = ((freq > 0) * torch.arange(freq.shape[1])).max(1).values

    def sample_training(self, batch: int, gen: torch.Generator, p_extra: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(row indices, cond vectors)``: a column uniformly, a category by log-frequency, a real row
        with that category; for half the rows, the row's other columns join the condition with
        probability ``p_extra``."""
        nb = len(self.blocks)
        b = torch.randint(nb, (batch,), generator=gen)
        cum = self.log_freq.cumsum(1)[b]
        c = torch.searchsorted(cum, torch.rand(batch, 1, generator=gen)).squeeze(1)
        c = torch.minimum(c, self.last_nonzero[b])  # guards against rounding past the last category
        pick = (torch.rand(batch, generator=gen) * self.lens[b, c]).long()
        rows = self.rows_flat[self.starts[b, c] + pick]
        # half the rows keep CTGAN's single-column condition (what unconditional sampling uses),
        # the other half add the row's other columns with probability p_extra (joint conditions)
        joint = torch.rand(batch, 1, generator=gen) < 0.5
        mask = (torch.rand(batch, nb, generator=gen) < p_extra) & joint
        mask[torch.arange(batch), b] = True
        return rows, self.vectors(self.row_cats[rows], mask)

    def vectors(self, cats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Cond vectors from per-block categories ``(n, blocks)`` where ``mask`` is set."""
        cond = torch.zeros(len(cats), self.dim)
        off = torch.as_tensor(self.offsets)
        r, bidx = mask.nonzero(as_tuple=True)
        cond[r, off[bidx] + cats[r, bidx]] = 1.0
        return cond

    def sample_original(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """Unconditional generation as CTGAN does it: one column, a category by its real frequency."""
        nb = len(self.blocks)
        b = torch.randint(nb, (n,), generator=gen)
        c = torch.searchsorted(self.freq.cumsum(1)[b], torch.rand(n, 1, generator=gen)).squeeze(1)
        c = torch.minimum(c, self.last_nonzero[b])
        mask = torch.zeros(n, nb, dtype=torch.bool)
        mask[torch.arange(n), b] = True
        cats = torch.zeros(n, nb, dtype=torch.long)
        cats[torch.arange(n), b] = c
        return self.vectors(cats, mask)

    def from_where(self, n: int, where: dict | list[dict]) -> torch.Tensor:
        """Cond vectors asking for ``where``'s values (categorical/boolean columns): one dict for
        all ``n`` rows, or a list of ``n`` dicts, one per row (rows may name different columns)."""
        cats = torch.zeros(n, len(self.blocks), dtype=torch.long)
        mask = torch.zeros(n, len(self.blocks), dtype=torch.bool)
        names = [col for col, *_ in self.blocks]
        per_row = isinstance(where, list)
        if per_row and len(where) != n:
            raise ValueError(f"got {len(where)} conditions for {n} rows")
        codes: dict[tuple, int] = {}  # each (column, value) is encoded once
        for r, row_where in enumerate(where if per_row else [where]):
            for col, value in row_where.items():
                if col not in names:
                    raise ConfigError(f"column '{col}' cannot be conditioned on by this model")
                b = names.index(col)
                key = (col, type(value).__name__, str(value))
                if key not in codes:
                    codes[key] = self.transformer.encode_condition(col, value)[2]
                rows = r if per_row else slice(None)
                cats[rows, b] = codes[key]
                mask[rows, b] = True
        return self.vectors(cats, mask)

    def cond_loss(self, logits_by_block: list[torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the generated category logits against the conditioned categories."""
        total, count = logits_by_block[0].new_zeros(()), 0
        for (_, s, e, _), off, logits in zip(self.blocks, self.offsets, logits_by_block):
            target = cond[:, off:off + (e - s)]
            on = target.sum(1) > 0
            if on.any():
                total = total + F.cross_entropy(logits[on], target[on].argmax(1), reduction="sum")
                count += int(on.sum())
        return total / max(count, 1)


def activate(raw: torch.Tensor, spans, tau: float = 0.2, hard: bool = False,
             gen: torch.Generator | None = None) -> torch.Tensor:
    """Apply the output activations: tanh on scalar spans, Gumbel-softmax on one-hot spans.

    ``hard=True`` (sampling) returns one-hot draws ``argmax(logits + Gumbel noise)``: the category
    distribution the generator was trained to produce. A plain argmax of the logits would give
    only each row's most likely category and collapse minority values onto the majority.
    """
    noisy = raw - torch.empty_like(raw).exponential_(generator=gen).log()  # Gumbel noise, one draw for all blocks
    outs = []
    for sp in spans:
        if sp.kind == "scalar":
            outs.append(torch.tanh(raw[:, sp.start:sp.end]))
        elif hard:
            outs.append(F.one_hot(noisy[:, sp.start:sp.end].argmax(1), sp.end - sp.start).to(raw.dtype))
        else:
            outs.append(F.softmax(noisy[:, sp.start:sp.end] / tau, dim=1))
    return torch.cat(outs, dim=1)
