"""``genforge train --nproc N``: start N data-parallel training processes with PyTorch's elastic
launcher (the engine behind ``torchrun``), each running the same ``genforge train`` command.

The launcher picks the run directory first (so every process agrees on it), starts the workers
on this machine (rendezvous on a free local port), and turns a failed worker into one line that
says where the last complete checkpoint is and how to continue. Across machines, use ``torchrun``
itself (see the README): genforge sees it launched the processes and does not launch again.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Callable

from genforge.core.errors import ConfigError, GenforgeError


def check_nproc(nproc: int, warn: Callable[[str], None] | None = None, *, model: str | None = None,
                device: str | None = None) -> None:
    """Refuse a process count below 1, several processes for a model without a training loop, or more
    processes than GPUs on a GPU run; warn when it exceeds the CPU cores."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc must be at least 1 (the number of training processes), got {nproc}")
    if nproc == 1:
        return
    from genforge.core import registry
    from genforge.core.generator import NeuralGenerator
    from genforge.core.train.device import resolve_device

    if model is not None and not issubclass(registry.get(model), NeuralGenerator):
        raise ConfigError(f"'{model}' fits in one pass without training steps; --nproc applies to neural models "
                          f"(drop it)")
    resolved = resolve_device(device or "auto")
    if resolved.type == "cuda" and torch_cuda_count() < nproc:
        raise ConfigError(f"--nproc {nproc} on the GPU needs {nproc} GPUs and this machine has {torch_cuda_count()}; "
                          f"use --nproc {torch_cuda_count()} or --device cpu")
    if resolved.type == "mps":
        raise ConfigError("--nproc above 1 is not supported on mps; use --nproc 1 or --device cpu")
    cores = os.cpu_count() or 1
    if nproc > cores and warn is not None and resolved.type == "cpu":
        warn(f"--nproc {nproc} is more than this machine's {cores} CPU cores; the processes will share them "
             f"and train slower than --nproc {cores}")


def torch_cuda_count() -> int:
    import torch

    return torch.cuda.device_count()


def _worker_args(argv: list[str], out: Path | None) -> list[str]:
    """The command line each worker runs: the user's, without --nproc, with the chosen --out."""
    args, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        args.append(a)
    if out is not None and not any(a in ("--out", "-o") or a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return args


def relaunch(nproc: int, *, resume: Path | None, out: Path | None, root: Path, model: str, data: str | None) -> None:
    """Run this ``genforge train`` command in ``nproc`` processes and wait for them."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from genforge.app.workflows import default_run_name

    if resume is None and out is None:
        if data is None:
            raise ConfigError("--data is required: an image folder, a table file, or a built-in set ('digits', 'customers')")
        out = Path(root) / default_run_name(model, data)
    if out is not None and Path(out).exists() and any(Path(out).iterdir()):
        raise ConfigError(f"output folder '{out}' exists and is not empty; pick a new --out "
                          f"or continue that run with --resume {out}")
    run_path = resume if resume is not None else out
    threads = max(1, (os.cpu_count() or 1) // nproc)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.2,
                          start_method="spawn")
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    for name in ("torch.distributed.elastic", "torch.distributed.launcher"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # a failure is reported below, in one line
    try:
        elastic_launch(config, sys.executable)("-m", "genforge", *_worker_args(sys.argv[1:], out))
    except (KeyboardInterrupt, SignalException):
        raise GenforgeError(f"training was interrupted; the last complete checkpoint is kept in '{run_path}'; "
                            f"continue with 'genforge train --resume {run_path} --nproc {nproc}'") from None
    except ChildFailedError as e:
        codes = sorted({f.exitcode for f in e.failures.values()})
        first = e.failures.get(0)
        if first is not None and first.exitcode == 2:  # rank 0 printed its one-line 'error:' already
            raise SystemExit(2) from None
        if 2 in codes:  # only another process saw the error (they stay quiet so it is not said N times)
            raise GenforgeError(f"a training process other than the first stopped with an error; run the same "
                                f"command with --nproc 1 to see it (the last complete checkpoint, if any, is in "
                                f"'{run_path}')") from None
        codes = [c for c in codes if c != 3] or codes  # 3: stopped because another process did
        raise GenforgeError(f"a training process failed (exit code {', '.join(map(str, codes))}); the other processes "
                            f"were stopped and the last complete checkpoint is kept in '{run_path}'; continue with "
                            f"'genforge train --resume {run_path} --nproc {nproc}'") from None
