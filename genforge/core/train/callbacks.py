"""Trainer callbacks: metrics.jsonl, TensorBoard and the progress bar; a modality adds its preview."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from genforge.core.config import TrainConfig
from genforge.core.runs import RunDir

if TYPE_CHECKING:
    from genforge.core.train.trainer import Trainer


class Callback:
    """Hooks the trainer calls; override what you need."""

    def on_start(self, trainer: "Trainer") -> None: ...

    def on_step(self, trainer: "Trainer", losses: dict[str, float]) -> None: ...

    def on_log(self, trainer: "Trainer", losses: dict[str, float]) -> None: ...

    def on_metrics(self, trainer: "Trainer", values: dict[str, float]) -> None:
        """Other numbers measured during training (a validation loss), sent by :meth:`Trainer.report_metrics`."""

    def on_end(self, trainer: "Trainer") -> None: ...


class MetricsLogger(Callback):
    """Appends ``{"step", "elapsed", **mean losses}`` to metrics.jsonl every ``log_every`` steps."""

    def __init__(self, run: RunDir):
        self.run = run

    def on_log(self, trainer, losses):
        self.run.append_metrics({"step": trainer.step, "elapsed": round(trainer.elapsed, 3),
                                 **{k: round(v, 6) for k, v in losses.items()}})

    def on_metrics(self, trainer, values):
        self.on_log(trainer, values)


class TensorBoardLogger(Callback):
    """Writes the logged losses as TensorBoard scalars under ``RUN/tensorboard``."""

    def __init__(self, run: RunDir):
        self.run = run
        self.writer = None

    def on_start(self, trainer):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.run.tensorboard_dir), purge_step=trainer.step or None)

    def on_log(self, trainer, losses):
        for k, v in losses.items():
            self.writer.add_scalar(f"loss/{k}", v, trainer.step)

    def on_metrics(self, trainer, values):
        for k, v in values.items():
            self.writer.add_scalar(f"metrics/{k}", v, trainer.step)

    def on_end(self, trainer):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class ProgressBar(Callback):
    """A rich progress bar over steps (or over minutes when only a time budget is set)."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.progress = None
        self._last = 0.0

    def on_start(self, trainer):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.by_time = self.config.steps is None
        total = self.config.minutes * 60 if self.by_time else self.config.steps
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                 transient=False)
        self.progress.start()
        self.task = self.progress.add_task(f"training {trainer.model.name}", total=total, info="",
                                           completed=self._completed(trainer))

    def _completed(self, trainer):
        return trainer.elapsed if self.by_time else trainer.step

    def on_step(self, trainer, losses):
        now = time.perf_counter()
        if now - self._last < 0.25:
            return
        self._last = now
        info = f"step {trainer.step} " + " ".join(f"{k} {v:.3f}" for k, v in (trainer.losses or losses).items())
        self.progress.update(self.task, completed=self._completed(trainer), info=info)

    def on_end(self, trainer):
        if self.progress is not None:
            self.progress.update(self.task, completed=self._completed(trainer))
            self.progress.stop()
            self.progress = None


def default_callbacks(config: TrainConfig, run: RunDir | None, model=None) -> list[Callback]:
    """The standard set: files in the run directory (if any), the model's modality callback (image
    grids, say, or a validation loss; it is asked even without a run directory) and a progress bar
    (if enabled)."""
    cbs: list[Callback] = []
    if run is not None:
        cbs += [MetricsLogger(run), TensorBoardLogger(run)]
    if model is not None:
        from genforge.core.registry import modality_of

        preview = modality_of(model).preview_callback(run, config)
        if preview is not None:
            cbs.append(preview)
    if config.progress:
        cbs.append(ProgressBar(config))
    return cbs
