"""Text: genforge's language models against a plain-PyTorch GPT written the way the popular minimal
recipes write it, on Tiny Shakespeare at the character level (first 90 % train, last 10 % validation).

Four measurements, in one process with the same thread count:

1. **throughput** — training tokens per second of the *reference* (Karpathy's "let's build GPT" ``gpt.py``
   structure: one module per attention head with a masked softmax, ``torch.randint`` windows from one
   tensor, ``torch.optim.AdamW``, a plain loop) against genforge's ``gpt`` through its whole ``fit`` path
   (the one Trainer), both at the CPU "baby" configuration (4 layers, 4 heads, 128 dims, block 64, batch 12,
   dropout 0, lr 1e-3). The maths is the same: the reference uses GELU, q/k/v biases and a bias-free untied
   head as genforge's ``gpt`` does with ``tie_weights=false``; genforge runs without warm-up or clipping and
   with AdamW's default betas and decay (on its weight matrices only; the reference decays every parameter).
   Runs alternate (reference, genforge, ...) ``--repeats`` times; medians and the median ratio; fp32 and bf16.
2. **quality** — the default ``gpt`` preset, ``char-lstm`` and the reference baby model each trained for
   ``--quality-seconds`` (125) of wall clock; validation loss in nats per character over ``--eval-windows``
   evenly spread windows of the validation split.
3. **curve** — each ``--presets`` gpt trained for the largest of ``--marks`` minutes (2, 5, 10, 30) with a
   validation loss every ``--curve-eval-every`` steps; the table gives the loss reached by each mark. The
   default preset should be the one lowest at 10 minutes.
4. **generation** — tokens per second for one ``--gen-tokens`` (500) sample, with and without the KV cache
   (gpt) or carried hidden state (char-lstm).

    python benchmarks/text_vs_reference.py                        # everything: about 40 minutes + 3 x --marks max
    python benchmarks/text_vs_reference.py --only curve --presets tiny,small,base --marks 2,5,10
    python benchmarks/text_vs_reference.py --seconds 2 --repeats 1 --quality-seconds 5 --marks 0.1 --gen-tokens 50
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import genforge
from genforge.app.workflows import train_run
from genforge.core.config import TrainConfig
from genforge.core.runs import RunDir
from genforge.core.train.device import cpu_bf16_kind
from genforge.text.models.gpt import DEFAULT_PRESET
from genforge.text.sampling import sampling_options

BABY = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "batch_size": 12, "dropout": 0.0, "lr": 1e-3}
GENFORGE_BABY = {**BABY, "tie_weights": False, "bias": True, "warmup_steps": 0, "grad_clip": 0.0,
                 "betas": (0.9, 0.999), "weight_decay": 0.01, "eval_every": 10**9}


# -- the reference: gpt.py's structure, the same maths as genforge's gpt -----------------------------------------
class Head(nn.Module):
    def __init__(self, n_embd, head_size, block_size, dropout):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size)
        self.query = nn.Linear(n_embd, head_size)
        self.value = nn.Linear(n_embd, head_size)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        T = x.shape[1]
        k, q = self.key(x), self.query(x)
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
        wei = F.softmax(wei.masked_fill(self.tril[:T, :T] == 0, float("-inf")), dim=-1)
        return self.dropout(wei) @ self.value(x)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size, dropout):
        super().__init__()
        self.heads = nn.ModuleList(Head(n_embd, n_embd // n_head, block_size, dropout) for _ in range(n_head))
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1)))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size, dropout):
        super().__init__()
        self.sa = MultiHeadAttention(n_embd, n_head, block_size, dropout)
        self.ffwd = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd),
                                  nn.Dropout(dropout))
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)

    def forward(self, x):
        x = x + self.sa(self.ln1(x))
        return x + self.ffwd(self.ln2(x))


class ReferenceGPT(nn.Module):
    def __init__(self, vocab, n_layer, n_head, n_embd, block_size, dropout, **_):
        super().__init__()
        self.block_size = block_size
        self.token_embedding_table = nn.Embedding(vocab, n_embd)
        self.position_embedding_table = nn.Embedding(block_size, n_embd)
        self.blocks = nn.Sequential(*[Block(n_embd, n_head, block_size, dropout) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.token_embedding_table(idx) + self.position_embedding_table(torch.arange(T))
        logits = self.lm_head(self.ln_f(self.blocks(x)))
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def reference_train(data, vocab, seconds, precision="fp32", seed=0, val=None, eval_every=500):
    """Train the reference for ``seconds``; returns (model, tokens/s over training steps only, val losses)."""
    torch.manual_seed(seed)
    model = ReferenceGPT(vocab, **BABY)
    opt = torch.optim.AdamW(model.parameters(), lr=BABY["lr"])
    block, batch = BABY["block_size"], BABY["batch_size"]
    steps, train_time, t0, curve = 0, 0.0, time.perf_counter(), []
    while time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        ix = torch.randint(len(data) - block, (batch,))
        x = torch.stack([data[i:i + block] for i in ix])
        y = torch.stack([data[i + 1:i + block + 1] for i in ix])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        train_time += time.perf_counter() - s
        if val is not None and steps % eval_every == 0:
            curve.append((time.perf_counter() - t0, window_loss(model, val, block)))
    return model, steps * block * batch / train_time, curve


@torch.no_grad()
def window_loss(lm, ids, block, windows=200):
    """Mean cross-entropy (nats per token) over ``windows`` evenly spread windows of ``ids``."""
    lm.eval()
    starts = torch.linspace(0, len(ids) - block - 1, windows).long()
    x = torch.stack([ids[s:s + block] for s in starts])
    y = torch.stack([ids[s + 1:s + block + 1] for s in starts])
    out = lm(x)
    logits = out[0] if isinstance(out, tuple) else out
    lm.train()
    return float(F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1)))


# -- genforge ------------------------------------------------------------------------------------------------
def genforge_train(corpus, name, params, seconds, precision="fp32", threads=2, seed=0):
    """``name`` trained on ``corpus`` for ``seconds`` through the Trainer; returns (model, training tokens/s)."""
    model = genforge.create(name, **params)
    model.adopt_data(corpus)
    cfg = TrainConfig(minutes=seconds / 60, seed=seed, threads=threads, precision=precision, device="cpu",
                      progress=False, log_every=10**9, checkpoint_every=10**9)
    summary = model.train_in_run(corpus, cfg, None)
    c = model.config
    return model, summary["step"] * c.batch_size * c.block_size / summary["elapsed"]


def val_nats_per_char(model, windows):
    loss, _ = model.validation_loss(windows)
    return loss / model.chars_per_token


def throughput(args, corpus, ref_train, vocab):
    print("\n## 1. Training throughput, baby configuration (tokens/s)\n")
    print(f"CPU bf16: {cpu_bf16_kind()}; threads {args.threads}; {args.seconds} s per run, {args.repeats} repeats\n")
    print("| precision | reference tok/s (min-max) | genforge tok/s (min-max) | ratio (min-max) |")
    print("| --- | ---: | ---: | ---: |")
    for precision in args.precisions.split(","):
        ref, gen = [], []
        for r in range(args.repeats):
            ref.append(reference_train(ref_train, vocab, args.seconds, precision, seed=r)[1])
            gen.append(genforge_train(corpus, "gpt", GENFORGE_BABY, args.seconds, precision, args.threads, seed=r)[1])
        ratios = [g / f for g, f in zip(gen, ref)]
        print(f"| {precision} | {statistics.median(ref):,.0f} ({min(ref):,.0f}-{max(ref):,.0f}) | "
              f"{statistics.median(gen):,.0f} ({min(gen):,.0f}-{max(gen):,.0f}) | **{statistics.median(ratios):.2f}x** "
              f"({min(ratios):.2f}-{max(ratios):.2f}) |")


def quality(args, corpus, ref_train, ref_val, vocab):
    print(f"\n## 2. Validation loss after {args.quality_seconds:g} s of training (nats per character)\n")
    print("| model | steps/s | validation loss |\n| --- | ---: | ---: |")
    models = {}
    for label, name, params in ((f"gpt ({DEFAULT_PRESET}, the default)", "gpt", {}), ("char-lstm", "char-lstm", {})):
        model, tps = genforge_train(corpus, name, params, args.quality_seconds, threads=args.threads)
        models[name] = model
        print(f"| {label} | {tps / model.config.batch_size / model.config.block_size:.1f} | "
              f"{val_nats_per_char(model, args.eval_windows):.3f} |")
    ref, tps, _ = reference_train(ref_train, vocab, args.quality_seconds)
    print(f"| reference baby GPT | {tps / BABY['batch_size'] / BABY['block_size']:.1f} | "
          f"{window_loss(ref, ref_val, BABY['block_size'], args.eval_windows):.3f} |")
    for name, model in models.items():
        print(f"\n{name}, 300 characters (temperature 0.8, seed 0):\n```\n"
              f"{model.generate('', max_tokens=300, temperature=0.8, seed=0)}\n```")
    return models


def curve(args):
    marks = [float(m) for m in args.marks.split(",")]
    presets = args.presets.split(",")
    print("\n## 3. Validation loss (nats per character) against minutes of training\n")
    print("| preset | " + " | ".join(f"{m:g} min" for m in marks) + " |")
    print("| --- | " + " | ".join("---:" for _ in marks) + " |")
    for preset in presets:
        with tempfile.TemporaryDirectory() as tmp:
            train_run("gpt", args.data, out=Path(tmp) / "run", params={"preset": preset, "eval_every": args.curve_eval_every,
                                                                      "eval_windows": args.eval_windows},
                      train={"minutes": max(marks), "threads": args.threads, "progress": False, "device": "cpu",
                             "sample_every": 10**9, "checkpoint_every": 10**9})
            vals = [r for r in RunDir(Path(tmp) / "run").read_metrics() if "val_loss" in r]
        cells = []
        for m in marks:
            reached = [r["val_loss"] for r in vals if r["elapsed"] <= m * 60]
            cells.append(f"{min(reached):.3f}" if reached else "—")
        print(f"| {preset} | " + " | ".join(cells) + " |")


def generation(args, models):
    print(f"\n## 4. Generation speed: one {args.gen_tokens}-token sample (tokens/s)\n")
    print("| model | with cache / carried state | without | speed-up |\n| --- | ---: | ---: | ---: |")
    opts = sampling_options(max_tokens=args.gen_tokens, temperature=1.0)
    for name, model in models.items():
        speeds = []
        for cached in (True, False):
            t = time.perf_counter()
            model.complete("", 1, opts, seed=0, use_cache=cached)
            speeds.append(args.gen_tokens / (time.perf_counter() - t))
        print(f"| {name} | {speeds[0]:,.0f} | {speeds[1]:,.0f} | {speeds[0] / speeds[1]:.1f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/tinyshakespeare/input.txt")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="throughput,quality,curve,generation")
    p.add_argument("--seconds", type=float, default=20, help="seconds per throughput run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--quality-seconds", type=float, default=125)
    p.add_argument("--eval-windows", type=int, default=400)
    p.add_argument("--marks", default="2,5,10,30", help="minutes at which the curve is read")
    p.add_argument("--presets", default=DEFAULT_PRESET, help="gpt presets on the curve, e.g. tiny,small,base")
    p.add_argument("--curve-eval-every", type=int, default=100)
    p.add_argument("--gen-tokens", type=int, default=500)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    corpus = genforge.load_text(args.data)
    text = corpus.documents[0]
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)  # as the recipes encode
    cut = int(0.9 * len(ids))
    ref_train, ref_val = ids[:cut], ids[cut:]
    print(f"# genforge text benchmark: {corpus.source}, {len(text):,} characters, torch {torch.__version__}, "
          f"{args.threads} threads")
    models = {}
    if "throughput" in only:
        throughput(args, corpus, ref_train, len(chars))
    if "quality" in only or "generation" in only:
        models = quality(args, corpus, ref_train, ref_val, len(chars))
    if "curve" in only:
        curve(args)
    if "generation" in only:
        generation(args, models)


if __name__ == "__main__":
    main()
