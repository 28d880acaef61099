"""SQL spelling helpers: quoted names and literals."""

from __future__ import annotations

import json
import math

from compiler import ir


def col(name: str) -> str:
    """A column name, always quoted: ECS names hold dots (``"process.name"``)."""
    return '"' + name.replace('"', '""') + '"'


def strlit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


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
