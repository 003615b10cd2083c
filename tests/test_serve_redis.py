"""The several-machine form: the job queue on a real redis-server (Debian's package, started here on a free
loopback port), a worker taking jobs from it, and /readyz saying when the broker is gone."""

from __future__ import annotations

import shutil

import pytest

from serving import IMAGE, Redis, Service, wait_job

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is not installed (.ci/run installs it)")


def test_jobs_go_through_redis(tmp_path):
    redis = Redis(tmp_path)
    svc = Service(tmp_path / "home", queue=redis.url)
    try:
        assert svc.settings.queue_url == redis.url
        svc.start_worker()
        ana = svc.token("ana")
        with svc.client() as client:
            assert client.get("/readyz").json()["checks"] == {"database": "ok", "queue": "ok"}
            run = client.post("/v1/jobs", headers=Service.auth(ana), json={**IMAGE, "steps": 10}).json()
            job = wait_job(client, ana, run["job"]["id"], timeout=120)
            assert job["state"] == "finished" and job["step"] == 10
            assert not (svc.settings.home / "queue.db").exists()  # nothing went through the SQLite queue
            redis.stop()
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["queue"].startswith("unreachable")
            refused = client.post("/v1/jobs", headers=Service.auth(ana), json={**IMAGE, "steps": 20})
            assert refused.status_code == 503 and "queue is unreachable" in refused.json()["error"]["message"]
    finally:
        svc.stop()
        if redis.proc.poll() is None:
            redis.stop()
