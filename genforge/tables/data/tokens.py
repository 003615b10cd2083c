"""Table cells as tokens: one small vocabulary per column, for the autoregressive table model.

Built on a fitted :class:`~genforge.tables.data.transform.TableTransformer` (which keeps the fidelity rules):

* **categorical / boolean**: one token per label of the transformer (rare categories pooled into
  ``__other__``, which decodes to one of them by frequency; missing is ``__missing__``);
* **numbers and dates** (epoch seconds): a column with at most ``bins`` distinct values gets one token per
  value (decoded exactly: Adult's ages, years of education, hours). Otherwise values holding at least
  ``1/bins`` of the rows (``capital_gain = 0``) are tokens of their own, and the rest are cut into quantile
  bins; a bin decodes to a value drawn from the bin's own ``refine``-point quantile grid, so the distribution
  inside each bin is the real one. Missing cells are one more token.
* **id / text** columns are not modelled (the transformer makes them up).

The fitted layout is plain JSON (validated at load by :mod:`~genforge.tables.data.state`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genforge.tables.data.rules import key, value_keys


def _numeric_spec(values: np.ndarray, bins: int, refine: int) -> dict:
    present = values[~np.isnan(values)]
    uniq, counts = np.unique(present, return_counts=True)
    if len(uniq) <= bins:
        return {"points": uniq.tolist(), "edges": [], "grids": []}
    points = uniq[counts / len(present) >= 1.0 / bins]
    rest = np.sort(present[~np.isin(present, points)])
    edges = np.unique(np.quantile(rest, np.linspace(0, 1, bins - len(points) + 1)))
    if len(edges) < 2:
        edges = np.array([rest[0], rest[-1]])
    which = np.clip(np.searchsorted(edges, rest, side="left") - 1, 0, len(edges) - 2)
    qs = np.linspace(0, 1, refine + 1)
    grids = [np.quantile(rest[which == i], qs).tolist() if (which == i).any()
             else np.linspace(edges[i], edges[i + 1], refine + 1).tolist() for i in range(len(edges) - 1)]
    return {"points": points.tolist(), "edges": edges.tolist(), "grids": grids}


class TableTokens:
    """Encode rows as ``(n, columns)`` token ids and decode token ids into raw values (see the module docstring)."""

    def __init__(self, transformer, specs: list[dict] | None = None):
        self.transformer = transformer
        self.specs = specs or []
        self._states = {st["name"]: st for st in transformer.columns}

    # -- layout -------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, transformer, df: pd.DataFrame, bins: int = 100, refine: int = 8) -> "TableTokens":
        """Choose every modelled column's tokens from the training rows ``df``."""
        specs = []
        for st in transformer.columns:
            if st["enc"] == "category":
                specs.append({"name": st["name"], "enc": "category", "size": len(st["labels"])})
            elif st["enc"] == "numeric":
                values = transformer.numbers(st["name"], df[st["name"]])
                spec = _numeric_spec(values, bins, refine)
                spec.update(name=st["name"], enc="numeric", missing=bool(np.isnan(values).any()))
                spec["size"] = len(spec["points"]) + max(len(spec["edges"]) - 1, 0) + spec["missing"]
                specs.append(spec)
        return cls(transformer, specs)

    @property
    def names(self) -> list[str]:
        """The modelled columns, in table order."""
        return [s["name"] for s in self.specs]

    @property
    def sizes(self) -> list[int]:
        """Each modelled column's number of tokens."""
        return [int(s["size"]) for s in self.specs]

    def missing_token(self, j: int) -> int | None:
        """The token of a missing cell in column ``j`` (None when the column had none)."""
        s = self.specs[j]
        if s["enc"] == "numeric":
            return s["size"] - 1 if s["missing"] else None
        labels = self._states[s["name"]]["labels"]
        return labels.index("__missing__") if "__missing__" in labels else None

    def to_state(self) -> dict:
        """The layout as plain JSON (validated at load by :func:`~genforge.tables.data.state.check_tokens_state`)."""
        return {"format": "genforge.table_tokens/1", "columns": self.specs}

    # -- encode -------------------------------------------------------------------------------------
    def _category_tokens(self, name: str, s: pd.Series) -> np.ndarray:
        st = self._states[name]
        lookup = {key(v): i for i, v in enumerate(st["labels"]) if v not in ("__other__", "__missing__")}
        if "__other__" in st["labels"]:
            lookup.update({key(v): st["labels"].index("__other__") for v in st["pooled"]})
        if "__missing__" in st["labels"]:
            lookup[None] = st["labels"].index("__missing__")
        keys = value_keys(s)
        return np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)

    def _numeric_tokens(self, spec: dict, values: np.ndarray) -> np.ndarray:
        points, edges = np.asarray(spec["points"], dtype=float), np.asarray(spec["edges"], dtype=float)
        out = np.full(len(values), -1, dtype=np.int64)
        present = ~np.isnan(values)
        if spec["missing"]:
            out[~present] = spec["size"] - 1
        if len(points):
            i = np.clip(np.searchsorted(points, values), 0, len(points) - 1)
            hit = present & (points[i] == values)
            out[hit] = i[hit]
        else:
            hit = np.zeros(len(values), dtype=bool)
        rest = present & ~hit
        if len(edges) >= 2:
            out[rest] = len(points) + np.clip(np.searchsorted(edges, values[rest], side="left") - 1, 0, len(edges) - 2)
        elif rest.any() and len(points):  # a value between the points of an all-points column: the nearest one
            out[rest] = np.abs(values[rest, None] - points[None, :]).argmin(1)
        return out

    def token_of(self, j: int, value) -> int:
        """The token of one cell ``value`` (a category value or a number) of column ``j``; -1 if it has none."""
        spec = self.specs[j]
        if spec["enc"] == "category":
            return int(self._category_tokens(spec["name"], pd.Series([value], dtype=object))[0])
        return int(self._numeric_tokens(spec, np.array([np.nan if value is None else float(value)]))[0])

    def encode(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, known)``: ``(n, columns)`` token ids and whether each cell could be encoded (present
        and seen; a missing cell is known only as the column's missing token)."""
        cols = []
        for spec in self.specs:
            s = df[spec["name"]]
            if spec["enc"] == "category":
                cols.append(self._category_tokens(spec["name"], s))
            else:
                cols.append(self._numeric_tokens(spec, self.transformer.numbers(spec["name"], s)))
        tokens = np.stack(cols, axis=1) if cols else np.zeros((len(df), 0), dtype=np.int64)
        return np.maximum(tokens, 0), tokens >= 0

    # -- decode -------------------------------------------------------------------------------------
    def decode(self, tokens: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Raw values (floats, epoch seconds for dates, NaN missing; category values) of ``(n, columns)`` tokens."""
        raw = {}
        for j, spec in enumerate(self.specs):
            t = tokens[:, j]
            if spec["enc"] == "category":
                raw[spec["name"]] = self.transformer.decode_category(self._states[spec["name"]], t, rng)
                continue
            points, grids = np.asarray(spec["points"], dtype=float), np.asarray(spec["grids"], dtype=float)
            values = np.full(len(t), np.nan)
            is_point = t < len(points)
            values[is_point] = points[t[is_point]]
            in_bin = ~is_point & (t < len(points) + len(grids))
            if in_bin.any():
                g = grids[t[in_bin] - len(points)]
                pos = rng.random(int(in_bin.sum())) * (g.shape[1] - 1)
                k = np.minimum(pos.astype(int), g.shape[1] - 2)
                rows = np.arange(len(g))
                values[in_bin] = g[rows, k] + (pos - k) * (g[rows, k + 1] - g[rows, k])
            raw[spec["name"]] = values
        return raw
