"""Seconds per evaluation step, for the ``seconds`` entry of an evaluation result."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator


class Stopwatch:
    """Times named steps: ``with watch("features"): ...``; :meth:`seconds` adds the total since creation."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self.steps: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = time.perf_counter() - t

    def seconds(self) -> dict[str, float]:
        """Every timed step and ``total``, in seconds rounded to milliseconds (steps in the order they ran)."""
        out = {**self.steps, "total": time.perf_counter() - self._start}
        return {k: round(v, 3) for k, v in out.items()}
