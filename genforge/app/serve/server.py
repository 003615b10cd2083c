"""``genforge serve``: migrate the database, make the first admin token (printed once), start job
workers beside the server (one by default) and run the app with uvicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from genforge.app.serve import db, logs
from genforge.app.serve.auth import create_token, has_admin
from genforge.app.serve.settings import Settings


def prepare(settings: Settings) -> str | None:
    """Bring the schema up to date; on a service without an admin, create one and return its token."""
    db.migrate(settings.db_url)
    with db.session(settings.db_url) as s:
        if has_admin(s):
            return None
        token, _ = create_token(s, "admin", "admin")
        return token


def start_workers(settings: Settings, count: int, jobs: int = 1) -> list[subprocess.Popen]:
    env = {**os.environ, **settings.env(), "OMP_NUM_THREADS": str(settings.threads)}
    cmd = [sys.executable, "-m", "genforge.app.cli", "worker", "--jobs", str(jobs)]
    return [subprocess.Popen(cmd, env=env) for _ in range(count)]


def stop_workers(procs: list[subprocess.Popen], timeout: float = 60.0) -> None:
    """SIGTERM: running jobs stop at a step boundary with a checkpoint and resume at the next start."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def run(settings: Settings, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    import uvicorn

    from genforge.app.serve.api import create_app

    logs.setup(log_level)
    procs = start_workers(settings, workers)
    try:
        uvicorn.run(create_app(settings), host=host, port=port, log_config=None, log_level=log_level,
                    timeout_graceful_shutdown=5)
    finally:
        stop_workers(procs)
