"""Faults from outside: a full disk, a read-only disk, SIGKILL and SIGINT at random moments.

The full disk is a tiny tmpfs when this process may mount one (root, as in CI), else the same
failure without a mount: a file-size limit (RLIMIT_FSIZE) on the genforge process, which makes a
write fail the way a full disk does. Either way: one ``error:`` line, exit code 2, no traceback, no
half-written file, a run directory whose checkpoint (if any) is complete, and a resume that goes on
once there is room again. Kills and interrupts at random moments resume to weights equal bit for
bit to those of a run trained straight through.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ANSI, cli_command, cli_env, run_cli
from hostile import assert_kept_promise, temp_leftovers

DCGAN = ["--data", "digits", "--limit", "256", "--model", "dcgan", "--set", "width=8", "--batch-size", "16", "-q"]


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


class SmallDisk:
    """A place to write that fills up after ``size`` bytes: a tmpfs, or a file-size limit on the command."""

    def __init__(self, root: Path, size: int):
        self.path, self.size = root / "disk", size
        self.mounted = _mount_tmpfs(self.path, str(size))

    def run(self, *args, limited: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
        def limit():  # a write past the limit fails with EFBIG, as it would with ENOSPC on a full disk
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.size, self.size))

        pre = limit if (limited and not self.mounted) else None
        p = subprocess.run(cli_command(*args), cwd=self.path, env=cli_env(), capture_output=True, text=True,
                           timeout=timeout, preexec_fn=pre)
        return subprocess.CompletedProcess(p.args, p.returncode, ANSI.sub("", p.stdout), ANSI.sub("", p.stderr))

    def make_room(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(self.path)], check=True, timeout=10)

    def read_only(self) -> bool:
        return self.mounted and subprocess.run(["mount", "-o", "remount,ro", str(self.path)],
                                               capture_output=True, timeout=10).returncode == 0

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=10)


@pytest.fixture
def small_disk(tmp_path):
    disk = SmallDisk(tmp_path, 400 * 1024)
    yield disk
    disk.close()


def _full_disk_error(res) -> str:
    assert_kept_promise(res.returncode, res.stdout, res.stderr, ok=())
    line = res.stderr.strip().splitlines()[-1]
    assert "No space left" in line or "File too large" in line, line
    return line


def test_training_on_a_disk_that_fills_up(small_disk):
    """The run stops with one line saying what is kept; after freeing space the resume finishes it."""
    res = small_disk.run("train", *DCGAN, "--steps", "3000", "--checkpoint-every", "20", "--sample-every", "10",
                         "--out", "run")
    line = _full_disk_error(res)
    run = small_disk.path / "run"
    assert "training stopped at step" in line and "--resume" in line
    assert temp_leftovers(run) == []
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    if (run / "checkpoint.safetensors").exists():  # what is there is complete and loadable
        assert "last complete checkpoint" in line
        load_file(str(run / "checkpoint.safetensors"))
        resume = ["train", "--resume", "run", "--steps", "60"]
    else:
        assert "before any checkpoint" in line and "--restart" in line
        resume = ["train", "--resume", "run", "--restart", "--steps", "60"]
    assert summary.get("status") in (None, "failed")
    small_disk.make_room()
    for p in (run / "samples").glob("step_*.png"):  # free space the way a user would
        p.unlink()
    done = small_disk.run(*resume, "-q", limited=False)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"


def test_sampling_to_a_disk_that_fills_up(small_disk, tmp_path):
    """A sample bigger than the room left: one line, and neither a partial file nor a partial folder."""
    made = run_cli("train", *DCGAN, "--steps", "4", "--out", tmp_path / "run", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    for out in ("big.npz", "pngs"):
        res = small_disk.run("sample", tmp_path / "run", "-n", "30000", "-o", out, "--seed", "1")
        _full_disk_error(res)
        assert not (small_disk.path / out).exists() and temp_leftovers(small_disk.path) == []


def test_a_read_only_disk(small_disk, tmp_path):
    if not small_disk.read_only():
        pytest.skip("needs a tmpfs mounted read-only (root)")
    made = run_cli("train", *DCGAN, "--steps", "2", "--out", tmp_path / "run", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    res = small_disk.run("sample", tmp_path / "run", "-n", "4", "-o", "x.npz")
    assert_kept_promise(res.returncode, res.stdout, res.stderr, ok=())
    assert "read-only" in res.stderr
    res = small_disk.run("train", *DCGAN, "--steps", "2", "--out", "new-run")
    assert_kept_promise(res.returncode, res.stdout, res.stderr, ok=())


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run every cut-and-resumed run must equal, bit for bit."""
    work = tmp_path_factory.mktemp("straight")
    res = run_cli("train", *DCGAN, "--steps", "400", "--checkpoint-every", "37", "--sample-every", "100000",
                  "--out", work / "run", cwd=work, timeout=300)
    assert res.returncode == 0, res.stderr
    return load_file(str(work / "run" / "checkpoint.safetensors"))


# one moment per signal in the default run; two more with `make test-all` (the same path at other steps)
@pytest.mark.parametrize("sig,seed", [(signal.SIGKILL, 1), (signal.SIGINT, 3),
                                      pytest.param(signal.SIGKILL, 2, marks=pytest.mark.slow),
                                      pytest.param(signal.SIGINT, 4, marks=pytest.mark.slow)])
def test_stopped_at_a_random_moment_resumes_bit_for_bit(straight, tmp_path, sig, seed):
    """SIGKILL (the last complete checkpoint) or SIGINT (a checkpoint of the step it stopped at) at a random
    moment; the resume ends with exactly the weights, optimizer state and RNG of the straight run."""
    run = tmp_path / "cut"
    args = ["train", *DCGAN, "--steps", "400", "--checkpoint-every", "37", "--sample-every", "100000", "--out", run]
    p = subprocess.Popen(cli_command(*args), cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while not (run / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 1.0))
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("training finished before the signal (a very fast machine)")
    assert p.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), err
    assert "Traceback" not in err
    if sig == signal.SIGINT:  # stopped at the end of a step, with a checkpoint of that step
        assert "checkpoint saved" in err and "--resume" in err
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["step"] == summary["checkpoint_step"] < 400
    resumed = run_cli("train", "--resume", run, "--steps", "400", "-q", cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    got = load_file(str(run / "checkpoint.safetensors"))
    assert got.keys() == straight.keys()
    assert all(torch.equal(got[k], straight[k]) for k in got), [k for k in got if not torch.equal(got[k], straight[k])][:5]
