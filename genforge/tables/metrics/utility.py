"""Train on synthetic, test on real (TSTR): how useful the synthetic rows are for a prediction task.

Gradient-boosted trees (scikit-learn's HistGradientBoosting) are trained once on synthetic
rows and once on as many real training rows (the reference), and both are scored on the real
holdout: accuracy, macro F1 and ROC AUC for a categorical target, R² for a numeric one with
more than ``TSTR_MIN_REGRESSION_VALUES`` distinct values. Called by
:func:`~genforge.tables.metrics.evaluate.evaluate_table` when a ``target`` is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genforge.core.errors import ConfigError, DataError
from genforge.core.metrics.rows import metric_row
from genforge.tables.metrics.values import _labels, _numeric, _subsample

TSTR_MIN_REGRESSION_VALUES = 20   # a numeric target with more distinct values is regressed
HGB_MAX_CATEGORIES = 254          # HistGradientBoosting's limit (255 bins) less one "other" bin
_OTHER = "__other__"


def _tstr_frames(frames: list[pd.DataFrame], cols: dict[str, dict], target: str, real: pd.DataFrame):
    """Feature matrices with consistent pandas ``category`` dtypes across all frames."""
    feats = [c for c, m in cols.items() if c != target and m["sdtype"] != "id"]
    out = [pd.DataFrame(index=f.index) for f in frames]
    for c in feats:
        meta = cols[c]
        if meta["sdtype"] in ("numerical", "datetime"):
            for o, f in zip(out, frames):
                o[c] = _numeric(f[c], meta)
            continue
        labelled = [_labels(f[c]) for f in frames]
        counts = labelled[0].value_counts()
        cats = list(counts.index)
        if len(cats) > HGB_MAX_CATEGORIES:
            cats = cats[:HGB_MAX_CATEGORIES]
        keep = set(cats)
        if any(not lab.dropna().isin(keep).all() for lab in labelled):
            cats.append(_OTHER)
        dtype = pd.CategoricalDtype(sorted(cats))
        for o, lab in zip(out, labelled):
            lab = lab.where(lab.isna() | lab.isin(keep), _OTHER)
            o[c] = lab.astype(dtype)
    return out


def _is_regression(real: pd.DataFrame, target: str, meta: dict) -> bool:
    if meta["sdtype"] not in ("numerical", "datetime"):
        return False
    return _numeric(real[target], meta).nunique() > TSTR_MIN_REGRESSION_VALUES


def train_synthetic_test_real(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, target: str,
                              cols: dict[str, dict], *, seed: int = 0, max_rows: int = 20000) -> dict[str, dict]:
    """Gradient-boosted trees trained on synthetic rows and on as many real rows, scored on the holdout.

    Returns metric rows (``value``: synthetic-trained, ``reference``: real-trained): ``tstr_accuracy``,
    ``tstr_f1``, ``tstr_auc`` for a categorical target or ``tstr_r2`` for a numeric one with more
    than 20 distinct values. Id columns are dropped, datetimes become days since 1970.
    """
    regression = _is_regression(real, target, cols[target])
    synthetic_set, real_set, (x_test, y_test) = _tstr_sets(real, synthetic, holdout, target, cols, regression,
                                                           seed=seed, max_rows=max_rows)
    fit_and_score = _regression_scores if regression else _classification_scores
    scores: dict[str, list[float]] = {}
    for x, y in (synthetic_set, real_set):
        for name, value in fit_and_score(x, y, x_test, y_test, seed).items():
            scores.setdefault(name, []).append(value)
    return {k: metric_row(v[0], v[1]) for k, v in scores.items()}


def _tstr_sets(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, target: str,
               cols: dict[str, dict], regression: bool, *, seed: int, max_rows: int):
    """``(x, y)`` of the synthetic training set, the real training set (as many rows) and the holdout test
    set: rows whose target is present, at most ``max_rows`` (seeded subsamples)."""
    meta = cols[target]

    def ys(df):
        return _numeric(df[target], meta) if regression else _labels(df[target])

    def clean(df):
        return df[ys(df).notna().to_numpy()]

    syn, test = clean(synthetic), clean(holdout)
    real_c = clean(real)
    n = min(len(syn), max_rows)
    syn = _subsample(syn, n, seed)
    real_c = _subsample(real_c, n, seed + 1)
    if len(test) == 0 or len(syn) == 0 or len(real_c) == 0:
        raise DataError(f"the target {target!r} is missing in every synthetic, real or holdout row; "
                        f"pick a target that has values")
    x_real, x_syn, x_test = _tstr_frames([real_c, syn, test], cols, target, real)
    if x_test.shape[1] == 0:
        raise ConfigError(f"no feature columns left besides the target {target!r}; TSTR needs other columns")
    return (x_syn, ys(syn).to_numpy()), (x_real, ys(real_c).to_numpy()), (x_test, ys(test).to_numpy())


def _regression_scores(x: pd.DataFrame, y: np.ndarray, x_test: pd.DataFrame, y_test: np.ndarray,
                       seed: int) -> dict[str, float]:
    """R² on the test set of a gradient-boosted regressor trained on ``(x, y)``."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed)
    model.fit(x, y.astype(float))
    return {"tstr_r2": r2_score(y_test.astype(float), model.predict(x_test))}


def _classification_scores(x: pd.DataFrame, y: np.ndarray, x_test: pd.DataFrame, y_test: np.ndarray,
                           seed: int) -> dict[str, float]:
    """Accuracy, macro F1 and ROC AUC on the test set of a gradient-boosted classifier trained on ``(x, y)``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, f1_score

    classes = sorted(set(y))
    if len(classes) < 2:   # a generator that made one class: predict it everywhere
        pred = np.full(len(y_test), classes[0], dtype=object)
        proba_by_class = {classes[0]: np.ones(len(y_test))}
    else:
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
        model.fit(x, y)
        proba = model.predict_proba(x_test)
        pred = model.classes_[proba.argmax(1)]
        proba_by_class = {c: proba[:, i] for i, c in enumerate(model.classes_)}
    return {"tstr_accuracy": accuracy_score(y_test, pred),
            "tstr_f1": f1_score(y_test, pred, average="macro", zero_division=0),
            "tstr_auc": _auc(y_test, proba_by_class)}


def _auc(y_test: np.ndarray, proba_by_class: dict) -> float:
    """ROC AUC: binary, the second class in sorted order is positive; more classes, one-vs-rest macro average;
    NaN with a single test class."""
    from sklearn.metrics import roc_auc_score

    test_classes = sorted(set(y_test))
    aucs = []
    if len(test_classes) == 2:
        pos = test_classes[1]
        aucs.append(roc_auc_score(y_test == pos, proba_by_class.get(pos, np.zeros(len(y_test)))))
    elif len(test_classes) > 2:
        for c in test_classes:
            aucs.append(roc_auc_score(y_test == c, proba_by_class.get(c, np.zeros(len(y_test)))))
    return float(np.mean(aucs)) if aucs else np.nan
