"""Fine-tuning a language model from a trained run (``genforge train --init RUN [--lora rank=R]``).

The new model keeps its base's network and tokenizer and records the base run and the SHA-256 of its
``model.safetensors`` in its config (``init_run``, ``init_sha256``); its networks start from those
weights (checked against the checksum), and with LoRA (``lora_rank``) only adapters train and are saved,
so a LoRA run loads over its base and refuses one that has changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from genforge.core.errors import ConfigError, RunDirError
from genforge.core.runs import RunDir
from genforge.text.models.lora import parse_lora


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FineTuning:
    """What :class:`~genforge.text.models.base.TextGenerator` does to start from a trained run."""

    @classmethod
    def init_from(cls, run: RunDir, *, lora=None, params=None):
        """A new model of this family that starts from the trained model in ``run`` (see the module docstring)."""
        from genforge.core.registry import load

        base = load(run.path)  # a base whose own base changed is refused here
        base_cfg = base.config.model_dump(mode="json")
        if base_cfg.get("lora_rank"):
            raise ConfigError(f"'{run.path}' is a LoRA run; fine-tune its base run ('{base_cfg['init_run']}') instead")
        lora = parse_lora(lora)
        if lora and not cls.lora_targets:
            raise ConfigError(f"--lora adapts attention and MLP projections, and '{cls.name}' has none; fine-tune it "
                              f"fully with --init RUN alone")
        params = dict(params or {})
        kept = [k for k in params if k in cls.arch_keys and params[k] != base_cfg.get(k)]
        if kept:
            raise ConfigError(f"--set {', '.join(kept)} cannot change when fine-tuning (the base's network is kept); "
                              f"drop {'it' if len(kept) == 1 else 'them'}")
        model = cls(**{**base_cfg, **params, "init_run": str(run.path.resolve()),
                       "init_sha256": file_sha256(run.weights_path), "lora_rank": lora["rank"] if lora else 0,
                       "lora_alpha": lora["alpha"] if lora else None})
        model.tokenizer, model.start_id = base.tokenizer, base.start_id
        return model

    def base_tensors(self) -> dict[str, torch.Tensor]:
        """The weights of the run this one starts from, checked against the recorded SHA-256."""
        run = RunDir(self.config.init_run)
        if not run.weights_path.is_file():
            raise RunDirError(f"the base run '{run.path}' of this fine-tuned model has no {run.weights_path.name} any "
                              f"more; restore it, or fine-tune again from another run")
        if file_sha256(run.weights_path) != self.config.init_sha256:
            raise RunDirError(f"the base run '{run.path}' has changed since this model was fine-tuned from it (its "
                              f"{run.weights_path.name} checksum differs); restore the base weights, or fine-tune "
                              f"again with --init {run.path}")
        return run.load_weights()[0]
