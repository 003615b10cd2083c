"""The one training loop, used by every neural model of every modality.

The trainer owns budgets (steps and wall-clock minutes), seeding, batches (from the model's
:class:`~genforge.core.train.batches.BatchSource`), the device and precision, data-parallel
processes, checkpoints (atomic, pickle-free), exact resume, the divergence guard and the callbacks
(metrics.jsonl, TensorBoard, the modality's preview, the progress bar). A model plugs in through
:class:`~genforge.core.train.protocol.Trainable`.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from typing import Any, Sequence

import torch

from genforge.core.config import TrainConfig
from genforge.core.errors import OutputError, RunDirError, TrainingDiverged
from genforge.core.runs import RunDir
from genforge.core.train import distributed as dist
from genforge.core.train import state as st
from genforge.core.train.callbacks import Callback, default_callbacks
from genforge.core.train.device import autocast, check_precision, resolve_device
from genforge.core.train.protocol import Trainable


def batch_sizes(model: Trainable, examples: int, world: int) -> tuple[int, int]:
    """(per-process, global) batch size of ``model`` on ``examples`` examples over ``world`` processes: its
    ``train_batch_size`` capped by the data, rounded down to its ``batch_multiple``."""
    local = max(1, min(int(model.train_batch_size), examples // world))
    multiple = max(1, int(model.batch_multiple))
    local = max(multiple, local - local % multiple)
    return local, local * world


class Trainer:
    """Train ``model`` (a :class:`Trainable`) on ``data`` under ``config``.

    With a ``run`` directory it writes checkpoints, weights, metrics, previews and TensorBoard
    events there (rank 0 only, when several processes train); without one it trains in memory.
    """

    def __init__(self, model: Trainable, data, config: TrainConfig, run: RunDir | None = None,
                 callbacks: Sequence[Callback] | None = None):
        missing = [m for m in ("build", "to", "configure_optimizers", "state_modules", "batch_source", "train_step",
                               "save_weights") if not callable(getattr(model, m, None))]
        if missing:
            raise TypeError(f"{type(model).__name__} is not trainable: it lacks {', '.join(missing)} "
                            f"(see genforge.core.train.protocol.Trainable)")
        self.model = model
        self.source = model.batch_source(data)
        self.config = config
        self.run = run
        self.writer = dist.is_writer()
        if callbacks is None:
            callbacks = default_callbacks(config, run, model) if self.writer else []
        self.callbacks = list(callbacks)
        self.step = 0
        self.elapsed = 0.0  # seconds of training, summed over resumes
        self.last_checkpoint_step = 0
        self.losses: dict[str, float] = {}
        self.status = "new"
        self.data_gen = torch.Generator()
        self.device = torch.device("cpu")
        self.private = None  # DP-SGD (core.train.private), when config.dp is set
        self._stop_requested = False  # Ctrl-C / SIGTERM seen: stop at the end of this step
        self._forced = False          # a second one: stop at once, keep the last checkpoint

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write checkpoint.safetensors (full state) and model.safetensors (sampling weights); rank 0 only."""
        if self.run is None or not self.writer:
            return
        tensors = st.modules_to_tensors(self.model.state_modules())
        opt_meta = {}
        for name, opt in self.model.optimizers.items():
            t, m = st.optimizer_to_tensors(name, opt)
            tensors.update(t)
            opt_meta[name] = m
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["rng.data"] = self.data_gen.get_state()
        src_tensors, src_meta = self.source.state()
        tensors.update(src_tensors)
        meta = {"step": self.step, "elapsed": self.elapsed, **src_meta, "optimizers": opt_meta,
                "model": self.model.name}
        if self.private is not None:
            meta["private_steps"] = self.private.steps
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
        try:
            st.tensors_to_modules(tensors, self.model.state_modules())
            for name, opt in self.model.optimizers.items():
                st.tensors_to_optimizer(name, opt, tensors, meta["optimizers"][name])
        except (RuntimeError, KeyError, TypeError, ValueError) as err:  # a checkpoint of another model
            raise RunDirError(f"'{self.run.checkpoint_path}' does not match the run's config.yaml "
                              f"({str(err).strip().splitlines()[0][:200]}); restore them from the same run, or "
                              f"train again with --resume {self.run.path} --restart") from None
        torch.set_rng_state(tensors["rng.torch"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.data_gen.set_state(tensors["rng.data"])
        self.source.load_state(tensors, meta)
        self.step = self.last_checkpoint_step = int(meta["step"])
        if self.private is not None:
            self.private.steps = int(meta.get("private_steps", self.step))
        self.elapsed = float(meta["elapsed"])
        if self.writer:
            self.run.truncate_metrics(self.step)
        return True

    def report_metrics(self, values: dict[str, float]) -> None:
        """Log numbers a callback measured at this step (a validation loss) to metrics.jsonl and
        TensorBoard, through every callback's ``on_metrics``."""
        for cb in self.callbacks:
            cb.on_metrics(self, values)

    def write_summary(self) -> None:
        if self.run is not None and self.writer:
            self.run.write_summary({"model": self.model.name, "status": self.status, "step": self.step,
                                    "elapsed": round(self.elapsed, 2), "losses": self.losses,
                                    "checkpoint_step": self.last_checkpoint_step, "device": self.device.type,
                                    "precision": self.config.precision, "processes": dist.world(),
                                    **({"privacy": self.private.summary()} if self.private is not None else {})})

    # -- set-up ---------------------------------------------------------------------------
    def _setup(self, resume: bool) -> None:
        """Threads, device, processes, seeds, networks and optimizers; then the checkpoint on resume."""
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        elif dist.launched():
            torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        device = resolve_device(cfg.device)
        check_precision(cfg.precision, device)
        self.device = dist.setup(device)
        torch.manual_seed(cfg.seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(cfg.seed)
        self.data_gen.manual_seed(cfg.seed)
        self.model.build()  # no-op when the networks already exist
        self.model.to(self.device)
        self.model.configure_optimizers()
        if cfg.dp:
            from genforge.core.train.private import PrivateTraining

            self.private = PrivateTraining(self.model, cfg.dp, self._batch_sizes()[1])
        self._hooks = dist.average_gradients_before_step(self.model.optimizers.values())
        if resume:
            self.load_checkpoint()  # overwrites weights, optimizers, RNG, data position and step
        dist.broadcast_modules(self.model.state_modules())

    def _batch_sizes(self) -> tuple[int, int]:
        """(per-process, global) batch size, capped by the data."""
        return batch_sizes(self.model, len(self.source), dist.world())

    def _next_batch(self, global_batch: int):
        x, y = self.source.next(global_batch, self.data_gen)
        x, y = dist.shard(x), dist.shard(y)
        x = x.to(self.device, non_blocking=True)
        return x, (y.to(self.device, non_blocking=True) if y is not None else None)

    def _budget_left(self, t0: float, base_elapsed: float) -> bool:
        cfg = self.config
        if cfg.steps is not None and self.step >= cfg.steps:
            return False
        if self.private is not None and self.private.exhausted():
            return False  # the privacy budget is spent
        if cfg.minutes is not None:
            return dist.agree(base_elapsed + (time.perf_counter() - t0) < cfg.minutes * 60)
        return True

    # -- the loop -------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until the budget is spent; returns the final summary dict.

        ``resume=True`` continues from the run directory's checkpoint exactly (weights,
        optimizer, EMA, RNG, data order, step). Raises :class:`TrainingDiverged` on NaN/inf
        losses, keeping the last good checkpoint.
        """
        self._setup(resume)
        try:
            return self._fit()
        except OutputError as err:  # a full disk, say: say what is safe on disk and how to go on
            raise OutputError(f"{err}; {self._after_write_failure()}") from None

    def _fit(self) -> dict[str, Any]:
        try:
            with self._stop_at_step_boundary():
                self._loop()
        except KeyboardInterrupt:
            self.status = "interrupted"
            if not self._forced:  # the state is that of a whole step: the checkpoint is exact
                self.save_checkpoint()
            self._end()
            self.write_summary()
            where = f"; continue with 'genforge train --resume {self.run.path}'" if self.run is not None else ""
            raise KeyboardInterrupt(f"training interrupted at step {self.last_checkpoint_step if self._forced else self.step}"
                                    f"{' (the last complete checkpoint)' if self._forced else ', checkpoint saved'}"
                                    f"{where}") from None
        except RuntimeError as err:
            if dist.peer_failure(err):  # a collective failed: another process is gone
                self._end()
                raise dist.PeerLost(f"another training process stopped ({str(err).splitlines()[0][:200]})") from None
            raise
        finally:
            for h in getattr(self, "_hooks", []):
                h.remove()
            if self.private is not None:
                self.private.close()
        self.status = "finished"
        self.model.eval()
        self.save_checkpoint()
        self._end()
        self.write_summary()
        return {"step": self.step, "elapsed": self.elapsed, "losses": self.losses, "status": self.status}

    def _loop(self) -> None:
        cfg = self.config
        _, global_batch = self._batch_sizes()
        self.model.train()
        self.status = "running"
        for cb in self.callbacks:
            cb.on_start(self)
        sums: dict[str, float] = {}
        count = 0
        t0 = time.perf_counter()
        base_elapsed = self.elapsed
        try:
            while self._budget_left(t0, base_elapsed):
                x, y = self._next_batch(global_batch)
                with autocast(self.device, cfg.precision):
                    out = self.model.train_step(x, y)
                self.step += 1
                vals = {k: float(v) for k, v in out.items()}
                bad = [k for k, v in vals.items() if not math.isfinite(v)]
                if dist.anywhere(bool(bad)):  # every process stops together (one diverging is enough)
                    key = bad[0] if bad else next(iter(vals))
                    self._diverged(key, vals[key] if bad else float("nan"))
                for k, v in vals.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                self.elapsed = base_elapsed + time.perf_counter() - t0
                for cb in self.callbacks:
                    cb.on_step(self, vals)
                if self.step % cfg.log_every == 0:
                    self.losses = dist.mean_over_processes({k: s / count for k, s in sums.items()})
                    sums, count = {}, 0
                    for cb in self.callbacks:
                        cb.on_log(self, self.losses)
                if self.step % cfg.checkpoint_every == 0:
                    self.save_checkpoint()
                if dist.anywhere(self._stop_requested):  # every process stops after the same step
                    raise KeyboardInterrupt
        finally:
            self.elapsed = base_elapsed + time.perf_counter() - t0
        if count:
            self.losses = dist.mean_over_processes({k: s / count for k, s in sums.items()})

    @contextlib.contextmanager
    def _stop_at_step_boundary(self):
        """Hold Ctrl-C (SIGINT) and SIGTERM until the current step is done, so the checkpoint written
        on the way out is of a whole step and a resume is exact; a second signal stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            if self._stop_requested:
                self._forced = True
                raise KeyboardInterrupt
            self._stop_requested = True

        old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)

    def _end(self) -> None:
        for cb in self.callbacks:
            cb.on_end(self)

    def _after_write_failure(self) -> str:
        """After a failed write: stop the callbacks, mark the run failed where possible, and say what the
        run directory holds now (the last complete checkpoint, or none) and how to continue."""
        self.status = "failed"
        for cb in self.callbacks:
            try:
                cb.on_end(self)
            except Exception:  # noqa: BLE001 - the disk that failed may fail them too; the message matters more
                pass
        if self.run is None:
            return f"training stopped at step {self.step}"
        try:
            self.write_summary()
        except OutputError:
            pass
        kept = self.run.checkpoint_step()
        if kept is None:
            return (f"training stopped at step {self.step} before any checkpoint was complete; free space, then "
                    f"train again with 'genforge train --resume {self.run.path} --restart'")
        return (f"training stopped at step {self.step}; the last complete checkpoint (step {kept}) is kept in "
                f"'{self.run.path}'; free space, then continue with 'genforge train --resume {self.run.path}'")

    def _diverged(self, key: str, value: float) -> None:
        self.status = "diverged"
        self._end()
        where = (f"the last good checkpoint (step {self.last_checkpoint_step}) is kept in '{self.run.path}'"
                 if self.run is not None and self.last_checkpoint_step else "no checkpoint was written")
        if self.run is not None and self.writer:
            s = self.run.read_summary()
            s.update(status="diverged", diverged_at=self.step)
            self.run.write_summary(s)
        raise TrainingDiverged(
            f"training diverged: loss '{key}' became {value} at step {self.step}; {where}; "
            f"train again with a lower learning rate (e.g. --lr 1e-4) or another --loss"
        )
