"""The ``genforge`` command: happy paths in-process (CliRunner), error paths through ``main``.

Every error path must exit with code 2, print exactly one ``error: ...`` line on stderr
that names the problem, show no traceback and leave no half-written files behind. The
cases the spec lists run as real subprocesses (``python -m genforge.app.cli``), started four
at a time by one module fixture; a few more run in-process through ``genforge.app.cli.main``,
the same code path without the interpreter start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import genforge
from genforge.app.cli import app

from conftest import ANSI, cli_command, cli_env

runner = CliRunner()


def invoke(*args):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (res.output, res.exception)
    return res


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def dcgan_run(work) -> Path:
    out = work / "runs" / "dcgan-run"
    res = invoke("train", "--data", "digits", "--model", "dcgan", "--steps", 30, "--out", out, "-q",
                 "--set", "width=8", "--limit", 200)
    assert "training done: 30 steps" in res.output
    return out


@pytest.fixture(scope="module")
def cgan_run(work) -> Path:
    out = work / "runs" / "cgan-run"
    invoke("train", "--data", "digits", "--model", "cgan", "--steps", 20, "--out", out, "-q",
           "--set", "width=8", "--batch-size", 16, "--limit", 200)
    return out


# -- happy paths (in-process) ------------------------------------------------------------------------
def test_models_lists_all_families():
    from genforge.core import registry

    res = invoke("models")
    names = [name for name, _ in registry.available()]
    assert len(names) >= 8  # the registry's exact list is checked in test_models.py
    for name in names:
        assert name in res.output


def test_train_writes_a_run_directory(dcgan_run):
    for name in ("config.yaml", "model.safetensors", "checkpoint.safetensors", "summary.json", "samples/latest.png"):
        assert (dcgan_run / name).is_file(), name
    summary = json.loads((dcgan_run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 30 and summary["model"] == "dcgan"
    assert genforge.load(dcgan_run).config.width == 8  # --set reached the model


def test_train_options_reach_the_config(work):
    import yaml

    out = work / "opts"
    invoke("train", "-d", "digits", "-m", "mlp-gan", "--steps", 4, "-o", out, "-q", "--limit", 64,
           "--lr", "1e-3", "--loss", "hinge", "--batch-size", 8, "--set", "z-dim=16", "--seed", 5)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    mc = cfg["model_config"]
    assert (mc["lr"], mc["loss"], mc["batch_size"], mc["z_dim"]) == (1e-3, "hinge", 8, 16)
    assert cfg["train"]["seed"] == 5 and cfg["train"]["steps"] == 4 and cfg["data"]["limit"] == 64


def test_runs_lists_the_run(dcgan_run):
    res = invoke("runs", dcgan_run.parent)
    # the folder is named once; each run's name stays on one line, even in an 80-column terminal
    assert str(dcgan_run.parent) in res.output.replace("\n", "")
    assert any(line.split()[:1] == [dcgan_run.name] for line in res.output.splitlines())
    assert "dcgan" in res.output and "finished" in res.output and "30" in res.output


def test_runs_on_an_empty_folder(work):
    (work / "no-runs").mkdir()
    assert "no runs under" in invoke("runs", work / "no-runs").output


def test_sample_npz(dcgan_run, work):
    out = work / "s.npz"
    res = invoke("sample", dcgan_run, "-n", 10, "-o", out)
    assert "wrote 10 images" in res.output
    with np.load(out) as f:
        assert f["x"].shape == (10, 8, 8, 1) and f["x"].dtype == np.uint8
        assert "y" not in f.files
    assert genforge.load_images(out).x.shape == (10, 1, 8, 8)  # readable as a data set again


def test_sample_png_folder(dcgan_run, work):
    invoke("sample", dcgan_run, "-n", 10, "-o", f"{work / 'pngs'}/")
    files = sorted((work / "pngs").glob("*.png"))
    assert len(files) == 10
    with Image.open(files[0]) as im:
        assert im.size == (8, 8)


def test_sample_grid(dcgan_run, work):
    invoke("sample", dcgan_run, "-n", 16, "-o", work / "grid.png")
    with Image.open(work / "grid.png") as im:
        assert im.format == "PNG" and im.size[0] > 4 * 8


def test_sample_seed_is_reproducible(dcgan_run, work):
    def draw(name, seed):
        invoke("sample", dcgan_run, "-n", 6, "-o", work / name, "--seed", seed)
        with np.load(work / name) as f:
            return f["x"]

    assert np.array_equal(draw("a.npz", 3), draw("b.npz", 3))
    assert not np.array_equal(draw("a.npz", 3), draw("c.npz", 4))


def test_sample_by_label(cgan_run, work):
    invoke("sample", cgan_run, "-n", 10, "-o", work / "three.npz", "--label", 3, "--seed", 0)
    with np.load(work / "three.npz") as f:
        assert f["x"].shape == (10, 8, 8, 1) and f["y"].tolist() == [3] * 10
    invoke("sample", cgan_run, "-n", 10, "-o", work / "every.npz", "--seed", 0)
    with np.load(work / "every.npz") as f:
        assert f["y"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        assert not np.array_equal(f["x"], np.load(work / "three.npz")["x"])
    invoke("sample", cgan_run, "-n", 4, "-o", f"{work / 'by-class'}/", "--label", 7)
    assert files_under(work / "by-class") == ["7", "7/000000.png", "7/000001.png", "7/000002.png", "7/000003.png"]


# -- error paths ------------------------------------------------------------------------------------
def _png(path: Path, size: int, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size), value, np.uint8)).save(path)


@pytest.fixture(scope="module")
def bad_inputs(work) -> Path:
    """A folder of broken inputs; every error case below works inside it."""
    w = work / "bad"
    (w / "empty").mkdir(parents=True)
    (w / "idx").mkdir()
    (w / "idx" / "train-images-idx3-ubyte").write_bytes(b"this is not an IDX file at all" * 4)
    _png(w / "badpng" / "a.png", 8)
    (w / "badpng" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    _png(w / "mixed" / "a.png", 8)
    _png(w / "mixed" / "b.png", 12)
    (w / "a-file.txt").write_text("hello")
    (w / "full").mkdir()
    (w / "full" / "keep.txt").write_text("mine")
    return w


@pytest.fixture(scope="module")
def before(bad_inputs) -> set[str]:
    return set(files_under(bad_inputs))


def _fill(args, w, dcgan_run, cgan_run) -> list[str]:
    return [a.format(w=w, run=dcgan_run, cgan=cgan_run) for a in args]


SMALL_TRAIN = ["--steps", "5", "-q", "--set", "width=8", "--batch-size", "8"]

# name -> (arguments, substrings the error line must contain); run as real subprocesses
ERRORS = {
    "missing-data": (["train", "--data", "{w}/nope", "--out", "{w}/o-missing", "-q"],
                     ["data path", "nope", "does not exist"]),
    "empty-folder": (["train", "--data", "{w}/empty", "--out", "{w}/o-empty", "-q"],
                     ["no images found", "empty"]),
    "corrupt-idx": (["train", "--data", "{w}/idx", "--out", "{w}/o-idx", "-q"],
                    ["train-images-idx3-ubyte", "not a valid IDX file"]),
    "corrupt-png": (["train", "--data", "{w}/badpng", "--out", "{w}/o-png", "-q"],
                    ["cannot read image", "b.png"]),
    "mixed-sizes": (["train", "--data", "{w}/mixed", "--out", "{w}/o-mixed", "-q"],
                    ["different sizes", "8x8", "12x12", "--size"]),
    "unknown-model": (["train", "--data", "digits", "--model", "dcgn", "--out", "{w}/o-model", "-q"],
                      ["unknown model 'dcgn'", "did you mean 'dcgan'"]),
    "unknown-set": (["train", "--data", "digits", "--set", "colour=3", "--out", "{w}/o-set", "-q"],
                    ["unknown option 'colour'"]),
    "out-not-empty": (["train", "--data", "digits", "--out", "{w}/full", "-q"],
                      ["full", "not empty", "--resume"]),
    "label-unconditional": (["sample", "{run}", "-n", "4", "--label", "3", "-o", "{w}/lab.npz"],
                            ["unconditional", "cgan or cvae"]),
    "n-zero": (["sample", "{run}", "-n", "0", "-o", "{w}/zero.npz"], ["-n must be a positive", "0"]),
    "run-empty-dir": (["sample", "{w}/empty", "-n", "4", "-o", "{w}/e.npz"], ["not a genforge run directory"]),
    "run-is-file": (["sample", "{w}/a-file.txt", "-n", "4", "-o", "{w}/f.npz"],
                    ["a-file.txt", "not a genforge run directory"]),
    "bad-suffix": (["sample", "{run}", "-n", "4", "-o", "{w}/x.txt"], ["cannot write samples to", "x.txt"]),
}
# ... and these in-process through genforge.app.cli.main (the same code path, without interpreter start-up)
IN_PROCESS_ERRORS = {
    "no-data": (["train", "--out", "{w}/o-nodata", "-q"], ["--data is required"]),
    "bracket-path": (["train", "--data", "{w}/imgs[/b]", "--out", "{w}/o-bracket", "-q"],
                     ["imgs[/b]", "does not exist"]),
    "bad-set-syntax": (["train", "--data", "digits", "--set", "lr", "--out", "{w}/o-syntax", "-q"],
                       ["--set expects key=value"]),
    "bad-lr": (["train", "--data", "digits", "--lr", "-1", "--out", "{w}/o-lr", "-q"], ["invalid value for 'lr'"]),
    "bad-loss": (["train", "--data", "digits", "--loss", "l2", "--out", "{w}/o-loss", "-q"],
                 ["invalid value for 'loss'"]),
    "resume-not-a-run": (["train", "--resume", "{w}/empty", "-q"], ["not a genforge run directory"]),
    "diverged": (["train", "--data", "digits", "--limit", "64", "--model", "mlp-gan", "--loss", "wgan-gp",
                  "--lr", "1e6", "--steps", "100", "--batch-size", "16", "--out", "{w}/o-div", "-q"],
                 ["training diverged", "lower learning rate"]),
    "label-out-of-range": (["sample", "{cgan}", "-n", "4", "--label", "12", "-o", "{w}/range.npz"],
                           ["label 12 is out of range"]),
    "label-unknown-name": (["sample", "{cgan}", "-n", "4", "--label", "seven", "-o", "{w}/name.npz"],
                           ["unknown label 'seven'"]),
    "run-missing": (["sample", "{w}/no-such-run", "-n", "4", "-o", "{w}/m.npz"], ["does not exist"]),
    "precision-fp16": (["train", "--data", "digits", "--precision", "fp16", "--out", "{w}/o-fp16", "-q"],
                       ["--precision fp16", "use --precision bf16"]),
    "nproc-zero": (["train", "--data", "digits", "--nproc", "0", "--out", "{w}/o-nproc", "-q"],
                   ["--nproc must be at least 1"]),
    "table-flag-for-images": (["train", "--data", "digits", "--table", "t", "--out", "{w}/o-tableflag", "-q"],
                              ["--table does not apply to 'dcgan'", "tables only"]),
    "encoding-for-images": (["evaluate", "{cgan}", "--encoding", "latin-1", "--out", "{w}/o-enc"],
                            ["--encoding is for tables"]),
    "nproc-for-copula": (["train", "--data", "customers", "--model", "gaussian-copula", "--nproc", "2", "--out",
                          "{w}/o-copula"], ["fits in one pass", "--nproc"]),
    "size-too-small-for-conv": (["train", "--data", "digits", "--size", "6", "--out", "{w}/o-size6", "-q"],
                                ["at least 8x8"]),
}
if not torch.cuda.is_available():  # on a GPU machine this trains
    IN_PROCESS_ERRORS["device-cuda-without-gpu"] = (
        ["train", "--data", "digits", "--device", "cuda", "--out", "{w}/o-cuda", "-q"], ["no CUDA GPU", "--device cpu"])
SUCCESSES = {
    "quickstart": ["quickstart", "--steps", "20", "--out", "{w}/qs"],
    "mixed-with-size": ["train", "--data", "{w}/mixed", "--size", "8", "--out", "{w}/o-sized", *SMALL_TRAIN],
}


@pytest.fixture(scope="module")
def cli_results(bad_inputs, before, dcgan_run, cgan_run):
    """Run every subprocess case (4 at a time) and keep the results."""
    jobs = {**{k: v[0] for k, v in ERRORS.items()}, **SUCCESSES}

    def run(args):
        p = subprocess.run(cli_command(*_fill(args, bad_inputs, dcgan_run, cgan_run)), cwd=bad_inputs,
                           env=cli_env(), capture_output=True, text=True, timeout=300)
        return subprocess.CompletedProcess(p.args, p.returncode, ANSI.sub("", p.stdout), ANSI.sub("", p.stderr))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(jobs, pool.map(run, jobs.values())))


def check_error(code, stdout: str, stderr: str, parts) -> None:
    assert code == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_in_subprocess(cli_results, case):
    res = cli_results[case]
    check_error(res.returncode, res.stdout, res.stderr, ERRORS[case][1])


@pytest.mark.parametrize("case", sorted(IN_PROCESS_ERRORS))
def test_error_in_process(case, bad_inputs, before, dcgan_run, cgan_run, monkeypatch, capsys):
    from genforge.app import cli

    args, parts = IN_PROCESS_ERRORS[case]
    monkeypatch.chdir(bad_inputs)
    monkeypatch.setattr(sys, "argv", ["genforge", *_fill(args, bad_inputs, dcgan_run, cgan_run)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    check_error(info.value.code, captured.out, ANSI.sub("", captured.err), parts)


def test_errors_leave_no_files_behind(cli_results, bad_inputs, before):
    made = set(files_under(bad_inputs)) - before
    # only the two successful runs and the run that diverged mid-training wrote anything
    assert {p for p in made if p.split("/")[0] not in ("qs", "o-sized", "o-div")} == set()
    assert files_under(bad_inputs / "full") == ["keep.txt"]
    assert (bad_inputs / "full" / "keep.txt").read_text() == "mine"
    assert not (bad_inputs / "runs").exists()  # nothing fell back to the default root
    assert not [p for p in made if ".tmp" in p]


def test_diverged_run_keeps_its_record(bad_inputs):
    if not (bad_inputs / "o-div").exists():
        pytest.skip("runs with the in-process 'diverged' case")
    summary = json.loads((bad_inputs / "o-div" / "summary.json").read_text())
    assert summary["status"] == "diverged"


def test_mixed_sizes_train_with_size(cli_results, bad_inputs):
    res = cli_results["mixed-with-size"]
    assert res.returncode == 0, res.stderr
    summary = json.loads((bad_inputs / "o-sized" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 5
    assert genforge.load(bad_inputs / "o-sized").config.image_shape == (1, 8, 8)


def test_quickstart(cli_results, bad_inputs):
    res = cli_results["quickstart"]
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    qs = bad_inputs / "qs"
    out = " ".join(res.stdout.split())
    assert f"run directory : {qs}" in out
    assert f"sample grid : {qs / 'samples' / 'latest.png'}" in out
    assert (qs / "samples" / "latest.png").is_file()
    summary = json.loads((qs / "summary.json").read_text())
    assert summary["model"] == "cgan" and summary["step"] == 20 and summary["status"] == "finished"
