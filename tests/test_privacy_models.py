"""mst (smartnoise-synth) as a genforge table model: fits with its budget, saves without pickle, samples the
same after loading, refuses what it cannot do."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genforge
from genforge.core.errors import ConfigError


@pytest.fixture(scope="module")
def small_table():
    rng = np.random.default_rng(0)
    n = 300
    a = rng.choice(["x", "y", "z"], n)
    return pd.DataFrame({"a": a, "b": np.where(a == "x", rng.integers(0, 3, n), 2), "v": rng.normal(50, 10, n).round(1)})


DOMAIN = {"columns": {"a": {"categories": ["x", "y", "z"]}, "b": {"min": 0, "max": 2}, "v": {"min": 0, "max": 100}}}


def test_mst_fits_saves_and_samples_the_same_after_loading(small_table, tmp_path):
    model = genforge.create("mst", bins=8).fit(small_table, dp="epsilon=2,delta=1e-4", run_dir=tmp_path / "m",
                                               metadata=DOMAIN)  # the domain given: the whole budget to MST
    rows = model.sample(50, seed=3)
    assert list(rows.columns) == ["a", "b", "v"] and rows.dtypes.tolist() == small_table.dtypes.tolist()
    assert set(rows["a"]) <= {"x", "y", "z"} and rows["v"].between(0, 100).all()
    loaded = genforge.load(tmp_path / "m")
    assert loaded.sample(50, seed=3).equals(rows)
    summary = (tmp_path / "m" / "summary.json").read_text()
    assert '"epsilon_spent": 2.0' in summary and "MST" in summary and "epsilon=2," in summary
    with pytest.raises(ConfigError, match="cannot condition"):
        loaded.sample(5, where={"a": "x"})


def test_mst_without_a_budget_is_refused_before_training(small_table, tmp_path):
    with pytest.raises(ConfigError, match="needs a budget"):
        genforge.create("mst").fit(small_table, run_dir=tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_mst_names_the_columns_it_cannot_model():
    df = pd.DataFrame({"when": pd.date_range("2020-01-01", periods=50).strftime("%Y-%m-%d"), "k": ["a", "b"] * 25})
    with pytest.raises(ConfigError, match="when is datetime"):
        genforge.create("mst").fit(df, dp="epsilon=2,delta=1e-4")


@pytest.mark.slow
def test_aim_fits_and_samples(small_table):
    rows = genforge.create("aim", bins=4).fit(small_table, dp="epsilon=2,delta=1e-4").sample(20, seed=0)
    assert len(rows) == 20


def test_aim_with_few_rounds_learns_a_pair_and_keeps_the_domain(small_table):
    """AIM's ``rounds`` caps its select-measure rounds (each refits the graphical model), so it runs in seconds; even
    three rounds measure the pair the table depends on (b is 2 whenever a is not x; independent columns: ~0.78)."""
    model = genforge.create("aim", bins=4, rounds=3).fit(small_table, dp="epsilon=20,delta=1e-4", metadata=DOMAIN)
    rows = model.sample(1000, seed=0)
    assert len(rows) == 1000 and set(rows["a"]) == {"x", "y", "z"} and rows["v"].between(0, 100).all()
    assert (rows.loc[rows["a"] != "x", "b"] == 2).mean() > 0.9
