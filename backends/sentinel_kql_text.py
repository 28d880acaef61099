"""Escaping and literal spelling for KQL (the kql backend's text layer).

String literals follow the Kusto docs page "The string data type": double-quoted, with
backslash escapes. Regular expressions are re-spelled for RE2 by
:mod:`backends.regex_re2`.
"""

from __future__ import annotations

import re

from compiler.ir import Scalar

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string(value: str) -> str:
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def number(value: float | int) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))


def scalar(value: Scalar) -> str:
    if value is None:
        return "dynamic(null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number(value)
    return string(value)


_UNITS = ((86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"))


def timespan(ms: int) -> str:
    for size, unit in _UNITS:
        if ms % size == 0 and ms != 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def ident(name: str) -> str:
    """A column name as KQL accepts it: bare when an identifier, else ['quoted']."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"
