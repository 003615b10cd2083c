"""``genforge`` on tables: train / sample / impute / evaluate through the CLI.

Happy paths run in-process (typer's CliRunner); error paths run as real subprocesses
(``python -m genforge.app.cli``, four at a time from one module fixture) and must exit with
code 2, print exactly one ``error: ...`` line naming the problem, show no traceback and
leave no files behind.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from genforge.app.cli import app
from genforge.tables.data.demo import customers_table

from conftest import ANSI, cli_command, cli_env

runner = CliRunner()
KINDS = {"customer_id": "id", "signup_date": "datetime", "age": "integer", "sex": "categorical",
         "country": "categorical", "city": "categorical", "income": "continuous", "balance": "continuous",
         "num_products": "integer", "is_active": "boolean", "churned": "categorical", "notes": "text"}


def invoke(*args):
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert res.exit_code == 0, (res.output, res.exception)
    return res


def flat(text: str) -> str:
    return " ".join(text.split())


def schema_kinds(run: Path) -> dict[str, str]:
    return {c["name"]: c["kind"] for c in json.loads((run / "schema.json").read_text())["columns"]}


def read_config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tables-cli")


@pytest.fixture(scope="module")
def real(work) -> pd.DataFrame:
    """300 customers, also written as real.csv, real.parquet and a table in shop.db."""
    df = customers_table(300, seed=1)
    df.to_csv(work / "real.csv", index=False)
    df.to_parquet(work / "real.parquet", index=False)
    with sqlite3.connect(work / "shop.db") as con:
        df.to_sql("customers", con, index=False)
        df[["sex", "age"]].to_sql("other", con, index=False)
    return df


@pytest.fixture(scope="module")
def cop_run(work) -> Path:
    out = work / "runs" / "cop"
    res = invoke("train", "--data", "customers", "--model", "gaussian-copula", "--out", out, "--limit", 300)
    text = flat(res.output)
    assert "inferred schema" in text and "training done: fitted in" in text
    assert f"schema : {out / 'schema.json'}" in text and f"genforge sample {out}" in text
    return out


# ----------------------------------------------------------------------------- train


def test_train_on_the_demo_table_prints_the_schema_and_writes_it(work):
    out = work / "runs" / "cop-full"
    res = invoke("train", "--data", "customers", "--model", "gaussian-copula", "--out", out)
    text = flat(res.output)
    assert "inferred schema" in text and "training done" in text and "--metadata" in text
    for name, kind in KINDS.items():
        assert name in text and kind in text
    assert "C{:06d}" in text and "%Y-%m-%d" in text  # the id pattern and the date format are shown
    assert schema_kinds(out) == KINDS
    cfg = read_config(out)
    assert cfg["model"] == "gaussian-copula" and cfg["data"]["kind"] == "table" and cfg["data"]["limit"] is None
    assert "3000 rows" in cfg["data"]["source"]


def test_limit_keeps_the_first_rows(cop_run):
    cfg = read_config(cop_run)
    assert cfg["data"]["limit"] == 300 and cfg["data"]["path"] == "customers"
    assert schema_kinds(cop_run) == KINDS
    assert {p.name for p in cop_run.iterdir()} >= {"config.yaml", "model.safetensors", "schema.json", "summary.json"}


@pytest.fixture(scope="module")
def ctgan_run(work, real) -> tuple[Path, str]:
    out = work / "runs" / "ctgan-csv"
    res = invoke("train", "--data", work / "real.csv", "--model", "ctgan", "--epochs", 1, "--set", "batch_size=100",
                 "--out", out, "-q")
    return out, res.output


def test_train_ctgan_from_a_csv(work, ctgan_run):
    out, output = ctgan_run
    assert "training done: 3 steps" in flat(output)  # 1 epoch of 300 rows in batches of 100
    for f in ("config.yaml", "model.safetensors", "checkpoint.safetensors", "schema.json", "summary.json"):
        assert (out / f).is_file(), f
    cfg = read_config(out)
    assert cfg["model_config"]["batch_size"] == 100 and cfg["train"]["steps"] == 3
    assert cfg["data"]["path"] == str((work / "real.csv").resolve()) and "real.csv (300 rows" in cfg["data"]["source"]
    assert schema_kinds(out) == KINDS


def test_train_tvae_from_parquet(work, real):
    out = work / "runs" / "tvae-parquet"
    res = invoke("train", "--data", work / "real.parquet", "--model", "tvae", "--epochs", 1, "--set", "batch_size=100",
                 "--out", out, "-q")
    assert "training done: 3 steps" in flat(res.output)
    assert schema_kinds(out) == KINDS
    invoke("sample", out, "-n", 50, "-o", work / "tvae.csv", "--seed", 0)
    assert len(pd.read_csv(work / "tvae.csv")) == 50


def test_train_from_sqlite_with_a_table_name(work, real):
    out = work / "runs" / "cop-sqlite"
    invoke("train", "--data", f"sqlite:///{work / 'shop.db'}", "--table", "customers", "--model", "gaussian-copula",
           "--out", out, "-q")
    cfg = read_config(out)
    assert cfg["data"]["table"] == "customers" and "table 'customers'" in cfg["data"]["source"]
    assert schema_kinds(out) == KINDS


def test_metadata_overrides_a_kind(work, real):
    meta = work / "override.json"
    meta.write_text(json.dumps({"columns": {"num_products": {"kind": "categorical"}}}))
    out = work / "runs" / "cop-meta"
    invoke("train", "--data", work / "real.csv", "--model", "gaussian-copula", "--metadata", meta, "--out", out, "-q")
    kinds = schema_kinds(out)
    assert kinds["num_products"] == "categorical" and {k: v for k, v in kinds.items() if k != "num_products"} == {
        k: v for k, v in KINDS.items() if k != "num_products"}
    col = next(c for c in json.loads((out / "schema.json").read_text())["columns"] if c["name"] == "num_products")
    assert sorted(col["categories"]) == [1, 2, 3, 4, 5] and "metadata" in col["reason"]
    invoke("sample", out, "-n", 40, "-o", work / "meta.csv", "--where", "num_products=4", "--seed", 0)
    assert (pd.read_csv(work / "meta.csv")["num_products"] == 4).all()


def test_train_with_an_encoding(work):
    path = work / "latin.csv"
    df = pd.DataFrame({"city": ["Köln", "Málaga", "Zürich", "Orléans"] * 10, "n": range(40)})
    path.write_bytes(df.to_csv(index=False).encode("latin-1"))
    out = work / "runs" / "latin"
    invoke("train", "--data", path, "--encoding", "latin-1", "--model", "gaussian-copula", "--out", out, "-q")
    assert read_config(out)["data"]["encoding"] == "latin-1"
    holey = df.head(8).copy()
    holey.loc[:3, "city"] = None
    path2 = work / "latin-holes.csv"
    path2.write_bytes(holey.to_csv(index=False).encode("latin-1"))
    invoke("impute", out, path2, "-o", work / "latin-done.csv", "--encoding", "latin-1", "--seed", 0)
    done = pd.read_csv(work / "latin-done.csv")
    assert set(done["city"]) <= {"Köln", "Málaga", "Zürich", "Orléans"} and done["city"].notna().all()


# ----------------------------------------------------------------------------- sample


def test_sample_writes_csv_and_parquet(cop_run, work):
    res = invoke("sample", cop_run, "-n", 500, "-o", work / "synth.csv", "--seed", 1)
    assert "wrote 500 rows from gaussian-copula" in flat(res.output)
    synth = pd.read_csv(work / "synth.csv")
    assert synth.shape == (500, 12) and list(synth.columns) == list(KINDS)
    assert synth["customer_id"].is_unique and set(synth["sex"]) <= {"Female", "Male"}
    invoke("sample", cop_run, "-n", 500, "-o", work / "synth.parquet", "--seed", 1)
    pq = pd.read_parquet(work / "synth.parquet")
    assert pq.shape == (500, 12) and pq["age"].dtype == "int64" and pq["is_active"].dtype == bool
    cols = ["customer_id", "signup_date", "age", "sex", "balance", "churned"]
    pd.testing.assert_frame_equal(pq[cols], synth[cols])  # the same rows in both formats


def test_sample_same_seed_same_file(cop_run, work):
    for name, seed in (("s1.csv", 7), ("s2.csv", 7), ("s3.csv", 8)):
        invoke("sample", cop_run, "-n", 200, "-o", work / name, "--seed", seed)
    assert (work / "s1.csv").read_bytes() == (work / "s2.csv").read_bytes()
    assert (work / "s1.csv").read_bytes() != (work / "s3.csv").read_bytes()


@pytest.mark.parametrize("run_name", ["cop", "ctgan-csv"])
def test_sample_where(cop_run, ctgan_run, work, run_name):
    run = work / "runs" / run_name
    invoke("sample", run, "-n", 120, "-o", work / f"where-{run_name}.csv", "--where", "sex=Female,churned=yes",
           "--seed", 0)
    df = pd.read_csv(work / f"where-{run_name}.csv")
    assert len(df) == 120 and (df["sex"] == "Female").all() and (df["churned"] == "yes").all()
    invoke("sample", run, "-n", 30, "-o", work / "active.csv", "--where", "is_active=false")
    assert not pd.read_csv(work / "active.csv")["is_active"].any()


# ----------------------------------------------------------------------------- impute


def test_impute_fills_blanks_and_keeps_the_rest(cop_run, work):
    full = customers_table(120, seed=3)
    holey = full.copy()
    holes = {"age": [0, 5, 9, 40], "sex": [1, 5, 77], "income": [2, 3, 50, 51], "is_active": [4, 8]}
    for col, rows in holes.items():
        holey[col] = holey[col].astype(object)
        holey.loc[rows, col] = None
    holey.to_csv(work / "incomplete.csv", index=False)
    res = invoke("impute", cop_run, work / "incomplete.csv", "-o", work / "completed.csv", "--seed", 0)
    before = int(pd.read_csv(work / "incomplete.csv").isna().to_numpy().sum())
    text = flat(res.output)
    assert "filled" in text and "120 rows" in text and "completed.csv" in text
    done, given = pd.read_csv(work / "completed.csv"), pd.read_csv(work / "incomplete.csv")
    assert list(done.columns) == list(given.columns) and len(done) == 120
    for col in given.columns:
        present = given[col].notna()
        assert done.loc[present, col].tolist() == given.loc[present, col].tolist(), col
    for col, rows in holes.items():
        assert done.loc[rows, col].notna().all(), col
    assert set(done["sex"]) <= {"Female", "Male"}
    assert done["age"].between(18, 90).all() and (done["age"] == done["age"].round()).all()
    assert int(done.isna().to_numpy().sum()) < before
    assert int(text.split("filled ")[1].split()[0]) == before - int(done.isna().to_numpy().sum())


# ----------------------------------------------------------------------------- evaluate


def test_evaluate_run_json_and_files(cop_run):
    res = invoke("evaluate", cop_run, "--target", "churned", "--json")
    result = json.loads(res.stdout.strip().splitlines()[-1])
    m = result["metrics"]
    for key in ("quality", "column_shapes", "diagnostic", "tstr_accuracy", "tstr_auc", "dcr", "exact_copies"):
        assert key in m and m[key]["explain"], key
    assert 0 <= m["quality"]["value"] <= 1 and m["exact_copies"]["value"] == 0.0
    assert result["target"] == "churned"
    saved = json.loads((cop_run / "metrics.json").read_text())
    assert saved["metrics"]["quality"]["value"] == pytest.approx(m["quality"]["value"])
    assert (cop_run / "report.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_evaluate_samples_file_against_a_real_file(cop_run, work, real):
    folder = work / "outside"
    folder.mkdir(exist_ok=True)
    invoke("sample", cop_run, "-n", 300, "-o", folder / "synth.csv", "--seed", 2)
    res = invoke("evaluate", "--samples", folder / "synth.csv", "--real", work / "real.csv", "--json")
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert "quality" in result["metrics"] and "dcr" in result["metrics"]
    assert (folder / "metrics.json").is_file() and (folder / "report.html").is_file()


# ----------------------------------------------------------------------------- errors (subprocesses)


@pytest.fixture(scope="module")
def bad_inputs(work, real) -> Path:
    """A folder of broken tables; every error case runs inside it."""
    w = work / "bad"
    w.mkdir()
    (w / "empty.csv").write_bytes(b"")
    (w / "header.csv").write_text("a,b,c\n")
    (w / "one-column.csv").write_text("a\n1\n2\n3\n")
    (w / "latin1.csv").write_bytes("city,n\nK\xf6ln,1\nParis,2\n".encode("latin-1"))
    (w / "dups.csv").write_text("a,b,a\n1,2,3\n4,5,6\n")
    real.drop(columns=["age"]).assign(extra=1).head(10).to_csv(w / "other-columns.csv", index=False)
    with sqlite3.connect(w / "one.db") as con:
        real.head(20).to_sql("customers", con, index=False)
    return w


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


TRAIN = ["train", "--model", "gaussian-copula", "-q"]
# name -> (arguments, substrings the one error line must contain)
ERRORS = {
    "where-unknown-column": (["sample", "{run}", "-n", "5", "-o", "w1.csv", "--where", "nope=1"],
                             ["unknown column 'nope'", "churned"]),
    "where-unseen-value": (["sample", "{run}", "-n", "5", "-o", "w2.csv", "--where", "sex=Alien"],
                           ["'Alien'", "sex", "Female"]),
    "where-bad-syntax": (["sample", "{run}", "-n", "5", "-o", "w3.csv", "--where", "sex"], ["column=value", "sex"]),
    "sample-txt": (["sample", "{run}", "-n", "5", "-o", "synth.txt"], ["synth.txt", ".csv"]),
    "label-on-table": (["sample", "{run}", "-n", "5", "-o", "l.csv", "--label", "3"], ["--label", "image", "--where"]),
    "size-on-table": ([*TRAIN, "--data", "customers", "--size", "28", "--out", "o-size"], ["--size", "table"]),
    "impute-other-columns": (["impute", "{run}", "other-columns.csv", "-o", "done.csv"],
                             ["columns differ", "'age'", "'extra'"]),
    "impute-txt": (["impute", "{run}", "other-columns.csv", "-o", "done.txt"], ["done.txt", ".csv"]),
    "empty-csv": ([*TRAIN, "--data", "empty.csv", "--out", "o-empty"], ["empty.csv", "empty"]),
    "header-only": ([*TRAIN, "--data", "header.csv", "--out", "o-header"], ["header.csv", "no rows"]),
    "one-column": ([*TRAIN, "--data", "one-column.csv", "--out", "o-one"], ["at least 2 columns", "has 1"]),
    "not-utf8": ([*TRAIN, "--data", "latin1.csv", "--out", "o-latin"], ["latin1.csv", "not valid utf-8", "--encoding"]),
    "duplicate-names": ([*TRAIN, "--data", "dups.csv", "--out", "o-dups"], ["duplicate column names", "'a'"]),
    "missing-file": ([*TRAIN, "--data", "nope.csv", "--out", "o-missing"], ["nope.csv", "does not exist"]),
    "sqlite-unknown-table": ([*TRAIN, "--data", "sqlite:///one.db", "--table", "orders", "--out", "o-sql"],
                             ["no table 'orders'", "customers"]),
    "numeric-where-neural": (["sample", "{ctgan}", "-n", "5", "-o", "w4.csv", "--where", "age=40"],
                             ["age", "gaussian-copula"]),
    "ctgan-too-few-rows": (["train", "--model", "ctgan", "--data", "sqlite:///one.db", "--set", "pac=50", "-q",
                            "--out", "o-pac"], ["pac=50", "20", "--set pac"]),
}


@pytest.fixture(scope="module")
def error_results(bad_inputs, cop_run, ctgan_run):
    ctgan = ctgan_run[0]
    before = files_under(bad_inputs)

    def run(args):
        args = [a.format(run=cop_run, ctgan=ctgan) for a in args]
        p = subprocess.run(cli_command(*args), cwd=bad_inputs, env=cli_env(), capture_output=True, text=True,
                           timeout=300)
        return subprocess.CompletedProcess(p.args, p.returncode, ANSI.sub("", p.stdout), ANSI.sub("", p.stderr))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip(ERRORS, pool.map(run, (v[0] for v in ERRORS.values()))))
    return results, before, files_under(bad_inputs)


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_is_one_line(error_results, case):
    res = error_results[0][case]
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for part in ERRORS[case][1]:
        assert part in lines[0], (part, lines[0])


def test_errors_leave_no_files_behind(error_results):
    _, before, after = error_results
    assert after == before, sorted(after - before)


def test_quickstart_table(work):
    """`genforge quickstart table` trains the table quickstart on the embedded demo table and says where it is."""
    out = work / "qs-table"
    res = invoke("quickstart", "table", "--steps", 5, "--out", out)
    text = flat(res.output)
    assert "quickstart done: 5 steps" in text and f"schema : {out / 'schema.json'}" in text
    assert read_config(out)["model"] == "tvae" and (out / "model.safetensors").is_file()


def test_quickstart_unknown_kind(work):
    res = runner.invoke(app, ["quickstart", "sound", "--out", str(work / "qs-sound")])
    assert res.exit_code != 0 and "unknown data kind 'sound'" in str(res.exception)
    assert not (work / "qs-sound").exists()
