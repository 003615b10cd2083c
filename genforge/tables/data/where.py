"""``--where`` text: ``column=value`` pairs separated by commas, with double quotes for names or values that
hold a comma or ``=`` (``city="Paris, TX"``; ``""`` inside quotes is one quote)."""

from __future__ import annotations

from genforge.core.errors import ConfigError


_QUOTE_HINT = 'quote a name or value that holds a comma or "=": city="Paris, TX" (a quote inside quotes is "")'


def _where_items(text: str):
    """Split ``--where`` text into ``(column, value)`` pairs: commas separate pairs, double quotes keep
    commas and ``=`` inside a name or value, ``""`` inside quotes is one quote."""
    i, n = 0, len(text)

    def token(stop: str) -> tuple[str, bool]:
        nonlocal i
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise ConfigError(f"--where {text}: a quote is not closed; {_QUOTE_HINT}")
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] not in stop:
                raise ConfigError(f"--where {text}: unexpected text after a quoted part; {_QUOTE_HINT}")
            return "".join(buf), True
        start = i
        while i < n and text[i] not in stop:
            i += 1
        return text[start:i].strip(), False

    while i < n:
        key, quoted_key = token("=,")
        if not key and not quoted_key and (i >= n or text[i] == ","):  # an empty part: "a=1,,b=2" or "a=1,"
            i += 1
            continue
        if i >= n or text[i] != "=":
            if key or i < n:
                raise ConfigError(f"--where expects column=value pairs separated by commas, got '{key}'; "
                                  f"{_QUOTE_HINT}")
            break
        i += 1
        value, _ = token(",")
        if not key:
            raise ConfigError(f"--where {text}: a pair has no column name before '='")
        yield key, value
        i += 1  # the comma


def parse_where(text: str | None) -> dict[str, str]:
    """``'sex=Female,income=>50K,city="Paris, TX"'`` -> ``{"sex": "Female", "income": ">50K", "city": "Paris, TX"}``
    (values as text; double quotes keep commas). A column given twice is refused."""
    out: dict[str, str] = {}
    for key, value in _where_items(text or ""):
        if key in out:
            raise ConfigError(f"--where gives column '{key}' twice ({key}={out[key]} and {key}={value}); "
                              f"give each column once")
        out[key] = value
    return out
