"""Data-parallel training (--nproc): the same maths as one process, rank 0 writes, failures stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ANSI, cli_command, cli_env, run_cli

# float rounding differs (the gradient mean is summed in another order); after 12 Adam steps the
# weights of a 2-process run stay within this of the 1-process run's
TOL = 2e-4
COMMON = ["--steps", "12", "--checkpoint-every", "1000", "--sample-every", "1000", "-q"]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.parametrize("model,data", [("mlp-gan", ["--data", "digits", "--limit", "512"]),
                                        ("tvae", ["--data", "customers", "--limit", "400"])])
def test_two_processes_with_half_batches_match_one_process(tmp_path, model, data):
    one = run_cli("train", "--model", model, *data, *COMMON, "--seed", "3", "--batch-size", "64", "--out", tmp_path / "one",
                  cwd=tmp_path, timeout=300)
    assert one.returncode == 0, one.stderr
    two = run_cli("train", "--model", model, *data, *COMMON, "--seed", "3", "--batch-size", "32", "--nproc", "2",
                  "--out", tmp_path / "two", cwd=tmp_path, timeout=300)
    assert two.returncode == 0, two.stderr
    assert "training done" in two.stdout and two.stdout.count("run directory") == 1  # rank 0 prints, once
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["processes"] == 2
    diff = max_diff(weights(tmp_path / "one"), weights(tmp_path / "two"))
    print(f"{model}: max |w_1proc - w_2proc| = {diff:.2e}")
    assert diff < TOL, diff
    # and the comparison can fail: one process with batch 32 (other maths) ends up much further away
    half = run_cli("train", "--model", model, *data, *COMMON, "--seed", "3", "--batch-size", "32",
                   "--out", tmp_path / "half", cwd=tmp_path, timeout=300)
    assert half.returncode == 0, half.stderr
    assert max_diff(weights(tmp_path / "one"), weights(tmp_path / "half")) > max(20 * diff, 1e-5)


def test_nproc_zero_is_refused_and_too_many_warns(tmp_path):
    from genforge.app.launch import check_nproc

    bad = run_cli("train", "--data", "digits", "--model", "mlp-gan", "--nproc", "0", "--out", tmp_path / "r",
                  cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: --nproc must be at least 1")
    assert not (tmp_path / "r").exists()
    # more processes than cores: a warning, and the run goes on (3+ processes on 2 cores are covered
    # by the 2-process tests above; starting them here only makes the suite slow and fragile)
    warnings: list[str] = []
    many = os.cpu_count() + 1
    check_nproc(many, warn=warnings.append, model="mlp-gan", device="cpu")
    assert len(warnings) == 1 and f"--nproc {many} is more than this machine's" in warnings[0]
    check_nproc(os.cpu_count(), warn=warnings.append, model="mlp-gan", device="cpu")
    assert len(warnings) == 1  # as many as the cores: no warning


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def test_a_killed_worker_stops_the_others_and_the_run_resumes_with_another_nproc(tmp_path):
    run = tmp_path / "run"
    cmd = cli_command("train", "--data", "digits", "--model", "mlp-gan", "--steps", "100000", "--checkpoint-every",
                      "50", "--sample-every", "100000", "-q", "--nproc", "2", "--out", run)
    p = subprocess.Popen(cmd, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "checkpoint.safetensors").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert (run / "checkpoint.safetensors").exists(), p.stderr.read() if p.poll() is not None else "no checkpoint"
        workers = _children(p.pid)
        assert len(workers) == 2, workers
        os.kill(workers[-1], signal.SIGKILL)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    err = ANSI.sub("", err)
    assert p.returncode == 2
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in err, err
    assert all(not _alive(w) for w in workers)
    step = json.loads((run / "summary.json").read_text())["checkpoint_step"]
    assert step >= 50 and step % 50 == 0
    res = run_cli("train", "--resume", run, "--steps", str(step + 20), "--nproc", "1", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == step + 20 and summary["processes"] == 1 and summary["status"] == "finished"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
