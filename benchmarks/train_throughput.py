"""Training throughput: genforge vs a plain-PyTorch tutorial loop of the identical architecture.

For ``mlp-gan`` and ``dcgan`` (their genforge defaults) this trains on MNIST with both loops in
the same process, with the same thread count:

* **reference**: the loop tutorials write - a ``DataLoader`` over a ``TensorDataset``
  (batch 64, shuffle), ``torch.optim.Adam`` with the model's lr/betas, the discriminator called
  on real, then on ``fake.detach()``, then on ``fake`` for the generator step, and (dcgan) a
  per-parameter EMA of the generator;
* **genforge**: ``genforge.create(name).fit(data, steps=N)``: one whole ``fit`` call, so its
  per-call costs (building the trainer, optimizers, seeding) count.

Both use the same networks (genforge's own modules, freshly initialised with the same seed) and
the same losses, so the maths per step is identical; only the loop differs. With ``--precision
bf16`` both run their steps under ``torch.autocast(bfloat16)``.

Robust to a noisy machine: each repeat times a long run of each loop (``--seconds`` of training,
steps fixed from a calibration run), the loops alternate (reference, genforge, reference, ...) so
slow phases of the machine hit both, and the report gives the median img/s of each with the
spread (min-max) and the median of the per-repeat ratios. ``--busy K`` starts K processes that
spin on the CPU during the timed runs, to see how each loop reacts to a busy machine.

    python benchmarks/train_throughput.py [--seconds 8] [--repeats 5] [--precision fp32|bf16]
                                          [--threads 2] [--busy 0] [--models mlp-gan,dcgan]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import genforge
from genforge.core.train.device import cpu_bf16_kind
from genforge.images.models.gan import d_loss, g_loss


def _autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def reference_loop(model, x: torch.Tensor, steps: int, precision: str) -> float:
    """Tutorial-style training of ``model``'s freshly built G and D; returns images/s over ``steps``."""
    c = model.config
    torch.manual_seed(0)
    model.nets = {}
    model.build()
    G, D = model.nets["G"], model.nets["D"]
    ema = model.nets.get("G_ema")
    opt_g = torch.optim.Adam(G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=c.lr_d or c.lr, betas=(c.beta1, c.beta2))
    loader = DataLoader(TensorDataset(x), batch_size=c.batch_size, shuffle=True, drop_last=True)
    G.train(), D.train()
    done, t0 = 0, time.perf_counter()
    while True:
        for (real,) in loader:
            if done == steps:
                return steps * c.batch_size / (time.perf_counter() - t0)
            b = real.shape[0]
            with _autocast(precision):
                D.zero_grad()
                out_real = D(real)
                fake = G(torch.randn(b, c.z_dim))
                out_fake = D(fake.detach())
                loss_d = d_loss(c.loss, out_real, out_fake)
                loss_d.backward()
                opt_d.step()
                G.zero_grad()
                loss_g = g_loss(c.loss, D(fake))
                loss_g.backward()
                opt_g.step()
            if ema is not None:  # the usual per-parameter EMA
                with torch.no_grad():
                    for p_ema, p in zip(ema.shadow.parameters(), G.parameters()):
                        p_ema.mul_(c.ema).add_(p, alpha=1 - c.ema)
                    for b_ema, b_ in zip(ema.shadow.buffers(), G.buffers()):
                        b_ema.copy_(b_)
            loss_d.item(), loss_g.item()  # tutorials log the losses
            done += 1


def genforge_loop(name: str, data, steps: int, precision: str) -> float:
    """One whole genforge ``fit`` call of ``steps`` steps; returns images/s."""
    model = genforge.create(name)
    t0 = time.perf_counter()
    model.fit(data, steps=steps, seed=0, precision=precision, device="cpu")
    return steps * model.config.batch_size / (time.perf_counter() - t0)


def _spin(stop) -> None:  # pragma: no cover - a busy neighbour
    x = 0
    while not stop.is_set():
        x += 1


@contextlib.contextmanager
def busy(k: int):
    stop = mp.Event()
    procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(k)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(5)


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):8.0f} ({min(values):.0f}-{max(values):.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--seconds", type=float, default=8.0, help="target length of each timed run")
    ap.add_argument("--repeats", type=int, default=5, help="alternating repeats of the two loops")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--busy", type=int, default=0, help="CPU-spinning neighbour processes during timing")
    ap.add_argument("--models", default="mlp-gan,dcgan")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = genforge.load_images(args.data)
    print(f"data: {data.source}, {len(data)} images {data.image_shape}; threads {args.threads}; "
          f"precision {args.precision} (CPU bf16: {cpu_bf16_kind()}); {args.repeats} alternating repeats of "
          f"~{args.seconds:g} s each; busy neighbours: {args.busy}")
    print(f"{'model':8s} {'steps':>6s} {'reference img/s (min-max)':>27s} {'genforge img/s (min-max)':>26s} "
          f"{'ratio (min-max)':>18s}")
    for name in args.models.split(","):
        model = genforge.create(name)
        model.adopt_data(data)
        rate = reference_loop(model, data.x, 30, args.precision)  # calibrate (and warm up) both loops
        genforge_loop(name, data, 30, args.precision)
        steps = max(50, int(args.seconds * rate / model.config.batch_size))
        ref, ours = [], []
        with busy(args.busy):
            for _ in range(args.repeats):
                ref.append(reference_loop(model, data.x, steps, args.precision))
                ours.append(genforge_loop(name, data, steps, args.precision))
        ratios = [o / r for o, r in zip(ours, ref)]
        print(f"{name:8s} {steps:6d} {fmt(ref):>27s} {fmt(ours):>26s} "
              f"{statistics.median(ratios):6.2f}x ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)


if __name__ == "__main__":
    main()
