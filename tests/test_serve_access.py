"""Access and hostile input against the real app (SQLite file, real queue; no worker is needed: jobs that
are refused never reach it, and the ones accepted stay queued): no token -> 401, another user's rows ->
404, an admin-only route -> 403, limits -> 413/429 with a message, path-traversal names, zip bombs and
zips that leave their folder, SQL-looking names, a CSV with 10,000 columns, bad models and options."""

from __future__ import annotations

import io
import os
import stat
import zipfile

import numpy as np
import pandas as pd
import pytest

from serving import Service

from genforge.app.serve.uploads import safe_name


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("serve-access") / "home")
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def client(service):
    with service.client(recovery=False) as c:
        yield c


def csv_bytes(rows: int = 50) -> bytes:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 80, rows), "city": rng.choice(["Oslo", "Lima"], rows)})
    return df.to_csv(index=False).encode()


def error_of(resp, status: int) -> str:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()["error"]
    assert body["message"] and "\n" not in body["message"] and "Traceback" not in body["message"]
    return body["message"]


def test_every_api_route_needs_a_token(client):
    assert "Bearer" in error_of(client.get("/v1/runs"), 401)
    assert error_of(client.get("/v1/runs", headers=Service.auth("gf_not-a-token")), 401)
    assert error_of(client.post("/v1/jobs", json={"model": "dcgan"}), 401)
    assert error_of(client.post("/v1/datasets?name=a.csv", content=b"a\n1\n"), 401)
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.get("/", follow_redirects=False).status_code == 303  # the UI asks to sign in


def test_revoked_tokens_stop_working(client, service):
    token = service.token("leaver")
    assert client.get("/v1/me", headers=Service.auth(token)).json()["name"] == "leaver"
    me = client.get("/v1/me", headers=Service.auth(token)).json()
    assert client.delete(f"/v1/tokens/{me['id']}", headers=Service.auth(service.admin)).status_code == 200
    error_of(client.get("/v1/me", headers=Service.auth(token)), 401)


def test_users_see_only_their_own_datasets_and_runs(client, service):
    ana, bo = service.token("ana", max_jobs=5), service.token("bo")
    ds = client.post("/v1/datasets?name=mine.csv", headers=Service.auth(ana), content=csv_bytes()).json()
    run = client.post("/v1/jobs", headers=Service.auth(ana), json={"model": "gaussian-copula", "dataset_id": ds["id"]})
    assert run.status_code == 202, run.text
    run = run.json()
    for url in (f"/v1/datasets/{ds['id']}", f"/v1/runs/{run['id']}", f"/v1/jobs/{run['job']['id']}",
                f"/v1/runs/{run['id']}/archive", f"/v1/runs/{run['id']}/metrics"):
        assert "no " in error_of(client.get(url, headers=Service.auth(bo)), 404)
    error_of(client.post(f"/v1/jobs/{run['job']['id']}/cancel", headers=Service.auth(bo)), 404)
    error_of(client.post("/v1/jobs", headers=Service.auth(bo), json={"model": "gaussian-copula",
                                                                     "dataset_id": ds["id"]}), 404)
    assert client.get("/v1/runs", headers=Service.auth(bo)).json() == []
    assert client.get("/v1/datasets", headers=Service.auth(bo)).json() == []
    assert client.get(f"/runs/{run['id']}", headers={"Cookie": f"genforge_token={bo}"}).status_code == 404
    error_of(client.get("/v1/tokens", headers=Service.auth(bo)), 403)
    assert [r["id"] for r in client.get("/v1/runs", headers=Service.auth(service.admin)).json()] == [run["id"]]
    audit = client.get("/v1/audit", headers=Service.auth(service.admin)).json()
    assert {"dataset.upload", "run.train"} <= {a["action"] for a in audit}


def test_limits_answer_413_and_429_with_a_message(client, service):
    small = service.token("small", max_upload_mb=0.01, max_samples=10, max_jobs=1, rpm=1000)
    big = b"x,y\n" + b"1,2\n" * 5000
    assert "limit" in error_of(client.post("/v1/datasets?name=big.csv", headers=Service.auth(small), content=big), 413)

    def chunks():  # no Content-Length: the limit is counted while streaming
        for _ in range(10):
            yield b"1,2\n" * 1000
    assert "limit" in error_of(client.post("/v1/datasets?name=big.csv", headers=Service.auth(small),
                                           content=chunks()), 413)
    first = client.post("/v1/jobs", headers=Service.auth(small), json={"model": "gaussian-copula"})
    assert first.status_code == 202
    assert "limit is 1" in error_of(client.post("/v1/jobs", headers=Service.auth(small),
                                                json={"model": "gaussian-copula"}), 429)
    client.post(f"/v1/jobs/{first.json()['job']['id']}/cancel", headers=Service.auth(small))
    assert client.post("/v1/jobs", headers=Service.auth(small), json={"model": "gaussian-copula"}).status_code == 202
    msg = error_of(client.post(f"/v1/runs/{first.json()['id']}/samples", headers=Service.auth(small),
                               json={"n": 11, "format": "csv"}), 409)  # not trained yet: said before the count
    assert "no trained weights" in msg
    hasty = service.token("hasty", rpm=5)
    codes = [client.get("/v1/me", headers=Service.auth(hasty)).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    resp = client.get("/v1/me", headers=Service.auth(hasty))
    assert "per minute" in error_of(resp, 429) and int(resp.headers["retry-after"]) >= 1


def test_upload_names_cannot_leave_the_upload_folder(client, service):
    token = service.token("mallory", max_jobs=5)
    for name in ("../../../../etc/passwd.csv", "..\\..\\boot.ini.csv", "/abs/path.csv", ".hidden.csv",
                 "a/../../b.csv", "%2e%2e%2fescape.csv", "nul\x00.csv"):
        resp = client.post("/v1/datasets", params={"name": name, "kind": "table"}, headers=Service.auth(token),
                           content=csv_bytes())
        assert resp.status_code == 201, (name, resp.text)
        assert resp.json()["name"] == name  # shown back as given, never used as a path
    uploads = service.settings.uploads_dir.resolve()
    for p in service.settings.home.parent.rglob("*.csv"):
        assert uploads in p.resolve().parents, p
    assert not any(service.settings.home.parent.glob("etc")) and not os.path.exists("/abs/path.csv")
    for name in ("../../x.csv", "a/b/c.tar.gz", ".", "", "x" * 300 + ".csv", "ok.CSV"):
        made = safe_name(name)
        assert "/" not in made and not made.startswith(".") and len(made) <= 100


def _zip(entries: dict[str, bytes], compress=zipfile.ZIP_DEFLATED, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compress) as z:
        for name, data in entries.items():
            z.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_zips_are_checked_before_anything_is_unpacked(client, service):
    token = service.token("zipper")
    bomb = _zip({"imgs/a/zeros.png": b"\0" * (40 * 2**20)})
    assert len(bomb) < 200_000
    assert "zip bomb" in error_of(client.post("/v1/datasets?name=bomb.zip", headers=Service.auth(token),
                                              content=bomb), 413)
    escape = _zip({"imgs/a/1.png": b"x", "../../evil.txt": b"owned"})
    assert "leaves its folder" in error_of(client.post("/v1/datasets?name=x.zip", headers=Service.auth(token),
                                                       content=escape), 422)
    linked = _zip({"imgs/a/1.png": b"x"}, link="imgs/a/2.png")
    assert "link" in error_of(client.post("/v1/datasets?name=x.zip", headers=Service.auth(token), content=linked), 422)
    many = _zip({f"imgs/a/{i}.png": b"" for i in range(60)})
    service.settings.zip_max_files, old = 50, service.settings.zip_max_files
    try:
        assert "files" in error_of(client.post("/v1/datasets?name=x.zip", headers=Service.auth(token), content=many),
                                   413)
    finally:
        service.settings.zip_max_files = old
    junk = b"PK\x03\x04 not really a zip"
    assert "not a readable zip" in error_of(client.post("/v1/datasets?name=x.zip", headers=Service.auth(token),
                                                        content=junk), 422)
    not_images = _zip({"imgs/a/1.png": b"not a png", "imgs/b/2.png": b"nor this"})
    error_of(client.post("/v1/datasets?name=x.zip", headers=Service.auth(token), content=not_images), 422)
    assert not list(service.settings.home.parent.rglob("evil.txt"))
    assert not [p for p in (service.settings.uploads_dir).rglob("*") if p.is_file()
                and "zipper" in str(p)]  # refused uploads leave nothing behind
    assert client.get("/v1/datasets", headers=Service.auth(token)).json() == []


def test_sql_looking_names_are_just_names(client, service):
    token = service.token("robert'); DROP TABLE tokens;--"[:30].replace("'", "").replace(";", "").replace(")", ""))
    name = "x'; DROP TABLE runs; --.csv"
    resp = client.post("/v1/datasets", params={"name": name, "kind": "table"}, headers=Service.auth(token),
                       content=csv_bytes())
    assert resp.status_code == 201 and resp.json()["name"] == name
    assert client.get("/v1/runs", headers=Service.auth(token)).status_code == 200
    bad = client.post("/v1/jobs", headers=Service.auth(token), json={"model": "1; DROP TABLE jobs"})
    assert "unknown model" in error_of(bad, 422)
    assert error_of(client.get("/v1/runs/' OR '1'='1", headers=Service.auth(token)), 404)
    assert client.get("/v1/tokens", headers=Service.auth(service.admin)).status_code == 200


def test_a_csv_with_ten_thousand_columns_is_handled(client, service):
    token = service.token("wide")
    wide = pd.DataFrame(np.zeros((3, 10_000), dtype=int), columns=[f"c{i}" for i in range(10_000)])
    resp = client.post("/v1/datasets?name=wide.csv", headers=Service.auth(token), content=wide.to_csv(index=False).encode())
    assert resp.status_code in (201, 413, 422), resp.text
    if resp.status_code == 201:
        assert "10000 columns" in resp.json()["summary"]
    else:
        error_of(resp, resp.status_code)
    assert client.get("/readyz").status_code == 200


def test_bad_requests_are_one_line_422s(client, service):
    token = service.token("typo", max_jobs=5)
    assert "did you mean 'dcgan'" in error_of(client.post("/v1/jobs", headers=Service.auth(token),
                                                          json={"model": "dcgna"}), 422)
    assert "unknown option" in error_of(client.post("/v1/jobs", headers=Service.auth(token),
                                                    json={"model": "dcgan", "options": {"widht": 8}}), 422)
    assert "do not apply" in error_of(client.post("/v1/jobs", headers=Service.auth(token),
                                                  json={"model": "dcgan", "data_options": {"table": "x"}}), 422)
    assert "steps" in error_of(client.post("/v1/jobs", headers=Service.auth(token),
                                           json={"model": "dcgan", "steps": -1}), 422)
    ds = client.post("/v1/datasets?name=t.csv", headers=Service.auth(token), content=csv_bytes()).json()
    assert "learns images" in error_of(client.post("/v1/jobs", headers=Service.auth(token),
                                                   json={"model": "dcgan", "dataset_id": ds["id"]}), 422)
    assert "empty" in error_of(client.post("/v1/datasets?name=e.csv", headers=Service.auth(token), content=b""), 422)
    assert error_of(client.post("/v1/datasets?name=b.csv", headers=Service.auth(token), content=b"\xff\xfe\0\0" * 10),
                    422)
    assert "JSON object" in error_of(client.post("/v1/datasets?name=b.csv&options=[1]", headers=Service.auth(token),
                                                 content=csv_bytes()), 422)
    assert error_of(client.post("/v1/datasets?name=b.csv&options={\"metadata\":\"/etc/passwd\"}",
                                headers=Service.auth(token), content=csv_bytes()), 422)
    assert error_of(client.get("/v1/nothing-here", headers=Service.auth(token)), 404)
