"""The hostile-input suite: generated run-directory files, ``--where`` strings, table cells and CLI
arguments thrown at the real commands (in this process, through ``genforge.app.cli.main``).

Every case asserts the promise of :mod:`hostile`: exit code 0 or 2 with one ``error:`` line, no
traceback, nothing half-written, no input file changed. Hypothesis generates the inputs with a fixed
seed (``derandomize``), so a failure reproduces; the number of generated cases is printed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

from genforge.app.workflows import train_run
from genforge.tables.data.where import parse_where
from hostile import GENERATED, assert_kept_promise, cli, fingerprint, fresh_copy, temp_leftovers

# 40 generated cases per test in CI (about half a minute); GENFORGE_HOSTILE_EXAMPLES=500 for a deeper search
SETTINGS = settings(max_examples=int(os.environ.get("GENFORGE_HOSTILE_EXAMPLES", "40")), deadline=None,
                    derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Values a hostile hand (or a broken tool) could put anywhere in a YAML or JSON file.
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["", "-1", "1e400", "{:99999999d}", "{0.__class__}", "../../etc",
                                                    "dcgan", "uuid", "token:3", "NaN", "[1, 28, 28]"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def runs(work) -> dict[str, Path]:
    """Tiny trained runs of four kinds of model: a GAN with EMA and BatchNorm, a copula, two neural table models."""
    made = {}
    for name, model, data, params, train, extra in [
        ("dcgan", "dcgan", "digits", {"width": 8, "batch_size": 16}, {"steps": 4, "checkpoint_every": 2}, {"limit": 64}),
        ("copula", "gaussian-copula", "customers", {}, {}, {"limit": 300}),
        ("tvae", "tvae", "customers", {"batch_size": 50, "hidden_dims": (16,), "latent_dim": 4}, {"steps": 3},
         {"limit": 300}),
        ("ar", "autoregressive", "customers", {"batch_size": 50, "hidden_dims": (16,), "embedding_dim": 4},
         {"steps": 3}, {"limit": 300}),
    ]:
        run, _ = train_run(model, data, out=work / "runs" / name, params=params,
                           train={"progress": False, "sample_every": 1000, **train}, **extra)
        made[name] = run.path
    return made


def _mutate(data, tree, depth: int = 0):
    """A copy of ``tree`` with one generated change: a leaf replaced, a key dropped, or a value anywhere
    replaced by generated data."""
    if isinstance(tree, dict) and tree and depth < 6:
        key = data.draw(st.sampled_from(sorted(tree, key=str)))
        action = data.draw(st.sampled_from(["descend", "replace", "drop"]))
        out = dict(tree)
        if action == "drop":
            del out[key]
        elif action == "replace":
            out[key] = data.draw(VALUES)
        else:
            out[key] = _mutate(data, tree[key], depth + 1)
        return out
    if isinstance(tree, list) and tree and depth < 6:
        i = data.draw(st.integers(0, len(tree) - 1))
        out = list(tree)
        out[i] = _mutate(data, tree[i], depth + 1) if data.draw(st.booleans()) else data.draw(VALUES)
        return out
    return data.draw(VALUES)


def _sample_args(name: str, run: Path, out_dir: Path) -> list:
    suffix = ".npz" if name == "dcgan" else ".csv"
    return ["sample", run, "-n", 3, "-o", out_dir / f"out{suffix}", "--seed", 1]


def _check_sample(name: str, run: Path, out_dir: Path) -> None:
    """Sampling from ``run`` keeps the promise and changes nothing in the run; a failure writes nothing."""
    before = fingerprint(run)
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.iterdir():
        old.unlink()
    code, out, err = cli(*_sample_args(name, run, out_dir))
    assert_kept_promise(code, out, err)
    assert fingerprint(run) == before
    assert temp_leftovers(out_dir) == []
    if code != 0:
        assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("name", ["dcgan", "copula"])
@SETTINGS
@given(data=st.data())
def test_generated_config_files(runs, work, name, data):
    """config.yaml edited anywhere (a value replaced, a key dropped, the file replaced by other YAML)."""
    run = fresh_copy(runs[name], work / f"cfg-{name}")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if data.draw(st.integers(0, 9)) == 0:
        text = data.draw(st.one_of(st.text(max_size=200), VALUES.map(lambda v: yaml.safe_dump(v))))
    else:
        text = yaml.safe_dump(_mutate(data, cfg), allow_unicode=True)
    (run / "config.yaml").write_text(text, encoding="utf-8")
    _check_sample(name, run, work / "cfg-out")


def _rewrite_meta(path: Path, change) -> None:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["genforge"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    new = change(meta)
    save_file(tensors, str(path), metadata={"genforge": new if isinstance(new, str) else json.dumps(new)})


@pytest.mark.parametrize("name", ["dcgan", "copula", "tvae", "ar"])
@SETTINGS
@given(data=st.data())
def test_generated_weights_metadata(runs, work, name, data):
    """The JSON metadata of model.safetensors changed anywhere (a table's schema, encoding, copula...)."""
    run = fresh_copy(runs[name], work / f"meta-{name}")
    if data.draw(st.integers(0, 9)) == 0:
        _rewrite_meta(run / "model.safetensors", lambda m: data.draw(st.text(max_size=50)))
    else:
        _rewrite_meta(run / "model.safetensors", lambda m: _mutate(data, m))
    _check_sample(name, run, work / "meta-out")


WHERE_ALPHABET = st.sampled_from(list('=,"\' ') + ["sex", "Female", "Male", "country", "Germany", "city",
                                                  "is_active", "true", "churned", "yes", "age", "40", "nope", "é"])


@SETTINGS
@given(text=st.lists(WHERE_ALPHABET, max_size=12).map("".join))
def test_generated_where_strings(runs, work, text):
    """``--where`` text: a clear refusal, or exactly the rows asked for."""
    out = work / "where.csv"
    out.unlink(missing_ok=True)
    code, stdout, err = cli("sample", runs["copula"], "-n", 7, "-o", out, "--where", text, "--seed", 0)
    assert_kept_promise(code, stdout, err)
    if code == 0:
        rows = pd.read_csv(out, dtype=str, keep_default_na=False)
        for column, value in parse_where(text).items():
            assert len(rows) == 7 and (rows[column].str.lower() == str(value).lower()).all(), (column, value)
    else:
        assert not out.exists()


@SETTINGS
@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda s: s.strip() == s),
                       st.text(max_size=8).filter(lambda s: s.strip() == s), max_size=4))
def test_where_quoting_round_trips(conditions):
    """Any names and values, quoted the documented way, parse back to exactly themselves."""
    def quote(s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    GENERATED["count"] += 1
    assert parse_where(",".join(f"{quote(k)}={quote(v)}" for k, v in conditions.items())) == conditions


CELLS = (st.none() | st.integers(-10**18, 10**18) | st.floats(allow_nan=True, allow_infinity=True)
         | st.text(max_size=30) | st.sampled_from(["", "=cmd|' /C calc'!A0", "a,b", '"q"', "line\nbreak", "NaN",
                                                 "2024-13-45", "1e309", "\u202e", "true"]))


@SETTINGS
@given(st.integers(2, 3).flatmap(lambda k: st.lists(st.lists(CELLS, min_size=k, max_size=k), min_size=2,
                                                     max_size=25)),
       st.lists(st.text(max_size=6), min_size=3, max_size=3))
def test_generated_table_cells(work, rows, header):
    """A CSV of generated cells and headers: the copula learns it and samples it, or says why not."""
    k = len(rows[0])
    folder = work / "cells"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    csv = folder / "t.csv"
    pd.DataFrame(rows, columns=header[:k]).to_csv(csv, index=False)
    before = fingerprint(folder)
    code, out, err = cli("train", "--data", csv, "--model", "gaussian-copula", "--out", folder / "run", "-q")
    assert_kept_promise(code, out, err)
    if code != 0:
        assert not (folder / "run").exists()
        return
    code, out, err = cli("sample", folder / "run", "-n", 5, "-o", folder / "s.csv", "--seed", 0)
    assert_kept_promise(code, out, err)
    assert {p: h for p, h in fingerprint(folder).items() if p == "t.csv"} == before


FLAG_VALUES = {
    "--steps": st.sampled_from(["0", "-1", "2", "abc", "1e9", "3"]),
    "--minutes": st.sampled_from(["0", "-1", "0.001", "nan", "inf", "x"]),
    "--size": st.sampled_from(["0", "-8", "7", "8", "16", "100000", "1e3", "s"]),
    "--channels": st.sampled_from(["0", "1", "2", "3", "4"]),
    "--limit": st.sampled_from(["0", "-5", "16", "64", "10000000"]),
    "--batch-size": st.sampled_from(["0", "-1", "1", "8", "99999999", "z"]),
    "--lr": st.sampled_from(["0", "-1", "1e-3", "nan", "inf", "1e999"]),
    "--loss": st.sampled_from(["bce", "hinge", "wgan-gp", "l2", ""]),
    "--set": st.sampled_from(["width=8", "width=-1", "ema=2", "nope=1", "width", "=", "image_shape=[1,2,2]",
                              "beta=nan", "z_dim=0"]),
    "--seed": st.sampled_from(["0", "-1", "99999999999999999999", "x"]),
    "--threads": st.sampled_from(["0", "1", "-2"]),
    "--device": st.sampled_from(["cpu", "cuda:9", "tpu", "auto"]),
    "--precision": st.sampled_from(["fp32", "fp16", "bf16", "int8"]),
    "--table": st.sampled_from(["t", ""]),
    "--encoding": st.sampled_from(["latin-1", "utf-99", ""]),
    "--epochs": st.sampled_from(["0", "1", "-3"]),
    "--memory-limit": st.sampled_from(["1K", "8G", "lots", "0", "-1G"]),
}


@SETTINGS
@given(model=st.sampled_from(["dcgan", "mlp-gan", "cgan", "vae", "gaussian-copula", "tvae", "nope"]),
       data_name=st.sampled_from(["digits", "customers", "missing-folder", "x.csv"]),
       flags=st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=5, unique=True), data=st.data())
def test_generated_train_arguments(work, model, data_name, flags, data):
    """``genforge train`` with generated flags: trains (a few steps at most) or refuses, leaving nothing."""
    folder = work / "args"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    args = ["train", "--model", model, "--data", data_name, "--out", folder / "run", "-q", "--limit", "64"]
    for flag in flags:
        args += [flag, data.draw(FLAG_VALUES[flag])]
    args += ["--steps", "2"] if "--steps" not in flags else []
    code, out, err = cli(*args)
    assert_kept_promise(code, out, err)
    assert temp_leftovers(folder) == []
    if code != 0:
        assert not (folder / "run").exists() or not any((folder / "run").iterdir()), err


SAMPLE_FLAGS = {
    "-n": st.sampled_from(["0", "-3", "1", "5", "x", "1e3", "99999999999999"]),
    "--seed": st.sampled_from(["0", "-1", "7", "18446744073709551616", "s"]),
    "--label": st.sampled_from(["0", "2", "9", "-1", "cat", "7"]),
    "--where": st.sampled_from(["sex=Female", "sex", "a=1", ""]),
    "--sampling-steps": st.sampled_from(["0", "5", "-1"]),
    "--guidance": st.sampled_from(["-1", "0", "2"]),
    "--prompt": st.sampled_from(["", "ROMEO:"]),
    "--max-tokens": st.sampled_from(["0", "5"]),
    "--memory-limit": st.sampled_from(["64M", "2G", "x"]),
}


@SETTINGS
@given(name=st.sampled_from(["dcgan", "copula"]),
       out=st.sampled_from(["s.npz", "g.png", "pngs", "r.csv", "r.parquet", "t.jsonl", "x.txt", "noext.", "a/b.npz",
                            "config.yaml"]),
       flags=st.lists(st.sampled_from(sorted(SAMPLE_FLAGS)), max_size=3, unique=True),
       force=st.booleans(), data=st.data())
def test_generated_sample_arguments(runs, work, name, out, flags, force, data):
    """``genforge sample`` with generated flags and outputs: writes what was asked or refuses; the run and
    every other file are unchanged either way."""
    folder = work / "sample-args"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "config.yaml").write_text("a file of the user's\n")
    run = runs[name]
    before = fingerprint(run)
    args = ["sample", run, "-o", folder / out] + (["--force"] if force else [])
    for flag in flags:
        args += [flag, data.draw(SAMPLE_FLAGS[flag])]
    if "-n" not in flags:
        args += ["-n", "3"]
    code, stdout, err = cli(*args)
    assert_kept_promise(code, stdout, err)
    assert fingerprint(run) == before and temp_leftovers(folder) == []
    if not (force and out == "config.yaml"):
        assert (folder / "config.yaml").read_text() == "a file of the user's\n"
    if code != 0 and out != "config.yaml":
        assert not (folder / out).exists() and not (folder / out.rstrip(".")).exists()
