"""Table rules: found in a constructed table, declared, dropped and checked in --metadata, and kept in every
row by every table model (sample, --where, impute), by decoding through them rather than by rejecting rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genforge
from genforge.core import registry
from genforge.core.errors import ConfigError, DataError
from genforge.tables.data.rule_detect import detect_rules
from genforge.tables.data.rules import frame_getter
from genforge.tables.data.schema import infer_schema

GRADES = {"A": 4, "B": 3, "C": 2, "D": 1, "F": 0}
# small settings per family; every table family must be listed (a new one gets these checks by adding it)
SETTINGS = {
    "gaussian-copula": ({}, None),
    "ctgan": ({"batch_size": 100, "pac": 10, "generator_dims": (32,), "discriminator_dims": (32,)}, 2),
    "tvae": ({"batch_size": 100, "hidden_dims": (32,), "latent_dim": 8}, 2),
    "autoregressive": ({"batch_size": 100, "hidden_dims": (32,), "embedding_dim": 4}, 2),
}


def ruled_table(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """A table with known rules: grade <-> points, start <= end (dates), low <= high, total = low + high,
    never kind=cat & size=huge (both common), plus an unrelated noise column."""
    rng = np.random.default_rng(seed)
    grade = rng.choice(list(GRADES), size=n, p=[0.2, 0.3, 0.25, 0.15, 0.1])
    kind = rng.choice(["cat", "dog", "eel"], size=n)
    size = np.where(kind == "cat", rng.choice(["small", "big"], size=n), rng.choice(["small", "big", "huge"], size=n))
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 600, size=n), unit="D")
    end = start + pd.to_timedelta(rng.integers(0, 90, size=n), unit="D")
    low = rng.integers(0, 50, size=n)
    high = low + rng.integers(0, 50, size=n)
    return pd.DataFrame({"grade": grade, "points": [GRADES[g] for g in grade], "kind": kind, "size": size,
                         "start": start.strftime("%Y-%m-%d"), "end": end.strftime("%Y-%m-%d"), "low": low,
                         "high": high, "total": low + high, "noise": rng.normal(size=n).round(3)})


DECLARED = {"rules": ["total = low + high", "0 <= low <= 49",
                      {"type": "fixed", "columns": ["kind", "size"]}]}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return ruled_table()


@pytest.fixture(scope="module")
def fitted(table):
    cache = {}

    def get(name: str):
        if name not in cache:
            params, epochs = SETTINGS[name]
            cache[name] = genforge.create(name, **params).fit(table, epochs=epochs, seed=0, metadata=DECLARED)
        return cache[name]

    return get


def broken(model, df: pd.DataFrame) -> dict[str, int]:
    return {r.text(): int(bad.sum()) for r, bad in model.rules.broken(frame_getter(df, model.schema))}


# ----------------------------------------------------------------------------- detection


def test_the_rules_of_a_constructed_table_are_found(table):
    kept, candidates = detect_rules(table, infer_schema(table))
    texts = {r.text() for r in kept}
    assert {"grade -> points", "points -> grade", "start <= end", "low <= high", "low <= total",
            "never kind=cat & size=huge"} <= texts, texts
    assert not any("noise" in t for t in texts)  # an unrelated column is in no rule
    assert candidates == []


def test_a_rule_one_row_breaks_is_a_candidate_not_a_rule(table):
    df = table.copy()
    df.loc[7, ["kind", "size"]] = ["cat", "huge"]
    kept, candidates = detect_rules(df, infer_schema(df))
    assert "never kind=cat & size=huge" not in {r.text() for r in kept}
    assert [(c.text(), c.rows) for c in candidates if c.type == "never"] == [("never kind=cat & size=huge", 1)]


def test_independent_columns_have_no_rules():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"a": rng.choice(list("xyz"), 2000), "b": rng.choice(list("pq"), 2000),
                       "c": rng.integers(0, 100, 2000), "d": rng.integers(0, 100, 2000)})
    assert detect_rules(df, infer_schema(df)) == ([], [])


# ----------------------------------------------------------------------------- every model keeps them


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_model_keeps_every_rule_in_every_row(fitted, name):
    model = fitted(name)
    assert {"grade -> points", "total = low + high", "only seen combinations of kind, size"} <= \
           {r.text() for r in model.rules.rules}
    s = model.sample(3000, seed=1)
    assert len(s) == 3000 and broken(model, s) == {}
    for where in ({"kind": "cat"}, {"grade": "B", "size": "big"}, {"size": "huge"}):
        w = model.sample(400, where=where, seed=2)
        assert len(w) == 400 and broken(model, w) == {}, where
        assert all((w[c] == v).all() for c, v in where.items())
    assert (model.sample(300, where={"size": "huge"}, seed=3)["kind"] != "cat").all()


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_imputed_rows_keep_the_rules_around_present_cells(fitted, table, name):
    model = fitted(name)
    holes = table.head(200).copy()
    holes.loc[:49, "points"] = np.nan          # derived from the grade that is there
    holes.loc[50:99, "grade"] = np.nan         # the grade that goes with the points
    holes.loc[100:149, "end"] = np.nan         # an end on or after the start
    holes.loc[150:199, "total"] = np.nan       # the sum of its parts
    done = model.impute(holes, seed=0)
    assert done.notna().all().all()
    assert broken(model, done) == {}
    present = holes.notna()
    assert (done[present] == holes[present]).sum().sum() == present.sum().sum()


def test_every_table_family_is_checked():
    keeping = [n for n in registry.models_of("table") if registry.get(n).keeps_rules]
    assert sorted(SETTINGS) == keeping and set(registry.models_of("table")) - set(keeping) == {"aim", "mst"}


@pytest.mark.parametrize("name", ["mst", "aim"])
def test_the_dp_mechanisms_neither_detect_nor_take_rules(table, name):
    """Detecting rules would read the data outside the privacy budget; declared ones are refused in one line."""
    model = registry.create(name)
    model.prepare(table.head(200))
    assert model.rules.rules == [] and model.rules.candidates == []
    with pytest.raises(ConfigError, match="cannot keep rules"):
        registry.create(name).prepare(table.head(200), metadata={"rules": ["grade -> points"]})


# ----------------------------------------------------------------------------- bad rules and conditions


def _fit(table, metadata, **kw):
    return genforge.create("gaussian-copula").fit(table, metadata=metadata, **kw)


@pytest.mark.parametrize("rules, words", [
    (["low <= nope"], ["'low <= nope'", "'nope'", "does not have"]),
    (["5 <= low <= 3"], ["minimum is above its maximum"]),
    (["low >= 10", "low <= 5"], ["contradict each other", "'low'"]),
    (["low <= high", "high <= 3", "low >= 10"], ["contradict each other", "low <= high"]),
    ([{"type": "determines", "columns": ["kind", "size"], "mapping": [["cat", "big", 0]]},
      {"type": "never", "values": {"kind": "cat", "size": "big"}}], ["contradict each other", "kind -> size"]),
    ([{"type": "order", "columns": ["kind", "size"]}], ["ordering needs two numeric or two date columns", "'kind'"]),
    ([{"type": "never", "values": {"kind": "cow", "size": "big"}}], ["'cow' never appears", "kind"]),
    (["low is high"], ["cannot read the rule"]),
])
def test_bad_or_contradictory_rules_are_one_line_errors(table, rules, words):
    with pytest.raises(ConfigError) as info:
        _fit(table, {"rules": rules})
    msg = str(info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_text_columns_take_no_ordering():
    df = pd.DataFrame({"note": [f"a long free text note number {i} here" for i in range(300)],
                       "n": np.arange(300)})
    with pytest.raises(ConfigError, match="'note' is text"):
        _fit(df, {"rules": ["note <= n"]})


def test_a_rule_the_data_breaks_is_refused_unless_drop_violating(table):
    with pytest.raises(DataError) as info:
        _fit(table, {"rules": ["high <= 60"]})
    bad = int((table["high"] > 60).sum())
    assert f"broken by {bad:,} of {len(table):,} training rows" in str(info.value)
    assert "--drop-violating" in str(info.value)
    model = _fit(table, {"rules": ["high <= 60"], "drop_violating": True})
    assert model.schema["high"].max <= 60 and broken(model, model.sample(500, seed=0)) == {}


def test_drop_rules_and_detection_off(table):
    model = _fit(table, {"drop_rules": ["points -> grade", "start <= end"]})
    texts = {r.text() for r in model.rules.rules}
    assert "grade -> points" in texts and "points -> grade" not in texts and "start <= end" not in texts
    assert _fit(table, {"detect_rules": False}).rules.rules == []
    with pytest.raises(ConfigError, match="not found in the data"):
        _fit(table, {"drop_rules": ["noise -> kind"]})


@pytest.mark.parametrize("where, words", [
    ({"grade": "A", "points": 3}, ["grade=A,points=3", "grade -> points", "goes with points=4"]),
    ({"kind": "cat", "size": "huge"}, ["kind=cat,size=huge", "only seen combinations of kind, size"]),
    ({"low": 30, "high": 10}, ["low=30", "high=10", "'low <= high'"]),
    ({"total": 10}, ["total=10", "derived from its parts"]),
])
def test_a_where_a_rule_forbids_names_both(fitted, where, words):
    with pytest.raises(ConfigError) as info:
        fitted("gaussian-copula").sample(5, where=where, seed=0)
    msg = str(info.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


# ----------------------------------------------------------------------------- saved and validated


def test_rules_survive_save_and_load_and_damage_is_refused(fitted, tmp_path):
    from genforge.tables.data.state import check_rules_state

    model = fitted("tvae")
    model.save(tmp_path / "run")
    loaded = genforge.load(tmp_path / "run")
    assert loaded.rules == model.rules
    pd.testing.assert_frame_equal(loaded.sample(50, seed=4), model.sample(50, seed=4))
    state = model.rules.to_state()
    bad = {**state, "rules": [{**state["rules"][0], "columns": ["grade", "nope"]}]}
    with pytest.raises(ValueError, match="nope"):
        check_rules_state(bad, model.schema)
    mapping = next(r for r in state["rules"] if r["type"] == "determines" and r["columns"][1] == "points")
    with pytest.raises(ValueError, match="numeric column 'points'"):
        check_rules_state({**state, "rules": [{**mapping, "mapping": [["A", "four", 1]]}]}, model.schema)


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def cli_work(tmp_path_factory, table):
    import json

    work = tmp_path_factory.mktemp("rules-cli")
    table.to_csv(work / "ruled.csv", index=False)
    notes = table.assign(note=[f"a long free text note about row {i} and more" for i in range(len(table))])
    notes.to_csv(work / "notes.csv", index=False)
    for name, meta in {"missing": {"rules": ["low <= nope"]}, "breaks": {"rules": ["high <= 60"]},
                       "contradict": {"rules": ["low >= 10", "low <= 5"]}, "text": {"rules": ["note <= low"]}}.items():
        (work / f"{name}.json").write_text(json.dumps(meta))
    return work


def _cli(*args):
    from hostile import cli

    return cli(*args)


def _one_error(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), (words, lines[0])


def test_train_prints_and_saves_the_rules_and_sample_keeps_them(cli_work):
    import json

    from genforge.tables.data.rules import parse_rule

    run = cli_work / "run"
    code, out, err = _cli("train", "--data", cli_work / "ruled.csv", "--model", "gaussian-copula", "--out", run)
    assert code == 0, err
    assert "rules (kept in every generated row)" in out and "grade -> points" in out
    saved = json.loads((run / "rules.json").read_text())
    assert "start <= end" in {parse_rule(r)[0].text() for r in saved["rules"]}
    code, _, err = _cli("sample", run, "-n", 300, "-o", cli_work / "s.csv", "--where", "size=huge")
    assert code == 0, err
    s = pd.read_csv(cli_work / "s.csv")
    assert len(s) == 300 and (s["kind"] != "cat").all() and (s["points"] == s["grade"].map(GRADES)).all()
    _one_error(*_cli("sample", run, "-n", 5, "-o", cli_work / "no.csv", "--where", "grade=A,points=3")[::2],
               "grade=A,points=3", "grade -> points")
    assert not (cli_work / "no.csv").exists()


@pytest.mark.parametrize("meta, data, words", [
    ("missing", "ruled", ["'low <= nope'", "'nope'"]),
    ("breaks", "ruled", ["'high <= 60'", "training rows", "--drop-violating"]),
    ("contradict", "ruled", ["contradict each other"]),
    ("text", "notes", ["ordering needs two numeric or two date columns", "'note'"]),
], ids=["missing-column", "data-breaks-it", "contradictory", "text-column"])
def test_bad_rules_in_metadata_are_one_line_and_write_nothing(cli_work, meta, data, words):
    out = cli_work / f"bad-{meta}"
    code, _, err = _cli("train", "--data", cli_work / f"{data}.csv", "--model", "tvae", "--metadata",
                        cli_work / f"{meta}.json", "--out", out, "-q")
    _one_error(code, err, *words)
    assert not out.exists()


def test_drop_violating_trains_without_the_rows(cli_work):
    import yaml

    run = cli_work / "dropped"
    code, _, err = _cli("train", "--data", cli_work / "ruled.csv", "--model", "gaussian-copula", "--metadata",
                        cli_work / "breaks.json", "--drop-violating", "--out", run, "-q")
    assert code == 0, err
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["drop_violating"] is True
    code, _, err = _cli("sample", run, "-n", 200, "-o", cli_work / "d.csv")
    assert code == 0 and pd.read_csv(cli_work / "d.csv")["high"].max() <= 60
