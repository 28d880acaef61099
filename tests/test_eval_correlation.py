"""Semantics of the correlation detectors (docs/semantics.md, *Correlations*): one test per rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from compiler import ir
from compiler.evaluator.correlation import (
    AbsenceDetector,
    CooccurrenceDetector,
    SequenceDetector,
)
from compiler.evaluator.keys import key_tuples, key_values, normalise, raw_key
from compiler.evaluator.model import Alert, Event

HOST = ("host.name",)


def ev(ts: int, seq: int, **fields: Any) -> Event:
    """An event; ``host_name=`` stands for ``host.name`` (``_`` -> ``.`` in names without a dot)."""
    names = {k: k if "." in k else k.replace("_", ".") for k in fields}
    return Event(ts, seq, f"e{seq}", {names[k]: v for k, v in fields.items()})


def step(alias: str, stream: str, keys: tuple[str, ...] = HOST) -> ir.Step:
    return ir.Step(alias, stream, keys)


Det = SequenceDetector | CooccurrenceDetector | AbsenceDetector


def run(
    det: Det,
    pushes: Iterable[tuple[str, Event]],
    *,
    now: int | None = None,
    finish: bool = True,
) -> list[Alert]:
    out: list[Alert] = []
    for stream, event in pushes:
        out.extend(det.push(stream, event))
    if finish:
        out.extend(det.finish(now))
    return out


def evidence(alerts: list[Alert]) -> list[tuple[str, ...]]:
    return [a.evidence for a in alerts]


def seq_det(*steps: ir.Step, maxspan: int = 100, until: ir.Step | None = None) -> SequenceDetector:
    return SequenceDetector("AN1", ir.Sequence(steps, maxspan, until))


AB = (step("a", "A"), step("b", "B"))


# =========================================================================== keys
class TestKeys:
    def test_strings_exact_numbers_as_decimal_text(self) -> None:
        assert normalise("HoSt") == "HoSt" != normalise("host")
        assert normalise("443") == "443" == normalise(443) == normalise(443.0)
        assert normalise(1.5) == "1.5" != normalise(" 1.5 ")
        assert normalise("+7") != normalise(7) != normalise("7.0")
        assert normalise(float("nan")) is None
        assert normalise("0x10") == "0x10"
        assert normalise("inf") == "inf"
        assert normalise("10.0.0.1") == "10.0.0.1"
        assert normalise("") == ""
        assert normalise("Ärger") == "Ärger"

    def test_bool_is_not_a_number_nor_a_string(self) -> None:
        assert normalise(True) != normalise(1)
        assert normalise(False) != normalise(0)
        assert normalise(True) != normalise("true")
        assert normalise(True) == normalise(True) != normalise(False)

    def test_missing_values(self) -> None:
        assert normalise(None) is None
        assert normalise(float("nan")) is None
        assert normalise({"a": 1}) is None
        e = ev(0, 0, a=None, b=[], c=[None], d="x")
        for name in ("a", "b", "c", "zz"):
            assert key_values(e, (name,)) is None
            assert key_tuples(e, (name, "d")) == ()
        assert key_tuples(e, ()) == ((),)

    def test_multi_valued_expands(self) -> None:
        e = ev(0, 0, a=["X", "x", 1, "1", None], b="B")
        assert key_values(e, ("a", "b")) == (("X", "x", "1"), ("B",))
        assert key_tuples(e, ("a", "b")) == (("X", "B"), ("x", "B"), ("1", "B"))
        # raw_key reports the original element that matched
        assert raw_key(e, ("a", "b"), ("1", "B")) == (("a", 1), ("b", "B"))
        assert raw_key(e, ("a", "b"), ("x", "B")) == (("a", "x"), ("b", "B"))
        e = ev(0, 0, a=["443", 443.0], b="B")
        assert key_tuples(e, ("a", "b")) == (("443", "B"),)
        assert raw_key(e, ("a", "b"), ("443", "B")) == (("a", "443"), ("b", "B"))


# =========================================================================== sequence
class TestSequence:
    def test_basic_alert(self) -> None:
        a1 = ev(1000, 1, host_name="H1", process_name="cmd.exe")
        b1 = ev(1050, 2, host_name="H1", destination_ip="1.2.3.4")
        alerts = run(seq_det(*AB), [("A", a1), ("B", b1)])
        assert len(alerts) == 1
        al = alerts[0]
        assert al.analytic == "AN1"
        assert al.key == (("host.name", "H1"),)  # first step's original value
        assert (al.start, al.end, al.evidence, al.measures) == (1000, 1050, ("e1", "e2"), ())
        rec = dict(al.record)
        assert rec["host.name"] == "H1"
        assert rec["a.process.name"] == "cmd.exe"
        assert rec["b.host.name"] == "H1"
        assert rec["b.destination.ip"] == "1.2.3.4"
        assert al.field("a.host.name") == "H1"

    def test_alert_returned_by_next_call(self) -> None:
        det = seq_det(*AB)
        assert list(det.push("A", ev(0, 1, host_name="h"))) == []
        assert list(det.push("B", ev(1, 2, host_name="h"))) == []  # buffered
        assert len(list(det.advance(0))) == 0  # event at ts 1 may still be pushed again
        assert len(list(det.advance(2))) == 1

    def test_alert_returned_by_next_push(self) -> None:
        det = seq_det(*AB)
        det.push("A", ev(0, 1, host_name="h"))
        det.push("B", ev(1, 2, host_name="h"))
        assert len(list(det.push("A", ev(1, 3, host_name="x")))) == 1

    def test_maxspan_inclusive(self) -> None:
        ok = run(seq_det(*AB), [("A", ev(0, 1, host_name="h")), ("B", ev(100, 2, host_name="h"))])
        assert evidence(ok) == [("e1", "e2")]
        late = run(seq_det(*AB), [("A", ev(0, 1, host_name="h")), ("B", ev(101, 2, host_name="h"))])
        assert late == []

    def test_maxspan_from_first_step(self) -> None:
        steps = (step("a", "A"), step("b", "B"), step("c", "C"))
        pushes = [
            ("A", ev(0, 1, host_name="h")),
            ("B", ev(60, 2, host_name="h")),
            ("C", ev(101, 3, host_name="h")),
        ]
        assert run(seq_det(*steps), pushes) == []
        pushes[2] = ("C", ev(100, 3, host_name="h"))
        assert evidence(run(seq_det(*steps), pushes)) == [("e1", "e2", "e3")]

    def test_equal_timestamps_follow_input_order(self) -> None:
        fwd = run(seq_det(*AB), [("A", ev(5, 1, host_name="h")), ("B", ev(5, 2, host_name="h"))])
        assert evidence(fwd) == [("e1", "e2")]
        rev = run(seq_det(*AB), [("B", ev(5, 1, host_name="h")), ("A", ev(5, 2, host_name="h"))])
        assert rev == []

    def test_order_required(self) -> None:
        pushes = [("B", ev(0, 1, host_name="h")), ("A", ev(10, 2, host_name="h"))]
        assert run(seq_det(*AB), pushes) == []

    def test_keys_must_match(self) -> None:
        pushes = [("A", ev(0, 1, host_name="h1")), ("B", ev(10, 2, host_name="h2"))]
        assert run(seq_det(*AB), pushes) == []

    def test_event_fills_one_step_same_stream(self) -> None:
        steps = (step("x", "A"), step("y", "A"))
        pushes = [("A", ev(i, i, host_name="h")) for i in range(1, 6)]
        # e2 completes (e1, e2) and does not also start a new sequence; e5 stays pending.
        assert evidence(run(seq_det(*steps), pushes)) == [("e1", "e2"), ("e3", "e4")]

    def test_extend_preferred_over_start_latest_step_first(self) -> None:
        steps = (step("a", "A"), step("b", "B"), step("c", "B"))
        pushes = [
            ("A", ev(1, 1, host_name="h")),
            ("B", ev(2, 2, host_name="h")),  # (e1, e2) waits for step c
            ("A", ev(3, 3, host_name="h")),  # (e3) waits for step b
            ("B", ev(4, 4, host_name="h")),  # completes (e1, e2, e4), not (e3, e4)
            ("B", ev(5, 5, host_name="h")),  # extends (e3) -> (e3, e5)
            ("B", ev(6, 6, host_name="h")),  # completes (e3, e5, e6)
        ]
        assert evidence(run(seq_det(*steps), pushes)) == [("e1", "e2", "e4"), ("e3", "e5", "e6")]

    def test_newer_partial_replaces_older_at_same_step(self) -> None:
        pushes = [
            ("A", ev(1, 1, host_name="h")),
            ("A", ev(2, 2, host_name="h")),
            ("B", ev(3, 3, host_name="h")),
            ("B", ev(4, 4, host_name="h")),
        ]
        assert evidence(run(seq_det(*AB), pushes)) == [("e2", "e3")]

    def test_replacement_at_later_step(self) -> None:
        steps = (step("a", "A"), step("b", "B"), step("c", "C"))
        pushes = [
            ("A", ev(1, 1, host_name="h")),
            ("B", ev(2, 2, host_name="h")),  # (e1, e2) waits for c
            ("A", ev(3, 3, host_name="h")),
            ("B", ev(4, 4, host_name="h")),  # (e3, e4) replaces (e1, e2)
            ("C", ev(5, 5, host_name="h")),
        ]
        assert evidence(run(seq_det(*steps), pushes)) == [("e3", "e4", "e5")]

    def test_partials_per_key_are_independent(self) -> None:
        pushes = [
            ("A", ev(1, 1, host_name="h1")),
            ("A", ev(2, 2, host_name="h2")),
            ("B", ev(3, 3, host_name="H2")),  # another key (case-sensitive): extends nothing
            ("B", ev(4, 4, host_name="h2")),
            ("B", ev(5, 5, host_name="h1")),
        ]
        alerts = run(seq_det(*AB), pushes)
        assert evidence(alerts) == [("e2", "e4"), ("e1", "e5")]

    def test_until_cancels_pending_for_its_key(self) -> None:
        until = step("end", "END")
        pushes = [
            ("A", ev(1, 1, host_name="h")),
            ("A", ev(1, 2, host_name="other")),
            ("END", ev(2, 3, host_name="h")),
            ("B", ev(3, 4, host_name="h")),
            ("B", ev(3, 5, host_name="other")),
        ]
        assert evidence(run(seq_det(*AB, until=until), pushes)) == [("e2", "e5")]
        pushes[2] = ("END", ev(2, 3, host_name="H"))  # another key: cancels nothing
        assert evidence(run(seq_det(*AB, until=until), pushes)) == [("e1", "e4"), ("e2", "e5")]

    def test_until_cancels_later_stages_and_allows_restart(self) -> None:
        steps = (step("a", "A"), step("b", "B"), step("c", "C"))
        pushes = [
            ("A", ev(1, 1, host_name="h")),
            ("B", ev(2, 2, host_name="h")),
            ("END", ev(3, 3, host_name="h")),
            ("C", ev(4, 4, host_name="h")),  # nothing waits for c any more
            ("A", ev(5, 5, host_name="h")),
            ("B", ev(6, 6, host_name="h")),
            ("C", ev(7, 7, host_name="h")),
        ]
        det = seq_det(*steps, until=step("end", "END"))
        assert evidence(run(det, pushes)) == [("e5", "e6", "e7")]

    def test_until_before_first_in_input_order_has_no_effect(self) -> None:
        pushes = [
            ("END", ev(1, 1, host_name="h")),
            ("A", ev(1, 2, host_name="h")),
            ("B", ev(2, 3, host_name="h")),
        ]
        det = seq_det(*AB, until=step("end", "END"))
        assert evidence(run(det, pushes)) == [("e2", "e3")]

    def test_until_event_in_a_step_stream_cancels_then_starts(self) -> None:
        # The until role is applied first: the event cancels the old partial, then starts one.
        det = seq_det(*AB, until=step("end", "A"))
        pushes = [
            ("A", ev(1, 1, host_name="h")),
            ("A", ev(2, 2, host_name="h")),
            ("B", ev(3, 3, host_name="h")),
        ]
        assert evidence(run(det, pushes)) == [("e2", "e3")]

    def test_until_on_multi_valued_partial_drops_only_its_tuple(self) -> None:
        keys = ("ip",)
        det = seq_det(step("a", "A", keys), step("b", "B", keys), until=step("end", "END", keys))
        pushes = [
            ("A", ev(0, 1, ip=["1", "2"])),
            ("END", ev(1, 2, ip="1")),
            ("B", ev(2, 3, ip="1")),  # cancelled for 1
            ("B", ev(3, 4, ip="2")),  # still pending for 2
        ]
        assert evidence(run(det, pushes)) == [("e1", "e4")]

    def test_multi_valued_key_joins_any_value(self) -> None:
        steps = (
            step("dns", "DNS", ("host.name", "dns.resolved_ip")),
            step("conn", "CONN", ("host.name", "destination.ip")),
        )
        dns = ev(0, 1, host_name="h", **{"dns.resolved_ip": ["1.1.1.1", "2.2.2.2"]})
        conn = ev(10, 2, host_name="h", destination_ip="2.2.2.2")
        again = ev(20, 3, host_name="h", destination_ip="1.1.1.1")
        alerts = run(seq_det(*steps), [("DNS", dns), ("CONN", conn), ("CONN", again)])
        # One alert: the DNS event is consumed, also for its other value.
        assert len(alerts) == 1
        assert alerts[0].key == (("host.name", "h"), ("dns.resolved_ip", "2.2.2.2"))
        assert alerts[0].evidence == ("e1", "e2")

    def test_multi_valued_binds_instance_to_common_value(self) -> None:
        keys = ("host.name", "ip")
        steps = (step("a", "A", keys), step("b", "B", keys), step("c", "C", keys))
        pushes = [
            ("A", ev(0, 1, host_name="h", ip=["1", "2", "3"])),
            ("B", ev(1, 2, host_name="h", ip=["2", "3"])),
            ("C", ev(2, 3, host_name="h", ip="1")),  # 1 is not shared by step b: no match
            ("C", ev(3, 4, host_name="h", ip="3")),
        ]
        alerts = run(seq_det(*steps), pushes)
        assert evidence(alerts) == [("e1", "e2", "e4")]
        assert alerts[0].key == (("host.name", "h"), ("ip", "3"))

    def test_keys_are_case_sensitive(self) -> None:
        pushes = [("A", ev(0, 1, host_name="WS01.Corp")), ("B", ev(1, 2, host_name="ws01.corp"))]
        assert run(seq_det(*AB), pushes) == []
        pushes[1] = ("B", ev(1, 2, host_name="WS01.Corp"))
        alerts = run(seq_det(*AB), pushes)
        assert [a.key for a in alerts] == [(("host.name", "WS01.Corp"),)]

    def test_numeric_string_keys(self) -> None:
        keys = ("process.pid",)
        steps = (step("a", "A", keys), step("b", "B", keys))
        pushes = [("A", ev(0, 1, process_pid="443")), ("B", ev(1, 2, process_pid=443))]
        alerts = run(seq_det(*steps), pushes)
        assert [a.key for a in alerts] == [(("process.pid", "443"),)]

    def test_missing_or_null_key_cannot_take_part(self) -> None:
        bads: list[dict[str, Any]] = [{}, {"host_name": None}, {"host_name": []}]
        for bad in bads:
            pushes = [("A", ev(0, 1, **bad)), ("B", ev(1, 2, host_name="h"))]
            assert run(seq_det(*AB), pushes) == []
            pushes = [("A", ev(0, 1, host_name="h")), ("B", ev(1, 2, **bad))]
            assert run(seq_det(*AB), pushes) == []

    def test_per_step_key_fields(self) -> None:
        steps = (step("a", "A", ("host.name", "process.entity_id")), step("b", "B", ("h", "p")))
        pushes = [
            ("A", ev(0, 1, host_name="h", **{"process.entity_id": "P1"})),
            ("B", ev(1, 2, h="h", p="P1")),
        ]
        alerts = run(seq_det(*steps), pushes)
        assert [a.key for a in alerts] == [(("host.name", "h"), ("process.entity_id", "P1"))]

    def test_key_widths_must_agree(self) -> None:
        with pytest.raises(ValueError):
            seq_det(step("a", "A", ("x",)), step("b", "B", ("x", "y")))

    def test_single_step(self) -> None:
        pushes = [("A", ev(0, 1, host_name="h")), ("A", ev(0, 2))]
        assert evidence(run(seq_det(step("a", "A")), pushes)) == [("e1",)]

    def test_event_pushed_under_two_streams_fills_one_step(self) -> None:
        x = ev(10, 2, host_name="h")
        # Alone, x cannot be both steps.
        assert run(seq_det(*AB), [("A", x), ("B", x)]) == []
        assert run(seq_det(*AB), [("B", x), ("A", x)]) == []
        # With an earlier a, x extends it (extension wins over start) whatever the push order.
        a1 = ev(0, 1, host_name="h")
        for order in ([("A", x), ("B", x)], [("B", x), ("A", x)]):
            assert evidence(run(seq_det(*AB), [("A", a1), *order])) == [("e1", "e2")]

    def test_finish_drops_partials(self) -> None:
        det = seq_det(*AB)
        assert run(det, [("A", ev(0, 1, host_name="h"))], now=10**9) == []
        assert det.state_size() == 0

    def test_expiry_boundary_and_state_size(self) -> None:
        det = seq_det(*AB, maxspan=100)
        det.push("A", ev(0, 1, host_name="h"))
        det.advance(1)
        assert det.state_size() == 2  # one partial: FIFO entry + index entry
        det.advance(100)  # watermark - first == maxspan: b at ts 100 could still come
        assert det.state_size() == 2
        det.advance(101)
        assert det.state_size() == 0
        assert list(det.push("B", ev(101, 2, host_name="h"))) == []
        assert list(det.finish(None)) == []

    def test_push_expires_implicitly(self) -> None:
        det = seq_det(*AB, maxspan=100)
        det.push("A", ev(0, 1, host_name="h"))
        det.push("A", ev(500, 2, host_name="other"))
        assert det.state_size() == 0  # e2 is still buffered, e1's partial expired

    def test_alerts_sorted_within_a_call(self) -> None:
        det = seq_det(*AB, maxspan=1000)
        det.push("A", ev(0, 1, host_name="h1"))
        det.push("A", ev(0, 2, host_name="h2"))
        out: list[Alert] = []
        out += det.push("B", ev(5, 3, host_name="h2"))
        out += det.push("B", ev(5, 4, host_name="h1"))
        out += det.finish(None)
        assert evidence(out) == [("e2", "e3"), ("e1", "e4")]


# =========================================================================== co-occurrence
def co_det(*members: ir.Step, window: int = 100) -> CooccurrenceDetector:
    return CooccurrenceDetector("AN2", ir.Cooccurrence(members, window))


ABC = (step("a", "A"), step("b", "B"), step("c", "C"))


class TestCooccurrence:
    def test_any_order_fires_at_completing_event(self) -> None:
        det = co_det(*ABC)
        c1 = ev(0, 1, host_name=7, x=3)
        a1 = ev(10, 2, host_name="7", x=1)
        b1 = ev(20, 3, host_name=7.0, x=2)
        assert list(det.push("C", c1)) == []
        assert list(det.push("A", a1)) == []
        assert list(det.push("B", b1)) == []
        alerts = list(det.finish(None))
        assert len(alerts) == 1
        al = alerts[0]
        assert al.evidence == ("e1", "e2", "e3")  # time order
        assert (al.start, al.end) == (0, 20)
        assert al.key == (("host.name", "7"),)  # from the first member's event
        rec = dict(al.record)
        assert (rec["a.x"], rec["b.x"], rec["c.x"]) == (1, 2, 3)

    def test_window_inclusive(self) -> None:
        pushes = [("A", ev(0, 1, host_name="h")), ("B", ev(50, 2, host_name="h"))]
        ok = run(co_det(*ABC), [*pushes, ("C", ev(100, 3, host_name="h"))])
        assert evidence(ok) == [("e1", "e2", "e3")]
        late = run(co_det(*ABC), [*pushes, ("C", ev(101, 3, host_name="h"))])
        assert late == []

    def test_latest_event_per_member(self) -> None:
        pushes = [
            ("A", ev(0, 1, host_name="h")),
            ("A", ev(50, 2, host_name="h")),
            ("B", ev(60, 3, host_name="h")),
        ]
        assert evidence(run(co_det(*AB, window=1000), pushes)) == [("e2", "e3")]
        # a stale member event does not count, a fresh one does
        pushes = [
            ("A", ev(0, 1, host_name="h")),
            ("B", ev(150, 2, host_name="h")),
            ("A", ev(160, 3, host_name="h")),
        ]
        assert evidence(run(co_det(*AB), pushes)) == [("e2", "e3")]

    def test_events_consumed(self) -> None:
        pushes = [
            ("A", ev(0, 1, host_name="h")),
            ("B", ev(1, 2, host_name="h")),
            ("B", ev(2, 3, host_name="h")),  # a's event was consumed: no alert
            ("A", ev(3, 4, host_name="h")),  # new set with b at 2
        ]
        assert evidence(run(co_det(*AB), pushes)) == [("e1", "e2"), ("e3", "e4")]

    def test_keys_must_match(self) -> None:
        pushes = [("A", ev(0, 1, host_name="h1")), ("B", ev(1, 2, host_name="h2"))]
        assert run(co_det(*AB), pushes) == []

    def test_same_stream_twice_needs_distinct_events(self) -> None:
        members = (step("a1", "A"), step("a2", "A"), step("b", "B"))
        pushes = [("A", ev(0, 1, host_name="h")), ("B", ev(1, 2, host_name="h"))]
        assert run(co_det(*members), pushes) == []
        pushes.append(("A", ev(2, 3, host_name="h")))
        assert evidence(run(co_det(*members), pushes)) == [("e1", "e2", "e3")]

    def test_same_stream_twice_keeps_latest_distinct(self) -> None:
        members = (step("a1", "A"), step("a2", "A"), step("b", "B"))
        pushes = [
            ("A", ev(0, 1, host_name="h")),
            ("A", ev(1, 2, host_name="h")),
            ("A", ev(2, 3, host_name="h")),  # replaces the oldest (e1)
            ("B", ev(3, 4, host_name="h")),
        ]
        alerts = run(co_det(*members), pushes)
        assert evidence(alerts) == [("e2", "e3", "e4")]
        rec = dict(alerts[0].record)
        assert {"a1.host.name", "a2.host.name", "b.host.name"} <= rec.keys()

    def test_event_pushed_under_two_member_streams_fills_one_slot(self) -> None:
        x = ev(0, 1, host_name="h")
        assert run(co_det(*AB), [("A", x), ("B", x)]) == []
        y = ev(1, 2, host_name="h")
        assert evidence(run(co_det(*AB), [("A", x), ("B", x), ("A", y)])) == [("e1", "e2")]

    def test_multi_valued_key_and_consumption(self) -> None:
        members = (
            step("dns", "DNS", ("host.name", "dns.resolved_ip")),
            step("conn", "CONN", ("host.name", "destination.ip")),
        )
        pushes = [
            ("DNS", ev(0, 1, host_name="h", **{"dns.resolved_ip": ["1.1.1.1", "2.2.2.2"]})),
            ("CONN", ev(1, 2, host_name="h", destination_ip="2.2.2.2")),
            ("CONN", ev(2, 3, host_name="h", destination_ip="1.1.1.1")),  # DNS event consumed
        ]
        alerts = run(co_det(*members), pushes)
        assert evidence(alerts) == [("e1", "e2")]
        assert alerts[0].key == (("host.name", "h"), ("dns.resolved_ip", "2.2.2.2"))

    def test_numeric_and_case_sensitive_keys(self) -> None:
        keys = ("host.name", "port")
        members = (step("a", "A", keys), step("b", "B", keys))
        pushes = [
            ("A", ev(0, 1, host_name="HOST", port="443")),
            ("B", ev(1, 2, host_name="host", port=443)),
        ]
        assert run(co_det(*members), pushes) == []
        pushes[1] = ("B", ev(1, 2, host_name="HOST", port=443))
        assert evidence(run(co_det(*members), pushes)) == [("e1", "e2")]

    def test_missing_key(self) -> None:
        pushes = [("A", ev(0, 1)), ("B", ev(1, 2, host_name="h"))]
        assert run(co_det(*AB), pushes) == []

    def test_expiry_and_state_size(self) -> None:
        det = co_det(*AB, window=100)
        det.push("A", ev(0, 1, host_name="h"))
        det.advance(1)
        assert det.state_size() == 2  # one held event + its FIFO entry
        det.advance(100)
        assert det.state_size() == 2
        det.advance(101)
        assert det.state_size() == 0
        assert list(det.push("B", ev(101, 2, host_name="h"))) == []
        assert list(det.finish(None)) == []
        assert det.state_size() == 0


# =========================================================================== absence
def ab_det(within: int = 100, first: str = "F", missing: str = "M") -> AbsenceDetector:
    return AbsenceDetector("AN3", ir.Absence(step("f", first), step("m", missing), within))


class TestAbsence:
    def test_alert_final_only_after_window(self) -> None:
        det = ab_det()
        assert list(det.push("F", ev(1000, 1, host_name="H", x=1))) == []
        assert list(det.advance(1100)) == []  # a missing event at 1100 may still come
        alerts = list(det.advance(1101))
        assert len(alerts) == 1
        al = alerts[0]
        assert (al.start, al.end, al.evidence, al.measures) == (1000, 1000, ("e1",), ())
        assert al.key == (("host.name", "H"),)
        assert dict(al.record)["f.x"] == 1

    def test_missing_at_window_end_suppresses(self) -> None:
        f = ("F", ev(0, 1, host_name="h"))
        assert run(ab_det(), [f, ("M", ev(100, 2, host_name="h"))], now=10**6) == []
        other = run(ab_det(), [f, ("M", ev(100, 2, host_name="H"))], now=10**6)
        assert evidence(other) == [("e1",)]  # keys are case-sensitive
        late = run(ab_det(), [f, ("M", ev(101, 2, host_name="h"))], now=10**6)
        assert evidence(late) == [("e1",)]

    def test_later_event_decides_on_push(self) -> None:
        det = ab_det()
        det.push("F", ev(0, 1, host_name="h"))
        assert len(list(det.push("M", ev(101, 2, host_name="other")))) == 1

    def test_missing_event_must_be_strictly_later(self) -> None:
        # At the first event's own millisecond a missing event never suppresses, in either
        # input order; 1 ms later and exactly at t + within it does, 1 ms after that it does not.
        def alerts(ts: int, missing_first: bool = False) -> list[tuple[str, ...]]:
            f, m = ("F", ev(5, 1, host_name="h")), ("M", ev(ts, 2, host_name="h"))
            pushes = [m, f] if missing_first else [f, m]
            return evidence(run(ab_det(), pushes, now=10**6))

        assert alerts(5) == [("e1",)]
        assert alerts(5, missing_first=True) == [("e1",)]
        assert alerts(6) == []
        assert alerts(105) == []
        assert alerts(106) == [("e1",)]

    def test_tie_keeps_the_instance_open_for_a_later_missing_event(self) -> None:
        pushes = [
            ("F", ev(0, 1, host_name="h")),
            ("F", ev(5, 2, host_name="h")),
            ("M", ev(5, 3, host_name="h")),  # suppresses e1 only
            ("M", ev(7, 4, host_name="h")),  # suppresses e2
            ("F", ev(7, 5, host_name="h")),
        ]
        assert evidence(run(ab_det(), pushes, now=10**6)) == [("e5",)]

    def test_other_key_does_not_suppress(self) -> None:
        pushes = [("F", ev(0, 1, host_name="h1")), ("M", ev(1, 2, host_name="h2"))]
        assert evidence(run(ab_det(), pushes, now=10**6)) == [("e1",)]

    def test_numeric_string_key_suppresses(self) -> None:
        det = AbsenceDetector(
            "AN3", ir.Absence(step("f", "F", ("pid",)), step("m", "M", ("pid",)), 100)
        )
        assert run(det, [("F", ev(0, 1, pid="42")), ("M", ev(1, 2, pid=42.0))], now=10**6) == []

    def test_finish_with_and_without_now(self) -> None:
        f = [("F", ev(0, 1, host_name="h"))]
        assert evidence(run(ab_det(), f, now=100)) == [("e1",)]  # now >= t + within
        assert run(ab_det(), f, now=99) == []  # window not fully observed: undecided
        assert run(ab_det(), f, now=None) == []
        det = ab_det()
        run(det, f, now=None)
        assert det.state_size() == 0

    def test_each_first_event_alerts(self) -> None:
        pushes = [("F", ev(0, 1, host_name="h")), ("F", ev(10, 2, host_name="h"))]
        assert evidence(run(ab_det(), pushes, now=10**6)) == [("e1",), ("e2",)]

    def test_missing_suppresses_every_open_instance_of_its_key(self) -> None:
        pushes = [
            ("F", ev(0, 1, host_name="h")),
            ("F", ev(10, 2, host_name="h")),
            ("F", ev(10, 3, host_name="x")),
            ("M", ev(50, 4, host_name="h")),
            ("F", ev(60, 5, host_name="h")),
        ]
        assert evidence(run(ab_det(), pushes, now=10**6)) == [("e3",), ("e5",)]

    def test_same_stream_for_first_and_missing(self) -> None:
        pushes = [("P", ev(0, 1, host_name="h")), ("P", ev(50, 2, host_name="h"))]
        # e2 suppresses e1 and is not suppressed by itself
        assert evidence(run(ab_det(first="P", missing="P"), pushes, now=10**6)) == [("e2",)]

    def test_event_in_both_streams_does_not_suppress_itself(self) -> None:
        x = ev(0, 1, host_name="h")
        for order in ([("F", x), ("M", x)], [("M", x), ("F", x)]):
            assert evidence(run(ab_det(), order, now=10**6)) == [("e1",)]

    def test_multi_valued_first_key(self) -> None:
        keys = ("ip",)
        det = AbsenceDetector("AN3", ir.Absence(step("f", "F", keys), step("m", "M", keys), 100))
        pushes = [("F", ev(0, 1, ip=["1.1.1.1", "2.2.2.2"])), ("M", ev(1, 2, ip="2.2.2.2"))]
        assert run(det, pushes, now=10**6) == []
        det = AbsenceDetector("AN3", ir.Absence(step("f", "F", keys), step("m", "M", keys), 100))
        alerts = run(det, [("F", ev(0, 1, ip=["1.1.1.1", "2.2.2.2"]))], now=10**6)
        assert [a.key for a in alerts] == [(("ip", "1.1.1.1"),)]  # first value

    def test_missing_key_first_event_ignored(self) -> None:
        assert run(ab_det(), [("F", ev(0, 1))], now=10**6) == []

    def test_state_shrinks_on_advance(self) -> None:
        det = ab_det()
        det.push("F", ev(0, 1, host_name="h"))
        det.push("F", ev(0, 2, host_name="x"))
        assert det.state_size() == 4  # two instances, two index entries
        det.push("M", ev(1, 3, host_name="h"))
        assert det.state_size() == 3  # suppressed instance awaits expiry in the FIFO
        det.advance(101)
        assert det.state_size() == 0


# =========================================================================== scaling
N_EVENTS = 100_000


def synthetic(n: int, keys: int) -> Iterable[tuple[str, Event]]:
    """Events 1 ms apart over ``keys`` hosts, alternating streams A, B, C."""
    streams = ("A", "B", "C")
    for i in range(n):
        yield streams[i % 3], Event(i, i, f"e{i}", {"host.name": f"h{(i * 7919) % keys}"})


@pytest.mark.parametrize(
    "make",
    [
        lambda: seq_det(*ABC, maxspan=500),
        lambda: co_det(*ABC, window=500),
        lambda: AbsenceDetector("AN3", ir.Absence(step("f", "A"), step("m", "B"), 500)),
    ],
    ids=["sequence", "cooccurrence", "absence"],
)
def test_state_bounded_over_many_events(make: Any) -> None:
    det: Det = make()
    peak = 0
    for stream, event in synthetic(N_EVENTS, keys=5000):
        det.push(stream, event)
        if event.seq % 100 == 0:
            det.advance(event.ts)
            peak = max(peak, det.state_size())
    # State holds at most the events of one window (500 events here), a few entries each,
    # whatever the number of events or keys.
    assert peak <= 4 * 600
    det.finish(None)
    assert det.state_size() == 0
