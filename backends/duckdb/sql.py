"""SQL spelling helpers: quoted names and literals."""

from __future__ import annotations

import json
import math
import re

from compiler import ir


def col(name: str) -> str:
    """A column name, always quoted: ECS names hold dots (``"process.name"``)."""
    return '"' + name.replace('"', '""') + '"'


# Characters a text file may not carry verbatim: line breaks are normalised when the artifact is
# read back (\r becomes \n), and other controls are invisible in review. They are spelled chr(n).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def strlit(s: str) -> str:
    """A VARCHAR literal; control characters as ``chr(n)`` concatenated to the quoted parts."""
    if not _CONTROL.search(s):
        return "'" + s.replace("'", "''") + "'"
    parts: list[str] = []
    last = 0
    for m in _CONTROL.finditer(s):
        if m.start() > last:
            parts.append("'" + s[last : m.start()].replace("'", "''") + "'")
        parts.append(f"chr({ord(m.group())})")
        last = m.end()
    if last < len(s):
        parts.append("'" + s[last:].replace("'", "''") + "'")
    return "(" + " || ".join(parts) + ")"


def num(v: float) -> str:
    """A DOUBLE literal (the macros compare numbers as DOUBLE)."""
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 2**53):
        return f"{int(v)}.0"
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {v!r}")
    return repr(float(v))


def jlit(v: ir.Scalar) -> str:
    """A JSON literal of a language value (NULL for null)."""
    if v is None:
        return "NULL::JSON"
    return f"{strlit(json.dumps(v, ensure_ascii=False))}::JSON"
