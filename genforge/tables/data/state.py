"""The shapes a table model's saved state must have before anything uses it.

A fitted :class:`~genforge.tables.data.transform.TableTransformer` and the Gaussian copula save their
parameters as plain JSON in the metadata of ``model.safetensors``; a hand-edited or damaged file is
checked here (pydantic), so it is refused at load with one line naming the field, instead of failing
somewhere inside sampling.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from genforge.tables.data.ids import check_id_pattern
from genforge.tables.data.schema import Schema


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


Finite = Annotated[float, AfterValidator(_finite)]
Share = Annotated[float, Field(ge=-1e-9, le=1.0 + 1e-9)]  # shares summed in floats may pass 1 by a rounding
Scalar = Union[bool, int, float, str, None]


class _State(BaseModel):
    model_config = ConfigDict(extra="allow")


class EmptyColumn(_State):
    name: str
    kind: str
    enc: Literal["empty"]


class NumericColumn(_State):
    name: str
    kind: str
    enc: Literal["numeric"]
    has_missing: bool
    strings: bool = False
    lo: Finite
    hi: Finite
    step: Annotated[float, Field(gt=0)] | None = None
    means: list[Finite] | None = None
    stds: list[Annotated[float, Field(gt=0)]] | None = None
    weights: list[Share] | None = None
    points: list[Finite] | None = None
    point_weights: list[Share] | None = None
    point_share: Share | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "NumericColumn":
        if self.lo > self.hi:
            raise ValueError(f"lo ({self.lo}) is above hi ({self.hi})")
        modes = (self.means, self.stds, self.weights)
        if any(m is not None for m in modes) and len({len(m or []) for m in modes}) != 1:
            raise ValueError("means, stds and weights differ in length")
        if (self.points is None) != (self.point_weights is None) or len(self.points or []) != len(self.point_weights or []):
            raise ValueError("points and point_weights differ in length")
        if self.means is not None and not (self.means or self.points):
            raise ValueError("a numeric column needs at least one mode or point")
        return self


class CategoryColumn(_State):
    name: str
    kind: str
    enc: Literal["category"]
    labels: Annotated[list[Scalar], Field(min_length=1)]
    pooled: list[Scalar] = []
    pooled_p: list[Share] = []

    @model_validator(mode="after")
    def _consistent(self) -> "CategoryColumn":
        if len(self.pooled) != len(self.pooled_p):
            raise ValueError("pooled and pooled_p differ in length")
        return self


class IdColumn(_State):
    name: str
    kind: str
    enc: Literal["id"]
    pattern: Annotated[str, AfterValidator(check_id_pattern)]
    next: Annotated[int, Field(ge=-2**62, le=2**62)]


class TextColumn(_State):
    name: str
    kind: str
    enc: Literal["text"]
    values: Annotated[list[str], Field(min_length=1)]
    missing_rate: Share


ColumnState = Annotated[Union[EmptyColumn, NumericColumn, CategoryColumn, IdColumn, TextColumn],
                        Field(discriminator="enc")]


class TransformerState(_State):
    """What :meth:`TableTransformer.to_state` writes."""

    format: Literal["genforge.table_transformer/1"]
    schema_: Schema = Field(alias="schema")
    max_modes: Annotated[int, Field(ge=1)]
    max_categories: Annotated[int, Field(ge=2)]
    seed: int
    modes: bool = True
    columns: list[ColumnState]

    @model_validator(mode="after")
    def _matches_schema(self) -> "TransformerState":
        want = [(c.name, c.kind) for c in self.schema_.columns]
        got = [(c.name, c.kind) for c in self.columns]
        if want != got:
            raise ValueError("its columns are not the schema's columns")
        return self


class _Var(_State):
    column: str


class NumericVar(_Var):
    type: Literal["numeric"]
    grid: Annotated[list[Finite], Field(min_length=2)]


class MissingVar(_Var):
    type: Literal["missing"]
    cum: Annotated[list[Share], Field(min_length=3, max_length=3)]


class DiscreteVar(_Var):
    type: Literal["discrete"]
    categories: Annotated[list[Scalar], Field(min_length=1)]
    cum: list[Share]

    @model_validator(mode="after")
    def _consistent(self) -> "DiscreteVar":
        if len(self.cum) != len(self.categories) + 1:
            raise ValueError("cum must have one more entry than categories")
        return self


CopulaVar = Annotated[Union[NumericVar, MissingVar, DiscreteVar], Field(discriminator="type")]


class CopulaVars(BaseModel):
    """The copula's latent variables (one per numeric/discrete column, plus missing flags)."""

    vars: list[CopulaVar]

    @model_validator(mode="after")
    def _sorted(self) -> "CopulaVars":
        for var in self.vars:
            values = getattr(var, "grid", None) or getattr(var, "cum", None) or []
            if any(b < a for a, b in zip(values, values[1:])):
                raise ValueError(f"the grid or cumulative shares of column '{var.column}' decrease")
        return self


def check_transformer_state(state: Any) -> None:
    """Raise a pydantic ValidationError if ``state`` is not a transformer state genforge can use."""
    TransformerState.model_validate(state)


def check_copula_vars(vars_: Any, columns: list[str], sigma_shape: tuple[int, ...]) -> None:
    """Raise ValueError (a ValidationError for the shapes) if the copula's variables are not usable."""
    checked = CopulaVars.model_validate({"vars": vars_})
    unknown = sorted({v.column for v in checked.vars} - set(columns))
    if unknown:
        raise ValueError(f"vars name columns the schema lacks: {', '.join(map(str, unknown[:3]))}")
    m = len(checked.vars)
    if tuple(sigma_shape) != (m, m):
        raise ValueError(f"the correlation matrix is {tuple(sigma_shape)} for {m} variables")


def check_rules_state(state: Any, schema: Schema):
    """The saved :class:`~genforge.tables.data.rules.RuleSet` of a model (an empty one for runs made before rules),
    validated: pydantic for the shapes, a ValueError for a rule that names a column the schema lacks, a kind the
    rule cannot take, or a text value where a number goes."""
    from genforge.core.errors import ConfigError
    from genforge.tables.data.rule_check import _kinds_fit
    from genforge.tables.data.rules import RuleSet

    if state is None:
        return RuleSet()
    rules = RuleSet.model_validate(state)
    names = set(schema.names())
    numeric = {c.name for c in schema.columns if c.kind in ("continuous", "integer", "datetime")}
    for rule in rules.rules + rules.candidates:
        unknown = [c for c in rule.names() if c not in names]
        if unknown:
            raise ValueError(f"rule '{rule.text()}' names columns the schema lacks: {', '.join(unknown[:3])}")
    for rule in rules.rules:
        try:
            _kinds_fit(rule, schema)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        rows = [list(m[:2]) for m in rule.mapping or []] if rule.type == "determines" else \
            (rule.combinations or []) if rule.type == "fixed" else []
        for row in rows:
            for col, v in zip(rule.names(), row):
                if col in numeric and not (v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         and math.isfinite(v))):
                    raise ValueError(f"rule '{rule.text()}' holds {v!r} for the numeric column '{col}'")
    return rules


class CategoryTokens(_State):
    name: str
    enc: Literal["category"]
    size: Annotated[int, Field(ge=1)]


class NumericTokens(_State):
    name: str
    enc: Literal["numeric"]
    size: Annotated[int, Field(ge=1)]
    missing: bool
    points: list[Finite]
    edges: list[Finite]
    grids: list[list[Finite]]

    @model_validator(mode="after")
    def _consistent(self) -> "NumericTokens":
        for name, values in (("points", self.points), ("edges", self.edges), *(("grid", g) for g in self.grids)):
            if any(b < a for a, b in zip(values, values[1:])):
                raise ValueError(f"the {name} of column '{self.name}' decrease")
        if len(self.grids) != max(len(self.edges) - 1, 0) or len({len(g) for g in self.grids}) > 1 or \
                any(len(g) < 2 for g in self.grids):
            raise ValueError(f"column '{self.name}' needs one grid of 2 or more values per bin")
        if self.size != len(self.points) + len(self.grids) + self.missing or self.size < 1:
            raise ValueError(f"column '{self.name}' has {self.size} tokens but its points, bins and missing "
                             f"token make {len(self.points) + len(self.grids) + self.missing}")
        return self


class TokensState(BaseModel):
    format: Literal["genforge.table_tokens/1"]
    columns: Annotated[list[Annotated[Union[CategoryTokens, NumericTokens], Field(discriminator="enc")]],
                       Field(min_length=1)]


def check_tokens_state(state: Any, transformer) -> list[dict]:
    """The token layout of an autoregressive model, validated against its transformer (same modelled columns,
    one category token per label); returns the column specs."""
    checked = TokensState.model_validate(state)
    want = [(st["name"], st["enc"], len(st.get("labels", []))) for st in transformer.columns
            if st["enc"] in ("category", "numeric")]
    got = [(c.name, c.enc, c.size if c.enc == "category" else 0) for c in checked.columns]
    if [(a, b, k if b == "category" else 0) for a, b, k in want] != got:
        raise ValueError("its token columns are not the encoded columns of the schema")
    return [c.model_dump() for c in checked.columns]
