"""Peak memory and time of writing a million 28x28 samples: genforge's streamed `sample` against the
in-memory way (the whole float tensor, then one `np.savez_compressed`), in the same run.

    .venv/bin/python benchmarks/sample_streaming.py                   # 1,000,000 samples (a few minutes)
    .venv/bin/python benchmarks/sample_streaming.py --n 100000 --skip-reference

Each way runs in a fresh process whose peak resident memory (``ru_maxrss``) is reported; the streamed
file is checked to hold exactly what ``model.sample`` gives for the same seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"

STREAMED = """
import resource, sys
sys.argv = ["genforge", "sample", {run!r}, "-n", "{n}", "-o", {out!r}, "--seed", "1"]
from genforge.app.cli import main
try:
    main()
finally:
    print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""

IN_MEMORY = """
import resource, sys
import genforge
from genforge.images.imageio import save_npz
model = genforge.load({run!r})
save_npz({out!r}, model.sample({n}, seed=1))
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def measure(code: str, env: dict) -> tuple[float, float]:
    """Run ``code`` in a fresh Python; return (seconds, peak resident memory in MiB)."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"failed:\n{done.stderr[-2000:]}")
    rss_kib = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("MAXRSS")))
    return secs, rss_kib / 1024


def npz_shape(path: Path) -> tuple:
    with zipfile.ZipFile(path) as z, z.open("x.npy") as f:
        version = np.lib.format.read_magic(f)
        shape, _, _ = (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(f)
    return shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--run", help="an existing 28x28 run (default: train a dcgan on MNIST for 30 steps)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-reference", action="store_true", help="only the streamed way")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), GENFORGE_MEMORY_LIMIT="20G",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    work = Path(tempfile.mkdtemp(prefix="genforge-stream-"))
    run = args.run
    if run is None:
        run = str(work / "run")
        subprocess.run([sys.executable, "-m", "genforge", "train", "--data", str(MNIST), "--limit", "2000", "--model",
                        "dcgan", "--steps", "30", "--out", run, "-q", "--threads", str(args.threads)],
                       env=env, check=True, capture_output=True)
    rows = []
    out = work / "streamed.npz"
    secs, rss = measure(STREAMED.format(run=run, n=args.n, out=str(out)), env)
    rows.append(("genforge sample (streamed)", secs, rss, out.stat().st_size / 2**20))
    assert npz_shape(out) == (args.n, 28, 28, 1), npz_shape(out)
    check = subprocess.run([sys.executable, "-c", f"""
import zipfile, numpy as np, genforge
from genforge.images.imageio import to_uint8
with zipfile.ZipFile({str(out)!r}) as z, z.open("x.npy") as f:
    np.lib.format.read_magic(f); np.lib.format.read_array_header_1_0(f)
    k = min(5000, {args.n})
    head = np.frombuffer(f.read(k * 784), np.uint8).reshape(k, 28, 28, 1)
print(bool((to_uint8(genforge.load({run!r}).sample(k, seed=1)) == head).all()))"""], env=env,
                           capture_output=True, text=True)
    assert check.stdout.strip() == "True", check.stderr
    out.unlink()
    if not args.skip_reference:
        ref = work / "in_memory.npz"
        secs, rss = measure(IN_MEMORY.format(run=run, n=args.n, out=str(ref)), env)
        rows.append(("in memory, then np.savez_compressed", secs, rss, ref.stat().st_size / 2**20))
        ref.unlink()
    print(f"\n{args.n:,} samples of 28x28x1 from a dcgan, {args.threads} threads")
    print(f"{'way':<40} {'seconds':>8} {'peak RSS MiB':>13} {'file MiB':>9}")
    for name, secs, rss, size in rows:
        print(f"{name:<40} {secs:>8.1f} {rss:>13.0f} {size:>9.1f}")
    if len(rows) == 2:
        print(f"peak memory ratio (in memory / streamed): {rows[1][2] / rows[0][2]:.1f}x; "
              f"time ratio: {rows[1][1] / rows[0][1]:.2f}x")
    print(json.dumps([dict(zip(("way", "seconds", "peak_rss_mib", "file_mib"), r)) for r in rows]))


if __name__ == "__main__":
    main()
