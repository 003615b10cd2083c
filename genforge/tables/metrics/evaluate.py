"""The one evaluation entry point for tables: :func:`evaluate_table`.

Every number is shown beside its **reference**: the same metric for real rows the model
never saw (the holdout) in place of the synthetic rows — what a perfect generator, one that
draws fresh rows from the real distribution, would score on this data. The result has the
same shape as :func:`~genforge.images.metrics.evaluate_images`' (every metric a row
``{"value", "reference", "explain", "better"}``) so the CLI prints one table for both.

Four families of metrics:

* **Quality** (SDMetrics ``QualityReport``): per-column shape similarity (KS complement for
  numbers and datetimes, TV complement for categories) and column-pair trend similarity
  (correlation / contingency similarity, averaged over the pairs that are clearly related in
  the real data: |Pearson| > 0.5 or Cramér's V > 0.3 — SDMetrics' own thresholds).
* **Diagnostic** (SDMetrics ``DiagnosticReport``): validity (values in range, known
  categories) and structure (same columns).
* **ML usefulness** (train on synthetic, test on real), when a ``target`` is given:
  :mod:`~genforge.tables.metrics.utility`.
* **Privacy**: distance to the closest real training row (DCR), nearest-neighbour distance
  ratio and exact copies, each against the holdout rows' values: :mod:`~genforge.tables.metrics.privacy`.
* **Realism**: each rule's share of obeying rows, rows with combinations of common values never seen,
  the distance-to-closest-record distribution and the share of rows closer to training than to holdout
  rows: :mod:`~genforge.tables.metrics.realism`.

This module holds the entry point, the metadata helpers and the SDMetrics part; how cells become
numbers and labels is :mod:`~genforge.tables.metrics.values`.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import pandas as pd

from genforge.core.errors import ConfigError, DataError, GenforgeWarning
from genforge.core.metrics.rows import annotate_rows, json_scalar, metric_row
from genforge.core.metrics.timing import Stopwatch
from genforge.tables.data.readers import check_unique_columns
from genforge.tables.data.schema import infer_schema
from genforge.tables.metrics.attacks import EXPLAIN as ATTACKS_EXPLAIN
from genforge.tables.metrics.attacks import anonymeter_risks, membership_attacks, overlap_share
from genforge.tables.metrics.privacy import ONEHOT_MAX_CATEGORIES, closest_distances, privacy_metrics
from genforge.tables.metrics.realism import realism_metrics
from genforge.tables.metrics.utility import HGB_MAX_CATEGORIES, TSTR_MIN_REGRESSION_VALUES, train_synthetic_test_real
from genforge.tables.metrics.values import _labels, _subsample, datetime_to_days

# the TSTR / privacy functions and their constants are re-exported: import them from here or from their modules
__all__ = ["BETTER", "EXPLAIN", "HGB_MAX_CATEGORIES", "ONEHOT_MAX_CATEGORIES", "SDTYPES", "TSTR_MIN_REGRESSION_VALUES",
           "datetime_to_days", "evaluate_table", "privacy_metrics", "sdv_metadata_from_schema",
           "train_synthetic_test_real"]

EXPLAIN = {
    "quality": "SDMetrics quality score: mean of column shapes and column pair trends (1 = indistinguishable)",
    "column_shapes": "per-column distribution similarity, averaged (KS complement for numbers/dates, TV complement "
                     "for categories)",
    "column_pair_trends": "similarity of pairwise correlations / contingency tables, averaged over the pairs related "
                          "in the real data",
    "diagnostic": "SDMetrics diagnostic score: values in the real ranges and categories, same columns (1 = valid)",
    "tstr_accuracy": "accuracy on the real holdout of a gradient-boosted classifier trained on synthetic rows "
                     "(reference: trained on as many real rows)",
    "tstr_f1": "macro F1 on the real holdout, trained on synthetic rows (reference: trained on real rows)",
    "tstr_auc": "ROC AUC on the real holdout (binary: positive class; multiclass: one-vs-rest macro), trained on "
                "synthetic rows",
    "tstr_r2": "R² on the real holdout of a gradient-boosted regressor trained on synthetic rows (reference: trained "
               "on real rows)",
    "dcr": "median distance from a synthetic row to its closest real training row (reference: holdout rows; much "
           "smaller = copying)",
    "dcr_5th_percentile": "5th percentile of that distance: the closest synthetic rows (≈0 while the reference is "
                          "not = some rows are copies)",
    "exact_copies": "share of synthetic rows identical to a real training row (reference: the same share for "
                    "holdout rows)",
    "nndr": "median ratio of the distances to the 1st and 2nd closest real rows (near 0 = singles out one real row)",
    "rules_kept": "share of rows obeying the least obeyed rule (the realism section lists every rule)",
    "unseen_combinations": "share of rows holding two common categorical values that no real training row holds "
                           "together (reference: holdout rows)",
    "closer_to_training": "share of rows closer to a training row than to a holdout row of a same-size set (about "
                          "one half: neither copying nor inventing; reference: half the holdout vs the other half)",
}
BETTER = {"exact_copies": "lower", "dcr": "≈ reference", "dcr_5th_percentile": "≈ reference",
          "nndr": "≈ reference", "unseen_combinations": "lower", "closer_to_training": "≈ reference"}
SDTYPES = ("numerical", "categorical", "boolean", "datetime", "id")


# ----------------------------------------------------------------------------------------- metadata

def sdv_metadata_from_schema(schema) -> dict:
    """An SDV single-table metadata dict for a genforge :class:`~genforge.tables.data.schema.Schema`.

    continuous/integer -> numerical, categorical -> categorical, boolean -> boolean,
    datetime -> datetime (with its ``datetime_format``), id -> id; text columns are left out
    (no metric covers free text).
    """
    kinds = {"continuous": "numerical", "integer": "numerical", "categorical": "categorical",
             "boolean": "boolean", "datetime": "datetime", "id": "id"}
    columns: dict[str, dict] = {}
    for col in schema.columns:
        if col.kind == "text":
            continue
        if col.kind not in kinds:
            raise ConfigError(f"column {col.name!r} has unknown kind {col.kind!r}; use one of "
                              f"{', '.join(sorted(kinds))} or text")
        meta = {"sdtype": kinds[col.kind]}
        fmt = getattr(col, "datetime_format", None)
        if col.kind == "datetime" and fmt:
            meta["datetime_format"] = fmt
        columns[col.name] = meta
    return {"columns": columns}


def _check_metadata(metadata: dict, real: pd.DataFrame) -> dict[str, dict]:
    if not isinstance(metadata, dict) or not isinstance(metadata.get("columns"), dict):
        raise ConfigError("metadata must be an SDV single-table dict like {'columns': {'age': {'sdtype': "
                          "'numerical'}}}; build one with sdv_metadata_from_schema or leave it out")
    cols = metadata["columns"]
    unknown = [c for c in cols if c not in real.columns]
    if unknown:
        raise ConfigError(f"metadata names columns that are not in the table: {', '.join(map(str, unknown))}; "
                          f"remove them from the metadata")
    for name, meta in cols.items():
        if meta.get("sdtype") not in SDTYPES:
            raise ConfigError(f"metadata column {name!r} has sdtype {meta.get('sdtype')!r}; use one of "
                              f"{', '.join(SDTYPES)}")
    return cols


# ------------------------------------------------------------------------------------- data preparation

def _check_tables(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None) -> None:
    if not isinstance(real, pd.DataFrame) or not isinstance(synthetic, pd.DataFrame):
        raise DataError("real and synthetic tables must be pandas DataFrames; load the CSVs with pandas.read_csv")
    if len(real) < 2:
        raise DataError(f"the real table has {len(real)} rows; need at least 2 to evaluate")
    if len(synthetic) == 0:
        raise DataError("the synthetic table is empty; generate some rows first (genforge sample --n ...)")
    for name, df in (("real", real), ("synthetic", synthetic), ("holdout", holdout)):
        if df is not None:
            check_unique_columns(df, f"the {name} table")
    for name, other in (("synthetic", synthetic), ("holdout", holdout)):
        if other is None:
            continue
        missing = [str(c) for c in real.columns if c not in other.columns]
        extra = [str(c) for c in other.columns if c not in real.columns]
        if missing or extra:
            parts = ([f"missing columns {', '.join(missing)}"] if missing else []) + \
                    ([f"extra columns {', '.join(extra)}"] if extra else [])
            raise DataError(f"the {name} table has {' and '.join(parts)} compared with the real table; "
                            f"give it exactly the real table's columns")
    if holdout is not None and len(holdout) == 0:
        raise DataError("the holdout table is empty; pass real rows that were not used for training, or none")


def _align(df: pd.DataFrame, real: pd.DataFrame, cols: dict[str, dict]) -> pd.DataFrame:
    """``df`` in the real table's column order, numerical columns coerced to numbers."""
    df = df[list(real.columns)].reset_index(drop=True).copy()
    for name, meta in cols.items():
        if meta["sdtype"] == "numerical" and not pd.api.types.is_numeric_dtype(df[name]):
            df[name] = pd.to_numeric(df[name], errors="coerce")
    return df


# ------------------------------------------------------------------------------------------ SDMetrics

def _sdm_frame(df: pd.DataFrame, cols: dict[str, dict]) -> pd.DataFrame:
    out = df[list(cols)].copy()
    for name, meta in cols.items():
        if meta["sdtype"] == "categorical" and not pd.api.types.is_numeric_dtype(out[name]):
            out[name] = _labels(out[name])
    return out


def _sdm_report(name: str, real: pd.DataFrame, other: pd.DataFrame, metadata: dict):
    """SDMetrics' single-table report ``name`` (``QualityReport``, ``DiagnosticReport``), ``other`` vs ``real``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports import single_table

        report = getattr(single_table, name)()
        report.generate(real, other, metadata, verbose=False)
    return report


def _quality(real: pd.DataFrame, other: pd.DataFrame, metadata: dict):
    report = _sdm_report("QualityReport", real, other, metadata)
    props = report.get_properties().set_index("Property")["Score"]
    return report, {"quality": report.get_score(), "column_shapes": props.get("Column Shapes"),
                    "column_pair_trends": props.get("Column Pair Trends")}


def _diagnostic(real: pd.DataFrame, other: pd.DataFrame, metadata: dict) -> float:
    return _sdm_report("DiagnosticReport", real, other, metadata).get_score()


def _pair_summary(report, ref_report, k: int = 5) -> dict:
    """How many pairs were scored, and the worst-matched related pairs."""
    d = report.get_details("Column Pair Trends")
    out: dict[str, Any] = {"pairs": int(len(d))}
    if d.empty or "Score" not in d:
        return out
    meets = d["Meets Threshold?"].astype("boolean").fillna(False) if "Meets Threshold?" in d else \
        pd.Series(True, index=d.index)
    out["pairs_scored"] = int(meets.sum())
    ref = {}
    rd = ref_report.get_details("Column Pair Trends") if ref_report is not None else None
    if rd is not None and not rd.empty:
        ref = {(r["Column 1"], r["Column 2"]): r["Score"] for _, r in rd.iterrows()}
    worst = d[meets].sort_values("Score").head(k)
    out["worst"] = [{"columns": [str(r["Column 1"]), str(r["Column 2"])], "metric": str(r["Metric"]),
                     "score": json_scalar(r["Score"]),
                     "reference": json_scalar(ref.get((r["Column 1"], r["Column 2"])))}
                    for _, r in worst.iterrows()]
    return out


# ------------------------------------------------------------------------------------------ entry point

def evaluate_table(real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame | None = None,
                   target: str | None = None, metadata: dict | None = None, seed: int = 0,
                   max_rows: int = 20000, log: Callable[[str], None] | None = None,
                   sensitive: list[str] | None = None, rules: list | None = None, schema=None) -> dict[str, Any]:
    """Evaluate a synthetic table against the real one; returns a plain, JSON-able dict.

    ``real``: the real training table. ``synthetic``: generated rows (same columns). ``holdout``:
    real rows not used for training (default: a seeded 20% of ``real``, the rest is then the
    training table). ``target``: a column to predict for train-on-synthetic-test-on-real.
    ``metadata``: an SDV single-table metadata dict (see :func:`sdv_metadata_from_schema`;
    default: inferred by :func:`~genforge.tables.data.schema.infer_schema`, as for training); columns
    not in it (text) are left out of every metric except the exact-copy check. ``max_rows``: the
    real, synthetic and holdout tables are each
    subsampled (seeded) to this many rows for SDMetrics, the classifiers and the neighbour search.

    Time (measured on Adult: 15 columns, 105 column pairs, 32,561 training and 16,281 holdout
    rows, subsampled to 20,000; 2 idle CPU cores): about 5 s in all — quality reports ~1.6 s
    (synthetic + holdout reference; SDMetrics' column pair trends are O(columns²), so this part
    grows fastest with width: ~4 ms a pair at 20,000 rows once warm), diagnostic 0.05 s, TSTR
    0.8 s, privacy (neighbour search on ~110 one-hot dimensions) 2 s. The ``seconds`` entry of the
    result has the split.

    With a given ``holdout`` (rows the generator never saw), membership-inference attacks run too, and
    anonymeter's singling-out, linkability and inference risks for the ``sensitive`` columns
    (:mod:`~genforge.tables.metrics.attacks`); a holdout that shares rows with ``real`` is warned about.

    ``rules`` (with the ``schema`` they were made for): the rules the realism section checks (a model's
    ``model.rules.rules``; default: those :func:`~genforge.tables.data.rule_detect.detect_rules` finds in ``real``).

    Returns ``{"metrics": {name: {"value", "reference", "explain", "better"}}, "columns":
    [{"column", "metric", "score", "reference"}], "pair_trends": {...}, "realism": {"rules": [...], "dcr":
    {...}}, "n_real", "n_synthetic", "n_holdout", "holdout", "target", "metadata", "seconds"}``.
    """
    watch = Stopwatch()
    say = log or (lambda msg: None)
    _check_tables(real, synthetic, holdout)
    given = holdout is not None
    _check_sensitive(sensitive, real, given)
    real, holdout, holdout_desc = _split_holdout(real, holdout, seed)
    cols = _columns_to_score(metadata, real, target)
    real, synthetic, holdout = (_align(df, real, cols) for df in (real, synthetic, holdout))
    sdm_meta = {"columns": {c: dict(m) for c, m in cols.items()}}
    m, columns, pair_trends = _sdmetrics(real, synthetic, holdout, cols, sdm_meta, seed=seed, max_rows=max_rows,
                                         watch=watch, say=say)
    if target is not None:
        say(f"train on synthetic, test on real: target {target!r}")
        with watch("tstr"):
            m.update(train_synthetic_test_real(real, synthetic, holdout, target, cols, seed=seed, max_rows=max_rows))
    say("privacy: distances to the closest real rows")
    with watch("privacy"):
        distances = closest_distances(real, [synthetic, holdout], cols, seed=seed, max_rows=max_rows)
        m.update(privacy_metrics(real, synthetic, holdout, cols, seed=seed, max_rows=max_rows, distances=distances))
    if given:
        _warn_overlap(real, holdout, cols)
        say("privacy attacks: membership inference (distance, density)")
        with watch("attacks"):
            m.update(membership_attacks(real, synthetic, holdout, cols, seed=seed))
            if sensitive:
                say(f"privacy attacks: anonymeter on {', '.join(sensitive)}")
                m.update(anonymeter_risks(real, synthetic, holdout, sensitive, cols, seed=seed))
    say("realism: rules, unseen combinations, closer to training or to holdout rows")
    with watch("realism"):
        if rules is None or schema is None:
            from genforge.tables.data.rule_detect import detect_rules

            schema = infer_schema(real)
            rules = detect_rules(real, schema)[0]
        rows, realism = realism_metrics(real, synthetic, holdout, cols, rules=list(rules), schema=schema,
                                        distances=distances, seed=seed, max_rows=max_rows)
        m.update(rows)
    explain = {**EXPLAIN, **ATTACKS_EXPLAIN,
               **{k: f"{ATTACKS_EXPLAIN['inference_risk']} ({k[15:-1]})" for k in m if k.startswith("inference_risk[")}}
    annotate_rows(m, explain, {**BETTER, **{k: ("≈ 0.5" if k.startswith("mia_") else "lower")
                                            for k in m if k.startswith(("mia_", "singling", "linkab", "inference"))}})
    return {
        "metrics": m,
        "columns": columns,
        "pair_trends": pair_trends,
        "realism": realism,
        "n_real": len(real), "n_synthetic": len(synthetic), "n_holdout": len(holdout),
        "holdout": holdout_desc,
        "attacks": ("membership inference against the given holdout" if given else
                    "not run: membership attacks need --real holdout rows the generator never saw"),
        "target": target,
        "max_rows": max_rows,
        "metadata": sdm_meta,
        "seconds": watch.seconds(),
    }


def _check_sensitive(sensitive: list[str] | None, real: pd.DataFrame, holdout_given: bool) -> None:
    """``--sensitive`` columns must exist, and the attacks need real holdout rows."""
    for col in sensitive or []:
        if col not in real.columns:
            raise ConfigError(f"--sensitive column {col!r} is not in the table; pick from: "
                              f"{', '.join(map(str, real.columns))}")
    if sensitive and not holdout_given:
        raise ConfigError("--sensitive needs --real HOLDOUT: real rows the generator never saw (the attacks' "
                          "control set and reference)")


def _warn_overlap(real: pd.DataFrame, holdout: pd.DataFrame, cols: dict[str, dict]) -> None:
    share = overlap_share(real, holdout, cols)
    if share > 0:
        warnings.warn(GenforgeWarning(
            f"{share:.1%} of the holdout rows are identical to training rows, so held-out scores and membership "
            f"attacks read better than they are; give holdout rows that were not used for training"))


def _split_holdout(real: pd.DataFrame, holdout: pd.DataFrame | None,
                   seed: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(real training rows, holdout rows, how the holdout was chosen)``: a seeded 20% of ``real``
    when no holdout is given."""
    if holdout is not None:
        return real, holdout, "given holdout table"
    shuffled = real.sample(frac=1.0, random_state=seed)
    n_hold = max(1, int(round(0.2 * len(real))))
    return shuffled.iloc[n_hold:], shuffled.iloc[:n_hold], "20% of real, seeded split"


def _columns_to_score(metadata: dict | None, real: pd.DataFrame, target: str | None) -> dict[str, dict]:
    """The checked metadata columns (inferred with the training schema rules when ``metadata`` is None);
    ``target`` must be one of them and not an id."""
    if metadata is None:
        metadata = sdv_metadata_from_schema(infer_schema(real))
    cols = _check_metadata(metadata, real)
    if target is not None:
        if target not in real.columns:
            raise ConfigError(f"target column {target!r} is not in the table; pick one of: "
                              f"{', '.join(map(str, real.columns))}")
        if target not in cols or cols[target]["sdtype"] == "id":
            raise ConfigError(f"target column {target!r} is an id or text column; pick a categorical or "
                              f"numerical column")
    return cols


def _sdmetrics(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, cols: dict[str, dict],
               sdm_meta: dict, *, seed: int, max_rows: int, watch: Stopwatch,
               say: Callable[[str], None]) -> tuple[dict[str, dict], list[dict], dict]:
    """SDMetrics quality (synthetic, and the holdout as reference) and diagnostic rows, the per-column
    shape scores and the column-pair summary, on seeded subsamples of ``max_rows`` rows."""
    real_s = _sdm_frame(_subsample(real, max_rows, seed), cols)
    syn_s = _sdm_frame(_subsample(synthetic, max_rows, seed), cols)
    hold_s = _sdm_frame(_subsample(holdout, max_rows, seed), cols)
    say(f"quality report: synthetic ({len(syn_s)} rows) vs real ({len(real_s)} rows)")
    with watch("quality"):
        rep, q = _quality(real_s, syn_s, sdm_meta)
    say("quality report: holdout vs real (reference)")
    with watch("quality_reference"):
        ref_rep, q_ref = _quality(real_s, hold_s, sdm_meta)
    m = {k: metric_row(q[k], q_ref[k]) for k in ("quality", "column_shapes", "column_pair_trends")}
    shapes = rep.get_details("Column Shapes")
    ref_shapes = ref_rep.get_details("Column Shapes")
    ref_by_col = dict(zip(ref_shapes.get("Column", []), ref_shapes.get("Score", [])))
    columns = [{"column": str(r["Column"]), "metric": str(r["Metric"]), "score": json_scalar(r["Score"]),
                "reference": json_scalar(ref_by_col.get(r["Column"]))} for _, r in shapes.iterrows()]
    say("diagnostic report")
    with watch("diagnostic"):
        m["diagnostic"] = metric_row(_diagnostic(real_s, syn_s, sdm_meta), 1.0)
    return m, columns, _pair_summary(rep, ref_rep)
