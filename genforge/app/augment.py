"""``genforge augment``: does adding synthetic data make a downstream model better, by how much, how surely?

For each fraction of the real training data (the low-data curve: 1 %, 5 %, 20 %, 100 % by default) and
each of R seeds, a generator is trained on that fraction only, and a downstream model is trained on four
**arms** and scored on the real test set the generator never saw:

* ``real`` — the real rows of the fraction;
* ``real+synthetic`` — plus ``ratio`` times as many generated rows;
* ``balanced`` — plus rows generated for each class up to the largest class (conditional sampling);
* ``synthetic`` — as many generated rows as real ones, no real row.

Scores (accuracy, macro F1, ROC AUC, per-class recall; R² for a numeric target, where ``balanced`` does not
apply) are averaged over the seeds with a 95 % bootstrap interval; the gain of each arm over ``real`` is the
paired difference per seed with its own interval, and the closing notes say plainly, per fraction, whether
synthetic data helps (interval above zero), hurts, or shows no clear effect. Everything modality-specific
(reading data, conditional sampling, the learners) comes from the modality's kit (``Modality.augment_kit``).
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genforge.app.stats import bootstrap_ci, scores, verdict
from genforge.core import io, registry
from genforge.core.config import TrainConfig, validate
from genforge.core.errors import ConfigError, GenforgeWarning

ARMS = ("real", "real+synthetic", "balanced", "synthetic")
FRACTIONS = (0.01, 0.05, 0.2, 1.0)
HEADLINE = ("macro_f1", "minority_recall", "r2")


def _check_numbers(fractions, seeds: int, ratio: float) -> list[float]:
    fr = sorted({float(f) for f in fractions})
    if not fr or any(not 0 < f <= 1 for f in fr):
        raise ConfigError(f"--fractions must be shares in (0, 1], e.g. 0.01,0.05,0.2,1; got {list(fractions)}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds must be a whole number of repeats, at least 1 (5 or more for useful intervals); "
                          f"got {seeds!r}")
    if not ratio > 0:
        raise ConfigError(f"--ratio must be greater than 0 (synthetic rows per real row), got {ratio}")
    return fr


def _fraction_rows(kit, data, fraction: float, seed: int) -> np.ndarray:
    """Indices of a seeded, class-stratified ``fraction`` of ``data`` (at least one row of every class)."""
    rng = np.random.default_rng(seed)
    n = kit.size(data)
    if fraction >= 1:
        return np.arange(n)
    if kit.regression:
        return np.sort(rng.choice(n, max(2, math.ceil(fraction * n)), replace=False))
    y = kit.labels(data).astype(str)
    picked = [rng.choice(np.flatnonzero(y == c), max(1, math.ceil(fraction * (y == c).sum())), replace=False)
              for c in np.unique(y)]
    return np.sort(np.concatenate(picked))


def _arms(kit, gen, real, ratio: float, seed: int) -> dict[str, Any]:
    """The four training sets of one (fraction, seed)."""
    n = kit.size(real)
    out = {"real": real,
           "real+synthetic": kit.concat([real, kit.sample(gen, max(1, round(ratio * n)), seed + 1)]),
           "synthetic": kit.sample(gen, n, seed + 2)}
    if not kit.regression:
        y = kit.labels(real)
        classes, counts = np.unique(y.astype(str), return_counts=True)
        raw = {str(v): v for v in y}
        extra = [kit.sample(gen, int(counts.max() - k), seed + 3 + i, label=raw[c])
                 for i, (c, k) in enumerate(zip(classes, counts)) if k < counts.max()]
        out["balanced"] = kit.concat([real, *extra])
    return out


def augment(model: str, data: str, test: str, *, target: str | None = None, fractions=FRACTIONS, seeds: int = 5,
            ratio: float = 1.0, learners: list[str] | None = None, params: dict[str, Any] | None = None,
            train: dict[str, Any] | None = None, out: str | Path = "augment", encoding: str | None = None,
            log: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Path, Path]:
    """Run the comparison (see the module docstring) and write ``out/augment.json`` and ``out/report.html``.

    ``model``: a registered generator name (``params``: its hyper-parameters; ``train``: the budget of each
    generator fit, e.g. ``{"steps": 2000}`` or ``{"epochs": 50}`` for tables). ``data``/``test``: the real
    training and test data. ``target``: the column to predict (tables; images predict their label).
    ``learners``: the downstream models (tables: ``gb``, ``logreg``; images: ``cnn``; default all). Every
    input is checked before any training; returns ``(result, json_path, report_path)``.
    """
    say = log or (lambda msg: None)
    fr = _check_numbers(fractions, seeds, ratio)
    mod = registry.modality_of(model)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; give a folder for augment.json and report.html")
    kit = mod.augment_kit(target)  # a modality without one refuses here
    real_all, test_data = kit.load(data, encoding), kit.load(test, encoding)
    kit.adopt(real_all)
    learners = list(learners or kit.learners)
    bad = [name for name in learners if name not in kit.learners]
    if bad:
        raise ConfigError(f"unknown learner '{bad[0]}' for {mod.plural}; choose from {', '.join(kit.learners)}")
    budget = dict(train or {})
    validate(TrainConfig, {k: v for k, v in budget.items() if k != "epochs"}, what="training options")
    kit.check_model(registry.create(model, **(params or {})), real_all)
    share = kit.overlap(real_all, test_data)
    if share > 0:
        warnings.warn(GenforgeWarning(f"{share:.1%} of the test {kit.noun} also appear in the training data, so every "
                                      f"score reads too good; give a test set the generator never saw"))
    y_test = kit.labels(test_data)
    classes = [] if kit.regression else sorted({str(v) for v in kit.labels(real_all)} | {str(v) for v in y_test})
    minority = None if kit.regression else _minority(kit.labels(real_all))
    records, t0 = [], time.perf_counter()
    for fraction in fr:
        for seed in range(seeds):
            real = kit.subset(real_all, _fraction_rows(kit, real_all, fraction, seed))
            say(f"fraction {fraction:g} seed {seed}: training {model} on {kit.size(real)} {kit.noun}")
            gen = registry.create(model, **(params or {}))
            gen.fit(real, seed=seed, progress=False, **budget)
            for arm, train_set in _arms(kit, gen, real, ratio, seed).items():
                for learner in learners:
                    pred, proba = kit.fit_predict(learner, train_set, test_data, seed)
                    s = scores(np.asarray(y_test).astype(str) if classes else y_test,
                               np.asarray(pred).astype(str) if classes else pred,
                               {str(k): v for k, v in proba.items()} if proba else None, classes, kit.regression)
                    if minority is not None:
                        s["minority_recall"] = s[f"recall[{minority}]"]
                    records.append({"fraction": fraction, "seed": seed, "arm": arm, "learner": learner,
                                    "n_train": kit.size(train_set), "scores": s})
    result = summarise(records, fr, learners, seeds)
    result.update(model=model, data=str(data), test=str(test), target=target, ratio=ratio, seeds=seeds,
                  minority=minority, regression=kit.regression, train=budget, params=params or {},
                  test_overlap=share, seconds=round(time.perf_counter() - t0, 1), records=records)
    io.ensure_dir(out)
    json_path = out / "augment.json"
    io.write_json(json_path, result)
    from genforge.app.augment_report import write_augment_report

    return result, json_path, write_augment_report(out / "report.html", result)


def _minority(y: np.ndarray) -> str:
    values, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
    return str(values[counts.argmin()])


def summarise(records: list[dict], fractions: list[float], learners: list[str], seeds: int) -> dict[str, Any]:
    """Mean and 95 % bootstrap interval per (fraction, learner, arm, metric), the paired gain over ``real`` with
    its interval and verdict, and the closing notes."""
    table, notes = [], []
    for fraction in fractions:
        for learner in learners:
            rows = [r for r in records if r["fraction"] == fraction and r["learner"] == learner]
            base = {r["seed"]: r["scores"] for r in rows if r["arm"] == "real"}
            for arm in ARMS:
                mine = {r["seed"]: r["scores"] for r in rows if r["arm"] == arm}
                if not mine:
                    continue
                metrics = {}
                for name in next(iter(mine.values())):
                    mean, lo, hi = bootstrap_ci([s[name] for s in mine.values()])
                    entry = {"mean": mean, "low": lo, "high": hi}
                    if arm != "real":
                        diffs = [mine[k][name] - base[k][name] for k in mine if k in base]
                        g, glo, ghi = bootstrap_ci(diffs)
                        entry.update(gain=g, gain_low=glo, gain_high=ghi, verdict=verdict(glo, ghi, len(diffs)))
                    metrics[name] = entry
                table.append({"fraction": fraction, "learner": learner, "arm": arm, "metrics": metrics})
            notes += _notes(table, fraction, learner, seeds)
    return {"summary": table, "notes": notes}


def _notes(table: list[dict], fraction: float, learner: str, seeds: int) -> list[str]:
    """Plain sentences: where synthetic data helps the headline metrics, and where it does not."""
    out = []
    for name in HEADLINE:
        parts = {v: [] for v in ("helps", "hurts", "no clear effect", "too few seeds")}
        for row in table:
            m = row["metrics"].get(name)
            if row["fraction"] == fraction and row["learner"] == learner and m and "verdict" in m:
                parts[m["verdict"]].append(f"{row['arm']} ({m['gain']:+.3f} [{m['gain_low']:+.3f}, {m['gain_high']:+.3f}])")
        if not any(parts.values()):
            continue
        said = f"{fraction:.0%} of the real data, {learner}, {name.replace('_', ' ')}: "
        if parts["too few seeds"]:
            out.append(said + f"too few seeds ({seeds}) to tell whether synthetic data helps; use --seeds 5 or more")
            continue
        if parts["helps"]:
            said += "synthetic data helps: " + "; ".join(parts["helps"])
        else:
            said += "synthetic data does not help (no interval above zero)"
        if parts["hurts"]:
            said += "; it hurts: " + "; ".join(parts["hurts"])
        out.append(said)
    return out
