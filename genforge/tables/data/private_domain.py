"""What a differentially private table model knows of the rows before it trains: a released domain.

Without privacy, a table model reads its schema and encoding straight off the rows: category lists and
frequencies, value ranges, the Gaussian modes of numbers. Each of those can leak one person (a category only
one row has, the oldest customer's age). Under ``--dp`` they come instead from **one Gaussian release of
column histograms**, paid from a stated share of the budget and composed with training by the accountant,
or from the user's ``--metadata``:

* **categorical / boolean columns**: the noisy count of every category and of "missing". With
  ``categories`` in the metadata (booleans: True/False) the candidates are the user's, and all of them are
  kept. Without, the candidates are the values the rows hold, so a category is kept only when its noisy
  count passes a threshold ``tau``: a category that only one row has survives with probability at most
  ``delta_thresholding / columns`` (the Gaussian sparse-histogram mechanism; union bound over the columns).
  That share of delta is spent outside the accountant, which certifies the rest.
* **numeric columns**: with ``min`` and ``max`` in the metadata, a fine histogram inside them
  (:data:`FINE_BINS` equal-width bins, or one bin per value on a short integer range; an exact zero and
  "missing" are bins of their own; fewer bins when the noise is large against the row count). Without, a
  coarse histogram over data-independent signed powers of two first gives the range (the outermost bins
  whose noisy count clears a threshold that noise alone passes in one of them with probability
  :data:`COARSE_FALSE_RATE`), then the fine histogram inside it
  narrows it to where all but that many rows lie on each side. Bins below :data:`NOISE_FLOOR` deviations
  count as empty in the stand-in.

Every row adds one to one bin of each histogram, so the release's L2 sensitivity is the square root of the
number of histograms. From the noisy counts genforge draws a **stand-in table** (:data:`STAND_IN_ROWS` rows,
columns independent) and infers the schema and fits the encoding on it: post-processing, covered by the
guarantee. Read from the real rows without noise, like the column names: each column's kind and number of
decimals (the table's format); ``kind`` and ``decimals`` in the metadata fix those too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genforge.core.errors import ConfigError

NUMERIC = ("continuous", "integer", "datetime")
DISCRETE = ("categorical", "boolean")
FINE_BINS = 64
MIN_EXP, MAX_EXP = -10, 63   # coarse bins: magnitudes 2^e for e in [MIN_EXP, MAX_EXP] (and exact zero)
KEEP_SIGMAS = 4.0            # a data-independent bin counts as present when its noisy count passes this many sigmas
COARSE_FALSE_RATE = 1e-4     # chance that noise alone widens a column's coarse range (over all its empty bins)
NOISE_FLOOR = 3.0            # fine bins below this many sigmas are taken as empty in the stand-in (denoising)
STAND_IN_ROWS = 20_000
DOMAIN_RELEASE = "column histograms (category lists, value ranges and distributions the encoding is fitted on)"


def given_fields(metadata: dict | None, schema) -> dict[str, set[str]]:
    """Per column, the fields the user's metadata sets (``categories``, ``min``, ``max``, ``kind`` ...)."""
    from genforge.tables.data.schema import column_overrides

    return {name: set(entry) for name, entry in column_overrides(metadata, schema.names()).items()}


def refuse_kinds(schema, model_name: str) -> None:
    """Under DP a text column would be copied from the rows; refuse it, naming it."""
    bad = [c for c in schema.columns if c.kind == "text"]
    if bad:
        names = ", ".join(c.name for c in bad)
        raise ConfigError(f"'{model_name}' with --dp cannot keep the text column(s) {names}: their cells are copied "
                          f"from the rows, outside the guarantee; drop {'it' if len(bad) == 1 else 'them'} or set a "
                          f"categorical kind in --metadata")


def _has_categories(c, given: set[str]) -> bool:
    return c.kind == "boolean" or "categories" in given


def _has_range(given: set[str]) -> bool:
    return {"min", "max"} <= given


def histograms(schema, given: dict[str, set[str]]) -> int:
    """How many histograms the release holds: one per column, two for a numeric column without a given range."""
    return sum(0 if c.kind == "id" else 2 if c.kind in NUMERIC and not _has_range(given.get(c.name, set())) else 1
               for c in schema.columns)


def open_categories(schema, given: dict[str, set[str]]) -> int:
    """Categorical columns whose candidates come from the rows (each costs thresholding delta)."""
    return sum(c.kind in DISCRETE and not _has_categories(c, given.get(c.name, set())) for c in schema.columns)


def threshold(sigma: float, delta: float, columns: int) -> float:
    """The noisy count a category read from the rows must pass: one held by a single row survives with
    probability at most ``delta / columns`` (so at most ``delta`` over all the columns)."""
    from scipy.stats import norm

    if columns == 0:
        return 0.0
    return 1.0 + sigma * float(norm.isf(delta / columns))


def describe(schema, given: dict[str, set[str]], share: float, delta_share: float) -> str:
    """The report's words for where a private table model's schema and encoding came from."""
    from_meta = [c.name for c in schema.columns if (_has_categories(c, given.get(c.name, set())) if c.kind in DISCRETE
                                                    else _has_range(given.get(c.name, set())))]
    parts = [f"the schema and encoding (category lists and frequencies, value ranges, Gaussian modes) were fitted "
             f"on a stand-in table drawn from noisy column histograms released with {share:.0%} of epsilon"]
    if open_categories(schema, given):
        parts.append(f"categories read from the rows are kept only above a noise threshold ({delta_share:.0%} of "
                     f"delta)")
    parts.append(f"the domain (categories / min and max) of {', '.join(from_meta)} came from the user's metadata"
                 if from_meta else "no domain came from metadata (give 'categories', or 'min' and 'max', in "
                                   "--metadata to keep rare values)")
    parts.append("column names, kinds and decimals were read from the table's format")
    return "; ".join(parts)


@dataclass
class Released:
    """One column's noisy histogram: ``values`` (categories, or ``(low, high, exact)`` bins) and their counts."""

    name: str
    kind: str
    values: list
    counts: np.ndarray
    missing: float
    lo: float | None = None
    hi: float | None = None
    extra: dict = field(default_factory=dict)


def release(df: pd.DataFrame, schema, given: dict[str, set[str]], sigma: float, tau: float,
            rng: np.random.Generator) -> list[Released]:
    """Every column's noisy histogram (Gaussian noise of standard deviation ``sigma`` on each count)."""
    out = []
    for c in schema.columns:
        g = given.get(c.name, set())
        s = df[c.name]
        if c.kind in DISCRETE:
            out.append(_release_categories(c, s, g, sigma, tau, rng))
        elif c.kind == "id":  # fresh ids in the column's pattern: nothing is read
            out.append(Released(c.name, c.kind, [], np.zeros(0), 0.0))
        else:
            out.append(_release_numbers(c, s, g, sigma, rng))
    return out


def _noisy(counts: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(counts, dtype=float) + rng.normal(0.0, sigma, size=len(counts))


def _release_categories(c, s: pd.Series, given: set[str], sigma: float, tau: float, rng) -> Released:
    present = s.notna()
    if c.kind == "boolean" and "categories" not in given:
        candidates = [False, True]
    elif "categories" in given:
        candidates = list(c.categories or [])
    else:
        candidates = list(pd.unique(s[present]))
    keys = {str(v): i for i, v in enumerate(candidates)}
    idx = s[present].map(lambda v: keys.get(str(v), -1)).to_numpy(dtype=np.int64)
    counts = np.bincount(idx[idx >= 0], minlength=len(candidates))
    noisy = _noisy(np.append(counts, (~present).sum()), sigma, rng)
    cats, missing = noisy[:-1], float(noisy[-1])
    keep = np.ones(len(candidates), dtype=bool) if (_has_categories(c, given)) else cats > tau
    if not keep.any():
        import warnings

        from genforge.core.errors import GenforgeWarning

        warnings.warn(GenforgeWarning(f"column '{c.name}': no category is common enough to be released at this budget "
                                      f"(noisy counts below {tau:.0f}), so its synthetic cells stay empty; give its "
                                      f"'categories' in --metadata, raise epsilon, or drop the column"))
        return Released(c.name, c.kind, [], np.zeros(0), 1.0)
    values = [v for v, k in zip(candidates, keep) if k]
    return Released(c.name, c.kind, values, np.maximum(cats[keep], 0.0),
                    missing if missing > KEEP_SIGMAS * sigma else 0.0)


def _numbers(c, s: pd.Series) -> np.ndarray:
    if c.kind == "datetime":
        from genforge.tables.data.dates import parse_datetimes

        return parse_datetimes(c.name, s, c.datetime_format)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _stand_in_ids(c, rows: int, rng) -> pd.Series:
    from genforge.tables.data.ids import make_ids

    return pd.Series(make_ids(c.id_pattern or "int", 1, rows, rng))


def _stand_in_dates(c, seconds: np.ndarray) -> pd.Series:
    """Epoch seconds as the column's dates: datetime values, or strings in its format, on its format's grain."""
    step = 86400 if c.datetime_format and not any(d in c.datetime_format for d in ("%H", "%M", "%S")) else 1
    stamps = pd.to_datetime(np.round(seconds / step) * step, unit="s")
    if str(c.dtype).startswith("datetime"):
        return pd.Series(stamps)
    return pd.Series(stamps.strftime(c.datetime_format or "%Y-%m-%d %H:%M:%S"), dtype=object).where(
        ~np.isnan(seconds), None)


def _coarse_range(v: np.ndarray, sigma: float, rng) -> tuple[float, float]:
    """The range from noisy counts over data-independent bins: zero, and +-[2^e, 2^(e+1)) magnitudes."""
    k = MAX_EXP - MIN_EXP + 1
    e = np.clip(np.floor(np.log2(np.maximum(np.abs(v), 2.0 ** MIN_EXP))), MIN_EXP, MAX_EXP).astype(np.int64)
    key = np.where(v == 0, k, np.where(v > 0, k + 1 + (e - MIN_EXP), k - 1 - (e - MIN_EXP)))
    noisy = _noisy(np.bincount(key, minlength=2 * k + 1), sigma, rng)
    from scipy.stats import norm

    kept = np.flatnonzero(noisy > sigma * max(KEEP_SIGMAS, float(norm.isf(COARSE_FALSE_RATE / len(noisy)))))
    if len(kept) == 0:
        kept = np.array([int(noisy.argmax())])

    def edges(j: int) -> tuple[float, float]:
        if j == k:
            return 0.0, 0.0
        m = abs(j - k) - 1 + MIN_EXP
        low, high = (0.0 if m == MIN_EXP else 2.0 ** m), 2.0 ** (m + 1)
        return (low, high) if j > k else (-high, -low)

    return min(edges(j)[0] for j in kept), max(edges(j)[1] for j in kept)


def fine_bin_count(rows: int, sigma: float) -> int:
    """Equal-width bins for a numeric column: as many as keep about :data:`KEEP_SIGMAS` noise deviations of rows
    in each on average (between 4 and :data:`FINE_BINS`); the row count is public, as for the accountant."""
    return int(np.clip(rows // max(KEEP_SIGMAS * sigma, 1e-9), 4, FINE_BINS))


def _fine_bins(c, lo: float, hi: float, count: int) -> list[tuple[float, float, bool]]:
    """``(low, high, exact)`` bins over [lo, hi]: one per value on a short integer range, else ``count`` of equal
    width plus an exact zero inside the range."""
    if c.kind == "integer":
        lo, hi = math.floor(lo), math.ceil(hi)
        if hi - lo + 1 <= count:
            return [(float(v), float(v), True) for v in range(int(lo), int(hi) + 1)]
    if hi <= lo:
        return [(lo, lo, True)]
    edges = np.linspace(lo, hi, count + 1)
    bins = [(float(a), float(b), False) for a, b in zip(edges[:-1], edges[1:])]
    return bins + ([(0.0, 0.0, True)] if lo <= 0 <= hi else [])


def _bin_of(bins, v: np.ndarray) -> np.ndarray:
    exact = {b[0]: i for i, b in enumerate(bins) if b[2]}
    ranged = [i for i, b in enumerate(bins) if not b[2]]
    out = np.full(len(v), -1, dtype=np.int64)
    if ranged:
        lows = np.array([bins[i][0] for i in ranged])
        pos = np.clip(np.searchsorted(lows, v, side="right") - 1, 0, len(ranged) - 1)
        out = np.array(ranged)[pos]
    for value, i in exact.items():
        out[v == value] = i
    if not ranged:  # integers only: clip into the range
        vals = np.array([b[0] for b in bins])
        pos = np.clip(np.searchsorted(vals, v, side="left"), 0, len(vals) - 1)
        out = np.where(out >= 0, out, pos)
    return out


def _release_numbers(c, s: pd.Series, given: set[str], sigma: float, rng) -> Released:
    v = _numbers(c, s)
    present = ~np.isnan(v)
    vals = v[present]
    if _has_range(given):
        lo, hi = float(c.min), float(c.max)
    else:
        lo, hi = _coarse_range(vals, sigma, rng)
    bins = _fine_bins(c, lo, hi, fine_bin_count(len(v), sigma))
    counts = np.bincount(_bin_of(bins, np.clip(vals, lo, hi)), minlength=len(bins)) if len(vals) else \
        np.zeros(len(bins), dtype=np.int64)
    noisy = _noisy(np.append(counts, (~present).sum()), sigma, rng)
    cells, missing = np.where(noisy[:-1] > NOISE_FLOOR * sigma, noisy[:-1], 0.0), float(noisy[-1])
    if not _has_range(given):
        lo, hi = _trimmed_range(bins, cells, KEEP_SIGMAS * sigma)
        cells = np.where([b[0] >= lo and b[1] <= hi for b in bins], cells, 0.0)
    if cells.sum() <= 0:  # nothing clears the noise: spread the stand-in evenly over the range
        cells = np.where([b[0] >= lo and b[1] <= hi for b in bins], 1.0, 0.0)
    return Released(c.name, c.kind, bins, cells, missing if missing > KEEP_SIGMAS * sigma else 0.0, lo, hi)


def _trimmed_range(bins, cells: np.ndarray, tail: float) -> tuple[float, float]:
    """The range left once each tail holding less than ``tail`` noisy rows is cut (a quantile of the release)."""
    order = sorted(range(len(bins)), key=lambda i: (bins[i][0], bins[i][1]))
    mass = cells[order]
    if mass.sum() <= 2 * tail:  # too little to trim: the bins that hold anything
        held = [i for i in order if cells[i] > 0] or order
        return bins[held[0]][0], max(bins[i][1] for i in held)
    first = order[int(np.argmax(np.cumsum(mass) >= tail))]
    last = order[len(order) - 1 - int(np.argmax(np.cumsum(mass[::-1]) >= tail))]
    return bins[first][0], bins[last][1]


def _allocate(weights: np.ndarray, n: int, at_least_one: bool) -> np.ndarray:
    """Integer counts summing to ``n`` in proportion to ``weights`` (each kept entry at least one when asked)."""
    w = np.maximum(np.asarray(weights, dtype=float), 0.0)
    base = (w > 0).astype(np.int64) if at_least_one else np.zeros(len(w), dtype=np.int64)
    if w.sum() == 0:
        w = np.ones(len(w))
    rest = max(n - int(base.sum()), 0)
    share = w / w.sum() * rest
    alloc = np.floor(share).astype(np.int64)
    left = rest - int(alloc.sum())
    if left > 0:
        alloc[np.argsort(-(share - alloc))[:left]] += 1
    return base + alloc


def stand_in(released: list[Released], schema, rng: np.random.Generator, rows: int = STAND_IN_ROWS) -> pd.DataFrame:
    """A table drawn from the released histograms alone (columns independent), in the real columns' dtypes."""
    out = {}
    for r in released:
        c = schema[r.name]
        if r.kind == "id":
            out[r.name] = _stand_in_ids(c, rows, rng)
            continue
        total = float(r.counts.sum() + r.missing)
        n_missing = int(round(rows * r.missing / total)) if r.missing > 0 else 0
        n_missing = max(n_missing, 1) if r.missing > 0 else 0
        alloc = _allocate(r.counts, rows - n_missing, at_least_one=r.kind in DISCRETE)
        if r.kind in DISCRETE:
            col = np.concatenate([np.repeat(np.array([v], dtype=object), k) for v, k in zip(r.values, alloc)] +
                                 [np.full(n_missing, None, dtype=object)])
            series = pd.Series(col, dtype=object)
            if c.kind == "boolean" and n_missing == 0:
                series = series.astype(bool)
        else:
            parts = []
            for (a, b, exact), k in zip(r.values, alloc):
                if k == 0:
                    continue
                x = np.full(k, a) if exact else rng.uniform(a, b, size=k)
                parts.append(x)
            x = np.concatenate(parts + [np.full(n_missing, np.nan)])
            x = np.clip(x, r.lo, r.hi) if r.lo is not None else x
            x = x[rng.permutation(len(x))]
            if c.kind == "datetime":
                out[r.name] = _stand_in_dates(c, x)
                continue
            if c.kind == "integer":
                x = np.round(x)
            elif c.decimals is not None:
                x = np.round(x, c.decimals)
            series = pd.Series(x)
            if c.kind == "integer" and n_missing == 0 and str(c.dtype).startswith(("int", "uint")):
                series = series.astype(c.dtype)
        out[r.name] = series.iloc[rng.permutation(len(series))].reset_index(drop=True)
    return pd.DataFrame(out)[schema.names()]


def structure_metadata(metadata: dict | None, schema) -> dict:
    """The metadata to infer the stand-in's schema with: the user's entries plus each column's real kind and
    decimals (the table's format), so the stand-in is read as the same kinds of columns."""
    from genforge.tables.data.schema import column_overrides, read_metadata

    meta = {k: v for k, v in (read_metadata(metadata) or {}).items() if k != "columns"}
    cols = {name: dict(entry) for name, entry in column_overrides(metadata, schema.names()).items()}
    for c in schema.columns:
        entry = cols.setdefault(c.name, {})
        entry.setdefault("kind", c.kind)
        if c.kind == "continuous" and c.decimals is not None:
            entry.setdefault("decimals", c.decimals)
        if c.kind == "datetime" and c.datetime_format:
            entry.setdefault("datetime_format", c.datetime_format)
        if c.kind == "id" and c.id_pattern:
            entry.setdefault("id_pattern", c.id_pattern)
    meta["columns"] = cols
    return meta


def in_domain(df: pd.DataFrame, schema) -> pd.DataFrame:
    """The training rows with every category outside the released lists (and every gap in a column released
    without gaps) set to the column's most frequent released category, so the encoding accepts every row."""
    out = df.copy()
    for c in schema.columns:
        if c.kind not in DISCRETE or not c.categories:
            continue
        top = c.categories[int(np.argmax(c.frequencies))] if c.frequencies else c.categories[0]
        known = {str(v) for v in c.categories}
        s = out[c.name]
        bad = s.map(lambda v: str(v) not in known) & (s.notna() if c.missing_rate > 0 else True)
        if bad.any():
            out[c.name] = s.astype(object).where(~bad, top)
    return out
