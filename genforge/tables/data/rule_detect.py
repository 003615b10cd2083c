"""Finding a table's rules, and learning what declared ones need from the data.

:func:`detect_rules` looks for relations that hold in **every** row and could hardly hold by chance:

* ``A -> B``: each value of A (a categorical, boolean or integer column with at most a quarter as many values
  as rows) comes with one value of B, and the chance that so many rows agree if B were drawn independently
  is below ``e**MIN_EVIDENCE``;
* ``never a=x & b=y``: two categorical values that are each common (``COMMON`` share or more), that
  independent columns would put together in at least ``MIN_EXPECTED`` rows, and that no row holds together;
* ``a <= b``: two numeric (or two date) columns whose ranges overlap, where a shuffled pairing breaks the
  order in at least 5% of rows, and no real row does.

Relations broken by at most ``CANDIDATE_SHARE`` of the rows (or one row) (``relationship=Husband`` with ``sex=Female``
in one Adult row of 32,561) are returned as *candidates*: reported, not kept. Detection runs on at most
``DETECT_ROWS`` rows and confirms what it finds on all of them. :func:`build_rules` puts detected and declared
rules together (``drop_rules``, ``detect_rules`` and ``drop_violating`` from the metadata file).
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations, permutations
from typing import Any

import numpy as np
import pandas as pd

from genforge.core.errors import ConfigError
from genforge.tables.data.rule_check import _contradictions, check_rules, check_targets
from genforge.tables.data.rules import (NUMERIC, Determines, Fixed, Never, Order, RuleSet, frame_getter, key,
                                        metadata_rules, value_keys)

MIN_EVIDENCE = -20.0     # log-probability of a dependency holding by chance, at most
COMMON = 0.01            # a value this common (share of rows) or more is "common"
MIN_EXPECTED = 30        # rows two common values would share if their columns were independent
CANDIDATE_SHARE = 0.001  # near-rules broken by at most this share of rows are reported as candidates
MAX_NEVER, MAX_CANDIDATES = 100, 20
DETECT_ROWS = 50_000
_ORDER_INFORMATIVE = 0.05


def _allowed(n: int) -> float:
    """How many breaking rows a candidate may have among ``n`` (at least one)."""
    return max(1.0, CANDIDATE_SHARE * n)


def _codes(values) -> tuple[np.ndarray, list]:
    """Codes ``0..k-1`` of each cell (missing is a code of its own) and the values they stand for."""
    keys = value_keys(values)
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=False)
    return codes.astype(np.int64), [None if u is None or (isinstance(u, float) and np.isnan(u)) else u
                                    for u in uniques]


def _majority(ca: np.ndarray, cb: np.ndarray, ka: int, kb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per value of A: its most frequent B, that pair's rows, and A's rows."""
    counts = np.bincount(ca * kb + cb, minlength=ka * kb).reshape(ka, kb) if ka * kb <= 5e7 else None
    if counts is None:  # too wide for a dense table: sort the pairs instead
        pairs, n = np.unique(ca * kb + cb, return_counts=True)
        best = np.zeros(ka, dtype=np.int64)
        top = np.zeros(ka, dtype=np.int64)
        for p, c in zip(pairs, n):
            a = p // kb
            if c > top[a]:
                top[a], best[a] = c, p % kb
        return best, top, np.bincount(ca, minlength=ka)
    return counts.argmax(1), counts.max(1), counts.sum(1)


def _chance(cb: np.ndarray, kb: int, sizes: np.ndarray) -> float:
    """log P(every group of ``sizes`` rows is pure in B) if B were independent of the grouping."""
    p = np.bincount(cb, minlength=kb) / len(cb)
    total = 0.0
    for k, times in zip(*np.unique(sizes[sizes > 1], return_counts=True)):
        with np.errstate(divide="ignore"):
            total += times * float(np.log(np.sum(p ** k)))
    return total


def _dependencies(df: pd.DataFrame, schema, codes: dict) -> tuple[list, list]:
    n = len(df)
    width = {c: len(u) for c, (_, u) in codes.items()}
    sources = [c for c in codes if schema[c].kind in ("categorical", "boolean", "integer")
               and 2 <= width[c] <= max(2, n // 4)]
    kept, candidates = [], []
    for a in sources:
        ca, ua = codes[a]
        for b in codes:
            cb, ub = codes[b]
            if b == a or not 2 <= width[b] <= width[a]:
                continue
            best, top, sizes = _majority(ca, cb, width[a], width[b])
            broken = int(n - top.sum())
            if broken > _allowed(n) or _chance(cb, width[b], sizes) > MIN_EVIDENCE:
                continue
            if broken:
                candidates.append(Determines(columns=[a, b], source="detected", rows=broken))
            else:
                mapping = [(ua[i], ub[best[i]], int(sizes[i])) for i in range(width[a]) if sizes[i]]
                kept.append(Determines(columns=[a, b], source="detected", mapping=mapping))
    return kept, candidates


def _never(schema, codes: dict, n: int, linked: set, targets: set) -> tuple[list, list]:
    cols = [c for c in codes if schema[c].kind in ("categorical", "boolean") and c not in targets]
    kept, candidates = [], []
    for a, b in combinations(cols, 2):
        if (a, b) in linked or (b, a) in linked:
            continue
        (ca, ua), (cb, ub) = codes[a], codes[b]
        ka, kb = len(ua), len(ub)
        if ka * kb > 2**20:
            continue
        counts = np.bincount(ca * kb + cb, minlength=ka * kb).reshape(ka, kb)
        pa, pb = counts.sum(1) / n, counts.sum(0) / n
        expected = n * pa[:, None] * pb[None, :]
        common = ((pa >= COMMON) & np.array([u is not None for u in ua]))[:, None] & \
                 ((pb >= COMMON) & np.array([u is not None for u in ub]))[None, :] & (expected >= MIN_EXPECTED)
        near = common & (counts > 0) & (counts <= np.maximum(1, 0.005 * expected)) & (counts <= _allowed(n))
        for i, j in zip(*np.nonzero(common & (counts == 0))):
            options = [(a, ua[k], int(counts[k, j])) for k in np.flatnonzero(counts[:, j])] + \
                      [(b, ub[k], int(counts[i, k])) for k in np.flatnonzero(counts[i, :])]
            kept.append((expected[i, j], Never(values={a: ua[i], b: ub[j]}, source="detected", options=options)))
        for i, j in zip(*np.nonzero(near)):
            candidates.append((expected[i, j], Never(values={a: ua[i], b: ub[j]}, source="detected",
                                                     rows=int(counts[i, j]))))
    ranked = lambda xs, k: [r for _, r in sorted(xs, key=lambda t: -t[0])[:k]]  # noqa: E731
    return ranked(kept, MAX_NEVER), ranked(candidates, MAX_CANDIDATES)


def _orders(df: pd.DataFrame, schema) -> tuple[list, list]:
    get = frame_getter(df, schema)
    groups = [[c.name for c in schema.columns if c.kind in NUMERIC and c.missing_rate < 1],
              [c.name for c in schema.columns if c.kind == "datetime" and c.missing_rate < 1]]
    rng = np.random.default_rng(0)
    kept, candidates = [], []
    for group in groups:
        for a, b in permutations(group, 2):
            va, vb = get(a, "number"), get(b, "number")
            both = ~np.isnan(va) & ~np.isnan(vb)
            if both.sum() < 20:
                continue
            va, vb = va[both], vb[both]
            broken = int((va > vb).sum())
            if broken > _allowed(len(va)) or va.max() <= vb.min() or np.array_equal(va, vb):
                continue
            if np.mean(va > rng.permutation(vb)) < _ORDER_INFORMATIVE:
                continue
            rule = Order(columns=[a, b], source="detected", rows=broken)
            (candidates if broken else kept).append(rule)
    return kept, candidates


def detect_rules(df: pd.DataFrame, schema) -> tuple[list, list]:
    """``(rules, candidates)`` found in ``df`` (see the module docstring)."""
    part = df.sample(DETECT_ROWS, random_state=0) if len(df) > DETECT_ROWS else df
    codes = {c.name: _codes(part[c.name]) for c in schema.columns
             if c.kind not in ("id", "text") and c.missing_rate < 1}
    deps, dep_cands = _dependencies(part, schema, codes)
    linked = {tuple(r.columns) for r in deps + dep_cands}
    nevers, never_cands = _never(schema, codes, len(part), linked, {r.columns[1] for r in deps})
    orders, order_cands = _orders(part, schema)
    kept, candidates = deps + nevers + orders, dep_cands + never_cands + order_cands
    if part is not df:  # confirm on every row; what the full table breaks becomes a candidate
        kept = [learn(r.model_copy(update={"mapping": None}) if r.type == "determines" else r, df, schema)[0]
                for r in kept]
        kept, late = [r for r in kept if not r.rows], [r for r in kept if r.rows]
        candidates = late + candidates
    return kept, candidates


def learn(rule, df: pd.DataFrame, schema) -> tuple[Any, np.ndarray]:
    """``rule`` with what it needs from ``df`` (a determines rule's mapping, a fixed rule's combinations and
    their rows) and the mask of rows that break it (``rows`` set to their count)."""
    if rule.type == "determines" and rule.mapping is None:
        (ca, ua), (cb, ub) = _codes(df[rule.columns[0]]), _codes(df[rule.columns[1]])
        best, _, sizes = _majority(ca, cb, len(ua), len(ub))
        rule = rule.model_copy(update={"mapping": [(ua[i], ub[best[i]], int(sizes[i])) for i in range(len(ua))]})
    elif rule.type == "determines":
        ca, ua = _codes(df[rule.columns[0]])
        sizes = dict(zip(ua, np.bincount(ca, minlength=len(ua))))
        rule = rule.model_copy(update={"mapping": [(a, b, int(sizes.get(a, 0))) for a, b, _ in rule.mapping]})
    elif rule.type == "never":
        keys = {c: value_keys(df[c]) for c in rule.values}
        match = {c: keys[c] == key(v) for c, v in rule.values.items()}
        options = []
        for c in rule.values:  # rows that hold every other value of the combination, by their value of c
            others = np.logical_and.reduce([m for o, m in match.items() if o != c])
            options += [(c, v, int(n)) for v, n in Counter(keys[c][others & ~match[c]]).items()]
        rule = rule.model_copy(update={"options": options})
    elif rule.type == "fixed":
        seen = Counter(zip(*(value_keys(df[c]) for c in rule.columns)))
        if rule.combinations is not None:
            allowed = rule.allowed()
            seen = Counter({combo: k for combo, k in seen.items() if combo in allowed})
        rule = rule.model_copy(update={"combinations": [list(c) for c in seen], "counts": list(seen.values())})
    bad = ~rule.ok(frame_getter(df, schema))
    return rule.model_copy(update={"rows": int(bad.sum())}), bad


def build_rules(df: pd.DataFrame, schema, metadata: dict | None) -> tuple[RuleSet, list, bool]:
    """The rules a model of ``df`` keeps: detected ones (unless ``detect_rules`` is false) less ``drop_rules``,
    plus declared ones learned from ``df``. Returns ``(rules, [(declared rule, rows it breaks)], drop_violating)``."""
    meta = metadata_rules(metadata)
    declared = check_rules(meta["declared"], schema)
    kept, candidates = detect_rules(df, schema) if meta["detect"] else ([], [])
    found = {r.ident() for r in kept + candidates}
    for ident in meta["drop"]:
        if ident not in found:
            shown = "; ".join(r.text() for r in kept + candidates) or "none"
            raise ConfigError(f"metadata drop_rules names a rule that was not found in the data ({ident[0]} on "
                              f"{', '.join(map(str, ident[1])) if len(ident) > 1 else ''}); found: {shown[:300]}")
    skip = set(meta["drop"]) | {r.ident() for r in declared}
    learned = [learn(r, df, schema) for r in declared]
    rules = [r for r, _ in learned]
    targets = {r.columns[1] for r in rules if r.type == "determines"}
    kept = [r for r in kept if r.ident() not in skip and not (r.type == "never" and set(r.names()) & targets)]
    rules += kept
    _contradictions(rules)
    check_targets(rules)
    broken = [(r, bad) for r, bad in learned if bad.any()]
    candidates = [r.model_copy(update={"mapping": None}) if r.type == "determines" else r
                  for r in candidates if r.ident() not in skip]
    return RuleSet(rules=rules, candidates=candidates), broken, meta["drop_violating"]


__all__ = ["CANDIDATE_SHARE", "Fixed", "build_rules", "detect_rules", "learn"]


def _broken_message(broken: list, df: pd.DataFrame) -> str:
    rule, bad = broken[0]
    i = int(np.flatnonzero(bad)[0])
    cells = ", ".join(f"{c}={df[c].iloc[i]}" for c in rule.names())
    more = f" (and {len(broken) - 1} more rule(s))" if len(broken) > 1 else ""
    return (f"rule '{rule.text()}' is broken by {int(bad.sum()):,} of {len(df):,} training rows (e.g. row {i + 1}: "
            f"{cells}){more}; fix those rows, drop the rule from --metadata, or pass --drop-violating to train "
            f"without them")


def rules_for_training(df: pd.DataFrame, metadata: dict | None, infer, drop_violating: bool = False):
    """``(rows, schema, rules)`` to learn from: ``infer(rows)`` is the schema; a declared rule the data breaks is a
    DataError naming it and its rows, unless ``drop_violating`` (or the metadata's) drops those rows, after which
    the schema and rules are made again from the rows kept."""
    from genforge.core.errors import DataError

    schema = infer(df)
    rules, broken, drop = build_rules(df, schema, metadata)
    if broken:
        if not (drop or drop_violating):
            raise DataError(_broken_message(broken, df))
        keep = ~np.logical_or.reduce([bad for _, bad in broken])
        if keep.sum() < 2:
            raise DataError(f"the rules leave {int(keep.sum())} of {len(df):,} training rows; at least 2 are needed "
                            f"(fix the data or the rules)")
        df = df[keep].reset_index(drop=True)
        schema = infer(df)
        rules, _, _ = build_rules(df, schema, metadata)
    return df, schema, rules.model_copy(update={"rows": len(df)})
