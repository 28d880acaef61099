"""ES|QL values for the interpreter (:mod:`tests.interpreters.esql_interp`): types, conversions,
comparisons and date arithmetic, each as the ES|QL reference documents it.

A value is ``None`` (null), a Python scalar of one ES|QL type, or a list of two or more scalars
(a multi-value; Elasticsearch reads doc values, so the adapter hands keyword and ip multi-values
sorted and de-duplicated):

========== =====================================================================
keyword    ``str``
long       ``int`` (64 bits; integer literals are ints too)
double     ``float`` (finite: ES|QL has no NaN or infinity, such results are null)
boolean    ``bool``
ip         ``ipaddress.IPv4Address`` / ``IPv6Address`` (IPv4-mapped v6 read as v4, as
           Elasticsearch's ip field stores them)
date       :class:`Date` (ms since the epoch, UTC)
durations  :class:`Duration` (``time_duration``) and :class:`Period` (``date_period``)
========== =====================================================================
"""

from __future__ import annotations

import calendar
import datetime as dt
import ipaddress
import math
import re
from dataclasses import dataclass
from typing import Any

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
DAY_MS = 86_400_000


class EsqlError(Exception):
    """A query the interpreter rejects: what Elasticsearch would reject (verification), or a
    construct outside the subset this interpreter executes (never silently guessed)."""


@dataclass(frozen=True, order=True)
class Date:
    ms: int

    def __str__(self) -> str:  # TO_STRING of a date: ISO 8601 with milliseconds, UTC
        t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=self.ms)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Duration:
    ms: int


@dataclass(frozen=True)
class Period:
    days: int = 0
    months: int = 0


# --------------------------------------------------------------------------- multi-values
def values(v: Any) -> list[Any]:
    """The values of a column value: [] for null."""
    if v is None:
        return []
    if isinstance(v, list):
        return [x for x in v if x is not None]
    return [v]


def pack(vs: list[Any]) -> Any:
    """A list of values as a column value (null, one value or a multi-value)."""
    vs = [x for x in vs if x is not None]
    if not vs:
        return None
    return vs[0] if len(vs) == 1 else vs


def single(v: Any) -> Any:
    """A single value, or None for null and for a multi-value: "Unless otherwise documented
    functions will return null when applied to a multivalued field"
    (https://www.elastic.co/docs/reference/query-languages/esql/esql-multivalued-fields)."""
    return None if isinstance(v, list) else v


# --------------------------------------------------------------------------- types
def type_of(v: Any) -> str:
    if isinstance(v, list):
        return type_of(v[0])
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "long"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "keyword"
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return "ip"
    if isinstance(v, Date):
        return "date"
    if isinstance(v, Duration):
        return "time_duration"
    if isinstance(v, Period):
        return "date_period"
    if v is None:
        return "null"
    raise EsqlError(f"no ES|QL type for the Python value {v!r}")


def family(v: Any) -> str:
    t = type_of(v)
    return "numeric" if t in ("long", "double") else t


def long_or_null(n: int) -> int | None:
    """Long arithmetic that overflows is null (with a warning) in ES|QL."""
    return n if LONG_MIN <= n <= LONG_MAX else None


def finite_or_null(x: float) -> float | None:
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- comparisons
def ip_key(ip: IP) -> int:
    """The 16-byte form Elasticsearch indexes (IPv4 as IPv4-mapped IPv6) as an integer."""
    if isinstance(ip, ipaddress.IPv4Address):
        return 0xFFFF_0000_0000 | int(ip)
    return int(ip)


def compare(a: Any, b: Any) -> int | None:
    """-1/0/1 for two single values of comparable types, None when either is null. Types that
    cannot be compared are a verification error in Elasticsearch: raised, not guessed."""
    if a is None or b is None:
        return None
    fa, fb = family(a), family(b)
    if fa != fb:
        raise EsqlError(f"cannot compare {type_of(a)} with {type_of(b)}")
    if fa == "ip":
        ka, kb = ip_key(a), ip_key(b)
    elif fa == "keyword":
        # keywords compare as UTF-8 bytes (BytesRef order)
        ka, kb = a.encode("utf-8"), b.encode("utf-8")
    elif fa in ("time_duration", "date_period"):
        raise EsqlError(f"cannot compare {fa} values")
    else:
        ka, kb = a, b
    return (ka > kb) - (ka < kb)


def hashable(v: Any) -> Any:
    """A group/join key for a single value: equal values, equal keys (1 and 1.0 are distinct
    types in ES|QL, but a column has one type, so Python equality is enough)."""
    return (type_of(v), v)


# --------------------------------------------------------------------------- conversions
_JAVA_DOUBLE = re.compile(
    r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?"
    r"|0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+[fFdD]?)"
)


def parse_double(text: str) -> float | None:
    """TO_DOUBLE of a string: Java's Double.parseDouble (leading/trailing chars <= U+0020
    trimmed, `1e3`, `1.5d`, hex floats), whose NaN and infinities ES|QL refuses (null)."""
    s = text.strip("".join(chr(c) for c in range(0x21)))
    if not _JAVA_DOUBLE.fullmatch(s):
        return None
    body = s.rstrip("fFdD") if not s.lower().startswith(("0x", "+0x", "-0x")) else s
    if "x" in body.lower():
        body = body.rstrip("fFdD")
        try:
            x = float.fromhex(body)
        except ValueError:
            return None
    elif body.lstrip("+-") in ("NaN", "Infinity"):
        return None
    else:
        x = float(body)
    return finite_or_null(x)


def java_double_str(x: float) -> str:
    """Java's Double.toString: shortest digits, scientific notation outside [1e-3, 1e7)."""
    if x == 0:
        return "-0.0" if math.copysign(1, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        r = repr(x)
        return r if "." in r else r + ".0"
    mant, _, e = repr(abs(x)).partition("e")
    point = mant.index(".") if "." in mant else len(mant)
    digits = mant.replace(".", "")
    exponent = point - 1 + int(e or 0) - (len(digits) - len(digits.lstrip("0")))
    digits = digits.strip("0") or "0"
    sign = "-" if x < 0 else ""
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def to_string(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return java_double_str(v)
    if isinstance(v, ipaddress.IPv6Address | ipaddress.IPv4Address | Date | int | str):
        return str(v)
    raise EsqlError(f"TO_STRING of {type_of(v)} is not interpreted")


def to_double(v: Any) -> float | None:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return finite_or_null(float(v))
    if isinstance(v, str):
        return parse_double(v)
    if isinstance(v, Date):
        return float(v.ms)
    raise EsqlError(f"TO_DOUBLE of {type_of(v)} is not interpreted")


def to_long(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):  # safeDoubleToLong: out of range is null
        return long_or_null(int(v)) if math.isfinite(v) else None
    if isinstance(v, str):
        s = v.strip("".join(chr(c) for c in range(0x21)))
        if re.fullmatch(r"[+-]?\d+", s):
            return long_or_null(int(s))
        d = parse_double(v)
        return None if d is None else long_or_null(int(d))
    if isinstance(v, Date):
        return v.ms
    raise EsqlError(f"TO_LONG of {type_of(v)} is not interpreted")


def parse_ip(text: str) -> IP | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def to_ip(v: Any) -> IP | None:
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return v
    if isinstance(v, str):
        return parse_ip(v)
    raise EsqlError(f"TO_IP of {type_of(v)} is not interpreted")


# --------------------------------------------------------------------------- literals
_UNITS_MS = {
    "ms": 1,
    "millisecond": 1,
    "milliseconds": 1,
    "s": 1000,
    "sec": 1000,
    "second": 1000,
    "seconds": 1000,
    "min": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
}
_PERIODS = {
    "d": (1, 0),
    "day": (1, 0),
    "days": (1, 0),
    "w": (7, 0),
    "week": (7, 0),
    "weeks": (7, 0),
    "mo": (0, 1),
    "month": (0, 1),
    "months": (0, 1),
    "q": (0, 3),
    "quarter": (0, 3),
    "quarters": (0, 3),
    "y": (0, 12),
    "yr": (0, 12),
    "year": (0, 12),
    "years": (0, 12),
}


def temporal(text: str) -> Duration | Period:
    """A qualified integer literal (`5minutes`, `30days`, as the parser keeps them)."""
    m = re.fullmatch(r"(\d+)\s*([A-Za-z]+)", text.strip())
    if m is None:
        raise EsqlError(f"unreadable temporal literal {text!r}")
    n, unit = int(m.group(1)), m.group(2).lower()
    if unit in _UNITS_MS:
        return Duration(n * _UNITS_MS[unit])
    if unit in _PERIODS:
        days, months = _PERIODS[unit]
        return Period(n * days, n * months)
    raise EsqlError(f"unknown temporal unit {unit!r}")


def unescape(raw: str) -> str:
    """The value of a "..." string literal: the escapes \\t \\n \\r \\" \\\\ of the grammar
    (ESCAPE_SEQUENCE); the parser keeps literals raw."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            mapped = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}.get(nxt)
            if mapped is None:
                raise EsqlError(f"invalid escape \\{nxt} in string literal")
            out.append(mapped)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


# --------------------------------------------------------------------------- dates
def _add_months(ms: int, months: int) -> int:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    total = t.year * 12 + (t.month - 1) + months
    year, month = divmod(total, 12)
    day = min(t.day, calendar.monthrange(year, month + 1)[1])
    moved = t.replace(year=year, month=month + 1, day=day)
    return ms + int((moved - t) / dt.timedelta(milliseconds=1))


def shift(d: Date, amount: Duration | Period, sign: int) -> Date:
    if isinstance(amount, Duration):
        return Date(d.ms + sign * amount.ms)
    ms = d.ms + sign * amount.days * DAY_MS
    return Date(_add_months(ms, sign * amount.months) if amount.months else ms)


def trunc(d: Date, interval: Duration | Period) -> Date:
    """DATE_TRUNC / BUCKET(date, span): fixed durations round down from the epoch; calendar
    periods to the day, the ISO week (Monday), month, quarter or year, UTC."""
    if isinstance(interval, Duration):
        if interval.ms <= 0:
            raise EsqlError("zero or negative rounding interval")
        return Date(d.ms - d.ms % interval.ms)
    if interval.months == 0 and interval.days == 1:
        return Date(d.ms - d.ms % DAY_MS)
    if interval.months == 0 and interval.days == 7:
        day = d.ms - d.ms % DAY_MS
        weekday = (day // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        return Date(day - weekday * DAY_MS)
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=d.ms)
    if interval.days == 0 and interval.months in (1, 3, 12):
        month = (
            1 if interval.months == 12 else (t.month - 1) // interval.months * interval.months + 1
        )
        start = dt.datetime(t.year, month, 1, tzinfo=dt.UTC)
        epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return Date(int((start - epoch) / dt.timedelta(milliseconds=1)))
    raise EsqlError(f"rounding to {interval} is not interpreted")
