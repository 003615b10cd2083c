"""The image modality's training preview: a grid of samples from fixed noise every N steps."""

from __future__ import annotations

import torch

from genforge.core.runs import RunDir
from genforge.core.train.callbacks import Callback
from genforge.images.imageio import save_grid


class SampleGrids(Callback):
    """Saves a grid of samples from fixed noise every ``every`` steps and at the end."""

    def __init__(self, run: RunDir, every: int, seed: int = 1234):
        self.run, self.every, self.seed = run, every, seed

    def write(self, trainer) -> None:
        model = trainer.model
        k = model.num_classes if model.conditional else 0
        labels = [i % k for i in range(8 * k)] if k else None
        n = len(labels) if labels else 64
        x = torch.cat(list(model.sample_chunks(n, labels=labels, seed=self.seed)))  # a preview: no memory check
        nrow = k if k else None
        path = self.run.samples_dir / f"step_{trainer.step:07d}.png"
        save_grid(x, path, nrow=nrow)
        save_grid(x, self.run.samples_dir / "latest.png", nrow=nrow)
        model.train()

    def on_step(self, trainer, losses):
        if trainer.step % self.every == 0:
            self.write(trainer)

    def on_end(self, trainer):
        if trainer.status == "finished" and trainer.step % self.every != 0:
            self.write(trainer)
