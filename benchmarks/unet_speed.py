"""Speed of genforge's own UNet against diffusers' ``UNet2DModel`` at the same widths (a design decision).

Both networks get the same layout: ``len(channel_mult)`` resolutions with ``width * mult`` channels,
``res_blocks`` residual blocks per resolution down (one more up), self-attention at the lowest
resolution and in the middle, GroupNorm with 8 groups, a time embedding of ``4 * width`` and a
class embedding with a null class. It times, on MNIST-sized inputs (28x28x1 by default):

* **train**: one training step (forward, MSE loss, backward, Adam step) on a batch of ``--batch``;
* **sample**: one sampling step (a no-grad forward) on a batch of ``--sample-batch``.

The two alternate (ours, diffusers, ours, ...) ``--repeats`` times, each timing ``--iters`` calls after
a warm-up; the report is the median time of each and the median of the per-repeat ratios, so a
neighbour slowing the machine for a while hits both. Needs ``pip install diffusers``.

    python benchmarks/unet_speed.py [--threads 1] [--repeats 7] [--iters 5] [--width 32] [--mult 1,2,2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def ours(args, k: int):
    from genforge.images.models.unet import UNet

    return UNet((args.channels, args.size, args.size), width=args.width, channel_mult=args.mult,
                res_blocks=args.res_blocks, attention_levels=1, num_classes=k)


def theirs(args, k: int):
    from diffusers import UNet2DModel

    levels = len(args.mult)
    down = ["DownBlock2D"] * (levels - 1) + ["AttnDownBlock2D"]
    up = ["AttnUpBlock2D"] + ["UpBlock2D"] * (levels - 1)
    net = UNet2DModel(sample_size=args.size, in_channels=args.channels, out_channels=args.channels,
                      block_out_channels=tuple(args.width * m for m in args.mult), layers_per_block=args.res_blocks,
                      down_block_types=tuple(down), up_block_types=tuple(up), norm_num_groups=8,
                      attention_head_dim=args.width * args.mult[-1], num_class_embeds=k + 1)
    return _Wrap(net)


class _Wrap(torch.nn.Module):
    """diffusers' call convention -> ours: ``net(x, t, y)`` returns a tensor."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, t, y):
        return self.net(x, t, class_labels=y).sample


def timed(fn, iters: int) -> float:
    fn()  # warm-up (allocations, oneDNN primitive caches)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--mult", type=lambda s: tuple(int(v) for v in s.split(",")), default=(1, 2, 2))
    ap.add_argument("--res-blocks", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--sample-batch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    k = 10
    nets = {"ours": ours(args, k), "diffusers": theirs(args, k)}
    opts = {name: torch.optim.Adam(net.parameters(), lr=1e-4) for name, net in nets.items()}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, args.size, args.size, generator=g)
    t = torch.randint(0, 1000, (args.batch,), generator=g)
    y = torch.randint(0, k + 1, (args.batch,), generator=g)
    xs = torch.randn(args.sample_batch, args.channels, args.size, args.size, generator=g)
    ts = torch.full((args.sample_batch,), 500)
    ys = torch.randint(0, k, (args.sample_batch,), generator=g)

    def train(name):
        net, opt = nets[name], opts[name]
        loss = F.mse_loss(net(x, t, y), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def sample(name):
        nets[name](xs, ts, ys)

    for name, net in nets.items():
        print(f"{name:>9}: {sum(p.numel() for p in net.parameters()):,} parameters")
    print(f"{args.size}x{args.size}x{args.channels}, width {args.width}, mult {args.mult}, res_blocks {args.res_blocks}, "
          f"threads {args.threads}, {args.repeats} alternating repeats of {args.iters} calls")
    for what, fn, batch in (("train step", train, args.batch), ("sampling step", sample, args.sample_batch)):
        times = {name: [] for name in nets}
        for _ in range(args.repeats):
            for name in nets:
                times[name].append(timed(lambda: fn(name), args.iters))
        ratios = [d / o for o, d in zip(times["ours"], times["diffusers"])]
        med = {name: statistics.median(v) for name, v in times.items()}
        print(f"{what} (batch {batch}): ours {med['ours'] * 1e3:.1f} ms, diffusers {med['diffusers'] * 1e3:.1f} ms; "
              f"diffusers/ours median ratio {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
