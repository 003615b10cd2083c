"""Data-parallel scaling: ``genforge train --nproc N`` against one process at the same global batch.

For each model, trains the same number of steps with one process at batch ``B`` and with ``N``
processes at batch ``B / N`` each (the same maths: the weights agree up to float rounding), and
prints images/s over the training loop (``summary.json``'s elapsed seconds, which leave out
process start-up) and over the whole command (wall clock, start-up included), with the ratio.
On a CPU-only machine the processes share the cores, so the honest ratio is what this measures.

    python benchmarks/nproc_scaling.py [--nproc 2] [--steps 300] [--models dcgan,mlp-gan]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def train(model: str, data: str, steps: int, batch: int, nproc: int, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "genforge", "train", "--data", data, "--model", model, "--steps", str(steps),
           "--batch-size", str(batch), "--nproc", str(nproc), "--checkpoint-every", str(10 * steps),
           "--sample-every", str(10 * steps), "--out", str(out), "-q"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return json.loads((out / "summary.json").read_text())["elapsed"], wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64, help="global batch (per process: batch / nproc)")
    ap.add_argument("--models", default="dcgan,mlp-gan")
    args = ap.parse_args()
    print(f"{args.steps} steps at global batch {args.batch}; 1 process vs {args.nproc} processes "
          f"(batch {args.batch // args.nproc} each)")
    print(f"{'model':8s} {'1 proc img/s':>13s} {f'{args.nproc} proc img/s':>13s} {'ratio':>6s} "
          f"{'1 proc wall s':>14s} {f'{args.nproc} proc wall s':>14s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            one = train(name, args.data, args.steps, args.batch, 1, Path(tmp) / f"{name}-1")
            many = train(name, args.data, args.steps, args.batch // args.nproc, args.nproc, Path(tmp) / f"{name}-n")
            r1, rn = args.steps * args.batch / one[0], args.steps * args.batch / many[0]
            print(f"{name:8s} {r1:13.0f} {rn:13.0f} {rn / r1:5.2f}x {one[1]:14.1f} {many[1]:14.1f}", flush=True)


if __name__ == "__main__":
    main()
