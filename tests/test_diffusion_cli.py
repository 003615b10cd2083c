"""``genforge train/sample`` with the diffusion families: the sampling flags, and bad input as one
``error:`` line, exit code 2, nothing written. Runs go through ``genforge.app.cli.main`` in-process
(the CLI's code path without an interpreter start-up per case); one case runs as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import genforge
from genforge.app.workflows import train_run
from genforge.images.imageio import to_uint8

from conftest import ANSI, one_error, run_cli

TRAIN = {"steps": 2, "progress": False, "sample_every": 10_000, "device": "cpu"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("diffusion-cli")


@pytest.fixture(scope="module")
def runs(work):
    """A conditional ddpm run (digits), an unconditional flow run and a dcgan run, each trained 2 steps."""
    np.savez(work / "unlabelled.npz", x=(np.random.default_rng(0).random((32, 8, 8)) * 255).astype(np.uint8))
    small = {"width": 8, "batch_size": 16}
    made = {}
    for key, model, data, params in (("ddpm", "ddpm", "digits", {**small, "timesteps": 50, "sampling_steps": 3}),
                                     ("flow", "flow", str(work / "unlabelled.npz"), {**small, "sampling_steps": 3}),
                                     ("dcgan", "dcgan", "digits", small)):
        run, _ = train_run(model, data, out=work / key, limit=64, params=params, train=TRAIN)
        made[key] = run.path
    return made


def cli(monkeypatch, capsys, *args) -> subprocess.CompletedProcess:
    """``genforge ARGS`` in-process; the result as a CompletedProcess (for ``one_error``)."""
    from genforge.app import cli as app

    monkeypatch.setattr(sys, "argv", ["genforge", *map(str, args)])
    code = 0
    try:
        app.main()
    except SystemExit as exit_:
        code = exit_.code or 0
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, ANSI.sub("", captured.out), ANSI.sub("", captured.err))


ERRORS = {  # name -> (arguments after 'sample RUN', the run, parts of the error line)
    "steps-zero": (["--sampling-steps", "0"], "ddpm", ["--sampling-steps", "from 1 to 50", "got 0"]),
    "steps-beyond-schedule": (["--sampling-steps", "51"], "ddpm", ["from 1 to 50", "training timesteps"]),
    "flow-steps-zero": (["--sampling-steps", "0"], "flow", ["from 1 to 1000"]),
    "guidance-negative": (["--guidance", "-1"], "ddpm", ["--guidance must be a number of 0 or more", "-1"]),
    "guidance-unconditional": (["--guidance", "2"], "flow", ["--guidance needs a class-conditional run",
                                                             "trained without labels"]),
    "label-unconditional": (["--label", "3"], "flow", ["unconditional", "trained without labels"]),
    "unknown-sampler": (["--sampler", "heun"], "ddpm", ["unknown sampler 'heun'", "ddim or ddpm"]),
    "gan-steps": (["--sampling-steps", "5"], "dcgan", ["'dcgan' draws each image in one pass", "--sampling-steps",
                                                       "ddpm, flow"]),
    "gan-guidance": (["--guidance", "2"], "dcgan", ["one pass", "--guidance", "ddpm, flow"]),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_sampling_flags_are_one_line_errors_and_write_nothing(case, runs, work, monkeypatch, capsys):
    flags, run, parts = ERRORS[case]
    out = work / f"{case}.png"
    one_error(cli(monkeypatch, capsys, "sample", runs[run], "-n", "4", "-o", out, *flags), *parts)
    assert not out.exists() and not list(work.glob(f".{case}*"))


def test_sampling_flags_steer_the_draw(runs, work, monkeypatch, capsys):
    res = cli(monkeypatch, capsys, "sample", runs["ddpm"], "-n", "20", "-o", work / "guided.npz", "--seed", "1",
              "--sampling-steps", "4", "--guidance", "2", "--label", "7")
    assert res.returncode == 0, res.stderr
    assert "wrote 20 images from ddpm" in res.stdout
    with np.load(work / "guided.npz") as f:
        assert f["x"].shape == (20, 8, 8, 1) and set(f["y"].tolist()) == {7}
        guided = f["x"]
    model = genforge.load(runs["ddpm"])
    expected = model.sample(20, labels=7, seed=1, sampling_steps=4, guidance=2.0)
    assert np.array_equal(guided, to_uint8(expected))  # the flags reach model.sample unchanged
    res = cli(monkeypatch, capsys, "sample", runs["flow"], "-n", "8", "-o", work / "heun.png", "--sampler", "heun",
              "--sampling-steps", "2")
    assert res.returncode == 0 and (work / "heun.png").is_file(), res.stderr


def test_an_image_size_the_unet_cannot_halve_is_refused_before_the_run_exists(work):
    res = run_cli("train", "--data", "digits", "--model", "ddpm", "--size", "30", "--limit", "32", "--steps", "1",
                  "--out", work / "size30", "-q", cwd=work)
    one_error(res, "image size 30x30 cannot be halved 2 times", "multiples of 4", "--size")
    assert not (work / "size30").exists()
