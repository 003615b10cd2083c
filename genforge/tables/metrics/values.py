"""How table cells become numbers and labels for the table metrics, and the metric-row format.

Shared by :mod:`~genforge.tables.metrics.evaluate` (the entry point and SDMetrics part),
:mod:`~genforge.tables.metrics.utility` (train on synthetic, test on real) and
:mod:`~genforge.tables.metrics.privacy` (DCR / NNDR / exact copies): numerical and datetime
columns as floats (datetimes as days since 1970), categorical columns as strings (so ``1``
and ``"1"`` match), seeded subsampling, and one metric row ``{"value", "reference", ...}``
with plain JSON-able numbers.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd


def _row(value, reference=None, **extra) -> dict[str, Any]:
    return {"value": _num(value), "reference": _num(reference), **extra}


def _num(v):
    """A plain JSON-able number: numpy scalars to Python, NaN/inf to None."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if np.isfinite(v) else None


def _subsample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return df.sample(n=n, random_state=seed) if len(df) > n else df


def _to_datetime(s: pd.Series, fmt: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pd.to_datetime(s, format=fmt, errors="coerce") if fmt else pd.to_datetime(s, errors="coerce")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def datetime_to_days(s: pd.Series, fmt: str | None = None) -> pd.Series:
    """Days since 1970-01-01 as floats (NaN where missing or unparseable)."""
    d = _to_datetime(s, fmt)
    days = (d - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return days.astype(float)


def _numeric(s: pd.Series, meta: dict) -> pd.Series:
    """A numerical or datetime column as float (datetimes: days since 1970)."""
    if meta["sdtype"] == "datetime":
        return datetime_to_days(s, meta.get("datetime_format"))
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    return pd.to_numeric(s, errors="coerce").astype(float)


def _labels(s: pd.Series) -> pd.Series:
    """A categorical column as strings, missing kept as NaN (so 1 and '1' match)."""
    def key(v):
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return s.map(key, na_action="ignore").astype(object)
