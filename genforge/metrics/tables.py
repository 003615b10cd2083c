"""The one evaluation entry point for tables: :func:`evaluate_table`.

Every number is shown beside its **reference**: the same metric for real rows the model
never saw (the holdout) in place of the synthetic rows — what a perfect generator, one that
draws fresh rows from the real distribution, would score on this data. The result has the
same shape as :func:`~genforge.metrics.evaluate_images`' (every metric a row
``{"value", "reference", "explain", "better"}``) so the CLI prints one table for both.

Four families of metrics:

* **Quality** (SDMetrics ``QualityReport``): per-column shape similarity (KS complement for
  numbers and datetimes, TV complement for categories) and column-pair trend similarity
  (correlation / contingency similarity, averaged over the pairs that are clearly related in
  the real data: |Pearson| > 0.5 or Cramér's V > 0.3 — SDMetrics' own thresholds).
* **Diagnostic** (SDMetrics ``DiagnosticReport``): validity (values in range, known
  categories) and structure (same columns).
* **ML usefulness** (train on synthetic, test on real), when a ``target`` is given.
* **Privacy**: distance to the closest real training row (DCR), nearest-neighbour distance
  ratio and exact copies, each against the holdout rows' values.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd

from genforge.errors import ConfigError, DataError

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
}
BETTER = {"exact_copies": "lower", "dcr": "≈ reference", "dcr_5th_percentile": "≈ reference",
          "nndr": "≈ reference"}
SDTYPES = ("numerical", "categorical", "boolean", "datetime", "id")
TSTR_MIN_REGRESSION_VALUES = 20   # a numeric target with more distinct values is regressed
ONEHOT_MAX_CATEGORIES = 100       # privacy encoding: rarer categories share one "other" column
HGB_MAX_CATEGORIES = 254          # HistGradientBoosting's limit (255 bins) less one "other" bin
_OTHER = "__other__"


def _row(value, reference=None, **extra) -> dict[str, Any]:
    return {"value": _num(value), "reference": _num(reference), **extra}


def _num(v):
    """A plain JSON-able number: numpy scalars to Python, NaN/inf to None."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    return v if np.isfinite(v) else None


# ----------------------------------------------------------------------------------------- metadata

def sdv_metadata_from_schema(schema) -> dict:
    """An SDV single-table metadata dict for a genforge :class:`~genforge.data.schema.Schema`.

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


_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d")


def _date_format(values: pd.Series) -> str | None:
    """The ISO-like format every one of ``values`` (strings) parses with, or None."""
    head = values.head(1000).astype(str)
    if head.empty or not head.str.match(r"^\d{4}[-/]\d{2}[-/]\d{2}").all():
        return None
    for fmt in _DATE_FORMATS:
        if pd.to_datetime(head, format=fmt, errors="coerce").notna().all():
            return fmt
    return None


def infer_metadata(df: pd.DataFrame) -> dict:
    """A simple SDV metadata dict from dtypes: numbers -> numerical, bool -> boolean, datetime64 and
    ISO date strings (``2024-01-31``, ``2024-01-31 12:00:00``) -> datetime, other strings that are
    >= 95% unique (20+ values) -> id, everything else -> categorical."""
    columns: dict[str, dict] = {}
    for name in df.columns:
        s = df[name]
        if pd.api.types.is_bool_dtype(s):
            sdtype = "boolean"
        elif pd.api.types.is_numeric_dtype(s):
            sdtype = "numerical"
        elif pd.api.types.is_datetime64_any_dtype(s):
            sdtype = "datetime"
        else:
            values = s.dropna()
            fmt = _date_format(values)
            if fmt:
                columns[name] = {"sdtype": "datetime", "datetime_format": fmt}
                continue
            unique = values.astype(str).nunique()
            sdtype = "id" if len(values) >= 20 and unique >= 0.95 * len(values) else "categorical"
        columns[name] = {"sdtype": sdtype}
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


def _subsample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return df.sample(n=n, random_state=seed) if len(df) > n else df


def _to_datetime(s: pd.Series, fmt: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pd.to_datetime(s, format=fmt, errors="coerce") if fmt else pd.to_datetime(s, errors="coerce")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def datetime_to_days(s: pd.Series, fmt: str | None = None) -> pd.Series:
    """Days since 1970-01-01 as floats (NaN where missing or unparseable)."""
    d = _to_datetime(s, fmt)
    days = (d - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return days.astype(float)


def _numeric(s: pd.Series, meta: dict) -> pd.Series:
    """A numerical or datetime column as float (datetimes: days since 1970)."""
    if meta["sdtype"] == "datetime":
        return datetime_to_days(s, meta.get("datetime_format"))
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    return pd.to_numeric(s, errors="coerce").astype(float)


def _labels(s: pd.Series) -> pd.Series:
    """A categorical column as strings, missing kept as NaN (so 1 and '1' match)."""
    def key(v):
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)
    return s.map(key, na_action="ignore").astype(object)


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


def _quality(real: pd.DataFrame, other: pd.DataFrame, metadata: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import QualityReport

        report = QualityReport()
        report.generate(real, other, metadata, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    return report, {"quality": report.get_score(), "column_shapes": props.get("Column Shapes"),
                    "column_pair_trends": props.get("Column Pair Trends")}


def _diagnostic(real: pd.DataFrame, other: pd.DataFrame, metadata: dict) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sdmetrics.reports.single_table import DiagnosticReport

        report = DiagnosticReport()
        report.generate(real, other, metadata, verbose=False)
    return report.get_score()


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
                     "score": _num(r["Score"]), "reference": _num(ref.get((r["Column 1"], r["Column 2"])))}
                    for _, r in worst.iterrows()]
    return out


# --------------------------------------------------------------------------------------- ML usefulness

def _tstr_frames(frames: list[pd.DataFrame], cols: dict[str, dict], target: str, real: pd.DataFrame):
    """Feature matrices with consistent pandas ``category`` dtypes across all frames."""
    feats = [c for c, m in cols.items() if c != target and m["sdtype"] != "id"]
    out = [pd.DataFrame(index=f.index) for f in frames]
    for c in feats:
        meta = cols[c]
        if meta["sdtype"] in ("numerical", "datetime"):
            for o, f in zip(out, frames):
                o[c] = _numeric(f[c], meta)
            continue
        labelled = [_labels(f[c]) for f in frames]
        counts = labelled[0].value_counts()
        cats = list(counts.index)
        if len(cats) > HGB_MAX_CATEGORIES:
            cats = cats[:HGB_MAX_CATEGORIES]
        keep = set(cats)
        if any(not lab.dropna().isin(keep).all() for lab in labelled):
            cats.append(_OTHER)
        dtype = pd.CategoricalDtype(sorted(cats))
        for o, lab in zip(out, labelled):
            lab = lab.where(lab.isna() | lab.isin(keep), _OTHER)
            o[c] = lab.astype(dtype)
    return out


def _is_regression(real: pd.DataFrame, target: str, meta: dict) -> bool:
    if meta["sdtype"] not in ("numerical", "datetime"):
        return False
    return _numeric(real[target], meta).nunique() > TSTR_MIN_REGRESSION_VALUES


def train_synthetic_test_real(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, target: str,
                              cols: dict[str, dict], *, seed: int = 0, max_rows: int = 20000) -> dict[str, dict]:
    """Gradient-boosted trees trained on synthetic rows and on as many real rows, scored on the holdout.

    Returns metric rows (``value``: synthetic-trained, ``reference``: real-trained): ``tstr_accuracy``,
    ``tstr_f1``, ``tstr_auc`` for a categorical target or ``tstr_r2`` for a numeric one with more
    than 20 distinct values. Id columns are dropped, datetimes become days since 1970.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

    meta = cols[target]
    regression = _is_regression(real, target, meta)

    def ys(df):
        return _numeric(df[target], meta) if regression else _labels(df[target])

    def clean(df):
        return df[ys(df).notna().to_numpy()]

    syn, test = clean(synthetic), clean(holdout)
    real_c = clean(real)
    n = min(len(syn), max_rows)
    syn = _subsample(syn, n, seed)
    real_c = _subsample(real_c, n, seed + 1)
    if len(test) == 0 or len(syn) == 0 or len(real_c) == 0:
        raise DataError(f"the target {target!r} is missing in every synthetic, real or holdout row; "
                        f"pick a target that has values")
    x_real, x_syn, x_test = _tstr_frames([real_c, syn, test], cols, target, real)
    y_real, y_syn, y_test = ys(real_c).to_numpy(), ys(syn).to_numpy(), ys(test).to_numpy()
    if x_test.shape[1] == 0:
        raise ConfigError(f"no feature columns left besides the target {target!r}; TSTR needs other columns")

    scores: dict[str, list[float]] = {}
    for x, y in ((x_syn, y_syn), (x_real, y_real)):
        if regression:
            model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed)
            model.fit(x, y.astype(float))
            scores.setdefault("tstr_r2", []).append(r2_score(y_test.astype(float), model.predict(x_test)))
            continue
        classes = sorted(set(y))
        if len(classes) < 2:   # a generator that made one class: predict it everywhere
            pred = np.full(len(y_test), classes[0], dtype=object)
            proba_by_class = {classes[0]: np.ones(len(y_test))}
        else:
            model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
            model.fit(x, y)
            proba = model.predict_proba(x_test)
            pred = model.classes_[proba.argmax(1)]
            proba_by_class = {c: proba[:, i] for i, c in enumerate(model.classes_)}
        scores.setdefault("tstr_accuracy", []).append(accuracy_score(y_test, pred))
        scores.setdefault("tstr_f1", []).append(f1_score(y_test, pred, average="macro", zero_division=0))
        test_classes = sorted(set(y_test))
        aucs = []
        if len(test_classes) == 2:   # binary: the second class in sorted order is positive
            pos = test_classes[1]
            aucs.append(roc_auc_score(y_test == pos, proba_by_class.get(pos, np.zeros(len(y_test)))))
        elif len(test_classes) > 2:  # one-vs-rest macro average
            for c in test_classes:
                aucs.append(roc_auc_score(y_test == c, proba_by_class.get(c, np.zeros(len(y_test)))))
        scores.setdefault("tstr_auc", []).append(float(np.mean(aucs)) if aucs else np.nan)
    return {k: _row(v[0], v[1]) for k, v in scores.items()}


# ---------------------------------------------------------------------------------------------- privacy

class _Encoder:
    """Rows as points: numbers min-max scaled on the real data (missing -> median + a missing flag),
    datetimes as numbers, categories one-hot (the 100 most frequent; the rest share one column)."""

    def __init__(self, real: pd.DataFrame, cols: dict[str, dict]):
        self.cols = {c: m for c, m in cols.items() if m["sdtype"] != "id"}
        self.num: dict[str, tuple[float, float, float, bool]] = {}
        self.cat: dict[str, list[str]] = {}
        for c, m in self.cols.items():
            if m["sdtype"] in ("numerical", "datetime"):
                v = _numeric(real[c], m)
                lo, hi = (float(v.min()), float(v.max())) if v.notna().any() else (0.0, 1.0)
                med = float(v.median()) if v.notna().any() else 0.0
                self.num[c] = (lo, (hi - lo) or 1.0, med, bool(v.isna().any()))
            else:
                counts = _labels(real[c]).fillna("__missing__").value_counts()
                self.cat[c] = list(counts.index[:ONEHOT_MAX_CATEGORIES])

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        parts = []
        for c, (lo, span, med, flag) in self.num.items():
            v = _numeric(df[c], self.cols[c])
            miss = v.isna().to_numpy()
            x = ((v.fillna(med).to_numpy() - lo) / span).astype(np.float32)
            parts.append(x[:, None])
            if flag or miss.any():
                parts.append(miss.astype(np.float32)[:, None])
        for c, cats in self.cat.items():
            lab = _labels(df[c]).fillna("__missing__")
            index = {v: i for i, v in enumerate(cats)}
            codes = lab.map(index).fillna(len(cats)).astype(int).to_numpy()
            onehot = np.zeros((len(df), len(cats) + 1), np.float32)
            onehot[np.arange(len(df)), codes] = 1.0
            parts.append(onehot)
        return np.hstack(parts) if parts else np.zeros((len(df), 0), np.float32)


def _row_hashes(df: pd.DataFrame, cols: dict[str, dict]) -> np.ndarray:
    """One 64-bit hash per row of the raw values (ids left out; numbers as float64, categories as text)."""
    keep = [c for c in df.columns if cols.get(c, {}).get("sdtype") != "id"]
    norm = pd.DataFrame(index=df.index)
    for c in keep:
        meta = cols.get(c)
        if meta is not None and meta["sdtype"] in ("numerical", "datetime"):
            norm[c] = _numeric(df[c], meta)
        else:
            norm[c] = _labels(df[c]).fillna("\0missing")
    return pd.util.hash_pandas_object(norm, index=False).to_numpy()


def privacy_metrics(real: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, cols: dict[str, dict], *,
                    seed: int = 0, max_rows: int = 20000) -> dict[str, dict]:
    """DCR, its 5th percentile, NNDR (on up to ``max_rows`` rows each) and the exact-copy share (all rows),
    each for the synthetic rows (value) and the holdout rows (reference) against the real training rows."""
    from sklearn.neighbors import NearestNeighbors

    m: dict[str, dict] = {}
    real_hashes = np.unique(_row_hashes(real, cols))
    copies = [float(np.isin(_row_hashes(df, cols), real_hashes).mean()) for df in (synthetic, holdout)]

    enc = _Encoder(real, cols)
    ref = enc.transform(_subsample(real, max_rows, seed + 2))
    if ref.shape[1] > 0 and len(ref) >= 2:
        nn = NearestNeighbors(n_neighbors=2).fit(ref)
        stats = []
        for i, df in enumerate((synthetic, holdout)):
            d, _ = nn.kneighbors(enc.transform(_subsample(df, max_rows, seed + 3 + i)))
            ratio = np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > 0)
            stats.append((np.median(d[:, 0]), np.percentile(d[:, 0], 5), np.median(ratio)))
        m["dcr"] = _row(stats[0][0], stats[1][0])
        m["dcr_5th_percentile"] = _row(stats[0][1], stats[1][1])
        m["exact_copies"] = _row(copies[0], copies[1])
        m["nndr"] = _row(stats[0][2], stats[1][2])
    else:
        m["exact_copies"] = _row(copies[0], copies[1])
    return m


# ------------------------------------------------------------------------------------------ entry point

def evaluate_table(real: pd.DataFrame, synthetic: pd.DataFrame, *, holdout: pd.DataFrame | None = None,
                   target: str | None = None, metadata: dict | None = None, seed: int = 0,
                   max_rows: int = 20000, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate a synthetic table against the real one; returns a plain, JSON-able dict.

    ``real``: the real training table. ``synthetic``: generated rows (same columns). ``holdout``:
    real rows not used for training (default: a seeded 20% of ``real``, the rest is then the
    training table). ``target``: a column to predict for train-on-synthetic-test-on-real.
    ``metadata``: an SDV single-table metadata dict (see :func:`sdv_metadata_from_schema`;
    default :func:`infer_metadata`); columns not in it (text) are left out of every metric
    except the exact-copy check. ``max_rows``: the real, synthetic and holdout tables are each
    subsampled (seeded) to this many rows for SDMetrics, the classifiers and the neighbour search.

    Time (measured on Adult: 15 columns, 105 column pairs, 32,561 training and 16,281 holdout
    rows, subsampled to 20,000; 2 idle CPU cores): about 5 s in all — quality reports ~1.6 s
    (synthetic + holdout reference; SDMetrics' column pair trends are O(columns²), so this part
    grows fastest with width: ~4 ms a pair at 20,000 rows once warm), diagnostic 0.05 s, TSTR
    0.8 s, privacy (neighbour search on ~110 one-hot dimensions) 2 s. The ``seconds`` entry of the
    result has the split.

    Returns ``{"metrics": {name: {"value", "reference", "explain", "better"}}, "columns":
    [{"column", "metric", "score", "reference"}], "pair_trends": {...}, "n_real", "n_synthetic",
    "n_holdout", "holdout", "target", "metadata", "seconds"}``.
    """
    t_start = time.perf_counter()
    say = log or (lambda msg: None)
    _check_tables(real, synthetic, holdout)
    if holdout is None:
        shuffled = real.sample(frac=1.0, random_state=seed)
        n_hold = max(1, int(round(0.2 * len(real))))
        holdout, real = shuffled.iloc[:n_hold], shuffled.iloc[n_hold:]
        holdout_desc = "20% of real, seeded split"
    else:
        holdout_desc = "given holdout table"
    if metadata is None:
        metadata = infer_metadata(real)
    cols = _check_metadata(metadata, real)
    if target is not None:
        if target not in real.columns:
            raise ConfigError(f"target column {target!r} is not in the table; pick one of: "
                              f"{', '.join(map(str, real.columns))}")
        if target not in cols or cols[target]["sdtype"] == "id":
            raise ConfigError(f"target column {target!r} is an id or text column; pick a categorical or "
                              f"numerical column")
    real, synthetic, holdout = (_align(df, real, cols) for df in (real, synthetic, holdout))
    sdm_meta = {"columns": {c: dict(m) for c, m in cols.items()}}
    timings: dict[str, float] = {}
    m: dict[str, dict] = {}

    real_s = _sdm_frame(_subsample(real, max_rows, seed), cols)
    syn_s = _sdm_frame(_subsample(synthetic, max_rows, seed), cols)
    hold_s = _sdm_frame(_subsample(holdout, max_rows, seed), cols)

    say(f"quality report: synthetic ({len(syn_s)} rows) vs real ({len(real_s)} rows)")
    t = time.perf_counter()
    rep, q = _quality(real_s, syn_s, sdm_meta)
    timings["quality"] = time.perf_counter() - t
    say("quality report: holdout vs real (reference)")
    t = time.perf_counter()
    ref_rep, q_ref = _quality(real_s, hold_s, sdm_meta)
    timings["quality_reference"] = time.perf_counter() - t
    for k in ("quality", "column_shapes", "column_pair_trends"):
        m[k] = _row(q[k], q_ref[k])

    shapes = rep.get_details("Column Shapes")
    ref_shapes = ref_rep.get_details("Column Shapes")
    ref_by_col = dict(zip(ref_shapes.get("Column", []), ref_shapes.get("Score", [])))
    columns = [{"column": str(r["Column"]), "metric": str(r["Metric"]), "score": _num(r["Score"]),
                "reference": _num(ref_by_col.get(r["Column"]))} for _, r in shapes.iterrows()]
    pair_trends = _pair_summary(rep, ref_rep)

    say("diagnostic report")
    t = time.perf_counter()
    m["diagnostic"] = _row(_diagnostic(real_s, syn_s, sdm_meta), 1.0)
    timings["diagnostic"] = time.perf_counter() - t

    if target is not None:
        say(f"train on synthetic, test on real: target {target!r}")
        t = time.perf_counter()
        m.update(train_synthetic_test_real(real, synthetic, holdout, target, cols, seed=seed, max_rows=max_rows))
        timings["tstr"] = time.perf_counter() - t

    say("privacy: distances to the closest real rows")
    t = time.perf_counter()
    m.update(privacy_metrics(real, synthetic, holdout, cols, seed=seed, max_rows=max_rows))
    timings["privacy"] = time.perf_counter() - t

    for key, row in m.items():
        row["explain"] = EXPLAIN[key]
        row["better"] = BETTER.get(key, "higher")
    timings["total"] = time.perf_counter() - t_start
    return {
        "metrics": m,
        "columns": columns,
        "pair_trends": pair_trends,
        "n_real": len(real), "n_synthetic": len(synthetic), "n_holdout": len(holdout),
        "holdout": holdout_desc,
        "target": target,
        "max_rows": max_rows,
        "metadata": sdm_meta,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
    }
