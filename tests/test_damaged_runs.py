"""A run directory edited or damaged by hand gives one line naming the file and the fix, never a traceback."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from safetensors.torch import load_file, save_file

from conftest import one_error, run_cli, trained_run


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("damaged"), "--data", "digits", "--limit", "64", "--model", "dcgan",
                       "--steps", "4", "--checkpoint-every", "2")


def copy_of(good, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good, run)
    return run


def edit_config(run, change) -> None:
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    change(cfg)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))


CONFIG_EDITS = {
    "model-is-a-list": (lambda c: c.update(model=["dcgan", "vae"]), ["config.yaml"]),
    "model-config-is-a-string": (lambda c: c.update(model_config="wide"), ["config.yaml", "model_config"]),
    "train-is-a-number": (lambda c: c.update(train=3), ["config.yaml", "train"]),
    "width-changed": (lambda c: c["model_config"].update(width=8), ["config.yaml", "does not match"]),
    "image-shape-changed": (lambda c: c["model_config"].update(image_shape=[1, 16, 16]), ["config.yaml"]),
    "bad-option-value": (lambda c: c["model_config"].update(loss="l2"), ["config.yaml", "loss"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_EDITS))
@pytest.mark.parametrize("command", ["sample", "resume"])
def test_an_edited_config_is_one_line(good, tmp_path, case, command):
    run = copy_of(good, tmp_path)
    change, parts = CONFIG_EDITS[case]
    edit_config(run, change)
    if command == "sample":
        res = run_cli("sample", run, "-n", "4", "-o", tmp_path / "x.npz", cwd=tmp_path)
        assert not (tmp_path / "x.npz").exists()
    else:
        res = run_cli("train", "--resume", run, "--steps", "6", "-q", cwd=tmp_path)
    one_error(res, *parts)


def _rewrite_meta(path, meta_text: str) -> None:
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata={"genforge": meta_text})


@pytest.mark.parametrize("meta", ["[1, 2]", '{"model": 5}', '{"model": "dcgan", "config": "x"}',
                                  "[" * 100000 + "]" * 100000, "not json"])
def test_damaged_weights_metadata_is_one_line(good, tmp_path, meta):
    run = copy_of(good, tmp_path)
    _rewrite_meta(run / "model.safetensors", meta)
    one_error(run_cli("sample", run, "-n", "4", "-o", tmp_path / "x.npz", cwd=tmp_path), "model.safetensors")


def test_a_malformed_yaml_is_one_short_line(good, tmp_path):
    run = copy_of(good, tmp_path)
    (run / "config.yaml").write_text("model: dcgan\nmodel_config: {width: [1, 2\n")
    msg = one_error(run_cli("sample", run, "-n", "4", "-o", tmp_path / "x.npz", cwd=tmp_path), "config.yaml")
    assert len(msg) < 300


def test_the_untouched_run_still_works(good, tmp_path):
    res = run_cli("sample", good, "-n", "4", "-o", tmp_path / "ok.npz", cwd=tmp_path)
    assert res.returncode == 0 and (tmp_path / "ok.npz").exists(), res.stderr
    assert json.loads((good / "summary.json").read_text())["step"] == 4
