"""``gaussian-copula``: the fast statistical baseline, with exact conditional sampling.

Each column is mapped to a standard normal score through its own marginal:

* numbers (and datetimes as epoch seconds): the empirical CDF (tied values share the middle of
  their step, so point masses such as a 35% spike at 0.0 come back exactly), inverted through a
  grid of quantiles;
* categories (and booleans, and a numeric column's "is missing" flag): each category owns an
  interval of the uniform scale, its width the category's share; a row's score is drawn inside
  its category's interval.

The scores' correlation matrix is the copula. Sampling draws correlated normal scores and maps
them back. Conditioning is exact: a numeric value fixes its score, a category restricts its score
to an interval (a truncated multivariate normal, sampled by Gibbs sweeps), and the remaining
scores come from the conditional Gaussian. :meth:`impute` uses the same machinery per row.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from scipy import stats

from genforge.core.config import ModelConfig
from genforge.tables.models.base import TableGenerator
from genforge.core.registry import register

NUMERIC = ("continuous", "integer", "datetime")
DISCRETE = ("categorical", "boolean")
EPS = 1e-6


class CopulaConfig(ModelConfig):
    quantiles: int = Field(1001, gt=10, description="grid points of each numeric column's inverse CDF")
    gibbs_sweeps: int = Field(8, ge=1, description="Gibbs sweeps for conditions on categories")


@register
class GaussianCopula(TableGenerator):
    name = "gaussian-copula"
    description = "Gaussian copula over empirical marginals: fast baseline, exact conditional sampling"
    Config: ClassVar = CopulaConfig
    numeric_where = True

    def transformer_options(self):
        return {"modes": False}  # the copula needs the output rules, not the neural encoding

    def __init__(self, **params):
        super().__init__(**params)
        self.vars: list[dict] = []   # one per latent variable: {"column", "type": "numeric"|"discrete"|"missing", ...}
        self.sigma: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        return self.sigma is not None

    # -- fitting -----------------------------------------------------------------------------------------
    def train_in_run(self, df: pd.DataFrame, config, run, resume: bool = False) -> dict:
        """Fit the marginals and the correlation (seconds; no training loop), then save into ``run``."""
        t0 = time.perf_counter()
        self.fit_table(self.training_rows(df), config.seed)
        summary = {"model": self.name, "status": "finished", "step": 1, "elapsed": round(time.perf_counter() - t0, 2),
                   "losses": {}}
        if run is not None:
            self.save_weights(run)
            run.write_summary(summary)
        return summary

    def fit_table(self, df: pd.DataFrame, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.vars, scores = [], []
        for col in self.schema.columns:
            if col.kind in NUMERIC:
                v = self.transformer.numbers(col.name, df[col.name])
                present = ~np.isnan(v)
                if (~present).any():
                    share = float((~present).mean())
                    self.vars.append({"column": col.name, "type": "missing", "cum": [0.0, 1 - share, 1.0]})
                    scores.append(self._discrete_scores(np.where(present, 0, 1), [0.0, 1 - share, 1.0], rng))
                vals = v[present] if present.any() else np.zeros(1)
                grid = np.quantile(vals, np.linspace(0, 1, self.config.quantiles))
                self.vars.append({"column": col.name, "type": "numeric", "grid": grid.tolist()})
                u = np.full(len(v), 0.5)
                u[present] = stats.rankdata(vals, method="average") / (len(vals) + 1)
                scores.append(stats.norm.ppf(u))
            elif col.kind in DISCRETE:
                codes, cats = self._codes(df[col.name])
                freq = np.bincount(codes, minlength=len(cats)) / len(codes)
                cum = np.concatenate([[0.0], np.cumsum(freq)])
                cum[-1] = 1.0
                self.vars.append({"column": col.name, "type": "discrete", "categories": cats, "cum": cum.tolist()})
                scores.append(self._discrete_scores(codes, cum, rng))
        z = np.column_stack(scores) if scores else np.zeros((len(df), 0))
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant score has no correlation: 0 below
            corr = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.ones((z.shape[1], z.shape[1]))
        corr = np.nan_to_num(np.atleast_2d(corr))
        np.fill_diagonal(corr, 1.0)
        w, v = np.linalg.eigh(corr)  # nearest positive-definite correlation
        corr = (v * np.clip(w, 1e-6, None)) @ v.T
        d = np.sqrt(np.diag(corr))
        self.sigma = corr / np.outer(d, d)

    @staticmethod
    def _codes(series: pd.Series) -> tuple[np.ndarray, list]:
        s = series.astype(object).where(series.notna(), None)
        counts = s.value_counts(dropna=False)
        cats = [None if (c is None or (isinstance(c, float) and np.isnan(c))) else c for c in counts.index]
        cats = [c.item() if hasattr(c, "item") else c for c in cats]
        lookup = {("__none__" if c is None else c): i for i, c in enumerate(cats)}
        codes = np.array([lookup["__none__" if v is None else v] for v in s], dtype=np.int64)
        return codes, cats

    @staticmethod
    def _discrete_scores(codes: np.ndarray, cum, rng) -> np.ndarray:
        cum = np.asarray(cum)
        lo, hi = cum[codes], cum[codes + 1]
        u = lo + (hi - lo) * rng.uniform(0.05, 0.95, len(codes))
        return stats.norm.ppf(np.clip(u, EPS, 1 - EPS))

    # -- sampling ------------------------------------------------------------------------------------------
    def _bounds(self, i: int, value) -> tuple[float, float]:
        """Score interval of latent variable ``i`` for a condition value (equal ends for numbers)."""
        var = self.vars[i]
        if var["type"] == "numeric":
            grid = np.asarray(var["grid"])
            u = np.interp(float(value), grid, np.linspace(0, 1, len(grid))) if grid[-1] > grid[0] else 0.5
            z = float(stats.norm.ppf(np.clip(u, EPS, 1 - EPS)))
            return z, z
        if var["type"] == "missing":
            k = 1 if value else 0
        else:
            k = next(j for j, c in enumerate(var["categories"]) if c == value or str(c) == str(value))
        cum = var["cum"]
        return float(stats.norm.ppf(max(cum[k], EPS))), float(stats.norm.ppf(min(cum[k + 1], 1 - EPS)))

    def _sample_scores(self, n: int, lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws of the latent scores with variable ``j`` inside ``[lo[:, j], hi[:, j]]`` where bounded."""
        sig = self.sigma
        m = sig.shape[0]
        fixed = np.isfinite(lo) | np.isfinite(hi)              # (n, m): conditioned variables per row
        z = np.zeros((n, m))
        patterns, inverse = np.unique(fixed, axis=0, return_inverse=True)
        for p, pattern in enumerate(patterns):
            rows = np.flatnonzero(inverse.ravel() == p)
            c, o = np.flatnonzero(pattern), np.flatnonzero(~pattern)
            zc = np.zeros((len(rows), len(c)))
            if len(c):
                l, h = lo[np.ix_(rows, c)], hi[np.ix_(rows, c)]
                zc = np.where(l == h, l, np.clip(0.0, l, h))
                free = l < h
                if free.any():
                    prec = np.linalg.inv(sig[np.ix_(c, c)])
                    for _ in range(self.config.gibbs_sweeps):
                        for j in range(len(c)):
                            if not free[:, j].any():
                                continue
                            others = np.arange(len(c)) != j
                            mu = -(zc[:, others] @ prec[j, others]) / prec[j, j]
                            sd = 1 / np.sqrt(prec[j, j])
                            a, b = (l[:, j] - mu) / sd, (h[:, j] - mu) / sd
                            draw = stats.truncnorm.rvs(a, b, loc=mu, scale=sd, random_state=rng)
                            zc[:, j] = np.where(free[:, j], draw, zc[:, j])
            if len(o):
                if len(c):
                    k = sig[np.ix_(o, c)] @ np.linalg.inv(sig[np.ix_(c, c)])
                    mean = zc @ k.T
                    cov = sig[np.ix_(o, o)] - k @ sig[np.ix_(c, o)]
                else:
                    mean, cov = np.zeros((len(rows), len(o))), sig[np.ix_(o, o)]
                w, v = np.linalg.eigh((cov + cov.T) / 2)
                root = v * np.sqrt(np.clip(w, 0, None))
                z[np.ix_(rows, o)] = mean + rng.standard_normal((len(rows), len(o))) @ root.T
            z[np.ix_(rows, c)] = zc
        return z

    def _decode(self, z: np.ndarray, rng: np.random.Generator, fixed) -> pd.DataFrame:
        u = stats.norm.cdf(z)
        values: dict[str, np.ndarray] = {}
        missing: dict[str, np.ndarray] = {}
        for i, var in enumerate(self.vars):
            if var["type"] == "numeric":
                grid = np.asarray(var["grid"])
                values[var["column"]] = np.interp(u[:, i], np.linspace(0, 1, len(grid)), grid)
            elif var["type"] == "missing":
                missing[var["column"]] = u[:, i] >= var["cum"][1]
            else:
                k = np.clip(np.searchsorted(var["cum"], u[:, i], side="right") - 1, 0, len(var["categories"]) - 1)
                cats = np.empty(len(var["categories"]), dtype=object)
                cats[:] = var["categories"]
                values[var["column"]] = cats[k]
        for col, miss in missing.items():
            values[col] = np.where(miss, np.nan, values[col])
        return self.finish(values, len(z), fixed, rng)

    def sample_frame(self, n, cond, rng, gen, fixed=None):
        m = len(self.vars)
        lo, hi = np.full((n, m), -np.inf), np.full((n, m), np.inf)
        for col, value in cond.items():
            for i, var in enumerate(self.vars):
                if var["column"] == col and var["type"] != "missing":
                    lo[:, i], hi[:, i] = self._bounds(i, value)
        return self._decode(self._sample_scores(n, lo, hi, rng), rng, cond if fixed is None else fixed)

    def impute_rows(self, rows: pd.DataFrame, rng, gen) -> pd.DataFrame:
        n, m = len(rows), len(self.vars)
        lo, hi = np.full((n, m), -np.inf), np.full((n, m), np.inf)
        for i, var in enumerate(self.vars):
            col = rows[var["column"]]
            kind = self.schema[var["column"]].kind
            for r, value in enumerate(col):
                if var["type"] == "missing":  # a hole is filled with a value: draw it as present
                    lo[r, i], hi[r, i] = self._bounds(i, False)
                elif pd.notna(value):
                    if var["type"] == "numeric":
                        value = self.transformer.numbers(var["column"], pd.Series([value]))[0]
                    elif not any(c == value or str(c) == str(value) for c in var["categories"]):
                        continue  # never seen: leave it free
                    lo[r, i], hi[r, i] = self._bounds(i, value)
        return self._decode(self._sample_scores(n, lo, hi, rng), rng, None)

    # -- persistence ---------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"sigma": torch.from_numpy(self.sigma)}

    def weights_meta(self):
        return {**super().weights_meta(), "vars": self.vars}

    @classmethod
    def from_weights(cls, model_config, tensors, meta):
        from genforge.tables.data.state import check_copula_vars

        model = cls(**model_config)
        model.restore_meta(meta)
        sigma = tensors["sigma"].numpy().astype(np.float64)
        check_copula_vars(meta.get("vars"), model.schema.names(), sigma.shape)
        if not (np.isfinite(sigma).all() and np.allclose(sigma, sigma.T)):
            raise ValueError("the correlation matrix is not a finite symmetric matrix")
        np.linalg.cholesky(sigma + 1e-9 * np.eye(len(sigma)))  # LinAlgError (a ValueError) unless positive definite
        model.vars = meta["vars"]
        model.sigma = sigma
        return model
