"""The HTML evaluation report: self-contained (images inlined), opens offline."""

from __future__ import annotations

import base64
import io as _io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genforge.core.report import fig_png, pyplot, write_report


def _png(arr: np.ndarray) -> str:
    from PIL import Image

    buf = _io.BytesIO()
    Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _grid(x: torch.Tensor, nrow: int | None = None, cell: int = 48) -> str:
    from genforge.images.imageio import make_grid

    scale = max(1, cell // x.shape[-1])
    x = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest") if scale > 1 else x
    return _png(make_grid(x, nrow=nrow))


def _histogram(hist: dict) -> str:
    plt = pyplot()
    k = np.arange(len(hist["classes"]))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(k - 0.2, hist["real"], 0.4, label="real test")
    ax.bar(k + 0.2, hist["generated"], 0.4, label="generated")
    ax.set_xticks(k, hist["classes"], rotation=45 if len(k) > 12 else 0)
    ax.set_ylabel("share")
    ax.legend()
    return fig_png(fig)


def _curves(records: list[dict]) -> str | None:
    if not records:
        return None
    plt = pyplot()
    keys = [k for k in records[-1] if k not in ("step", "elapsed")]
    fig, ax = plt.subplots(figsize=(5, 3))
    steps = [r["step"] for r in records]
    for k in keys:
        ax.plot(steps, [r.get(k, np.nan) for r in records], label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    return fig_png(fig)


def write_images_report(path: str | Path, result: dict, fake: torch.Tensor, train_x: torch.Tensor, *,
                        title: str, fake_labels: torch.Tensor | None = None, class_names: list[str] | None = None,
                        training_metrics: list[dict] | None = None) -> Path:
    """Write ``report.html`` for :func:`~genforge.images.metrics.evaluate_images`'s ``result``."""
    from genforge.images.imageio import to_uint8

    images: dict[str, Any] = {"grid": _grid(fake[:64], cell=64)}
    if fake_labels is not None:
        rows = []
        for c in sorted(set(fake_labels.tolist())):
            rows.append(fake[fake_labels == c][:10])
        if all(len(r) == 10 for r in rows):
            images["per_class"] = _grid(torch.cat(rows), nrow=10)
    if result.get("class_histogram"):
        images["histogram"] = _histogram(result["class_histogram"])
    images["curves"] = _curves(training_metrics or [])
    pairs = []
    for p in result.get("closest_pairs", []):
        f, r = to_uint8(fake[p["generated"]][None])[0], to_uint8(train_x[p["train"]][None])[0]
        pairs.append({**p, "fake": _png(f), "real": _png(r)})
    return write_report(path, __package__, **{**result, "title": title}, images=images, pairs=pairs)
