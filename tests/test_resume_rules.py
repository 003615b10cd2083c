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


def test_ctrl_c_stops_at_a_step_boundary_and_the_resume_is_bit_exact(tmp_path):
    import random
    import signal
    import subprocess
    import time

    import torch
    from safetensors.torch import load_file

    from conftest import cli_command, cli_env

    # dcgan: BatchNorm counters, spectral-norm vectors and the EMA must all be those of a whole step
    args = ["--data", "digits", "--limit", "256", "--model", "dcgan", "--batch-size", "16", "--checkpoint-every",
            "100000", "--sample-every", "100000", "-q"]
    straight = run_cli("train", *args, "--steps", "1500", "--out", tmp_path / "straight", cwd=tmp_path, timeout=300)
    assert straight.returncode == 0, straight.stderr
    p = subprocess.Popen(cli_command("train", *args, "--steps", "1500", "--out", tmp_path / "cut"), cwd=tmp_path,
                         env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "cut" / "metrics.jsonl").exists() and time.time() < deadline:  # step 50 reached
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "checkpoint saved" in err and "--resume" in err
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 50 <= summary["step"] < 1500
    resumed = run_cli("train", "--resume", tmp_path / "cut", "--steps", "1500", "-q", cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "cut" / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
