"""Evaluation speed: all image metrics but train-on-synthetic for 10,000 generated vs 10,000 real
28x28 images, once the domain feature network is cached.

The generated set is stood in for by 10,000 MNIST training images flipped left-right (the
metrics' cost does not depend on what the images show). The first call trains and caches the
feature network (and the real images' features); the timed calls reuse the cache.

    python benchmarks/eval_speed.py [--data ../shared/data/mnist] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import torch

import genforge
from genforge.images.metrics import evaluate_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/mnist")
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    train = genforge.load_images(args.data)
    test = genforge.load_images(args.data, split="test")
    fake = train.x[: args.n].flip(-1).contiguous()
    real_test = test.subset(torch.arange(min(args.n, len(test))))
    print(f"{len(fake)} generated vs {len(real_test)} real test images {train.image_shape}; "
          f"memorisation against {len(train)} training images; torch threads {torch.get_num_threads()}")
    t0 = time.perf_counter()
    first = evaluate_images(train, fake, real_test=real_test, tstr=False)
    print(f"first call (trains + caches the feature network): {time.perf_counter() - t0:.1f} s "
          f"(network training {first['extractor']['train_seconds']:.1f} s)")
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = evaluate_images(train, fake, real_test=real_test, tstr=False)
        times.append(time.perf_counter() - t0)
    print(f"cached: best {min(times):.2f} s, all {', '.join(f'{t:.2f}' for t in times)} s")
    print("breakdown of the last call (s):", res["seconds"])


if __name__ == "__main__":
    main()
