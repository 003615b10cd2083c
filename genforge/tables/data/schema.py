"""Schema inference for tables, with an overridable metadata file.

Every column gets one *kind*, inferred from its values (first matching rule wins):

1. **entirely empty** -> DataError (drop it or give it values), unless the metadata file sets its kind.
2. **boolean**: a bool dtype; Python bools (in an object column); strings that are all
   ``true``/``false`` (any case); or integers that are all 0/1 in a column whose name looks
   boolean (``is_*``, ``has_*``, ``*_flag``...). ``yes``/``no`` stays categorical.
3. **datetime**: a datetime dtype; or strings of which >= 95% of a sample parse with one of the
   common formats in :data:`~genforge.tables.data.dates.DATE_FORMATS` (the best format is kept). If the
   whole column then has a value that does not parse -> DataError naming it.
4. **numbers** (numeric dtype): an integer-named column (``id``, ``*_id``, ``userId``) with >= 95%
   unique integers -> **id** (``int``); all values integral -> **integer** (even with few
   distinct values: the models handle them); otherwise **continuous** (decimals kept, max 6).
5. **strings that are numbers**: a string column where every value parses as a number (and
   none has a leading zero, like a zip code) is treated as numbers (rule 4); where >= 90% but
   not all do, the column is mixed -> DataError naming the bad values (clean them, or set the
   kind to categorical in a metadata file); under 90% it is an ordinary string column.
6. **id**: >= 95% unique strings that look like codes: a uuid, or no spaces (with at least 50
   values, so tiny tables are not all ids), or any name containing ``id``. The pattern is kept
   (``C{:06d}``: prefix and zero-padded number, ``uuid``, or ``token:N``) to make fresh ids.
7. **text**: many distinct strings that are long (mean length > 30 and >= 20% unique or > 100
   distinct) or wordy (>= 50% unique with >= 50% containing spaces). A few long labels stay categorical.
8. **categorical**: every other column (every value seen is kept, most frequent first).

Overrides: ``infer_schema(df, {"columns": {"age": {"kind": "categorical"}}})`` or a JSON file
with that content (a saved schema, with ``columns`` as a list, works too). Each entry sets a
subset of :class:`Column` fields; setting ``kind`` re-infers that column's details for the kind.
"""

from __future__ import annotations

import json
import numbers
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator

from genforge.core.config import validate
from genforge.core.errors import ConfigError, DataError
from genforge.core.io import write_json
from genforge.tables.data.ids import UUID, check_id_pattern, infer_id_pattern
from genforge.tables.data.dates import DATE_FORMATS, best_date_format, parse_datetimes, to_epoch_seconds

# DATE_FORMATS, parse_datetimes and to_epoch_seconds live in genforge.tables.data.dates and are re-exported here
__all__ = ["DATE_FORMATS", "KINDS", "RULE_KEYS", "Column", "Kind", "Schema", "count_decimals", "infer_schema",
           "parse_datetimes", "read_metadata", "to_epoch_seconds", "to_jsonable"]

Kind = Literal["continuous", "integer", "categorical", "boolean", "datetime", "id", "text"]
KINDS: tuple[str, ...] = get_args(Kind)

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SAMPLE = 2000


def _number(v: Any) -> int | float:
    """A real number as a plain Python int (kept an int, so saved schemas keep ``18``, not ``18.0``) or float."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ValueError("must be a number")
    return int(v) if isinstance(v, numbers.Integral) else float(v)


Number = Annotated[int | float, PlainValidator(_number)]


class Column(BaseModel):
    """What genforge knows about one column; every field is JSON-able (validated by pydantic,
    also on assignment)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str
    kind: Kind
    dtype: str
    missing_rate: float = 0.0
    min: Number | None = None
    max: Number | None = None
    decimals: int | None = None
    categories: list | None = None
    frequencies: list[float] | None = None
    datetime_format: str | None = None
    id_pattern: Annotated[str | None, AfterValidator(check_id_pattern)] = None
    reason: str = ""


class Schema(BaseModel):
    """The columns of a table, in order."""

    model_config = ConfigDict(extra="forbid")

    columns: list[Column]

    def names(self) -> list[str]:
        """The column names in table order."""
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ConfigError(f"unknown column '{name}'; columns are: {', '.join(self.names())}")

    def to_dict(self) -> dict:
        """A JSON-able dict: ``{"columns": [{field: value, ...}, ...]}``."""
        return {"columns": [c.model_dump() for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output (a ``schema.json`` file, a model's metadata);
        a bad entry raises a one-line ConfigError."""
        if not isinstance(d, dict) or not isinstance(d.get("columns"), list):
            raise ConfigError('a schema must be a JSON object {"columns": [...]}; save one with Schema.save')
        cols = []
        for entry in d["columns"]:
            if not isinstance(entry, dict) or "name" not in entry or "kind" not in entry:
                raise ConfigError(f"schema entry {entry!r} needs at least 'name' and 'kind'")
            cols.append(validate(Column, {"dtype": "object", **entry}, what=f"schema column {entry['name']!r}"))
        return cls(columns=cols)

    def save(self, path: str | Path) -> None:
        """Write the schema as JSON (atomically)."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a schema written by :meth:`save`; a bad file raises ConfigError."""
        return cls.from_dict(_read_json(path))

    def describe(self) -> list[dict]:
        """One row per column ``{name, kind, missing, detail, reason}`` for a printed table."""
        return [{"name": c.name, "kind": c.kind, "missing": f"{100 * c.missing_rate:.1f}%",
                 "detail": _detail(c), "reason": c.reason} for c in self.columns]


def infer_schema(df: pd.DataFrame, overrides: dict | str | Path | None = None) -> Schema:
    """Infer every column's kind and statistics (rules in the module docstring).

    ``overrides`` (a dict or a JSON file path) sets fields of chosen columns, e.g.
    ``{"columns": {"age": {"kind": "categorical"}}}``.
    """
    over = _parse_overrides(overrides, list(df.columns))
    cols = []
    for name in df.columns:
        s = df[name]
        o = over.get(name, {})
        kind = o.get("kind", "datetime" if o.get("datetime_format") else None)
        col = _infer_column(name, s, kind, o.get("datetime_format"))
        for key, value in o.items():
            setattr(col, key, value)
        if o:
            col.reason = o.get("reason") or f"set in the metadata file ({', '.join(o)})"
        cols.append(col)
    return Schema(columns=cols)


# ----------------------------------------------------------------------------- overrides


def _read_json(path: str | Path) -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"metadata file '{path}' does not exist; pass the path of a JSON file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"metadata file '{path}' is not valid JSON ({' '.join(str(e).split())}); fix the file") from None


def _check_fields(entry: dict, name: str) -> None:
    """Validate the fields a metadata entry sets (names, kind, value types) with :class:`Column`'s rules."""
    validate(Column, {"name": str(name), "kind": "categorical", "dtype": "object", **entry},
             what=f"metadata for column {name!r}")


RULE_KEYS = ("rules", "drop_rules", "detect_rules", "drop_violating")  # read by tables.data.rule_detect
_SAVED_KEYS = ("format", "rows", "candidates")  # in a rules.json written by a run (ignored here)


def read_metadata(metadata: dict | str | Path | None) -> dict | None:
    """The metadata as a dict (read from the JSON file when given a path)."""
    return metadata if metadata is None or isinstance(metadata, dict) else _read_json(metadata)


def column_overrides(overrides, names: list[str]) -> dict[str, dict]:
    """Per column, the fields the metadata (a dict or a JSON file's path) sets, checked against ``names``."""
    return _parse_overrides(overrides, names)


def _parse_overrides(overrides, names: list[str]) -> dict[str, dict]:
    if overrides is None:
        return {}
    d = read_metadata(overrides)
    unknown = [k for k in d if k not in ("columns", *RULE_KEYS, *_SAVED_KEYS)] if isinstance(d, dict) else []
    if unknown:
        raise ConfigError(f"metadata has unknown key(s) {', '.join(map(repr, unknown))}; it takes 'columns' and the "
                          f"rule keys {', '.join(RULE_KEYS)}")
    cols = d.get("columns", {} if isinstance(d, dict) and set(d) & {*RULE_KEYS, "rules"} else None) \
        if isinstance(d, dict) else None
    if isinstance(cols, list):  # a saved schema: a list of column entries
        cols = {e.get("name"): {k: v for k, v in e.items() if k != "name"} for e in cols if isinstance(e, dict)}
    if not isinstance(cols, dict):
        raise ConfigError('metadata must look like {"columns": {"age": {"kind": "categorical"}}}')
    out = {}
    for name, entry in cols.items():
        if name not in names:
            raise ConfigError(f"metadata names unknown column '{name}'; columns are: {', '.join(map(str, names))}")
        if not isinstance(entry, dict):
            raise ConfigError(f"metadata for column '{name}' must be an object like {{\"kind\": \"categorical\"}}")
        _check_fields(entry, name)
        out[name] = {k: v for k, v in entry.items() if k not in ("name", "dtype")}
    return out


# ----------------------------------------------------------------------------- inference


def _infer_column(name: str, s: pd.Series, kind: str | None, fmt: str | None) -> Column:
    """Infer one column; ``kind``/``fmt`` force the kind (and date format) when set by an override."""
    col = Column(name=str(name), kind="categorical", dtype=str(s.dtype))
    values = s.dropna()
    col.missing_rate = float(1.0 - len(values) / len(s)) if len(s) else 0.0
    if len(values) == 0:
        if kind is None:
            raise DataError(f"column '{name}' is entirely empty; drop it or give it values")
        col.kind = kind
        return col
    if kind is None:
        kind, why = _guess_kind(name, s, values)
    else:
        why = "set in the metadata file"
    col.kind = kind
    col.reason = why
    if kind in ("continuous", "integer"):
        nums = _numbers(name, s, values)
        col.min, col.max = float(nums.min()), float(nums.max())
        if kind == "integer":
            col.min, col.max = int(np.floor(col.min)), int(np.ceil(col.max))
        else:
            col.decimals = count_decimals(nums)
    elif kind == "datetime":
        secs, col.datetime_format = _datetimes(name, s, values, fmt)
        col.min, col.max = float(secs.min()), float(secs.max())
    elif kind in ("categorical", "boolean"):
        counts = values.value_counts(sort=True)
        col.categories = [to_jsonable(v) for v in counts.index]
        col.frequencies = [float(f) for f in counts.to_numpy() / counts.sum()]
    elif kind == "id":
        col.id_pattern, lo, hi = infer_id_pattern(values)
        col.min, col.max = lo, hi
    return col


def _guess_kind(name: str, s: pd.Series, values: pd.Series) -> tuple[str, str]:
    """The inferred kind of a column with some values, and a one-line reason."""
    n, nunique = len(values), values.nunique()
    if pd.api.types.is_bool_dtype(s.dtype):
        return "boolean", "bool values"
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime", "datetime values"
    if pd.api.types.is_numeric_dtype(s.dtype):
        return _numeric_kind(name, values, n, nunique)
    if values.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return "boolean", "True/False values"
    text = values.astype(str)
    lowered = set(text.str.strip().str.lower().unique())
    if lowered <= {"true", "false"}:
        return "boolean", "the strings true/false"
    numeric = pd.to_numeric(text.str.strip(), errors="coerce")
    share = float(numeric.notna().mean())
    codes = bool(text.str.match(r"^\s*[-+]?0\d").any())  # leading zeros (zip codes): keep as strings
    if share == 1.0 and not codes:
        kind, why = _numeric_kind(name, numeric, n, nunique)
        return kind, why + " (stored as strings)"
    if share >= 0.9 and not codes:
        bad = text[numeric.isna()]
        raise DataError(f"column '{name}' is mostly numbers but {len(bad)} value(s) are not (e.g. "
                        f"{', '.join(repr(v) for v in bad.unique()[:3])}); clean them or set its kind "
                        f"to categorical in a metadata file")
    fmt, parsed = best_date_format(text)
    if fmt is not None and parsed >= 0.95:
        return "datetime", f"{100 * parsed:.0f}% of sampled values are dates in format {fmt}"
    unique = nunique / n
    if unique >= 0.95:
        spaces = float(text.str.contains(" ", regex=False).mean())
        sample = text.iloc[:_SAMPLE]
        if sample.str.match(UUID).all():
            return "id", f"{nunique} unique uuids"
        if _id_like(name) or (spaces == 0.0 and n >= 50):
            return "id", f"{100 * unique:.0f}% unique codes like {text.iloc[0]!r}"
    mean_len = float(text.str.len().mean())
    spaces = float(text.str.contains(" ", regex=False).mean())
    if (mean_len > 30 and (unique >= 0.2 or nunique > 100)) or (unique >= 0.5 and spaces >= 0.5):
        return "text", f"free text ({100 * unique:.0f}% unique, mean length {mean_len:.0f}); resampled, not generated"
    return "categorical", f"strings with {nunique} distinct values"


def _words(name) -> list[str]:
    """The lower-case words of a column name: ``customerID`` and ``customer_id`` -> ``customer, id``."""
    return [w.lower() for w in _WORD.findall(str(name))]


def _id_like(name) -> bool:
    return any(w in ("id", "ids", "uid", "uuid", "guid") for w in _words(name))


def _flag_like(name) -> bool:
    words = _words(name)
    return bool(words) and (words[0] in ("is", "has", "can", "was", "should", "did") or "flag" in words)


def _numeric_kind(name: str, values: pd.Series, n: int, nunique: int) -> tuple[str, str]:
    arr = values.to_numpy(dtype=float)
    integral = bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    if integral and set(np.unique(arr)) <= {0.0, 1.0} and _flag_like(name):
        return "boolean", "0/1 values in a flag-like column name"
    if integral and nunique / n >= 0.95 and _id_like(name):
        return "id", f"{100 * nunique / n:.0f}% unique integers in an id-like column name"
    if integral:
        return "integer", f"whole numbers, {nunique} distinct values"
    return "continuous", f"numbers with decimals, {nunique} distinct values"


def _numbers(name: str, s: pd.Series, values: pd.Series) -> np.ndarray:
    """The non-missing values as floats; a value that is not a number raises DataError."""
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        nums = values.to_numpy(dtype=float)
    else:
        parsed = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
        if parsed.isna().any():
            bad = values[parsed.isna()].astype(str).unique()[:3]
            raise DataError(f"column '{name}' is declared numeric but has values that are not numbers "
                            f"(e.g. {', '.join(map(repr, bad))}); clean them or declare it categorical")
        nums = parsed.to_numpy(dtype=float)
    if not np.isfinite(nums).all():
        raise DataError(f"column '{name}' has infinite values; replace them with numbers or leave the cells empty")
    return nums


def count_decimals(values: np.ndarray, cap: int = 6) -> int:
    """The number of decimals needed to write every value exactly (at most ``cap``)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size > 20_000:
        v = np.random.default_rng(0).choice(v, 20_000, replace=False)
    for d in range(cap + 1):
        if np.all(np.abs(np.round(v, d) - v) <= 1e-9 * np.maximum(1.0, np.abs(v))):
            return d
    return cap


def _datetimes(name: str, s: pd.Series, values: pd.Series, fmt: str | None) -> tuple[np.ndarray, str | None]:
    is_dt = isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype)
    if not is_dt and fmt is None and not pd.api.types.is_numeric_dtype(s.dtype):
        fmt, share = best_date_format(values.astype(str))
        if fmt is None or share == 0.0:
            raise DataError(f"column '{name}' is declared datetime but values like {values.iloc[0]!r} "
                            f"are not dates in a known format; set 'datetime_format' (e.g. \"%d/%m/%Y\") "
                            f"in the metadata file")
    secs = parse_datetimes(name, values, None if is_dt else fmt)
    return secs, None if is_dt else fmt


def to_jsonable(v):
    """A pandas/numpy scalar as a plain Python str/int/float/bool."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


def _detail(c: Column) -> str:
    if c.kind in ("continuous", "integer") and c.min is not None:
        dec = f", {c.decimals} decimals" if c.decimals is not None else ""
        return f"{c.min:g} to {c.max:g}{dec}"
    if c.kind == "datetime" and c.min is not None:
        lo, hi = (pd.Timestamp(x, unit="s").strftime(c.datetime_format or "%Y-%m-%d %H:%M:%S") for x in (c.min, c.max))
        return f"{lo} to {hi} ({c.datetime_format or 'datetime'})"
    if c.kind in ("categorical", "boolean") and c.categories:
        head = ", ".join(str(v) for v in c.categories[:4])
        more = f", ... ({len(c.categories)} values)" if len(c.categories) > 4 else ""
        return head + more
    if c.kind == "id":
        return f"pattern {c.id_pattern}"
    if c.kind == "text":
        return "resampled from the data"
    return ""
