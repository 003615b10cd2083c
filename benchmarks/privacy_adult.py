"""Differential privacy on Adult: genforge's DP models next to smartnoise-synth's MST and AIM, same budgets, one run.

For each epsilon (default 1 and 10, delta 1e-5) every model is trained on ``adult_train.csv`` with that budget,
samples as many rows as the training table, and is scored by ``evaluate_table`` against ``adult_test.csv``
(the holdout the models never saw): SDMetrics quality, train-on-synthetic macro F1 on ``income``, and the
distance and density membership-inference attack AUC (0.5 = no leakage). DP-SGD models spend the budget over
``--epochs``; mst/aim spend it in one mechanism. Prints one markdown table. ``--tiny`` checks the script::

    python benchmarks/privacy_adult.py --tiny
    python benchmarks/privacy_adult.py --models autoregressive,mst --epochs 3   # the figures in benchmarks/README.md
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd
import torch

import genforge
from genforge.tables.metrics.evaluate import evaluate_table

warnings.filterwarnings("ignore")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="../shared/data/adult/adult_train.csv")
    ap.add_argument("--test", default="../shared/data/adult/adult_test.csv")
    ap.add_argument("--target", default="income")
    ap.add_argument("--epsilons", default="1,10")
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--models", default="autoregressive,tvae,ctgan,mst,aim",
                    help="DP-SGD models (autoregressive, tvae, ctgan) and mechanisms (mst, aim)")
    ap.add_argument("--epochs", type=float, default=30, help="DP-SGD epochs (the noise is set for them)")
    ap.add_argument("--aim-rounds", type=int, default=None, help="AIM's most rounds (default 16 per column)")
    ap.add_argument("--rows", type=int, default=None, help="use this many training/test rows")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="every budget tiny: checks the script, not the figures")
    a = ap.parse_args()
    if a.tiny:
        a.rows, a.epochs, a.models, a.epsilons = 800, 1, "tvae,mst", "10"
    torch.set_num_threads(a.threads)
    real, test = pd.read_csv(a.train), pd.read_csv(a.test)
    if a.rows:
        real, test = real.sample(n=a.rows, random_state=0), test.sample(n=a.rows, random_state=0)
    delta = min(a.delta, 0.1 / len(real))
    rows = []
    for eps in [float(e) for e in a.epsilons.split(",")]:
        for name in a.models.split(","):
            t0 = time.perf_counter()
            options = {} if name in ("mst", "aim") else {"epochs": a.epochs}
            params = {"rounds": a.aim_rounds} if name == "aim" and a.aim_rounds else {}
            model = genforge.create(name, **params).fit(real, dp=f"epsilon={eps},delta={delta}", seed=0, **options)
            syn = model.sample(len(real), seed=0)
            m = evaluate_table(real, syn, holdout=test, target=a.target)["metrics"]
            rows.append({"epsilon": eps, "model": name, "quality": m["quality"]["value"],
                         "tstr_f1": m["tstr_f1"]["value"], "tstr_f1_real": m["tstr_f1"]["reference"],
                         "mia_distance_auc": m["mia_distance_auc"]["value"],
                         "mia_density_auc": m["mia_density_auc"]["value"], "seconds": round(time.perf_counter() - t0)})
            print(rows[-1], flush=True)
    print("\n| epsilon | model | quality | TSTR macro F1 (real: ref) | MIA distance AUC | MIA density AUC | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['epsilon']:g} | {r['model']} | {r['quality']:.3f} | {r['tstr_f1']:.3f} ({r['tstr_f1_real']:.3f}) | "
              f"{r['mia_distance_auc']:.3f} | {r['mia_density_auc']:.3f} | {r['seconds']} |")


if __name__ == "__main__":
    main()
