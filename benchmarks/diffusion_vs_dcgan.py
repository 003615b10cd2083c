"""Diffusion and flow models against dcgan on MNIST: same training minutes each, same evaluation.

For each model (``dcgan``, ``ddpm``, ``flow`` by default, their genforge defaults) this

1. trains ``--minutes`` of wall-clock time on ``--data`` (``genforge train`` through
   ``app.workflows.train_run``, ``--threads`` torch threads), into ``--runs/<model>``;
2. samples ``--n`` images at the model's default sampler steps, timed (the figure the issue's
   "10,000 in two minutes" goal is about);
3. scores them with ``genforge evaluate``'s evaluation (``images.metrics.evaluate_images`` against the
   MNIST test split, the same domain feature network, train-on-synthetic included): FID, KID,
   precision / recall / density / coverage, classes present, class histogram distance;
4. saves a 64-image grid under ``--grids`` (``<model>.png``).

Then, for the multi-step models, a table of FID (and recall, coverage, sampling time for 10,000)
against ``--steps-table`` sampler steps (train-on-synthetic off), for their default sampler, or
for every sampler with ``--all-samplers``; ``--guidance-table`` adds rows of FID against the
classifier-free guidance weight at the default steps (each weight other than 1 costs two network
calls per step). Everything is printed as Markdown tables and written to ``--json``.

    python benchmarks/diffusion_vs_dcgan.py                      # 20 minutes each, 10,000 samples (about 1.5 h)
    python benchmarks/diffusion_vs_dcgan.py --minutes 0.2 --n 500 --steps-table 2,5   # a smoke run
    python benchmarks/diffusion_vs_dcgan.py --reuse              # score existing runs again, no training

Figures are comparable only within one run of the script on one machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genforge.app.workflows import train_run
from genforge.core import io, registry
from genforge.core.runs import RunDir
from genforge.images.imageio import save_grid
from genforge.images.metrics import evaluate_images

HERE = Path(__file__).resolve().parent
SUMMARY = ("fid", "kid", "precision", "recall", "density", "coverage", "classes_present", "class_tv",
           "label_accuracy", "tstr_accuracy")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def parse() -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--models", default="dcgan,ddpm,flow")
    ap.add_argument("--minutes", type=float, default=20.0, help="training minutes per model")
    ap.add_argument("--n", type=int, default=10000, help="samples scored per model")
    ap.add_argument("--steps-table", type=_ints, default=[5, 10, 25, 50, 100], help="sampler steps of the FID table")
    ap.add_argument("--table-n", type=int, default=None, help="samples per FID-table row (default: --n)")
    ap.add_argument("--all-samplers", action="store_true", help="FID table for every sampler, not only the default")
    ap.add_argument("--guidance-table", type=_floats, default=[], help="guidance weights to score, e.g. 1,1.5,2,3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=Path, default=HERE / "runs" / "diffusion_vs_dcgan")
    ap.add_argument("--grids", type=Path, default=HERE / "grids")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "diffusion_vs_dcgan.json")
    ap.add_argument("--reuse", action="store_true", help="score the runs under --runs again instead of training")
    return ap.parse_args()


def train(name: str, args) -> RunDir:
    """Train ``name`` for ``--minutes`` into ``--runs/<name>`` (or open that run with ``--reuse``)."""
    out = args.runs / name
    if args.reuse:
        return RunDir.open(out)
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists; remove it, pass another --runs, or --reuse it")
    t0 = time.perf_counter()
    run, summary = train_run(name, args.data, out=out, train={
        "minutes": args.minutes, "threads": args.threads, "precision": args.precision, "seed": args.seed,
        "device": "cpu", "progress": False, "sample_every": 2000, "checkpoint_every": 2000})
    print(f"[{name}] trained {summary['step']} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    return run


def timed_sample(model, n: int, seed: int, **controls) -> tuple[torch.Tensor, float]:
    """``n`` samples and the seconds they took."""
    t0 = time.perf_counter()
    x = model.sample(n, seed=seed, **controls)
    return x, time.perf_counter() - t0


def score(model, fake, real, args, tstr: bool) -> dict:
    """The summary metrics (value, reference) of ``fake`` against the real (train, test) sets."""
    train_set, test_set = real
    res = evaluate_images(train_set, fake, real_test=test_set, fake_labels=model.resolve_labels(len(fake), None),
                          model=model, seed=args.seed, tstr=tstr)
    rows = res["metrics"]
    return {k: {key: rows[k][key] for key in ("value", "reference", "of") if key in rows[k]} for k in SUMMARY if k in rows}


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    args.grids.mkdir(parents=True, exist_ok=True)
    table_n = args.table_n or args.n
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "models": {}, "steps_table": [],
                     "guidance_table": []}
    real = None
    for name in args.models.split(","):
        run = train(name, args)
        model = registry.load(run.path)
        if real is None:  # the MNIST test split, as genforge evaluate uses it
            real = registry.modality_of(run).real_sets(dict(run.read_config()["data"]), args.seed)
        fake, secs = timed_sample(model, args.n, args.seed)
        grid = args.grids / f"{name}.png"
        save_grid(model.sample(64, seed=args.seed), grid, nrow=8)
        entry = {"steps": run.read_summary().get("step"), "sample_seconds": round(secs, 1),
                 "sample_seconds_per_10k": round(secs * 10000 / args.n, 1), "grid": str(grid),
                 "defaults": _defaults(model), "metrics": score(model, fake, real, args, tstr=True)}
        results["models"][name] = entry
        print(f"[{name}] {args.n} samples in {secs:.1f} s; FID {entry['metrics']['fid']['value']:.3g}", flush=True)
        if "sampling_steps" in getattr(model, "sampling_controls", ()):
            samplers = model.samplers if args.all_samplers else (model.config.sampler,)
            for sampler in samplers:
                for steps in args.steps_table:
                    fake, secs = timed_sample(model, table_n, args.seed, sampling_steps=steps, sampler=sampler)
                    m = score(model, fake, real, args, tstr=False)
                    results["steps_table"].append({"model": name, "sampler": sampler, "steps": steps, "guidance": None,
                                                   "seconds_per_10k": round(secs * 10000 / table_n, 1), **_values(m)})
                    print(f"[{name}] {sampler} {steps} steps: FID {m['fid']['value']:.3g}", flush=True)
            for weight in (args.guidance_table if model.conditional else []):
                fake, secs = timed_sample(model, table_n, args.seed, guidance=weight)
                m = score(model, fake, real, args, tstr=False)
                results["guidance_table"].append({"model": name, "sampler": model.config.sampler,
                                                  "steps": model.config.sampling_steps, "guidance": weight,
                                                  "seconds_per_10k": round(secs * 10000 / table_n, 1), **_values(m)})
        io.write_json(args.json, results)  # after every model (atomically): a killed run keeps what it did
    print(report(results, args))


def _defaults(model) -> dict:
    c = model.config
    return {k: getattr(c, k) for k in ("sampler", "sampling_steps", "guidance") if hasattr(c, k)}


def _values(m: dict) -> dict:
    return {k: m[k]["value"] for k in ("fid", "recall", "coverage", "precision") if k in m}


def report(results: dict, args) -> str:
    """The results as Markdown tables."""
    def f(v):
        return "—" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = [f"### {args.minutes:g} minutes of training each, {args.n} samples, {args.threads} threads", "",
             "| model | train steps | sampler, steps | sampling s / 10k | FID (ref) | recall (ref) | coverage (ref) "
             "| precision | classes present | TSTR acc |", "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, e in results["models"].items():
        m, d = e["metrics"], e["defaults"]
        cell = lambda k: f"{f(m[k]['value'])} ({f(m[k]['reference'])})" if k in m else "—"  # noqa: E731
        present = f"{m['classes_present']['value']} / {m['classes_present'].get('of', '?')}" if "classes_present" in m else "—"
        how = f"{d.get('sampler', '')} {d.get('sampling_steps', '')}".strip() or "one pass"
        lines.append(f"| `{name}` | {e['steps']} | {how} | {f(e['sample_seconds_per_10k'])} | {cell('fid')} | "
                     f"{cell('recall')} | {cell('coverage')} | {cell('precision')} | {present} | {cell('tstr_accuracy')} |")
    for key, title in (("steps_table", "FID against sampler steps"), ("guidance_table", "FID against guidance")):
        if results[key]:
            lines += ["", f"### {title} ({args.table_n or args.n} samples a row)", "",
                      "| model | sampler | steps | guidance | sampling s / 10k | FID | recall | coverage | precision |",
                      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for r in results[key]:
                lines.append(f"| `{r['model']}` | {r['sampler']} | {r['steps']} | {f(r['guidance'])} | "
                             f"{f(r['seconds_per_10k'])} | {f(r.get('fid'))} | {f(r.get('recall'))} | "
                             f"{f(r.get('coverage'))} | {f(r.get('precision'))} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
