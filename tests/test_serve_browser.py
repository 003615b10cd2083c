"""The web UI in a real browser: Debian's chromium driven by Playwright's Python API (pointed at
/usr/bin/chromium; nothing downloads a browser), against a real uvicorn server and a real worker. Sign in,
start a training job on the demo data, watch it finish, generate images and see them on the page, upload a
table through the form, train on it and see generated rows, and read an API error on the page. Screenshots go to tests/artifacts/ (or
$GENFORGE_TEST_ARTIFACTS); docs/serve-run.png and docs/serve-generate.png were taken by this test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving import ROOT, Service, free_port

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                                                      "(.ci/run installs it)")]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("GENFORGE_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("serve-browser") / "home")
    port = free_port()
    svc.start_server(port)
    svc.start_worker()
    yield svc, f"http://127.0.0.1:{port}"
    svc.stop()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-profile")),
                                                        executable_path=CHROMIUM, headless=True, args=ARGS,
                                                        viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()


def start_training(page, base: str, model: str, options: str = "", steps: str = "", upload=None) -> str:
    page.goto(f"{base}/train")
    page.select_option("#model", model)
    if upload is not None:
        page.check("input[name=source][value=upload]")
        page.set_input_files("#file", str(upload))
    page.fill("#options", options)
    page.fill("#steps", steps)
    page.click("#start")
    page.wait_for_url(f"{base}/runs/*")
    return page.url.rsplit("/", 1)[-1]


def test_sign_in_train_watch_and_generate(site, page, artifacts, tmp_path):
    svc, base = site
    token = svc.token("ana", max_jobs=4)
    page.goto(base + "/")
    assert page.url.endswith("/signin")
    page.fill("#token", "gf_wrong")
    page.click("#signin")
    assert "unknown or revoked" in page.inner_text("#signin-error")
    page.fill("#token", token)
    page.click("#signin")
    page.wait_for_url(base + "/")
    assert "No runs yet" in page.inner_text("main")

    page.goto(f"{base}/train")  # an API error, shown on the page in its own words
    page.select_option("#model", "cgan")
    page.fill("#options", "widht=8")
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert "unknown option 'widht'" in page.inner_text("#error")

    run_id = start_training(page, base, "cvae", "width=8\nbatch_size=32", "400")
    page.wait_for_function("document.querySelector('#status').textContent.trim() === 'finished'", timeout=150_000)
    page.wait_for_function("document.querySelector('#bar').value === 1")
    page.wait_for_selector("#chart path")
    page.wait_for_function("document.querySelector('#thumb').naturalWidth > 0")
    assert page.inner_text("#step") == "400" and page.is_hidden("#cancel")
    page.screenshot(path=str(artifacts / "serve-run.png"), full_page=True)

    page.click("#generate-link")
    page.wait_for_url(f"{base}/runs/{run_id}/generate")
    page.select_option("#choice-label", "7")
    page.fill("#n", "40")
    page.fill("#seed", "1")
    page.click("#go")
    page.wait_for_function("document.querySelector('#samples-img') && document.querySelector('#samples-img').naturalWidth > 0")
    assert page.get_attribute("#download-samples", "download") == "samples.png"
    page.screenshot(path=str(artifacts / "serve-generate.png"), full_page=True)

    from genforge.tables.data.demo import customers_table

    upload = tmp_path / "customers.csv"  # this one through the form's upload
    customers_table().head(400).to_csv(upload, index=False)
    table_run = start_training(page, base, "gaussian-copula", upload=upload)
    page.wait_for_function("document.querySelector('#status').textContent.trim() === 'finished'", timeout=120_000)
    page.goto(f"{base}/runs/{table_run}/generate")
    page.select_option("select.cond[data-column=sex]", "Female")
    page.fill("#n", "30")
    page.click("#go")
    page.wait_for_selector("#samples-table tbody tr")
    headers = page.eval_on_selector_all("#samples-table th", "els => els.map(e => e.textContent)")
    sex = headers.index("sex")
    cells = page.eval_on_selector_all(f"#samples-table tbody tr td:nth-child({sex + 1})", "els => els.map(e => e.textContent)")
    assert len(cells) == 20 and set(cells) == {"Female"}  # the preview shows the first 20 of 30 rows
    page.screenshot(path=str(artifacts / "serve-generate-table.png"), full_page=True)

    page.goto(base + "/")
    assert page.locator(".card.run").count() == 2
    assert "customers.csv" in page.inner_text("main") and "400 rows" in page.inner_text("main")
    assert page.locator(f'[data-run="{run_id}"] img.thumb').evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(artifacts / "serve-runs.png"), full_page=True)
