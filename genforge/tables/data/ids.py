"""Identifier columns: how fresh ids like the real ones are described (a pattern), validated and made.

A pattern is "int" (numbers), "uuid", "token:N" (N random letters and digits) or a numbered code: a
literal prefix and one integer field, written like ``"CUST-{:05d}"``. Patterns are read back from
schema and weights files, so they are parsed and checked, never used as format templates.
"""

from __future__ import annotations

import re
import uuid

import numpy as np
import pandas as pd

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CODE = re.compile(r"^(\D*?)(\d+)$")
SAMPLE = 2000  # values checked to recognise uuids


def infer_id_pattern(values: pd.Series) -> tuple[str, float | None, float | None]:
    """How to make fresh ids like ``values``: ``(pattern, min number, max number)``."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "int", float(values.min()), float(values.max())
    text = values.astype(str)
    if text.iloc[:SAMPLE].str.match(UUID).all():
        return "uuid", None, None
    parts = text.str.extract(CODE)
    if parts[1].notna().all() and parts[0].nunique() == 1:
        prefix = parts[0].iloc[0].replace("{", "{{").replace("}", "}}")
        widths = parts[1].str.len()
        padded = parts[1].str.startswith("0").any()
        spec = f"{{:0{int(widths.max())}d}}" if padded or widths.nunique() == 1 else "{:d}"
        nums = parts[1].astype(float)
        return prefix + spec, float(nums.min()), float(nums.max())
    return f"token:{min(256, max(8, int(text.str.len().median())))}", None, None


# A numbered id pattern: a literal prefix (braces doubled) and one integer field, "{:d}" or "{:05d}".
_NUMBERED = re.compile(r"^((?:[^{}]|\{\{|\}\})*)\{:(?:0(\d{1,2}))?d\}$")


def split_id_pattern(pattern: str) -> tuple[str, int]:
    """``"CUST-{:05d}"`` -> ``("CUST-", 5)``. Only "int", "uuid", "token:N" and numbered patterns exist; the
    pattern comes from a file, so it is parsed, never used as a format template."""
    found = _NUMBERED.match(pattern)
    if found is None:
        raise ValueError(f"not an id pattern genforge writes: {pattern[:60]!r}")
    return found.group(1).replace("{{", "{").replace("}}", "}"), int(found.group(2) or 0)


def check_id_pattern(pattern: str | None) -> str | None:
    """Validate an id pattern read from a schema or weights file (see :func:`make_ids`)."""
    if pattern is None or pattern in ("int", "uuid"):
        return pattern
    if pattern.startswith("token:"):
        length = pattern.split(":", 1)[1]
        if not length.isdigit() or not 1 <= int(length) <= 256:
            raise ValueError(f"token id length must be 1 to 256, got {length[:20]!r}")
        return pattern
    split_id_pattern(pattern)
    return pattern


def make_ids(pattern: str, first: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` fresh unique ids following ``pattern``; numbered patterns count up from ``first``."""
    if pattern == "uuid":
        return np.array([str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)], dtype=object)
    if pattern.startswith("token:"):
        length = int(pattern.split(":")[1])
        alphabet = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"))
        ids = {"".join(alphabet[rng.integers(len(alphabet), size=length)]) for _ in range(n)}
        while len(ids) < n:
            ids.add("".join(alphabet[rng.integers(len(alphabet), size=length)]))
        return np.array(sorted(ids), dtype=object)[rng.permutation(n)]
    numbers = np.arange(first, first + n)
    if pattern == "int":
        return numbers
    prefix, width = split_id_pattern(pattern)
    return np.array([prefix + str(int(i)).zfill(width) for i in numbers], dtype=object)
