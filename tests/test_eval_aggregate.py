"""Aggregates (tumbling, sliding, deviation baselines) and measures of the reference evaluator."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pytest

from compiler import ir
from compiler.evaluator.aggregate import AggregateDetector
from compiler.evaluator.keys import key_tuples
from compiler.evaluator.measures import make_accumulator, nearest_rank_index, sample_stdev
from compiler.evaluator.model import Alert, Event

H = 3_600_000
M = 60_000


def E(ts: int, eid: str, **fields: Any) -> Event:
    return Event(ts=ts, seq=ts, id=eid, fields={k.replace("__", "."): v for k, v in fields.items()})


def count(name: str = "n", fld: str | None = None) -> ir.Measure:
    return ir.Measure(name, "count", fld)


def ge(name: str, v: float) -> ir.Expr:
    return ir.BinOp(">=", ir.MeasureRef(name), ir.Literal_(v))


def agg(
    kind: str = "tumbling",
    size: int = H,
    keys: tuple[str, ...] = ("host",),
    measures: tuple[ir.Measure, ...] = (count(),),
    compute: tuple[tuple[str, ir.Expr], ...] = (),
    having: ir.Expr | None = None,
) -> ir.Aggregate:
    return ir.Aggregate(
        stream="s",
        window=ir.Window(kind, size),  # type: ignore[arg-type]
        keys=keys,
        measures=measures,
        compute=compute,
        having=having,
    )


def run(det: AggregateDetector, events: Iterable[Event], now: int | None = None) -> list[Alert]:
    out: list[Alert] = []
    for e in events:
        out.extend(det.push("s", e))
        out.extend(det.advance(e.ts))
    out.extend(det.finish(now))
    return out


def measures(a: Alert) -> dict[str, Any]:
    return dict(a.measures)


# --------------------------------------------------------------------------- tumbling
def test_tumbling_alignment_and_boundary() -> None:
    det = AggregateDetector("A", agg())
    alerts = run(
        det,
        [
            E(0, "e0", host="h"),
            E(H - 1, "e1", host="h"),
            E(H, "e2", host="h"),
            E(5 * H + 7, "e3", host="h"),
        ],
    )
    got = [(a.start, a.end, a.evidence, measures(a)["n"]) for a in alerts]
    assert got == [
        (0, H, ("e0", "e1"), 2),
        (H, 2 * H, ("e2",), 1),  # an event at exactly a window end opens the next window
        (5 * H, 6 * H, ("e3",), 1),  # aligned to the epoch, not to the first event
    ]
    assert alerts[0].key == (("host", "h"),)
    assert alerts[0].record == (("host", "h"), ("n", 2))


def test_tumbling_window_final_at_watermark_and_at_finish() -> None:
    det = AggregateDetector("A", agg())
    assert list(det.push("s", E(10, "a", host="h"))) == []
    assert list(det.advance(H - 1)) == []
    closed = list(det.advance(H))  # watermark reaches the window end
    assert [a.evidence for a in closed] == [("a",)]
    assert list(det.push("s", E(H + 5, "b", host="h"))) == []
    # finish: every open window is final, whatever `now` says
    assert [a.evidence for a in det.finish(H + 6)] == [("b",)]
    assert det.state_size() == 0


def test_tumbling_negative_times_floor_align() -> None:
    det = AggregateDetector("A", agg())
    alerts = run(det, [E(-1, "a", host="h")])
    assert (alerts[0].start, alerts[0].end) == (-H, 0)


def test_other_streams_and_late_events_are_ignored() -> None:
    det = AggregateDetector("A", agg())
    assert list(det.push("other", E(0, "x", host="h"))) == []
    out = list(det.push("s", E(0, "a", host="h"))) + list(det.push("s", E(H, "b", host="h")))
    out += list(det.push("s", E(5, "late", host="h")))  # window [0, H) is already final
    out += list(det.finish(None))
    assert [a.evidence for a in out] == [("a",), ("b",)]
    assert det.late == 1


def test_having_and_group_order() -> None:
    det = AggregateDetector("A", agg(having=ge("n", 2)))
    evs = [E(1, "1", host="b"), E(2, "2", host="a"), E(3, "3", host="b"), E(4, "4", host="a")]
    evs.append(E(5, "5", host="c"))
    alerts = run(det, evs)
    assert [a.key for a in alerts] == [(("host", "b"),), (("host", "a"),)]


def test_missing_keys_dropped_and_missing_values_ignored() -> None:
    node = agg(
        measures=(count(), count("with_bytes", "bytes"), ir.Measure("total", "sum", "bytes")),
    )
    det = AggregateDetector("A", node)
    alerts = run(
        det,
        [
            E(1, "1", host="h", bytes=10),
            E(2, "2", host="h"),  # no bytes: counted by count:true only
            E(3, "3", bytes=99),  # no key: dropped
            E(4, "4", host=None, bytes=99),  # null key: dropped
            E(5, "5", host=[], bytes=99),  # empty multi-value key: dropped
            E(6, "6", host="h", bytes="x"),  # non-numeric: ignored by sum, counted by count:bytes
            E(7, "7", host="g"),
        ],
    )
    got = {a.key: measures(a) for a in alerts}
    assert got[(("host", "h"),)] == {"n": 3, "with_bytes": 2, "total": 10}
    assert got[(("host", "g"),)] == {"n": 1, "with_bytes": 0, "total": None}  # sum of nothing
    assert len(got) == 2


def test_numeric_strings_and_int_preservation() -> None:
    ms = (
        ir.Measure("s", "sum", "b"),
        ir.Measure("a", "avg", "b"),
        ir.Measure("lo", "min", "b"),
        ir.Measure("hi", "max", "b"),
    )
    det = AggregateDetector("A", agg(measures=ms))
    alerts = run(
        det, [E(1, "1", host="h", b="10"), E(2, "2", host="h", b=" 20 "), E(3, "3", host="h", b=30)]
    )
    m = measures(alerts[0])
    assert m == {"s": 60, "a": 20.0, "lo": 10, "hi": 30}
    assert type(m["s"]) is int and type(m["lo"]) is int and type(m["a"]) is float


def test_zero_denominator_makes_ratio_null_and_having_false() -> None:
    node = agg(
        measures=(ir.Measure("out", "sum", "bo"), ir.Measure("inb", "sum", "bi")),
        compute=(("ratio", ir.BinOp("/", ir.MeasureRef("out"), ir.MeasureRef("inb"))),),
        having=ge("ratio", 10),
    )
    det = AggregateDetector("A", node)
    alerts = run(
        det,
        [
            E(1, "1", host="zero", bo=1000, bi=0),
            E(2, "2", host="ok", bo=1000, bi=50),
            E(3, "3", host="nobi", bo=1000),
        ],
    )
    assert [(a.key, a.measures) for a in alerts] == [
        ((("host", "ok"),), (("out", 1000), ("inb", 50), ("ratio", 20.0)))
    ]


def test_compute_reads_keys_and_earlier_values() -> None:
    node = agg(
        compute=(
            ("double", ir.BinOp("*", ir.MeasureRef("n"), ir.Literal_(2))),
            ("plus", ir.BinOp("+", ir.MeasureRef("double"), ir.Literal_(1))),
            ("who", ir.Call("upper", (ir.FieldRef("host"),))),
            ("other", ir.FieldRef("not.a.key")),
        ),
    )
    alerts = run(AggregateDetector("A", node), [E(1, "1", host="h")])
    assert alerts[0].measures == (
        ("n", 1),
        ("double", 2),
        ("plus", 3),
        ("who", "H"),
        ("other", None),
    )


def test_stdev_and_percentile_values() -> None:
    ms = (
        ir.Measure("sd", "stdev", "v"),
        ir.Measure("p50", "percentile", "v", p=50),
        ir.Measure("p95", "percentile", "v", p=95),
        ir.Measure("p0", "percentile", "v", p=0),
        ir.Measure("p12_5", "percentile", "v", p=12.5),
        ir.Measure("p100", "percentile", "v", p=100),
    )
    vals = [9, 2, 4, 4, 5, 4, 5, 7]  # sorted: 2 4 4 4 5 5 7 9
    evs = [E(i, str(i), host="h", v=v) for i, v in enumerate(vals)]
    m = measures(run(AggregateDetector("A", agg(measures=ms)), evs)[0])
    assert m["sd"] == pytest.approx(math.sqrt(32 / 7), rel=1e-15)
    # nearest rank: ceil(p/100 * 8)-th smallest
    assert (m["p50"], m["p95"], m["p0"], m["p12_5"], m["p100"]) == (4, 9, 2, 2, 9)
    # one value: stdev undefined
    one = run(AggregateDetector("A", agg(measures=ms)), [E(0, "x", host="h", v=3)])
    assert measures(one[0])["sd"] is None and measures(one[0])["p95"] == 3


def test_nearest_rank_is_exact_for_decimal_p() -> None:
    # 0.95 * 20 is 18.999999999999996 in floats; the rank must still be 19.
    assert nearest_rank_index(95, 20) == 18
    assert nearest_rank_index(99.9, 1000) == 998
    assert nearest_rank_index(10, 10) == 0
    assert nearest_rank_index(10.0001, 10) == 1


def test_distinct_follows_the_key_rule_and_multi_values_count_each_element() -> None:
    ms = (ir.Measure("d", "distinct", "u"), ir.Measure("s", "sum", "b"), count("c", "u"))
    evs = [
        E(1, "1", host="h", u="Admin", b=[1, 2]),
        E(2, "2", host="h", u="admin", b="3"),
        E(3, "3", host="h", u=["admin", "root", None], b=None),
        E(4, "4", host="h", u=443),
        E(5, "5", host="h", u="443"),
        E(6, "6", host="h", u=True),
        E(7, "7", host="h", u=1),
    ]
    m = measures(run(AggregateDetector("A", agg(measures=ms)), evs)[0])
    # Admin, admin, root, 443 (= "443": the one key rule), True, 1
    assert m == {"d": 6, "s": 6, "c": 7}


def test_multi_valued_key_counts_event_in_each_group() -> None:
    det = AggregateDetector("A", agg(keys=("host", "ip")))
    alerts = run(
        det,
        [
            E(1, "1", host="h", ip=["1.1.1.1", "2.2.2.2", "1.1.1.1"]),
            E(2, "2", host="h", ip="2.2.2.2"),
        ],
    )
    got = {a.key: a.evidence for a in alerts}
    assert got == {
        (("host", "h"), ("ip", "1.1.1.1")): ("1",),
        (("host", "h"), ("ip", "2.2.2.2")): ("1", "2"),
    }


def test_group_keys_are_case_sensitive_text_numbers_are_their_decimal_text() -> None:
    def gk(**fields: Any) -> tuple[tuple[object, ...], ...]:
        return key_tuples(E(0, "x", **fields), ("h", "p"))

    assert gk(h="A", p=1) != gk(h="a", p=1)
    assert gk(h="a", p="443") == gk(h="a", p=443) == gk(h="a", p=443.0)
    assert gk(h="a", p="7") != gk(h="a", p="7.0")
    assert gk(h="a", p=True) != gk(h="a", p=1)
    assert gk(h=["a", "b"], p=[1, "2"]) == (("a", "1"), ("a", "2"), ("b", "1"), ("b", "2"))
    assert gk(h="a", p=None) == ()
    assert gk(h="a", p=[]) == ()


def test_groups_by_the_key_rule_and_reports_the_first_events_value() -> None:
    det = AggregateDetector("A", agg(keys=("host", "port")))
    evs = [
        E(1, "1", host="WS01", port="443"),
        E(2, "2", host="ws01", port=443),  # another host: case-sensitive
        E(3, "3", host="WS01", port=443.0),  # same group as "443"
        E(4, "4", host="WS01", port=[443, "80"]),  # in the 443 and the 80 group
    ]
    got = {a.key: a.evidence for a in run(det, evs)}
    assert got == {
        (("host", "WS01"), ("port", "443")): ("1", "3", "4"),  # first event's original value
        (("host", "ws01"), ("port", 443)): ("2",),
        (("host", "WS01"), ("port", "80")): ("4",),
    }


def test_compute_reads_the_groups_original_key_value() -> None:
    det = AggregateDetector(
        "A",
        agg(
            keys=("port",),
            compute=(("p", ir.FieldRef("port")),),
            having=ir.BinOp("==", ir.FieldRef("port"), ir.Literal_("443")),
        ),
    )
    [alert] = run(det, [E(1, "1", port="443"), E(2, "2", port=443), E(3, "3", port=80)])
    assert alert.key == (("port", "443"),)
    assert measures(alert) == {"n": 2, "p": "443"}


def test_tumbling_state_is_bounded() -> None:
    node = agg(
        size=M,
        measures=(count(), ir.Measure("s", "sum", "b"), ir.Measure("p", "percentile", "b", p=90)),
        having=ge("n", 10**9),
    )
    det = AggregateDetector("A", node)
    peak = 0
    for i in range(200_000):
        e = E(i * 100, str(i), host=f"h{i % 50}", b=i)  # 600 events per 1-minute window
        list(det.push("s", e))
        if i % 1000 == 0:
            peak = max(peak, det.state_size())
    assert peak <= 2 * (600 + 50)  # at most one window of events plus cells
    assert list(det.finish(None)) == []
    assert det.state_size() == 0


# --------------------------------------------------------------------------- sliding
def test_sliding_window_is_inclusive() -> None:
    node = agg(kind="sliding", size=5 * M, having=ge("n", 3))
    alerts = run(
        AggregateDetector("A", node),
        [E(0, "a", host="h"), E(150_000, "b", host="h"), E(300_000, "c", host="h")],
    )
    assert [(a.start, a.end, a.evidence) for a in alerts] == [(0, 300_000, ("a", "b", "c"))]
    node = agg(kind="sliding", size=5 * M, having=ge("n", 3))
    late = [E(0, "a", host="h"), E(150_000, "b", host="h"), E(300_001, "c", host="h")]
    assert run(AggregateDetector("A", node), late) == []


def test_sliding_consumes_events_so_windows_do_not_realert() -> None:
    node = agg(kind="sliding", size=5 * M, having=ge("n", 2))
    evs = [E(t, str(t), host="h") for t in (0, 1000, 2000, 3000, 4000)]
    alerts = run(AggregateDetector("A", node), evs)
    assert [a.evidence for a in alerts] == [("0", "1000"), ("2000", "3000")]
    assert [(a.start, a.end) for a in alerts] == [(0, 1000), (2000, 3000)]


def test_sliding_groups_are_independent_and_measures_remove_exactly() -> None:
    node = agg(
        kind="sliding",
        size=10,
        measures=(
            count(),
            ir.Measure("s", "sum", "b"),
            ir.Measure("hi", "max", "b"),
            ir.Measure("d", "distinct", "u"),
        ),
        having=ge("s", 0.6),
    )
    evs = [
        E(0, "a", host="h", b=0.1, u="x"),
        E(5, "other", host="g", b=100, u="x"),
        E(11, "b", host="h", b=0.2, u="y"),  # event a (ts 0) left the window [1, 11]
        E(12, "c", host="h", b=0.4, u="y"),
    ]
    alerts = run(AggregateDetector("A", node), evs)
    assert [(a.key, a.evidence) for a in alerts] == [
        ((("host", "g"),), ("other",)),
        ((("host", "h"),), ("b", "c")),
    ]
    # exact: 0.2 + 0.4 (after removing 0.1) is the correctly rounded 0.6000000000000001
    assert measures(alerts[1]) == {"n": 2, "s": 0.2 + 0.4, "hi": 0.4, "d": 1}


def test_sliding_state_is_bounded() -> None:
    node = agg(kind="sliding", size=M, having=ge("n", 10**9))
    det = AggregateDetector("A", node)
    for i in range(50_000):
        list(det.push("s", E(i * 100, str(i), host=f"h{i}")))  # every group is new
    assert det.state_size() <= 2 * 2 * 600


def test_threshold_origin_behaves_the_same() -> None:
    node = ir.Aggregate(
        stream="s",
        window=ir.Window("sliding", 5 * M),
        keys=("host",),
        measures=(ir.Measure("distinct_ip", "distinct", "ip"),),
        compute=(),
        having=ge("distinct_ip", 2),
        origin="value_count",
    )
    evs = [E(0, "a", host="h", ip="1"), E(1, "b", host="h", ip="1"), E(2, "c", host="h", ip="2")]
    alerts = run(AggregateDetector("A", node), evs)
    assert [(a.evidence, a.measures) for a in alerts] == [(("a", "b", "c"), (("distinct_ip", 2),))]


# --------------------------------------------------------------------------- deviation
def dev(
    k: float | None = 3, pct: float | None = None, min_history: int = 3, lookback: int = 7 * H
) -> ir.Deviation:
    return ir.Deviation("total", lookback, k, pct, min_history)


def hourly(
    values: list[int | None], deviation: tuple[ir.Deviation, ...], host: str = "h"
) -> list[Alert]:
    node = agg(measures=(ir.Measure("total", "sum", "b"),))
    det = AggregateDetector("A", node, deviation)
    evs = [E(i * H + 1, f"e{i}", host=host, b=v) for i, v in enumerate(values) if v is not None]
    return run(det, evs)


def test_deviation_needs_min_history() -> None:
    # window 2 has only 2 past values: no alert although it is far above
    assert [a.start for a in hourly([10, 11, 1000], (dev(),))] == []
    alerts = hourly([10, 12, 11, 100], (dev(),))
    assert [a.start for a in alerts] == [3 * H]
    assert sample_stdev([10, 12, 11]) == 1.0
    # 11 + 3 * 1 = 14: exactly at the bound is not above it
    assert hourly([10, 12, 11, 14], (dev(),)) == []
    assert len(hourly([10, 12, 11, 15], (dev(),))) == 1


def test_deviation_history_only_counts_windows_with_events_within_lookback() -> None:
    # windows 1 and 2 are empty: history for window 5 is [10, 12, 11] (windows 0, 3, 4)
    assert len(hourly([10, None, None, 12, 11, 100], (dev(lookback=5 * H),))) == 1
    # lookback 4h from window 5 starts at 1h: window 0 (start 0) is out -> 2 values only
    assert hourly([10, None, None, 12, 11, 100], (dev(lookback=4 * H),)) == []
    # a window starting exactly at start - lookback is in
    assert len(hourly([10, None, None, 12, 11, 100], (dev(lookback=5 * H),))) == 1


def test_deviation_percentile_and_all_conditions_must_hold() -> None:
    hist = [40, 30, 20, 10]  # decreasing: only the last window can be above all
    assert len(hourly([*hist, 41], (dev(k=None, pct=100),))) == 1
    assert hourly([*hist, 40], (dev(k=None, pct=100),)) == []
    # percentile holds (41 > 40), k=3 does not (mean 25 + 3 * 12.9 > 41)
    assert hourly([*hist, 41], (dev(k=None, pct=100), dev(k=3))) == []


def test_deviation_only_for_tumbling() -> None:
    with pytest.raises(ValueError):
        AggregateDetector("A", agg(kind="sliding"), (dev(),))


def test_deviation_history_is_bounded() -> None:
    node = agg(size=M, measures=(ir.Measure("total", "sum", "b"),))
    det = AggregateDetector("A", node, (dev(lookback=10 * M),))
    for i in range(20_000):
        list(det.push("s", E(i * 1000, str(i), host=f"h{i // 600}", b=i % 7)))  # 10-min hosts
    assert det.state_size() < 100


# --------------------------------------------------------------------------- accumulators
def test_accumulators_remove_to_initial_state() -> None:
    for kind in ("count", "distinct", "sum", "avg", "min", "max", "stdev", "percentile"):
        m = ir.Measure("m", kind, "f", p=50 if kind == "percentile" else None)
        acc = make_accumulator(m, removable=True)
        empty = acc.result()
        vals: list[Any] = [1, 2.5, "3", [4, 5], None, "x", 1e300, -7]
        for v in vals:
            acc.add(v)
        for v in vals:
            acc.remove(v)
        assert acc.result() == empty, kind
