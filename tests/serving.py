"""Helpers for the service's tests: a service home with an admin token, real worker processes
(``genforge worker``), FastAPI's TestClient over the real app, a real uvicorn server, a real
redis-server, and waiting for jobs. Nothing here mocks the queue or the database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

from conftest import ROOT, cli_env

from genforge.app.serve import db, server
from genforge.app.serve.api import create_app
from genforge.app.serve.auth import create_token
from genforge.app.serve.settings import load_settings

TERMINAL = ("finished", "failed", "cancelled", "timed_out")
# tiny models on the embedded demo data of each modality
IMAGE = {"model": "cgan", "steps": 30, "options": {"width": 8, "batch_size": 16}}
TABLE = {"model": "tvae", "steps": 30, "options": {"batch_size": 64}, "data_options": {"limit": 500}}
TEXT = {"model": "gpt", "steps": 30, "options": {"preset": "tiny", "block_size": 32, "batch_size": 8, "eval_every": 15}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A service home (SQLite database and queue inside), its admin token, and the workers it started."""

    def __init__(self, home: Path, queue: str | None = None, **settings):
        self.settings = load_settings(home, queue=queue, stale_after=settings.pop("stale_after", 4.0), **settings)
        self.admin = server.prepare(self.settings)
        self.workers: list[subprocess.Popen] = []
        self.servers: list[subprocess.Popen] = []

    # -- tokens and clients ------------------------------------------------------------------------------
    def token(self, name: str, role: str = "user", **limits) -> str:
        with db.session(self.settings.db_url) as s:
            return create_token(s, name, role, limits)[0]

    def client(self, recovery: bool = True) -> TestClient:
        return TestClient(create_app(self.settings, recovery=recovery))

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    # -- processes -----------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        return {**cli_env(), **self.settings.env()}

    def start_worker(self, jobs: int = 1) -> subprocess.Popen:
        log = open(self.settings.logs_dir / f"worker-{len(self.workers)}.log", "ab")
        p = subprocess.Popen([sys.executable, "-m", "genforge.app.cli", "worker", "--jobs", str(jobs)], cwd=ROOT,
                             env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(p)
        return p

    def start_server(self, port: int) -> subprocess.Popen:
        log = open(self.settings.logs_dir / f"server-{port}.log", "ab")
        code = ("import sys, uvicorn; from genforge.app.serve.api import create_app; "
                "from genforge.app.serve.settings import load_settings; from genforge.app.serve import logs; "
                f"logs.setup(); uvicorn.run(create_app(load_settings()), host='127.0.0.1', port={port}, log_config=None)")
        p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=self.env(), stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.servers.append(p)
        wait_http(f"http://127.0.0.1:{port}/healthz", p)
        return p

    def stop(self) -> None:
        for p in self.workers + self.servers:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in self.workers + self.servers:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    import httpx

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def wait_job(client: TestClient, token: str, job_id: str, states=TERMINAL, timeout: float = 120,
             until=None) -> dict:
    """Poll a job until its state is one of ``states`` (or ``until(job)`` holds); returns the job."""
    t0 = time.time()
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=Service.auth(token)).json()
        if (until(job) if until is not None else job["state"] in states):
            return job
        if time.time() - t0 > timeout:
            raise TimeoutError(f"job {job_id} still {job['state']} at step {job['step']} after {timeout} s: {job}")
        time.sleep(0.25)


def sse(client: TestClient, token: str, method: str, url: str, **kwargs) -> list[tuple[str, dict]]:
    """The events of a server-sent-events response, as (event, data) pairs."""
    events, kind = [], None
    with client.stream(method, url, headers=Service.auth(token), **kwargs) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    return events


class Redis:
    """A real redis-server on a free loopback port, in its own folder."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
