"""genforge augment: the interval code on constructed cases, a tiny end-to-end run for tables and images, and
every bad input as one line before anything is written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_tiny, one_error, run_cli
from genforge.app.augment import augment
from genforge.app.stats import bootstrap_ci, scores, verdict
from genforge.core.errors import ConfigError, GenforgeWarning
from genforge.tables import load_table


def test_bootstrap_interval_on_constructed_cases():
    assert bootstrap_ci([0.3] * 5) == (0.3, 0.3, 0.3)
    mean, lo, hi = bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5], seed=1)
    assert mean == pytest.approx(0.3) and 0.1 < lo < 0.3 < hi < 0.5
    assert verdict(*bootstrap_ci([0.02, 0.03, 0.01, 0.04, 0.02])[1:]) == "helps"
    assert verdict(*bootstrap_ci([-0.02, -0.03, -0.01, -0.04])[1:]) == "hurts"
    assert verdict(*bootstrap_ci([-0.05, 0.04, -0.03, 0.05, 0.0])[1:]) == "no clear effect"
    assert verdict(*bootstrap_ci([0.02, 0.03])[1:], n=2) == "too few seeds"
    rng = np.random.default_rng(0)  # coverage: the interval holds the true mean about 95% of the time (R=20)
    hits = [lo <= 1.0 <= hi for lo, hi in (bootstrap_ci(rng.normal(1, 1, 20), seed=i)[1:] for i in range(200))]
    assert 0.85 <= np.mean(hits) <= 0.99


def test_scores_of_a_perfect_and_a_constant_classifier():
    y = np.array(["a", "a", "b", "b"])
    perfect = scores(y, y, {"a": np.array([1, 1, 0, 0.]), "b": np.array([0, 0, 1, 1.])}, ["a", "b"], False)
    assert perfect["macro_f1"] == 1 and perfect["roc_auc"] == 1 and perfect["recall[b]"] == 1
    constant = scores(y, np.array(["a"] * 4), None, ["a", "b"], False)
    assert constant["recall[b]"] == 0 and constant["accuracy"] == 0.5


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    folder = tmp_path_factory.mktemp("aug")
    df = load_table("customers")[0]
    df.iloc[:240].to_csv(folder / "train.csv", index=False)
    df.iloc[240:400].to_csv(folder / "test.csv", index=False)
    return folder


def test_tables_end_to_end(split, tmp_path):
    result, json_path, report = augment("gaussian-copula", str(split / "train.csv"), str(split / "test.csv"),
                                        target="churned", fractions=[0.5, 1], seeds=2, learners=["gb"],
                                        out=tmp_path / "out")
    saved = json.loads(json_path.read_text())
    arms = {(r["fraction"], r["arm"]) for r in saved["summary"]}
    assert arms == {(f, a) for f in (0.5, 1.0) for a in ("real", "real+synthetic", "balanced", "synthetic")}
    row = next(r for r in saved["summary"] if r["arm"] == "balanced")
    m = row["metrics"]["macro_f1"]
    assert m["low"] <= m["mean"] <= m["high"] and m["verdict"] == "too few seeds"  # 2 seeds cannot tell
    assert saved["minority"] in ("yes", "no") and saved["notes"] and report.read_text().count("<img") >= 2
    assert len(saved["records"]) == 2 * 2 * 4


def test_images_end_to_end(tmp_path, monkeypatch):
    import genforge.images.augment as kit
    from genforge.images.imageio import save_npz

    monkeypatch.setattr(kit, "CNN_STEPS", 20)
    train, test = make_tiny(60, seed=0), make_tiny(30, seed=1)
    save_npz(tmp_path / "train.npz", train.x, train.y)
    save_npz(tmp_path / "test.npz", test.x, test.y)
    result, _, _ = augment("cgan", str(tmp_path / "train.npz"), str(tmp_path / "test.npz"), fractions=[1], seeds=1,
                           params={"width": 8, "batch_size": 16}, train={"steps": 2}, out=tmp_path / "o")
    assert {r["arm"] for r in result["summary"]} == {"real", "real+synthetic", "balanced", "synthetic"}


def test_bad_inputs_are_refused_before_anything_is_written(split, tmp_path):
    train, test = str(split / "train.csv"), str(split / "test.csv")
    with pytest.raises(ConfigError, match="needs --target"):
        augment("ctgan", train, test, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="cannot sample rows of one class"):
        augment("mst", train, test, target="churned", out=tmp_path / "a")
    with pytest.raises(ConfigError, match="--fractions"):
        augment("ctgan", train, test, target="churned", fractions=[0], out=tmp_path / "a")
    with pytest.raises(ConfigError, match="unconditional"):
        augment("dcgan", "digits", "digits", out=tmp_path / "a")
    assert not (tmp_path / "a").exists()
    with pytest.warns(GenforgeWarning, match="of the test rows also appear in the training data"):
        augment("gaussian-copula", train, train, target="churned", fractions=[1], seeds=1, learners=["logreg"],
                out=tmp_path / "b")


def test_cli_without_a_target_is_one_line(split, tmp_path):
    one_error(run_cli("augment", "--data", split / "train.csv", "--test", split / "test.csv", "--model", "tvae",
                      "--out", tmp_path / "x", cwd=tmp_path), "needs --target")
