"""Which joint table model genforge ships: the autoregressive model against a TabDDPM-style diffusion model,
both on Adult, both at the same fixed budget of optimisation steps, both scored by the one evaluator.

* ``autoregressive`` is genforge's registered model (``genforge.create("autoregressive")``);
* ``tab-ddpm`` is a compact prototype written here for the comparison only (it is not shipped): numbers
  quantile-normalised to a standard normal, categories one-hot (as +-1), Gaussian diffusion on the joint
  vector with a cosine schedule over 1,000 steps, an MLP denoiser (sinusoidal time embedding, SiLU) trained to
  predict the noise, and deterministic DDIM sampling in ``--ddim-steps`` steps; categories decode by argmax.
  Output goes through genforge's TableTransformer, so fidelity (ranges, rounding, dtypes) is the same.

Both learn with rule detection off (``{"detect_rules": false}``), so the rule figures show what each model
learnt, not what decoding through the rules adds. Budgets are steps, not seconds (the machine is shared), and
each row also reports the single-thread seconds per step, so a time budget can be worked out::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tabular_model_choice.py --steps 2000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tabular_model_choice.py --steps 50 --rows 2000 --ddim-steps 10  # smoke
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

import genforge
from genforge.tables.data.readers import load_table
from genforge.tables.data.schema import infer_schema
from genforge.tables.data.transform import TableTransformer
from genforge.tables.metrics.evaluate import evaluate_table, sdv_metadata_from_schema
from tabular_vs_sdv import rule_shares  # benchmarks/ is on the path when this script runs

NUMERIC = ("continuous", "integer", "datetime")


def cosine_alpha_bar(t: torch.Tensor, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule: the share of signal left at time ``t`` in [0, 1]."""
    return torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2


class Denoiser(nn.Module):
    def __init__(self, dim: int, hidden: tuple[int, ...] = (512, 512, 512), t_dim: int = 128):
        super().__init__()
        self.t_dim = t_dim
        self.t_mlp = nn.Sequential(nn.Linear(t_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        layers, i = [], dim + t_dim
        for h in hidden:
            layers += [nn.Linear(i, h), nn.SiLU()]
            i = h
        self.net = nn.Sequential(*layers, nn.Linear(i, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        half = self.t_dim // 2
        freqs = torch.exp(-math.log(10_000) * torch.arange(half) / half)
        emb = torch.cat([torch.sin(t[:, None] * 1000 * freqs), torch.cos(t[:, None] * 1000 * freqs)], dim=1)
        return self.net(torch.cat([x, self.t_mlp(emb)], dim=1))


class TabDDPM:
    """The prototype: ``fit(df, steps)`` then ``sample(n)`` (see the module docstring)."""

    def __init__(self, lr: float = 1e-3, batch: int = 512, ddim_steps: int = 50, seed: int = 0):
        self.lr, self.batch, self.ddim_steps, self.seed = lr, batch, ddim_steps, seed

    def fit(self, df: pd.DataFrame, steps: int) -> "TabDDPM":
        from sklearn.preprocessing import QuantileTransformer

        torch.manual_seed(self.seed)
        self.schema = infer_schema(df)
        self.t = TableTransformer(self.schema, modes=False).fit(df)
        self.num = [c.name for c in self.schema.columns if c.kind in NUMERIC]
        self.cat = [st for st in self.t.columns if st["enc"] == "category"]
        values = np.column_stack([np.nan_to_num(self.t.numbers(c, df[c])) for c in self.num])
        self.qt = QuantileTransformer(output_distribution="normal", n_quantiles=min(1000, len(df)),
                                      random_state=self.seed).fit(values)
        parts = [self.qt.transform(values)]
        for st in self.cat:  # the transformer's label index of every training cell
            parts.append(np.eye(len(st["labels"]))[self.t._category_index(st, df[st["name"]])] * 2 - 1)
        x = torch.tensor(np.hstack(parts), dtype=torch.float32)
        self.net = Denoiser(x.shape[1])
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-5)
        for step in range(steps):
            x0 = x[torch.randint(len(x), (self.batch,))]
            t = torch.rand(self.batch)
            ab = cosine_alpha_bar(t)[:, None]
            eps = torch.randn_like(x0)
            loss = ((self.net(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t) - eps) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.dim = x.shape[1]
        return self

    @torch.no_grad()
    def sample(self, n: int) -> pd.DataFrame:
        gen = torch.Generator().manual_seed(self.seed + 1)
        x = torch.randn(n, self.dim, generator=gen)
        times = torch.linspace(1, 0, self.ddim_steps + 1)
        for t_now, t_next in zip(times[:-1], times[1:]):
            ab, ab_next = cosine_alpha_bar(t_now), cosine_alpha_bar(t_next)
            eps = self.net(x, torch.full((n,), float(t_now)))
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-6, 6)
            x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
        x = x.numpy()
        raw = dict(zip(self.num, self.qt.inverse_transform(x[:, :len(self.num)]).T))
        pos = len(self.num)
        rng = np.random.default_rng(self.seed)
        for st in self.cat:
            k = len(st["labels"])
            raw[st["name"]] = self.t.decode_category(st, x[:, pos:pos + k].argmax(1), rng)
            pos += k
        return self.t.decode_values(raw, n, rng)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="../shared/data/adult/adult_train.csv")
    ap.add_argument("--test", default="../shared/data/adult/adult_test.csv")
    ap.add_argument("--steps", type=int, default=2000, help="optimisation steps of every model (batch 512)")
    ap.add_argument("--rows", type=int, default=None, help="use only the first N training rows (smoke runs)")
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--models", default="autoregressive,tab-ddpm")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    train, _ = load_table(args.train)
    test, _ = load_table(args.test)
    if args.rows:
        train = train.head(args.rows)
    print(f"Adult: {len(train)} rows; {args.steps} steps of batch 512; 1 torch thread", flush=True)
    rows = []
    for name in args.models.split(","):
        t0 = time.perf_counter()
        if name == "tab-ddpm":
            model = TabDDPM(ddim_steps=args.ddim_steps, seed=args.seed).fit(train, args.steps)
        else:
            model = genforge.create(name).fit(train, steps=args.steps, seed=args.seed,
                                              metadata={"detect_rules": False})
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth = model.sample(len(train)) if name == "tab-ddpm" else model.sample(len(train), seed=args.seed)
        sample_s = time.perf_counter() - t0
        m = evaluate_table(train, synth, holdout=test, target="income", seed=args.seed,
                           metadata=sdv_metadata_from_schema(infer_schema(train)))["metrics"]
        edu, sex = rule_shares(synth, train)
        rows.append((name, fit_s, fit_s / args.steps, sample_s, m, edu, sex))
        print(f"  done {name}: fit {fit_s:.1f} s", flush=True)
    print(f"\n{'model':15s} {'fit s':>7s} {'s/step':>7s} {'sample s':>8s} {'quality':>7s} {'F1':>6s} {'AUC':>6s} "
          f"{'DCR':>6s} {'copies':>7s} {'edu':>7s} {'sex':>7s}")
    for name, fit_s, per, sample_s, m, edu, sex in rows:
        print(f"{name:15s} {fit_s:7.1f} {per:7.3f} {sample_s:8.1f} {m['quality']['value']:7.3f} "
              f"{m['tstr_f1']['value']:6.3f} {m['tstr_auc']['value']:6.3f} {m['dcr']['value']:6.3f} "
              f"{m['exact_copies']['value']:7.4f} {edu:7.4f} {sex:7.4f}")
    m = rows[0][4]
    print(f"{'real holdout':15s} {'':7s} {'':7s} {'':8s} {m['quality']['reference']:7.3f} "
          f"{m['tstr_f1']['reference']:6.3f} {m['tstr_auc']['reference']:6.3f} {m['dcr']['reference']:6.3f} "
          f"{m['exact_copies']['reference']:7.4f}")


if __name__ == "__main__":
    main()
