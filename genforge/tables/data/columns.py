"""Per-column encode/decode helpers and the output fidelity rules of the table encoding.

The column-level work behind :class:`~genforge.tables.data.transform.TableTransformer`.
Fitting: :func:`fit_modes` (point masses plus a Bayesian Gaussian mixture for a numeric
column) and :func:`time_step` (the coarsest unit every date is a multiple of). Decoding:
:func:`restore_numeric` clips to the range seen, rounds like the data (integers integral,
decimals as seen, dates to their step and format) and :func:`restore` converts back to the
column's dtype; :func:`make_ids` makes fresh unique ids following a column's pattern.
:func:`match_label` finds a category by value, text or case (``yes``/``1``/``true`` for booleans).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from genforge.tables.data.schema import Column

OTHER, MISSING = "__other__", "__missing__"
POINT_MASS_SHARE = 0.05
MIN_MODE_WEIGHT = 0.005
FIT_SAMPLE = 20_000
_TRUTHY, _FALSY = ("true", "1", "yes", "y", "t"), ("false", "0", "no", "n", "f")
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%f", "%p", "%X", "%c", "%T")


def match_label(labels: list, value, *, boolean: bool) -> int | None:
    """The index of ``value`` among ``labels``: exact, then as text, then ignoring case (never ``__other__``)."""
    text = str(value).strip()
    tests = [lambda lab: lab == value and type(lab) is type(value), lambda lab: str(lab) == text,
             lambda lab: str(lab).lower() == text.lower()]
    if boolean and text.lower() in _TRUTHY + _FALSY:  # "yes"/"1"/"true" match True, 1 or "true"
        wanted = text.lower() in _TRUTHY
        tests.append(lambda lab: str(lab).lower() in (_TRUTHY if wanted else _FALSY))
    for test in tests:
        for i, label in enumerate(labels):
            if label != OTHER and test(label):
                return i
    return None


def fit_modes(values: np.ndarray, max_modes: int, seed: int, rng: np.random.Generator) -> dict:
    """Point masses (values with >= 5% share) plus a Bayesian GMM on the rest; plain lists."""
    uniq, counts = np.unique(values, return_counts=True)
    share = counts / len(values)
    points = uniq[share >= POINT_MASS_SHARE]
    rest = values[~np.isin(values, points)]
    if 0 < len(np.unique(rest)) < 2:  # a lone leftover value: a point mass too
        points = np.append(points, np.unique(rest))
        rest = rest[:0]
    point_weights = [float(np.mean(values == p)) for p in points]
    means, stds, weights = [], [], []
    if len(rest):
        from sklearn.mixture import BayesianGaussianMixture

        sample = rest if len(rest) <= FIT_SAMPLE else rng.choice(rest, FIT_SAMPLE, replace=False)
        center, scale = float(np.mean(sample)), float(np.std(sample)) or 1.0
        z = ((sample - center) / scale).reshape(-1, 1)
        gmm = BayesianGaussianMixture(
            n_components=min(max_modes, len(np.unique(sample))), weight_concentration_prior=1e-3,
            weight_concentration_prior_type="dirichlet_process", max_iter=100, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gmm.fit(z)
        keep = gmm.weights_ > MIN_MODE_WEIGHT
        if not keep.any():
            keep = gmm.weights_ == gmm.weights_.max()
        floor = 1e-6 * max(float(np.ptp(sample)), abs(center), 1.0)
        means = (center + scale * gmm.means_[keep, 0]).tolist()
        stds = np.maximum(scale * np.sqrt(gmm.covariances_.reshape(-1)[keep]), floor).tolist()
        w = gmm.weights_[keep]
        weights = (w / w.sum()).tolist()
    return {"means": means, "stds": stds, "weights": weights,
            "points": [float(p) for p in points], "point_weights": point_weights,
            "point_share": float(sum(point_weights))}


def time_step(seconds: np.ndarray, fmt: str | None) -> float:
    """The coarsest of day/hour/minute/second that every date is a multiple of (a date-only format: a day)."""
    if fmt is not None and not any(d in fmt for d in _TIME_DIRECTIVES):
        return 86400.0
    for step in (86400.0, 3600.0, 60.0, 1.0):
        if np.all(np.mod(seconds, step) == 0):
            return step
    return 1e-6


def restore(values, dtype: str) -> pd.Series:
    """``values`` (array or Series, NaN/None = missing) as a Series of ``dtype`` where possible."""
    s = pd.Series(values).reset_index(drop=True)
    if dtype == "object":
        return s.astype(object).where(s.notna(), np.nan)
    if dtype == "str":
        try:
            return s.astype(pd.StringDtype(na_value=np.nan))
        except (TypeError, ValueError):
            return s.astype(object)
    try:
        return s.astype(dtype)
    except (TypeError, ValueError):
        if dtype.startswith(("int", "uint")) and s.isna().any():
            return s.astype("Int64")
        if dtype == "bool" and s.isna().any():
            return s.astype("boolean")
        return s.astype(object)


def restore_numeric(col: Column, st: dict, values: np.ndarray) -> pd.Series:
    """Clip to the range seen, round like the data, and convert back to the column's dtype."""
    values = np.clip(values, st["lo"], st["hi"])
    if col.kind == "integer":
        values = np.round(values)
    elif col.kind == "continuous":
        values = np.round(values, col.decimals if col.decimals is not None else 6)
    else:
        step = st["step"]
        values = np.clip(np.round(values / step) * step, st["lo"], st["hi"])
        dt = pd.to_datetime(pd.Series(values), unit="s")
        if col.dtype.startswith("datetime64"):
            if "," in col.dtype:  # timezone-aware: the epoch seconds are UTC
                dt = dt.dt.tz_localize("UTC")
            return restore(dt, col.dtype)
        text = dt.dt.strftime(col.datetime_format or "%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)
        text[np.isnan(values)] = np.nan
        return restore(text, col.dtype)
    if st.get("strings") and col.dtype in ("object", "str", "string"):  # numbers stored as text
        return restore(np.array([_format_number(v, col) for v in values], dtype=object), col.dtype)
    return restore(values, col.dtype)


def _format_number(v: float, col: Column):
    if np.isnan(v):
        return np.nan
    if col.kind == "integer":
        return str(int(v))
    return f"{v:.{col.decimals if col.decimals is not None else 6}f}"


def settle_dtype(s: pd.Series, dtype) -> pd.Series:
    """A filled column back in the model's ``dtype`` when that loses nothing (a float column of whole
    numbers read with blanks becomes int again), else the type pandas infers (never mixed objects)."""
    s = s.infer_objects()
    if s.dtype != dtype and s.notna().all():
        try:
            cast = s.astype(dtype)
            if bool((cast == s).all()):
                return cast
        except (TypeError, ValueError):
            pass
    return s
