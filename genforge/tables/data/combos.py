"""Which pairs of category values occur together in the training table, to warn about conditions that
ask for a combination the data never holds (``--where city=Paris,country=Japan``).

For every pair of categorical/boolean columns whose value pairs number at most ``MAX_PAIRS``, a bitmap
of the value pairs seen in at least one row is kept with the model (hex text in its JSON metadata:
a few kilobytes for a census table).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

MAX_PAIRS = 2**16  # bits in one pair's bitmap (8 KiB), so the metadata stays small
_SEP = "\x1f"  # between two column names in a key (a character no header holds in practice)


def _codes(values: pd.Series, categories: list) -> np.ndarray:
    """Index of each value in ``categories`` (-1 for missing or unknown values)."""
    try:
        return pd.Index(categories).get_indexer(values)
    except (TypeError, ValueError):  # values of mixed types: compare as text
        return pd.Index([str(c) for c in categories]).get_indexer(values.astype(str))


def observed_pairs(df: pd.DataFrame, schema) -> dict[str, Any]:
    """``{"colA\\x1fcolB": hex bitmap of (i, j) category-index pairs seen together}`` for ``df``."""
    cols = [c for c in schema.columns
            if c.kind in ("categorical", "boolean") and c.categories and c.name in df.columns]
    codes = {c.name: _codes(df[c.name], list(c.categories)) for c in cols}
    out = {}
    for a, b in combinations(cols, 2):
        if len(a.categories) * len(b.categories) > MAX_PAIRS:
            continue
        ca, cb = codes[a.name], codes[b.name]
        both = (ca >= 0) & (cb >= 0)
        bits = np.zeros(len(a.categories) * len(b.categories), dtype=bool)
        bits[ca[both] * len(b.categories) + cb[both]] = True
        out[a.name + _SEP + b.name] = np.packbits(bits).tobytes().hex()
    return out


def unseen_pairs(pairs: dict[str, Any] | None, schema, cond: dict[str, Any]) -> list[tuple[str, Any, str, Any]]:
    """The pairs of conditions in ``cond`` (column -> value) that no training row holds together."""
    if not pairs:
        return []
    found = []
    names = [n for n in schema.names() if n in cond]  # table order, as the keys were made
    for a, b in combinations(names, 2):
        bitmap = pairs.get(a + _SEP + b)
        if not isinstance(bitmap, str):
            continue
        ca, cb = list(schema[a].categories or []), list(schema[b].categories or [])
        try:
            i, j = ca.index(cond[a]), cb.index(cond[b])
            bits = np.unpackbits(np.frombuffer(bytes.fromhex(bitmap), dtype=np.uint8))
        except ValueError:  # a value pooled away, or a damaged bitmap: nothing to say
            continue
        k = i * len(cb) + j
        if k < len(bits) and not bits[k]:
            found.append((a, cond[a], b, cond[b]))
    return found
