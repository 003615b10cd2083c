"""Privacy attacks: a generator that copies its training rows is caught (AUC near 1), an independent sample
is not (near 0.5), the reference (a real holdout copy) reads no leakage; bad --sensitive use is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genforge.core.errors import ConfigError, GenforgeWarning
from genforge.tables.data.schema import infer_schema
from genforge.tables.metrics.attacks import anonymeter_risks, membership_attacks
from genforge.tables.metrics.evaluate import evaluate_table, sdv_metadata_from_schema


def _table(rng, n):
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("xyz"), n),
                         "d": rng.integers(0, 5, n)})


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    real, holdout, fresh = _table(rng, 600), _table(rng, 600), _table(rng, 600)
    return real, holdout, fresh, sdv_metadata_from_schema(infer_schema(real))["columns"]


def test_copying_generator_is_caught_and_an_independent_sample_is_not(tables):
    real, holdout, fresh, cols = tables
    copied = membership_attacks(real, real, holdout, cols)
    independent = membership_attacks(real, fresh, holdout, cols)
    assert copied["mia_distance_auc"]["value"] > 0.95
    assert copied["mia_density_auc"]["value"] > 0.9
    for name in ("mia_distance_auc", "mia_density_auc"):
        assert abs(independent[name]["value"] - 0.5) < 0.1
        assert abs(copied[name]["reference"] - 0.5) < 0.1  # a real holdout copy leaks nothing


def test_anonymeter_risks_are_high_for_copies_and_low_for_the_reference(tables):
    real, holdout, _, cols = tables
    risks = anonymeter_risks(real, real, holdout, ["c"], cols, n_attacks=60)
    assert risks["inference_risk[c]"]["value"] > 0.5
    assert risks["singling_out_risk"]["value"] > risks["singling_out_risk"]["reference"]


def test_evaluate_reports_attacks_only_against_a_given_holdout_and_warns_on_overlap(tables):
    real, holdout, fresh, _ = tables
    with pytest.warns(GenforgeWarning, match="of the holdout rows are identical to training rows"):
        result = evaluate_table(real, fresh, holdout=pd.concat([holdout, real.head(60)]), max_rows=2000)
    assert "mia_distance_auc" in result["metrics"]
    assert "mia_distance_auc" not in evaluate_table(real, fresh, max_rows=2000)["metrics"]
    with pytest.raises(ConfigError, match="needs --real"):
        evaluate_table(real, fresh, sensitive=["c"])
    with pytest.raises(ConfigError, match="not in the table"):
        evaluate_table(real, fresh, holdout=holdout, sensitive=["nope"])

