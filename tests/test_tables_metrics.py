"""Table evaluation: SDMetrics quality/diagnostic, train-on-synthetic-test-on-real, privacy, HTML report.

Tables of a few hundred rows drawn from a small generator with related columns; every test
runs in seconds.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from genforge.core.errors import ConfigError, DataError
from genforge.tables.metrics.report import write_table_report
from genforge.tables.data.schema import infer_schema
from genforge.tables.metrics.evaluate import evaluate_table, sdv_metadata_from_schema

METADATA = {"columns": {
    "customer_id": {"sdtype": "id"},
    "age": {"sdtype": "numerical"},
    "hours": {"sdtype": "numerical"},
    "sex": {"sdtype": "categorical"},
    "grade": {"sdtype": "categorical"},
    "flag": {"sdtype": "boolean"},
    "signup": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
    "spend": {"sdtype": "numerical"},
    "label": {"sdtype": "categorical"},
}}


def make_table(n: int, seed: int) -> pd.DataFrame:
    """Customers whose hours follow age, grade and label follow hours, spend follows hours."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n).round()
    hours = (age * 0.8 + rng.normal(0, 4, n)).round(1)
    grade = np.where(hours + rng.normal(0, 3, n) > 32, "high", np.where(hours > 25, "mid", "low"))
    days = (age * 10 + rng.integers(0, 50, n)).astype(int)
    signup = (pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    label = np.where((hours > 33) ^ (rng.random(n) < 0.1), "yes", "no")
    return pd.DataFrame({
        "customer_id": [f"c{seed}-{i}" for i in range(n)], "age": age, "hours": hours,
        "sex": rng.choice(["F", "M"], n), "grade": grade, "flag": rng.random(n) < 0.3, "signup": signup,
        "spend": np.exp(rng.normal(3, 0.3, n)) + 2 * hours, "label": label,
    })


@pytest.fixture(scope="module")
def tables():
    return make_table(400, 0), make_table(200, 1), make_table(400, 2)


@pytest.fixture(scope="module")
def good(tables):
    real, holdout, synthetic = tables
    return evaluate_table(real, synthetic, holdout=holdout, target="label", metadata=METADATA, seed=0)


def values(result):
    return {k: r["value"] for k, r in result["metrics"].items()}


def test_same_generator_scores_near_the_reference(good):
    m = good["metrics"]
    assert m["quality"]["value"] > 0.85 and m["quality"]["reference"] > 0.85
    assert abs(m["quality"]["value"] - m["quality"]["reference"]) < 0.05
    assert m["diagnostic"]["value"] > 0.95
    assert m["exact_copies"]["value"] == 0.0
    assert 0.6 < m["dcr"]["value"] / m["dcr"]["reference"] < 1.6
    for row in m.values():
        assert set(row) >= {"value", "reference", "explain", "better"} and row["explain"]
    assert {c["column"] for c in good["columns"]} == set(METADATA["columns"]) - {"customer_id"}
    assert all(0 <= c["score"] <= 1 for c in good["columns"])
    assert good["n_real"] == 400 and good["n_synthetic"] == 400 and good["n_holdout"] == 200
    assert good["holdout"] == "given holdout table" and good["target"] == "label"
    json.dumps(good)  # plain JSON-able


def test_garbage_synthetic_scores_clearly_lower(tables, good):
    real, holdout, synthetic = tables
    rng = np.random.default_rng(5)
    permuted = synthetic.copy()
    for c in permuted.columns:  # same marginals, every relation between columns destroyed
        permuted[c] = rng.permutation(permuted[c].to_numpy())
    noise = synthetic.copy()
    for c in ("age", "hours", "spend"):
        noise[c] = rng.uniform(-100, 300, len(noise))
    r_perm = evaluate_table(real, permuted, holdout=holdout, metadata=METADATA)
    r_noise = evaluate_table(real, noise, holdout=holdout, metadata=METADATA)
    g = values(good)
    assert values(r_perm)["column_pair_trends"] < g["column_pair_trends"] - 0.15
    assert values(r_perm)["column_shapes"] > g["column_shapes"] - 0.05   # marginals kept
    assert values(r_noise)["column_shapes"] < g["column_shapes"] - 0.15
    assert values(r_noise)["quality"] < g["quality"] - 0.1
    assert values(r_noise)["diagnostic"] < g["diagnostic"] - 0.1          # out-of-range numbers


def test_copied_rows_are_flagged(tables):
    real, holdout, _ = tables
    copy = real.sample(frac=1.0, random_state=3)
    r = evaluate_table(real, copy, holdout=holdout, target="label", metadata=METADATA)
    m = r["metrics"]
    assert m["exact_copies"]["value"] == pytest.approx(1.0)
    assert m["exact_copies"]["reference"] == 0.0
    assert m["dcr"]["value"] == pytest.approx(0.0, abs=1e-6) and m["dcr"]["reference"] > 0.01
    assert m["dcr_5th_percentile"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert m["nndr"]["value"] == pytest.approx(0.0, abs=1e-6) and m["nndr"]["reference"] > 0.3
    # a copy of the real rows trains as good a classifier as the real rows
    assert m["tstr_accuracy"]["value"] == pytest.approx(m["tstr_accuracy"]["reference"], abs=0.03)
    assert m["tstr_accuracy"]["reference"] > 0.8


def test_label_shuffled_synthetic_is_useless_for_training(tables, good):
    real, holdout, synthetic = tables
    shuffled = synthetic.copy()
    shuffled["label"] = np.random.default_rng(7).permutation(shuffled["label"].to_numpy())
    r = evaluate_table(real, shuffled, holdout=holdout, target="label", metadata=METADATA)
    m = r["metrics"]
    assert m["tstr_accuracy"]["value"] < m["tstr_accuracy"]["reference"] - 0.15
    assert m["tstr_auc"]["value"] < 0.7 < m["tstr_auc"]["reference"]
    assert good["metrics"]["tstr_auc"]["value"] > 0.8
    assert 0 <= m["tstr_f1"]["value"] <= 1


def test_regression_target_and_default_holdout(tables):
    real, _, synthetic = tables
    r = evaluate_table(real, synthetic, target="spend", seed=1)  # metadata inferred, holdout split off
    m = r["metrics"]
    assert "tstr_r2" in m and "tstr_accuracy" not in m
    assert m["tstr_r2"]["reference"] > 0.3 and m["tstr_r2"]["value"] > 0.3
    assert r["holdout"] == "20% of real, seeded split"
    assert r["n_holdout"] == 80 and r["n_real"] == 320
    meta = r["metadata"]["columns"]
    assert meta["customer_id"]["sdtype"] == "id" and meta["flag"]["sdtype"] == "boolean"
    assert meta["signup"] == {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"}
    assert meta["sex"]["sdtype"] == "categorical" and meta["age"]["sdtype"] == "numerical"


def test_errors(tables):
    real, holdout, synthetic = tables
    with pytest.raises(DataError, match="missing columns spend.*extra columns bogus"):
        evaluate_table(real, synthetic.drop(columns="spend").assign(bogus=1), metadata=METADATA)
    with pytest.raises(DataError, match="empty"):
        evaluate_table(real, synthetic.iloc[:0], metadata=METADATA)
    with pytest.raises(ConfigError, match="'income'.*age"):
        evaluate_table(real, synthetic, target="income", metadata=METADATA)
    with pytest.raises(DataError, match="holdout.*missing columns age"):
        evaluate_table(real, synthetic, holdout=holdout.drop(columns="age"), metadata=METADATA)


def test_deterministic(tables):
    real, _, synthetic = tables
    a = evaluate_table(real.iloc[:200], synthetic.iloc[:200], target="label", metadata=METADATA, seed=3, max_rows=150)
    b = evaluate_table(real.iloc[:200], synthetic.iloc[:200], target="label", metadata=METADATA, seed=3, max_rows=150)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_metadata_from_schema():
    col = lambda name, kind, fmt=None: SimpleNamespace(name=name, kind=kind, datetime_format=fmt)  # noqa: E731
    schema = SimpleNamespace(columns=[col("a", "continuous"), col("b", "integer"), col("c", "categorical"),
                                      col("d", "boolean"), col("e", "datetime", "%d/%m/%Y"), col("f", "id"),
                                      col("g", "text")])
    assert sdv_metadata_from_schema(schema) == {"columns": {
        "a": {"sdtype": "numerical"}, "b": {"sdtype": "numerical"}, "c": {"sdtype": "categorical"},
        "d": {"sdtype": "boolean"}, "e": {"sdtype": "datetime", "datetime_format": "%d/%m/%Y"},
        "f": {"sdtype": "id"}}}
    # metadata inferred without a schema file: the training schema rules (codes are ids from 50 values)
    df = pd.DataFrame({"x": [1.5, 2.0] * 30, "y": ["a", "b"] * 30, "z": [f"id{i}" for i in range(60)]})
    assert sdv_metadata_from_schema(infer_schema(df)) == {"columns": {"x": {"sdtype": "numerical"}, "y": {"sdtype": "categorical"},
                                              "z": {"sdtype": "id"}}}


def test_html_report(tables, good, tmp_path):
    real, _, synthetic = tables
    path = write_table_report(tmp_path / "report.html", good, real, synthetic, title="customers", metadata=METADATA)
    html = path.read_text(encoding="utf-8")
    assert "customers" in html
    for name in ("quality", "column_pair_trends", "diagnostic", "tstr_auc", "dcr", "exact_copies"):
        assert f"<td>{name}</td>" in html
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) >= 3
    assert "http://" not in html and "https://" not in html  # opens offline: nothing fetched
    assert not list(tmp_path.glob(".*.tmp*"))                 # atomic write left no temp file
