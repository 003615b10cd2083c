"""The text modality's trainer callback: validation loss, the best weights, and text samples in ``samples/``."""

from __future__ import annotations

import math

from genforge.core import io
from genforge.core.train.callbacks import Callback
from genforge.text.sampling import sampling_options

SAMPLE_TOKENS = 300
SAMPLE_SEED = 1234


class TextProgress(Callback):
    """Every ``eval_every`` steps: the validation loss (``val_loss`` in nats per token and ``val_bpc`` in bits
    per character, through :meth:`~genforge.core.train.Trainer.report_metrics` into metrics.jsonl and
    TensorBoard), and the model's tracker keeps the weights if they are the best so far. With a run
    directory, every ``sample_every`` steps a text from the current weights goes to
    ``samples/step_NNNNNNN.txt``, and at the end one from the best weights to ``samples/latest.txt``."""

    def __init__(self, run, config):
        self.run, self.config = run, config
        self.opts = sampling_options(max_tokens=SAMPLE_TOKENS, temperature=0.8)

    def validate(self, trainer) -> None:
        model = trainer.model
        result = model.validation_loss()
        model.train()
        if result is None:
            return
        loss, _ = result
        if not getattr(model, "dp_plan", None):  # DP keeps the last weights: choosing by this loss would leak
            model.nets["tracker"].offer(model.trainable(), loss, trainer.step)
        trainer.report_metrics({"val_loss": loss, "val_bpc": loss / model.chars_per_token / math.log(2)})

    def write_sample(self, trainer, best: bool) -> None:
        model = trainer.model
        text = model.complete("", 1, self.opts, seed=SAMPLE_SEED, best=best)[0][0]
        model.train()
        for name in (f"step_{trainer.step:07d}.txt", "latest.txt"):
            io.write_text(self.run.samples_dir / name, text + "\n")

    def on_step(self, trainer, losses):
        if trainer.step % trainer.model.config.eval_every == 0:
            self.validate(trainer)
        if self.run is not None and trainer.step % self.config.sample_every == 0:
            self.write_sample(trainer, best=False)

    def on_end(self, trainer):
        if self.run is not None and trainer.status == "finished":
            self.write_sample(trainer, best=True)
            trainer.model.eval()
