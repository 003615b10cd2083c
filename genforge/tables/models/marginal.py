"""``mst`` and ``aim``: smartnoise-synth's differentially private marginal synthesizers as genforge models.

MST (McKenna et al. 2021, the NIST 2018 winner) measures every 1-way marginal and a maximum spanning tree of
2-way marginals with Gaussian noise; AIM (McKenna et al. 2022) picks the worst-approximated marginals of a
workload round by round. Both fit a graphical model to the noisy marginals (Private-PGM, the ``mbi``
package) and sample from it. They are private by construction: there is no training loop, the budget is
``--dp epsilon=E,delta=D`` (required) and the run records it like a DP-SGD run.

genforge discretises the table itself and hands the mechanisms integer codes over a domain it knows
(categories from the schema; numbers in ``bins`` equal-width bins between the schema's min and max, drawn
back uniformly inside a bin and rounded like the real column; a missing value is one more code), so the
mechanisms never see raw values and the fitted model is a handful of arrays: the graphical model's
potentials and marginals (and MST's kept-value masks) are saved as tensors, the domain as JSON. The
category lists and ranges come from the user's metadata or, for the columns it leaves open, from noisy
column histograms paid from a share of the budget (:mod:`genforge.tables.data.private_domain`); the run
says which.
OpenDP draws the noise from the operating system's secure random source, so a fit cannot be repeated
bit for bit with a seed (sampling can).
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from genforge.core.config import ModelConfig
from genforge.core.errors import ConfigError
from genforge.core.privacy import check_rows, need
from genforge.core.registry import register
from genforge.tables.models.base import TableGenerator

NUMERIC = ("continuous", "integer")
DISCRETE = ("categorical", "boolean")


class MarginalConfig(ModelConfig):
    """How genforge discretises a table for MST/AIM, and AIM's limits."""
    bins: int = Field(16, ge=2, le=256, description="equal-width bins per numeric column")
    max_cells: int = Field(10000, gt=0, description="aim: largest marginal (cells) in the workload")
    max_model_size: float = Field(80, gt=0, description="aim: size limit of the graphical model (MB)")
    rounds: int | None = Field(None, gt=0, description="aim: most select-measure rounds (default 16 per column; "
                                                       "each refits the graphical model, so fewer run faster)")


@contextmanager
def _numpy_seed(seed: int):
    """Seed numpy's global generator (mbi samples from it) and put the caller's state back afterwards."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


class _Marginal(TableGenerator):
    """Discretise, run the mechanism, keep the graphical model; see the module docstring."""

    keeps_rules = False  # detection would read the data outside the budget; declared rules are refused

    Config: ClassVar = MarginalConfig
    supports_dp = True
    needs_dp = True  # private by construction: refused without --dp (core.train.private.plan)

    def __init__(self, **params):
        super().__init__(**params)
        self.mrf = None        # mbi.MarkovRandomField
        self.supports = None   # MST: per column, the codes kept apart after compression
        self.plan = None

    @property
    def is_fitted(self) -> bool:
        """Whether the graphical model exists."""
        return self.mrf is not None

    # -- privacy --------------------------------------------------------------------------------------------
    def private_plan(self, spec, data) -> dict:
        """The run's guarantee (core.train.private calls this): the mechanism gets the budget, less the share
        spent on releasing the domain when the metadata does not give it all
        (:func:`genforge.tables.models.private.mechanism_domain`)."""
        from genforge.tables.models.private import mechanism_domain

        check_rows(spec, len(data))
        self.check_kinds()
        plan = {**spec.model_dump(), "noise_multiplier": None, "steps": 1, "examples": len(data), "unit": "row",
                "private": "every measured marginal", **mechanism_domain(self, spec, data)}
        plan["mechanism"] = (f"smartnoise-synth {self.name.upper()} on {self.domain_size()} discretised columns "
                             f"(epsilon={plan['mechanism_epsilon']:.3g}, delta={plan['mechanism_delta']:.2g})")
        return plan

    def check_kinds(self) -> None:
        """Refuse columns other than categorical and numeric ones, naming them."""
        bad = [c.name for c in self.schema.columns if c.kind not in NUMERIC + DISCRETE]
        if bad:
            kinds = ", ".join(f"{b} is {self.schema[b].kind}" for b in bad)
            raise ConfigError(f"'{self.name}' models categorical and numeric columns only ({kinds}); drop "
                              f"{'that column' if len(bad) == 1 else 'those columns'} or set a kind in --metadata")

    def domain_size(self) -> int:
        """Columns the mechanism sees."""
        return len(self.schema.columns)

    # -- discretisation -------------------------------------------------------------------------------------
    def _cards(self) -> list[int]:
        """Codes per column: its categories or bins, and one more for "missing" where the column has gaps."""
        out = []
        for c in self.schema.columns:
            k = len(c.categories or []) if c.kind in DISCRETE else self.config.bins
            out.append(k + (1 if c.missing_rate > 0 else 0))
        return out

    def _missing_code(self, c, card: int) -> int:
        return card - 1 if c.missing_rate > 0 else -1

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Integer codes ``(rows, columns)`` over the domain of :meth:`_cards`."""
        cols = []
        for c, card in zip(self.schema.columns, self._cards()):
            s = df[c.name]
            gap = max(self._missing_code(c, card), 0)  # a column without gaps has no missing cell to encode
            if c.kind in DISCRETE:
                index = {str(v): i for i, v in enumerate(c.categories or [])}
                codes = s.map(lambda v: index.get(str(v), gap) if pd.notna(v) else gap)
                cols.append(codes.to_numpy(dtype=np.int64))
            else:
                v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
                lo, hi = float(c.min), float(c.max)
                width = (hi - lo) / self.config.bins or 1.0
                codes = np.clip(np.floor((v - lo) / width), 0, self.config.bins - 1)
                cols.append(np.where(np.isnan(v), gap, codes).astype(np.int64))
        return np.stack(cols, axis=1)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Rows back from codes: categories as seen, numbers uniform inside their bin, rounded like the column."""
        out = {}
        for j, (c, card) in enumerate(zip(self.schema.columns, self._cards())):
            k = codes[:, j]
            missing = k == self._missing_code(c, card)
            if c.kind in DISCRETE:
                cats = np.asarray(list(c.categories or []) + [None] * (card - len(c.categories or [])), dtype=object)
                values = pd.Series(cats[k], dtype=object)
            else:
                lo, hi = float(c.min), float(c.max)
                width = (hi - lo) / self.config.bins
                x = lo + (np.minimum(k, self.config.bins - 1) + rng.random(len(k))) * width
                x = np.clip(x, lo, hi)
                x = np.round(x) if c.kind == "integer" else (np.round(x, c.decimals) if c.decimals is not None else x)
                values = pd.Series(np.where(missing, np.nan, x))
            out[c.name] = _as_dtype(values, c.dtype, missing.any())
        return pd.DataFrame(out)

    # -- fit / sample -------------------------------------------------------------------------------------
    def train_in_run(self, df: pd.DataFrame, config, run, resume: bool = False) -> dict:
        """Run the mechanism on the discretised table with the whole ``--dp`` budget (seconds to minutes)."""
        if not config.dp:
            raise ConfigError(f"'{self.name}' is a differentially private mechanism and needs a budget: add --dp "
                              f"epsilon=E,delta=D (e.g. --dp epsilon=3,delta=1e-6)")
        need("snsynth", "smartnoise-synth")
        from mbi import Dataset, Domain

        t0 = time.perf_counter()
        self.check_kinds()
        names = [f"c{j}" for j in range(len(self.schema.columns))]
        codes = self.encode(df)
        data = Dataset({n: codes[:, j] for j, n in enumerate(names)}, Domain(names, self._cards()))
        with warnings.catch_warnings(), _numpy_seed(config.seed):
            warnings.simplefilter("ignore")
            self.fit_mechanism(data, float(config.dp.get("mechanism_epsilon", config.dp["epsilon"])),
                               float(config.dp.get("mechanism_delta", config.dp["delta"])))
        self.plan = dict(config.dp)
        summary = {"model": self.name, "status": "finished", "step": 1, "elapsed": round(time.perf_counter() - t0, 2),
                   "losses": {}, "privacy": {**self.plan, "epsilon_spent": self.plan["epsilon"]}}
        if run is not None:
            self.save_weights(run)
            run.write_summary(summary)
        return summary

    def fit_mechanism(self, data, epsilon: float, delta: float) -> None:  # pragma: no cover - abstract
        """Run the mechanism on the discretised ``data`` (an ``mbi.Dataset``), keeping ``self.mrf``."""
        raise NotImplementedError

    def normalise_where(self, where):
        """No conditions: the graphical model samples whole rows."""
        if where:
            raise ConfigError(f"'{self.name}' samples whole rows from its graphical model and cannot condition on "
                              f"values; sample without --where, or use gaussian-copula, ctgan or tvae")
        return {}

    def impute(self, df, *, seed=None):
        """Refused: these mechanisms do not condition on present cells."""
        raise ConfigError(f"'{self.name}' cannot fill missing cells; impute with gaussian-copula, ctgan or tvae")

    def sample_frame(self, n, cond, rng, gen) -> pd.DataFrame:
        """``n`` rows from the graphical model (numpy's global generator seeded from ``rng``, then put back)."""
        with _numpy_seed(int(rng.integers(2**32))):
            codes = self.mrf.synthetic_data(rows=n).df
            if self.supports is not None:
                codes = self._uncompress(codes)
        names = [f"c{j}" for j in range(len(self.schema.columns))]
        return self.decode(codes[names].to_numpy(dtype=np.int64)[:n], rng)

    def _uncompress(self, df: pd.DataFrame) -> pd.DataFrame:
        """MST's compressed codes back to the full domain (its own ``reverse_data``, kept-value masks saved)."""
        from mbi import Dataset, Domain

        from snsynth.mst import MSTSynthesizer

        dom = Domain(list(df.columns), [int(df[c].max()) + 1 for c in df.columns])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mbi prefers dicts of arrays to the DataFrame MST's own code passes
            return MSTSynthesizer().reverse_data(Dataset(df, dom), self.supports).df

    # -- persistence ---------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The potentials, marginals and MST's kept-value masks as tensors."""
        out = {}
        for part in ("potentials", "marginals"):
            vec = getattr(self.mrf, part)
            for i, cl in enumerate(vec.cliques):
                out[f"{part}.{i}"] = torch.from_numpy(np.array(vec.arrays[cl].values, dtype=np.float64))
        for col, keep in (self.supports or {}).items():
            out[f"supports.{col}"] = torch.from_numpy(np.array(keep, dtype=np.bool_))
        return out

    def weights_meta(self) -> dict:
        """The schema, the run's guarantee, the domain and the cliques as JSON."""
        dom = self.mrf.domain
        return {**super().weights_meta(), "privacy": self.plan, "total": float(self.mrf.total),
                "domain": {"attrs": list(dom.attrs), "shape": [int(s) for s in dom.shape]},
                "cliques": {p: [list(cl) for cl in getattr(self.mrf, p).cliques] for p in ("potentials", "marginals")}}

    @classmethod
    def from_weights(cls, model_config, tensors, meta):
        """Rebuild the graphical model from the saved arrays (no pickle)."""
        from mbi import CliqueVector, Domain, Factor, MarkovRandomField
        import jax.numpy as jnp

        model = cls(**model_config)
        model.restore_meta(meta)
        dom = Domain(meta["domain"]["attrs"], meta["domain"]["shape"])
        vecs = {}
        for part in ("potentials", "marginals"):
            cliques = [tuple(cl) for cl in meta["cliques"][part]]
            arrays = {cl: Factor(dom.project(cl), jnp.asarray(tensors[f"{part}.{i}"].numpy()))
                      for i, cl in enumerate(cliques)}
            vecs[part] = CliqueVector(dom, cliques, arrays)
        model.mrf = MarkovRandomField(potentials=vecs["potentials"], marginals=vecs["marginals"], total=meta["total"])
        sup = {k.split(".", 1)[1]: v.numpy() for k, v in tensors.items() if k.startswith("supports.")}
        model.supports = sup or None
        model.plan = meta.get("privacy")
        return model


def _as_dtype(values: pd.Series, dtype: str, has_missing: bool) -> pd.Series:
    """``values`` in the training column's dtype where it holds them (an int column with gaps stays float)."""
    try:
        if dtype.startswith(("int", "uint")) and has_missing:
            return values.astype("float64")
        if dtype == "bool" and has_missing:
            return values.astype(object)
        return values.astype(dtype)
    except (TypeError, ValueError):
        return values


@register
class MST(_Marginal):
    """smartnoise-synth's MST on genforge's discretisation."""
    name = "mst"
    description = "differentially private: smartnoise-synth's MST (noisy 1- and 2-way marginals, Private-PGM); needs --dp"

    def fit_mechanism(self, data, epsilon, delta):
        """See :meth:`_Marginal.fit_mechanism`."""
        from snsynth.mst import MSTSynthesizer

        mst = MSTSynthesizer(epsilon=epsilon, delta=delta)
        mst.MST(data, epsilon, delta)
        self.mrf = mst.synthesizer
        supports = mst.undo_compress_fn.__closure__  # the masks MST kept apart when it compressed the domain
        self.supports = next(c.cell_contents for c in supports if isinstance(c.cell_contents, dict))


@register
class AIM(_Marginal):
    """smartnoise-synth's AIM on genforge's discretisation (2-way workload)."""
    name = "aim"
    description = "differentially private: smartnoise-synth's AIM (adaptive workload of marginals, Private-PGM); needs --dp"

    def fit_mechanism(self, data, epsilon, delta):
        """See :meth:`_Marginal.fit_mechanism`."""
        from snsynth.aim import AIMSynthesizer
        from snsynth.utils import cdp_rho

        aim = AIMSynthesizer(epsilon=epsilon, delta=delta, max_model_size=self.config.max_model_size,
                             max_cells=self.config.max_cells, rounds=self.config.rounds)
        aim.rho = cdp_rho(epsilon, delta)
        aim.AIM(data, aim.get_workload(data, degree=2, max_cells=self.config.max_cells))
        self.mrf = aim.synthesizer
        self.supports = None
