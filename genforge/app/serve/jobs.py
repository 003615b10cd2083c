"""Jobs through huey (an existing task queue: SQLite storage embedded by default, Redis by URL).

The queue carries one task, ``run_job(job_id)``: a plain string, nothing pickled of user data. A worker
thread claims the job row, starts a child process (:mod:`genforge.app.serve.runner`) that calls the
workflows, and watches it once a second: heartbeat, progress from the run directory, cancel requests and
the job's time limit. Stopping a child is SIGTERM, which the trainer holds until the current step ends
and answers with a checkpoint (``Trainer._stop_at_step_boundary``); a child whose worker dies sends
itself the same signal (its heartbeat thread sees its parent gone), and a worker that is stopped sends it
to its children and marks their jobs ``interrupted``, to resume at the next start.

Children come from a fork server (``multiprocessing``'s ``forkserver``), a single-threaded process started
with the worker that has torch and the registry imported: each job starts at once, and no child inherits a
lock that one of the worker's threads held at the moment of a fork (a plain fork from a worker thread can
hang the child in ``sqlite3.connect``).

A job whose worker was killed (SIGKILL, a lost machine) stops sending heartbeats; :func:`recover` marks it
``interrupted`` after ``stale_after`` seconds and queues it again, and the worker that takes it resumes the
run from its last checkpoint (``workflows.resume_run``). Every server and worker runs :func:`recover`
every few seconds, and an atomic update decides which one re-queues a job.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

from sqlalchemy import or_, select, update

from genforge.app.serve import db, progress
from genforge.app.serve.models import Job, Run, now
from genforge.app.serve.settings import Settings

log = logging.getLogger("genforge.serve.jobs")
PRELOAD = ["genforge.app.serve.runner", "genforge.images", "genforge.tables", "genforge.text"]
_ACTIVE: dict[str, tuple[multiprocessing.process.BaseProcess, int]] = {}  # job id -> (its process, attempt)
_ACTIVE_LOCK = threading.Lock()
SHUTDOWN = threading.Event()
INTERRUPTED_EXIT = 75  # a job's process stopped by a signal nobody here sent (Ctrl-C at a terminal, say)


def context():
    """The fork-server context the jobs start from (started once per worker, with the modules preloaded)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_fork_server() -> None:
    """Start the fork server now (from the worker's main thread, before any job)."""
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()


def stop_children(settings: Settings, grace: float = 60.0) -> None:
    """On worker shutdown: SIGTERM every running job (it stops at a step boundary with a checkpoint) and
    mark it ``interrupted``, so that the next worker resumes it."""
    SHUTDOWN.set()
    with _ACTIVE_LOCK:
        running = dict(_ACTIVE)
    for child, _ in running.values():
        if child.is_alive():
            os.kill(child.pid, signal.SIGTERM)
    for job_id, (child, attempt) in running.items():
        child.join(grace)
        if child.is_alive():
            child.kill()
            child.join()
        _finish(settings, job_id, "shutdown", child.exitcode, attempt)
REQUEUED = "(requeued)"
GRACE_S = 120.0  # after SIGTERM, how long a job may take to finish its step and checkpoint


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def set_state(job: Job, state: str, **fields) -> None:
    job.state = state
    job.history = [*(job.history or []), [now().isoformat(timespec="seconds"), state]]
    for k, v in fields.items():
        setattr(job, k, v)
    if state in ("finished", "failed", "cancelled", "timed_out"):
        job.finished_at = now()


class Queue:
    """The huey instance of these settings, with the service's one task registered on it."""

    def __init__(self, settings: Settings):
        from huey import RedisHuey, SqliteHuey

        self.settings = settings
        url = settings.queue_url
        if url.startswith(("redis://", "rediss://", "unix://")):
            self.huey = RedisHuey("genforge", url=url, results=False)
        else:
            self.huey = SqliteHuey("genforge", filename=url, results=False)
        self.task = self.huey.task(name="genforge.run_job")(lambda job_id: execute(settings, job_id))

    def enqueue(self, job_id: str) -> None:
        self.task(job_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def ping(self) -> None:
        self.huey.pending_count()


def claim(settings: Settings, job_id: str, me: str) -> Job | None:
    """Take a queued (or interrupted) job for this worker; None when another has it or it was cancelled."""
    with db.session(settings.db_url) as s:
        got = s.execute(update(Job).where(Job.id == job_id, Job.state.in_(("queued", "interrupted")))
                        .values(state="running", worker=me, heartbeat_at=now())).rowcount
        if not got:
            return None
        job = s.get(Job, job_id)
        set_state(job, "running", attempts=job.attempts + 1, started_at=job.started_at or now())
        run = s.get(Run, job.run_id)
        run.status, run.updated_at = ("evaluating" if job.kind == "evaluate" else "running"), now()
        return job


def _child(job_id: str, settings_json: str, parent: int, attempt: int) -> None:
    """A job's process (from the fork server, which has imported the runner, torch and the modalities)."""
    from genforge.app.serve import runner

    runner.main(job_id, settings_json, parent, attempt)


def execute(settings: Settings, job_id: str) -> None:
    """The huey task: run one job in a child process and watch it."""
    me = worker_name()
    job = claim(settings, job_id, me)
    if job is None:
        return
    deadline, attempt = _utc(job.started_at) + job.time_limit_s, job.attempts
    child = context().Process(target=_child, args=(job_id, settings.model_dump_json(), os.getpid(), attempt),
                              daemon=False)
    child.start()
    with _ACTIVE_LOCK:
        _ACTIVE[job_id] = (child, attempt)
    reason, signalled_at = None, None
    while child.is_alive():
        child.join(1.0)
        with db.session(settings.db_url) as s:
            row = s.get(Job, job_id)
            run = s.get(Run, row.run_id)
            row.heartbeat_at = now()
            if row.kind != "evaluate":
                p = progress.read(run.path, row.total_steps, (row.params.get("train") or {}).get("minutes"))
                row.step, row.losses = p["step"], p["losses"]
                row.steps_per_second, row.eta_s = p["steps_per_second"], p["eta_s"]
                run.step, run.losses, run.updated_at = p["step"], p["losses"], now()
            if reason is None and row.cancel_requested:
                reason = "cancelled"
            elif reason is None and time.time() > deadline:
                reason = "timed_out"
        if reason is not None and signalled_at is None and child.is_alive():
            signalled_at = time.time()
            os.kill(child.pid, signal.SIGTERM)  # the trainer stops at the end of this step, with a checkpoint
        elif signalled_at is not None and time.time() - signalled_at > GRACE_S and child.is_alive():
            child.kill()
    child.join()
    with _ACTIVE_LOCK:
        _ACTIVE.pop(job_id, None)
    _finish(settings, job_id, reason or ("shutdown" if SHUTDOWN.is_set() else None), child.exitcode, attempt)


def _utc(t: dt.datetime | None) -> float:
    return (t or now()).replace(tzinfo=dt.timezone.utc).timestamp()


def _finish(settings: Settings, job_id: str, reason: str | None, exitcode: int | None, attempt: int) -> None:
    """After the child: a time limit overrides what it wrote; a stopped worker's job is ``interrupted`` (queued
    again by the next :func:`recover`); a child that wrote nothing else failed. Nothing is written when the job
    has been taken again since (a later ``attempt`` owns it: this one was given up as stale)."""
    with db.session(settings.db_url) as s:
        job = s.get(Job, job_id)
        if job.attempts != attempt:
            log.info("job %s: attempt %d ended after attempt %d took over; left to that one", job_id, attempt,
                     job.attempts)
            return
        run = s.get(Run, job.run_id)
        if reason == "timed_out" and job.state in ("interrupted", "running", "cancelling"):
            hours = job.time_limit_s / 3600
            set_state(job, "timed_out", error=f"the job ran past its time limit of {hours:.2f} h and was stopped at a "
                                               f"step boundary with a checkpoint; resume the run to train longer")
            run.status = "timed_out"
        elif job.state in ("running", "cancelling"):
            if reason == "cancelled" or job.cancel_requested:
                set_state(job, "cancelled")
                run.status = "cancelled"
            elif reason == "shutdown" or exitcode == INTERRUPTED_EXIT:  # the next worker resumes the job
                set_state(job, "interrupted")
                run.status = "interrupted"
            else:
                why = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
                set_state(job, "failed", error=f"the job's process ended unexpectedly ({why}; out of memory?); see "
                                               f"the job log, then resume the run or start it again")
                run.status = "failed"
        job.heartbeat_at = None
        if job.worker != REQUEUED:
            job.worker = None
        run.updated_at = now()


def recover(settings: Settings, queue: Queue) -> list[str]:
    """Mark jobs whose heartbeat stopped as ``interrupted`` and queue them again (a cancelling one becomes
    ``cancelled``); returns the ids queued again."""
    cutoff = now() - dt.timedelta(seconds=settings.stale_after)
    queued = []
    with db.session(settings.db_url) as s:
        stale = s.scalars(select(Job).where(
            Job.state.in_(("running", "cancelling", "interrupted")),
            or_(Job.worker.is_(None), Job.worker != REQUEUED),
            or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff))).all()
        for job in stale:
            was = job.state  # (the update below changes the loaded row too)
            cancelling = was == "cancelling" or job.cancel_requested
            new_state = "cancelled" if cancelling else "interrupted"
            won = s.execute(update(Job).where(Job.id == job.id, Job.state == job.state,
                                              Job.heartbeat_at.is_(job.heartbeat_at) if job.heartbeat_at is None
                                              else Job.heartbeat_at == job.heartbeat_at)
                            .values(state=new_state, worker=None if cancelling else REQUEUED)).rowcount
            if not won:
                continue
            s.refresh(job)
            log.info("job %s was %s, last heartbeat %s: now %s", job.id, was, job.heartbeat_at, new_state)
            if was != new_state:  # an 'interrupted' the job wrote itself is only queued again
                set_state(job, new_state)
            if cancelling:
                job.finished_at = now()
                s.get(Run, job.run_id).status = "cancelled"
            else:
                s.get(Run, job.run_id).status = "interrupted"
                queued.append(job.id)
    for job_id in queued:
        log.info("job %s lost its worker; queued again to resume from its last checkpoint", job_id)
        queue.enqueue(job_id)
    return queued


class Recovery(threading.Thread):
    """Runs :func:`recover` every few seconds until stopped (in every server and worker)."""

    def __init__(self, settings: Settings, queue: Queue, every: float | None = None, on_tick=None):
        super().__init__(daemon=True, name="genforge-recovery")
        self.settings, self.queue, self.on_tick = settings, queue, on_tick
        self.every = every or max(1.0, min(10.0, settings.stale_after / 3))
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                recover(self.settings, self.queue)
                if self.on_tick is not None:
                    self.on_tick()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the loop
                log.exception("recovery pass failed")

    def stop(self) -> None:
        self.stopped.set()
