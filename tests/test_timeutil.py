from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler import timeutil
from compiler.timeutil import format_timestamp, parse_duration, parse_size, parse_timestamp

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-01T00:00:00Z", T0),
        ("2024-01-01T00:00:00.123Z", T0 + 123),
        ("2024-01-01T00:00:00.1239999Z", T0 + 123),  # truncated, not rounded
        ("2024-01-01T00:00:00.399931000z", T0 + 399),  # Sysmon for Linux: nanoseconds
        ("2024-01-01T02:00:00+02:00", T0),
        ("2023-12-31T19:30:00-0430", T0),
        ("2024-01-01T00:00:00", T0),  # naive = UTC
        ("2024-01-01", T0),
        ("2024-01-01 00:00:00.250", T0 + 250),  # Sysmon UtcTime
        (" 2024-01-01T00:00:00Z ", T0),
        (1704067200, T0),
        (1704067200.5, T0 + 500),
        (1588317520.80286, 1588317520802),  # Zeek ts: no float drift
        (1693979103.975554, 1693979103975),
        ("1704067200.999999", T0 + 999),
        ("1704067200", T0),
        (-0.0005, -1),  # floor, also before the epoch
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_parse_timestamp(value: object, expected: int) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    ["yesterday", "", "2024-13-01T00:00:00Z", "2024-02-30", "2024-01-01T00:00:00+25:00",
     "01/01/2024", True, None, [], float("nan"), "inf", "\u0661\u0667\u0660\u0664067200",
     "\uff12024-01-01"],
)  # fmt: skip
def test_parse_timestamp_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(value)


def test_parse_timestamp_message_names_accepted_forms() -> None:
    with pytest.raises(ValueError, match=r"ISO 8601.*epoch number"):
        parse_timestamp("soon")


def test_format_timestamp() -> None:
    assert format_timestamp(T0) == "2024-01-01T00:00:00.000Z"
    assert format_timestamp(T0 + 1234) == "2024-01-01T00:00:01.234Z"
    assert format_timestamp(-1) == "1969-12-31T23:59:59.999Z"
    for ms in (0, T0, T0 + 7, 1693979103975):
        assert parse_timestamp(format_timestamp(ms)) == ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [("500ms", 500), ("5s", 5000), ("5m", 300_000), ("1h", 3_600_000), ("1d", 86_400_000),
     ("2w", 1_209_600_000), (" 10m ", 600_000), ("0s", 0), ("3650d", 3650 * 86_400_000)],
)  # fmt: skip
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    "text", ["1.5h", "5", "5M", "5 min", "-5m", "", "m", "5 m", "\u0665m", "\uff15m"]
)
def test_parse_duration_rejects_with_units(text: str) -> None:
    with pytest.raises(ValueError, match="ms, s, m, h, d, w"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["3651d", "999999999999999999999w", "9999999999999999w"])
def test_parse_duration_has_a_ceiling(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("0B", 0), ("10B", 10), ("1KB", 1000), ("10MB", 10_000_000), ("2GB", 2 * 10**9),
     ("1TB", 10**12), ("1KiB", 1024), ("1MiB", 1024**2), ("3GiB", 3 * 1024**3),
     ("1TiB", 1024**4), ("10mb", 10_000_000), (" 5kib ", 5120), ("8192TiB", 2**53)],
)  # fmt: skip
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text",
    ["10", "1.5MB", "10 bytes", "10Mb/s", "MB", "-1KB", "1PB", "5 KB", "\u0665MB", "8193TiB"],
)
def test_parse_size_rejects_with_units(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid size"):
        parse_size(text)


@pytest.mark.parametrize(
    "value",
    [1714557600, 1714557600000, "1714557600000", 1714557600000000, 1714557600000000000],
)
def test_epoch_units_by_magnitude(value: object) -> None:
    # seconds, ms, us and ns of the same instant: 2024-05-01T10:00:00Z
    assert parse_timestamp(value) == 1_714_557_600_000


def test_epoch_out_of_range_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="outside the years"):
        parse_timestamp(-1e22)


@pytest.mark.parametrize(
    "value", ["1e999999", "9e99999999", "-9e99999999", 1e300, "1" * 4000, "0.5e-999999"]
)
def test_huge_epoch_exponents_are_refused_at_once(value: object) -> None:
    # once 40-60 s of CPU per line (a million-digit integer) and a decimal.Overflow traceback
    if value == "0.5e-999999":
        assert parse_timestamp(value) == 0
        return
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(value)


# --------------------------------------------------------------------------- fast paths
# parse_timestamp tries a fast path first (the layouts of nearly every log); it must agree with
# the general parser on every value, also by failing where the general parser fails.
def _general(value: object) -> int | str:
    try:
        return timeutil._parse_general(value)
    except ValueError as exc:
        return f"error: {exc}"


def _either(value: object) -> int | str:
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        return f"error: {exc}"


FAST_EDGES = [
    "2024-01-01T00:00:00Z",
    "2024-01-01t00:00:00z",
    "2024-01-01 00:00:00",
    "2024-01-01T00:00:00.5Z",
    "2024-01-01T00:00:00,25Z",
    "2024-01-01T00:00:00.123456789Z",
    "2024-01-01T00:00:00.Z",
    "2024-01-01T00:00:00.",
    "2024-01-01T00:00:00.12a",
    "2024-02-29T23:59:59.999Z",
    "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z",
    "2024-01-32T00:00:00Z",
    "2024-01-01T24:00:00Z",
    "2024-01-01T23:60:00Z",
    "2024-01-01T23:59:60Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999Z",
    "2024-01-01T02:00:00+02:00",
    "2024-01-01T02:00:00.75-02:30",
    "2024-01-01T02:00:00+24:00",
    "2024-01-01T02:00:00+02:60",
    "2024-01-01T02:00:00+0200",
    "2024-01-01T02:00:00+02",
    "2024-01-01T02:00:00 Z",
    "2024-01-01T00:00:00Z ",
    " 2024-01-01T00:00:00Z",
    "2024-01-01T00:00",
    "2024-01-01T0:00:00Z",
    "2024-1-01T00:00:00Z",
    "2024-01-01X00:00:00Z",
    "2024-01-01T00-00-00Z",
    "２０２４-01-01T00:00:00Z",  # full-width digits: not \d under re.ASCII
    "2024-01-01T00:00:0٣Z",
    "2024-01-01",
    "1704067200",
    "",
    1704067200,
    1704067200123,
    1704067200123456,
    1704067200123456789,
    -1704067200,
    -1704067200123,
    -1704067200123457,
    -1704067200123456789,
    99999999999,
    100000000000,
    99999999999999,
    100000000000000,
    99999999999999999,
    100000000000000000,
    10**20 - 1,
    10**20,
    -(10**20) + 1,
    10**21,
    -62135596801,
    -62135596800,
    253402300800,
    0,
    True,
    1.5,
    None,
]


@pytest.mark.parametrize("value", FAST_EDGES, ids=[repr(v)[:40] for v in FAST_EDGES])
def test_fast_paths_agree_with_the_general_parser(value: object) -> None:
    assert _either(value) == _general(value)


_DIGIT = st.sampled_from("0123456789")


@st.composite
def _iso_like(draw: st.DrawFn) -> str:
    """Strings of the fast layout's shape, with digits and separators mutated."""
    parts = [
        draw(st.text(_DIGIT, min_size=4, max_size=4)),
        draw(st.sampled_from("--/")),
        draw(st.text(_DIGIT, min_size=2, max_size=2)),
        "-",
        draw(st.text(_DIGIT, min_size=2, max_size=2)),
        draw(st.sampled_from("Tt x")),
        draw(st.text(_DIGIT, min_size=2, max_size=2)),
        ":",
        draw(st.text(_DIGIT, min_size=2, max_size=2)),
        draw(st.sampled_from("::.")),
        draw(st.text(_DIGIT, min_size=2, max_size=2)),
        draw(st.sampled_from(["", ".", ",", ".x"])) + draw(st.text(_DIGIT, max_size=10)),
        draw(st.sampled_from(["", "Z", "z", " Z", "+", "-", "+0", "X"])),
        draw(st.sampled_from(["", "00:00", "05:30", "23:59", "24:00", "12:60", "0530", "1:00"])),
    ]
    return "".join(parts)


@given(_iso_like())
def test_fast_iso_agrees_with_the_general_parser(value: str) -> None:
    assert _either(value) == _general(value)


@given(st.integers(min_value=-(10**22), max_value=10**22))
def test_fast_epoch_agrees_with_the_general_parser(value: int) -> None:
    assert _either(value) == _general(value)
