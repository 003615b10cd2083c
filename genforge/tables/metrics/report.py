"""The HTML evaluation report for tables: self-contained (plots inlined as PNG), opens offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from genforge.core.report import fig_png, pyplot, write_report
from genforge.tables.data.schema import infer_schema
from genforge.tables.metrics.evaluate import sdv_metadata_from_schema
from genforge.tables.metrics.values import _labels, _numeric, _subsample

MAX_COLUMNS = 16          # distribution plots
MAX_HEATMAP_COLUMNS = 30  # association heatmaps
TOP_CATEGORIES = 15
PLOT_ROWS = 20000         # rows (each table) behind the plots, seeded subsample
REAL_COLOR, SYN_COLOR = "#4c72b0", "#dd8452"
DPI = 90                  # plots in the page


def _plot_numeric(ax, r: pd.Series, s: pd.Series, xlabel: str) -> None:
    r, s = r.dropna().to_numpy(), s.dropna().to_numpy()
    both = np.concatenate([r, s])
    if len(both) == 0:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        return
    base = r if len(r) else both
    lo, hi = np.percentile(base, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(both.min()), float(both.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - pad, hi + pad
    bins = np.linspace(lo, hi, 31)
    for vals, label, color in ((r, "real", REAL_COLOR), (s, "synthetic", SYN_COLOR)):
        if len(vals):   # values outside the real range pile up in the edge bins
            ax.hist(np.clip(vals, lo, hi), bins=bins, density=True, alpha=0.5, label=label, color=color)
    ax.set_xlabel(xlabel)
    ax.set_yticks([])


def _plot_categorical(ax, r: pd.Series, s: pd.Series) -> None:
    r, s = r.fillna("(missing)"), s.fillna("(missing)")
    rc = r.value_counts(normalize=True)
    sc = s.value_counts(normalize=True)
    top = list(rc.index[:TOP_CATEGORIES])
    for extra in sc.index:  # synthetic-only categories that are frequent still deserve a bar
        if len(top) >= TOP_CATEGORIES:
            break
        if extra not in top:
            top.append(extra)
    rv = [rc.get(c, 0.0) for c in top]
    sv = [sc.get(c, 0.0) for c in top]
    rest_r, rest_s = 1 - sum(rv), 1 - sum(sv)
    labels = [str(c)[:18] for c in top]
    if rest_r > 1e-9 or rest_s > 1e-9:
        labels.append("(other)")
        rv.append(rest_r)
        sv.append(rest_s)
    k = np.arange(len(labels))
    ax.bar(k - 0.2, rv, 0.4, label="real", color=REAL_COLOR)
    ax.bar(k + 0.2, sv, 0.4, label="synthetic", color=SYN_COLOR)
    ax.set_xticks(k, labels, rotation=60 if len(labels) > 3 else 0, ha="right" if len(labels) > 3 else "center",
                  fontsize=7)
    ax.set_ylabel("share")


def _distribution(name: str, meta: dict, real: pd.DataFrame, synthetic: pd.DataFrame, score) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 2.7))
    if meta["sdtype"] == "numerical":
        _plot_numeric(ax, _numeric(real[name], meta), _numeric(synthetic[name], meta), name)
    elif meta["sdtype"] == "datetime":
        to_year = lambda d: 1970 + d / 365.2425  # noqa: E731
        _plot_numeric(ax, to_year(_numeric(real[name], meta)), to_year(_numeric(synthetic[name], meta)),
                      f"{name} (year)")
    else:
        _plot_categorical(ax, _labels(real[name]), _labels(synthetic[name]))
    title = name if score is None else f"{name} — shape score {score:.3f}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return fig_png(fig, dpi=DPI)


def association_matrix(df: pd.DataFrame, cols: dict[str, dict]) -> tuple[list[str], np.ndarray]:
    """Pairwise association of the columns in ``cols`` (ids left out).

    numbers/dates vs numbers/dates: Pearson r (signed); category vs category: Cramér's V;
    number vs category: the correlation ratio η. All but Pearson lie in [0, 1]. Missing
    numbers are filled with the median, missing categories are a category of their own.
    """
    from scipy.stats.contingency import association

    names = [c for c, m in cols.items() if m["sdtype"] != "id"][:MAX_HEATMAP_COLUMNS]
    numeric, codes = {}, {}
    for c in names:
        m = cols[c]
        if m["sdtype"] in ("numerical", "datetime"):
            v = _numeric(df[c], m)
            numeric[c] = v.fillna(v.median() if v.notna().any() else 0.0).to_numpy()
        else:
            codes[c] = pd.factorize(_labels(df[c]).fillna("(missing)"))[0]
    k = len(names)
    mat = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            a, b = names[i], names[j]
            if a in numeric and b in numeric:
                x, y = numeric[a], numeric[b]
                v = np.corrcoef(x, y)[0, 1] if x.std() > 0 and y.std() > 0 else 0.0
            elif a in codes and b in codes:
                table = pd.crosstab(codes[a], codes[b]).to_numpy()
                v = association(table, method="cramer") if min(table.shape) > 1 else 0.0
            else:
                x, g = (numeric[a], codes[b]) if a in numeric else (numeric[b], codes[a])
                v = _correlation_ratio(x, g)
            mat[i, j] = mat[j, i] = v
    return names, mat


def _correlation_ratio(x: np.ndarray, groups: np.ndarray) -> float:
    total = ((x - x.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    counts = np.bincount(groups)
    means = np.bincount(groups, weights=x) / np.maximum(counts, 1)
    between = (counts * (means - x.mean()) ** 2).sum()
    return float(np.sqrt(between / total))


def _heatmaps(real: pd.DataFrame, synthetic: pd.DataFrame, cols: dict[str, dict]) -> str | None:
    names, a = association_matrix(real, cols)
    if len(names) < 2:
        return None
    _, b = association_matrix(synthetic, cols)
    plt = pyplot()
    size = max(3.5, 0.32 * len(names) + 1.5)
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size), constrained_layout=True)
    for ax, mat, title, cmap, vmin in ((axes[0], a, "real", "RdBu_r", -1), (axes[1], b, "synthetic", "RdBu_r", -1),
                                       (axes[2], np.abs(a - b), "|real − synthetic|", "Reds", 0)):
        im = ax.imshow(mat, cmap=cmap, vmin=vmin, vmax=1)
        ax.set_title(title)
        ax.set_xticks(range(len(names)), [n[:14] for n in names], rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), [n[:14] for n in names], fontsize=7)
        fig.colorbar(im, ax=ax, shrink=0.7)
    return fig_png(fig, dpi=DPI)


def _shape_scores(columns: list[dict]) -> str | None:
    if not columns:
        return None
    plt = pyplot()
    names = [c["column"] for c in columns]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(names) + 1))
    y = np.arange(len(names))
    ax.barh(y, [c["score"] if c["score"] is not None else 0 for c in columns], color=SYN_COLOR,
            label="synthetic")
    ref = [c.get("reference") for c in columns]
    if any(r is not None for r in ref):
        ax.scatter([r if r is not None else np.nan for r in ref], y, marker="|", s=200, color="k",
                   label="reference (holdout)", zorder=3)
    ax.set_yticks(y, [n[:24] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("shape score (1 = same distribution)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig_png(fig, dpi=DPI)


def _dcr_plot(dcr: dict | None) -> str | None:
    """Distance to closest record: synthetic and holdout rows' shares per distance bin."""
    if not dcr or not dcr.get("edges"):
        return None
    plt = pyplot()
    edges = np.asarray(dcr["edges"], dtype=float)
    mids, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.bar(mids, dcr["holdout_share"], width=width, alpha=0.5, color=REAL_COLOR, label="holdout (real)")
    ax.bar(mids, dcr["synthetic_share"], width=width, alpha=0.5, color=SYN_COLOR, label="synthetic")
    ax.set_xlabel("distance to the closest real training row")
    ax.set_ylabel("share of rows")
    ax.legend(fontsize=7)
    return fig_png(fig, dpi=DPI)


def write_table_report(path: str | Path, result: dict, real: pd.DataFrame, synthetic: pd.DataFrame, *,
                       title: str, metadata: dict | None = None) -> Path:
    """Write a self-contained HTML report for :func:`~genforge.tables.metrics.evaluate.evaluate_table`'s ``result``.

    ``metadata``: the SDV metadata used for the evaluation (default: the one stored in ``result``,
    else inferred from ``real``). Plots use up to 20,000 rows of each table (seeded subsample).
    """
    if metadata is None:
        metadata = result.get("metadata") or sdv_metadata_from_schema(infer_schema(real))
    cols = {c: m for c, m in metadata["columns"].items() if c in real.columns and c in synthetic.columns}
    real_p, syn_p = _subsample(real, PLOT_ROWS, 0), _subsample(synthetic, PLOT_ROWS, 0)
    scores = {c["column"]: c["score"] for c in result.get("columns", [])}
    plotted = [c for c, m in cols.items() if m["sdtype"] != "id"]
    distributions = [{"column": c, "png": _distribution(c, cols[c], real_p, syn_p, scores.get(c))}
                     for c in plotted[:MAX_COLUMNS]]
    images = {"heatmaps": _heatmaps(real_p, syn_p, cols), "shapes": _shape_scores(result.get("columns", [])),
              "dcr": _dcr_plot((result.get("realism") or {}).get("dcr"))}
    return write_report(path, __package__, **{**result, "title": title}, images=images, distributions=distributions,
                        n_plotted=len(plotted), max_columns=MAX_COLUMNS, max_heatmap=MAX_HEATMAP_COLUMNS)
