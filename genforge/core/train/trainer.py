"""The one training loop, used by every neural model.

The trainer owns budgets (steps and wall-clock minutes), seeding, batching from
in-memory tensors, checkpoints (atomic, pickle-free), resume, the divergence guard
and the callbacks (metrics.jsonl, TensorBoard, sample grids, progress bar).

A model plugs in through a small protocol (see :class:`genforge.core.generator.NeuralGenerator`):
``build()``, ``state_modules()``, ``optimizers``, ``train_step(x, y) -> losses`` and
``save_weights(run)``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import torch

from genforge.core.config import TrainConfig
from genforge.core.errors import TrainingDiverged
from genforge.core.runs import RunDir
from genforge.core.train import state as st
from genforge.core.train.callbacks import Callback, default_callbacks


class Trainer:
    """Train ``model`` on ``data`` (an object with ``x`` and optional ``y`` tensors).

    With a ``run`` directory it writes checkpoints, weights, metrics, grids and TensorBoard
    events there; without one it trains in memory only.
    """

    def __init__(self, model, data, config: TrainConfig, run: RunDir | None = None,
                 callbacks: Sequence[Callback] | None = None):
        self.model = model
        self.data = data
        self.config = config
        self.run = run
        self.callbacks = list(callbacks) if callbacks is not None else default_callbacks(config, run, model)
        self.step = 0
        self.elapsed = 0.0  # seconds of training, summed over resumes
        self.last_checkpoint_step = 0
        self.losses: dict[str, float] = {}
        self.status = "new"
        self.data_gen = torch.Generator()
        self._perm: torch.Tensor | None = None
        self._pos = 0

    # -- data -------------------------------------------------------------------------
    def _next_indices(self, batch_size: int) -> torch.Tensor:
        """Indices of the next batch: a fresh random permutation each epoch (like shuffle=True)."""
        n = len(self.data.x)
        if self._perm is None or self._pos + batch_size > n:
            self._perm = torch.randperm(n, generator=self.data_gen)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + batch_size]
        self._pos += batch_size
        return idx

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write checkpoint.safetensors (full state) and model.safetensors (sampling weights)."""
        if self.run is None:
            return
        tensors = st.modules_to_tensors(self.model.state_modules())
        opt_meta = {}
        for name, opt in self.model.optimizers.items():
            t, m = st.optimizer_to_tensors(name, opt)
            tensors.update(t)
            opt_meta[name] = m
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.data"] = self.data_gen.get_state()
        if self._perm is not None:
            tensors["data.perm"] = self._perm
        meta = {"step": self.step, "elapsed": self.elapsed, "pos": self._pos, "optimizers": opt_meta,
                "model": self.model.name}
        self.run.save_checkpoint(tensors, meta)
        self.model.save_weights(self.run)
        self.last_checkpoint_step = self.step
        self.write_summary()

    def load_checkpoint(self) -> bool:
        """Restore the full training state from the run's checkpoint; False if there is none."""
        loaded = self.run.load_checkpoint() if self.run is not None else None
        if loaded is None:
            return False
        tensors, meta = loaded
        st.tensors_to_modules(tensors, self.model.state_modules())
        for name, opt in self.model.optimizers.items():
            st.tensors_to_optimizer(name, opt, tensors, meta["optimizers"][name])
        torch.set_rng_state(tensors["rng.torch"])
        self.data_gen.set_state(tensors["rng.data"])
        self._perm = tensors.get("data.perm")
        self._pos = int(meta["pos"])
        self.step = self.last_checkpoint_step = int(meta["step"])
        self.elapsed = float(meta["elapsed"])
        self.run.truncate_metrics(self.step)
        return True

    def write_summary(self) -> None:
        if self.run is not None:
            self.run.write_summary({"model": self.model.name, "status": self.status, "step": self.step,
                                    "elapsed": round(self.elapsed, 2), "losses": self.losses,
                                    "checkpoint_step": self.last_checkpoint_step})

    # -- the loop -------------------------------------------------------------------------
    def _budget_left(self, t0: float, base_elapsed: float) -> bool:
        cfg = self.config
        if cfg.steps is not None and self.step >= cfg.steps:
            return False
        if cfg.minutes is not None and base_elapsed + (time.perf_counter() - t0) >= cfg.minutes * 60:
            return False
        return True

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until the budget is spent; returns the final summary dict.

        ``resume=True`` continues from the run directory's checkpoint exactly (weights,
        optimizer, EMA, RNG, data order, step). Raises :class:`TrainingDiverged` on NaN/inf
        losses, keeping the last good checkpoint.
        """
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.data_gen.manual_seed(cfg.seed)
        self.model.build()  # no-op when the networks already exist
        self.model.configure_optimizers()
        if resume:
            self.load_checkpoint()  # overwrites weights, optimizers, RNG and step
        self.model.train()
        has_y = getattr(self.data, "y", None) is not None and self.model.conditional
        batch_size = min(self.model.config.batch_size, len(self.data.x))
        sampler = getattr(self.model, "next_batch", None)
        self.status = "running"
        for cb in self.callbacks:
            cb.on_start(self)
        sums: dict[str, float] = {}
        count = 0
        t0 = time.perf_counter()
        base_elapsed = self.elapsed
        try:
            while self._budget_left(t0, base_elapsed):
                if sampler is not None:  # models that choose their own rows (CTGAN's training-by-sampling)
                    x, y = sampler(self.data, batch_size, self.data_gen)
                else:
                    idx = self._next_indices(batch_size)
                    x = self.data.x[idx]
                    y = self.data.y[idx] if has_y else None
                out = self.model.train_step(x, y)
                self.step += 1
                vals = {k: float(v) for k, v in out.items()}
                bad = [k for k, v in vals.items() if not math.isfinite(v)]
                if bad:
                    self._diverged(bad[0], vals[bad[0]])
                for k, v in vals.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                self.elapsed = base_elapsed + time.perf_counter() - t0
                for cb in self.callbacks:
                    cb.on_step(self, vals)
                if self.step % cfg.log_every == 0:
                    self.losses = {k: s / count for k, s in sums.items()}
                    sums, count = {}, 0
                    for cb in self.callbacks:
                        cb.on_log(self, self.losses)
                if self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            self.status = "interrupted"
            self.elapsed = base_elapsed + time.perf_counter() - t0
            self.save_checkpoint()
            for cb in self.callbacks:
                cb.on_end(self)
            raise
        if count:
            self.losses = {k: s / count for k, s in sums.items()}
        self.status = "finished"
        self.model.eval()
        self.save_checkpoint()
        for cb in self.callbacks:
            cb.on_end(self)
        self.write_summary()
        return {"step": self.step, "elapsed": self.elapsed, "losses": self.losses, "status": self.status}

    def _diverged(self, key: str, value: float) -> None:
        self.status = "diverged"
        for cb in self.callbacks:
            cb.on_end(self)
        where = (f"the last good checkpoint (step {self.last_checkpoint_step}) is kept in '{self.run.path}'"
                 if self.run is not None and self.last_checkpoint_step else "no checkpoint was written")
        if self.run is not None:
            s = self.run.read_summary()
            s.update(status="diverged", diverged_at=self.step)
            self.run.write_summary(s)
        raise TrainingDiverged(
            f"training diverged: loss '{key}' became {value} at step {self.step}; {where}; "
            f"train again with a lower learning rate (e.g. --lr 1e-4) or another --loss"
        )
