"""Timestamps, durations and sizes: the one place where text becomes integers.

Every time in siemc is an integer number of milliseconds since the Unix epoch (UTC). Every
duration is integer milliseconds and every size integer bytes.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

__all__ = ["format_timestamp", "parse_duration", "parse_size", "parse_timestamp"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ISO 8601 (`T` or space between date and time, as Sysmon's `UtcTime` uses a space). Fractions
# may have any number of digits: Sysmon for Linux writes nanoseconds (`.399931000Z`), which
# `datetime.fromisoformat` does not promise to accept, hence our own pattern.
_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

_MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

_TS_HELP = (
    "expected ISO 8601 (2024-01-01T00:00:00Z, 2024-01-01T02:00:00+02:00; no zone = UTC), "
    "'YYYY-MM-DD HH:MM:SS.fff' (UTC) or an epoch number (int, float or numeric string): "
    "seconds, or ms/us/ns when too large for seconds"
)


def parse_timestamp(value: object) -> int:
    """Milliseconds since the Unix epoch (UTC) for a timestamp; sub-millisecond digits are
    dropped (floor). Raises ``ValueError`` for anything it does not recognise."""
    # Fast paths for what logs nearly always hold; each returns None whenever it is not sure,
    # and the general parser below decides (tests/test_timeutil.py compares the two).
    kind = type(value)
    if kind is str:
        ms = _fast_iso(value)  # type: ignore[arg-type]
        if ms is not None:
            return ms
    elif kind is int and -_EPOCH_INT_MAX < value < _EPOCH_INT_MAX:  # type: ignore[operator]
        ms = _fast_epoch(value)  # type: ignore[arg-type]
        if _MIN_MS <= ms <= _MAX_MS:
            return ms
    return _parse_general(value)


def _parse_general(value: object) -> int:
    if isinstance(value, bool):  # bool is an int subclass; True is no timestamp
        raise ValueError(f"invalid timestamp {value!r}: {_TS_HELP}")
    if isinstance(value, int):
        return _epoch_seconds(str(value), value)
    if isinstance(value, float):
        return _epoch_seconds(repr(value), value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            return _epoch_seconds(text, value)
        m = _ISO.fullmatch(text)
        if m:
            return _iso_ms(m, value)
    raise ValueError(f"invalid timestamp {value!r}: {_TS_HELP}")


def _epoch_seconds(text: str, original: object) -> int:
    # Decimal on the shortest repr keeps 1588317520.80286 exact; float * 1000 would not.
    try:
        seconds = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the caller's regex excludes this
        raise ValueError(f"invalid timestamp {original!r}: {_TS_HELP}") from exc
    if not seconds.is_finite():
        raise ValueError(f"invalid timestamp {original!r}: {_TS_HELP}")
    # Year 9999 is below 3e20 even in nanoseconds. Refusing larger exponents here keeps
    # `1e999999` from building a million-digit integer and `9e99999999` from overflowing the
    # decimal context.
    if seconds and seconds.adjusted() > 20:
        raise ValueError(f"invalid timestamp {original!r}: outside the years 1..9999")
    # Exports often carry epoch milliseconds (or micro-/nanoseconds). As seconds, 1e11 is the
    # year 5138, so larger magnitudes are read in the next finer unit: ms from 1973 on, us from
    # 1973 on, ns from 1973 on are all recognised.
    scale = Decimal(1000)
    for limit in (Decimal("1e11"), Decimal("1e14"), Decimal("1e17")):
        if abs(seconds) >= limit:
            scale /= 1000
    ms = int((seconds * scale).to_integral_value(rounding="ROUND_FLOOR"))
    if not _MIN_MS <= ms <= _MAX_MS:
        raise ValueError(f"invalid timestamp {original!r}: outside the years 1..9999")
    return ms


def _iso_ms(m: re.Match[str], original: object) -> int:
    g = m.groupdict()
    try:
        # datetime validates the calendar (month 13, Feb 30, hour 24 all fail here)
        dt = datetime(
            int(g["y"]),
            int(g["mo"]),
            int(g["d"]),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
        )
    except ValueError as exc:
        raise ValueError(f"invalid timestamp {original!r}: {exc}") from exc
    seconds = calendar.timegm(dt.timetuple())
    tz = g["tz"]
    if tz and tz not in "Zz":
        digits = tz[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
        if int(digits[:2]) > 23 or int(digits[2:4] or 0) > 59:
            raise ValueError(f"invalid timestamp {original!r}: bad UTC offset {tz!r}")
        seconds -= offset if tz[0] == "+" else -offset
    frac = (g["f"] or "")[:3].ljust(3, "0")
    return seconds * 1000 + int(frac)


# --------------------------------------------------------------------------- fast paths
_EPOCH_INT_MAX = 10**20  # below 1e21: _epoch_seconds' exponent guard never fires


def _fast_epoch(value: int) -> int:
    """_epoch_seconds for an int: seconds, or ms / us / ns from 1e11 / 1e14 / 1e17 on."""
    size = -value if value < 0 else value
    if size < 100_000_000_000:
        return value * 1000
    if size < 100_000_000_000_000:
        return value
    if size < 100_000_000_000_000_000:
        return value // 1000  # floor, as ROUND_FLOOR
    return value // 1_000_000


# "YYYY-MM-DDTHH:MM" -> ms (UTC) at that minute: a log repeats each minute's prefix many times
_MINUTE_MS: dict[str, int] = {}
_MINUTE_MEMO_MAX = 100_000
_EPOCH_ORDINAL = _EPOCH.toordinal()


def _fast_iso(s: str) -> int | None:
    """``YYYY-MM-DD[Tt ]HH:MM:SS[.,]f+`` followed by ``Z``, ``z``, ``+HH:MM``, ``-HH:MM`` or
    nothing (UTC), without surrounding space: the layouts of ECS, Sysmon, Zeek and most
    exports. None for anything else (the general parser decides, also on invalid values)."""
    n = len(s)
    if n < 19 or not s.isascii():
        return None
    end = s[-1]
    offset = 0
    if end == "Z" or end == "z":
        n -= 1
    elif n >= 25 and s[-3] == ":" and s[-6] in "+-":
        hh, mm = s[-5:-3], s[-2:]
        if not (hh.isdigit() and mm.isdigit()):
            return None
        h, m = int(hh), int(mm)
        if h > 23 or m > 59:
            return None
        offset = (h * 3600 + m * 60) * (1000 if s[-6] == "-" else -1000)
        n -= 6
    elif not end.isdigit():
        return None
    minute = _MINUTE_MS.get(s[:16])
    if minute is None:
        minute = _minute_ms(s[:16])
        if minute is None:
            return None
    digits = s[17:19]
    if s[16] != ":" or not digits.isdigit() or digits > "59":
        return None
    frac = 0
    if n > 19:
        digits = s[20:n]
        if s[19] not in ".," or not digits.isdigit():
            return None
        frac = int(digits[:3].ljust(3, "0"))
    return minute + int(s[17:19]) * 1000 + frac + offset


def _minute_ms(text: str) -> int | None:
    if text[4] != "-" or text[7] != "-" or text[10] not in "Tt " or text[13] != ":":
        return None
    y, mo, d, h, m = text[:4], text[5:7], text[8:10], text[11:13], text[14:16]
    if not (y.isdigit() and mo.isdigit() and d.isdigit() and h.isdigit() and m.isdigit()):
        return None
    if h > "23" or m > "59":
        return None
    try:
        ordinal = date(int(y), int(mo), int(d)).toordinal()
    except ValueError:
        return None
    if len(_MINUTE_MS) >= _MINUTE_MEMO_MAX:
        _MINUTE_MS.clear()
    ms = (ordinal - _EPOCH_ORDINAL) * 86_400_000 + int(h) * 3_600_000 + int(m) * 60_000
    _MINUTE_MS[text] = ms
    return ms


def format_timestamp(ms: int) -> str:
    """``2024-01-01T00:00:00.000Z`` for milliseconds since the epoch."""
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


_DURATION_UNITS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
# ASCII digits only (`\d` would take `٥m`), the unit right after the number (`5 m` is not
# `5m` in any target's duration syntax), and at most 10 years: every target's scheduler and
# lookback is far shorter, and a longer value only overflows 32-bit fields downstream.
_DURATION = re.compile(r"\s*([0-9]{1,40})(ms|s|m|h|d|w)\s*")
MAX_DURATION_MS = 3650 * 86_400_000


def parse_duration(text: str) -> int:
    """Milliseconds for ``<integer><unit>`` with unit ms, s, m, h, d or w (``5m``, ``1d``).

    Integers only: ``1.5h`` is rejected (write ``90m``), so that every duration is exact.
    Units are lower case because ``M`` would be read as months by half of all readers."""
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(
            f"invalid duration {text!r}: expected an integer followed by one of "
            "ms, s, m, h, d, w (e.g. 500ms, 5m, 1d; no fractions)"
        )
    ms = int(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if ms > MAX_DURATION_MS:
        raise ValueError(f"invalid duration {text!r}: at most 3650d (10 years)")
    return ms


_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*([0-9]{1,40})([A-Za-z]+)\s*")
# 2**53: every size stays an exact integer in the doubles that Elasticsearch, Splunk and Kusto
# compare with.
MAX_SIZE = 2**53


def parse_size(text: str) -> int:
    """Bytes for ``<integer><unit>``: B; KB, MB, GB, TB (powers of 1000); KiB, MiB, GiB, TiB
    (powers of 1024). Units are case-insensitive; integers only."""
    m = _SIZE.fullmatch(text) if isinstance(text, str) else None
    factor = _SIZE_UNITS.get(m.group(2).lower()) if m else None
    if m is None or factor is None:
        raise ValueError(
            f"invalid size {text!r}: expected an integer followed by one of "
            "B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), "
            "e.g. 10MB"
        )
    size = int(m.group(1)) * factor
    if size > MAX_SIZE:
        raise ValueError(f"invalid size {text!r}: at most 2**53 bytes (8 PiB)")
    return size
