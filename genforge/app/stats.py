"""Scores of a downstream model and their uncertainty over repeated seeds: what ``genforge augment`` reports.

:func:`scores` turns predictions into accuracy, macro F1, ROC AUC and per-class recall (R² for a numeric
target). :func:`bootstrap_ci` is the 95 % percentile bootstrap of a mean over the R seed-level values; for
the gain of an arm over real-only data it is applied to the paired differences (same seed, same real
rows), and a gain "helps" only when its whole interval lies above zero.
"""

from __future__ import annotations

import numpy as np

BOOTSTRAP = 2000  # resamples of the seed-level values


def scores(y_true: np.ndarray, pred: np.ndarray, proba: dict | None, classes: list, regression: bool) -> dict:
    """``{"accuracy", "macro_f1", "roc_auc", "recall[c]"...}`` (classification) or ``{"r2"}`` (regression)."""
    from sklearn.metrics import accuracy_score, f1_score, r2_score, recall_score, roc_auc_score

    if regression:
        return {"r2": float(r2_score(y_true.astype(float), pred.astype(float)))}
    out = {"accuracy": float(accuracy_score(y_true, pred)),
           "macro_f1": float(f1_score(y_true, pred, average="macro", labels=classes, zero_division=0))}
    present = [c for c in classes if (y_true == c).any()]
    if proba is not None and len(present) >= 2:
        aucs = [roc_auc_score(y_true == c, proba.get(c, np.zeros(len(y_true)))) for c in
                (present[1:] if len(present) == 2 else present)]
        out["roc_auc"] = float(np.mean(aucs))
    recalls = recall_score(y_true, pred, labels=classes, average=None, zero_division=0)
    out.update({f"recall[{c}]": float(r) for c, r in zip(classes, recalls)})
    return out


def bootstrap_ci(values, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile-bootstrap ``level`` interval (one value:
    the interval is that value; NaNs are left out)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (BOOTSTRAP, len(v)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(v.mean()), float(lo), float(hi)


MIN_SEEDS = 3  # fewer paired values than this give an interval too rough to call


def verdict(low: float, high: float, n: int = MIN_SEEDS) -> str:
    """``helps`` (interval above 0), ``hurts`` (below 0), ``no clear effect``, or ``too few seeds`` (``n`` paired
    values, fewer than ``MIN_SEEDS``)."""
    if n < MIN_SEEDS:
        return "too few seeds"
    if np.isfinite(low) and low > 0:
        return "helps"
    if np.isfinite(high) and high < 0:
        return "hurts"
    return "no clear effect"
