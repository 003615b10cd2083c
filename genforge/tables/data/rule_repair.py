"""Decoding through the rules: sampled values changed the least so that every kept rule holds in every row.

Every table model produces *raw* values per column (floats, epoch seconds for dates, NaN for missing;
category labels, None for missing). Before they are formatted, :func:`repair` makes them obey the model's
:class:`~genforge.tables.data.rules.RuleSet`, never touching a *fixed* cell (a ``--where`` value, a present
cell during imputation) and never dropping a row, so ``sample`` still returns exactly the rows asked for:

* numbers that rules name are first put on their column's grid (range, integers, decimals, date step);
  a range rule clips;
* ``A -> B``: B is derived from A; when B is fixed (or was changed by another rule), A becomes one of the
  values that go with B, drawn by how often each does; a numeric A snaps to the nearest value seen; of two
  columns that determine each other, the numeric one is kept;
* ``never``: the row takes one of the one-cell edits that real rows show (``Never-married`` with ``Husband``
  becomes ``Married-civ-spouse`` with ``Husband`` or ``Never-married`` with ``Own-child``, drawn by how many
  training rows hold each), a column no other rule derives by preference;
* ``fixed``: the row takes the seen combination that keeps the most of its values (drawn by frequency among
  the equally close ones);
* ``a <= b``: the two values are swapped (the lower one rounded down to its grid, the higher one up), or the
  free one moved to the fixed one;
* ``total = a + b``: the total is the sum of its parts (or, when the total is fixed, the last free part is
  what is left).

The categorical rules interact (a value redrawn for one may break another), so they are applied in rounds
until every one holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from genforge.tables.data.rules import _UNSEEN, RuleSet, key, raw_getter, value_keys

ROUNDS = 6


def grid_steps(schema, states: list[dict]) -> dict[str, float]:
    """The step each numeric column's values are multiples of (integers 1, decimals 10**-d, dates their step)."""
    by_name = {s["name"]: s for s in states}
    out = {}
    for col in schema.columns:
        if col.kind == "integer":
            out[col.name] = 1.0
        elif col.kind == "continuous":
            out[col.name] = 10.0 ** -(col.decimals if col.decimals is not None else 6)
        elif col.kind == "datetime" and "step" in by_name.get(col.name, {}):
            out[col.name] = float(by_name[col.name]["step"])
    return out


def _on_grid(v: np.ndarray, step: float, how: str = "nearest") -> np.ndarray:
    q = v / step
    q = np.floor(q + 1e-9) if how == "down" else np.ceil(q - 1e-9) if how == "up" else np.round(q)
    return np.round(q * step, 9) if step < 1 else q * step


def _assign(raw: dict, col: str, rows: np.ndarray, values) -> None:
    arr = raw[col]
    if arr.dtype.kind == "f":
        arr[rows] = np.array([np.nan if v is None else v for v in values], dtype=float)
    else:
        if arr.dtype != object:
            raw[col] = arr = arr.astype(object)
        arr[rows] = values


def _weights(w) -> np.ndarray:
    w = np.maximum(np.asarray(w, dtype=float), 0.0)
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))


def _draw(values: list, weights, n: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [values[i] for i in rng.choice(len(values), size=n, p=_weights(weights))] if n else []
    return out


class _Repair:
    def __init__(self, rules: RuleSet, schema, raw: dict, fixed: dict, rng, steps: dict):
        self.rules, self.schema, self.raw, self.rng, self.steps = rules, schema, raw, rng, steps
        n = len(next(iter(raw.values()))) if raw else 0
        self.n = n
        self.fixed = {c: np.asarray(fixed.get(c, np.zeros(n, dtype=bool)), dtype=bool).copy() for c in raw}
        self.get = raw_getter(raw)

    def free(self, col: str) -> np.ndarray:
        return ~self.fixed[col]

    # -- numbers -----------------------------------------------------------------------------------
    def snap(self) -> None:
        for col in sorted({c for r in self.rules.rules for c in r.names()} & set(self.steps)):
            v = self.raw[col] = np.asarray(self.raw[col], dtype=float)
            free = self.free(col) & ~np.isnan(v)
            st = self.schema[col]
            lo, hi = st.min, st.max
            v[free] = _on_grid(np.clip(v[free], lo if lo is not None else -np.inf, hi if hi is not None else np.inf),
                               self.steps[col])
        for r in self.rules.of("range"):
            v = self.raw[r.column]
            free = self.free(r.column) & ~np.isnan(v)
            lo = _on_grid(np.array([r.min]), self.steps[r.column], "up")[0] if r.min is not None else -np.inf
            hi = _on_grid(np.array([r.max]), self.steps[r.column], "down")[0] if r.max is not None else np.inf
            v[free] = np.clip(v[free], lo, hi)
        for r in self.rules.of("determines"):  # a numeric source takes a value the rule maps
            a = r.columns[0]
            if a in self.steps and r.mapping:
                seen = np.array(sorted({float(x) for x, _, _ in r.mapping if x is not None}))
                v = self.raw[a]
                rows = self.free(a) & ~np.isnan(v)
                if len(seen) and rows.any():
                    i = np.clip(np.searchsorted(seen, v[rows]), 1, max(1, len(seen) - 1))
                    left, right = seen[np.maximum(i - 1, 0)], seen[np.minimum(i, len(seen) - 1)]
                    v[rows] = np.where(np.abs(v[rows] - left) <= np.abs(right - v[rows]), left, right)

    def orders(self) -> None:
        for _ in range(len(self.rules.of("order")) + 1):
            again = False
            for r in self.rules.of("order"):
                a, b = r.columns
                bad = ~r.ok(self.get)
                if not bad.any():
                    continue
                again = True
                va, vb = self.raw[a], self.raw[b]
                fa, fb = self.free(a), self.free(b)
                lo, hi = np.minimum(va, vb), np.maximum(va, vb)
                both, only_b, only_a = bad & fa & fb, bad & ~fa & fb, bad & fa & ~fb
                va[both] = _on_grid(lo[both], self.steps.get(a, 1e-9), "down")
                vb[both] = _on_grid(hi[both], self.steps.get(b, 1e-9), "up")
                vb[only_b] = _on_grid(va[only_b], self.steps.get(b, 1e-9), "up")
                va[only_a] = _on_grid(vb[only_a], self.steps.get(a, 1e-9), "down")
            if not again:
                return

    def sums(self) -> None:
        for r in self.rules.of("sum"):
            total, parts = r.columns[0], r.columns[1:]
            vt = self.raw[total]
            vals = [self.raw[p] for p in parts]
            s = sum(vals)
            derive = self.free(total) & ~np.isnan(s)
            vt[derive] = _on_grid(s[derive], self.steps.get(total, 1e-9))
            for p in reversed(parts):  # a fixed total: the last free part takes what is left
                rows = ~self.free(total) & self.free(p) & ~np.isnan(s) & ~np.isnan(vt) & ~r.ok(self.get)
                if rows.any():
                    rest = sum(self.raw[q] for q in parts if q != p)
                    self.raw[p][rows] = (vt - rest)[rows]

    # -- values ------------------------------------------------------------------------------------
    def categories(self) -> None:
        targets = set(self.rules.derived())
        for _ in range(ROUNDS):
            settled = {c: m.copy() for c, m in self.fixed.items()}
            for r in self.rules.of("never"):
                self.never(r, settled, targets)
            for r in self.rules.of("fixed"):
                self.combination(r, settled)
            for r in self.ordered_determines():
                self.determine(r, settled)
            if all(r.ok(self.get).all() for r in self.rules.rules if r.type in ("never", "fixed", "determines")):
                return

    def ordered_determines(self) -> list:
        """Determines rules, those with a numeric source first: of two columns that determine each other (``education
        <-> education_num``), the number is kept and the category derived from it, since models carry the ordered
        column's dependence on the rest of the row better."""
        rules = self.rules.of("determines")
        return sorted(rules, key=lambda r: self.schema[r.columns[0]].kind not in ("continuous", "integer", "datetime"))

    def never(self, r, settled: dict, targets: set) -> None:
        """Rows holding the forbidden combination take one of the one-cell edits that real rows show (drawn by
        how many rows show it; a column another rule derives only when nothing else is free), else a value of a
        free column drawn by its frequency."""
        bad = ~r.ok(self.get)
        if not bad.any():
            return
        options = [o for o in r.options or [] if o[2] > 0]
        cols = sorted(r.values, key=lambda c: c in targets)
        for pattern in {tuple(settled[c][i] for c in cols) for i in np.flatnonzero(bad)}:
            free = [c for c, s in zip(cols, pattern) if not s]
            if not free:
                continue
            rows = np.flatnonzero(bad & np.logical_and.reduce([settled[c] == s for c, s in zip(cols, pattern)]))
            preferred = [c for c in free if c not in targets] or free
            edits = [o for o in options if o[0] in preferred]
            if not edits:  # no real row to follow: a value of the first free column, by its frequency
                c = self.schema[preferred[0]]
                forbidden = key(r.values[preferred[0]])
                edits = [(preferred[0], v, f) for v, f in zip(c.categories or [], c.frequencies or [])
                         if key(v) != forbidden]
            if not edits:
                continue
            pick = self.rng.choice(len(edits), size=len(rows), p=_weights([e[2] for e in edits]))
            for k in np.unique(pick):
                col, value, _ = edits[k]
                idx = rows[pick == k]
                _assign(self.raw, col, idx, [value] * len(idx))
                settled[col][idx] = True

    def combination(self, r, settled: dict) -> None:
        bad = np.flatnonzero(~r.ok(self.get))
        if not len(bad) or not r.combinations:
            return
        combos = np.array(r.combinations, dtype=object).reshape(len(r.combinations), len(r.columns))
        logw = np.log(np.maximum(np.asarray(r.counts or [1] * len(combos), dtype=float), 1e-12))
        for start in range(0, len(bad), 2000):
            rows = bad[start:start + 2000]
            score = np.zeros((len(rows), len(combos)))
            for j, col in enumerate(r.columns):
                have = value_keys(self.raw[col][rows])
                same = have[:, None] == combos[None, :, j]
                score += same
                score[settled[col][rows][:, None] & ~same] = -np.inf
            pick = (score * 1e3 + logw[None, :] + self.rng.gumbel(size=score.shape)).argmax(1)
            ok = np.isfinite(score[np.arange(len(rows)), pick])
            for j, col in enumerate(r.columns):
                _assign(self.raw, col, rows[ok], combos[pick[ok], j])
                settled[col][rows[ok]] = True

    def determine(self, r, settled: dict) -> None:
        a, b = r.columns
        table = r.lookup()
        src, dst = self.get(a, "value"), self.get(b, "value")
        codes, uniques = pd.factorize(pd.Series(src, dtype=object), use_na_sentinel=False)
        known = np.empty(len(uniques), dtype=object)
        known[:] = [table.get(u, _UNSEEN) for u in uniques]
        want = known[codes]
        unseen = np.array([w is _UNSEEN for w in known], dtype=bool)[codes]
        wrong = ~unseen & (want != dst)
        back = np.flatnonzero((wrong | unseen) & settled[b] & ~settled[a])
        derive = np.flatnonzero(wrong & ~settled[b])
        if len(derive):
            _assign(self.raw, b, derive, want[derive])
        settled[b][derive] = True
        if len(back):  # the target is fixed: the source takes a value that goes with it
            by_target: dict = {}
            for x, y, rows in r.mapping or []:
                by_target.setdefault(key(y), []).append((x, rows))
            for target, where in _group(dst[back]):
                options = by_target.get(target)
                if options:
                    idx = back[where]
                    _assign(self.raw, a, idx, _draw([x for x, _ in options], [max(w, 1) for _, w in options],
                                                    len(idx), self.rng))
                    settled[a][idx] = True


def _group(values: np.ndarray):
    """``(value, positions)`` for each distinct value of an object array."""
    groups: dict = {}
    for i, v in enumerate(values):
        groups.setdefault(v, []).append(i)
    return [(v, np.asarray(ix)) for v, ix in groups.items()]


def repair(rules: RuleSet, schema, raw: dict, fixed: dict, rng: np.random.Generator, steps: dict) -> None:
    """Change ``raw`` (column -> values, in place) so every rule of ``rules`` holds; ``fixed`` (column -> mask)
    marks the cells that must not change; ``steps`` are :func:`grid_steps`."""
    if not rules.rules or not raw:
        return
    fix = _Repair(rules, schema, raw, fixed, rng, steps)
    fix.snap()
    fix.categories()
    fix.orders()
    fix.sums()


def pin(raw: dict, fixed, n: int) -> dict[str, np.ndarray]:
    """Put the fixed values into ``raw`` and return their masks: ``fixed`` is one ``{column: value}`` for all
    ``n`` rows (a ``--where``), or a list of ``n`` of them, one per row (present cells when imputing)."""
    masks: dict[str, np.ndarray] = {}
    if not fixed:
        return masks
    per_row = isinstance(fixed, list)
    for col in ({c for d in fixed for c in d} if per_row else set(fixed)):
        if col not in raw:
            continue
        mask = np.array([col in d for d in fixed], dtype=bool) if per_row else np.ones(n, dtype=bool)
        idx = np.flatnonzero(mask)
        _assign(raw, col, idx, [fixed[i][col] for i in idx] if per_row else [fixed[col]] * len(idx))
        masks[col] = mask
    return masks


def widen_sums(rules: RuleSet, states: list[dict]) -> None:
    """Let a sum rule's total reach what its parts can add up to (its decoded range is widened in place)."""
    by_name = {s["name"]: s for s in states}
    for r in rules.of("sum"):
        total, parts = by_name.get(r.columns[0]), [by_name.get(p) for p in r.columns[1:]]
        if total is None or any(p is None or "lo" not in p for p in parts) or "lo" not in total:
            continue
        total["lo"] = min(total["lo"], sum(p["lo"] for p in parts))
        total["hi"] = max(total["hi"], sum(p["hi"] for p in parts))
