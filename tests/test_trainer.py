"""The Trainer and run directories: layout, seeding, exact resume, crash safety, divergence, budgets."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

import genforge
from genforge.core.errors import RunDirError, TrainingDiverged
from genforge.core.runs import RunDir, list_runs, load_tensors, save_tensors
from genforge.core.train import state as st
from genforge.app.workflows import resume_run, train_run

from conftest import SMALL, cli_command, cli_env, run_cli, temp_files

QUIET = {"progress": False}


def train(model: str, out: Path, *, steps: int = 30, seed: int = 0, **train_opts):
    opts = {"steps": steps, "seed": seed, "log_every": 5, "sample_every": 10, "checkpoint_every": 10, **QUIET,
            **train_opts}
    return train_run(model, "digits", out=out, limit=200, params=SMALL[model], train=opts)


def weights(run: RunDir | Path, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    return load_file(str(Path(getattr(run, "path", run)) / name))


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def losses_by_step(run: RunDir) -> dict[int, dict]:
    return {r["step"]: {k: v for k, v in r.items() if k not in ("step", "elapsed")} for r in run.read_metrics()}


# -- the run directory ---------------------------------------------------------------------------------
def test_run_directory_layout(tmp_path):
    run, summary = train("dcgan", tmp_path / "run", steps=30)
    p = run.path
    for name in ("config.yaml", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl", "summary.json"):
        assert (p / name).is_file(), name
    assert temp_files(p) == []

    cfg = yaml.safe_load((p / "config.yaml").read_text())
    assert cfg["model"] == "dcgan" and cfg["model_config"]["width"] == 8
    assert cfg["model_config"]["image_shape"] == [1, 8, 8]
    assert cfg["train"]["steps"] == 30 and cfg["train"]["seed"] == 0
    assert cfg["data"]["path"] == "digits" and cfg["data"]["limit"] == 200

    records = run.read_metrics()
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30]
    assert all({"d", "g", "elapsed"} <= r.keys() and math.isfinite(r["d"] + r["g"]) for r in records)
    assert len((p / "metrics.jsonl").read_text().splitlines()) == 6

    s = json.loads((p / "summary.json").read_text())
    assert s["status"] == "finished" and s["step"] == 30 and s["checkpoint_step"] == 30
    assert s == {**s, "model": "dcgan"} and set(s["losses"]) == {"d", "g"}
    assert summary["status"] == "finished" and summary["step"] == 30

    grids = sorted(f.name for f in (p / "samples").iterdir())
    assert grids == ["latest.png", "step_0000010.png", "step_0000020.png", "step_0000030.png"]
    with Image.open(p / "samples" / "latest.png") as im:
        assert im.format == "PNG" and im.size[0] > 8 * 8  # 8 columns of upscaled 8x8 images

    events = list((p / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(p / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/d")] == [5, 10, 15, 20, 25, 30]

    # the run is usable: load it, list it
    assert genforge.load(p).sample(4, seed=0).shape == (4, 1, 8, 8)
    rows = list_runs(tmp_path)
    assert [(r["path"], r["model"], r["steps"], r["status"]) for r in rows] == [(str(p), "dcgan", 30, "finished")]


def test_train_run_validates_before_creating_anything(tmp_path):
    from genforge.core.errors import ConfigError, DataError

    with pytest.raises(ConfigError):
        train_run("dcgan", "digits", out=tmp_path / "a", params={"loss": "l2"})
    with pytest.raises(ConfigError):
        train_run("dcgan", "digits", out=tmp_path / "b", train={"steps": -1})
    with pytest.raises(DataError):
        train_run("dcgan", str(tmp_path / "missing"), out=tmp_path / "c")
    with pytest.raises(ConfigError):
        train_run("dcgan", "digits", root=tmp_path / "runs", params={"colour": 1})
    assert list(tmp_path.iterdir()) == []


# -- seeds -------------------------------------------------------------------------------------------
def test_same_seed_same_weights_different_seed_different(tmp_path):
    a, _ = train("dcgan", tmp_path / "a", steps=12, seed=1)
    b, _ = train("dcgan", tmp_path / "b", steps=12, seed=1)
    c, _ = train("dcgan", tmp_path / "c", steps=12, seed=2)
    assert same_tensors(weights(a), weights(b))
    assert same_tensors(weights(a, "checkpoint.safetensors"), weights(b, "checkpoint.safetensors"))
    wc = weights(c)
    assert weights(a).keys() == wc.keys()
    assert not any(torch.equal(weights(a)[k], wc[k]) for k in wc if k.endswith("weight"))


# -- resume ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["mlp-gan", "dcgan", "cgan", "vae"])
def test_resume_is_exact(tmp_path, model):
    straight, _ = train(model, tmp_path / "straight", steps=40, checkpoint_every=20)
    part, s1 = train(model, tmp_path / "part", steps=20, checkpoint_every=20)
    assert s1["step"] == 20
    resumed, s2 = resume_run(part.path, steps=40, progress=False)
    assert s2["step"] == 40 and s2["status"] == "finished"

    assert same_tensors(weights(straight), weights(resumed))
    assert same_tensors(weights(straight, "checkpoint.safetensors"), weights(resumed, "checkpoint.safetensors"))
    m1, m2 = losses_by_step(straight), losses_by_step(resumed)
    assert sorted(m2) == list(range(5, 41, 5))  # one line per logged step, none repeated
    assert {k: m1[k] for k in m1 if k > 20} == {k: m2[k] for k in m2 if k > 20}
    assert yaml.safe_load((resumed.path / "config.yaml").read_text())["train"]["steps"] == 40
    summary = json.loads((resumed.path / "summary.json").read_text())
    assert summary["step"] == 40 and summary["elapsed"] > s1["elapsed"]  # accumulated over both parts
    assert torch.equal(genforge.load(straight.path).sample(6, seed=3), genforge.load(resumed.path).sample(6, seed=3))


def test_resume_drops_metrics_logged_after_the_checkpoint(tmp_path):
    """Lines a dying run logged after its last checkpoint are replaced on resume, not duplicated."""
    run, _ = train("vae", tmp_path / "run", steps=20, checkpoint_every=10)
    run.append_metrics({"step": 25, "elapsed": 1.0, "loss": -1.0})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 26, "loss"')  # a line cut short by the kill
    resume_run(run.path, steps=30, progress=False)
    records = run.read_metrics()
    assert [r["step"] for r in records] == [5, 10, 15, 20, 25, 30]
    assert records[4]["loss"] > 0
    assert run.metrics_path.read_text().count("\n") == 6


def test_resume_of_something_that_is_not_a_run(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        resume_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="not a genforge run directory"):
        resume_run(tmp_path / "empty")


def test_resume_after_sigkill(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "--data", "digits", "--limit", "200", "--model", "dcgan", "--set", "width=8",
            "--batch-size", "16", "--steps", "100000", "--checkpoint-every", "5", "--sample-every", "7",
            "--out", run_dir, "-q"]
    proc = subprocess.Popen(cli_command(*args), cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while not ((run_dir / "checkpoint.safetensors").exists() and (run_dir / "samples" / "latest.png").exists()):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint and sample grid within 90 s"
            time.sleep(0.05)
        time.sleep(0.3)  # let it write a few more checkpoints, grids and metric lines
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # everything that is there is readable
    run = RunDir.open(run_dir)
    assert run.read_config()["model"] == "dcgan"
    summary = run.read_summary()
    assert summary["status"] == "running"
    tensors, meta = load_tensors(run.checkpoint_path)
    assert meta["step"] % 5 == 0 and meta["step"] >= summary["checkpoint_step"] >= 5
    assert any(k.startswith("optim.G.") for k in tensors) and "rng.torch" in tensors
    assert torch.isfinite(genforge.load(run_dir).sample(4, seed=0)).all()
    assert all(isinstance(r["step"], int) for r in run.read_metrics())
    with Image.open(run.samples_dir / "latest.png") as im:
        im.load()

    # a write the kill interrupted would leave a temporary file; plant one so resume must clear it
    (run_dir / ".checkpoint.safetensors.x1y2.tmp.safetensors").write_bytes(b"half a checkpoint")
    target = meta["step"] + 15
    res = run_cli("train", "--resume", run_dir, "--steps", target, "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "resumed and done" in res.stdout and "Traceback" not in res.stdout + res.stderr
    summary = run.read_summary()
    assert summary["status"] == "finished" and summary["step"] == target
    assert load_tensors(run.checkpoint_path)[1]["step"] == target
    assert temp_files(run_dir) == []
    steps = [r["step"] for r in run.read_metrics()]
    assert steps == sorted(set(steps))


# -- divergence guard -------------------------------------------------------------------------------------
def test_divergence_guard_keeps_the_last_good_checkpoint(tmp_path, tiny_images):
    model = genforge.create("dcgan", **SMALL["dcgan"])
    real_step, calls = model.train_step, []

    def step_then_nan(x, y):
        out = real_step(x, y)
        calls.append(1)
        if len(calls) >= 13:
            out["g"] = torch.tensor(float("nan"))
        return out

    model.train_step = step_then_nan
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as info:
        model.fit(tiny_images, steps=50, run_dir=run_dir, checkpoint_every=5, log_every=5, sample_every=100)
    msg = str(info.value)
    assert "loss 'g' became nan at step 13" in msg
    assert "last good checkpoint (step 10)" in msg and str(run_dir) in msg
    assert "\n" not in msg
    assert len(calls) == 13  # stopped at once

    tensors, meta = load_tensors(run_dir / "checkpoint.safetensors")
    assert meta["step"] == 10 and all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    summary = RunDir(run_dir).read_summary()
    assert summary["status"] == "diverged" and summary["diverged_at"] == 13 and summary["checkpoint_step"] == 10
    loaded = genforge.load(run_dir)
    assert torch.isfinite(loaded.sample(4, seed=0)).all()
    assert temp_files(run_dir) == []


def test_absurd_learning_rate_diverges(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"at step \d+; no checkpoint was written.*lower learning rate"):
        train_run("mlp-gan", "digits", out=tmp_path / "run", limit=100,
                  params={"lr": 1e6, "loss": "wgan-gp", "batch_size": 16}, train={"steps": 200, **QUIET})
    assert RunDir(tmp_path / "run").read_summary()["status"] == "diverged"


# -- budgets ----------------------------------------------------------------------------------------------
def test_minutes_budget_stops_training(tmp_path):
    t0 = time.perf_counter()
    run, summary = train_run("vae", "digits", out=tmp_path / "run", limit=200, params=SMALL["vae"],
                             train={"minutes": 0.02, **QUIET})
    wall = time.perf_counter() - t0
    assert summary["status"] == "finished" and summary["step"] > 0
    assert 1.2 <= summary["elapsed"] < 6 and wall < 20
    s = run.read_summary()
    assert s["status"] == "finished" and s["step"] == summary["step"]
    assert yaml.safe_load(run.config_path.read_text())["train"]["steps"] is None


def test_steps_budget_wins_when_it_comes_first(tmp_path):
    _, summary = train_run("vae", "digits", out=tmp_path / "run", limit=50, params=SMALL["vae"],
                           train={"steps": 7, "minutes": 10, **QUIET})
    assert summary["step"] == 7


# -- file formats -------------------------------------------------------------------------------------------
def test_checkpoints_are_plain_safetensors(tmp_path):
    run, _ = train("cgan", tmp_path / "run", steps=10)
    for name in ("checkpoint.safetensors", "model.safetensors"):
        path = run.path / name
        raw = path.read_bytes()
        header_len = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8:8 + header_len])  # the safetensors header: JSON, no pickle
        assert "__metadata__" in header
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["genforge"])
            keys = set(f.keys())
        assert keys == set(header) - {"__metadata__"}
        assert raw[:2] != b"\x80\x02" and b"torch._utils" not in raw
    _, meta = load_tensors(run.checkpoint_path)
    assert meta["step"] == 10 and meta["model"] == "cgan" and set(meta["optimizers"]) == {"G", "D"}
    tensors = load_file(str(run.checkpoint_path))
    assert {k.split(".")[0] for k in tensors} >= {"G", "D", "G_ema", "optim", "rng"}
    assert {k.split(".")[0] for k in load_file(str(run.weights_path))} == {"G_ema"}


def test_damaged_weights_file_is_a_run_dir_error(tmp_path):
    run, _ = train("vae", tmp_path / "run", steps=5, checkpoint_every=5)
    run.weights_path.write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(RunDirError, match="damaged or not a genforge weights file"):
        genforge.load(run.path)


@pytest.mark.parametrize("fused", [True, False])
def test_optimizer_state_round_trips_without_pickle(tmp_path, fused):
    from genforge.core.train.optim import adam

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt = adam(net.parameters(), 1e-2, (0.5, 0.99)) if fused else torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(8, 4)
    for _ in range(3):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()

    tensors, meta = st.optimizer_to_tensors("net", opt)
    tensors.update(st.modules_to_tensors({"net": net}))
    save_tensors(tmp_path / "state.safetensors", tensors, {"opt": meta})
    json.dumps(meta)  # the non-tensor part is plain JSON
    t2, m2 = load_tensors(tmp_path / "state.safetensors")

    net2 = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt2 = adam(net2.parameters(), 1.0, (0.9, 0.9)) if fused else torch.optim.Adam(net2.parameters(), lr=1.0)
    st.tensors_to_modules(t2, {"net": net2})
    st.tensors_to_optimizer("net", opt2, t2, m2["opt"])
    sd1, sd2 = opt.state_dict(), opt2.state_dict()
    assert sd1["param_groups"] == sd2["param_groups"]
    assert sd1["state"].keys() == sd2["state"].keys()
    for pid in sd1["state"]:
        for key, val in sd1["state"][pid].items():
            assert torch.equal(torch.as_tensor(val), torch.as_tensor(sd2["state"][pid][key])), key

    for o, n in ((opt, net), (opt2, net2)):  # one more step: identical
        o.zero_grad()
        n(x).pow(2).mean().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), net2.parameters()))


def test_module_state_round_trip_is_strict():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    st.tensors_to_modules(st.modules_to_tensors({"m": a}), {"m": b})
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    with pytest.raises(RuntimeError):
        st.tensors_to_modules(st.modules_to_tensors({"m": torch.nn.Linear(3, 4)}), {"m": b})
