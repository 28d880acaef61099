"""Deviation forms of the reference evaluator: ratio to the historical mean, downward deviation,
and a history that includes the current window (docs/semantics.md, "Baselines", deviation)."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from compiler import ir
from compiler.diagnostics import DiagnosticError
from compiler.evaluator.aggregate import AggregateDetector
from compiler.evaluator.model import Alert, Event
from compiler.lower import load_text

H = 3_600_000


def E(ts: int, eid: str, **fields: Any) -> Event:
    return Event(ts=ts, seq=ts, id=eid, fields=fields)


def dev(
    *,
    k: float | None = None,
    pct: float | None = None,
    ratio: float | None = None,
    direction: Literal["above", "below"] = "above",
    include: bool = False,
    min_history: int = 3,
    lookback: int = 24 * H,
) -> ir.Deviation:
    return ir.Deviation(
        "total", lookback, k, pct, min_history, ir.Span("t.yml", 1, 1), ratio, direction, include
    )


def hourly(values: list[Any], *devs: ir.Deviation) -> list[int]:
    """Window indexes (hours) that alert, one event per listed value (None: no event)."""
    node = ir.Aggregate(
        stream="s",
        window=ir.Window("tumbling", H),
        keys=("host",),
        measures=(ir.Measure("total", "sum", "b"),),
        compute=(),
        having=None,
    )
    det = AggregateDetector("A", node, devs)
    out: list[Alert] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        e = E(i * H + 1, f"e{i}", host="h", b=v)
        out += det.push("s", e)
        out += det.advance(e.ts)
    out += det.finish(None)
    return [a.start // H for a in out]


# --------------------------------------------------------------------------- ratio
def test_ratio_is_at_least_r_times_the_mean_ties_included() -> None:
    assert hourly([10, 10, 10, 100], dev(ratio=10)) == [3]  # 100 = 10 * 10: at least
    assert hourly([10, 10, 10, 99], dev(ratio=10)) == []
    # mean 29/7: 7 times the float mean is 29.000000000000004, the exact rule says 29 is 7x
    past = [1, 2, 3, 4, 5, 6, 8]
    assert 7 * (sum(past) / 7) > 29
    assert hourly([*past, 29], dev(ratio=7)) == [7]
    assert hourly([*past, 28], dev(ratio=7)) == []


def test_ratio_with_a_mean_that_is_not_positive_is_false() -> None:
    assert hourly([0, 0, 0, 5], dev(ratio=2)) == []
    assert hourly([-4, 2, 2, 5], dev(ratio=2)) == []  # mean 0
    assert hourly([-5, -5, -5, 100], dev(ratio=2)) == []  # negative mean: no "times the usual"
    assert hourly([0, 0, 3, 2], dev(ratio=2)) == [3]  # mean 1


def test_ratio_needs_min_history_past_windows_and_a_numeric_value() -> None:
    assert hourly([10, 10, 100], dev(ratio=10)) == []
    assert hourly([10, 10, 100], dev(ratio=10, min_history=2)) == [2]
    # a window whose sum has no value is not history, and a null current value fails
    assert hourly([10, "x", 10, 10, 100], dev(ratio=10)) == [4]
    assert hourly([10, 10, 10, "x"], dev(ratio=1)) == []


def test_ratio_below_is_at_most_the_mean_divided_by_r() -> None:
    assert hourly([100, 100, 100, 10], dev(ratio=10, direction="below")) == [3]  # tie: at most
    assert hourly([100, 100, 100, 11], dev(ratio=10, direction="below")) == []
    assert hourly([100, 100, 100, 0], dev(ratio=10, direction="below")) == [3]
    # mean 10/3 divided by 3 is 10/9: 1 is at most that, 2 is not
    assert hourly([1, 4, 5, 1], dev(ratio=3, direction="below")) == [3]
    assert hourly([1, 4, 5, 2], dev(ratio=3, direction="below")) == []
    assert hourly([0, 0, 0, 0], dev(ratio=1, direction="below")) == []  # mean 0


# --------------------------------------------------------------------------- below
def test_below_k_is_strictly_under_mean_minus_k_stdev() -> None:
    # history 10, 12, 11: mean 11, sample stdev 1
    assert hourly([10, 12, 11, 8], dev(k=3, direction="below")) == []  # 11 - 3 = 8: not under
    assert hourly([10, 12, 11, 7], dev(k=3, direction="below")) == [3]
    assert hourly([10, 12, 11, 14], dev(k=3, direction="below")) == []


def test_below_percentile_is_strictly_under_it() -> None:
    hist = [10, 20, 30, 40]  # nearest-rank 25th percentile: 10
    assert hourly([*hist, 10], dev(pct=25, direction="below")) == []
    assert hourly([*hist, 9], dev(pct=25, direction="below")) == [4]
    # window 3: 10 under the median 30 of 40, 30, 20; window 4: 11 under 20 of the four
    assert hourly([40, 30, 20, 10, 11], dev(pct=50, direction="below")) == [3, 4]


def test_below_only_judges_windows_that_had_events() -> None:
    # a host that goes silent has no window to judge; empty windows are not zeros in the mean
    assert hourly([100, 100, 100, None, None], dev(ratio=10, direction="below")) == []
    assert hourly([100, None, 100, None, 100, 1], dev(ratio=10, direction="below")) == [5]


# --------------------------------------------------------------------------- include_current
def test_include_current_adds_the_current_value_to_the_history() -> None:
    # past 10, 12, 11: mean 11, stdev 1, so 14 > 11 + 2 * 1; with 14 included the mean is
    # 11.75 and the stdev 1.71, and 14 is not above 15.17
    assert hourly([10, 12, 11, 14], dev(k=2)) == [3]
    assert hourly([10, 12, 11, 14], dev(k=2, include=True)) == []
    # ratio: past 10, 10, 10 and current 40: mean 17.5 with it, 40 >= 2 * 17.5 holds, 3x not
    assert hourly([10, 10, 10, 40], dev(ratio=3)) == [3]
    assert hourly([10, 10, 10, 40], dev(ratio=2, include=True)) == [3]
    assert hourly([10, 10, 10, 40], dev(ratio=3, include=True)) == []


def test_include_current_bounds_how_far_out_a_value_can_be() -> None:
    # 4 values: none is more than 3 / sqrt(4) = 1.5 sample stdevs from their mean (E707)
    assert hourly([10, 10, 10, 1000], dev(k=1.5, include=True)) == []
    assert hourly([10, 10, 10, 1000], dev(k=1.49, include=True)) == [3]


def test_include_current_min_history_still_counts_past_windows() -> None:
    # one past window and the current: two values, enough for a sample stdev
    assert hourly([10, 30], dev(k=0.5, include=True, min_history=1)) == [1]
    assert hourly([10, 30], dev(k=0.5, include=True, min_history=2)) == []
    assert hourly([10, 30], dev(k=0.5, min_history=1)) == []  # excluded: one value, no stdev


def test_include_current_percentile_ranks_the_current_value_too() -> None:
    # past 10, 20, 30 and current 25: the 50th percentile of the four is 20 (25 > 20); of the
    # past three it is 20 too; with current 15 the four give 15 (not above), the three 20
    assert hourly([10, 20, 30, 25], dev(pct=50, include=True)) == [3]
    assert hourly([30, 20, 10, 15], dev(pct=50, include=True, direction="below")) == []
    assert hourly([30, 20, 10, 15], dev(pct=50, direction="below")) == [3]


def test_every_entry_must_hold_and_history_records_every_window() -> None:
    # window 3 fails the second entry (3 past windows, 4 needed) yet becomes history of
    # window 4: the mean there is 15, so 25 is not twice it (it would be without the 30)
    two = (dev(ratio=2), dev(ratio=1, min_history=4))
    assert hourly([10, 10, 10, 30, 25], *two) == []
    assert hourly([10, 10, 10, 30, 25], dev(ratio=2)) == [3]
    assert hourly([10, 10, 10, 30, 40], *two) == [4]


# --------------------------------------------------------------------------- lowering
HEAD = """\
id: L-DV
title: t
description: d
attack: {techniques: [T1048]}
platforms: [linux]
severity: low
streams:
  net: {logsource: {category: network_connection}}
detect:
  aggregate:
    stream: net
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures: {events: {count: true}}
baseline:
  - deviation: {measure: events, lookback: 7d, """


def lower(entry: str) -> ir.Analytic:
    return load_text("dv.yml", HEAD + entry + "}\n").analytic


def diagnostics(entry: str) -> list[tuple[str, int, int]]:
    with pytest.raises(DiagnosticError) as info:
        lower(entry)
    return [(d.code, d.line, d.col) for d in info.value.diagnostics]


def test_forms_lower_into_the_ir() -> None:
    (b,) = lower("ratio: 10, direction: below, history: include_current").baselines
    assert b == ir.Deviation("events", 7 * 24 * H, None, None, 3, b.span, 10.0, "below", True)
    (b,) = lower("k: 3").baselines
    assert isinstance(b, ir.Deviation)
    assert (b.ratio, b.direction, b.include_current) == (None, "above", False)


def test_bad_combinations_are_positioned_errors() -> None:
    col = len("  - deviation: {measure: events, lookback: 7d, ") + 1
    line = HEAD.count("\n") + 1
    assert diagnostics("k: 3, ratio: 10") == [("E705", line, col + len("k: 3, "))]
    assert diagnostics("min_history: 3")[0][0] == "E705"
    value = col + len("ratio: ")
    assert diagnostics("ratio: 0") == [("E706", line, value)]
    assert diagnostics("ratio: -2") == [("E706", line, value)]
    assert diagnostics("ratio: 0.1, direction: below") == [("E706", line, value)]
    pct = col + len("percentile: ")
    assert diagnostics("percentile: 100, history: include_current") == [("E707", line, pct)]
    # 7d of 1h windows: 169 values at most, none more than 168 / 13 = 12.9 stdevs out
    assert diagnostics("k: 13, history: include_current") == [("E707", line, col + len("k: "))]
    assert lower("k: 12.9, history: include_current").baselines
    assert lower("k: 13").baselines
    # the same percentile excluding the current window, or below, is fine
    assert lower("percentile: 100").baselines
    assert lower("percentile: 100, history: include_current, direction: below").baselines
    assert diagnostics("ratio: 2, direction: sideways")[0][0].startswith("E1")
    assert diagnostics("ratio: 2, history: current")[0][0].startswith("E1")


def test_bad_ratio_says_how_to_write_a_drop() -> None:
    with pytest.raises(DiagnosticError) as info:
        lower("ratio: 0.1")
    (d,) = info.value.diagnostics
    assert "direction: below with ratio: 10" in (d.help or "")
