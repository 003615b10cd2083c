"""The child process of one job: it calls the workflows (``train_run``, ``resume_run``, ``evaluate_run``),
the same functions the CLI calls, and records the outcome in the job's row.

It is started from the worker's fork server (:func:`genforge.app.serve.jobs.execute` watches it), so torch and
the registry are already imported. SIGTERM (cancel, time limit, or the worker dying: the heartbeat thread sees it)
reaches the trainer, which stops at the end of the current step and writes a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from genforge.app import workflows
from genforge.app.serve import db
from genforge.app.serve.errors import public
from genforge.app.serve.jobs import INTERRUPTED_EXIT, set_state
from genforge.app.serve.models import Evaluation, Job, Run, new_id, now
from genforge.app.serve.settings import Settings
from genforge.core.errors import GenforgeError, RunDirError
from genforge.core.io import ensure_dir
from genforge.core.runs import CONFIG, RunDir

_stopping = False


def _interrupt(signum, frame):
    """SIGTERM/SIGINT before or after the trainer's own handling: stop once (a repeat is ignored, so the
    checkpoint and summary written on the way out are not cut short)."""
    global _stopping
    if not _stopping:
        _stopping = True
        raise KeyboardInterrupt


def _alive(parent: int) -> bool:
    """Whether the worker that started this job still runs (its sentinel, else its pid)."""
    import multiprocessing

    proc = multiprocessing.parent_process()
    if proc is not None and proc.pid == parent:
        return proc.is_alive()
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _heartbeat(url: str, job_id: str, stop: threading.Event, parent: int, attempt: int) -> None:
    """Every second: tell the database this job lives; and when the worker that forked it is gone
    (killed, its machine's service stopped), SIGTERM this process once, so that training stops at a step
    boundary with a checkpoint and the job is resumed by the next worker."""
    orphaned = False
    while not stop.wait(1.0):
        if not orphaned and not _alive(parent):
            orphaned = True
            os.kill(os.getpid(), signal.SIGTERM)
        try:
            with db.session(url) as s:
                job = s.get(Job, job_id)
                if job is not None and job.attempts == attempt and job.state in ("running", "cancelling"):
                    job.heartbeat_at = now()
        except Exception:  # noqa: BLE001 - a busy database: the next beat tries again
            pass


def main(job_id: str, settings_json: str, parent: int, attempt: int) -> None:
    """Run job ``job_id`` as its ``attempt``-th try (the worker's claim counted it), started by worker ``parent``."""
    signal.signal(signal.SIGTERM, _interrupt)  # before the trainer takes over: stop at once
    signal.signal(signal.SIGINT, _interrupt)
    settings = Settings.model_validate_json(settings_json)
    db.forget_engines()  # never share the parent's database connections
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    import torch

    torch.set_num_threads(settings.threads)
    log_path = settings.logs_dir / f"job-{job_id}.log"
    handler = logging.FileHandler(log_path)
    logging.getLogger().addHandler(handler)
    home = str(settings.home)
    with db.session(settings.db_url) as s:
        job = s.get(Job, job_id)
        kind, params, run_id = job.kind, dict(job.params or {}), job.run_id
        run_path = Path(s.get(Run, run_id).path)
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(settings.db_url, job_id, stop, parent, attempt), daemon=True).start()
    outcome: dict[str, Any] = {}
    try:
        if kind == "evaluate":
            outcome["result"] = {"evaluation": evaluate(settings, job_id, run_id, run_path, params.get("evaluate") or {},
                                                        log=logging.getLogger("genforge.job").info)}
        else:
            outcome["result"] = train(settings, kind, params, run_path)
            if params.get("evaluate_after") is not None:
                outcome["result"]["evaluation"] = evaluate(settings, job_id, run_id, run_path, params["evaluate_after"])
        outcome["state"] = "finished"
    except KeyboardInterrupt as err:
        outcome["state"] = "interrupted"
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"interrupted: {err}\n")
            traceback.print_exc(file=f)
    except GenforgeError as err:
        outcome.update(state="failed", error=public(str(err), home))
    except Exception as err:  # noqa: BLE001 - a bug: say it in one line, keep the traceback in the job log
        with open(log_path, "a", encoding="utf-8") as f:
            traceback.print_exc(file=f)
        outcome.update(state="failed", error=public(f"internal error ({type(err).__name__}: {err}); the traceback is "
                                                    f"in the job log logs/job-{job_id}.log", home))
    finally:
        stop.set()
    record(settings, job_id, outcome, parent_alive=_alive(parent), attempt=attempt)
    sys.stdout.flush()
    os._exit(INTERRUPTED_EXIT if outcome["state"] == "interrupted" else 0)  # no atexit handlers of the fork server


@contextlib.contextmanager
def run_lock(run_path: Path, wait_s: float = 120.0):
    """Hold an exclusive lock beside the run directory while training it: a job queued again while an earlier
    process of it still finishes its last step (a stalled heartbeat) waits for that process to exit, so two
    processes never write one run. The operating system drops the lock when its process dies, SIGKILL too."""
    import fcntl

    ensure_dir(run_path.parent)
    fd = os.open(run_path.parent / f".{run_path.name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    t0 = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > wait_s:
                    raise RunDirError(f"another process is still training run '{run_path.name}' after {wait_s:.0f} s; "
                                      f"resume it once that process has stopped") from None
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


def train(settings: Settings, kind: str, params: dict[str, Any], run_path: Path) -> dict[str, Any]:
    """Train a new run in ``run_path``, or continue it from its checkpoint (a resumed or recovered job)."""
    with run_lock(run_path):
        return _train(settings, kind, params, run_path)


def _train(settings: Settings, kind: str, params: dict[str, Any], run_path: Path) -> dict[str, Any]:
    budget = dict(params.get("train") or {})
    if kind == "train" and not (run_path / CONFIG).exists():
        if run_path.exists():  # a start that died before config.yaml: nothing worth keeping
            shutil.rmtree(run_path)
        train_opts = {**budget, "progress": False, "threads": settings.threads}
        run, summary = workflows.train_run(params["model"], params["data"], out=run_path,
                                           params=params.get("options") or {}, train=train_opts,
                                           **(params.get("data_options") or {}))
    else:
        run = RunDir(run_path)
        restart = run.checkpoint_step() is None
        steps = budget.get("steps") if kind == "resume" else None
        minutes = budget.get("minutes") if kind == "resume" else None
        run, summary = workflows.resume_run(run_path, steps=steps, minutes=minutes, progress=False,
                                            threads=settings.threads, restart=restart)
    return json.loads(json.dumps({k: summary.get(k) for k in ("step", "elapsed", "losses", "status")}, default=str))


def evaluate(settings: Settings, job_id: str, run_id: str, run_path: Path, opts: dict[str, Any], log=None) -> str:
    """Evaluate the run into ``RUN/evaluations/ID/`` and keep its numbers as one row of its history."""
    eval_id = new_id()
    folder = run_path / "evaluations" / eval_id
    result, _, _ = workflows.evaluate_run(run_path, n=opts.get("n"), seed=opts.get("seed", 0),
                                          target=opts.get("target"), real=opts.get("real"), out=folder, log=log)
    metrics = json.loads(json.dumps(result.get("metrics") or {}, default=float))
    with db.session(settings.db_url) as s:
        s.add(Evaluation(id=eval_id, run_id=run_id, job_id=job_id, metrics=metrics, title=str(result.get("title", ""))[:300],
                         folder=str(folder), created_at=now()))
    return eval_id


def record(settings: Settings, job_id: str, outcome: dict[str, Any], parent_alive: bool, attempt: int) -> None:
    """Write the job's outcome and the run's status (from its summary.json). An interrupted job whose worker
    is alive is left to the worker (it knows why it stopped the job); one whose worker died becomes
    ``interrupted`` and is queued again by the next :func:`~genforge.app.serve.jobs.recover`. A process whose
    ``attempt`` was given up as stale and taken again (it finished its last step late) writes nothing: the job
    and its run belong to the newer attempt."""
    with db.session(settings.db_url) as s:
        job = s.get(Job, job_id)
        if job.attempts != attempt:
            logging.getLogger("genforge.job").info("attempt %d ended after attempt %d took the job over", attempt,
                                                   job.attempts)
            return
        run = s.get(Run, job.run_id)
        summary = RunDir(run.path).read_summary()
        run.step, run.losses = int(summary.get("step", run.step) or 0), summary.get("losses") or run.losses
        job.step, job.losses = run.step, run.losses
        state = outcome["state"]
        if state == "interrupted" and job.cancel_requested:
            state = "cancelled"
        if state == "interrupted" and parent_alive:
            run.status = summary.get("status") or "interrupted"
            return
        set_state(job, state, error=outcome.get("error"), result=outcome.get("result") or {})
        if state == "interrupted":
            job.worker, job.heartbeat_at = None, None
        run.status = {"finished": summary.get("status") or "finished"}.get(state, state)
        run.updated_at = now()
