"""How table cells become numbers and labels for the table metrics.

Shared by :mod:`~genforge.tables.metrics.evaluate` (the entry point and SDMetrics part),
:mod:`~genforge.tables.metrics.utility` (train on synthetic, test on real) and
:mod:`~genforge.tables.metrics.privacy` (DCR / NNDR / exact copies): numerical and datetime
columns as floats (datetimes as days since 1970), categorical columns as strings (so ``1``
and ``"1"`` match) and seeded subsampling. Metric rows are built with
:func:`genforge.core.metrics.rows.metric_row`, shared with the image metrics.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from genforge.tables.data.dates import to_epoch_seconds

SECONDS_PER_DAY = 86400.0


def _subsample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return df.sample(n=n, random_state=seed) if len(df) > n else df


def datetime_to_days(s: pd.Series, fmt: str | None = None) -> pd.Series:
    """Days since 1970-01-01 as floats (NaN where missing or unparseable; naive times read as UTC).

    Strings are parsed leniently with ``fmt`` (a metric skips what does not parse, unlike training);
    the conversion is :func:`~genforge.tables.data.dates.to_epoch_seconds` divided by 86,400.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        d = s
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = pd.to_datetime(s, format=fmt, errors="coerce") if fmt else pd.to_datetime(s, errors="coerce")
    return pd.Series(to_epoch_seconds(d) / SECONDS_PER_DAY, index=s.index, name=s.name)


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
