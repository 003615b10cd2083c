"""Imputation for every table model: fill the missing cells of rows from the model, given their present cells.

:func:`impute` is the public ``model.impute(df)``: present cells are never changed, the rows' rules are kept
around them (:func:`rules_around`), and each model fills holes with its own ``impute_rows``: by default
:func:`candidate_fill` (candidates drawn conditioned on the row's present categories, the one closest on its
present numbers kept); the copula and the autoregressive model override it with an exact conditional. The
functions are bound as :class:`~genforge.tables.models.base.TableGenerator` methods (``self`` is the model).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from genforge.core.config import check_seed
from genforge.tables.data.columns import settle_dtype
from genforge.tables.data.rules import value_keys

CONDITIONABLE = ("categorical", "boolean")  # the kinds a row's present cells condition candidates on
CANDIDATES = 16     # drawn per row by candidate_fill ...
ROWS_PER_CALL = 2048  # ... for this many rows at a time


def impute(self, df: pd.DataFrame, *, seed: int | None = None) -> pd.DataFrame:
    """Fill the missing cells of ``df`` with values drawn from the model given the row's present cells.

    Present cells are never changed; columns must match the training table.
    """
    check_seed(seed)
    self._check_columns(df)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    out = df.copy()
    holes = df.isna()
    rows = np.flatnonzero(holes.to_numpy().any(1))
    if len(rows) == 0:
        return out
    incomplete = df.iloc[rows].reset_index(drop=True)
    filled = self.rules_around(incomplete, self.impute_rows(incomplete, rng, gen), rng)
    for j, col in enumerate(df.columns):
        mask = holes[col].to_numpy()[rows]
        if mask.any():
            vals = filled[col].to_numpy()[mask]
            if out[col].dtype != filled[col].dtype:
                out[col] = out[col].astype(filled[col].dtype) if df[col].isna().all() else out[col].astype(object)
            out.iloc[rows[mask], j] = vals
            out[col] = settle_dtype(out[col], filled[col].dtype)
    return out

def rules_around(self, rows: pd.DataFrame, filled: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """``filled`` (the model's rows for ``rows``) with the columns rules name decoded through the rules around
    ``rows``' present cells, which stay as they are."""
    from genforge.tables.data.rule_repair import grid_steps, repair

    names = sorted({c for r in self.rules.rules for c in r.names()})
    if not names:
        return filled
    present = rows[names].notna().to_numpy()
    raw = {}
    for st in self.transformer.columns:
        if st["enc"] not in ("numeric", "category"):
            continue
        c = st["name"]
        cells = filled[c].astype(object).where(~rows[c].notna(), rows[c].astype(object)) if c in names else filled[c]
        raw[c] = self.transformer.numbers(c, cells) if st["enc"] == "numeric" else value_keys(cells)
    masks = {c: present[:, j] for j, c in enumerate(names)}
    repair(self.rules, self.schema, raw, masks, rng, grid_steps(self.schema, self.transformer.columns))
    done = self.transformer.decode_values(raw, len(rows), rng)
    return filled.assign(**{c: done[c].to_numpy() for c in names})

def candidate_fill(self, rows: pd.DataFrame, rng: np.random.Generator, gen: torch.Generator) -> pd.DataFrame:
    """Candidates conditioned on each row's present categorical cells, the closest on its present
    numbers chosen; subclasses with a better conditional (the copula) override this.

    Batched: the candidates of many rows are drawn in one call (with one condition per row when the
    model takes ``row_conditions``, else one call per distinct condition) and scored together."""
    k, most = 16, 2048  # candidates per row; rows per call
    cols = list(rows.columns)
    kinds = [self.schema[c].kind for c in cols]
    present = rows.notna().to_numpy()
    seen: dict[tuple, bool] = {}

    def can_condition(c, v) -> bool:
        key = (c, type(v).__name__, str(v))
        if key not in seen:
            seen[key] = self._seen(c, v)
        return seen[key]

    condable = [j for j, kind in enumerate(kinds) if kind in CONDITIONABLE]
    conds = [{cols[j]: rows.iat[r, j] for j in condable if present[r, j] and can_condition(cols[j], rows.iat[r, j])}
             for r in range(len(rows))]
    groups: dict[tuple, list[int]] = {}
    for r, cond in enumerate(conds):
        groups.setdefault(() if self.row_conditions else tuple(cond.items()), []).append(r)
    numbers = {j: pd.to_numeric(rows[cols[j]], errors="coerce").to_numpy(dtype=float)
               for j, kind in enumerate(kinds) if kind in ("continuous", "integer") and present[:, j].any()}
    picked = []
    for members in (np.asarray(g[i:i + most]) for g in groups.values() for i in range(0, len(g), most)):
        m = len(members)
        owner = np.repeat(members, k)  # the row each candidate is drawn for: k in a row
        cond = conds[members[0]]
        if self.row_conditions:
            cond = [conds[r] for r in owner] if any(conds[r] for r in members) else {}
        cand = self.sample_frame(m * k, cond, rng, gen)
        # candidates that leave a hole of the row empty come last (the model may draw "missing")
        d = np.zeros(m * k)
        for j, c in enumerate(cols):
            hole = ~present[owner, j]
            if kinds[j] != "text" and hole.any():
                d += (cand[c].isna().to_numpy() & hole) * 1e6
        dist = np.zeros(m * k)
        for j, want in numbers.items():
            on = present[owner, j]
            if on.any():
                span = (self.schema[cols[j]].max or 1) - (self.schema[cols[j]].min or 0) or 1
                got = pd.to_numeric(cand[cols[j]], errors="coerce").fillna(0).to_numpy(dtype=float)
                dist += np.where(on, ((got - want[owner]) / span) ** 2, 0.0)
        d = d + dist
        best = d.reshape(m, k).argmin(1) + np.arange(m) * k
        picked.append(cand.iloc[best].set_axis(members))
    return pd.concat(picked).sort_index()
