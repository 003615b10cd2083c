"""--resume continues exactly what is there, or refuses and says why; it never silently starts over."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import one_error, run_cli, trained_run


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("resume"), "--data", "digits", "--limit", "128", "--model", "mlp-gan",
                       "--steps", "120", "--checkpoint-every", "10")


def test_flags_that_cannot_change_are_refused_not_ignored(run):
    before = digest(run / "model.safetensors")
    msg = one_error(run_cli("train", "--resume", run, "--steps", "30", "--lr", "0.1", "--model", "dcgan",
                            cwd=run.parent))
    assert "--lr" in msg and "--model" in msg and "--out NEW" in msg
    assert digest(run / "model.safetensors") == before


def test_budget_threads_and_device_may_change(run):
    res = run_cli("train", "--resume", run, "--steps", "130", "--threads", "1", "--device", "cpu", "-q",
                  cwd=run.parent)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "summary.json").read_text())["step"] == 130


def test_a_run_without_checkpoint_is_refused_unless_restart(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "checkpoint.safetensors").unlink()
    before = digest(copy / "model.safetensors")
    assert (copy / "metrics.jsonl").read_text().strip()  # the old run logged steps 50 and 100
    msg = one_error(run_cli("train", "--resume", copy, "--steps", "140", "-q", cwd=tmp_path))
    assert "no checkpoint" in msg and "--restart" in msg
    assert digest(copy / "model.safetensors") == before  # the trained weights are untouched
    res = run_cli("train", "--resume", copy, "--steps", "5", "--restart", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((copy / "summary.json").read_text())["step"] == 5
    lines = (copy / "metrics.jsonl").read_text().splitlines() if (copy / "metrics.jsonl").exists() else []
    assert all(json.loads(line)["step"] <= 5 for line in lines)  # the old run's metric lines are gone


def test_restart_needs_resume(tmp_path):
    msg = one_error(run_cli("train", "--data", "digits", "--restart", "--out", tmp_path / "x", cwd=tmp_path))
    assert "--restart goes with --resume" in msg and not (tmp_path / "x").exists()
