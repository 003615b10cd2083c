"""Jobs survive what happens to processes: a worker killed with SIGKILL mid-training leaves its job
``interrupted`` and the next worker resumes it from the last checkpoint without being asked; a worker
that dies while its job's process lives on (SIGKILL of the worker alone) gets a checkpoint of the step
it stopped at; cancel and the time limit stop at a step boundary; a restarted server keeps every job
and run, and a job queued before the restart runs after it."""

from __future__ import annotations

import os
import signal

import pytest

from serving import Service, wait_job

from genforge.core.runs import RunDir

LONG = {"model": "cgan", "steps": 100_000, "checkpoint_every": 20, "sample_every": 100_000,
        "options": {"width": 8, "batch_size": 16}}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("serve-recovery") / "home", stale_after=8.0)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def client(service):
    with service.client() as c:
        yield c


@pytest.fixture(scope="module")
def ana(service):
    return service.token("ana", max_jobs=10)


def run_dir(client, token, run_id) -> RunDir:
    from genforge.app.serve import db
    from genforge.app.serve.models import Run

    with db.session(client.app.state.settings.db_url) as s:
        return RunDir(s.get(Run, run_id).path)


def test_a_late_attempt_never_overwrites_the_one_that_took_over(service, ana):
    """A process given up as stale that finishes its last step only after another worker claimed the job
    again (seen on a loaded machine) writes nothing: the newer attempt keeps the job 'running'."""
    from genforge.app.serve import db, jobs, runner
    from genforge.app.serve.models import Job

    with service.client(recovery=False) as c:  # no recovery pass moves the job behind the test's back
        job_id = c.post("/v1/jobs", headers=Service.auth(ana), json={"model": "gaussian-copula"}).json()["job"]["id"]
        first = jobs.claim(service.settings, job_id, "w1")
        with db.session(service.settings.db_url) as s:
            jobs.set_state(s.get(Job, job_id), "interrupted")  # as recover() does when the heartbeat stops
        second = jobs.claim(service.settings, job_id, "w2")
        assert (first.attempts, second.attempts) == (1, 2)
        runner.record(service.settings, job_id, {"state": "interrupted"}, parent_alive=False, attempt=1)
        jobs._finish(service.settings, job_id, "shutdown", 0, attempt=1)
        job = c.get(f"/v1/jobs/{job_id}", headers=Service.auth(ana)).json()
        assert job["state"] == "running" and job["attempts"] == 2
        runner.record(service.settings, job_id, {"state": "interrupted"}, parent_alive=False, attempt=2)
        job = c.get(f"/v1/jobs/{job_id}", headers=Service.auth(ana)).json()
        assert job["state"] == "interrupted"  # the attempt that owns the job does write
        assert c.post(f"/v1/jobs/{job_id}/cancel", headers=Service.auth(ana)).status_code < 300


def test_a_killed_worker_job_resumes_from_its_checkpoint(client, service, ana):
    first = service.start_worker()
    run = client.post("/v1/jobs", headers=Service.auth(ana), json=LONG).json()
    job_id, folder = run["job"]["id"], run_dir(client, ana, run["id"])
    wait_job(client, ana, job_id, until=lambda j: (folder.checkpoint_step() or 0) >= 40, timeout=180)
    os.killpg(first.pid, signal.SIGKILL)  # the worker and the job's process, at once, mid-training
    first.wait()
    kept = folder.checkpoint_step()
    job = wait_job(client, ana, job_id, states=("interrupted",), timeout=60)
    assert job["state"] == "interrupted" and job["attempts"] == 1

    second = service.start_worker()  # nobody asks: it finds the job queued again
    job = wait_job(client, ana, job_id, until=lambda j: j["state"] == "running" and j["attempts"] == 2, timeout=120)
    seen = []
    wait_job(client, ana, job_id, until=lambda j: seen.append(j["step"]) or j["step"] >= kept + 30, timeout=180)
    after = seen[next(i for i, v in enumerate(seen) if v > kept):]
    assert min(after) >= kept  # once it moved on, from the checkpoint: never back towards step 0
    steps = [r["step"] for r in folder.read_metrics()]
    assert steps == sorted(set(steps)) and steps[-1] > kept  # no step logged twice: lines past the checkpoint were dropped

    # now SIGKILL the worker alone: its job's process sees its parent gone, SIGTERMs itself, stops at a step
    # boundary with a checkpoint of that step, and says 'interrupted' itself
    wait_job(client, ana, job_id, until=lambda j: (folder.checkpoint_step() or 0) > kept, timeout=180)
    os.kill(second.pid, signal.SIGKILL)
    second.wait()
    job = wait_job(client, ana, job_id, states=("interrupted",), timeout=60)
    wait_job(client, ana, job_id, until=lambda j: folder.read_summary().get("status") == "interrupted", timeout=60)
    stopped_at = folder.checkpoint_step()
    assert stopped_at == folder.read_summary()["step"] > kept  # a checkpoint of the step it stopped at

    service.start_worker()
    wait_job(client, ana, job_id, until=lambda j: j["state"] == "running" and j["attempts"] == 3
             and j["step"] > stopped_at, timeout=180)
    job = client.post(f"/v1/jobs/{job_id}/cancel", headers=Service.auth(ana)).json()
    assert job["state"] in ("cancelling", "cancelled")
    job = wait_job(client, ana, job_id, timeout=120)
    assert job["state"] == "cancelled"
    assert folder.checkpoint_step() == folder.read_summary()["step"]  # the checkpoint is of the step it stopped at
    states = [s for _, s in job["history"]]
    assert states[:3] == ["queued", "running", "interrupted"] and states.count("interrupted") == 2
    assert states[-2:] == ["cancelling", "cancelled"]
    detail = client.get(f"/v1/runs/{run['id']}", headers=Service.auth(ana)).json()
    assert detail["status"] == "cancelled"
    base = folder.checkpoint_step()
    again = client.post(f"/v1/runs/{run['id']}/resume", headers=Service.auth(ana), json={"steps": base + 20})
    assert again.status_code == 202
    job = wait_job(client, ana, again.json()["id"], timeout=180)
    assert job["state"] == "finished" and job["step"] == base + 20


def test_a_job_past_its_time_limit_stops_with_a_checkpoint(client, service, ana):
    if not any(p.poll() is None for p in service.workers):
        service.start_worker()
    run = client.post("/v1/jobs", headers=Service.auth(ana), json={**LONG, "time_limit_minutes": 0.1}).json()
    job = wait_job(client, ana, run["job"]["id"], timeout=120)
    assert job["state"] == "timed_out" and "time limit" in job["error"]
    folder = run_dir(client, ana, run["id"])
    assert folder.checkpoint_step() == folder.read_summary()["step"] > 0


def test_a_restarted_server_keeps_jobs_and_runs(service, ana, client):
    done = client.post("/v1/jobs", headers=Service.auth(ana), json={"model": "gaussian-copula"}).json()
    wait_job(client, ana, done["job"]["id"])
    for p in service.workers:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(60)
    waiting = client.post("/v1/jobs", headers=Service.auth(ana), json={"model": "gaussian-copula"}).json()
    before = {r["id"]: r["status"] for r in client.get("/v1/runs", headers=Service.auth(ana)).json()}
    jobs_before = {j["id"]: j["state"] for j in client.get("/v1/jobs", headers=Service.auth(ana)).json()}
    with service.client() as restarted:  # a new app on the same database and queue
        after = {r["id"]: r["status"] for r in restarted.get("/v1/runs", headers=Service.auth(ana)).json()}
        jobs_after = {j["id"]: j["state"] for j in restarted.get("/v1/jobs", headers=Service.auth(ana)).json()}
        assert after == before and jobs_after == jobs_before and jobs_after[waiting["job"]["id"]] == "queued"
        service.start_worker()
        job = wait_job(restarted, ana, waiting["job"]["id"], timeout=120)
        assert job["state"] == "finished"
        sample = restarted.post(f"/v1/runs/{done['id']}/samples", headers=Service.auth(ana),
                                json={"n": 5, "format": "csv"})
        assert sample.status_code == 200 and len(sample.text.splitlines()) == 6
