"""Rules a table obeys in every row, and the set of them a table model keeps.

Six kinds, each a pydantic model that saves as plain JSON (``{"type": ...}``):

* ``determines`` — ``A -> B``: every value of A comes with one value of B (``education -> education_num``);
  the learned ``mapping`` holds ``[a, b, rows]`` triples;
* ``never`` — a combination of values that no row holds (``relationship=Husband`` with ``sex=Female``);
* ``order`` — ``a <= b`` between two numeric or two date columns (missing cells are exempt);
* ``range`` — ``lo <= a <= hi`` on a numeric column;
* ``fixed`` — only the value combinations seen in the data, over a few columns (``combinations``);
* ``sum`` — ``total = a + b + ...`` over numeric columns.

Rules come from :mod:`~genforge.tables.data.rule_detect` (found in the data) and from the metadata file
(``"rules"``: declared; ``"drop_rules"``: detected ones to ignore; ``"detect_rules": false``: declared only).
A rule's :meth:`~_Rule.ok` says which rows obey it; :mod:`~genforge.tables.data.rule_repair` decodes sampled
values through the rules so that every model's rows obey all of them, and :class:`RuleSet` checks ``--where``
conditions against them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Callable, Literal, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from genforge.core.config import _explain
from genforge.core.errors import ConfigError
from genforge.tables.data.schema import to_jsonable

Scalar = Union[bool, int, float, str, None]
Source = Literal["detected", "declared"]
Getter = Callable[[str, str], np.ndarray]  # get(column, "value" | "number") -> one entry per row
NUMERIC = ("continuous", "integer")
VALUED = ("categorical", "boolean", "integer")  # columns whose values a never/fixed rule names
TOLERANCE = 1e-9


def key(v) -> Any:
    """A cell as a hashable plain value: None for missing, else str/int/float/bool (13 and 13.0 compare equal)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return to_jsonable(v)


def value_keys(values) -> np.ndarray:
    """Cells as an object array of :func:`key` values (factorised: fast on long columns)."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = [key(u) for u in uniques]
    table[-1] = None
    return table[codes]


def _show(v) -> str:
    return "(missing)" if v is None else str(v)


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Source = "declared"
    rows: int = Field(0, ge=0, description="training rows that break it (candidates only)")

    def names(self) -> list[str]:
        """The columns the rule names, in its own order."""
        return list(self.columns)  # type: ignore[attr-defined]

    def ident(self) -> tuple:
        """What makes two rules the same rule (for dropping and de-duplicating)."""
        return (self.type, tuple(self.names()))  # type: ignore[attr-defined]

    def text(self) -> str:  # pragma: no cover - every kind says it
        """The rule as people write it (``a -> b``, ``start <= end``); metadata files take this text back."""
        raise NotImplementedError

    def ok(self, get: Getter) -> np.ndarray:  # pragma: no cover - every kind says it
        """Which rows obey the rule (one bool per row), reading cells through ``get``."""
        raise NotImplementedError


class Determines(_Rule):
    type: Literal["determines"] = "determines"
    columns: Annotated[list[str], Field(min_length=2, max_length=2)]
    mapping: list[tuple[Scalar, Scalar, Annotated[int, Field(ge=0)]]] | None = None

    def text(self) -> str:
        return f"{self.columns[0]} -> {self.columns[1]}"

    def lookup(self) -> dict:
        """``{source value: target value}``."""
        return {key(a): key(b) for a, b, _ in self.mapping or []}

    def ok(self, get: Getter) -> np.ndarray:
        src, dst = get(self.columns[0], "value"), get(self.columns[1], "value")
        table = self.lookup()
        codes, uniques = pd.factorize(pd.Series(src, dtype=object), use_na_sentinel=False)
        want = np.empty(len(uniques), dtype=object)
        want[:] = [table.get(u, _UNSEEN) for u in uniques]
        return np.asarray(want[codes] == dst, dtype=bool)


_UNSEEN = object()


class Never(_Rule):
    type: Literal["never"] = "never"
    values: Annotated[dict[str, Scalar], Field(min_length=2)]
    # the one-cell edits that turn the combination into a real one, with the training rows that hold each
    options: list[tuple[str, Scalar, Annotated[int, Field(ge=0)]]] | None = None

    def names(self) -> list[str]:
        return list(self.values)

    def ident(self) -> tuple:
        return ("never", frozenset((c, _show(key(v))) for c, v in self.values.items()))

    def text(self) -> str:
        return "never " + " & ".join(f"{c}={_show(v)}" for c, v in self.values.items())

    def ok(self, get: Getter) -> np.ndarray:
        hit = None
        for col, value in self.values.items():
            match = get(col, "value") == key(value)
            hit = match if hit is None else hit & match
        return ~np.asarray(hit, dtype=bool)


class Order(_Rule):
    type: Literal["order"] = "order"
    columns: Annotated[list[str], Field(min_length=2, max_length=2)]

    def text(self) -> str:
        return f"{self.columns[0]} <= {self.columns[1]}"

    def ok(self, get: Getter) -> np.ndarray:
        a, b = get(self.columns[0], "number"), get(self.columns[1], "number")
        with np.errstate(invalid="ignore"):
            return ~(a > b + TOLERANCE * np.maximum(1.0, np.abs(b)))


class Range(_Rule):
    type: Literal["range"] = "range"
    column: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> "Range":
        if self.min is None and self.max is None:
            raise ValueError("a range needs a min, a max or both")
        if any(v is not None and not np.isfinite(v) for v in (self.min, self.max)):
            raise ValueError("a range's bounds must be finite numbers")
        return self

    def names(self) -> list[str]:
        return [self.column]

    def ident(self) -> tuple:
        return ("range", self.column, self.min, self.max)

    def text(self) -> str:
        lo = "" if self.min is None else f"{self.min:g} <= "
        hi = "" if self.max is None else f" <= {self.max:g}"
        return f"{lo}{self.column}{hi}"

    def ok(self, get: Getter) -> np.ndarray:
        v = get(self.column, "number")
        with np.errstate(invalid="ignore"):
            bad = (v < self.min) if self.min is not None else np.zeros(len(v), dtype=bool)
            return ~(bad | ((v > self.max) if self.max is not None else False))


class Fixed(_Rule):
    type: Literal["fixed"] = "fixed"
    columns: Annotated[list[str], Field(min_length=2)]
    combinations: list[list[Scalar]] | None = None
    counts: list[Annotated[int, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _shapes(self) -> "Fixed":
        if any(len(c) != len(self.columns) for c in self.combinations or []):
            raise ValueError("each combination needs one value per column")
        if self.counts is not None and len(self.counts) != len(self.combinations or []):
            raise ValueError("counts and combinations differ in length")
        return self

    def text(self) -> str:
        return "only seen combinations of " + ", ".join(self.columns)

    def allowed(self) -> set[tuple]:
        return {tuple(key(v) for v in combo) for combo in self.combinations or []}

    def ok(self, get: Getter) -> np.ndarray:
        rows = zip(*(get(c, "value") for c in self.columns))
        allowed = self.allowed()
        return np.array([tuple(r) in allowed for r in rows], dtype=bool)


class Sum(_Rule):
    type: Literal["sum"] = "sum"
    columns: Annotated[list[str], Field(min_length=3)]

    def text(self) -> str:
        return f"{self.columns[0]} = " + " + ".join(self.columns[1:])

    def ok(self, get: Getter) -> np.ndarray:
        total = get(self.columns[0], "number")
        parts = sum(get(c, "number") for c in self.columns[1:])
        with np.errstate(invalid="ignore"):
            return ~(np.abs(total - parts) > 1e-6 * np.maximum(1.0, np.abs(total)))


Rule = Annotated[Union[Determines, Never, Order, Range, Fixed, Sum], Field(discriminator="type")]
_RULE = TypeAdapter(Rule)
def _never(text: str) -> list:
    pairs = [p.split("=", 1) for p in text.split("&")]
    if any(len(p) != 2 or not p[0].strip() for p in pairs):
        raise ValueError("not col=value pairs")
    return [Never(values={c.strip(): (None if v.strip() == "(missing)" else v.strip()) for c, v in pairs})]


_SHORTHAND = [  # (pattern, builder) for rules written as text in a metadata file
    (re.compile(r"^never\s+(?P<pairs>.+=.+)$"), lambda m: _never(m["pairs"])),
    (re.compile(r"^(?P<a>.+?)\s*<->\s*(?P<b>.+)$"), lambda m: [Determines(columns=[m["a"], m["b"]]),
                                                              Determines(columns=[m["b"], m["a"]])]),
    (re.compile(r"^(?P<a>.+?)\s*->\s*(?P<b>.+)$"), lambda m: [Determines(columns=[m["a"], m["b"]])]),
    (re.compile(r"^(?P<lo>[-+.\deE]+)\s*<=\s*(?P<a>.+?)\s*<=\s*(?P<hi>[-+.\deE]+)$"),
     lambda m: [Range(column=m["a"], min=float(m["lo"]), max=float(m["hi"]))]),
    (re.compile(r"^(?P<a>.+?)\s*(?P<op><=|>=)\s*(?P<b>.+)$"), lambda m: [_compare(m["a"], m["op"], m["b"])]),
    (re.compile(r"^(?P<a>[^=]+?)\s*=\s*(?P<b>[^=]+\+[^=]+)$"),
     lambda m: [Sum(columns=[m["a"], *(p.strip() for p in m["b"].split("+"))])]),
]
SHORTHAND_HELP = ('write a rule as "a -> b", "a <-> b", "a <= b", "0 <= a <= 10", "total = a + b", '
                  '"never a=x & b=y", or an object like {"type": "fixed", "columns": ["city", "country"]}')


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(a: str, op: str, b: str):
    lo, hi = (a, b) if op == "<=" else (b, a)
    if _number(hi) is not None and _number(lo) is None:
        return Range(column=lo, max=_number(hi))
    if _number(lo) is not None and _number(hi) is None:
        return Range(column=hi, min=_number(lo))
    return Order(columns=[lo, hi])


def parse_rule(entry, where: str = "rules") -> list:
    """A metadata entry (shorthand text or a ``{"type": ...}`` object) as rules; a bad one is a one-line ConfigError."""
    if isinstance(entry, str):
        for pattern, build in _SHORTHAND:
            m = pattern.match(entry.strip())
            if m:
                try:
                    return build(m)
                except (ValueError, ValidationError):
                    break
        raise ConfigError(f"metadata {where}: cannot read the rule {entry!r}; {SHORTHAND_HELP}")
    if not isinstance(entry, dict):
        raise ConfigError(f"metadata {where}: {entry!r} is not a rule; {SHORTHAND_HELP}")
    try:
        rule = _RULE.validate_python({k: v for k, v in entry.items() if k != "text"})
    except ValidationError as err:
        raise ConfigError(_explain(err, f"metadata {where} entry {entry!r}") + f"; {SHORTHAND_HELP}") from None
    return [rule]


def metadata_rules(metadata) -> dict[str, Any]:
    """``{"declared": [...], "drop": [idents], "detect": bool, "drop_violating": bool}`` from a metadata dict."""
    meta = metadata if isinstance(metadata, dict) else {}
    for name, kind in (("rules", list), ("drop_rules", list), ("detect_rules", bool), ("drop_violating", bool)):
        if name in meta and not isinstance(meta[name], kind):
            raise ConfigError(f"metadata '{name}' must be a {'list' if kind is list else 'true or false'}, "
                              f"got {meta[name]!r}")
    declared = [r.model_copy(update={"source": "declared", "rows": 0})
                for e in meta.get("rules", []) for r in parse_rule(e)]
    drop = [r.ident() for e in meta.get("drop_rules", []) for r in parse_rule(e, "drop_rules")]
    return {"declared": declared, "drop": drop, "detect": meta.get("detect_rules", True),
            "drop_violating": meta.get("drop_violating", False)}


class RuleSet(BaseModel):
    """The rules a model keeps (``rules``) and near-rules it only reports (``candidates``)."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["genforge.table_rules/1"] = "genforge.table_rules/1"
    rows: int = Field(0, ge=0, description="training rows the rules were checked on")
    rules: list[Rule] = []
    candidates: list[Rule] = []

    def names(self) -> set[str]:
        """Every column a rule or candidate names."""
        return {c for r in self.rules + self.candidates for c in r.names()}

    def of(self, kind: str) -> list:
        """The kept rules of one kind (``"determines"``, ``"never"``, ...)."""
        return [r for r in self.rules if r.type == kind]

    def derived(self) -> dict[str, str]:
        """``{target: source}`` of the determines rules."""
        return {r.columns[1]: r.columns[0] for r in self.of("determines")}

    def broken(self, get: Getter) -> list[tuple[Any, np.ndarray]]:
        """``(rule, rows that break it)`` for every kept rule some row breaks."""
        out = []
        for rule in self.rules:
            bad = ~rule.ok(get)
            if bad.any():
                out.append((rule, bad))
        return out

    def describe(self) -> list[dict]:
        """One printable row per rule: kept ones first, then candidates that are not kept."""
        rows = [{"rule": r.text(), "source": r.source, "detail": _detail(r, self.rows)} for r in self.rules]
        rows += [{"rule": r.text(), "source": "not kept",
                  "detail": f"broken by {r.rows:,} of {self.rows:,} rows; declare it in --metadata (with "
                            f"--drop-violating) to keep it"} for r in self.candidates]
        return rows

    def to_state(self) -> dict:
        """Plain JSON (what ``rules.json`` and the model's metadata hold)."""
        return self.model_dump(mode="json")

    def check_where(self, cond: dict[str, Any]) -> None:
        """Refuse ``where`` conditions (column -> value, already normalised) that a rule forbids, naming both."""
        from genforge.tables.data.rule_check import check_where

        check_where(self, cond)


def _detail(rule, n_rows: int) -> str:
    if rule.type == "determines" and rule.mapping is not None:
        return f"{len(rule.mapping)} value(s) of {rule.columns[0]}, each with one {rule.columns[1]}"
    if rule.type == "fixed" and rule.combinations is not None:
        return f"{len(rule.combinations)} combination(s) seen"
    return f"holds in all {n_rows:,} rows" if rule.source == "detected" else "declared"


def frame_getter(df: pd.DataFrame, schema) -> Getter:
    """A :data:`Getter` over a formatted table (dates parsed leniently with their format, numbers coerced)."""
    from genforge.tables.data.dates import to_epoch_seconds

    cache: dict[tuple[str, str], np.ndarray] = {}

    def get(col: str, how: str) -> np.ndarray:
        if (col, how) not in cache:
            s = df[col]
            if how == "value":
                cache[col, how] = value_keys(s)
            elif schema[col].kind == "datetime":
                cache[col, how] = to_epoch_seconds(pd.to_datetime(s, format=schema[col].datetime_format,
                                                                  errors="coerce"))
            else:
                cache[col, how] = pd.to_numeric(s.astype(float) if s.dtype == bool else s,
                                                errors="coerce").to_numpy(dtype=float)
        return cache[col, how]

    return get


def raw_getter(raw: dict[str, np.ndarray]) -> Getter:
    """A :data:`Getter` over raw decoded values (floats, epoch seconds for dates; labels for categories)."""
    def get(col: str, how: str) -> np.ndarray:
        v = raw[col]
        return value_keys(v) if how == "value" else np.asarray(v, dtype=float)

    return get
