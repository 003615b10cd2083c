"""Training throughput: genforge vs a plain-PyTorch tutorial loop of the identical architecture.

For ``mlp-gan`` and ``dcgan`` (their genforge defaults) this trains a fixed number of steps
on MNIST twice in the same process, with the same thread count:

* **reference**: the loop tutorials write - a ``DataLoader`` over a ``TensorDataset``
  (batch 64, shuffle), ``torch.optim.Adam`` (lr 2e-4, betas (0.5, 0.999)), the
  discriminator called on real, then on ``fake.detach()``, then on ``fake`` for the
  generator step, and (dcgan) a per-parameter EMA of the generator;
* **genforge**: ``genforge.create(name).fit(data, steps=N)``.

Both use the same networks (genforge's own modules, freshly initialised with the same
seed) and the same losses, so the maths per step is identical; only the loop differs.
Prints images/second and the ratio genforge / reference.

    python benchmarks/train_throughput.py [--steps 300] [--threads 2] [--data ../shared/data/mnist]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import genforge
from genforge.images.models.gan import d_loss, g_loss


def reference_loop(model, x: torch.Tensor, steps: int, warmup: int) -> float:
    """Tutorial-style training of ``model``'s freshly built G and D; returns images/s over ``steps``."""
    c = model.config
    torch.manual_seed(0)
    model.build()
    G, D = model.nets["G"], model.nets["D"]
    ema = model.nets.get("G_ema")
    opt_g = torch.optim.Adam(G.parameters(), lr=c.lr, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=c.lr_d or c.lr, betas=(c.beta1, c.beta2))
    loader = DataLoader(TensorDataset(x), batch_size=c.batch_size, shuffle=True, drop_last=True)
    G.train(), D.train()
    done, t0 = 0, None
    while True:
        for (real,) in loader:
            if done == warmup:
                t0 = time.perf_counter()
            if done == warmup + steps:
                return steps * c.batch_size / (time.perf_counter() - t0)
            b = real.shape[0]
            # discriminator
            D.zero_grad()
            out_real = D(real)
            fake = G(torch.randn(b, c.z_dim))
            out_fake = D(fake.detach())
            loss_d = d_loss(c.loss, out_real, out_fake)
            loss_d.backward()
            opt_d.step()
            # generator
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


def genforge_loop(name: str, data, steps: int, warmup: int) -> float:
    """genforge's own fit; returns images/s over ``steps`` (after ``warmup`` steps)."""
    model = genforge.create(name)
    model.fit(data, steps=warmup, seed=0)
    t0 = time.perf_counter()
    model.fit(data, steps=steps, seed=0)
    return steps * model.config.batch_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=3, help="alternate the two loops this many times; report the best")
    ap.add_argument("--models", default="mlp-gan,dcgan")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = genforge.load_images(args.data)
    print(f"data: {data.source}, {len(data)} images {data.image_shape}; threads {args.threads}; "
          f"{args.steps} timed steps after {args.warmup} warm-up, best of {args.repeats}")
    print(f"{'model':10s} {'reference img/s':>16s} {'genforge img/s':>15s} {'ratio':>7s}")
    for name in args.models.split(","):
        ref, ours = [], []
        for _ in range(args.repeats):
            model = genforge.create(name)
            model.adopt_data(data)
            ref.append(reference_loop(model, data.x, args.steps, args.warmup))
            ours.append(genforge_loop(name, data, args.steps, args.warmup))
        r, o = max(ref), max(ours)
        print(f"{name:10s} {r:16.0f} {o:15.0f} {o / r:7.2f}x")


if __name__ == "__main__":
    main()
