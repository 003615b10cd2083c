"""The metric-row format every evaluation returns, and plain JSON values for it.

An evaluation result maps metric names to rows ``{"value", "reference", ..., "explain", "better"}``:
the metric for the generated data, the same metric for real held-out data (what a perfect
generator would score), any extra numbers, a one-line explanation and which direction is better.
Every number in a row is a plain Python ``bool``/``int``/``float`` or ``None`` (NaN and infinities
become ``None``), so the result can be written as strict JSON and printed by one CLI table.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def json_scalar(v: Any) -> Any:
    """A plain JSON-able scalar: numpy/torch scalars to Python bool/int/float, NaN/inf to None.

    ``None`` and strings pass through unchanged; anything else is read as a float.
    """
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if math.isfinite(v) else None


def metric_row(value: Any, reference: Any = None, **extra: Any) -> dict[str, Any]:
    """One metric row ``{"value", "reference", **extra}`` with every number made plain by :func:`json_scalar`."""
    return {"value": json_scalar(value), "reference": json_scalar(reference),
            **{k: json_scalar(v) for k, v in extra.items()}}


def annotate_rows(rows: Mapping[str, dict], explain: Mapping[str, str], better: Mapping[str, str],
                  default_better: str = "higher") -> None:
    """Add ``explain`` (from ``explain[name]``) and ``better`` (``better.get(name, default_better)``)
    to every row of ``rows``, in place."""
    for name, row in rows.items():
        row["explain"] = explain[name]
        row["better"] = better.get(name, default_better)
