"""The table models (gaussian-copula, ctgan, tvae): fit / sample(where=) / impute / save / resume.

Every model learns from ``customers_table(400)`` once per module, with small networks and a
few epochs (the copula has no training loop). Checks are about contracts (columns, dtypes,
ranges, categories, ids, seeds, conditions, errors) plus a few loose statistical ones where
the model is cheap enough to be held to them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import genforge
from genforge.core import registry
from genforge.core.generator import NeuralGenerator
from genforge.tables.data.demo import customers_table
from genforge.core.errors import ConfigError, DataError
from genforge.tables.models.base import TableGenerator, parse_where

# name -> (small model settings, epochs); tvae gets more epochs (cheap) so it is held to the zero share
SETTINGS = {
    "gaussian-copula": ({}, None),
    "ctgan": ({"batch_size": 100, "pac": 10, "generator_dims": (64, 64), "discriminator_dims": (64, 64)}, 5),
    "tvae": ({"batch_size": 100, "hidden_dims": (64, 64), "latent_dim": 16}, 40),
    "autoregressive": ({"batch_size": 100, "hidden_dims": (64,), "embedding_dim": 8}, 15),
}
# every registered table family (a new one needs SETTINGS), but the DP mechanisms (mst, aim: no --where, no
# impute, categorical and numeric columns only, --dp required), tested in tests/test_privacy_models.py
MODELS = [n for n in registry.models_of("table") if not getattr(registry.get(n), "needs_dp", False)]
NEURAL = [n for n in MODELS if issubclass(registry.get(n), NeuralGenerator)]
CATEGORICAL = ("sex", "country", "city", "churned", "is_active")


def test_every_table_family_has_small_settings():
    assert sorted(SETTINGS) == MODELS


def create(name: str, **params):
    return genforge.create(name, **{**SETTINGS[name][0], **params})


def one_line(info) -> str:
    msg = str(info.value)
    assert "\n" not in msg and msg.strip() == msg, msg
    return msg


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return customers_table(400)


@pytest.fixture(scope="module")
def fitted(real):
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = create(name).fit(real, epochs=SETTINGS[name][1], seed=0)
        return cache[name]

    return get


@pytest.fixture(scope="module", params=MODELS)
def model(request, fitted):
    return fitted(request.param)


def check_valid(df: pd.DataFrame, real: pd.DataFrame, schema, *, allow_missing=("income", "notes")) -> None:
    """Every cell of ``df`` is one the real table could hold (types, ranges, categories, dates)."""
    assert list(df.columns) == list(real.columns)
    for col in ("age", "num_products"):
        v = df[col].dropna().to_numpy(dtype=float)
        assert np.all(v == np.round(v)), col
    for col in ("age", "income", "balance", "num_products"):
        v = df[col].dropna()
        assert v.empty or (v.min() >= real[col].min() and v.max() <= real[col].max()), col
    for col in CATEGORICAL:
        assert set(df[col].dropna()) <= set(real[col].dropna()), col
    fmt = schema["signup_date"].datetime_format
    assert fmt == "%Y-%m-%d"
    dates = pd.to_datetime(df["signup_date"].dropna(), format=fmt)  # raises if a value does not parse
    assert dates.empty or dates.min() >= pd.Timestamp(real["signup_date"].min())
    assert dates.empty or dates.max() <= pd.Timestamp(real["signup_date"].max())
    assert set(df["notes"].dropna()) <= set(real["notes"].dropna())  # text is resampled, never made up
    for col in df.columns:
        if col not in allow_missing:
            assert df[col].notna().all(), col


# ----------------------------------------------------------------------------- fit / sample


def test_sample_has_the_real_columns_dtypes_and_values(model, real):
    s = model.sample(500, seed=0)
    assert len(s) == 500 and list(s.columns) == list(real.columns)
    assert s.dtypes.to_dict() == real.dtypes.to_dict()
    check_valid(s, real, model.schema)
    assert s["customer_id"].is_unique
    assert not set(s["customer_id"]) & set(real["customer_id"])  # fresh ids, never copies of real ones
    assert s["customer_id"].str.fullmatch(r"C\d{6}").all()


def test_missing_pattern_is_reproduced(model, real):
    rate = real["income"].isna().mean()  # 7.75%
    s = model.sample(2000, seed=1)
    if model.name == "gaussian-copula":
        assert abs(s["income"].isna().mean() - rate) < 0.03
    else:
        assert s["income"].isna().any()  # learned as its own block; a few epochs are enough for it to appear
    assert s["income"].notna().mean() > 0.5
    assert abs(s["notes"].isna().mean() - real["notes"].isna().mean()) < 0.06  # text: resampled at the real rate


@pytest.mark.parametrize("name", ["gaussian-copula", "tvae", "ctgan", "autoregressive"])
def test_zero_inflated_column_keeps_its_point_mass(fitted, real, name):
    s = fitted(name).sample(2000, seed=2)
    zeros = (s["balance"] == 0.0).mean()
    assert zeros > 0  # exact 0.0 values, not values near zero
    if name != "ctgan":  # a few ctgan epochs are not held to the share
        assert abs(zeros - (real["balance"] == 0.0).mean()) < 0.12


def test_seeds_are_reproducible_and_survive_save_and_load(model, tmp_path):
    a = model.sample(300, seed=3)
    pd.testing.assert_frame_equal(a, model.sample(300, seed=3))
    assert not a.equals(model.sample(300, seed=4))
    model.save(tmp_path / "saved")
    loaded = genforge.load(tmp_path / "saved")
    assert type(loaded) is type(model)
    pd.testing.assert_frame_equal(a, loaded.sample(300, seed=3))
    pd.testing.assert_frame_equal(model.sample(50, where={"churned": "yes"}, seed=5),
                                  loaded.sample(50, where={"churned": "yes"}, seed=5))


# ----------------------------------------------------------------------------- where


def test_where_on_categories_gives_exactly_matching_rows(model, real):
    s = model.sample(200, where={"sex": "Female", "churned": "yes"}, seed=0)
    assert len(s) == 200
    assert (s["sex"] == "Female").all() and (s["churned"] == "yes").all()
    assert s.dtypes.to_dict() == real.dtypes.to_dict()
    check_valid(s, real, model.schema)
    assert s["customer_id"].is_unique


def test_where_on_a_boolean_from_text(model):
    s = model.sample(100, where=parse_where("is_active=True,sex=Male"), seed=0)
    assert s["is_active"].dtype == bool and s["is_active"].all() and (s["sex"] == "Male").all()
    s = model.sample(100, where={"is_active": False}, seed=0)
    assert not s["is_active"].any()
    for text in ("false", "FALSE", "0", "no"):  # how people type booleans on a command line
        assert not model.sample(20, where={"is_active": text}, seed=0)["is_active"].any(), text


def test_where_errors_name_the_problem(model):
    with pytest.raises(ConfigError) as info:
        model.sample(10, where={"nope": "1"})
    assert "unknown column 'nope'" in one_line(info)
    with pytest.raises(ConfigError) as info:
        model.sample(10, where={"sex": "Alien"})
    msg = one_line(info)
    assert "'Alien'" in msg and "sex" in msg and "Female" in msg
    with pytest.raises(ConfigError) as info:
        model.sample(10, where={"signup_date": "2020-01-01"})
    assert "datetime" in one_line(info)
    with pytest.raises(ConfigError):
        model.sample(0)


@pytest.mark.parametrize("name", [n for n in NEURAL if not registry.get(n).numeric_where])
def test_numeric_where_on_neural_models_points_to_the_copula(fitted, name):
    with pytest.raises(ConfigError) as info:
        fitted(name).sample(10, where={"num_products": 2})
    msg = one_line(info)
    assert "num_products" in msg and "gaussian-copula" in msg


def test_copula_honours_a_numeric_where_exactly(fitted, real):
    cop = fitted("gaussian-copula")
    for value in (2, "2"):
        s = cop.sample(300, where={"num_products": value}, seed=0)
        assert len(s) == 300 and (s["num_products"] == 2).all() and s["num_products"].dtype == np.int64
    s = cop.sample(300, where={"income": 50000.25, "sex": "Male"}, seed=0)
    assert (s["income"] == 50000.25).all() and (s["sex"] == "Male").all()
    check_valid(s, real, cop.schema)
    with pytest.raises(ConfigError) as info:
        cop.sample(10, where={"num_products": 9})  # never seen: outside 1..5
    assert "range" in one_line(info) and "1 to 5" in str(info.value)
    with pytest.raises(ConfigError) as info:
        cop.sample(10, where={"num_products": 2.5})
    assert "whole numbers" in one_line(info)
    with pytest.raises(ConfigError) as info:
        cop.sample(10, where={"age": "old"})
    assert "give a number" in one_line(info)


def test_copula_conditions_move_correlated_columns_the_real_way(fitted, real):
    """Churners have more products and are older in the real table; conditioning on churn shows it."""
    cop = fitted("gaussian-copula")
    churners = real[real["churned"] == "yes"]
    assert churners["num_products"].mean() > real["num_products"].mean() + 0.3
    assert churners["age"].mean() > real["age"].mean() + 3
    base = cop.sample(2000, seed=0)
    yes = cop.sample(2000, where={"churned": "yes"}, seed=0)
    no = cop.sample(2000, where={"churned": "no"}, seed=0)
    assert yes["num_products"].mean() > base["num_products"].mean() + 0.1 > no["num_products"].mean() + 0.1
    assert yes["age"].mean() > base["age"].mean() + 1
    # ... and a numeric condition moves the categories: many products, more churn
    many = cop.sample(2000, where={"num_products": 4}, seed=0)
    assert (many["churned"] == "yes").mean() > (base["churned"] == "yes").mean() + 0.05


# ----------------------------------------------------------------------------- impute


@pytest.fixture(scope="module")
def incomplete():
    """Fresh rows (another seed) with ~20% of the cells blanked in six columns, and the blank mask."""
    full = customers_table(150, seed=1)
    rng = np.random.default_rng(0)
    holes = pd.DataFrame(False, index=full.index, columns=full.columns)
    df = full.astype({"age": float, "is_active": object})  # how a CSV with blanks reads
    for col in ("age", "sex", "country", "income", "balance", "is_active"):
        holes[col] = rng.random(len(full)) < 0.2
        df.loc[holes[col], col] = np.nan
    return full, df, holes


def test_impute_fills_holes_and_keeps_present_cells(model, real, incomplete):
    full, df, holes = incomplete
    out = model.impute(df, seed=0)
    assert list(out.columns) == list(df.columns) and len(out) == len(df)
    present = df.notna()
    for col in df.columns:  # every present cell exactly as given
        a, b = df.loc[present[col], col].tolist(), out.loc[present[col], col].tolist()
        assert a == b, col
    blanked = ["age", "sex", "country", "income", "balance", "is_active"]
    filled = df[blanked].isna() & out[blanked].notna()
    share = filled.to_numpy().sum() / df[blanked].isna().to_numpy().sum()
    assert share == 1.0 if model.name == "gaussian-copula" else share > 0.9
    check_valid(out.where(df.isna()), real, model.schema, allow_missing=tuple(out.columns))  # the drawn cells
    # columns come back in the training dtypes once no blank is left
    assert out["is_active"].dtype == bool and out["balance"].dtype == np.float64
    assert out["age"].dtype == (np.int64 if out["age"].notna().all() else np.float64)
    pd.testing.assert_frame_equal(out, model.impute(df, seed=0))  # seeded
    assert model.impute(full, seed=0)[["age", "sex"]].equals(full[["age", "sex"]])


def test_impute_without_holes_returns_the_table(model, real):
    done = model.impute(real.drop(columns="notes").assign(notes="x").head(20), seed=0)
    assert done["notes"].eq("x").all() and done["age"].equals(real["age"].head(20))


def test_impute_rejects_other_columns(model, real):
    with pytest.raises(DataError) as info:
        model.impute(real.drop(columns="age").assign(extra=1))
    msg = one_line(info)
    assert "'age'" in msg and "'extra'" in msg


@pytest.mark.parametrize("name", [n for n in NEURAL if registry.get(n).impute_rows is TableGenerator.impute_rows])
def test_batched_imputation_fills_every_hole_in_one_call(fitted, name, monkeypatch):
    model = fitted(name)
    full = customers_table(120, seed=2)
    df = full.astype({"age": float, "is_active": object})
    rng = np.random.default_rng(1)
    blanked = ["age", "sex", "country", "balance", "is_active"]  # columns the real table never leaves empty
    for col in blanked:
        df.loc[rng.random(len(df)) < 0.3, col] = np.nan
    holes = df.isna()
    assert len(holes[blanked].drop_duplicates()) > 10  # many missingness patterns and conditions
    calls = []
    sample_frame = type(model).sample_frame
    monkeypatch.setattr(type(model), "sample_frame",
                        lambda self, n, cond, rng, gen: calls.append(n) or sample_frame(self, n, cond, rng, gen))
    out = model.impute(df, seed=0)
    assert calls == [16 * int(holes.any(axis=1).sum())]  # every row with a hole, 16 candidates each, one call
    assert out[blanked].notna().all().all()
    for col in df.columns:
        assert df.loc[~holes[col], col].tolist() == out.loc[~holes[col], col].tolist(), col
    assert out["is_active"].dtype == bool and out["age"].dtype == np.int64
    monkeypatch.undo()
    pd.testing.assert_frame_equal(out, model.impute(df, seed=0))


def test_per_row_condition_vectors_match_single_conditions(fitted):
    cond = fitted("tvae").cond
    wheres = [{"sex": "Female"}, {}, {"churned": "yes", "country": "France"}, {"sex": "Male", "is_active": True}]
    batched = cond.from_where(len(wheres), wheres)
    assert torch.equal(batched, torch.cat([cond.from_where(1, w) for w in wheres]))
    assert batched[1].sum() == 0 and batched[2].sum() == 2


def test_copula_imputation_uses_the_correlation():
    rng = np.random.default_rng(0)

    def table(n):
        x = rng.normal(50, 10, n).round(2)
        return pd.DataFrame({"x": x, "y": (2 * x + rng.normal(0, 3, n)).round(2),
                             "group": rng.choice(["a", "b", "c"], n)})

    train, test = table(400), table(100)
    cop = genforge.create("gaussian-copula").fit(train)
    holey = test.copy()
    holey.loc[:59, "y"] = np.nan
    done = cop.impute(holey, seed=0)
    truth, guess = test.loc[:59, "y"], done.loc[:59, "y"]
    mse = float(((guess - truth) ** 2).mean())
    mse_mean = float(((train["y"].mean() - truth) ** 2).mean())
    assert mse < 0.3 * mse_mean
    assert done.loc[60:].equals(test.loc[60:])


# ----------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", NEURAL)
def test_epochs_convert_to_steps(name):
    m = create(name)
    assert m.train_config(400, {"epochs": 2}).steps == 8  # 2 x 400 rows / batches of 100
    assert m.train_config(400, {"epochs": 0.1}).steps == 1
    assert m.train_config(50, {"epochs": 3}).steps == 3  # a table smaller than a batch: one batch per epoch
    assert m.train_config(400, {"steps": 7}).steps == 7
    with pytest.raises(ConfigError):
        m.train_config(400, {"epochs": 0})


@pytest.mark.parametrize("name", NEURAL)
def test_fit_into_a_run_directory(name, real, tmp_path):
    run = tmp_path / name
    m = create(name).fit(real, epochs=3, run_dir=run, log_every=4)
    for f in ("config.yaml", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl", "summary.json"):
        assert (run / f).is_file(), f
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == 12 and summary["status"] == "finished"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [4, 8, 12]
    pd.testing.assert_frame_equal(m.sample(50, seed=0), genforge.load(run).sample(50, seed=0))


def test_copula_fit_into_a_run_directory(real, tmp_path):
    m = genforge.create("gaussian-copula").fit(real, run_dir=tmp_path / "cop")
    assert (tmp_path / "cop" / "model.safetensors").is_file() and (tmp_path / "cop" / "config.yaml").is_file()
    pd.testing.assert_frame_equal(m.sample(50, seed=0), genforge.load(tmp_path / "cop").sample(50, seed=0))


@pytest.fixture(scope="module")
def real_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tables") / "customers.csv"
    customers_table(300).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", NEURAL)
def test_resume_continues_exactly(name, real_csv, tmp_path):
    from genforge.app.workflows import resume_run, train_run

    params = {**SETTINGS[name][0], **({"generator_dims": (32,), "discriminator_dims": (32,)} if name == "ctgan" else
                                      {"hidden_dims": (32,)})}
    train_run(name, str(real_csv), out=tmp_path / "straight", params=params, train={"steps": 20, "progress": False})
    train_run(name, str(real_csv), out=tmp_path / "halves", params=params, train={"steps": 10, "progress": False})
    run, summary = resume_run(tmp_path / "halves", steps=20, progress=False)
    assert summary["step"] == 20
    for f in ("model.safetensors", "checkpoint.safetensors"):
        a, b = load_file(tmp_path / "straight" / f), load_file(tmp_path / "halves" / f)
        assert a.keys() == b.keys()
        different = [k for k in a if not torch.equal(a[k], b[k])]
        assert not different, (f, different[:5])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", MODELS)
def test_one_row_is_rejected(name, real):
    with pytest.raises(DataError) as info:
        create(name).fit(real.head(1), epochs=1)
    assert "1 row" in one_line(info)


@pytest.mark.parametrize("frame, words", [
    (pd.DataFrame([[1, 2, "x"], [3, 4, "y"], [5, 6, "x"]], columns=["a", "a", "b"]), ["duplicate column", "'a'"]),
    (pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [np.nan] * 3, "c": ["x", "y", "x"]}), ["'b'", "entirely empty"]),
    (pd.DataFrame({"a": [str(i) for i in range(95)] + ["n/a?"] * 5, "b": np.arange(100)}),
     ["'a'", "mostly numbers", "'n/a?'"]),
], ids=["duplicate-names", "all-missing", "mixed-types"])
@pytest.mark.parametrize("name", MODELS)
def test_bad_tables_are_data_errors(name, frame, words, tmp_path):
    with pytest.raises(DataError) as info:
        create(name).fit(frame, epochs=1, run_dir=tmp_path / "run")
    msg = one_line(info)
    for w in words:
        assert w in msg, (w, msg)
    assert not (tmp_path / "run").exists()  # nothing written for a table that cannot be learned


def test_not_a_dataframe_is_a_data_error():
    with pytest.raises(DataError) as info:
        genforge.create("gaussian-copula").fit(np.zeros((5, 2)))
    assert "DataFrame" in one_line(info)


def test_ctgan_needs_pac_rows(real, tmp_path):
    with pytest.raises(DataError) as info:
        create("ctgan").fit(real.head(6), steps=2, run_dir=tmp_path / "run")
    msg = one_line(info)
    assert "pac=10" in msg and "6" in msg and "--set pac=1" in msg
    assert not (tmp_path / "run").exists()
    create("ctgan", pac=1, batch_size=6).fit(real.head(6), steps=2)  # the hint works
    with pytest.raises(ConfigError) as info:
        create("ctgan", batch_size=5)  # pac 10 rows cannot fit a batch of 5
    assert "pac" in one_line(info) and "batch_size" in str(info.value)


def test_untrained_model_cannot_sample_or_impute(real):
    for name in MODELS:
        m = create(name)
        with pytest.raises(ConfigError, match="not trained"):
            m.sample(5)
        with pytest.raises(ConfigError, match="not trained"):
            m.impute(real)
