"""Tabular synthesizers: genforge vs SDV (and MOSTLY AI's TabularARGN) on Adult, in one run, judged by one yardstick.

Fits SDV's GaussianCopula, CTGAN and TVAE and genforge's gaussian-copula, ctgan, tvae (the neural ones for the
same number of epochs) and autoregressive (at its default budget, or ``--ar-steps``) on ``adult_train.csv``,
optionally MOSTLY AI's TabularARGN at its defaults (``--argn``), samples as many rows as the training table, and
scores every synthetic table with :func:`genforge.tables.metrics.evaluate.evaluate_table` (SDMetrics
QualityReport, train-on-synthetic-test-on-real on ``adult_test.csv`` with a gradient boosting classifier,
distance to closest record, exact copies, the realism figures: unseen combinations of common values and the
share of rows closer to training than to holdout rows), plus the two rules a reader of Adult checks first:
education <-> education_num (the pairs of the training table) and relationship <-> sex (no female Husband, no
male Wife). Prints one table.

SDV and mostlyai-engine are not genforge dependencies; run this in an environment that has them::

    python -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0 && \\
        .venv-bench/bin/pip install -e . sdv mostlyai-engine && \\
        .venv-bench/bin/pip uninstall -y torchvision torchaudio   # builds that do not match torch break its import
    .venv-bench/bin/python benchmarks/tabular_vs_sdv.py --epochs 50 --argn
    .venv-bench/bin/python benchmarks/tabular_vs_sdv.py --libs genforge --models autoregressive \\
        --rows 2000 --ar-steps 20 --epochs 1                 # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd
import torch

import genforge
from genforge.core.config import parse_assignments
from genforge.tables.data.readers import load_table
from genforge.tables.metrics.evaluate import evaluate_table

warnings.filterwarnings("ignore")


def sdv_synth(kind: str, df: pd.DataFrame, epochs: int):
    """An SDV synthesizer for ``df`` (SDV 1.x and 2.x metadata APIs)."""
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    if hasattr(Metadata, "detect_from_dataframe"):
        metadata = Metadata.detect_from_dataframe(df, table_name="adult")
    else:
        metadata = Metadata.detect_from_dataframes({"adult": df})
    if kind == "gaussian-copula":
        return GaussianCopulaSynthesizer(metadata)
    cls = CTGANSynthesizer if kind == "ctgan" else TVAESynthesizer
    return cls(metadata, epochs=epochs, verbose=False)


def sdv_fit(model, df: pd.DataFrame) -> None:
    try:
        model.fit(df)
    except Exception as err:  # SDV 2.x wants {"table": df}
        if "dictionary" not in str(err):
            raise
        model.fit({"adult": df})


def sdv_sample(model, n: int) -> pd.DataFrame:
    out = model.sample(num_rows=n)
    return out["adult"] if isinstance(out, dict) else out


def argn_fit_sample(train: pd.DataFrame, n: int, minutes: float | None, epochs: float | None, seed: int):
    """MOSTLY AI's TabularARGN (mostlyai-engine) at its defaults, unless ``minutes``/``epochs`` cap it."""
    try:
        from mostlyai.engine import TabularARGN
    except ImportError:  # older releases keep it in the sklearn module only
        from mostlyai.engine.sklearn_interface import TabularARGN

    caps = {k: v for k, v in (("max_training_time", minutes), ("max_epochs", epochs)) if v is not None}
    t0 = time.perf_counter()
    model = TabularARGN(random_state=seed, **caps).fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    synth = model.sample(n_samples=n)[list(train.columns)]
    return synth.astype(train.dtypes.to_dict(), errors="ignore"), fit_s, time.perf_counter() - t0


def rule_shares(s: pd.DataFrame, train: pd.DataFrame) -> tuple[float, float]:
    """Shares of rows keeping education <-> education_num (the training table's pairs) and relationship <-> sex
    (no female Husband, no male Wife)."""
    pairs = set(zip(train["education"], pd.to_numeric(train["education_num"])))
    edu = sum(p in pairs for p in zip(s["education"], pd.to_numeric(s["education_num"], errors="coerce"))) / len(s)
    bad = ((s["relationship"] == "Husband") & (s["sex"] == "Female")) | ((s["relationship"] == "Wife") &
                                                                        (s["sex"] == "Male"))
    return float(edu), 1.0 - float(bad.mean())


FIGURES = {"quality": "quality", "shapes": "column_shapes", "pairs": "column_pair_trends", "acc": "tstr_accuracy",
           "f1": "tstr_f1", "auc": "tstr_auc", "dcr": "dcr", "copies": "exact_copies",
           "unseen": "unseen_combinations", "closer": "closer_to_training"}


def run_one(lib: str, kind: str, train: pd.DataFrame, test: pd.DataFrame, args, params: dict | None = None) -> dict:
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    if lib == "mostlyai":
        synth, fit_s, sample_s = argn_fit_sample(train, len(train), args.argn_minutes, args.argn_epochs, args.seed)
    elif lib == "sdv":
        model = sdv_synth(kind, train, args.epochs)
        sdv_fit(model, train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth = sdv_sample(model, len(train))
        sample_s = time.perf_counter() - t0
    else:
        model = genforge.create(kind, **(params or {}))
        budget = {"steps": args.ar_steps} if kind == "autoregressive" else \
            {"epochs": None if kind == "gaussian-copula" else args.epochs}
        model.fit(train, seed=args.seed, **budget)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth = model.sample(len(train), seed=args.seed)
        sample_s = time.perf_counter() - t0
    m = evaluate_table(train, synth, holdout=test, target="income", seed=args.seed)["metrics"]
    edu, sex = rule_shares(synth, train)
    ref_edu, ref_sex = rule_shares(test, train)
    return {"library": lib, "model": kind, "fit_s": fit_s, "sample_s": sample_s, "edu": edu, "sex": sex,
            **{k: m[name]["value"] for k, name in FIGURES.items() if name in m},
            "ref": {**{k: m[name]["reference"] for k, name in FIGURES.items() if name in m},
                    "edu": ref_edu, "sex": ref_sex}}


COLUMNS = [("fit s", "fit_s", 7, 1), ("sample s", "sample_s", 8, 1), ("quality", "quality", 7, 3),
           ("shapes", "shapes", 6, 3), ("pairs", "pairs", 6, 3), ("acc", "acc", 6, 3), ("F1", "f1", 6, 3),
           ("AUC", "auc", 6, 3), ("edu", "edu", 7, 4), ("rel-sex", "sex", 7, 4), ("unseen", "unseen", 7, 4),
           ("copies", "copies", 7, 4), ("DCR", "dcr", 6, 3), ("closer", "closer", 6, 3)]


def _cells(row: dict) -> str:
    return " ".join(f"{row[k]:{w}.{d}f}" if row.get(k) is not None else " " * w for _, k, w, d in COLUMNS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="../shared/data/adult/adult_train.csv")
    ap.add_argument("--test", default="../shared/data/adult/adult_test.csv")
    ap.add_argument("--rows", type=int, default=None, help="use only the first N training rows (smoke runs)")
    ap.add_argument("--epochs", type=int, default=30, help="epochs of SDV's and genforge's ctgan/tvae")
    ap.add_argument("--ar-steps", type=int, default=None, help="steps of genforge's autoregressive (default: its own "
                                                               "default budget)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="gaussian-copula,ctgan,tvae,autoregressive")
    ap.add_argument("--libs", default="sdv,genforge")
    ap.add_argument("--argn", action="store_true", help="add MOSTLY AI's TabularARGN (mostlyai-engine) at its defaults")
    ap.add_argument("--argn-minutes", type=float, default=None, help="cap TabularARGN's training time (minutes)")
    ap.add_argument("--argn-epochs", type=float, default=None, help="cap TabularARGN's epochs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a genforge model option for every genforge model run (repeatable), "
                         "e.g. --models tvae --set 'betas=[0.9,0.999]'")
    args = ap.parse_args()
    params = parse_assignments(args.set)
    train, _ = load_table(args.train)
    test, _ = load_table(args.test)
    if args.rows:
        train = train.head(args.rows)
    print(f"Adult: {len(train)} train rows, {len(test)} test rows; epochs {args.epochs}; "
          f"torch threads {torch.get_num_threads()}" + (f"; genforge options {params}" if params else ""), flush=True)
    runs = [(lib, kind) for kind in args.models.split(",") for lib in args.libs.split(",")
            if not (lib == "sdv" and kind == "autoregressive")]
    rows = []
    for lib, kind in runs + ([("mostlyai", "TabularARGN")] if args.argn else []):
        r = run_one(lib, kind, train, test, args, params)
        rows.append(r)
        print(f"  done {lib} {kind}: fit {r['fit_s']:.1f} s, quality {r['quality']:.3f}", flush=True)
    print()
    print(f"{'library':9s} {'model':16s} " + " ".join(f"{h:>{w}s}" for h, _, w, _ in COLUMNS))
    for r in rows:
        print(f"{r['library']:9s} {r['model']:16s} {_cells(r)}")
    print(f"{'real':9s} {'(holdout)':16s} {_cells({**rows[0]['ref'], 'fit_s': None, 'sample_s': None})}")
    for kind in args.models.split(","):
        s = next((r for r in rows if r["library"] == "sdv" and r["model"] == kind), None)
        g = next((r for r in rows if r["library"] == "genforge" and r["model"] == kind), None)
        if s and g:
            print(f"{kind}: genforge fit {s['fit_s'] / g['fit_s']:.2f}x faster, quality {g['quality'] - s['quality']:+.3f}")
    a = next((r for r in rows if r["library"] == "mostlyai"), None)
    g = next((r for r in rows if r["model"] == "autoregressive"), None)
    if a and g:
        print(f"autoregressive vs TabularARGN: fit {a['fit_s'] / g['fit_s']:.2f}x faster, quality "
              f"{g['quality'] - a['quality']:+.3f}, F1 {g['f1'] - a['f1']:+.3f}, AUC {g['auc'] - a['auc']:+.3f}")


if __name__ == "__main__":
    main()
