"""The realism section of table evaluation: rules kept, unseen combinations of common values, distance to
closest record beside holdout rows, and rows closer to training than to holdout rows. Copies of the real
rows and rows with independently shuffled columns are the two ends each figure must tell apart.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from genforge.tables.metrics.evaluate import evaluate_table
from genforge.tables.metrics.report import write_table_report

from test_tables_rules import ruled_table


@pytest.fixture(scope="module")
def frames():
    real, holdout = ruled_table(1500, seed=0), ruled_table(1500, seed=1)  # one size: a copy is closer to training
    rng = np.random.default_rng(5)
    shuffled = real.apply(lambda col: col.sample(frac=1.0, random_state=int(rng.integers(1e6))).to_numpy())
    return real, holdout, real.sample(frac=1.0, random_state=2), shuffled


@pytest.fixture(scope="module")
def results(frames):
    real, holdout, copy, shuffled = frames
    return {name: evaluate_table(real, df, holdout=holdout, seed=0)
            for name, df in (("copy", copy), ("shuffled", shuffled), ("fresh", ruled_table(1500, seed=3)))}


def test_rules_found_in_the_real_rows_are_checked_on_every_row(results):
    rules = {r["rule"]: r for r in results["copy"]["realism"]["rules"]}
    assert {"grade -> points", "start <= end", "never kind=cat & size=huge"} <= set(rules)
    assert all(r["value"] == 1.0 and r["reference"] == 1.0 for r in rules.values())
    shuffled = {r["rule"]: r["value"] for r in results["shuffled"]["realism"]["rules"]}
    assert shuffled["grade -> points"] < 0.5 and shuffled["start <= end"] < 0.8
    m = results["shuffled"]["metrics"]["rules_kept"]
    assert m["value"] < 0.5 and m["reference"] == 1.0 and m["rules"] == len(rules)


def test_unseen_combinations_are_zero_for_real_rows_and_many_for_shuffled_ones(results):
    assert results["copy"]["metrics"]["unseen_combinations"]["value"] == 0.0
    assert results["fresh"]["metrics"]["unseen_combinations"]["value"] == 0.0
    assert results["shuffled"]["metrics"]["unseen_combinations"]["value"] > 0.05
    assert results["shuffled"]["metrics"]["unseen_combinations"]["reference"] == 0.0


def test_closer_to_training_is_one_for_copies_and_a_half_for_fresh_rows(results):
    assert results["copy"]["metrics"]["closer_to_training"]["value"] > 0.95
    assert results["fresh"]["metrics"]["closer_to_training"]["value"] == pytest.approx(0.5, abs=0.08)
    assert results["fresh"]["metrics"]["closer_to_training"]["reference"] == pytest.approx(0.5, abs=0.08)


def test_dcr_distribution_beside_the_holdout(results):
    copy, fresh = results["copy"]["realism"]["dcr"], results["fresh"]["realism"]["dcr"]
    assert copy["quantiles"] == [5, 25, 50, 75, 95] and max(copy["synthetic"]) == pytest.approx(0.0, abs=1e-6)
    assert fresh["synthetic"][2] == pytest.approx(fresh["holdout"][2], rel=0.3)
    assert sum(fresh["synthetic_share"]) == pytest.approx(1.0) and len(fresh["edges"]) == 31
    json.dumps(results["fresh"], allow_nan=False)  # strict JSON, as --json prints it


def test_the_report_shows_the_realism_section(results, frames, tmp_path):
    real, _, _, shuffled = frames
    html = write_table_report(tmp_path / "r.html", results["shuffled"], real, shuffled, title="t").read_text()
    assert "<h2>Realism</h2>" in html, html[:300]
    assert "<td>grade -> points</td>" in html
    assert "alt=\"distance to closest record\"" in html
    assert re.search(r"<td>unseen_combinations</td>", html)
