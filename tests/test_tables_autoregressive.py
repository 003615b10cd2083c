"""The autoregressive table model: it learns joint structure an independent model cannot, conditions on any
column (numbers too) without rejection, imputes from the exact conditional, and its token layout is exact
where it should be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genforge
from genforge.tables.data.state import check_tokens_state
from genforge.tables.data.tokens import TableTokens

NO_RULES = {"detect_rules": False}  # what the model learns, not what decoding through the rules adds
SMALL = {"hidden_dims": (32, 32), "embedding_dim": 8, "batch_size": 128}


def xor_table(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """``c = a xor b`` (no pair of columns is correlated), ``y`` rises with ``x``, and a skewed number with a spike."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    x = rng.integers(0, 10, n)
    return pd.DataFrame({"a": np.where(a, "on", "off"), "b": np.where(b, "up", "down"),
                         "c": np.where(a ^ b, "odd", "even"), "x": x,
                         "y": np.where(rng.random(n) < x / 10, "high", "low"),
                         "amount": np.where(rng.random(n) < 0.3, 0.0, rng.lognormal(3, 1, n).round(2))})


def xor_share(df: pd.DataFrame) -> float:
    return float((((df["a"] == "on") ^ (df["b"] == "up")) == (df["c"] == "odd")).mean())


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return xor_table()


@pytest.fixture(scope="module")
def model(table):
    return genforge.create("autoregressive", **SMALL).fit(table, steps=300, seed=0, metadata=NO_RULES)


def test_it_learns_a_dependency_no_pair_of_columns_shows(model, table):
    assert xor_share(model.sample(2000, seed=0)) > 0.95
    copula = genforge.create("gaussian-copula").fit(table, metadata=NO_RULES)
    assert xor_share(copula.sample(2000, seed=0)) < 0.7  # independent-looking pairs: a copula cannot see it


def test_where_is_its_conditional_on_categories_and_numbers(model):
    s = model.sample(600, where={"c": "odd", "a": "on"}, seed=1)
    assert len(s) == 600 and (s["b"] == "down").mean() > 0.9
    lo, hi = model.sample(600, where={"x": 1}, seed=2), model.sample(600, where={"x": 9}, seed=2)
    assert (lo["x"] == 1).all() and (hi["x"] == 9).all() and lo["x"].dtype == np.int64
    assert (hi["y"] == "high").mean() - (lo["y"] == "high").mean() > 0.5


def test_impute_draws_holes_from_the_conditional(model, table):
    holes = table.head(300).copy()
    holes.loc[:149, "c"] = np.nan
    holes.loc[150:, "x"] = np.nan
    done = model.impute(holes, seed=0)
    assert done.notna().all().all()
    assert xor_share(done.head(150)) > 0.9
    pd.testing.assert_frame_equal(done.loc[150:, ["a", "b", "c", "y"]], holes.loc[150:, ["a", "b", "c", "y"]])


def test_tokens_are_exact_where_they_should_be(model, table):
    tokens = model.tokens
    spec = dict(zip(tokens.names, tokens.specs))
    assert spec["x"]["points"] == list(range(10)) and spec["x"]["edges"] == []  # few values: one token each
    assert 0.0 in spec["amount"]["points"] and len(spec["amount"]["edges"]) > 2  # the spike, then bins
    s = model.sample(3000, seed=3)
    assert abs((s["amount"] == 0.0).mean() - 0.3) < 0.05
    assert s["amount"].between(table["amount"].min(), table["amount"].max()).all()
    codes, known = tokens.encode(table)
    assert known.all() and codes.max(0).tolist() < tokens.sizes


def test_missing_cells_are_a_token_and_holes_are_never_filled_with_missing():
    df = xor_table(800, seed=1)
    df.loc[::5, "amount"] = np.nan
    m = genforge.create("autoregressive", **SMALL).fit(df, steps=150, seed=0, metadata=NO_RULES)
    share = m.sample(2000, seed=0)["amount"].isna().mean()
    assert 0.05 < share < 0.4
    assert m.impute(df.head(100), seed=0)["amount"].notna().all()


def test_a_damaged_token_layout_is_refused(model):
    state = model.tokens.to_state()
    assert check_tokens_state(state, model.transformer) == model.tokens.specs
    bad = {**state, "columns": [dict(c) for c in state["columns"]]}
    bad["columns"][5]["edges"] = bad["columns"][5]["edges"][::-1]
    with pytest.raises(ValueError, match="decrease"):
        check_tokens_state(bad, model.transformer)
    with pytest.raises(ValueError, match="not the encoded columns"):
        check_tokens_state({**state, "columns": state["columns"][1:]}, model.transformer)
    assert TableTokens(model.transformer, state["columns"]).sizes == model.tokens.sizes
