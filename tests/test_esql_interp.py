"""Unit tests of the ES|QL interpreter (tests/interpreters/esql_interp.py): each command and
function on small inputs, with the semantics its ES|QL reference page documents."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.interpreters.esql_interp import execute
from tests.interpreters.esql_interp_values import Date, EsqlError

MIN = 60_000
HOUR = 3_600_000


Docs = list[dict[str, Any]]


def q(
    query: str,
    docs: Docs | None = None,
    lookups: dict[str, list[dict[str, Any]]] | None = None,
    now: int = 0,
) -> list[dict[str, Any]]:
    return execute(query, {"logs-test-default": docs or []}, lookups or {}, now)


def row(expr: str) -> Any:
    """The value of one expression (ROW x = <expr>)."""
    return q(f"ROW x = {expr}")[0]["x"]


# ------------------------------------------------------------------ WHERE and null logic
def test_not_of_a_comparison_with_null_is_null_so_where_drops_the_row() -> None:
    docs: Docs = [{"id": 1, "x": None}, {"id": 2, "x": 1}, {"id": 3, "x": 2}, {"id": 4}]
    assert [r["id"] for r in q("FROM logs-* | WHERE NOT (x == 1)", docs)] == [3]
    assert [r["id"] for r in q("FROM logs-* | WHERE x != 1 OR x IS NULL", docs)] == [1, 3, 4]


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("null == 1 OR true", True),
        ("null == 1 AND false", False),
        ("null == 1 AND true", None),
        ("null == 1 OR false", None),
        ("NOT (null == 1)", None),
        ("null IS NULL", True),
        ("1 IN (2, null)", None),
        ("1 IN (1, null)", True),
        ("1 NOT IN (2, 3)", True),
    ],
)
def test_three_valued_logic(expr: str, value: Any) -> None:
    assert row(expr) is value


def test_comparisons_on_a_multi_value_are_null() -> None:
    docs: Docs = [{"id": 1, "t": ["a", "b"]}, {"id": 2, "t": "a"}]
    assert [r["id"] for r in q('FROM logs-* | WHERE t == "a"', docs)] == [2]
    assert [r["id"] for r in q('FROM logs-* | WHERE t LIKE "a*"', docs)] == [2]
    assert [r["id"] for r in q('FROM logs-* | WHERE MV_CONTAINS(t, "a")', docs)] == [1, 2]
    assert [r["id"] for r in q("FROM logs-* | WHERE t IS NOT NULL", docs)] == [1, 2]


def test_incomparable_types_are_a_verification_error() -> None:
    with pytest.raises(EsqlError):
        row('1 == "1"')


# ------------------------------------------------------------------ BUCKET / DATE_TRUNC / NOW
def test_bucket_is_epoch_aligned_and_a_window_end_opens_the_next_bucket() -> None:
    docs = [{"@timestamp": Date(t)} for t in (0, MIN - 1, MIN, 5 * HOUR + 17)]
    out = q("FROM logs-* | STATS n = COUNT(*) BY w = BUCKET(@timestamp, 1 minute)", docs)
    assert {r["w"].ms: r["n"] for r in out} == {0: 2, MIN: 1, 5 * HOUR: 1}
    assert row("DATE_TRUNC(1 hour, NOW())") is not None
    assert q("ROW x = DATE_TRUNC(10 minutes, NOW()) - 10 minutes", now=HOUR + 1)[0]["x"] == Date(
        HOUR - 10 * MIN
    )
    # calendar periods: 1 day, 1 week (Monday), 1 month
    jan3 = 1704240000000 + 5 * HOUR  # Wednesday 2024-01-03T05:00Z
    assert q("ROW x = DATE_TRUNC(1 day, NOW())", now=jan3)[0]["x"] == Date(1704240000000)
    assert q("ROW x = DATE_TRUNC(1 week, NOW())", now=jan3)[0]["x"] == Date(1704067200000)
    assert q("ROW x = NOW() - 1 month", now=1709251200000)[0]["x"] == Date(1706745600000)


# ------------------------------------------------------------------ STATS
def test_stats_by_a_multi_valued_field_puts_the_row_in_each_group() -> None:
    docs: Docs = [
        {"tags": ["a", "b"], "x": [1, 2]},
        {"tags": "a", "x": None},
        {"tags": None, "x": 5},
    ]
    out = q("FROM logs-* | STATS rows = COUNT(*), xs = COUNT(x), s = SUM(x) BY tags", docs)
    got = {r["tags"]: (r["rows"], r["xs"], r["s"]) for r in out}
    # COUNT(*) counts rows, COUNT(x) counts values (each of a multi-value), nulls skipped;
    # a null key is a group of its own
    assert got == {"a": (2, 2, 3), "b": (1, 2, 3), None: (1, 1, 5)}
    assert list(out[0]) == ["rows", "xs", "s", "tags"]


def test_stats_without_by_gives_one_row_even_over_no_rows() -> None:
    assert q("FROM logs-* | STATS n = COUNT(*), m = MAX(x)", []) == [{"n": 0, "m": None}]
    assert q("FROM logs-* | STATS n = COUNT(*) BY h", []) == []


def test_aggregate_where_filters_that_aggregate_only() -> None:
    docs: Docs = [{"h": "a", "x": 1}, {"h": "a", "x": 5}, {"h": "a"}]
    out = q("FROM logs-* | STATS n = COUNT(*), big = COUNT(*) WHERE x > 2, m = MIN(x) BY h", docs)
    assert out == [{"n": 3, "big": 1, "m": 1, "h": "a"}]


def test_aggregates() -> None:
    docs = [{"x": v, "k": k} for v, k in ((1, "a"), (2, "b"), (3, "b"), (6, None))]
    out = q(
        "FROM logs-* | STATS s = SUM(x), a = AVG(x), lo = MIN(x), hi = MAX(x), "
        "sd = STD_DEV(x), p = PERCENTILE(x, 50), d = COUNT_DISTINCT(k), hk = MAX(k)",
        docs,
    )
    assert out == [{"s": 12, "a": 3.0, "lo": 1, "hi": 6, "sd": pytest.approx(1.8708287), "p": 2.5,
                    "d": 2, "hk": "b"}]  # fmt: skip


def test_inline_stats_adds_the_group_aggregate_to_every_row() -> None:
    docs = [{"h": "a", "x": 1}, {"h": "a", "x": 2}, {"h": "b", "x": 7}]
    out = q(
        "FROM logs-* | INLINE STATS n = COUNT(*), s = SUM(x) WHERE x > 1 BY h | KEEP h, x, n, s",
        docs,
    )
    assert out == [
        {"h": "a", "x": 1, "n": 2, "s": 2},
        {"h": "a", "x": 2, "n": 2, "s": 2},
        {"h": "b", "x": 7, "n": 1, "s": 7},
    ]


def test_stats_output_hides_columns_of_the_input() -> None:
    with pytest.raises(EsqlError, match="Unknown column"):
        q("FROM logs-* | STATS n = COUNT(*) BY h | WHERE x > 1", [{"h": "a", "x": 1}])


# ------------------------------------------------------------------ LOOKUP JOIN
def test_lookup_join_is_a_left_join_one_row_per_match() -> None:
    lk = {"lk": [{"k": "a", "v": "1"}, {"k": "a", "v": "2"}, {"k": "b", "v": "3"}]}
    docs: Docs = [{"id": 1, "k": "a", "v": "old"}, {"id": 2, "k": "c"}, {"id": 3, "k": ["a", "b"]},
            {"id": 4}]  # fmt: skip
    out = q("FROM logs-* | LOOKUP JOIN lk ON k | KEEP id, v", docs, lk)
    assert sorted((r["id"], r["v"]) for r in out) == [
        (1, "1"), (1, "2"), (2, None), (3, None), (4, None)
    ]  # fmt: skip


def test_lookup_join_key_must_exist_on_both_sides() -> None:
    with pytest.raises(EsqlError, match="right side"):
        q("FROM logs-* | LOOKUP JOIN lk ON z", [{"z": 1}], {"lk": [{"k": "a"}]})


# ------------------------------------------------------------------ EVAL / KEEP / DROP
def test_eval_is_sequential_and_replaces_a_column_at_the_end() -> None:
    out = q("FROM logs-* | EVAL a = b + 1, b = a * 10, c = b", [{"a": 0, "b": 1}])
    assert out == [{"a": 2, "b": 20, "c": 20}]
    assert list(out[0]) == ["a", "b", "c"]


def test_keep_and_drop_with_patterns() -> None:
    docs = [{"a": 1, "siemc_lc_x": "x", "siemc_lc_y": "y", "b": 2}]
    assert q("FROM logs-* | DROP siemc_lc_*, b", docs) == [{"a": 1}]
    assert q("FROM logs-* | KEEP siemc*", docs) == [{"siemc_lc_x": "x", "siemc_lc_y": "y"}]
    with pytest.raises(EsqlError, match="Unknown column"):
        q("FROM logs-* | DROP b | WHERE b > 1", docs)
    with pytest.raises(EsqlError, match="No matches"):
        q("FROM logs-* | DROP zz*", docs)


def test_from_patterns_and_metadata() -> None:
    idx: dict[str, Docs] = {
        "logs-zeek.conn-default": [{"_id": "e1", "x": 1}],
        "logs-other-default": [{"x": 2}],
    }
    out = execute("FROM logs-zeek.* METADATA _id, _index", idx, {}, 0)
    assert out == [{"x": 1, "_id": "e1", "_index": "logs-zeek.conn-default"}]
    with pytest.raises(EsqlError, match="Unknown index"):
        execute("FROM metrics-*", idx, {}, 0)


def test_the_default_limit_is_not_silently_applied() -> None:
    docs = [{"i": i} for i in range(1001)]
    with pytest.raises(EsqlError, match="1000"):
        q("FROM logs-*", docs)
    assert len(q("FROM logs-* | LIMIT 5", docs)) == 5


# ------------------------------------------------------------------ strings and patterns
@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ('"abc" LIKE "a*"', True),
        ('"abc" LIKE "A*"', False),  # case-sensitive
        ('"abc" LIKE "?b?"', True),
        ('"abc" LIKE "b"', False),  # whole string
        ('"a*c" LIKE "a\\\\*c"', True),  # escaped wildcard
        ('"abc" LIKE "a\\\\*c"', False),
        ('"abc" LIKE ("x*", "*c")', True),
        ('"abc" NOT LIKE "a*"', False),
        ('"a\\nb" LIKE "a?b"', True),
        ('"abc" RLIKE "a.c"', True),
        ('"abcd" RLIKE "a.c"', False),  # anchored
        ('"a\\nc" RLIKE "a.c"', True),  # Lucene . matches any character
        ('"a-1" RLIKE "[a-z]\\\\-[0-9]{1,2}"', True),
        ('"a.b" RLIKE "a\\".\\"b"', True),  # quoted string
        ('"axb" RLIKE "a\\".\\"b"', False),
        ('TO_LOWER("ÄB")', "äb"),
        ('TO_UPPER("ab")', "AB"),
        ('STARTS_WITH("abc", "ab")', True),
        ('ENDS_WITH("abc", "B")', False),
        ('TRIM(" \tab\u2003 ")', "ab"),
        ('REPLACE("a.b.c", "(?s)^.*[.]([^.]*[.][^.]*)$", "$1")', "b.c"),
        ('REPLACE("C:\\\\x\\\\y.exe", "(?s)^.*[/\\\\\\\\]", "")', "y.exe"),
        ('REPLACE("host.", "[.]+$", "")', "host"),
        ('"say \\"hi\\"\\t"', 'say "hi"\t'),
        ('"""raw \\n"""', "raw \\n"),
    ],
)
def test_string_functions_and_patterns(expr: str, value: Any) -> None:
    assert row(expr) == value


def test_rlike_optional_operators_are_refused() -> None:
    with pytest.raises(EsqlError):
        row('"a" RLIKE "~a"')


def test_to_lower_takes_multi_values() -> None:
    assert row('TO_LOWER(["A", "B"])') == ["a", "b"]
    assert row("TO_LOWER(null)") is None


# ------------------------------------------------------------------ numbers, conversions, ips
@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("7 / 2", 3),
        ("-7 / 2", -3),  # Java truncates toward zero
        ("7.0 / 2", 3.5),
        ("1 / 0", None),
        ("1.0 / 0", None),
        ("7 % 3", 1),
        ("9223372036854775807 + 1", None),  # long overflow
        ('TO_DOUBLE(" 1e3 ")', 1000.0),
        ('TO_DOUBLE("1.5d")', 1.5),
        ('TO_DOUBLE("NaN")', None),
        ('TO_DOUBLE("abc")', None),
        ('TO_LONG("42")', 42),
        ("TO_STRING(1.0)", "1.0"),
        ("TO_STRING(10000000.0)", "1.0E7"),
        ("ABS(-3)", 3),
        ("SQRT(-1.0)", None),
        ("COALESCE(null, 2, 3)", 2),
        ("CASE(null == 1, 1, 2)", 2),
        ("CASE(false, 1)", None),
        ("GREATEST(1, null)", None),
        ("GREATEST(1, 5, 3)", 5),
        ("LEAST([4, 2], 3)", 2),
        ('MV_CONTAINS(null, "x")', False),
        ('MV_CONTAINS(["a", "b"], null)', True),
        ('MV_CONTAINS(["a", "b"], ["b", "a"])', True),
        ('CIDR_MATCH(TO_IP("10.1.2.3"), "10.0.0.0/8", "192.168.0.0/16")', True),
        ('CIDR_MATCH(TO_IP("11.1.2.3"), "10.0.0.0/8")', False),
        ('CIDR_MATCH(TO_IP("fd00::1"), "fd00::/8")', True),
        ('CIDR_MATCH(TO_IP("10.1.2.3"), "::ffff:0:0/96")', True),  # IPv4 stored as mapped v6
        ('TO_IP("::ffff:10.0.0.1") == TO_IP("10.0.0.1")', True),
        ('TO_IP("10.0.0.256")', None),
    ],
)
def test_numbers_conversions_and_ips(expr: str, value: Any) -> None:
    assert row(expr) == value


def test_ip_values_and_dates_print_as_elasticsearch_does() -> None:
    assert row('TO_STRING(TO_IP("FD00:0::1"))') == "fd00::1"
    assert str(Date(1704067200123)) == "2024-01-01T00:00:00.123Z"
    assert row('TO_IP("10.0.0.1")') == ipaddress.IPv4Address("10.0.0.1")


def test_unknown_functions_are_refused() -> None:
    with pytest.raises(EsqlError, match="not interpreted"):
        row("MV_SORT([2, 1])")


# ------------------------------------------------------------------ INLINE STATS, VALUES, MV_EXPAND
def test_inline_stats_appends_the_group_aggregate_to_every_row() -> None:
    """commands/inlinestats-by: every input row is kept and gets its group's aggregates; a
    per-aggregate WHERE filters the rows of that aggregate only; nulls are skipped."""
    docs: Docs = [
        {"id": 1, "k": "a", "t": 5, "f": True},
        {"id": 2, "k": "a", "t": 3, "f": False},
        {"id": 3, "k": "b", "t": 7, "f": False},
        {"id": 4, "k": "b", "t": None, "f": True},
    ]
    rows = q("FROM logs-* | INLINE STATS m = MIN(t) WHERE f, n = COUNT(t) BY k", docs)
    assert [(r["id"], r["m"], r["n"]) for r in rows] == [
        (1, 5, 2),
        (2, 5, 2),
        (3, None, 1),
        (4, None, 1),
    ]


def test_inline_stats_null_key_is_its_own_group() -> None:
    docs: Docs = [{"id": 1, "k": None, "t": 1}, {"id": 2, "t": 2}, {"id": 3, "k": "a", "t": 3}]
    rows = q("FROM logs-* | INLINE STATS s = SUM(t) BY k", docs)
    assert [(r["id"], r["s"]) for r in rows] == [(1, 3), (2, 3), (3, 3)]


def test_inline_stats_by_a_multi_valued_key_is_refused() -> None:
    """The page does not say which group's result a row in several groups receives."""
    with pytest.raises(EsqlError):
        q("FROM logs-* | INLINE STATS n = COUNT(*) BY k", [{"k": ["a", "b"]}])


def test_values_gives_the_distinct_values_skipping_nulls() -> None:
    """aggregation-functions#esql-values: all distinct values of the group as a multi-value
    (order not guaranteed: compared as sets here); null without values."""
    docs: Docs = [{"k": "a", "x": [1, 2]}, {"k": "a", "x": 2}, {"k": "a"}, {"k": "b"}]
    rows = {r["k"]: r["v"] for r in q("FROM logs-* | STATS v = VALUES(x) BY k", docs)}
    assert sorted(rows["a"]) == [1, 2] and rows["b"] is None
    single = q("FROM logs-* | STATS v = VALUES(x)", [{"x": 4}, {"x": 4}])
    assert single[0]["v"] == 4


def test_mv_expand_gives_one_row_per_value() -> None:
    """commands/mv_expand: one row per value, the other columns duplicated."""
    docs: Docs = [{"id": 1, "a": [1, 2, 3], "b": "x"}, {"id": 2, "a": 9, "b": "y"}]
    rows = q("FROM logs-* | MV_EXPAND a | KEEP id, a, b", docs)
    assert [(r["id"], r["a"], r["b"]) for r in rows] == [
        (1, 1, "x"),
        (1, 2, "x"),
        (1, 3, "x"),
        (2, 9, "y"),
    ]
    with pytest.raises(EsqlError):
        q("FROM logs-* | KEEP id | MV_EXPAND nope", docs)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ('MV_APPEND("c", "h")', ["c", "h"]),
        ("MV_APPEND([1, 2], 3)", [1, 2, 3]),
        ("MV_APPEND(null, 3)", 3),
        ("MV_APPEND(null, null)", None),
    ],
)
def test_mv_append_concatenates(expr: str, value: Any) -> None:
    assert row(expr) == value


def test_date_arithmetic_with_multi_values_after_expansion() -> None:
    """The per-candidate baseline: expand the history times, test each against the window."""
    docs: Docs = [{"w": Date(10 * HOUR), "h": [Date(9 * HOUR), Date(10 * HOUR)]}]
    rows = q(
        "FROM logs-* | MV_EXPAND h | EVAL s = h >= w - 1 hour AND h < w "
        "| STATS n = COUNT(*) WHERE s BY w",
        docs,
    )
    assert rows[0]["n"] == 1
