"""Privacy metrics for tables: distance to the closest real row (DCR), NNDR and exact copies.

Rows become points (:class:`RowEncoder`: numbers min-max scaled on the real data, datetimes as
numbers, categories one-hot) and a nearest-neighbour search
(:func:`~genforge.core.metrics.neighbours.nearest_neighbours`, in float64 so a copied row is at
distance 0) measures how close each synthetic row lies to the real training rows; the holdout
rows, measured the same way, are the reference. Exact copies compare a hash of each row's raw
values. Called by :func:`~genforge.tables.metrics.evaluate.evaluate_table`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genforge.core.metrics.neighbours import nearest_neighbours
from genforge.core.metrics.rows import metric_row
from genforge.tables.metrics.values import _labels, _numeric, _subsample

ONEHOT_MAX_CATEGORIES = 100       # privacy encoding: rarer categories share one "other" column


class RowEncoder:
    """Rows as points: numbers min-max scaled on the real data (missing -> median + a missing flag),
    datetimes as numbers, categories one-hot (the 100 most frequent; the rest share one column)."""

    def __init__(self, real: pd.DataFrame, cols: dict[str, dict]):
        self.cols = {c: m for c, m in cols.items() if m["sdtype"] != "id"}
        self.num: dict[str, tuple[float, float, float, bool]] = {}
        self.cat: dict[str, list[str]] = {}
        for c, m in self.cols.items():
            if m["sdtype"] in ("numerical", "datetime"):
                v = _numeric(real[c], m)
                lo, hi = (float(v.min()), float(v.max())) if v.notna().any() else (0.0, 1.0)
                med = float(v.median()) if v.notna().any() else 0.0
                self.num[c] = (lo, (hi - lo) or 1.0, med, bool(v.isna().any()))
            else:
                counts = _labels(real[c]).fillna("__missing__").value_counts()
                self.cat[c] = list(counts.index[:ONEHOT_MAX_CATEGORIES])

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        for c, (lo, span, med, flag) in self.num.items():
            v = _numeric(df[c], self.cols[c])
            miss = v.isna().to_numpy()
            x = ((v.fillna(med).to_numpy() - lo) / span).astype(np.float32)
            parts.append(x[:, None])
            if flag:  # the real data has gaps: a flag column (the same width for every table encoded)
                parts.append(miss.astype(np.float32)[:, None])
        for c, cats in self.cat.items():
            lab = _labels(df[c]).fillna("__missing__")
            index = {v: i for i, v in enumerate(cats)}
            codes = lab.map(index).fillna(len(cats)).astype(int).to_numpy()
            onehot = np.zeros((len(df), len(cats) + 1), np.float32)
            onehot[np.arange(len(df)), codes] = 1.0
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(df), 0), np.float32)


def _row_hashes(df: pd.DataFrame, cols: dict[str, dict]) -> np.ndarray:
    """One 64-bit hash per row of the raw values (ids left out; numbers as float64, categories as text)."""
    keep = [c for c in df.columns if cols.get(c, {}).get("sdtype") != "id"]
    norm = pd.DataFrame(index=df.index)
    for c in keep:
        meta = cols.get(c)
        if meta is not None and meta["sdtype"] in ("numerical", "datetime"):
            norm[c] = _numeric(df[c], meta)
        else:
            norm[c] = _labels(df[c]).fillna("\0missing")
    return pd.util.hash_pandas_object(norm, index=False).to_numpy()


def closest_distances(real: pd.DataFrame, others: list[pd.DataFrame], cols: dict[str, dict], *, seed: int = 0,
                      max_rows: int = 20000) -> list[np.ndarray] | None:
    """For each table of ``others`` (on up to ``max_rows`` seeded rows): the distances of its rows to their closest
    and second-closest rows of ``real`` (``(n, 2)``, float64); None when the rows have no encodable column."""
    enc = RowEncoder(real, cols)
    ref = enc.transform(_subsample(real, max_rows, seed + 2)).astype(np.float64)
    if ref.shape[1] == 0 or len(ref) < 2:
        return None
    return [nearest_neighbours(enc.transform(_subsample(df, max_rows, seed + 3 + i)).astype(np.float64), ref, 2)[0]
            .numpy() for i, df in enumerate(others)]


def privacy_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, cols: dict[str, dict], *,
                    seed: int = 0, max_rows: int = 20000, distances: list[np.ndarray] | None = None) -> dict[str, dict]:
    """DCR, its 5th percentile, NNDR (on up to ``max_rows`` rows each) and the exact-copy share (all rows),
    each for the synthetic rows (value) and the holdout rows (reference) against the real training rows.
    ``distances``: :func:`closest_distances` of ``[synthetic, holdout]`` when already computed."""
    m: dict[str, dict] = {}
    real_hashes = np.unique(_row_hashes(real, cols))
    copies = [float(np.isin(_row_hashes(df, cols), real_hashes).mean()) for df in (synthetic, holdout)]
    if distances is None:
        distances = closest_distances(real, [synthetic, holdout], cols, seed=seed, max_rows=max_rows)
    if distances is not None:
        stats = []
        for d in distances:
            ratio = np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > 0)
            stats.append((np.median(d[:, 0]), np.percentile(d[:, 0], 5), np.median(ratio)))
        m["dcr"] = metric_row(stats[0][0], stats[1][0])
        m["dcr_5th_percentile"] = metric_row(stats[0][1], stats[1][1])
        m["exact_copies"] = metric_row(copies[0], copies[1])
        m["nndr"] = metric_row(stats[0][2], stats[1][2])
    else:
        m["exact_copies"] = metric_row(copies[0], copies[1])
    return m
