"""Under --dp a table model's schema and encoding come from noisy column histograms (or the user's metadata),
never from the rows themselves: rare values stay out, given domains are kept, and the release is paid for."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import genforge
from genforge.tables.data import private_domain as domain
from genforge.tables.data.schema import infer_schema


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 4000
    t = pd.DataFrame({"colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
                      "age": rng.integers(20, 70, n), "spend": rng.gamma(2.0, 50.0, n).round(2),
                      "zeros": np.where(rng.random(n) < 0.7, 0, rng.integers(1, 5000, n))})
    t.loc[0, "colour"], t.loc[1, "age"], t.loc[2, "spend"] = "one-of-a-kind", 1000, 1e7  # each held by one row
    return t


def test_the_threshold_keeps_a_single_rows_category_below_the_delta_it_is_given():
    sigma, delta, columns = 7.0, 1e-6, 4
    tau = domain.threshold(sigma, delta, columns)
    assert norm.sf((tau - 1) / sigma) == pytest.approx(delta / columns, rel=1e-6)
    assert domain.threshold(sigma, delta, 0) == 0.0


def test_a_value_one_row_holds_is_never_released_and_common_ones_always_are(table):
    schema = infer_schema(table)
    sigma = 10.0
    tau = domain.threshold(sigma, 1e-6, 1)
    for seed in range(20):
        rel = {r.name: r for r in domain.release(table, schema, {}, sigma, tau, np.random.default_rng(seed))}
        assert set(rel["colour"].values) == {"red", "green", "blue"}
        assert 16 <= rel["age"].lo and rel["age"].hi <= 128  # the outlier 1000 never widens the range
        assert rel["spend"].hi < 2000 and rel["zeros"].lo == 0


def test_a_private_model_holds_nothing_outside_the_release_and_says_where_its_domain_came_from(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = genforge.create("tvae", hidden_dims=(16,), latent_dim=4, batch_size=200).fit(
            table, dp="epsilon=4,delta=1e-5", epochs=1, seed=0)
    schema = model.schema
    assert set(schema["colour"].categories) == {"red", "green", "blue"}
    assert schema["age"].max < 100 and schema["spend"].max < 2000
    rows = model.sample(2000, seed=0)
    assert "one-of-a-kind" not in set(rows["colour"]) and rows["age"].max() < 100
    assert 0.0 in model.transformer._state("zeros")["points"]  # the exact zero, a bin of its own, is a point mass
    plan = model.dp_plan
    assert plan["delta_accounted"] + plan["delta_thresholding"] == pytest.approx(1e-5)
    assert "no domain came from metadata" in plan["preprocessing"]


def test_a_private_autoregressive_model_tokenises_the_release_not_the_rows(table):
    """Its numeric bins come from the stand-in table: no token edge reaches an outlier one row holds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = genforge.create("autoregressive", hidden_dims=(16,), embedding_dim=4, batch_size=200).fit(
            table, dp="epsilon=4,delta=1e-5", epochs=1, seed=0)
    specs = {s["name"]: s for s in model.tokens.specs}
    for col, outlier in (("age", 1000), ("spend", 1e7)):
        grid = np.concatenate([np.ravel(specs[col].get(k, [])) for k in ("points", "edges")])
        assert grid.max() < outlier / 5
    rows = model.sample(2000, seed=0)
    assert "one-of-a-kind" not in set(rows["colour"]) and rows["age"].max() < 100 and rows["spend"].max() < 2000
    assert model.dp_plan["private"].startswith("the column predictors")


def test_a_domain_given_in_metadata_is_kept_whole_and_costs_no_thresholding_delta(table):
    meta = {"columns": {"colour": {"categories": ["red", "green", "blue", "violet"]},
                        "age": {"min": 18, "max": 99}, "spend": {"min": 0, "max": 5000},
                        "zeros": {"min": 0, "max": 5000}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = genforge.create("ctgan", batch_size=100, pac=5, generator_dims=(16,), discriminator_dims=(16,),
                                z_dim=8).fit(table, dp="epsilon=4,delta=1e-5", epochs=1, seed=0, metadata=meta)
    assert set(model.schema["colour"].categories) == {"red", "green", "blue", "violet"}
    assert (model.schema["age"].min, model.schema["age"].max) == (18, 99)
    assert "delta_thresholding" not in model.dp_plan
    assert "colour, age, spend, zeros came from the user's metadata" in model.dp_plan["preprocessing"]
    assert set(model.sample(500, seed=1)["colour"]) <= {"red", "green", "blue", "violet"}


def test_mst_pays_for_the_domain_it_reads_from_the_rows(table):
    model = genforge.create("mst", bins=8).fit(table, dp="epsilon=3,delta=1e-5", seed=0)
    plan = model.dp_plan
    assert plan["mechanism_epsilon"] == pytest.approx(2.7) and plan["mechanism_delta"] == pytest.approx(9e-6)
    assert plan["releases"][0]["share"] == 0.1 and model.schema["age"].max < 100
    assert "one-of-a-kind" not in set(model.sample(1000, seed=0)["colour"])


def test_text_columns_are_refused_under_dp_with_the_fix(table):
    from genforge.core.errors import ConfigError

    with pytest.raises(ConfigError, match="text column.*notes.*drop it"):
        genforge.create("tvae").fit(table.assign(notes=[f"note {i} about a customer" for i in range(len(table))]),
                                    dp="epsilon=4,delta=1e-5", epochs=1)
