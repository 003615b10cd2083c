"""The reversible encoding that neural tabular models (CTGAN, TVAE) train on.

:class:`TableTransformer` turns a table into a float32 matrix and any such matrix back into
a valid table. Per column kind:

* **continuous / integer / datetime** (dates as epoch seconds): CTGAN's mode-specific
  normalisation. A Bayesian Gaussian mixture (at most ``max_modes`` modes, fitted on at most
  20,000 values) finds the modes; a value becomes ``[scalar, one-hot mode]`` with scalar
  ``(v - mean_k) / (4 std_k)`` clipped to ``[-0.99, 0.99]``. In :meth:`transform` the mode
  of each value is *sampled from its posterior* (seeded, so a transform is reproducible):
  each mode then sees an untruncated bell of scalars, which is easier to learn than the
  clipped pieces argmax would give. **Point masses**: a value with >= 5% share (0.0 in a
  zero-inflated column, the few values of a small-range integer) is its own mode with std 0
  that decodes to exactly that value.
* **missing values** (numeric/datetime columns): a ``[present, missing]`` one-hot block, so
  missingness is learned jointly with the other columns.
* **categorical / boolean**: one one-hot block over the categories (missing cells are the
  category ``__missing__``). Past ``max_categories`` the rarest categories pool into
  ``__other__``, which decodes to one of them drawn by its frequency.
* **id**: not encoded; fresh unique ids following the column's pattern are made on output.
* **text**: not learned. Output cells are *resampled* from the observed values (at the
  observed missing rate), independently of the other columns: free text is copied, not
  generated, so do not use text columns that must stay private.

Fidelity by construction: :meth:`inverse_transform` of *any* matrix yields integers that
are integral, numbers within the [min, max] seen and rounded to the decimals seen, only
categories seen, dates in the original format, and the input's column order and dtypes.
The per-column helpers that fit modes and apply these rules are in :mod:`~genforge.tables.data.columns`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from genforge.tables.data.dates import parse_datetimes
from genforge.tables.data.schema import Column, Schema, to_jsonable
from genforge.tables.data.ids import make_ids
from genforge.tables.data.state import check_transformer_state
from genforge.tables.data.columns import (MISSING, OTHER, fit_modes, match_label, restore, restore_numeric,
                                         time_step)
from genforge.core.errors import ConfigError, DataError

TEXT_SAMPLE = 10_000


@dataclass
class Span:
    """One block of the encoded matrix: columns ``start:end`` of ``column``."""

    column: str
    start: int
    end: int
    kind: Literal["scalar", "onehot"]
    role: Literal["value", "mode", "category", "missing"]


class TableTransformer:
    """CTGAN-style mode-specific normalisation, built for fidelity (see the module docstring)."""

    def __init__(self, schema: Schema, *, max_modes: int = 10, max_categories: int = 100, seed: int = 0,
                 modes: bool = True):
        if max_modes < 1:
            raise ConfigError(f"max_modes must be at least 1, got {max_modes}")
        if max_categories < 2:
            raise ConfigError(f"max_categories must be at least 2, got {max_categories}")
        self.schema = schema
        self.max_modes = int(max_modes)
        self.max_categories = int(max_categories)
        self.seed = int(seed)
        self.modes = bool(modes)  # False: only what decode_values needs (no mixture models; no transform)
        self.columns: list[dict] = []  # the fitted state of each schema column (plain JSON-able dicts)
        self.spans: list[Span] = []
        self._starts: list[int] = []
        self._calls = 0  # inverse_transform calls so far: successive calls give new rows and new ids
        self._issued: dict[str, int] = {}  # numbered ids handed out so far, per id column

    # ------------------------------------------------------------------------- public API

    @property
    def dim(self) -> int:
        """Width of the encoded matrix."""
        return self.spans[-1].end if self.spans else 0

    def fit(self, df: pd.DataFrame) -> TableTransformer:
        """Learn every column's encoding from ``df`` (its columns must include the schema's)."""
        self._check_columns(df)
        if len(df) == 0:
            raise DataError("cannot fit on a table with no rows; pass a table with data")
        rng = np.random.default_rng(self.seed)
        self.columns = [self._fit_column(col, df[col.name], rng) for col in self.schema.columns]
        self._build_spans()
        return self

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Encode ``df`` as a float32 ``(n, dim)`` matrix (mode choice seeded by ``seed``)."""
        self._check_fitted()
        self._check_columns(df)
        rng = np.random.default_rng(self.seed + 1)
        out = np.zeros((len(df), self.dim), dtype=np.float32)
        for st, span in zip(self.columns, self._starts):
            s = df[st["name"]]
            if st["enc"] == "numeric":
                self._encode_numeric(st, s, out, span, rng)
            elif st["enc"] == "category":
                idx = self._category_index(st, s)
                out[np.arange(len(df)), span + idx] = 1.0
        return out

    def inverse_transform(self, data: np.ndarray, *, rng: np.random.Generator | None = None) -> pd.DataFrame:
        """Decode a ``(n, dim)`` matrix (model output, or even noise) into a valid table.

        ``rng`` drives the random parts (rare categories behind ``__other__``, text, uuids);
        without it, call k of this object uses a generator seeded by ``(seed, k)``. Numbered
        ids continue across calls (after the largest id seen in fitting), so ids stay unique
        over several batches decoded by the same transformer.
        """
        rng = rng if rng is not None else np.random.default_rng([self.seed, self._calls])
        self._calls += 1
        return self.decode_values(self.raw_values(data, rng=rng), len(data), rng)

    def raw_values(self, data: np.ndarray, *, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The raw values (what :meth:`decode_values` takes) of a ``(n, dim)`` matrix."""
        self._check_fitted()
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.dim:
            raise ConfigError(f"expected a matrix of shape (n, {self.dim}), got {data.shape}")
        data = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0)
        raw = {}
        for st, start in zip(self.columns, self._starts):
            if st["enc"] == "numeric":
                raw[st["name"]] = self._decode_numeric(st, data, start)
            elif st["enc"] == "category":
                idx = data[:, start:start + len(st["labels"])].argmax(axis=1)
                raw[st["name"]] = self.decode_category(st, idx, rng)
        return raw

    def reset_ids(self) -> None:
        """Start numbered ids again after the largest one seen in fitting (for reproducible samples)."""
        self._issued = {}

    def numbers(self, name: str, s: pd.Series) -> np.ndarray:
        """Column ``name`` as floats (epoch seconds for dates), NaN where missing."""
        return self._numbers(self.schema[name], s)

    def decode_values(self, raw: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> pd.DataFrame:
        """The output table from raw per-column values: floats (NaN = missing; epoch seconds for
        dates) for numeric columns, seen values (None = missing) for categorical/boolean ones.

        Applies every fidelity rule (range, rounding, dtypes, date formats) and fills id and text
        columns, which models do not learn. Shared by :meth:`inverse_transform` and models that
        produce values directly (the Gaussian copula).
        """
        out = {}
        for st in self.columns:
            col = self.schema[st["name"]]
            enc = st["enc"]
            if enc == "numeric":
                out[col.name] = restore_numeric(col, st, np.asarray(raw[col.name], dtype=float))
            elif enc == "category":
                values = np.asarray(raw[col.name], dtype=object)
                dtype = ("boolean" if pd.isna(values).any() else "bool") if col.dtype == "bool" else col.dtype
                out[col.name] = restore(values, dtype)
            elif enc == "id":
                first = st["next"] + self._issued.get(col.name, 0)
                self._issued[col.name] = self._issued.get(col.name, 0) + n
                out[col.name] = restore(make_ids(st["pattern"], first, n, rng), col.dtype)
            elif enc == "text":
                values = np.array(st["values"], dtype=object)[rng.integers(len(st["values"]), size=n)]
                values[rng.random(n) < st["missing_rate"]] = np.nan
                out[col.name] = restore(values, col.dtype)
            else:  # entirely empty
                out[col.name] = restore(np.full(n, np.nan, dtype=object), col.dtype)
        return pd.DataFrame(out, columns=self.schema.names())

    def discrete_blocks(self) -> list[tuple[str, int, int, list]]:
        """``(column, start, end, labels)`` of every categorical/boolean one-hot block (for CTGAN's condition vector)."""
        return [(s.column, s.start, s.end, list(self._state(s.column)["labels"]))
                for s in self.spans if s.role == "category"]

    def encode_condition(self, column: str, value) -> tuple[int, int, int]:
        """``(start, end, index within block)`` of ``column == value``, for conditional sampling."""
        blocks = {c: (a, b, labels) for c, a, b, labels in self.discrete_blocks()}
        if column not in blocks:
            choices = ", ".join(blocks) or "none"
            why = "unknown column" if column not in self.schema.names() else f"column '{column}' is {self.schema[column].kind}"
            raise ConfigError(f"cannot condition on '{column}' ({why}); categorical/boolean columns are: {choices}")
        start, end, labels = blocks[column]
        st = self._state(column)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            value = MISSING
        i = match_label(labels, value, boolean=st["kind"] == "boolean")
        if i is not None:
            return start, end, i
        if any(str(v) == str(value) for v in st["pooled"]):
            raise ConfigError(f"value {value!r} of column '{column}' is too rare to condition on (pooled into "
                              f"{OTHER}); pick a more frequent value or raise max_categories")
        shown = ", ".join(repr(v) for v in labels if v != OTHER)
        raise ConfigError(f"column '{column}' never has the value {value!r}; valid values include: {shown[:300]}")

    def to_state(self) -> dict:
        """Every fitted parameter as a JSON-able dict (plain lists and numbers, no pickle)."""
        self._check_fitted()
        return {"format": "genforge.table_transformer/1", "schema": self.schema.to_dict(),
                "max_modes": self.max_modes, "max_categories": self.max_categories, "seed": self.seed,
                "modes": self.modes, "columns": self.columns, "spans": [asdict(s) for s in self.spans]}

    @classmethod
    def from_state(cls, state: dict) -> TableTransformer:
        """Rebuild a fitted transformer from :meth:`to_state` output."""
        if not isinstance(state, dict) or state.get("format") != "genforge.table_transformer/1":
            raise ConfigError("not a saved table transformer state; re-train the model with this genforge version")
        check_transformer_state(state)  # a damaged state is refused here, not somewhere inside sampling
        t = cls(Schema.from_dict(state["schema"]), max_modes=state["max_modes"],
                max_categories=state["max_categories"], seed=state["seed"], modes=state.get("modes", True))
        t.columns = [dict(c) for c in state["columns"]]
        t._build_spans()
        return t

    # ------------------------------------------------------------------------- layout

    def _check_fitted(self) -> None:
        if not self.columns:
            raise ConfigError("the table transformer is not fitted; call fit(df) first")

    def _check_columns(self, df: pd.DataFrame) -> None:
        missing = [c for c in self.schema.names() if c not in df.columns]
        if missing:
            raise DataError(f"the table lacks column(s) {', '.join(map(repr, missing))} of the schema; "
                            f"pass the same columns the model was trained on")

    def _state(self, name: str) -> dict:
        return next(st for st in self.columns if st["name"] == name)

    def _build_spans(self) -> None:
        spans, pos, self._starts = [], 0, []  # _starts: each column's first matrix column (width may be 0)
        for st in self.columns:
            name = st["name"]
            self._starts.append(pos)
            if st["enc"] == "numeric" and "means" not in st:  # fitted with modes=False: no encoding
                continue
            if st["enc"] == "numeric":
                k = len(st["means"]) + len(st["points"])
                spans.append(Span(name, pos, pos + 1, "scalar", "value"))
                spans.append(Span(name, pos + 1, pos + 1 + k, "onehot", "mode"))
                pos += 1 + k
                if st["has_missing"]:
                    spans.append(Span(name, pos, pos + 2, "onehot", "missing"))
                    pos += 2
            elif st["enc"] == "category":
                spans.append(Span(name, pos, pos + len(st["labels"]), "onehot", "category"))
                pos += len(st["labels"])
        self.spans = spans

    # ------------------------------------------------------------------------- fitting

    def _fit_column(self, col: Column, s: pd.Series, rng: np.random.Generator) -> dict:
        st = {"name": col.name, "kind": col.kind}
        present = s.notna().to_numpy()
        if not present.any():
            return {**st, "enc": "empty"}
        if col.kind in ("continuous", "integer", "datetime"):
            values = self._numbers(col, s)
            st.update(enc="numeric", has_missing=bool((~present).any()),
                      strings=bool(s[present].map(lambda v: isinstance(v, str)).any()),
                      lo=float(np.nanmin(values) if col.min is None else col.min),
                      hi=float(np.nanmax(values) if col.max is None else col.max))
            if col.kind == "datetime":
                st["step"] = time_step(values[present], col.datetime_format)
            if self.modes:
                st.update(fit_modes(values[present], self.max_modes, self.seed, rng))
            return st
        if col.kind in ("categorical", "boolean"):
            counts = s[present].value_counts(sort=True)
            values = [to_jsonable(v) for v in counts.index]
            freq = counts.to_numpy(dtype=float)
            has_missing = bool((~present).any())
            keep = len(values) if len(values) + has_missing <= self.max_categories else self.max_categories - 1 - has_missing
            labels = values[:keep] + ([OTHER] if keep < len(values) else []) + ([MISSING] if has_missing else [])
            pooled = values[keep:]
            return {**st, "enc": "category", "labels": labels, "pooled": pooled,
                    "pooled_p": (freq[keep:] / freq[keep:].sum()).tolist() if pooled else []}
        if col.kind == "id":
            return {**st, "enc": "id", "pattern": col.id_pattern or "int",
                    "next": int(col.max) + 1 if col.max is not None else 1}
        values = s[present].astype(str)
        if len(values) > TEXT_SAMPLE:
            values = values.sample(TEXT_SAMPLE, random_state=self.seed)
        return {**st, "enc": "text", "values": values.tolist(), "missing_rate": float(1 - present.mean())}

    def _numbers(self, col: Column, s: pd.Series) -> np.ndarray:
        """A numeric/datetime column as floats (epoch seconds for dates), NaN where missing."""
        if col.kind == "datetime":
            return parse_datetimes(col.name, s, col.datetime_format)
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            return s.to_numpy(dtype=float, na_value=np.nan)
        nums = pd.to_numeric(s.astype(str).str.strip().where(s.notna()), errors="coerce")
        bad = s.notna() & nums.isna()
        if bad.any():
            raise DataError(f"column '{col.name}' ({col.kind}) has values that are not numbers "
                            f"(e.g. {s[bad].iloc[0]!r}); clean them or set its kind to categorical")
        return nums.to_numpy(dtype=float)

    # ------------------------------------------------------------------------- numeric columns

    def _encode_numeric(self, st: dict, s: pd.Series, out: np.ndarray, start: int, rng) -> None:
        values = self._numbers(self.schema[st["name"]], s)
        present = ~np.isnan(values)
        means, stds, weights = (np.asarray(st[k], dtype=float) for k in ("means", "stds", "weights"))
        points = np.asarray(st["points"], dtype=float)
        k_gauss, n = len(means), len(values)
        mode = np.zeros(n, dtype=np.int64)
        scalar = np.zeros(n)
        v = np.where(present, values, 0.0)
        is_point = np.zeros(n, dtype=bool)
        for j, p in enumerate(points):
            hit = present & (v == p)
            mode[hit] = k_gauss + j
            is_point |= hit
        rest = present & ~is_point
        if rest.any() and k_gauss == 0:  # only point masses were fitted: take the nearest
            mode[rest] = k_gauss + np.abs(v[rest, None] - points[None, :]).argmin(axis=1)
        elif rest.any():
            x = v[rest, None]
            logp = np.log(weights)[None, :] - np.log(stds)[None, :] - 0.5 * ((x - means) / stds) ** 2
            logp -= logp.max(axis=1, keepdims=True)
            prob = np.exp(logp)
            prob /= prob.sum(axis=1, keepdims=True)
            pick = (prob.cumsum(axis=1) < rng.random((len(x), 1))).sum(axis=1)
            pick = np.minimum(pick, k_gauss - 1)
            mode[rest] = pick
            scalar[rest] = np.clip((v[rest] - means[pick]) / (4 * stds[pick]), -0.99, 0.99)
        if (~present).any():  # missing cells: a mode drawn by weight, scalar 0
            all_w = np.concatenate([weights * (1 - st["point_share"]), np.asarray(st["point_weights"])])
            mode[~present] = rng.choice(len(all_w), size=int((~present).sum()), p=all_w / all_w.sum())
        rows = np.arange(n)
        out[:, start] = scalar
        out[rows, start + 1 + mode] = 1.0
        if st["has_missing"]:
            width = 1 + k_gauss + len(points)
            out[rows, start + width + (~present).astype(np.int64)] = 1.0

    def _decode_numeric(self, st: dict, data: np.ndarray, start: int) -> np.ndarray:
        means, stds = np.asarray(st["means"], dtype=float), np.asarray(st["stds"], dtype=float)
        points = np.asarray(st["points"], dtype=float)
        k = len(means) + len(points)
        mode = data[:, start + 1:start + 1 + k].argmax(axis=1)
        scalar = np.clip(data[:, start], -1.0, 1.0)
        gauss = mode < len(means)
        values = np.empty(len(data))
        if len(means):
            m = np.minimum(mode, len(means) - 1)
            values[gauss] = (scalar * 4 * stds[m] + means[m])[gauss]
        if len(points):
            values[~gauss] = points[np.maximum(mode - len(means), 0)][~gauss]
        if st["has_missing"]:
            missing = data[:, start + 1 + k:start + 3 + k].argmax(axis=1) == 1
            values[missing] = np.nan
        return values

    # ------------------------------------------------------------------------- categorical columns

    def _category_index(self, st: dict, s: pd.Series) -> np.ndarray:
        labels = st["labels"]
        lookup = {v: i for i, v in enumerate(labels) if v not in (OTHER, MISSING)}
        for v in st["pooled"]:
            lookup[v] = labels.index(OTHER)
        codes = s.astype(object).map(lookup)
        idx = np.where(s.isna(), -2, codes.fillna(-1).to_numpy(dtype=float)).astype(np.int64)
        if (idx == -2).any():
            if MISSING not in labels:
                raise DataError(f"column '{st['name']}' has missing values but had none when fitted; "
                                f"fit on data with the same columns")
            idx[idx == -2] = labels.index(MISSING)
        if (idx == -1).any():
            if OTHER not in labels:
                example = s[idx == -1].iloc[0]
                raise DataError(f"column '{st['name']}' has the value {example!r} that was not seen when "
                                f"fitting; fit on all the data")
            idx[idx == -1] = labels.index(OTHER)
        return idx

    def decode_category(self, st: dict, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The values of label indices ``idx`` of category column state ``st`` (pooled ones drawn by frequency)."""
        labels = np.array(st["labels"] + [None], dtype=object)[:-1]
        values = labels[idx]
        if st["pooled"]:
            other = idx == st["labels"].index(OTHER)
            pooled = np.array(st["pooled"] + [None], dtype=object)[:-1]
            values[other] = pooled[rng.choice(len(pooled), size=int(other.sum()), p=st["pooled_p"])]
        if MISSING in st["labels"]:
            values[idx == st["labels"].index(MISSING)] = None
        return values
