"""Tables: loading, schema inference and the reversible table encoding (all tiny and fast)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from genforge.tables.data.demo import customers_table
from genforge.tables.data.schema import Schema, infer_schema
from genforge.tables.data.transform import TableTransformer
from genforge.tables.data.readers import load_table, save_table
from genforge.core.errors import ConfigError, DataError

SMALL = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "x"]})
KINDS = {"customer_id": "id", "signup_date": "datetime", "age": "integer", "sex": "categorical",
         "country": "categorical", "city": "categorical", "income": "continuous", "balance": "continuous",
         "num_products": "integer", "is_active": "boolean", "churned": "categorical", "notes": "text"}


def one_line_error(exc_type, fn, *args, must_name: str = "", **kwargs) -> str:
    """Call ``fn`` expecting ``exc_type``; check the message is one line naming ``must_name``."""
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip() == msg, msg
    assert must_name in msg, msg
    return msg


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return customers_table(500)


@pytest.fixture(scope="module")
def fitted(customers) -> TableTransformer:
    return TableTransformer(infer_schema(customers), seed=0).fit(customers)


# ----------------------------------------------------------------------------- loading


def test_load_csv_tsv_parquet_and_sqlite(tmp_path):
    SMALL.to_csv(tmp_path / "t.csv", index=False)
    SMALL.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    SMALL.to_parquet(tmp_path / "t.parquet", index=False)
    with sqlite3.connect(tmp_path / "t.db") as con:
        SMALL.to_sql("things", con, index=False)
        SMALL.to_sql("other", con, index=False)
    for source, kwargs in [("t.csv", {}), ("t.tsv", {}), ("t.parquet", {}), ("sqlite:///DB", {"table": "things"})]:
        source = source.replace("DB", str(tmp_path / "t.db"))
        path = source if source.startswith("sqlite") else tmp_path / source
        df, desc = load_table(path, **kwargs)
        pd.testing.assert_frame_equal(df, SMALL, check_dtype=False)
        assert "3 rows" in desc


def test_load_builtin_and_save_round_trip(tmp_path):
    df, desc = load_table("customers")
    assert df.shape == (3000, 12) and "customers" in desc
    for name in ("out.csv", "out.parquet"):
        path = save_table(SMALL, tmp_path / name)
        pd.testing.assert_frame_equal(load_table(path)[0], SMALL)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    one_line_error(ConfigError, save_table, SMALL, tmp_path / "out.xlsx", must_name=".csv or .parquet")


@pytest.mark.parametrize("content, needle", [
    (b"", "is empty"),
    (b"a,b\n", "no rows"),
    (b"a\n1\n2\n", "at least 2 columns"),
    (b"a,b,a\n1,2,3\n", "'a'"),
    (b"a,b\ncaf\xe9,1\n", "--encoding latin-1"),
])
def test_bad_csv_files(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    msg = one_line_error(DataError, load_table, path, must_name=needle)
    if needle == "--encoding latin-1":
        assert "position 7, line 2" in msg
        assert load_table(path, encoding="latin-1")[0]["a"][0] == "café"


def test_bad_sources(tmp_path):
    one_line_error(DataError, load_table, tmp_path / "nope.csv", must_name="does not exist")
    (tmp_path / "t.xlsx").write_bytes(b"x")
    one_line_error(DataError, load_table, tmp_path / "t.xlsx", must_name="'.xlsx'")
    with sqlite3.connect(tmp_path / "t.db") as con:
        SMALL.to_sql("things", con, index=False)
        SMALL.to_sql("stuff", con, index=False)
    url = f"sqlite:///{tmp_path / 't.db'}"
    one_line_error(DataError, load_table, url, table="missing", must_name="stuff, things")
    one_line_error(DataError, load_table, url, must_name="--table")
    one_line_error(DataError, load_table, "postgresql://u:secret@host/db", table="t", must_name="pip install")


# ----------------------------------------------------------------------------- schema


def test_schema_kinds_of_customers(customers):
    schema = infer_schema(customers)
    assert {c.name: c.kind for c in schema.columns} == KINDS
    assert schema["customer_id"].id_pattern == "C{:06d}"
    assert schema["signup_date"].datetime_format == "%Y-%m-%d"
    assert schema["income"].decimals == 2 and 0.02 < schema["income"].missing_rate < 0.2
    assert schema["sex"].categories[0] in ("Female", "Male") and abs(sum(schema["sex"].frequencies) - 1) < 1e-9
    assert all(row["reason"] for row in schema.describe())
    one_line_error(ConfigError, schema.__getitem__, "nope", must_name="'nope'")


def test_schema_small_cases():
    df = pd.DataFrame({"flag": ["true", "False", "true", None], "is_vip": [0, 1, 1, 0],
                       "zip": ["01234", "02345", "01234", "09999"], "qty": ["1", "2", "3", "4"],
                       "when": pd.to_datetime(["2020-01-01", "2021-05-06", None, "2022-02-02"]),
                       "user_id": [10, 11, 12, 13], "code": ["a", "b", "a", "b"]})
    kinds = {c.name: c.kind for c in infer_schema(df).columns}
    assert kinds == {"flag": "boolean", "is_vip": "boolean", "zip": "categorical", "qty": "integer",
                     "when": "datetime", "user_id": "id", "code": "categorical"}


def test_schema_overrides_and_json_round_trip(customers, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"columns": {"age": {"kind": "categorical"}, "city": {"kind": "text"}}}))
    schema = infer_schema(customers, meta)
    assert schema["age"].kind == "categorical" and 18 <= min(schema["age"].categories)
    assert schema["city"].kind == "text" and "metadata" in schema["age"].reason
    schema.save(tmp_path / "schema.json")
    again = Schema.load(tmp_path / "schema.json")
    assert again == schema and json.loads(json.dumps(again.to_dict())) == schema.to_dict()
    one_line_error(ConfigError, infer_schema, customers, {"columns": {"agee": {"kind": "integer"}}}, must_name="'agee'")
    one_line_error(ConfigError, infer_schema, customers, {"columns": {"age": {"kind": "number"}}}, must_name="'number'")
    (tmp_path / "bad.json").write_text("{not json")
    one_line_error(ConfigError, Schema.load, tmp_path / "bad.json", must_name="not valid JSON")
    d = schema.to_dict()
    d["columns"][0]["kind"] = "weird"
    one_line_error(ConfigError, Schema.from_dict, d, must_name="'weird'")


def test_schema_bad_columns():
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "empty": [np.nan] * 3})
    one_line_error(DataError, infer_schema, df, must_name="column 'empty' is entirely empty")
    assert infer_schema(df, {"columns": {"empty": {"kind": "continuous"}}})["empty"].missing_rate == 1.0
    mixed = pd.DataFrame({"a": range(20), "amount": [str(i) for i in range(19)] + ["lots"]})
    msg = one_line_error(DataError, infer_schema, mixed, must_name="column 'amount'")
    assert "'lots'" in msg and "categorical" in msg
    assert infer_schema(mixed, {"columns": {"amount": {"kind": "categorical"}}})["amount"].kind == "categorical"
    dates = pd.DataFrame({"a": [1, 2, 3], "day": ["2020-01-01", "someday", "2020-03-01"]})
    msg = one_line_error(DataError, infer_schema, dates, {"columns": {"day": {"kind": "datetime"}}}, must_name="'day'")
    assert "'someday'" in msg


# ----------------------------------------------------------------------------- transformer


def test_round_trip_reproduces_the_table(customers, fitted):
    back = fitted.inverse_transform(fitted.transform(customers), rng=np.random.default_rng(0))
    assert list(back.columns) == list(customers.columns)
    assert back.dtypes.equals(customers.dtypes)
    for name in ("signup_date", "age", "sex", "country", "num_products", "is_active", "churned"):
        assert back[name].tolist() == customers[name].tolist(), name
    kept = customers["city"].isin(fitted.discrete_blocks()[2][3])  # rare cities pool into __other__ ...
    assert fitted.discrete_blocks()[2][0] == "city" and 0.5 < kept.mean() < 1
    assert back["city"][kept].tolist() == customers["city"][kept].tolist()
    assert not back["city"][~kept].isin(customers["city"][kept]).any()  # ... and decode to rare cities
    for name in ("income", "balance"):
        assert back[name].isna().equals(customers[name].isna()), name
        np.testing.assert_allclose(back[name].fillna(0), customers[name].fillna(0), rtol=1e-4, atol=0.02)
    assert ((back["balance"] == 0.0) == (customers["balance"] == 0.0)).all()
    assert back["customer_id"].is_unique and not set(back["customer_id"]) & set(customers["customer_id"])
    assert abs(back["notes"].isna().mean() - customers["notes"].isna().mean()) < 0.1
    assert set(back["notes"].dropna()) <= set(customers["notes"].dropna())


def test_random_matrices_decode_to_valid_tables(customers, fitted):
    schema = fitted.schema
    noise = np.random.default_rng(1).normal(0, 3, size=(400, fitted.dim))
    out = fitted.inverse_transform(noise, rng=np.random.default_rng(2))
    assert out.dtypes.equals(customers.dtypes) and list(out.columns) == list(customers.columns)
    for name in ("age", "num_products", "income", "balance"):
        col, vals = schema[name], out[name].dropna()
        assert vals.between(col.min, col.max).all(), name
    assert (out["age"] == out["age"].round()).all()
    assert (out["income"].dropna().round(2) == out["income"].dropna()).all()
    for name in ("sex", "country", "city", "churned"):
        assert set(out[name]) <= set(customers[name]), name
    days = pd.to_datetime(out["signup_date"], format="%Y-%m-%d")
    assert days.between(pd.Timestamp("2018-01-01"), pd.Timestamp("2024-12-31")).all()
    assert out["customer_id"].is_unique


def test_layout_high_cardinality_and_conditions(customers, fitted):
    assert fitted.dim == fitted.transform(customers.head(3)).shape[1]
    city = [s for s in fitted.spans if s.column == "city"]
    assert len(city) == 1 and city[0].end - city[0].start <= 100
    assert customers["city"].nunique() > 100
    blocks = {c: (a, b, labels) for c, a, b, labels in fitted.discrete_blocks()}
    assert set(blocks) == {"sex", "country", "city", "is_active", "churned"}
    start, end, i = fitted.encode_condition("churned", "yes")
    assert (start, end) == blocks["churned"][:2] and blocks["churned"][2][i] == "yes"
    assert fitted.encode_condition("is_active", "true")[2] == blocks["is_active"][2].index(True)
    one_line_error(ConfigError, fitted.encode_condition, "colour", "red", must_name="'colour'")
    one_line_error(ConfigError, fitted.encode_condition, "country", "Atlantis", must_name="'Atlantis'")
    one_line_error(ConfigError, fitted.encode_condition, "age", 30, must_name="'age'")


def test_state_round_trip_is_json_and_identical(customers, fitted):
    state = json.loads(json.dumps(fitted.to_state()))
    again, twin = TableTransformer.from_state(state), TableTransformer.from_state(state)
    x = fitted.transform(customers)
    np.testing.assert_array_equal(again.transform(customers), x)
    assert again.spans == fitted.spans and again.dim == fitted.dim
    first = again.inverse_transform(x, rng=np.random.default_rng(3))
    pd.testing.assert_frame_equal(first, twin.inverse_transform(x, rng=np.random.default_rng(3)))
    pd.testing.assert_frame_equal(first.drop(columns="customer_id"),
                                  fitted.inverse_transform(x, rng=np.random.default_rng(3)).drop(columns="customer_id"))
    second = again.inverse_transform(x[:10])  # a second batch continues the ids
    assert not set(second["customer_id"]) & set(first["customer_id"])


def test_small_table_dtypes_survive():
    n = 40
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "when": pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="h"),
        "count": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 9, n)),
        "flag": rng.random(n) < 0.5, "ratio": rng.random(n).round(3), "uid": [f"u-{i}" for i in range(n)],
        "level": rng.choice([1, 2, 3], n)})
    schema = infer_schema(df, {"columns": {"level": {"kind": "categorical"}}})
    t = TableTransformer(schema, max_modes=3).fit(df)
    back = t.inverse_transform(t.transform(df))
    assert back.dtypes.equals(df.dtypes)
    assert back["when"].tolist() == df["when"].tolist() and back["level"].tolist() == df["level"].tolist()
    assert back["count"].isna().equals(df["count"].isna())
    out = t.inverse_transform(np.random.default_rng(0).uniform(-1, 1, (50, t.dim)))
    assert out.dtypes.equals(df.dtypes) and set(out["level"]) <= {1, 2, 3} and out["uid"].is_unique


# -- any database through SQLAlchemy ----------------------------------------------------------------
def test_a_sqlalchemy_url_reads_a_table_with_pandas(tmp_path):
    import sqlite3

    from genforge.tables.data.readers import load_table

    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE customers (age INTEGER, city TEXT)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(30 + i, "Oslo" if i % 2 else "Rome") for i in range(10)])
    con.execute("CREATE TABLE orders (id INTEGER, total REAL)")
    con.commit()
    con.close()
    url = f"sqlite+pysqlite:///{db}"
    with pytest.raises(DataError, match="customers.*orders"):
        load_table(url)  # two tables: say which
    df, label = load_table(url, table="customers")
    assert list(df.columns) == ["age", "city"] and len(df) == 10 and df["age"].tolist()[:2] == [30, 31]
    assert "customers" in label


def test_a_database_error_never_shows_the_password():
    from genforge.tables.data.readers import load_table

    with pytest.raises(DataError) as err:
        load_table("postgresql://bob:s3cret-pw@127.0.0.1:1/shop", table="customers")
    msg = str(err.value)
    assert "s3cret-pw" not in msg and "***" in msg and "\n" not in msg
