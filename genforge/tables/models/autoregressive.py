"""``autoregressive``: a table model that learns each column given the ones before it (in the spirit of
MOSTLY AI's TabularARGN), so joint structure such as ``education -> education_num`` comes out by itself.

* every cell is a token (:mod:`~genforge.tables.data.tokens`): categories as classes, numbers as exact values
  or quantile bins refined within the bin, missing as a token of its own;
* each column has an embedding table and a small MLP that predicts its token from the embeddings of the
  columns it is given (a masked concatenation, plus the mask itself); the loss is the sum of the columns'
  cross-entropies, so the model is a product of conditionals ``p(x_1) p(x_2 | x_1) ...`` in table order;
* **any column can come first**: for a share ``p_prefix`` of the training rows a random set of columns is given
  up front and only the others are predicted (each given that set plus the columns before it). Sampling with
  ``where`` gives the conditioned columns first (numbers too), imputation gives every present cell, so both
  are exact conditionals of the model, not rejection sampling;
* sampling draws the columns in order, each from its predicted distribution; the model's rows are then decoded
  through the table's rules and output fidelity rules like every table model's.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from genforge.core.config import ModelConfig
from genforge.core.errors import ConfigError
from genforge.core.registry import register
from genforge.core.train import distributed as dist
from genforge.core.train.ema import EMA
from genforge.core.train.optim import adam
from genforge.tables.models.base import NeuralTableGenerator

SAMPLE_BATCH = 10_000  # rows generated at a time
DEFAULT_STEPS = 2000     # the budget when none is given: about two minutes on Adult on two CPU cores ...
DEFAULT_MAX_EPOCHS = 50  # ... and at most this many passes over a small table


class AutoregressiveConfig(ModelConfig):
    embedding_dim: int = Field(8, gt=0, description="size of each column's value embedding")
    hidden_dims: tuple[int, ...] = Field((128, 128), description="MLP widths of each column's predictor")
    bins: int = Field(100, ge=2, description="quantile bins of a numeric column with more distinct values "
                                             "(fewer: one token per value)")
    refine: int = Field(8, ge=1, description="quantile grid points inside each bin (the values a bin decodes to)")
    batch_size: int = Field(512, gt=0)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    ema: float = Field(0.995, ge=0, lt=1, description="decay of the moving average of the weights that samples "
                                                   "(0: sample with the trained weights)")
    p_prefix: float = Field(0.3, ge=0, le=1, description="share of training rows given a random set of columns "
                                                         "first (what where= and impute use)")
    max_categories: int = Field(500, gt=1, description="categories kept per column (rarer ones pooled)")


class Predictors(nn.Module):
    """Embeddings of every column's tokens and one MLP head per column over the masked embeddings."""

    def __init__(self, sizes: list[int], dim: int, hidden: tuple[int, ...], dropout: float):
        super().__init__()
        self.register_buffer("offsets", torch.tensor([0] + list(np.cumsum(sizes)[:-1]), dtype=torch.long))
        self.embed = nn.Embedding(int(sum(sizes)), dim)
        width = len(sizes) * (dim + 1)
        heads = []
        for k in sizes:
            layers, i = [], width
            for h in hidden:
                layers += [nn.Linear(i, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
                i = h
            heads.append(nn.Sequential(*layers, nn.Linear(i, k)))
        self.heads = nn.ModuleList(heads)

    def embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """Every cell's token embedding: ``(n, C, dim)``."""
        return self.embed(x + self.offsets)

    def head(self, j: int, emb: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Column ``j``'s token logits from the cells' embeddings ``emb``, the ``known`` ones kept (zeros elsewhere)
        next to the known mask itself."""
        e = emb * known.unsqueeze(-1)
        return self.heads[j](torch.cat([e, known.unsqueeze(-1).to(e.dtype)], dim=-1).flatten(1))

    def logits(self, j: int, x: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Column ``j``'s token logits for rows ``x`` given the ``known`` cells."""
        return self.head(j, self.embeddings(x), known)


@register
class Autoregressive(NeuralTableGenerator):
    name = "autoregressive"
    description = "autoregressive table model: each column predicted from the ones before it (any order to condition)"
    Config: ClassVar = AutoregressiveConfig
    sampling_only = ("net_ema",)
    numeric_where = True
    supports_dp = True

    def private_parts(self):
        """DP-SGD on the predictors (embeddings and heads: the only network that sees rows)."""
        from genforge.tables.models.private import table_parts

        return table_parts(self, {"net": ("net",)}, what="the column predictors (embeddings and heads)")

    def prepare_private(self, df, plan: dict) -> None:
        """The released schema and encoding (see the base model), then the token bins from the stand-in table."""
        from genforge.tables.data.tokens import TableTokens

        super().prepare_private(df, plan)
        if self.stand_in is not None and not self.restored_encoding:
            self.tokens = TableTokens.fit(self.transformer, self.stand_in, self.config.bins, self.config.refine)

    @property
    def sampling_names(self) -> tuple[str, ...]:
        return ("net_ema",) if self.config.ema > 0 else ("net",)

    def sampler(self) -> "Predictors":
        """The network that samples: the moving average of the weights (or the weights themselves)."""
        return self.nets["net_ema"].shadow if self.config.ema > 0 else self.nets["net"]

    def __init__(self, **params):
        super().__init__(**params)
        self.tokens = None

    def transformer_options(self):
        return {"modes": False, "max_categories": self.config.max_categories}

    def prepare(self, df, metadata=None, seed: int = 0) -> None:
        from genforge.tables.data.tokens import TableTokens

        super().prepare(df, metadata, seed)
        self.tokens = TableTokens.fit(self.transformer, self.training_rows(df), self.config.bins, self.config.refine)
        if not self.tokens.specs:
            raise ConfigError("the table has no categorical, boolean, numeric or date column to learn; the "
                              "autoregressive model needs at least one")

    def train_config(self, data, options):
        """With no budget (steps, minutes or epochs) given: ``DEFAULT_STEPS`` steps, or ``DEFAULT_MAX_EPOCHS`` passes
        over the table when that is fewer."""
        if all(options.get(k) is None for k in ("steps", "minutes", "epochs")):
            cap = super().train_config(data, {**options, "epochs": DEFAULT_MAX_EPOCHS}).steps
            options = {**options, "epochs": None, "steps": min(DEFAULT_STEPS, cap)}
        return super().train_config(data, options)

    def check_buildable(self) -> None:
        super().check_buildable()
        if self.tokens is None:
            raise ConfigError(f"model '{self.name}' needs data before it can be built; call fit(df)")

    # -- networks --------------------------------------------------------------------------------------
    def make_networks(self):
        c = self.config
        net = Predictors(self.tokens.sizes, c.embedding_dim, tuple(c.hidden_dims), c.dropout)
        return {"net": net, **({"net_ema": EMA(net, c.ema)} if c.ema > 0 else {})}

    def make_optimizers(self):
        return {"net": adam(self.nets["net"].parameters(), self.config.lr, (0.9, 0.999), self.config.weight_decay)}

    def batch_source(self, df):
        from genforge.core.train.batches import TensorBatches

        tokens, _ = self.tokens.encode(self.training_rows(df))
        return TensorBatches(torch.from_numpy(tokens))

    def train_step(self, x, y):
        net = self.nets["net"]
        n, cols = x.shape
        order = torch.arange(cols, device=x.device)
        before = order[None, :] < order[:, None]  # before[j, k]: column k comes before column j
        # a random set of columns given first, for a share p_prefix of the rows (each column with a row-level rate)
        prefix = (dist.rand(n, cols, like=x) < dist.rand(n, 1, like=x)) & (dist.rand(n, 1, like=x) < self.config.p_prefix)
        loss = x.new_zeros((), dtype=torch.float32)
        emb = net.embeddings(x)  # once per batch: each layer runs once per step (what per-example gradients need)
        for j in range(cols):
            known = prefix | before[j].unsqueeze(0)
            known[:, j] = False
            nll = F.cross_entropy(net.head(j, emb, known).float(), x[:, j], reduction="none")
            loss = loss + (nll * (~prefix[:, j])).sum() / n
        opt = self.optimizers["net"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if "net_ema" in self.nets:
            self.nets["net_ema"].update()
        return {"nll": loss.detach()}

    # -- sampling --------------------------------------------------------------------------------------
    def generate_tokens(self, tokens: torch.Tensor, known: torch.Tensor, gen: torch.Generator,
                        no_missing: torch.Tensor | None = None) -> torch.Tensor:
        """Fill the unknown cells of ``tokens`` column by column, each drawn given the known ones; ``no_missing``
        marks cells that must not be drawn missing (holes being imputed)."""
        self.eval()
        net = self.sampler()
        x, known = tokens.clone().to(self.device), known.clone().to(self.device)
        with torch.no_grad():
            for j in range(x.shape[1]):
                rows = torch.nonzero(~known[:, j]).squeeze(1)
                if not len(rows):
                    continue
                logits = net.logits(j, x[rows], known[rows]).float().cpu()
                miss = self.tokens.missing_token(j)
                if no_missing is not None and miss is not None and logits.shape[1] > 1:
                    logits[no_missing[rows.cpu(), j], miss] = -torch.inf
                pick = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=gen).squeeze(1)
                x[rows, j] = pick.to(self.device)
                known[rows, j] = True
        return x.cpu()

    def _given(self, n: int, cond) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and known mask for ``cond`` (one ``where`` dict for all rows, or one dict per row)."""
        tokens = torch.zeros(n, len(self.tokens.specs), dtype=torch.long)
        known = torch.zeros(n, len(self.tokens.specs), dtype=torch.bool)
        index = {name: j for j, name in enumerate(self.tokens.names)}
        per_row = isinstance(cond, list)
        for r, where in enumerate(cond if per_row else [cond or {}]):
            for col, value in where.items():
                j = index.get(col)
                t = self.tokens.token_of(j, value) if j is not None else -1
                if t >= 0:
                    rows = r if per_row else slice(None)
                    tokens[rows, j], known[rows, j] = t, True
        return tokens, known

    def sample_frame(self, n, cond, rng, gen, fixed=None):
        parts = []
        for s in range(0, n, SAMPLE_BATCH):
            m = min(SAMPLE_BATCH, n - s)
            part = cond[s:s + m] if isinstance(cond, list) else cond
            tokens, known = self._given(m, part)
            parts.append(self.generate_tokens(tokens, known, gen).numpy())
        raw = self.tokens.decode(np.concatenate(parts), rng)
        return self.finish(raw, n, cond if fixed is None else fixed, rng)

    def impute_rows(self, rows: pd.DataFrame, rng, gen) -> pd.DataFrame:
        """Every present cell given, every hole drawn from the model's conditional (never drawn missing)."""
        tokens, known = self.tokens.encode(rows)
        present = rows[self.tokens.names].notna().to_numpy()
        known &= present
        out = self.generate_tokens(torch.from_numpy(tokens), torch.from_numpy(known), gen,
                                   no_missing=torch.from_numpy(~present))
        return self.finish(self.tokens.decode(out.numpy(), rng), len(rows), None, rng)

    # -- persistence -----------------------------------------------------------------------------------
    def weights_meta(self):
        return {**super().weights_meta(), "tokens": self.tokens.to_state()}

    def restore_meta(self, meta: dict) -> None:
        from genforge.tables.data.state import check_tokens_state
        from genforge.tables.data.tokens import TableTokens

        super().restore_meta(meta)
        self.tokens = TableTokens(self.transformer, check_tokens_state(meta.get("tokens"), self.transformer))
