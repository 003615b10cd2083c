"""``genforge worker``: a huey consumer that runs the service's jobs, plus the recovery loop that queues
again the jobs of workers that died. The worker itself never imports torch: its fork server imports torch
and every modality once, so each job's process starts at once. SIGTERM stops the worker: its running jobs stop at a step
boundary with a checkpoint and are resumed by the next worker. Ctrl-C at its terminal reaches the jobs too
(one process group) and does the same; ``kill -INT`` of the worker alone lets running jobs finish (huey's
graceful stop)."""

from __future__ import annotations

import logging
import os
import socket

from genforge.app.serve import db, logs
from genforge.app.serve.jobs import Queue, Recovery, recover, start_fork_server, stop_children
from genforge.app.serve.models import Worker, now
from genforge.app.serve.settings import Settings

log = logging.getLogger("genforge.serve.worker")


def run_worker(settings: Settings, jobs: int = 1) -> None:
    """Run jobs until SIGINT (finish the running jobs) or SIGTERM (stop them at a step boundary: they are
    ``interrupted`` and resume when a worker is back)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    logs.setup()
    start_fork_server()  # before any thread; it imports torch and every modality, once, for all jobs
    db.migrate(settings.db_url)
    queue = Queue(settings)
    me = f"{socket.gethostname()}:{os.getpid()}"

    def seen() -> None:
        with db.session(settings.db_url) as s:
            row = s.get(Worker, me) or Worker(id=me, started_at=now())
            row.seen_at = now()
            s.add(row)

    seen()
    recover(settings, queue)
    loop = Recovery(settings, queue, on_tick=seen)
    loop.start()
    log.info("worker %s takes jobs from %s (%d at a time)", me, _shown_queue(settings.queue_url), jobs)
    consumer = queue.huey.create_consumer(workers=jobs, worker_type="thread", periodic=False, initial_delay=0.1,
                                          backoff=1.15, max_delay=1.0)
    try:
        consumer.run()
    finally:
        loop.stop()
        stop_children(settings)
        with db.session(settings.db_url) as s:
            row = s.get(Worker, me)
            if row is not None:
                s.delete(row)


def _shown_queue(url: str) -> str:
    return db.shown(url) if "://" in url else f"sqlite file {url}"
