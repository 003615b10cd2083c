"""What the tabular synthesizers share: schema, encoding, ``fit / sample(where=) / impute``.

A table model learns from a pandas DataFrame. :func:`~genforge.tables.data.schema.infer_schema`
decides each column's kind (overridable with a metadata file), and a
:class:`~genforge.tables.data.transform.TableTransformer` turns rows into the matrix the
neural models train on and back into a DataFrame with the input's columns, dtypes,
rounding, ranges and categories (fidelity by construction).

``where`` conditions (``{"sex": "Female", "income": ">50K"}``) are checked against the schema
before any sampling: an unknown column or a value never seen is a one-line ConfigError.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from genforge.core.config import TrainConfig, check_seed, validate
from genforge.core.errors import ConfigError, DataError, GenforgeWarning
from genforge.core.generator import Generator, NeuralGenerator
from genforge.tables.data.combos import observed_pairs, unseen_pairs

CONDITIONABLE = ("categorical", "boolean")
CHUNK_ROWS = 100_000   # rows sampled at a time: memory stays bounded however many are asked for
BYTES_PER_CELL = 100   # a generous estimate of one cell of a DataFrame (text cells included)


_QUOTE_HINT = 'quote a name or value that holds a comma or "=": city="Paris, TX" (a quote inside quotes is "")'


def _where_items(text: str):
    """Split ``--where`` text into ``(column, value)`` pairs: commas separate pairs, double quotes keep
    commas and ``=`` inside a name or value, ``""`` inside quotes is one quote."""
    i, n = 0, len(text)

    def token(stop: str) -> tuple[str, bool]:
        nonlocal i
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise ConfigError(f"--where {text}: a quote is not closed; {_QUOTE_HINT}")
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] not in stop:
                raise ConfigError(f"--where {text}: unexpected text after a quoted part; {_QUOTE_HINT}")
            return "".join(buf), True
        start = i
        while i < n and text[i] not in stop:
            i += 1
        return text[start:i].strip(), False

    while i < n:
        key, quoted_key = token("=,")
        if not key and not quoted_key and (i >= n or text[i] == ","):  # an empty part: "a=1,,b=2" or "a=1,"
            i += 1
            continue
        if i >= n or text[i] != "=":
            if key or i < n:
                raise ConfigError(f"--where expects column=value pairs separated by commas, got '{key}'; "
                                  f"{_QUOTE_HINT}")
            break
        i += 1
        value, _ = token(",")
        if not key:
            raise ConfigError(f"--where {text}: a pair has no column name before '='")
        yield key, value
        i += 1  # the comma


def parse_where(text: str | None) -> dict[str, str]:
    """``'sex=Female,income=>50K,city="Paris, TX"'`` -> ``{"sex": "Female", "income": ">50K", "city": "Paris, TX"}``
    (values as text; double quotes keep commas). A column given twice is refused."""
    out: dict[str, str] = {}
    for key, value in _where_items(text or ""):
        if key in out:
            raise ConfigError(f"--where gives column '{key}' twice ({key}={out[key]} and {key}={value}); "
                              f"give each column once")
        out[key] = value
    return out


class TableGenerator(Generator):
    """Base of the table models. Subclasses implement ``train_in_run`` (neural ones get it from
    :class:`NeuralGenerator`) and ``sample_encoded`` (or override :meth:`sample_frame`)."""

    modality: ClassVar[str] = "table"

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.schema = None
        self.transformer = None
        self.pairs = None  # category pairs seen together in training (tables.data.combos)

    # -- data ------------------------------------------------------------------------------------------
    def prepare(self, df: pd.DataFrame, metadata=None, seed: int = 0) -> None:
        """Infer the schema (``metadata`` overrides it) and fit the encoding."""
        from genforge.tables.data.readers import check_unique_columns
        from genforge.tables.data.schema import infer_schema
        from genforge.tables.data.transform import TableTransformer

        if not isinstance(df, pd.DataFrame):
            raise DataError(f"model '{self.name}' learns from a pandas DataFrame (or a table path); got {type(df).__name__}")
        if len(df) < 2:
            raise DataError(f"the table has {len(df)} row(s); at least 2 are needed to learn anything")
        check_unique_columns(df)
        self.schema = infer_schema(df, metadata)
        self.transformer = TableTransformer(self.schema, **self.transformer_options(), seed=seed).fit(df)
        self.pairs = observed_pairs(df, self.schema)
        if isinstance(self, NeuralGenerator):
            self.nets = {}  # new data, new encoding: networks are rebuilt for it

    def transformer_options(self) -> dict[str, Any]:
        return {}

    def normalise_where(self, where: dict | None) -> dict[str, Any]:
        """Check ``where`` against the schema; values are converted to the column's type."""
        if not where:
            return {}
        out = {}
        for col, value in where.items():
            if col not in self.schema.names():
                raise ConfigError(f"--where names unknown column '{col}'; columns are: {', '.join(self.schema.names())}")
            c = self.schema[col]
            if c.kind in CONDITIONABLE:
                cats = list(c.categories or [])
                match = [v for v in cats if str(v) == str(value) or v == value]
                if not match and c.kind == "boolean":  # true/false/1/0/yes/no in any case
                    from genforge.tables.data.columns import match_label

                    i = match_label(cats, value, boolean=True)
                    match = [] if i is None else [cats[i]]
                if not match:
                    shown = ", ".join(map(str, cats[:8])) + (" ..." if len(cats) > 8 else "")
                    raise ConfigError(f"--where {col}={value}: '{value}' never appears in column '{col}'; seen: {shown}")
                out[col] = match[0]
            elif c.kind in ("continuous", "integer") and self.numeric_where:
                try:
                    number = float(value)
                except (TypeError, ValueError):
                    raise ConfigError(f"--where {col}={value}: column '{col}' is numeric; give a number") from None
                if not (c.min is None or c.min <= number <= c.max):
                    raise ConfigError(f"--where {col}={value}: outside the range seen in column '{col}' "
                                      f"({c.min:g} to {c.max:g}); pick a value inside it")
                if c.kind == "integer" and number != round(number):
                    raise ConfigError(f"--where {col}={value}: column '{col}' holds whole numbers; give one")
                out[col] = number
            else:
                kinds = "categorical/boolean" + (" or numeric" if self.numeric_where else "")
                raise ConfigError(f"--where {col}=...: model '{self.name}' can condition on {kinds} columns, and "
                                  f"'{col}' is {c.kind}" + ("" if self.numeric_where else
                                                            "; gaussian-copula also conditions on numbers"))
        return out

    numeric_where: ClassVar[bool] = False

    def warn_unseen(self, cond: dict[str, Any]) -> None:
        """Warn (GenforgeWarning) for each pair of conditions that no training row holds together."""
        for a, va, b, vb in unseen_pairs(self.pairs, self.schema, cond):
            warnings.warn(GenforgeWarning(f"--where {a}={va} and {b}={vb}: no row of the training table has both; "
                                          f"the rows will have them, but such rows are unlike the real data"))

    def adopt_data(self, df, *, metadata=None, seed: int = 0, **_options) -> None:
        """Infer the schema and fit the encoding on ``df`` unless a trained model already has them."""
        if self.schema is None:
            self.prepare(df, metadata, seed)
        else:
            self._check_columns(df)

    # -- public API ----------------------------------------------------------------------------------------
    def refit_data(self, df, *, metadata=None, seed: int = 0, **_options) -> None:
        """``fit`` on a table always infers the schema and fits the encoding afresh."""
        self.prepare(df, metadata, seed)

    def train_config(self, data, options: dict[str, Any]) -> TrainConfig:
        """A TrainConfig from options that may give ``epochs`` (converted to steps for ``data``, a table
        or its row count)."""
        options = dict(options)
        epochs = options.pop("epochs", None)
        n_rows = data if isinstance(data, int) else len(data)
        if epochs is not None:
            if epochs <= 0:
                raise ConfigError(f"--epochs must be positive, got {epochs}")
            from genforge.core.train import distributed

            batch = getattr(self.config, "batch_size", n_rows) * distributed.world_size_planned()  # global batch
            options["steps"] = max(1, math.ceil(epochs * n_rows / min(batch, n_rows)))
        return validate(TrainConfig, options, what="training options")

    def sample(self, n: int, *, where: dict | None = None, seed: int | None = None) -> pd.DataFrame:
        """Draw ``n`` rows as a DataFrame with the training table's columns and dtypes.

        ``where``: ``{column: value}`` — every returned row has exactly these values (categorical
        and boolean columns; numbers too for gaussian-copula). ``seed`` makes it reproducible. The
        rows are those of :meth:`sample_chunks` put together; a request over the memory limit is
        refused (stream it with :meth:`sample_chunks`, as ``genforge sample`` does).
        """
        from genforge.core.limits import check_memory

        self.check_count(n, "rows")
        check_memory(n * max(1, len(self.schema.columns)) * BYTES_PER_CELL, f"holding {n:,} rows in memory",
                     "sample fewer at once, or stream them with sample_chunks() or 'genforge sample', which "
                     "writes in chunks")
        return pd.concat(list(self.sample_chunks(n, where=where, seed=seed)))

    def sample_chunks(self, n: int, *, where: dict | None = None, seed: int | None = None):
        """Yield ``n`` rows as DataFrames of at most ``CHUNK_ROWS`` rows each (indexed ``0..n-1`` across
        chunks), so any number of rows can be written with bounded memory; the rows for a seed are the
        same however they are consumed."""
        self.check_count(n, "rows")
        check_seed(seed)
        cond = self.normalise_where(where)
        self.warn_unseen(cond)
        self.transformer.reset_ids()  # the same seed gives the same table, ids included
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        for start in range(0, n, CHUNK_ROWS):
            m = min(CHUNK_ROWS, n - start)
            df = self.sample_frame(m, cond, rng, gen)
            for col, value in cond.items():  # the model was trained to produce these; make it exact
                df[col] = pd.Series([value] * m, index=df.index).astype(df[col].dtype)
            df.index = pd.RangeIndex(start, start + m)
            yield df

    def sample_frame(self, n: int, cond: dict, rng: np.random.Generator, gen: torch.Generator) -> pd.DataFrame:
        data = self.sample_encoded(n, cond, gen)
        return self.transformer.inverse_transform(data, rng=rng)

    def sample_encoded(self, n: int, cond: dict, gen: torch.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def impute(self, df: pd.DataFrame, *, seed: int | None = None) -> pd.DataFrame:
        """Fill the missing cells of ``df`` with values drawn from the model given the row's present cells.

        Present cells are never changed; columns must match the training table.
        """
        check_seed(seed)
        self._check_columns(df)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        out = df.copy()
        holes = df.isna()
        rows = np.flatnonzero(holes.to_numpy().any(1))
        if len(rows) == 0:
            return out
        filled = self.impute_rows(df.iloc[rows].reset_index(drop=True), rng, gen)
        for j, col in enumerate(df.columns):
            mask = holes[col].to_numpy()[rows]
            if mask.any():
                vals = filled[col].to_numpy()[mask]
                if out[col].dtype != filled[col].dtype:
                    out[col] = out[col].astype(filled[col].dtype) if df[col].isna().all() else out[col].astype(object)
                out.iloc[rows[mask], j] = vals
                out[col] = _settle_dtype(out[col], filled[col].dtype)
        return out

    #: whether ``sample_frame`` takes a list of per-row ``where`` dicts (one call for rows with different conditions)
    row_conditions: ClassVar[bool] = False

    def impute_rows(self, rows: pd.DataFrame, rng: np.random.Generator, gen: torch.Generator) -> pd.DataFrame:
        """Candidates conditioned on each row's present categorical cells, the closest on its present
        numbers chosen; subclasses with a better conditional (the copula) override this.

        Batched: the candidates of many rows are drawn in one call (with one condition per row when the
        model takes ``row_conditions``, else one call per distinct condition) and scored together."""
        k, most = 16, 2048  # candidates per row; rows per call
        cols = list(rows.columns)
        kinds = [self.schema[c].kind for c in cols]
        present = rows.notna().to_numpy()
        seen: dict[tuple, bool] = {}

        def can_condition(c, v) -> bool:
            key = (c, type(v).__name__, str(v))
            if key not in seen:
                seen[key] = self._seen(c, v)
            return seen[key]

        condable = [j for j, kind in enumerate(kinds) if kind in CONDITIONABLE]
        conds = [{cols[j]: rows.iat[r, j] for j in condable if present[r, j] and can_condition(cols[j], rows.iat[r, j])}
                 for r in range(len(rows))]
        groups: dict[tuple, list[int]] = {}
        for r, cond in enumerate(conds):
            groups.setdefault(() if self.row_conditions else tuple(cond.items()), []).append(r)
        numbers = {j: pd.to_numeric(rows[cols[j]], errors="coerce").to_numpy(dtype=float)
                   for j, kind in enumerate(kinds) if kind in ("continuous", "integer") and present[:, j].any()}
        picked = []
        for members in (np.asarray(g[i:i + most]) for g in groups.values() for i in range(0, len(g), most)):
            m = len(members)
            owner = np.repeat(members, k)  # the row each candidate is drawn for: k in a row
            cond = conds[members[0]]
            if self.row_conditions:
                cond = [conds[r] for r in owner] if any(conds[r] for r in members) else {}
            cand = self.sample_frame(m * k, cond, rng, gen)
            # candidates that leave a hole of the row empty come last (the model may draw "missing")
            d = np.zeros(m * k)
            for j, c in enumerate(cols):
                hole = ~present[owner, j]
                if kinds[j] != "text" and hole.any():
                    d += (cand[c].isna().to_numpy() & hole) * 1e6
            dist = np.zeros(m * k)
            for j, want in numbers.items():
                on = present[owner, j]
                if on.any():
                    span = (self.schema[cols[j]].max or 1) - (self.schema[cols[j]].min or 0) or 1
                    got = pd.to_numeric(cand[cols[j]], errors="coerce").fillna(0).to_numpy(dtype=float)
                    dist += np.where(on, ((got - want[owner]) / span) ** 2, 0.0)
            d = d + dist
            best = d.reshape(m, k).argmin(1) + np.arange(m) * k
            picked.append(cand.iloc[best].set_axis(members))
        return pd.concat(picked).sort_index()

    def _seen(self, col: str, value) -> bool:
        """Whether the model can condition on ``col == value`` (seen, and not pooled into ``__other__``)."""
        try:
            self.transformer.encode_condition(col, value)
        except ConfigError:
            return False
        return True

    def _check_columns(self, df: pd.DataFrame) -> None:
        if self.schema is None:
            self.check_fitted()
        want, got = self.schema.names(), list(df.columns)
        missing, extra = [c for c in want if c not in got], [c for c in got if c not in want]
        if missing or extra:
            raise DataError(f"the table's columns differ from the training table's: missing {missing or 'none'}, "
                            f"unexpected {extra or 'none'}; give it the same columns")

    # -- persistence -------------------------------------------------------------------------------------
    def weights_meta(self) -> dict[str, Any]:
        return {"schema": self.schema.to_dict(), "transformer": self.transformer.to_state(),
                **({"pairs": self.pairs} if self.pairs else {})}

    def restore_meta(self, meta: dict) -> None:
        from genforge.tables.data.schema import Schema
        from genforge.tables.data.transform import TableTransformer

        self.schema = Schema.from_dict(meta["schema"])
        self.transformer = TableTransformer.from_state(meta["transformer"])
        pairs = meta.get("pairs")
        self.pairs = pairs if isinstance(pairs, dict) else None


def _settle_dtype(s: pd.Series, dtype) -> pd.Series:
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


class NeuralTableGenerator(TableGenerator, NeuralGenerator):
    """A table model trained by the one Trainer on the transformer's matrix."""

    def check_buildable(self) -> None:
        if self.transformer is None:
            raise ConfigError(f"model '{self.name}' needs data before it can be built; call fit(df)")

    def training_data(self, df) -> "EncodedTable":
        """The table as the encoded matrix the networks learn from."""
        return EncodedTable(torch.from_numpy(self.transformer.transform(df)))

    def batch_source(self, df):
        from genforge.core.train.batches import TensorBatches

        return TensorBatches(self.training_data(df).x)

    row_conditions: ClassVar[bool] = True

    def sample_encoded(self, n, cond, gen):
        """``n`` encoded rows; ``cond`` is one ``where`` dict for all rows or a list of ``n``, one per row."""
        self.eval()
        part = (lambda s: cond[s:s + 1000]) if isinstance(cond, list) else (lambda s: cond)
        with torch.no_grad():
            return torch.cat([self.generate(min(1000, n - s), part(s), gen) for s in range(0, n, 1000)]).numpy()

    def generate(self, n: int, cond: dict, gen: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class EncodedTable:
    """The trainer's view of a table: the encoded matrix as ``x``, no labels."""

    def __init__(self, x: torch.Tensor):
        self.x = x.float().contiguous()
        self.y = None
        self.source = "table"
