"""Tabular synthesizers: genforge vs SDV on Adult, in one run, judged by one yardstick.

Fits SDV's GaussianCopula, CTGAN and TVAE and genforge's gaussian-copula, ctgan and tvae on
``adult_train.csv`` (the neural ones for the same number of epochs), samples as many rows as the
training table, and scores every synthetic table with :func:`genforge.tables.metrics.evaluate.evaluate_table`
(SDMetrics QualityReport, train-on-synthetic-test-on-real on ``adult_test.csv`` with a gradient
boosting classifier, distance to closest record). Prints one table.

SDV is not a genforge dependency; run this in an environment that has it::

    python -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0 && \\
        .venv-bench/bin/pip install -e . sdv
    .venv-bench/bin/python benchmarks/tabular_vs_sdv.py --epochs 30
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


def run_one(lib: str, kind: str, train: pd.DataFrame, test: pd.DataFrame, epochs: int, seed: int,
            params: dict | None = None) -> dict:
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    if lib == "sdv":
        model = sdv_synth(kind, train, epochs)
        sdv_fit(model, train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth = sdv_sample(model, len(train))
    else:
        model = genforge.create(kind, **(params or {}))
        model.fit(train, epochs=None if kind == "gaussian-copula" else epochs, seed=seed)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth = model.sample(len(train), seed=seed)
    sample_s = time.perf_counter() - t0
    res = evaluate_table(train, synth, holdout=test, target="income", seed=seed)
    m = res["metrics"]
    return {"library": lib, "model": kind, "fit_s": fit_s, "sample_s": sample_s,
            "quality": m["quality"]["value"], "shapes": m["column_shapes"]["value"],
            "pairs": m["column_pair_trends"]["value"], "acc": m["tstr_accuracy"]["value"],
            "f1": m["tstr_f1"]["value"], "auc": m["tstr_auc"]["value"], "dcr": m["dcr"]["value"],
            "copies": m["exact_copies"]["value"],
            "ref": {k: m[k]["reference"] for k in ("quality", "tstr_accuracy", "tstr_f1", "tstr_auc", "dcr",
                                                   "exact_copies")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="../shared/data/adult/adult_train.csv")
    ap.add_argument("--test", default="../shared/data/adult/adult_test.csv")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="gaussian-copula,ctgan,tvae")
    ap.add_argument("--libs", default="sdv,genforge")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a genforge model option for every genforge model run (repeatable), "
                         "e.g. --models tvae --set 'betas=[0.9,0.999]'")
    args = ap.parse_args()
    params = parse_assignments(args.set)
    train, _ = load_table(args.train)
    test, _ = load_table(args.test)
    print(f"Adult: {len(train)} train rows, {len(test)} test rows; epochs {args.epochs}; "
          f"torch threads {torch.get_num_threads()}" + (f"; genforge options {params}" if params else ""), flush=True)
    rows = []
    for kind in args.models.split(","):
        for lib in args.libs.split(","):
            r = run_one(lib, kind, train, test, args.epochs, args.seed, params)
            rows.append(r)
            print(f"  done {lib} {kind}: fit {r['fit_s']:.1f} s, quality {r['quality']:.3f}", flush=True)
    ref = rows[0]["ref"]
    print()
    print(f"{'library':9s} {'model':16s} {'fit s':>8s} {'sample s':>9s} {'quality':>8s} {'shapes':>7s} "
          f"{'pairs':>6s} {'acc':>6s} {'F1':>6s} {'AUC':>6s} {'DCR':>7s} {'copies':>7s}")
    for r in rows:
        print(f"{r['library']:9s} {r['model']:16s} {r['fit_s']:8.1f} {r['sample_s']:9.1f} {r['quality']:8.3f} "
              f"{r['shapes']:7.3f} {r['pairs']:6.3f} {r['acc']:6.3f} {r['f1']:6.3f} {r['auc']:6.3f} "
              f"{r['dcr']:7.4f} {r['copies']:7.4f}")
    print(f"{'real':9s} {'(trained on real)':16s} {'':8s} {'':9s} {ref['quality']:8.3f} {'':7s} {'':6s} "
          f"{ref['tstr_accuracy']:6.3f} {ref['tstr_f1']:6.3f} {ref['tstr_auc']:6.3f} {ref['dcr']:7.4f} "
          f"{ref['exact_copies']:7.4f}")
    for kind in args.models.split(","):
        s = next((r for r in rows if r["library"] == "sdv" and r["model"] == kind), None)
        g = next((r for r in rows if r["library"] == "genforge" and r["model"] == kind), None)
        if s and g:
            print(f"{kind}: genforge fit {s['fit_s'] / g['fit_s']:.2f}x faster, quality {g['quality'] - s['quality']:+.3f}")


if __name__ == "__main__":
    main()
