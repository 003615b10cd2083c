"""Checks on a table's rules: that they fit the schema, that they do not contradict each other, and that
``--where`` conditions do not ask for what a rule forbids. Every problem is a one-line ConfigError that
names the rule (and the condition) and the fix; all of it runs before a run directory exists.
"""

from __future__ import annotations

from typing import Any

from genforge.core.errors import ConfigError
from genforge.tables.data.rules import NUMERIC, VALUED, key

_FIX = "fix the metadata file or drop the rule"


def _kinds_fit(rule, schema) -> None:
    kinds = {c: schema[c].kind for c in rule.names()}
    bad_text = [c for c, k in kinds.items() if k in ("text", "id")]
    if rule.type in ("order",):
        both_dates = all(k == "datetime" for k in kinds.values())
        if not (all(k in NUMERIC for k in kinds.values()) or both_dates):
            c = next(c for c, k in kinds.items() if k not in NUMERIC)
            raise ConfigError(f"rule '{rule.text()}': an ordering needs two numeric or two date columns, and "
                              f"'{c}' is {kinds[c]}; {_FIX}")
    elif rule.type in ("range", "sum"):
        c = next((c for c, k in kinds.items() if k not in NUMERIC), None)
        if c is not None:
            raise ConfigError(f"rule '{rule.text()}': a {rule.type} rule needs numeric columns, and '{c}' is "
                              f"{kinds[c]}; {_FIX}")
    elif rule.type in ("never", "fixed"):
        takes = VALUED if rule.type == "fixed" else VALUED[:2]
        c = next((c for c, k in kinds.items() if k not in takes), None)
        if c is not None:
            raise ConfigError(f"rule '{rule.text()}' names '{c}', which is {kinds[c]}; a {rule.type} rule takes "
                              f"{', '.join(takes[:-1])} or {takes[-1]} columns; {_FIX}")
    elif bad_text:
        c = bad_text[0]
        raise ConfigError(f"rule '{rule.text()}' names '{c}', which is {kinds[c]} (made up fresh for every row, "
                          f"not modelled); rules apply to categorical, boolean, numeric and date columns; {_FIX}")


def _seen_value(rule, schema, col: str, value):
    """``value`` as the schema's own category value of ``col``; a value never seen is a ConfigError."""
    from genforge.tables.data.columns import match_label

    c = schema[col]
    cats = list(c.categories or [])
    i = match_label(cats, value, boolean=c.kind == "boolean") if value is not None else None
    if i is None:
        shown = ", ".join(map(str, cats[:8])) + (" ..." if len(cats) > 8 else "")
        raise ConfigError(f"rule '{rule.text()}': {value!r} never appears in column '{col}' (seen: {shown}); {_FIX}")
    return cats[i]


def check_rules(rules: list, schema) -> list:
    """The rules with their values in the schema's own types; refuses missing columns, kinds a rule cannot take,
    unseen values and rules that contradict each other (one line naming both)."""
    names = schema.names()
    out = []
    for rule in rules:
        for c in rule.names():
            if c not in names:
                raise ConfigError(f"rule '{rule.text()}' names column '{c}', which the table does not have; columns "
                                  f"are: {', '.join(names)}; {_FIX}")
        if len(set(rule.names())) != len(rule.names()):
            raise ConfigError(f"rule '{rule.text()}' names a column twice; {_FIX}")
        _kinds_fit(rule, schema)
        if rule.type == "never":
            rule = rule.model_copy(update={"values": {c: _seen_value(rule, schema, c, v) for c, v in rule.values.items()}})
        if rule.type == "range" and rule.min is not None and rule.max is not None and rule.min > rule.max:
            raise ConfigError(f"rule '{rule.text()}' can never hold: its minimum is above its maximum; {_FIX}")
        out.append(rule)
    _contradictions(out)
    return out


def _contradictions(rules: list) -> None:
    ranges: dict[str, list] = {}
    for r in rules:
        if r.type == "range":
            ranges.setdefault(r.column, []).append(r)
    for col, rs in ranges.items():
        lo = max(rs, key=lambda r: -float("inf") if r.min is None else r.min)
        hi = min(rs, key=lambda r: float("inf") if r.max is None else r.max)
        if lo.min is not None and hi.max is not None and lo.min > hi.max:
            raise ConfigError(f"rules '{lo.text()}' and '{hi.text()}' contradict each other: no value of '{col}' "
                              f"keeps both; drop one")
    for r in rules:
        if r.type == "order":
            a, b = r.columns
            lo = [x for x in ranges.get(a, []) if x.min is not None]
            hi = [x for x in ranges.get(b, []) if x.max is not None]
            for x in lo:
                for y in hi:
                    if x.min > y.max:
                        raise ConfigError(f"rules '{r.text()}' and '{x.text()}' / '{y.text()}' contradict each "
                                          f"other: '{a}' is at least {x.min:g} but '{b}' at most {y.max:g}; drop one")
    derived: dict[str, Any] = {}
    for r in rules:
        if r.type == "sum":
            if r.columns[0] in derived:
                raise ConfigError(f"rules '{derived[r.columns[0]].text()}' and '{r.text()}' both derive "
                                  f"'{r.columns[0]}'; drop one")
            derived[r.columns[0]] = r
    for r in rules:
        if r.type == "determines" and r.columns[1] in derived:
            raise ConfigError(f"rules '{derived[r.columns[1]].text()}' and '{r.text()}' both derive "
                              f"'{r.columns[1]}'; drop one")
        if r.type == "determines" and r.mapping is not None:
            table = r.lookup()
            for n in rules:
                if n.type == "never" and set(n.values) == set(r.columns):
                    a, b = (key(n.values[c]) for c in r.columns)
                    if a in table and table[a] == b:
                        raise ConfigError(f"rules '{r.text()}' and '{n.text()}' contradict each other: the first "
                                          f"pairs {a} with {b}, the second forbids it; drop one")


def check_targets(rules: list) -> None:
    """A never/fixed rule may not name a column another rule derives from a column outside it (the rows could
    not be repaired without undoing one of them)."""
    sources = {r.columns[1]: r for r in rules if r.type == "determines"}
    for r in rules:
        if r.type not in ("never", "fixed"):
            continue
        for c in r.names():
            d = sources.get(c)
            if d is not None and d.columns[0] not in r.names():
                raise ConfigError(f"rule '{r.text()}' names '{c}', which rule '{d.text()}' derives; name "
                                  f"'{d.columns[0]}' instead, or drop one of them")


def _where_text(cond: dict[str, Any], cols) -> str:
    return ",".join(f"{c}={cond[c]}" for c in cols if c in cond)


def check_where(ruleset, cond: dict[str, Any]) -> None:
    """Refuse ``cond`` (normalised ``--where`` values) when a kept rule forbids it, naming both."""
    if not cond:
        return
    for rule in ruleset.rules:
        why = _forbids(rule, cond)
        if why:
            raise ConfigError(f"--where {_where_text(cond, rule.names())}: the rule '{rule.text()}' forbids it "
                              f"({why}); drop a condition, or drop the rule ('drop_rules' in --metadata) and train "
                              f"again")


def _forbids(rule, cond: dict[str, Any]) -> str | None:
    """Why ``cond`` breaks ``rule`` (None when it does not)."""
    given = [c for c in rule.names() if c in cond]
    if not given:
        return None
    if rule.type == "determines":
        a, b = rule.columns
        table = rule.lookup()
        if a in cond and b in cond and key(cond[a]) in table and table[key(cond[a])] != key(cond[b]):
            return f"{a}={cond[a]} goes with {b}={table[key(cond[a])]}"
        if a not in cond and b in cond and key(cond[b]) not in set(table.values()):
            return f"no value of {a} goes with {b}={cond[b]}"
    elif rule.type == "never" and len(given) == len(rule.values):
        if all(key(cond[c]) == key(v) for c, v in rule.values.items()):
            return "no training row holds that combination"
    elif rule.type == "fixed":
        want = [(i, key(cond[c])) for i, c in enumerate(rule.columns) if c in cond]
        if not any(all(key(combo[i]) == v for i, v in want) for combo in rule.combinations or []):
            return "no training row holds that combination"
    elif rule.type == "order" and len(given) == 2 and float(cond[rule.columns[0]]) > float(cond[rule.columns[1]]):
        return f"{rule.columns[0]} would be above {rule.columns[1]}"
    elif rule.type == "range":
        v = float(cond[rule.column])
        if (rule.min is not None and v < rule.min) or (rule.max is not None and v > rule.max):
            return f"{rule.column}={cond[rule.column]} is outside it"
    elif rule.type == "sum" and rule.columns[0] in cond:
        return f"'{rule.columns[0]}' is derived from its parts; condition on the parts instead"
    return None
