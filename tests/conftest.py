"""Shared fixtures: tiny data sets, small model settings and a CLI runner for subprocesses.

Everything here is sized for a busy 2-core machine: 8x8 images, narrow networks, a few
dozen steps. torch runs single-threaded in tests (and in the CLI subprocesses they start):
with another job on the machine, two OpenMP threads per process are many times slower.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genforge
from genforge.images.data import ImageDataset

ROOT = Path(__file__).resolve().parents[1]

# Model settings that keep every family small and fast on 8x8 images.
SMALL = {
    "mlp-gan": {"batch_size": 16},
    "dcgan": {"batch_size": 16, "width": 8},
    "cgan": {"batch_size": 16, "width": 8},
    "vae": {"batch_size": 16, "width": 8},
    "cvae": {"batch_size": 16, "width": 8},
    # conditional=True: in the family tests they behave as the conditional families (unlabelled data is refused);
    # their unconditional runs are covered by tests/test_diffusion_models.py
    "ddpm": {"batch_size": 16, "width": 8, "sampling_steps": 3, "timesteps": 50, "conditional": True},
    "flow": {"batch_size": 16, "width": 8, "sampling_steps": 3, "conditional": True},
}
MODELS = sorted(SMALL)
CONDITIONAL = ("cgan", "cvae")

# The three class templates of `tiny_images`: dark, checkerboard, bright.
TEMPLATES = torch.stack([
    torch.full((1, 8, 8), -0.8),
    ((torch.arange(64).view(1, 8, 8) + torch.arange(8).view(1, 8, 1)) % 2) * 1.6 - 0.8,
    torch.full((1, 8, 8), 0.8),
])
CLASS_NAMES = ["cat", "dog", "eel"]


@pytest.fixture(autouse=True, scope="session")
def _feature_cache(tmp_path_factory):
    """Keep cached feature networks out of the user's ~/.cache during tests."""
    old = os.environ.get("GENFORGE_CACHE")
    os.environ["GENFORGE_CACHE"] = str(tmp_path_factory.mktemp("genforge-cache"))
    yield
    if old is None:
        os.environ.pop("GENFORGE_CACHE", None)
    else:
        os.environ["GENFORGE_CACHE"] = old


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_tiny(n: int = 96, seed: int = 0, labelled: bool = True) -> ImageDataset:
    """``n`` 8x8 grayscale images in 3 classes: a class template plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = (TEMPLATES[y] + 0.1 * torch.randn(n, 1, 8, 8, generator=g)).clamp(-1, 1)
    if labelled:
        return ImageDataset(x, y, list(CLASS_NAMES), "synthetic 3-class 8x8")
    return ImageDataset(x, None, None, "synthetic unlabelled 8x8")


@pytest.fixture(scope="session")
def tiny_images() -> ImageDataset:
    """96 labelled 8x8 images, 3 named classes (cat, dog, eel), fixed seed."""
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_unlabelled() -> ImageDataset:
    """The same images without labels."""
    return make_tiny(labelled=False)


@pytest.fixture(scope="session")
def digits() -> ImageDataset:
    """The first 200 of scikit-learn's 8x8 digits (10 classes)."""
    return genforge.load_images("digits", limit=200)


@pytest.fixture
def make_model():
    """``make_model(name, **overrides)``: a small, untrained model of family ``name``."""

    def make(name: str, **params):
        return genforge.create(name, **{**SMALL[name], **params})

    return make


# -- the CLI as a subprocess --------------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cli_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NO_COLOR="1", COLUMNS="200")
    env.pop("FORCE_COLOR", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "genforge.app.cli", *map(str, args)]


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m genforge.app.cli ARGS`` in ``cwd``; stdout/stderr as text without colour codes."""
    p = subprocess.run(cli_command(*args), cwd=cwd, env=cli_env(), capture_output=True, text=True,
                       timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, ANSI.sub("", p.stdout), ANSI.sub("", p.stderr))


def temp_files(folder: Path) -> list[Path]:
    """Temporary files left by an interrupted atomic write (genforge.core.io names them ``.NAME.*.tmp*``)."""
    return [p for p in Path(folder).rglob("*") if ".tmp" in p.name]


def trained_run(work: Path, *args: str) -> Path:
    """Train ``work/run`` with the CLI (``genforge train ARGS -q --out work/run``) and return it."""
    res = run_cli("train", *args, "-q", "--out", work / "run", cwd=work)
    assert res.returncode == 0, res.stderr
    return work / "run"


def one_error(res: subprocess.CompletedProcess, *parts: str) -> str:
    """Assert the CLI failed with exit code 2 and one ``error:`` line holding ``parts``; return that line."""
    assert res.returncode == 2 and "Traceback" not in res.stdout + res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def _hostile_count() -> int:
    import sys

    hostile = sys.modules.get("hostile")
    return hostile.GENERATED["count"] if hostile is not None else 0


_WORKER_COUNTS: list[int] = []  # generated hostile cases reported by pytest-xdist workers


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the count to the controller
        workeroutput["hostile_cases"] = _hostile_count()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown (and fine) without pytest-xdist
def pytest_testnodedown(node, error):
    _WORKER_COUNTS.append(int(getattr(node, "workeroutput", {}).get("hostile_cases", 0)))


def pytest_terminal_summary(terminalreporter):
    """Say how many generated hostile cases ran (tests/hostile.py counts them), for the record."""
    count = _hostile_count() + sum(_WORKER_COUNTS)
    if count:
        terminalreporter.write_line(f"hostile suite: {count} generated cases through the CLI")
