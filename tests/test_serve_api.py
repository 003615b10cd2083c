"""The service end to end, with FastAPI's TestClient over the real app, a real SQLite file and a real
worker process (``genforge worker``; its jobs fork children that call the workflows): train on each
modality's embedded demo data with a tiny budget, follow progress over SSE, generate, evaluate, keep the
evaluation history, retrain on a new dataset version, download the run, and watch /metrics."""

from __future__ import annotations

import io
import json
import logging
import tarfile
import zipfile

import numpy as np
import pandas as pd
import pytest

from serving import IMAGE, TABLE, TEXT, Service, sse, wait_job

from genforge.core import registry


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("serve-api") / "home")
    svc.start_worker(jobs=2)
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def client(service):
    with service.client() as c:
        yield c


@pytest.fixture(scope="module")
def ana(service):
    return service.token("ana", max_jobs=8)


@pytest.fixture(scope="module")
def runs(client, ana):
    """One run per modality on its built-in demo data, trained at once by the worker."""
    started = {}
    for kind, req in (("image", IMAGE), ("table", TABLE), ("text", TEXT)):
        resp = client.post("/v1/jobs", headers=Service.auth(ana), json=req)
        assert resp.status_code == 202, resp.text
        started[kind] = resp.json()
    return started


def test_models_and_modalities_come_from_the_registry(client, ana):
    models = client.get("/v1/models", headers=Service.auth(ana)).json()
    assert {m["name"] for m in models} == {n for n, _ in registry.available()}
    gpt = next(m for m in models if m["name"] == "gpt")
    assert gpt["modality"] == "text" and "preset" in gpt["options"]["properties"]
    mods = {m["name"]: m for m in client.get("/v1/modalities", headers=Service.auth(ana)).json()}
    assert set(mods) == {m.name for m in registry.modalities()}
    assert mods["image"]["formats"] == ["png", "npz"] and mods["text"]["streams"]
    assert "prompt_file" not in mods["text"]["sample_options"]  # a server path: never from a client


def test_image_run_trains_follows_generates_and_evaluates(client, ana, runs):
    run = runs["image"]
    events = sse(client, ana, "GET", f"/v1/jobs/{run['job']['id']}/events")
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and "progress" in kinds
    assert events[-1][1]["state"] == "finished", events[-1]
    assert max(d["step"] for _, d in events) == 30
    detail = client.get(f"/v1/runs/{run['id']}", headers=Service.auth(ana)).json()
    assert detail["status"] == "finished" and detail["step"] == 30
    assert detail["choices"]["label"] == [str(i) for i in range(10)] and detail["formats"] == ["png", "npz"]
    assert "path" not in json.dumps(detail)  # clients never see server paths

    png = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                      json={"n": 20, "format": "png", "seed": 1, "options": {"label": "7"}})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    again = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                        json={"n": 20, "format": "png", "seed": 1, "options": {"label": "7"}})
    assert again.content == png.content  # a seed gives the same samples
    npz = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana), json={"n": 12, "format": "npz"})
    arrays = np.load(io.BytesIO(npz.content))
    assert arrays["x"].shape[0] == 12 and arrays["x"].dtype == np.uint8
    bad = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                      json={"n": 4, "format": "csv"})
    assert bad.status_code == 422 and "png, npz" in bad.json()["error"]["message"]
    wrong = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                        json={"n": 4, "format": "png", "options": {"where": "a=b"}})
    assert wrong.status_code == 422 and "--where does not apply" in wrong.json()["error"]["message"]

    thumb = client.get(f"/v1/runs/{run['id']}/thumbnail", headers=Service.auth(ana))
    assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
    job = client.post(f"/v1/runs/{run['id']}/evaluate", headers=Service.auth(ana), json={"n": 300}).json()
    job = wait_job(client, ana, job["id"], timeout=240)
    assert job["state"] == "finished", job
    evals = client.get(f"/v1/runs/{run['id']}/evaluations", headers=Service.auth(ana)).json()
    assert len(evals) == 1 and evals[0]["metrics"]
    report = client.get(f"/v1/runs/{run['id']}/report", headers=Service.auth(ana))
    assert report.status_code == 200 and "<html" in report.text.lower()

    archive = client.get(f"/v1/runs/{run['id']}/archive", headers=Service.auth(ana))
    assert archive.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        names = tar.getnames()
    assert any(n.endswith("/config.yaml") for n in names) and any(n.endswith("/model.safetensors") for n in names)
    assert all(not n.startswith("/") and ".." not in n for n in names)


def test_table_run_generates_rows_with_conditions(client, ana, runs):
    run = runs["table"]
    job = wait_job(client, ana, run["job"]["id"])
    assert job["state"] == "finished", job
    detail = client.get(f"/v1/runs/{run['id']}", headers=Service.auth(ana)).json()
    assert "sex" in detail["choices"]["where"]
    resp = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                       json={"n": 40, "format": "csv", "seed": 0, "options": {"where": {"sex": "Female"}}})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = pd.read_csv(io.BytesIO(resp.content))
    assert len(rows) == 40 and set(rows["sex"]) == {"Female"}
    pq = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana), json={"n": 10, "format": "parquet"})
    assert len(pd.read_parquet(io.BytesIO(pq.content))) == 10
    bad = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                      json={"n": 5, "format": "csv", "options": {"where": {"sex": "Martian"}}})
    assert bad.status_code == 422 and "Martian" in bad.json()["error"]["message"]


def test_text_run_streams_tokens_and_writes_json_lines(client, ana, runs):
    run = runs["text"]
    job = wait_job(client, ana, run["job"]["id"])
    assert job["state"] == "finished", job
    events = sse(client, ana, "POST", f"/v1/runs/{run['id']}/stream",
                 json={"seed": 3, "options": {"prompt": "ROMEO:", "max_tokens": 24, "temperature": 0.8, "top_k": 20}})
    tokens = [d["text"] for k, d in events if k == "token"]
    assert events[-1][0] == "end" and len(tokens) >= 10  # the prompt, then one event per token
    assert tokens[0] == "ROMEO:"
    resp = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                       json={"n": 2, "format": "jsonl", "seed": 1, "options": {"prompt": "KING:", "max_tokens": 16}})
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert len(lines) == 2 and all(r["prompt"] == "KING:" for r in lines)
    bad = sse(client, ana, "POST", f"/v1/runs/{run['id']}/stream", json={"options": {"top_p": 5}})
    assert bad[-1][0] == "error" and "top" in bad[-1][1]["message"]
    path = client.post(f"/v1/runs/{run['id']}/samples", headers=Service.auth(ana),
                       json={"n": 1, "format": "jsonl", "options": {"prompt_file": "/etc/passwd"}})
    assert path.status_code == 422 and "prompt_file" in path.json()["error"]["message"]
    job = client.post(f"/v1/runs/{run['id']}/evaluate", headers=Service.auth(ana), json={"n": 2}).json()
    assert wait_job(client, ana, job["id"], timeout=240)["state"] == "finished"
    evals = client.get(f"/v1/runs/{run['id']}/evaluations", headers=Service.auth(ana)).json()
    assert len(evals) == 1 and evals[0]["metrics"]
    assert client.get(f"/v1/runs/{run['id']}/report", headers=Service.auth(ana)).headers[
        "content-security-policy"].startswith("sandbox")


def test_retraining_on_a_new_dataset_version_says_if_quality_went_up_or_down(client, ana, service):
    from genforge.tables.data.demo import customers_table

    df = customers_table()
    cols = ["age", "sex", "country", "income", "is_active"]
    v1 = df[cols].head(300).to_csv(index=False).encode()
    first = client.post("/v1/datasets?name=customers.csv&kind=table", headers=Service.auth(ana), content=v1)
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1 and "300 rows" in first.json()["summary"]
    run = client.post("/v1/jobs", headers=Service.auth(ana), json={"model": "gaussian-copula",
                                                                   "dataset_id": first.json()["id"]}).json()
    wait_job(client, ana, run["job"]["id"])
    job = client.post(f"/v1/runs/{run['id']}/evaluate", headers=Service.auth(ana), json={"n": 200, "seed": 0}).json()
    assert wait_job(client, ana, job["id"], timeout=240)["state"] == "finished"
    v2 = df[cols].head(1500).to_csv(index=False).encode()
    second = client.post("/v1/datasets?name=customers.csv&kind=table", headers=Service.auth(ana), content=v2).json()
    assert second["version"] == 2
    again = client.post(f"/v1/runs/{run['id']}/retrain", headers=Service.auth(ana), json={})
    assert again.status_code == 202, again.text
    new = again.json()
    assert new["dataset_id"] == second["id"] and new["parent_id"] == run["id"]
    assert wait_job(client, ana, new["job"]["id"], timeout=300)["state"] == "finished"
    detail = client.get(f"/v1/runs/{new['id']}", headers=Service.auth(ana)).json()
    assert len(detail["evaluations"]) == 1
    comparison = detail["comparison"]
    assert comparison["against"] == run["id"] and comparison["verdict"] in ("better", "worse", "mixed", "same")
    assert comparison["metrics"] and {r["change"] for r in comparison["metrics"]} <= {"better", "worse", "same"}


def test_image_zip_upload_is_read_by_the_image_reader(client, ana):
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for cls in ("cats", "dogs"):
            for i in range(6):
                img = io.BytesIO()
                Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(img, format="PNG")
                z.writestr(f"pets/{cls}/{i}.png", img.getvalue())
    resp = client.post("/v1/datasets?name=pets.zip", headers=Service.auth(ana), content=buf.getvalue())
    assert resp.status_code == 201, resp.text
    assert resp.json()["kind"] == "image" and "2 classes" in resp.json()["summary"], resp.json()
    assert "12 items" in resp.json()["summary"] and "uploads" not in resp.json()["summary"]


def test_health_readiness_metrics_and_request_ids(client, ana, runs):
    wait_job(client, ana, runs["image"]["job"]["id"])
    client.post(f"/v1/runs/{runs['image']['id']}/samples", headers=Service.auth(ana), json={"n": 4, "format": "png"})
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready == {"status": "ok", "checks": {"database": "ok", "queue": "ok"}}
    resp = client.get("/v1/runs", headers={**Service.auth(ana), "X-Request-ID": "trace-123"})
    assert resp.headers["x-request-id"] == "trace-123"
    assert client.get("/v1/runs", headers=Service.auth(ana)).headers["x-request-id"] != "trace-123"
    text = client.get("/metrics").text
    assert 'genforge_http_requests_total{method="GET",route="/v1/runs",status="200"}' in text
    assert 'genforge_http_request_seconds_bucket{le="0.005",method="GET",route="/v1/runs"}' in text
    assert 'genforge_jobs{state="finished"}' in text and "genforge_queue_depth" in text
    assert 'genforge_samples_generated_total{model="cgan"}' in text
    assert "genforge_training_steps_per_second" in text


def test_logs_are_json_lines_with_the_request_id(client, ana):
    from genforge.app.serve import logs

    names = ("genforge", "uvicorn", "uvicorn.error", "uvicorn.access", "huey")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level, logging.getLogger(n).propagate,
                 logging.getLogger(n).disabled) for n in names}
    stream = io.StringIO()
    logs.setup(stream=stream)
    try:
        client.get("/v1/me", headers={**Service.auth(ana), "X-Request-ID": "log-check-1"})
    finally:
        for n, (handlers, level, propagate, disabled) in saved.items():
            logger = logging.getLogger(n)
            logger.handlers[:], logger.level, logger.propagate, logger.disabled = handlers, level, propagate, disabled
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [r for r in lines if r.get("request_id") == "log-check-1"]
    assert mine and mine[-1]["route"] == "/v1/me" and mine[-1]["status"] == 200 and mine[-1]["user"] == "ana"


def test_progress_reads_the_files_the_trainer_writes():
    from genforge.app.serve import progress
    from genforge.core import runs

    assert (progress.SUMMARY, progress.METRICS) == (runs.SUMMARY, runs.METRICS)
