"""The HTML report of ``genforge augment``: the low-data curves with their intervals, the table, the notes."""

from __future__ import annotations

from pathlib import Path

from genforge.core.report import fig_png, pyplot, write_report

COLORS = {"real": "#4c72b0", "real+synthetic": "#dd8452", "balanced": "#55a868", "synthetic": "#c44e52"}


def _curves(result: dict, metric: str, learner: str) -> str | None:
    """Mean and 95 % interval of ``metric`` against the share of real data, one line per arm."""
    rows = [r for r in result["summary"] if r["learner"] == learner and metric in r["metrics"]]
    if not rows:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for arm, color in COLORS.items():
        mine = sorted((r["fraction"], r["metrics"][metric]) for r in rows if r["arm"] == arm)
        if not mine:
            continue
        xs = [f for f, _ in mine]
        ax.plot(xs, [m["mean"] for _, m in mine], "o-", color=color, label=arm)
        ax.fill_between(xs, [m["low"] for _, m in mine], [m["high"] for _, m in mine], color=color, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("share of the real training data")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{learner}: {metric.replace('_', ' ')} (95% bootstrap interval)", fontsize=9)
    ax.legend(fontsize=7)
    return fig_png(fig, dpi=90)


def write_augment_report(path: str | Path, result: dict) -> Path:
    """Write the self-contained report of :func:`genforge.app.augment.augment`'s ``result``."""
    learners = sorted({r["learner"] for r in result["summary"]})
    metrics = ("r2",) if result.get("regression") else ("macro_f1", "minority_recall", "accuracy", "roc_auc")
    plots = [png for learner in learners for m in metrics if (png := _curves(result, m, learner))]
    title = f"augment — {result['model']} on {Path(result['data']).name}"
    return write_report(path, __package__, **{k: v for k, v in result.items() if k != "records"}, title=title,
                        plots=plots, shown=metrics)
