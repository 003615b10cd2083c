"""The run-directory format: one documented layout for every trained model.

::

    RUN/
      config.yaml              resolved config: model name + hyper-parameters, training budget, data spec
      model.safetensors        weights used for sampling (EMA generator where there is one)
      checkpoint.safetensors   full training state: all weights, optimizer state, EMA, RNG, step;
                               its non-tensor state is JSON in the safetensors metadata (no pickle)
      metrics.jsonl            one JSON object per logged step (losses, step, elapsed seconds)
      summary.json             status, steps, wall time, last losses (updated at each checkpoint)
      samples/                 sample grids: step_0001000.png ..., latest.png
      tensorboard/             TensorBoard event files

Every file is written atomically (see :mod:`genforge.core.io`); a killed run leaves the last
complete checkpoint in place.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genforge.core import io
from genforge.core.errors import RunDirError

CONFIG = "config.yaml"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
SAMPLES = "samples"
TENSORBOARD = "tensorboard"


class RunConfigFile(BaseModel):
    """The shape ``config.yaml`` must have before anything uses it (extra keys are kept)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    genforge: str | None = None
    model: str
    hyper: dict[str, Any] = Field(default_factory=dict, alias="model_config")
    train: dict[str, Any] | None = None
    data: dict[str, Any] | None = None


class WeightsMeta(BaseModel):
    """The JSON metadata of model.safetensors (the model's extras, e.g. a table's encoding, may follow)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    config: dict[str, Any] | None = None


def describe_validation(err: ValidationError) -> str:
    """The first problem of a pydantic error as ``'where' what`` (for one-line messages)."""
    return _problem(err)


def _problem(err: ValidationError) -> str:
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"]) or "the file"
    return f"'{where}' {e['msg'].lower()}"


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Atomically write ``tensors`` to a safetensors file with ``meta`` as JSON metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with io.atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata={"genforge": json.dumps(meta)})
        except SafetensorError as err:  # its I/O errors arrive as text: "... (os error 28)"
            found = re.search(r"os error (\d+)", str(err))
            if found is None:
                raise
            code = int(found.group(1))
            raise OSError(code, os.strerror(code), str(tmp)) from None


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors file written by :func:`save_tensors`: ``(tensors, meta)``."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("genforge", "{}"))
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RecursionError) as err:
        why = "its metadata is nested too deeply" if isinstance(err, RecursionError) else str(err).splitlines()[0]
        raise RunDirError(f"'{path}' is damaged or not a genforge weights file ({why}); retrain or restore it") from None
    if not isinstance(meta, dict):
        raise RunDirError(f"'{path}' has metadata genforge did not write (not a JSON object); retrain or restore it")
    if path.name == WEIGHTS:
        try:
            WeightsMeta.model_validate(meta)
        except ValidationError as err:
            raise RunDirError(f"'{path}' has damaged metadata ({_problem(err)}); retrain or restore it") from None
    return tensors, meta


class RunDir:
    """A run directory on disk; see the module docstring for the layout."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- creation / opening ---------------------------------------------------------
    @classmethod
    def new(cls, root: str | Path = "runs", name: str | None = None) -> "RunDir":
        """Create a fresh, empty run directory ``root/name`` (a unique name by default)."""
        root = Path(root)
        name = name or time.strftime("run-%Y%m%d-%H%M%S")
        path, i = root / name, 1
        while path.exists():
            i += 1
            path = root / f"{name}-{i}"
        with io.reporting_os_errors(path, "create run directory"):
            path.mkdir(parents=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """Open an existing run directory, or raise a one-line :class:`RunDirError`."""
        p = Path(path)
        if not p.exists():
            raise RunDirError(f"run directory '{p}' does not exist; list runs with 'genforge runs'")
        if p.is_file() or not (p / CONFIG).exists():
            raise RunDirError(
                f"'{p}' is not a genforge run directory (no {CONFIG}); pass a folder made by 'genforge train'"
            )
        return cls(p)

    def remove_temp_files(self) -> list[Path]:
        """Delete temporary files a killed writer left behind (``.NAME.*.tmp*``, see :mod:`genforge.core.io`)."""
        stale = [p for p in self.path.rglob(".*.tmp*") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # -- paths ------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    # -- config / summary / metrics -----------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> None:
        """Write ``config.yaml`` as given; jobs use :meth:`write_run_config`, the one shape."""
        io.write_yaml(self.config_path, config)

    def write_run_config(self, model, train=None, data: dict[str, Any] | None = None) -> None:
        """Write ``config.yaml`` in its one shape: genforge version, model name and hyper-parameters,
        training options (a TrainConfig or its dict) and the ``data`` section that reloads the data."""
        from genforge.core.version import __version__

        if hasattr(train, "model_dump"):
            train = train.model_dump(mode="json")
        self.write_config({"genforge": __version__, "model": model.name,
                           "model_config": model.config.model_dump(mode="json"), "train": train, "data": data})

    def read_config(self) -> dict[str, Any]:
        """Read ``config.yaml``; a damaged file raises RunDirError."""
        try:
            cfg = io.read_yaml(self.config_path)
        except Exception as err:  # yaml errors, decoding errors: their first line says where
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RunDirError(f"'{self.config_path}' cannot be read ({first}); restore it or retrain") from None
        if not isinstance(cfg, dict) or "model" not in cfg:
            raise RunDirError(f"'{self.config_path}' has no 'model' entry; it was not written by genforge")
        try:
            RunConfigFile.model_validate(cfg)
        except ValidationError as err:
            raise RunDirError(f"'{self.config_path}' is damaged: {_problem(err)}; restore it or retrain") from None
        return cfg

    def write_summary(self, summary: dict[str, Any]) -> None:
        io.write_json(self.path / SUMMARY, summary)

    def read_summary(self) -> dict[str, Any]:
        p = self.path / SUMMARY
        try:
            return io.read_json(p) if p.exists() else {}
        except (json.JSONDecodeError, OSError):
            return {}

    def append_metrics(self, record: dict[str, Any]) -> None:
        io.append_jsonl(self.metrics_path, record)

    def read_metrics(self) -> list[dict[str, Any]]:
        return io.read_jsonl(self.metrics_path)

    def truncate_metrics(self, step: int) -> None:
        """Drop metric lines after ``step`` (logged after the checkpoint a resume starts from)."""
        keep = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        io.write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))

    # -- weights ------------------------------------------------------------------------
    def save_weights(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        save_tensors(self.weights_path, tensors, meta)

    def load_weights(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        if not self.weights_path.exists():
            raise RunDirError(
                f"'{self.path}' has no {WEIGHTS} yet (training has not reached its first checkpoint); "
                f"resume it with 'genforge train --resume {self.path}'"
            )
        return load_tensors(self.weights_path)

    def save_checkpoint(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        save_tensors(self.checkpoint_path, tensors, meta)

    def checkpoint_step(self) -> int | None:
        """The step of the checkpoint on disk (read from its header only), or None if there is none usable."""
        try:
            with safe_open(str(self.checkpoint_path), framework="pt") as f:
                return int(json.loads((f.metadata() or {}).get("genforge", "{}"))["step"])
        except Exception:  # noqa: BLE001 - missing, damaged or foreign: there is no checkpoint to continue from
            return None

    def load_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        return load_tensors(self.checkpoint_path) if self.checkpoint_path.exists() else None


def list_runs(root: str | Path = "runs") -> list[dict[str, Any]]:
    """Describe every run directory under ``root`` (newest first): path, model, data, steps, time, losses."""
    root = Path(root)
    rows = []
    for cfg_path in sorted(root.glob(f"**/{CONFIG}")):
        run = RunDir(cfg_path.parent)
        try:
            cfg = run.read_config()
        except RunDirError:
            continue
        summary = run.read_summary()
        rows.append(
            {
                "path": str(run.path),
                "model": cfg.get("model"),
                "data": (cfg.get("data") or {}).get("path"),
                "steps": summary.get("step", 0),
                "seconds": summary.get("elapsed", 0.0),
                "status": summary.get("status", "new"),
                "losses": summary.get("losses", {}),
                "privacy": summary.get("privacy") if isinstance(summary.get("privacy"), dict) else None,
                "mtime": cfg_path.stat().st_mtime,
            }
        )
    rows.sort(key=lambda r: r["mtime"], reverse=True)
    return rows
