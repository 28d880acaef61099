"""Values of the SPL interpreter: numbers, strings, multivalues, wildcards, PCRE, time spans.

A field value is ``None`` (absent), a ``str`` (what search-time extraction gives), an ``int`` or
``float`` (what eval and stats compute) or a ``list`` of at least two such scalars (a multivalue
field). Eval treats a string that looks like a number as that number in arithmetic and
comparisons (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eval, "Usage":
field values are typed automatically).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Any

NUMERIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class SplRuntimeError(ValueError):
    """A query the interpreter (or Splunk) cannot run: an error, never a silent result."""


class NotExecutable(SplRuntimeError):
    """A command or function outside the interpreted subset."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"not executable by the interpreter: {what}")


def mv(v: Any) -> list[Any]:
    """The values of a field: [] for absent, the list for a multivalue, else [v]."""
    if v is None:
        return []
    if isinstance(v, list):
        return v
    return [v]


def norm(values: list[Any]) -> Any:
    """A list of values as a field value: absent, one scalar, or a multivalue list."""
    vals = [x for x in values if x is not None]
    if not vals:
        return None
    return vals[0] if len(vals) == 1 else vals


def num(v: Any) -> float | int | None:
    """The number a scalar stands for (numeric-looking text included), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return v
    if isinstance(v, str) and NUMERIC.match(v):
        return int(v) if re.fullmatch(r"[+-]?\d+", v) else float(v)
    return None


def text(v: Any) -> str:
    """The string form of a scalar (eval's `.`, search comparisons, lookups, join keys)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    return str(v)


def number_out(x: float) -> int | float:
    return int(x) if isinstance(x, float) and x.is_integer() and abs(x) < 2**53 else x


# ---------------------------------------------------------------------- wildcards and regexes
@functools.cache
def wildcard(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """A search-command value with ``*`` wildcards (always a wildcard, even quoted: Search
    reference, "Wildcards"), matched against the whole value."""
    parts = [re.escape(p) for p in pattern.split("*")]
    return re.compile("^" + ".*".join(parts) + "$", flags | re.DOTALL)


_POSIX = {
    "[:word:]": "\\w",
    "[:^word:]": "\\W",
    "[:digit:]": "\\d",
    "[:^digit:]": "\\D",
    "[:space:]": "\\s",
    "[:^space:]": "\\S",
}


@functools.cache
def _nd_ranges() -> str:
    """The Unicode category Nd (PCRE's \\p{Nd}) as the body of a Python character class."""
    out, start, prev = [], -2, -2
    for c in range(0x110000):
        if unicodedata.category(chr(c)) == "Nd":
            if c != prev + 1:
                if start >= 0:
                    out.append((start, prev))
                start = c
            prev = c
    out.append((start, prev))
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in out)


def _unicode_digits(py: str) -> str:
    """PCRE's \\p{Nd} / \\P{Nd} (pcre2pattern, "Unicode character properties") in Python
    syntax; the pattern is compiled in ASCII mode, where \\d is only 0-9."""
    out, i, in_class = [], 0, False
    while i < len(py):
        ch = py[i]
        if ch == "\\" and py.startswith(("\\p{Nd}", "\\P{Nd}"), i):
            neg = py[i + 1] == "P"
            if in_class and neg:
                raise SplRuntimeError("\\P{Nd} inside a class is not modelled")
            body = _nd_ranges()
            out.append(body if in_class else f"[{'^' if neg else ''}{body}]")
            i += 6
            continue
        if ch == "\\":
            out.append(py[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            # a ] right after [ or [^ is a literal member
            for lead in ("^]", "]", "^"):
                if py.startswith(lead, i + 1):
                    out.append(lead)
                    i += len(lead)
                    break
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def pcre(pattern: str) -> re.Pattern[str]:
    """A PCRE pattern (as Splunk's eval/rex take it) compiled with Python's ``re``: named groups
    ``(?<n>`` become ``(?P<n>``, ``\\z`` is ``\\Z``; ``\\d \\w \\s`` are ASCII-only as in PCRE
    without UCP."""
    py = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", pattern).replace("\\z", "\\Z")
    # PCRE's \x{hhh} code points and POSIX classes (pcre2pattern: "Non-printing characters",
    # "Posix character classes"); in ASCII mode the Python classes are the POSIX ones
    py = re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: f"\\U{int(m.group(1), 16):08x}", py)
    for posix, cls in _POSIX.items():
        py = py.replace(posix, cls)
    py = _unicode_digits(py)
    try:
        return re.compile(py, re.ASCII)
    except re.error as exc:
        raise SplRuntimeError(f"invalid regular expression {pattern!r}: {exc}") from None


def pcre_replacement(repl: str) -> str:
    """replace()'s substitution text: ``\\1`` back-references; other text literal."""
    out = []
    i = 0
    while i < len(repl):
        c = repl[i]
        if c == "\\" and i + 1 < len(repl) and repl[i + 1].isdigit():
            out.append(f"\\g<{repl[i + 1]}>")
            i += 2
            continue
        out.append("\\\\" if c == "\\" else c)
        i += 1
    return "".join(out)


# ---------------------------------------------------------------------- time
_UNITS = {
    "ms": 0.001, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)?([a-z]+)$")


def span_seconds(text_: str) -> float:
    """A time span (``30s``, ``5m``, ``1h``, ``1500ms``) in seconds
    (https://docs.splunk.com/Documentation/Splunk/latest/Search/Specifytimespans)."""
    m = _SPAN.match(text_.strip().lower())
    if not m or m.group(2) not in _UNITS:
        raise SplRuntimeError(f"bad time span {text_!r}")
    if m.group(2) in ("mon", "month", "months", "y", "year"):
        raise NotExecutable(f"calendar span {text_}")
    return float(m.group(1) or 1) * _UNITS[m.group(2)]


def relative(now: float, modifier: str) -> float:
    """A relative time modifier without snapping (``-720h``, ``+30s``, ``now``)
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/SearchTimeModifiers)."""
    m = modifier.strip()
    if m in ("now", ""):
        return now
    if "@" in m:
        raise NotExecutable(f"snapped time modifier {modifier}")
    sign = -1 if m.startswith("-") else 1
    return now + sign * span_seconds(m.lstrip("+-"))
