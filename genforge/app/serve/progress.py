"""A run's progress read from its run directory (the source of truth): step, losses, steps per second,
ETA, and the loss curve for charts. Nothing here writes.

It reads ``summary.json`` and ``metrics.jsonl`` as plain JSON, without :mod:`genforge.core.runs` (which
imports torch), so that a worker process stays light: torch lives in its fork server and jobs only
(``tests/test_serve_api.py`` checks that the file names agree with ``core.runs``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from genforge.core.io import read_jsonl

SUMMARY, METRICS = "summary.json", "metrics.jsonl"  # as in genforge.core.runs

TAIL_BYTES = 16384


def _tail_lines(path: Path, nbytes: int = TAIL_BYTES) -> list[dict]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            raw = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    rows = []
    for line in raw.splitlines()[1 if size > nbytes else 0:]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def losses_of(row: dict) -> dict[str, float]:
    return {k: v for k, v in row.items() if k not in ("step", "elapsed") and isinstance(v, (int, float))}


def read(path: str | Path, total_steps: int | None = None, minutes: float | None = None) -> dict[str, Any]:
    """``{"step", "losses", "steps_per_second", "eta_s", "status", "checkpoint_step"}`` of a run directory."""
    try:
        summary = json.loads((Path(path) / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    summary = summary if isinstance(summary, dict) else {}
    rows = _tail_lines(Path(path) / METRICS)
    step, losses, sps = int(summary.get("step", 0) or 0), dict(summary.get("losses") or {}), None
    if rows and rows[-1]["step"] >= step:
        step, losses = rows[-1]["step"], losses_of(rows[-1])
    timed = [r for r in rows if isinstance(r.get("elapsed"), (int, float))]
    if len(timed) >= 2 and timed[-1]["elapsed"] > timed[0]["elapsed"]:
        first, last = timed[max(0, len(timed) - 10)], timed[-1]
        if last["elapsed"] > first["elapsed"]:
            sps = (last["step"] - first["step"]) / (last["elapsed"] - first["elapsed"])
    eta = None
    if sps and total_steps:
        eta = max(0.0, (total_steps - step) / sps)
    if minutes and timed:
        left = minutes * 60 - timed[-1]["elapsed"]
        eta = max(0.0, min(eta, left) if eta is not None else left)
    return {"step": step, "losses": losses, "steps_per_second": round(sps, 3) if sps else None,
            "eta_s": round(eta, 1) if eta is not None else None, "status": summary.get("status"),
            "checkpoint_step": summary.get("checkpoint_step")}


def curve(path: str | Path, limit: int = 2000) -> list[dict]:
    """The logged losses of a run (every line of metrics.jsonl with a step), thinned to ``limit`` points."""
    rows = [r for r in read_jsonl(Path(path) / METRICS) if isinstance(r, dict) and isinstance(r.get("step"), int)]
    if len(rows) > limit:
        stride = -(-len(rows) // limit)
        rows = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
    return rows
