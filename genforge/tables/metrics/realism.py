"""Realism for tables: would a domain expert believe the rows? Called by
:func:`~genforge.tables.metrics.evaluate.evaluate_table`; every figure is beside the same figure for real
holdout rows.

* **rules**: for each rule the model keeps (or, for another tool's rows, each rule detected in the real
  training rows by :func:`~genforge.tables.data.rule_detect.detect_rules`), the share of rows that obey it;
* **unseen combinations**: the share of rows holding two common values (each in at least 1% of the real rows)
  of two categorical columns that no real training row holds together;
* **distance to closest record** (the privacy encoding: min-max numbers, one-hot categories): its quantiles for
  synthetic and for holdout rows. Farther than the holdout means combinations no real person has, much closer
  means copying;
* **closer to training**: the share of rows closer to a training row than to a holdout row, training and holdout
  sets of one size (ties count a half). About one half for a generator that neither copies nor invents; the
  reference is the same share for half of the holdout against the other half.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from genforge.core.metrics.neighbours import nearest_neighbours
from genforge.core.metrics.rows import json_scalar, metric_row
from genforge.tables.data.rules import frame_getter
from genforge.tables.metrics.privacy import RowEncoder
from genforge.tables.metrics.values import _labels, _subsample

COMMON = 0.01
QUANTILES = (5, 25, 50, 75, 95)
HISTOGRAM_BINS = 30


def _shares(d: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of distances in each bin (the last bin takes everything beyond it)."""
    counts = np.histogram(np.minimum(d, edges[-1]), bins=edges)[0]
    return counts / max(len(d), 1)


def rule_shares(rules: list, schema, synthetic: pd.DataFrame, holdout: pd.DataFrame) -> list[dict]:
    """``[{"rule", "source", "value", "reference"}]``: each rule's share of obeying synthetic and holdout rows."""
    got, ref = frame_getter(synthetic, schema), frame_getter(holdout, schema)
    out = []
    for rule in rules:
        if not all(c in synthetic.columns for c in rule.names()):
            continue
        out.append({"rule": rule.text(), "source": rule.source, "value": json_scalar(rule.ok(got).mean()),
                    "reference": json_scalar(rule.ok(ref).mean())})
    return out


def unseen_combinations(real: pd.DataFrame, frames: list[pd.DataFrame], cols: dict[str, dict]) -> list[float]:
    """For each frame: the share of rows holding a pair of common values never seen together in ``real``."""
    names = [c for c, m in cols.items() if m["sdtype"] in ("categorical", "boolean")]
    labels = {c: _labels(real[c]).fillna("\0missing") for c in names}
    cats = {c: list(labels[c].value_counts().index) for c in names}
    common = {c: (labels[c].value_counts(normalize=True).reindex(cats[c]).to_numpy() >= COMMON) for c in names}
    codes = {c: pd.Index(cats[c]).get_indexer(labels[c]) for c in names}
    seen = {}
    for a, b in combinations(names, 2):
        grid = np.zeros((len(cats[a]), len(cats[b])), dtype=bool)
        grid[codes[a], codes[b]] = True
        seen[a, b] = grid
    out = []
    for df in frames:
        fc = {c: pd.Index(cats[c]).get_indexer(_labels(df[c]).fillna("\0missing")) for c in names}
        flagged = np.zeros(len(df), dtype=bool)
        for (a, b), grid in seen.items():
            ca, cb = fc[a], fc[b]
            ok = (ca >= 0) & (cb >= 0)
            hit = np.zeros(len(df), dtype=bool)
            hit[ok] = common[a][ca[ok]] & common[b][cb[ok]] & ~grid[ca[ok], cb[ok]]
            flagged |= hit
        out.append(float(flagged.mean()) if len(df) else 0.0)
    return out


def _closer_share(enc: RowEncoder, query: pd.DataFrame, train: pd.DataFrame, hold: pd.DataFrame) -> float:
    q = enc.transform(query).astype(np.float64)
    d_train = nearest_neighbours(q, enc.transform(train).astype(np.float64), 1)[0].numpy()[:, 0]
    d_hold = nearest_neighbours(q, enc.transform(hold).astype(np.float64), 1)[0].numpy()[:, 0]
    return float(np.mean(d_train < d_hold) + 0.5 * np.mean(d_train == d_hold))


def closer_to_training(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, cols: dict[str, dict], *,
                       seed: int = 0, max_rows: int = 20000) -> tuple[float, float] | None:
    """``(synthetic share, holdout reference)`` of rows closer to a training row than to a holdout row."""
    enc = RowEncoder(real, cols)
    m = min(len(holdout), len(real), max_rows)
    if m < 4 or enc.transform(holdout.head(1)).shape[1] == 0:
        return None
    train_s, hold_s = _subsample(real, m, seed + 11), _subsample(holdout, m, seed + 12)
    value = _closer_share(enc, _subsample(synthetic, max_rows, seed + 13), train_s, hold_s)
    half = hold_s.sample(frac=1.0, random_state=seed + 14)
    h1, h2 = half.iloc[: m // 2], half.iloc[m // 2: 2 * (m // 2)]
    return value, _closer_share(enc, h1, _subsample(real, len(h2), seed + 15), h2)


def realism_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, cols: dict[str, dict], *,
                    rules: list, schema, distances: list[np.ndarray] | None, seed: int = 0,
                    max_rows: int = 20000) -> tuple[dict[str, dict], dict]:
    """``(metric rows, the realism section)``: ``rules_kept`` (the least obeyed rule), ``unseen_combinations`` and
    ``closer_to_training`` rows, and ``{"rules": [...], "dcr": {"quantiles", "synthetic", "holdout"}}``."""
    rows: dict[str, dict] = {}
    shares = rule_shares(rules, schema, synthetic, holdout)
    if shares:
        worst = min(shares, key=lambda r: r["value"] if r["value"] is not None else 0.0)
        rows["rules_kept"] = metric_row(worst["value"], worst["reference"], rules=len(shares))
    unseen = unseen_combinations(real, [synthetic, holdout], cols)
    rows["unseen_combinations"] = metric_row(unseen[0], unseen[1])
    closer = closer_to_training(real, synthetic, holdout, cols, seed=seed, max_rows=max_rows)
    if closer is not None:
        rows["closer_to_training"] = metric_row(*closer)
    section: dict = {"rules": shares}
    if distances is not None:
        d_syn, d_hold = distances[0][:, 0], distances[1][:, 0]
        top = float(np.percentile(np.concatenate([d_syn, d_hold]), 99)) or 1.0
        edges = np.linspace(0.0, top, HISTOGRAM_BINS + 1)
        section["dcr"] = {"quantiles": list(QUANTILES),
                          "synthetic": [json_scalar(v) for v in np.percentile(d_syn, QUANTILES)],
                          "holdout": [json_scalar(v) for v in np.percentile(d_hold, QUANTILES)],
                          "edges": [json_scalar(v) for v in edges],
                          "synthetic_share": [json_scalar(v) for v in _shares(d_syn, edges)],
                          "holdout_share": [json_scalar(v) for v in _shares(d_hold, edges)]}
    return rows, section
