"""``genforge evaluate``: runs and sample files, JSON output, the report, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genforge.app.cli import app

from conftest import run_cli

runner = CliRunner()


def invoke(*args):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (res.output, res.exception)
    return res


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def cgan_run(work) -> Path:
    out = work / "cgan"
    invoke("train", "--data", "digits", "--model", "cgan", "--steps", 40, "--out", out, "-q", "--set", "width=8")
    return out


@pytest.fixture(scope="module")
def vae_run(work) -> Path:
    out = work / "vae"
    invoke("train", "--data", "digits", "--model", "vae", "--steps", 40, "--out", out, "-q", "--set", "width=8")
    return out


def test_evaluate_run_json_metrics_and_report(cgan_run):
    res = invoke("evaluate", cgan_run, "-n", 400, "--json", "--no-tstr")
    result = json.loads(res.stdout.strip().splitlines()[-1])
    m = result["metrics"]
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "inception_score", "class_tv",
                "label_accuracy", "memorised_share"):
        assert key in m and m[key]["explain"]
    assert result["n_generated"] == 400 and result["extractor"]["name"].startswith("genforge domain CNN")
    assert m["fid"]["value"] > m["fid"]["reference"]  # 40 steps of training is far from real
    saved = json.loads((cgan_run / "metrics.json").read_text())
    assert saved["metrics"]["fid"]["value"] == pytest.approx(m["fid"]["value"])
    html = (cgan_run / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # grid, per-class grid, pairs, histogram, curves
    assert "Samples per class" in html and "fid" in html and "reference" in html


def test_evaluate_prints_a_table(cgan_run):
    res = invoke("evaluate", cgan_run, "-n", 300, "--no-tstr")
    assert "precision" in res.stdout and "report.html" in res.stdout


def test_evaluate_vae_reports_reconstruction(vae_run):
    result = json.loads(invoke("evaluate", vae_run, "-n", 300, "--json").stdout.strip().splitlines()[-1])
    assert 0 < result["metrics"]["psnr"]["value"] < 60
    assert -1 <= result["metrics"]["ssim"]["value"] <= 1
    assert "label_accuracy" not in result["metrics"]  # unconditional


def test_evaluate_samples_from_anywhere(cgan_run, work):
    invoke("sample", cgan_run, "-n", 300, "-o", work / "other" / "s.npz", "--seed", 1)
    res = invoke("evaluate", "--samples", work / "other" / "s.npz", "--real", "digits", "--json")
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["n_generated"] == 300 and "label_accuracy" in result["metrics"]
    assert (work / "other" / "metrics.json").exists() and (work / "other" / "report.html").exists()


@pytest.mark.parametrize("args, words", [
    (["evaluate"], "either a run directory"),
    (["evaluate", "--samples", "s.npz"], "--real"),
    (["evaluate", "{run}", "-n", "50"], "more than 112"),
    (["evaluate", "{work}"], "not a genforge run directory"),
    (["evaluate", "{run}", "--inception-weights", "nope.pth"], "not found"),
])
def test_evaluate_bad_input(cgan_run, work, args, words):
    args = [a.format(run=cgan_run, work=work) for a in args]
    p = run_cli(*args, cwd=work)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr + p.stdout
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], p.stderr
