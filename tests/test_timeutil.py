from __future__ import annotations

import pytest

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
