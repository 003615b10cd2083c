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
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from genforge.core.config import TrainConfig, validate
from genforge.core.errors import ConfigError, DataError
from genforge.core.generator import Generator, NeuralGenerator

CONDITIONABLE = ("categorical", "boolean")


def parse_where(text: str | None) -> dict[str, str]:
    """``"sex=Female,income=>50K"`` -> ``{"sex": "Female", "income": ">50K"}`` (values as text)."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(f"--where expects column=value pairs separated by commas, got '{part}'")
        key, value = part.split("=", 1)
        out[key.strip()] = value.strip()
    return out


class TableGenerator(Generator):
    """Base of the table models. Subclasses implement ``train_in_run`` (neural ones get it from
    :class:`NeuralGenerator`) and ``sample_encoded`` (or override :meth:`sample_frame`)."""

    modality: ClassVar[str] = "table"

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.schema = None
        self.transformer = None

    # -- data ------------------------------------------------------------------------------------------
    def prepare(self, df: pd.DataFrame, metadata=None, seed: int = 0) -> None:
        """Infer the schema (``metadata`` overrides it) and fit the encoding."""
        from genforge.tables.data.schema import infer_schema
        from genforge.tables.data.transform import TableTransformer

        if not isinstance(df, pd.DataFrame):
            raise DataError(f"model '{self.name}' learns from a pandas DataFrame (or a table path); got {type(df).__name__}")
        if len(df) < 2:
            raise DataError(f"the table has {len(df)} row(s); at least 2 are needed to learn anything")
        dups = list(dict.fromkeys(df.columns[df.columns.duplicated()]))
        if dups:
            raise DataError(f"the table has duplicate column names ({', '.join(map(repr, dups))}); "
                            f"rename them so every column has its own name")
        self.schema = infer_schema(df, metadata)
        self.transformer = TableTransformer(self.schema, **self.transformer_options(), seed=seed).fit(df)
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

    def adopt_data(self, df, *, metadata=None, seed: int = 0, **_options) -> None:
        """Infer the schema and fit the encoding on ``df`` unless a trained model already has them."""
        if self.schema is None:
            self.prepare(df, metadata, seed)
        else:
            self._check_columns(df)

    # -- public API ----------------------------------------------------------------------------------------
    def fit(self, data, *, metadata=None, epochs: float | None = None, steps: int | None = None,
            minutes: float | None = None, seed: int = 0, run_dir: str | Path | None = None,
            progress: bool = False, **train_options: Any) -> "TableGenerator":
        """Learn from ``data`` (a DataFrame or a table path for :func:`~genforge.tables.data.readers.load_table`).

        ``metadata``: schema overrides (dict or JSON file). Neural models take ``epochs`` (passes
        over the data) or ``steps``, and ``minutes``; ``run_dir`` receives checkpoints and metrics.
        """
        source = "DataFrame"
        if isinstance(data, (str, Path)):
            from genforge.tables.data.readers import load_table

            data, source = load_table(data)
        self.prepare(data, metadata, seed)
        cfg = self.train_config(len(data), dict(epochs=epochs, steps=steps, minutes=minutes, seed=seed,
                                                progress=progress, **train_options))
        self.train_in_run(data, cfg, self.fit_run(run_dir, cfg, source))
        return self

    def train_config(self, n_rows: int, options: dict[str, Any]) -> TrainConfig:
        """A TrainConfig from options that may give ``epochs`` (converted to steps for this table)."""
        options = dict(options)
        epochs = options.pop("epochs", None)
        if epochs is not None:
            if epochs <= 0:
                raise ConfigError(f"--epochs must be positive, got {epochs}")
            batch = getattr(self.config, "batch_size", n_rows)
            options["steps"] = max(1, math.ceil(epochs * n_rows / min(batch, n_rows)))
        return validate(TrainConfig, options, what="training options")

    def sample(self, n: int, *, where: dict | None = None, seed: int | None = None) -> pd.DataFrame:
        """Draw ``n`` rows as a DataFrame with the training table's columns and dtypes.

        ``where``: ``{column: value}`` — every returned row has exactly these values (categorical
        and boolean columns; numbers too for gaussian-copula). ``seed`` makes it reproducible.
        """
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"number of rows must be a positive integer, got {n!r}")
        if not self.is_fitted:
            raise ConfigError(f"model '{self.name}' is not trained yet; call fit() or load a trained run")
        cond = self.normalise_where(where)
        self.transformer.reset_ids()  # the same seed gives the same table, ids included
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        df = self.sample_frame(n, cond, rng, gen)
        for col, value in cond.items():  # the model was trained to produce these; make it exact
            df[col] = pd.Series([value] * n, index=df.index).astype(df[col].dtype)
        return df

    def sample_frame(self, n: int, cond: dict, rng: np.random.Generator, gen: torch.Generator) -> pd.DataFrame:
        data = self.sample_encoded(n, cond, gen)
        return self.transformer.inverse_transform(data, rng=rng)

    def sample_encoded(self, n: int, cond: dict, gen: torch.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def impute(self, df: pd.DataFrame, *, seed: int | None = None) -> pd.DataFrame:
        """Fill the missing cells of ``df`` with values drawn from the model given the row's present cells.

        Present cells are never changed; columns must match the training table.
        """
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

    def impute_rows(self, rows: pd.DataFrame, rng: np.random.Generator, gen: torch.Generator) -> pd.DataFrame:
        """Candidates conditioned on each row's present categorical cells, the closest on its present
        numbers chosen; subclasses with a better conditional (the copula) override this."""
        k = 16
        out = []
        for _, row in rows.iterrows():
            cond = {c: row[c] for c in rows.columns if pd.notna(row[c]) and c in self.schema.names()
                    and self.schema[c].kind in CONDITIONABLE and self._seen(c, row[c])}
            cand = self.sample_frame(k, cond, rng, gen)
            for c, v in cond.items():
                cand[c] = v
            num = [c for c in rows.columns if pd.notna(row[c]) and self.schema[c].kind in ("continuous", "integer")]
            # candidates that leave a hole of the row empty come last (the model may draw "missing")
            d = sum((cand[c].isna().astype(float) * 1e6 for c in rows.columns
                     if pd.isna(row[c]) and self.schema[c].kind != "text"), pd.Series(0.0, index=cand.index))
            if num:
                span = [(self.schema[c].max or 1) - (self.schema[c].min or 0) or 1 for c in num]
                d = d + sum(((pd.to_numeric(cand[c], errors="coerce").fillna(0) - float(row[c])) / s) ** 2
                            for c, s in zip(num, span))
            best = int(np.argmin(d.to_numpy()))
            out.append(cand.iloc[[best]])
        return pd.concat(out, ignore_index=True)

    def _seen(self, col: str, value) -> bool:
        """Whether the model can condition on ``col == value`` (seen, and not pooled into ``__other__``)."""
        try:
            self.transformer.encode_condition(col, value)
        except ConfigError:
            return False
        return True

    def _check_columns(self, df: pd.DataFrame) -> None:
        if self.schema is None:
            raise ConfigError(f"model '{self.name}' is not trained yet; call fit() or load a trained run")
        want, got = self.schema.names(), list(df.columns)
        missing, extra = [c for c in want if c not in got], [c for c in got if c not in want]
        if missing or extra:
            raise DataError(f"the table's columns differ from the training table's: missing {missing or 'none'}, "
                            f"unexpected {extra or 'none'}; give it the same columns")

    # -- persistence -------------------------------------------------------------------------------------
    def weights_meta(self) -> dict[str, Any]:
        return {"schema": self.schema.to_dict(), "transformer": self.transformer.to_state()}

    def restore_meta(self, meta: dict) -> None:
        from genforge.tables.data.schema import Schema
        from genforge.tables.data.transform import TableTransformer

        self.schema = Schema.from_dict(meta["schema"])
        self.transformer = TableTransformer.from_state(meta["transformer"])


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

    def training_data(self, df):
        return EncodedTable(torch.from_numpy(self.transformer.transform(df)))

    def sample_encoded(self, n, cond, gen):
        self.eval()
        with torch.no_grad():
            return torch.cat([self.generate(min(1000, n - s), cond, gen) for s in range(0, n, 1000)]).numpy()

    def generate(self, n: int, cond: dict, gen: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class EncodedTable:
    """The trainer's view of a table: the encoded matrix as ``x``, no labels."""

    def __init__(self, x: torch.Tensor):
        self.x = x.float().contiguous()
        self.y = None
        self.source = "table"
