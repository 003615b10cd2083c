"""config.yaml has one shape, written by one function, whoever makes the run (CLI, Python fit, save)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

import genforge
from genforge.app.workflows import evaluate_run, resume_run, train_run
from genforge.core.errors import ConfigError

from conftest import run_cli

KEYS = ["genforge", "model", "model_config", "train", "data"]


def config(run) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_a_run_made_from_python_resumes_from_the_cli(tmp_path):
    run = tmp_path / "py-run"
    genforge.create("mlp-gan", batch_size=16).fit(genforge.load_images("digits", limit=128), steps=20, run_dir=run,
                                                   checkpoint_every=10)
    cfg = config(run)
    assert list(cfg) == KEYS and cfg["data"]["path"] == "digits" and cfg["data"]["limit"] == 128
    res = run_cli("train", "--resume", run, "--steps", "30", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "summary.json").read_text())["step"] == 30


def test_every_writer_gives_the_same_shape(tmp_path):
    cli_run, _ = train_run("mlp-gan", "digits", out=tmp_path / "cli", limit=64,
                           train={"steps": 2, "progress": False})
    model = genforge.create("gaussian-copula").fit("customers", run_dir=tmp_path / "fit")
    saved = model.save(tmp_path / "saved")
    resume_run(cli_run.path, steps=3, progress=False)
    for run in (tmp_path / "cli", tmp_path / "fit", saved):
        assert list(config(run)) == KEYS, run
    assert config(tmp_path / "cli")["train"]["steps"] == 3
    assert config(tmp_path / "fit")["data"]["path"] == "customers"


def test_data_given_in_memory_is_recorded_and_resume_says_what_to_do(tmp_path):
    df = pd.DataFrame({"a": [1, 2, 3, 4] * 25, "b": ["x", "y"] * 50})
    genforge.create("tvae", batch_size=20).fit(df, steps=4, run_dir=tmp_path / "mem", checkpoint_every=2)
    assert config(tmp_path / "mem")["data"] == {"kind": "table", "source": "DataFrame"}
    with pytest.raises(ConfigError, match="data given in memory from Python"):
        resume_run(tmp_path / "mem", steps=6, progress=False)
    with pytest.raises(ConfigError, match="does not record its training table"):
        evaluate_run(tmp_path / "mem")
