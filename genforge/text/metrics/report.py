"""The HTML evaluation report for text: self-contained (plots inlined as PNG), opens offline."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from genforge.core.report import fig_png, pyplot, write_report

SHOWN = 6  # generated and real texts shown side by side
REAL_COLOR, GEN_COLOR = "#4c72b0", "#dd8452"


def _lengths(result: dict) -> str:
    plt = pyplot()
    gen, real = result["lengths"]["generated"], result["lengths"]["real"]
    fig, ax = plt.subplots(figsize=(5, 3))
    bins = np.linspace(0, max(gen + real + [1]), 21)
    ax.hist(real, bins=bins, alpha=0.5, label="real", color=REAL_COLOR)
    ax.hist(gen, bins=bins, alpha=0.5, label="generated", color=GEN_COLOR)
    ax.set_xlabel("characters per text")
    ax.set_ylabel("texts")
    ax.legend()
    return fig_png(fig)


def _curves(records: list[dict] | None) -> str | None:
    train = [(r["step"], r["loss"]) for r in records or [] if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records or [] if "val_loss" in r]
    if not train and not val:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    for points, label in ((train, "training loss"), (val, "validation loss")):
        if points:
            ax.plot(*zip(*points), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("nats per token")
    ax.legend()
    return fig_png(fig)


def write_text_report(path: str | Path, result: dict, generated: Sequence[str], real: Sequence[str], *, title: str,
                      training_metrics: list[dict] | None = None) -> Path:
    """Write ``report.html`` for :func:`~genforge.text.metrics.evaluate.evaluate_text`'s ``result``: the metrics
    with their references, texts beside real text, lengths, the longest verbatim overlaps, training curves."""
    pairs = list(zip(list(generated)[:SHOWN], list(real)[:SHOWN]))
    images = {"lengths": _lengths(result), "curves": _curves(training_metrics)}
    return write_report(path, __package__, **{**result, "title": title}, images=images, pairs=pairs)
