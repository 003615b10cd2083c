"""Image completion on MNIST: the lower half of each test digit masked, filled by each image model.

For each model (trained here for ``--steps``, or given as ``--runs``) the masked test digits are completed
with ``model.complete`` and scored by (a) the accuracy of the domain classifier (the CNN of
``genforge.images.metrics.features``, trained on the real training digits) on the completed digits and
(b) the PSNR on the masked region against the true lower halves; the reference is a nearest-neighbour fill:
the lower half of the training digit whose upper half is closest. ``--tiny`` checks the script::

    python benchmarks/completion_mnist.py --tiny
    python benchmarks/completion_mnist.py --steps 5000 --n 1000          # the real figures
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import genforge
from genforge.core.metrics.neighbours import nearest_neighbours
from genforge.images.data import load_images
from genforge.images.metrics.features import train_domain_cnn


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB) over the masked pixels, images in [-1, 1] (peak-to-peak 2)."""
    mse = (((a - b) ** 2) * mask).sum() / mask.sum()
    return float(10 * math.log10(4.0 / max(float(mse), 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnist", default="../shared/data/mnist")
    ap.add_argument("--models", default="vae,cvae,cgan,ddpm,flow")
    ap.add_argument("--runs", nargs="*", default=None, help="trained run directories instead of --models")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--n", type=int, default=1000, help="test digits to complete")
    ap.add_argument("--limit", type=int, default=None, help="training digits")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="every budget tiny: checks the script, not the figures")
    a = ap.parse_args()
    if a.tiny:
        a.steps, a.n, a.limit, a.models = 5, 40, 600, "vae,ddpm"
    torch.set_num_threads(a.threads)
    train, test = load_images(a.mnist, limit=a.limit), load_images(a.mnist, split="test", limit=a.n)
    x, y = test.x, test.y
    mask = torch.zeros_like(x)
    mask[..., x.shape[-2] // 2:, :] = 1
    clf = train_domain_cnn(train.x, train.y, steps=50 if a.tiny else None, recon_weight=0.0).eval()

    def accuracy(images):
        with torch.no_grad():
            return float((clf.logits(images).argmax(1) == y).float().mean())

    top = x.shape[-2] // 2
    _, idx = nearest_neighbours(x[..., :top, :].flatten(1), train.x[..., :top, :].flatten(1), 1)
    nn_fill = torch.where(mask > 0, train.x[idx[:, 0]], x)
    rows = [("nearest-neighbour fill", accuracy(nn_fill), psnr(nn_fill, x, mask), 0.0)]
    sources = a.runs if a.runs else a.models.split(",")
    for source in sources:  # one model at a time, each row printed when it is done
        t0 = time.perf_counter()
        model = genforge.load(source) if a.runs else genforge.create(source).fit(train, steps=a.steps, seed=0)
        t1 = time.perf_counter()
        done = model.complete(x, mask, seed=0)  # labels unknown, as for the nearest-neighbour fill
        assert torch.equal(done[mask == 0], x[mask == 0])
        rows.append((model.name, accuracy(done), psnr(done, x, mask), time.perf_counter() - t1))
        print(f"{model.name}: trained in {t1 - t0:.0f} s; {rows[-1][1:]}", flush=True)
    print(f"\ntrue digits: classifier accuracy {accuracy(x):.3f}")
    print("| fill | classifier accuracy | PSNR masked (dB) | seconds |\n|---|---|---|---|")
    for name, acc, p, s in rows:
        print(f"| {name} | {acc:.3f} | {p:.2f} | {s:.1f} |")


if __name__ == "__main__":
    main()
