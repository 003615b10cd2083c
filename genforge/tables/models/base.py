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
from genforge.tables.data.rules import RuleSet
from genforge.tables.data.private_domain import in_domain
from genforge.tables.models import imputation
from genforge.tables.models.imputation import CONDITIONABLE
from genforge.tables.models.private import prepare_private
from genforge.tables.data.where import parse_where  # noqa: F401  (re-exported: models.base.parse_where)

CHUNK_ROWS = 100_000   # rows sampled at a time: memory stays bounded however many are asked for
BYTES_PER_CELL = 100   # a generous estimate of one cell of a DataFrame (text cells included)


class TableGenerator(Generator):
    """Base of the table models. Subclasses implement ``train_in_run`` (neural ones get it from
    :class:`NeuralGenerator`) and ``sample_encoded`` (or override :meth:`sample_frame`)."""

    modality: ClassVar[str] = "table"

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.schema = None
        self.transformer = None
        self.pairs = None  # category pairs seen together in training (tables.data.combos)
        self.rules = RuleSet()  # the rules every sampled row keeps (tables.data.rules)
        self.metadata = None  # the user's metadata (a dict), as prepare read it
        self.stand_in = None  # under --dp: the table drawn from the released histograms (tables.data.private_domain)

    # -- data ------------------------------------------------------------------------------------------
    def prepare(self, df: pd.DataFrame, metadata=None, seed: int = 0) -> None:
        """Infer the schema (``metadata`` overrides it), find and check the rules, and fit the encoding."""
        from genforge.tables.data.readers import check_unique_columns
        from genforge.tables.data.rule_detect import rules_for_training
        from genforge.tables.data.rule_repair import widen_sums
        from genforge.tables.data.schema import infer_schema, read_metadata
        from genforge.tables.data.transform import TableTransformer

        if not isinstance(df, pd.DataFrame):
            raise DataError(f"model '{self.name}' learns from a pandas DataFrame (or a table path); got {type(df).__name__}")
        if len(df) < 2:
            raise DataError(f"the table has {len(df)} row(s); at least 2 are needed to learn anything")
        check_unique_columns(df)
        meta = read_metadata(metadata)
        self.metadata, self.stand_in, self.restored_encoding = meta, None, False
        if not self.keeps_rules:  # no rules to keep, so none to look for in the data either
            meta = {**(meta or {}), "detect_rules": False}
        drop = bool((df.attrs.get("spec") or {}).get("drop_violating"))
        df, self.schema, self.rules = rules_for_training(df, meta, lambda d: infer_schema(d, meta), drop)
        if not self.keeps_rules and self.rules.rules:
            raise ConfigError(f"'{self.name}' cannot keep rules (it samples whole rows from its own mechanism); drop "
                              f"'rules' from --metadata, or use a model that keeps them (gaussian-copula, ctgan, tvae, "
                              f"autoregressive)")
        self.transformer = TableTransformer(self.schema, **self.transformer_options(), seed=seed).fit(df)
        widen_sums(self.rules, self.transformer.columns)
        self.pairs = observed_pairs(df, self.schema)
        if isinstance(self, NeuralGenerator):
            self.nets = {}  # new data, new encoding: networks are rebuilt for it

    # under --dp: the schema and encoding again, from the plan's noisy column histograms instead of the rows
    prepare_private = prepare_private

    def training_rows(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows a model learns from: those that keep every rule (all of them, unless --drop-violating);
        under ``--dp``, with values outside the released domain mapped into it."""
        from genforge.tables.data.rules import frame_getter

        if getattr(self, "stand_in", None) is not None:
            df = in_domain(df, self.schema)
        broken = self.rules.broken(frame_getter(df, self.schema))
        if not broken:
            return df
        return df[~np.logical_or.reduce([bad for _, bad in broken])].reset_index(drop=True)

    def finish(self, raw: dict, n: int, fixed, rng: np.random.Generator) -> pd.DataFrame:
        """The output table from a model's raw values: ``fixed`` cells (a ``where`` dict, or one dict per row) put
        in, every rule kept by decoding through it (:mod:`~genforge.tables.data.rule_repair`), then formatted."""
        from genforge.tables.data.rule_repair import grid_steps, pin, repair

        masks = pin(raw, fixed, n)
        repair(self.rules, self.schema, raw, masks, rng, grid_steps(self.schema, self.transformer.columns))
        return self.transformer.decode_values(raw, n, rng)

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
                                                            "; gaussian-copula and autoregressive also condition on "
                                                            "numbers"))
        self.rules.check_where(out)
        return out

    numeric_where: ClassVar[bool] = False
    #: whether sampling decodes through the rules (every model but the DP mechanisms, whose data must not be read
    #: outside their budget, so they neither detect rules nor take declared ones)
    keeps_rules: ClassVar[bool] = True

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

    def sample_frame(self, n: int, cond: dict, rng: np.random.Generator, gen: torch.Generator,
                     fixed: list[dict] | None = None) -> pd.DataFrame:
        """``n`` rows given ``cond`` (one ``where`` dict, or one per row); ``fixed``: per-row values the rows must
        hold (present cells when imputing; default: ``cond``)."""
        raw = self.transformer.raw_values(self.sample_encoded(n, cond, gen), rng=rng)
        return self.finish(raw, n, cond if fixed is None else fixed, rng)

    def sample_encoded(self, n: int, cond: dict, gen: torch.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    #: whether ``sample_frame`` takes a list of per-row ``where`` dicts (one call for rows with different conditions)
    row_conditions: ClassVar[bool] = False

    # imputation (tables.models.imputation): holes filled from the model given each row's present cells
    impute = imputation.impute
    rules_around = imputation.rules_around
    impute_rows = imputation.candidate_fill

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
                "rules": self.rules.to_state(), **({"pairs": self.pairs} if self.pairs else {})}

    def restore_meta(self, meta: dict) -> None:
        from genforge.tables.data.schema import Schema
        from genforge.tables.data.state import check_rules_state
        from genforge.tables.data.transform import TableTransformer

        self.schema = Schema.from_dict(meta["schema"])
        self.transformer = TableTransformer.from_state(meta["transformer"])
        self.restored_encoding = True  # a private run's released encoding is kept, never drawn again
        self.rules = check_rules_state(meta.get("rules"), self.schema)
        pairs = meta.get("pairs")
        self.pairs = pairs if isinstance(pairs, dict) else None


class NeuralTableGenerator(TableGenerator, NeuralGenerator):
    """A table model trained by the one Trainer on the transformer's matrix."""

    def check_buildable(self) -> None:
        if self.transformer is None:
            raise ConfigError(f"model '{self.name}' needs data before it can be built; call fit(df)")

    def training_data(self, df) -> "EncodedTable":
        """The table as the encoded matrix the networks learn from (the rows that keep every rule)."""
        return EncodedTable(torch.from_numpy(self.transformer.transform(self.training_rows(df))))

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
