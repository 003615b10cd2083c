"""Dates in tables: the formats genforge recognises, format detection, and parsing to epoch seconds.

:func:`best_date_format` picks the entry of :data:`DATE_FORMATS` that parses the largest share
of a sample of strings (schema inference keeps it as a column's ``datetime_format``);
:func:`parse_datetimes` turns a column of dates (a datetime dtype, or strings in that format)
into float epoch seconds, naive times read as UTC, and names the first value that does not
parse. Used by :mod:`~genforge.tables.data.schema` and :mod:`~genforge.tables.data.transform`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genforge.core.errors import DataError

DATE_FORMATS = (
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%SZ", "%Y/%m/%d",
    "%d/%m/%Y", "%m/%d/%Y", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S", "%d.%m.%Y", "%d-%m-%Y", "%d %b %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y",
)


def best_date_format(text: pd.Series) -> tuple[str | None, float]:
    """The format that parses the largest share of a sample of ``text``, and that share."""
    sample = text.drop_duplicates().iloc[:500].str.strip()
    if not sample.str.match(r"^\s*\d{1,4}[-/. ]|^[A-Za-z]{3,9} \d").mean() >= 0.5:
        return None, 0.0
    best, best_share = None, 0.0
    for fmt in DATE_FORMATS:
        share = float(pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean())
        if share > best_share:
            best, best_share = fmt, share
        if share == 1.0:
            break
    return best, best_share


def to_epoch_seconds(dt: pd.Series) -> np.ndarray:
    """Datetimes (naive = UTC) as float epoch seconds; NaT becomes NaN."""
    if isinstance(dt.dtype, pd.DatetimeTZDtype):
        dt = dt.dt.tz_convert("UTC").dt.tz_localize(None)
    out = (dt - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
    return out.to_numpy(dtype=float, na_value=np.nan)


def parse_datetimes(name: str, s: pd.Series, fmt: str | None) -> np.ndarray:
    """A column of dates (datetime dtype, or strings in ``fmt``) as epoch seconds (NaN = missing).

    A non-missing value that does not parse raises DataError naming the column and the value.
    """
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return to_epoch_seconds(s)
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        raise DataError(f"column '{name}' holds numbers, not dates; set its kind to integer or "
                        f"continuous, or store the dates as text like 2024-01-31")
    parsed = pd.to_datetime(s.astype(str).str.strip().where(s.notna()), format=fmt, errors="coerce")
    bad = s.notna() & parsed.isna()
    if bad.any():
        example = s[bad].iloc[0]
        raise DataError(f"column '{name}' has {int(bad.sum())} value(s) that are not dates in format "
                        f"{fmt or 'auto'} (e.g. {example!r}); fix them, set 'datetime_format' in the "
                        f"metadata file, or set its kind to categorical")
    return to_epoch_seconds(parsed)
