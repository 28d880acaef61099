"""Streams (logsource, join, enrich, derive) and the driver of the reference evaluator."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import ir
from compiler.evaluator import Alert, Event, evaluate, make_events
from compiler.evaluator.engine import Evaluation, merge_events
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import StreamSet, logsource_predicate

META = ir.Metadata("test", "", (), (), (), "low", None, (), ())
S = 1000
M = 60 * S
H = 60 * M
D = 24 * H


def analytic(
    streams: list[ir.Stream],
    detection: ir.Detection,
    baselines: tuple[ir.Baseline, ...] = (),
    lookups: tuple[ir.Lookup, ...] = (),
) -> ir.Analytic:
    return ir.Analytic("T1", "t.yml", META, lookups, tuple(streams), detection, baselines)


def stream(
    name: str,
    source: ir.LogSource | str | None = None,
    where: ir.Predicate = ir.TRUE,
    join: ir.Join | None = None,
    enrich: tuple[ir.Enrich, ...] = (),
    derive: tuple[tuple[str, ir.Expr], ...] = (),
) -> ir.Stream:
    src = ir.LogSource(product="test") if source is None else source
    return ir.Stream(name, src, join, enrich, derive, where)


def ev(ts: int, eid: str, **fields: Any) -> Event:
    """An event of module `test`; `host_name=` becomes `host.name` (pass names containing an
    underscore as `**{"process.command_line": ...}`)."""
    flat = {k if "." in k else k.replace("_", "."): v for k, v in fields.items()}
    flat.setdefault("event.module", "test")
    return Event(ts, 0, eid, flat)


def seq(events: list[Event]) -> list[Event]:
    return merge_events([events])


def ids(alerts: list[Alert]) -> list[tuple[str, ...]]:
    return [a.evidence for a in alerts]


def run_stream(a: ir.Analytic, name: str, events: list[Event]) -> list[tuple[int, Event]]:
    """(input index at release, event) of every output of stream `name`; index -1: at flush."""
    ss = StreamSet(a, [name])
    out: list[tuple[int, Event]] = []
    for i, e in enumerate(events):
        out += [(i, x) for x in ss.step(e)[name]]
    out += [(-1, x) for x in ss.flush()[name]]
    return out


def in_logsource(ls: ir.LogSource, fields: dict[str, Any]) -> bool:
    return compile_predicate(logsource_predicate(ls), {})(fields)


# --------------------------------------------------------------------------- logsources
def test_logsource_categories() -> None:
    proc = {"event.category": ["process"], "event.type": ["start"], "host.os.type": "windows"}
    assert in_logsource(ir.LogSource(category="process_creation", product="windows"), proc)
    assert not in_logsource(ir.LogSource(category="process_creation", product="linux"), proc)
    assert not in_logsource(ir.LogSource(category="network_connection"), proc)
    dns = {"event.category": "network", "dns.question.name": "x.com"}
    assert in_logsource(ir.LogSource(category="dns_query"), dns)
    flow = {"event.category": "network", "destination.bytes": 0}
    assert in_logsource(ir.LogSource(category="network_flow"), flow)
    assert not in_logsource(ir.LogSource(category="network_flow"), dns)
    conn = {"event.category": "network", "event.type": "connection"}
    assert in_logsource(ir.LogSource(category="network_connection"), conn)


def test_logsource_product_and_service() -> None:
    zeek = {"event.module": "zeek", "event.dataset": "zeek.conn"}
    assert in_logsource(ir.LogSource(product="zeek", service="conn"), zeek)
    assert not in_logsource(ir.LogSource(product="zeek", service="dns"), zeek)
    assert not in_logsource(ir.LogSource(product="sysmon"), zeek)
    assert in_logsource(ir.LogSource(service="conn"), zeek)  # any module's `conn` dataset
    assert not in_logsource(ir.LogSource(service="onn"), zeek)
    assert in_logsource(ir.LogSource(product="Linux"), {"host.os.type": "linux"})


def test_logsource_unknown_category() -> None:
    with pytest.raises(ValueError, match="unknown logsource category"):
        logsource_predicate(ir.LogSource(category="appliance"))


def test_event_routed_to_every_matching_stream() -> None:
    a = analytic(
        [stream("all"), stream("big", where=ir.Compare("n", "gt", 5))],
        ir.Match("all"),
    )
    ss = StreamSet(a, ["all", "big"])
    e1, e2 = seq([ev(1, "a", n=1), ev(2, "b", n=9)])
    assert [x.id for x in ss.step(e1)["all"]] == ["a"] and ss.step(e2)["big"] == [e2]
    assert ss.step(ev(3, "other", event_module="zeek"))["all"] == []


# --------------------------------------------------------------------------- enrich / derive
INVENTORY = ir.Lookup(
    "inventory",
    "/x/inventory.csv",
    ("host", "role", "site"),
    (("WS1", "workstation", "paris"), ("ws1", "duplicate", "x"), ("srv1", "server", "")),
)
ENRICH = ir.Enrich(
    "inventory", (("host", "host.name"),), (("role", "labels.role"), ("site", "labels.site"))
)


def test_enrich_first_row_case_insensitive_and_left_join() -> None:
    a = analytic([stream("s", enrich=(ENRICH,))], ir.Match("s"), lookups=(INVENTORY,))
    out = [e for _, e in run_stream(a, "s", seq([
        ev(1, "a", host_name="ws1"),
        ev(2, "b", host_name="SRV1", labels_site="stale"),
        ev(3, "c", host_name="nope", labels_role="stale"),
    ]))]  # fmt: skip
    assert out[0].fields["labels.role"] == "workstation"  # first row in CSV order
    assert out[0].fields["labels.site"] == "paris"
    assert out[1].fields["labels.role"] == "server"
    assert "labels.site" not in out[1].fields  # empty cell: absent (and replaces the old value)
    assert "labels.role" not in out[2].fields  # no match: the added fields are absent


def test_enrich_then_derive_then_filter_without_mutating_input() -> None:
    derive = (
        (
            "ips",
            ir.Call("extract_ips", (ir.FieldRef("process.command_line"),)),
        ),
        ("n.ips", ir.Call("coalesce", (ir.FieldRef("ips"),))),  # reads the previous one
        ("host.name", ir.Literal_(None)),  # null removes the field
        ("role.up", ir.Call("upper", (ir.FieldRef("labels.role"),))),
    )
    a = analytic(
        [
            stream(
                "s",
                enrich=(ENRICH,),
                derive=derive,
                where=ir.Cidr("ips", ("10.0.0.0/8",)),
            )
        ],
        ir.Match("s"),
        lookups=(INVENTORY,),
    )
    cmd = "curl http://[::ffff:10.0.0.5]:80/ && ping 8.8.8.8"
    e = seq([ev(1, "a", host_name="ws1", **{"process.command_line": cmd})])[0]
    before = dict(e.fields)
    [(_, out)] = run_stream(a, "s", [e])
    assert out.fields["ips"] == ["10.0.0.5", "8.8.8.8"]
    assert out.fields["n.ips"] == ["10.0.0.5", "8.8.8.8"]
    assert "host.name" not in out.fields
    assert out.fields["role.up"] == "WORKSTATION"
    assert e.fields == before  # the input event is shared by every stream: never mutated
    other = ev(2, "b", **{"process.command_line": "ping 8.8.8.8"})
    assert run_stream(a, "s", seq([other])) == []


# --------------------------------------------------------------------------- join
def join_analytic(direction: str = "around", within: int = 10 * S) -> ir.Analytic:
    j = ir.Join(
        stream="proc",
        on=("source.port",),
        within_ms=within,
        direction=direction,  # type: ignore[arg-type]
        add=("process.name", "host.name"),
    )
    flows = ir.LogSource(product="zeek")
    procs = ir.LogSource(product="sysmon")
    return analytic(
        [stream("proc", procs), stream("flow", flows), stream("fp", "flow", join=j)],
        ir.Match("fp"),
    )


def flow(ts: int, eid: str, port: Any, **kw: Any) -> Event:
    return ev(ts, eid, event_module="zeek", source_port=port, host_name="zeek-sensor", **kw)


def proc(ts: int, eid: str, port: Any, name: str, **kw: Any) -> Event:
    return ev(ts, eid, event_module="sysmon", source_port=port, process_name=name, **kw)


def joined(a: ir.Analytic, events: list[Event]) -> list[tuple[str, Any]]:
    return [(e.id, e.fields.get("process.name")) for _, e in run_stream(a, "fp", seq(events))]


def test_join_tolerates_skew_both_ways() -> None:
    a = join_analytic()
    events = [
        proc(0, "p1", 1111, "early.exe"),
        flow(10 * S, "f1", 1111),  # partner 10s before: within (inclusive)
        flow(20 * S, "f2", "2222"),  # partner 10s after, key as a numeric string
        proc(30 * S, "p2", 2222, "late.exe"),
        flow(50 * S, "f3", 3333),
        proc(61 * S, "p3", 3333, "too-late.exe"),  # 11s: outside
    ]
    assert joined(a, events) == [("f1", "early.exe"), ("f2", "late.exe")]


def test_join_direction() -> None:
    events = [
        proc(0, "p-before", 1, "before.exe"),
        flow(5 * S, "f", 1),
        proc(7 * S, "p-after", 1, "after.exe"),
    ]
    assert joined(join_analytic("before"), events) == [("f", "before.exe")]
    assert joined(join_analytic("after"), events) == [("f", "after.exe")]
    assert joined(join_analytic("around"), events) == [("f", "after.exe")]  # nearest


def test_join_nearest_tie_earlier_and_fields() -> None:
    a = join_analytic()
    events = [
        proc(0, "p1", 1, "first.exe"),
        proc(2 * S, "p2", 1, "second.exe", host_name="WS1"),
        flow(3 * S, "f", 1),
        proc(4 * S, "p3", 1, "third.exe"),  # same distance as p2: the earlier wins
    ]
    [(_, out)] = run_stream(a, "fp", seq(events))
    assert out.fields["process.name"] == "second.exe"
    assert out.fields["host.name"] == "WS1"  # `add` fields overwrite ...
    assert out.id == "f" and out.fields["event.module"] == "zeek"  # ... the rest is ours
    events[1] = proc(2 * S, "p2", 1, "second.exe")  # no host.name on the partner
    [(_, out)] = run_stream(a, "fp", seq(events))
    assert out.fields["host.name"] == "zeek-sensor"  # our value stays


def test_join_unmatched_and_keyless_events_are_dropped() -> None:
    a = join_analytic()
    events = [flow(0, "f1", 9), flow(1, "f2", None), proc(2, "p", 8, "x.exe")]
    assert joined(a, events) == []


def test_join_releases_after_within_and_reports_lateness() -> None:
    a = join_analytic(within=10 * S)
    ss = StreamSet(a, ["fp"])
    assert ss.lateness == {"proc": 0, "flow": 0, "fp": 10 * S}
    assert StreamSet(join_analytic("before"), ["fp"]).lateness["fp"] == 0
    events = seq([
        flow(0, "f", 1),
        proc(10 * S, "p", 1, "x.exe"),  # exactly `within` later: still a partner
        ev(10 * S, "tick1"),
        ev(10 * S + 1, "tick2"),
    ])  # fmt: skip
    assert [(i, e.id) for i, e in run_stream(a, "fp", events)] == [(3, "f")]


def test_join_flush_at_end_and_bounded_state() -> None:
    a = join_analytic(within=10 * S)
    ss = StreamSet(a, ["fp"])
    events = []
    for i in range(2000):
        events.append(proc(i * S, f"p{i}", i % 50, "x.exe"))
        events.append(flow(i * S + 500, f"f{i}", i % 50))
    sizes = []
    released = 0
    for e in seq(events):
        released += len(ss.step(e)["fp"])
        sizes.append(ss.state_size())
    released += len(ss.flush()["fp"])
    assert released == 2000
    assert max(sizes) < 60  # ~ two streams x 10s of events, not the 4000 events
    assert ss.state_size() == 0


def test_join_chain_accumulates_lateness() -> None:
    j1 = ir.Join("proc", ("source.port",), 10 * S, "around", ("process.name",))
    j2 = ir.Join("fp", ("source.port",), 5 * S, "after", ("process.name",))
    a = analytic(
        [
            stream("proc", ir.LogSource(product="sysmon")),
            stream("flow", ir.LogSource(product="zeek")),
            stream("fp", "flow", join=j1),
            stream("x", ir.LogSource(product="sysmon"), join=j2),
        ],
        ir.Match("x"),
    )
    assert StreamSet(a, ["x"]).lateness["x"] == 15 * S


# --------------------------------------------------------------------------- engine
def test_events_out_of_order_are_rejected() -> None:
    a = analytic([stream("s")], ir.Match("s"))
    events = [Event(5, 0, "a", {}), Event(4, 1, "late-one", {})]
    with pytest.raises(ValueError, match="late-one"):
        evaluate(a, events)
    with pytest.raises(ValueError, match="dup"):
        evaluate(a, [Event(5, 3, "a", {}), Event(5, 2, "dup", {})])


def test_match_alerts() -> None:
    a = analytic([stream("s", where=ir.Eq("process.name", ("cmd.exe",)))], ir.Match("s"))
    events = seq([
        ev(2, "b", process_name="CMD.exe"),
        ev(1, "a", process_name="cmd.exe"),
        ev(3, "c", process_name="other.exe"),
    ])  # fmt: skip
    alerts = evaluate(a, events)
    assert ids(alerts) == [("a",), ("b",)]
    assert alerts[0].key == () and alerts[0].start == alerts[0].end == 1
    assert alerts[0].field("process.name") == "cmd.exe"


def test_make_events() -> None:
    docs: list[dict[str, Any]] = [
        {"@timestamp": "2024-01-01T00:00:02Z", "process": {"name": "b"}},
        {"@timestamp": "2024-01-01T00:00:01Z", "event.id": "E1"},
        {"@timestamp": 1704067202, "event": {"id": 7}},
    ]
    events = make_events(docs, "f.jsonl")
    assert [(e.id, e.seq) for e in events] == [("E1", 0), ("f.jsonl#1", 1), ("7", 2)]
    assert events[0].ts == 1704067201000
    assert events[1].fields["process.name"] == "b"
    with pytest.raises(ValueError, match=r"f\.jsonl#1"):
        make_events([{"x": 1}], "f.jsonl")
    with pytest.raises(ValueError, match=r"f\.jsonl#1"):
        make_events([{"@timestamp": "yesterday"}], "f.jsonl")


def test_sequence_end_to_end() -> None:
    steps = (
        ir.Step("start", "proc", ("host.name",)),
        ir.Step("net", "conn", ("host.name",)),
    )
    a = analytic(
        [
            stream("proc", where=ir.Eq("kind", ("proc",))),
            stream("conn", where=ir.Eq("kind", ("conn",))),
        ],
        ir.Sequence(steps, maxspan_ms=5 * M),
    )
    events = seq([
        ev(0, "p1", kind="proc", host_name="A"),
        ev(30_000, "c0", kind="conn", host_name="a"),  # keys are case-sensitive: not A
        ev(1 * M, "c1", kind="conn", host_name="A"),
        ev(2 * M, "p2", kind="proc", host_name="B"),
        ev(8 * M, "c2", kind="conn", host_name="B"),  # outside maxspan
    ])  # fmt: skip
    alerts = evaluate(a, events)
    assert ids(alerts) == [("p1", "c1")]
    assert alerts[0].key == (("host.name", "A"),)
    assert alerts[0].field("net.kind") == "conn"


def test_match_over_join_stream_with_other_stream_in_time_order() -> None:
    """Outputs of a join stream come late; the detector still sees every stream in order."""
    j = ir.Join("proc", ("source.port",), 10 * S, "around", ("process.name",))
    a = analytic(
        [
            stream("proc", ir.LogSource(product="sysmon")),
            stream("flow", ir.LogSource(product="zeek")),
            stream("fp", "flow", join=j),
        ],
        ir.Sequence(
            (ir.Step("f", "fp", ("source.port",)), ir.Step("p", "proc", ("source.port",))),
            maxspan_ms=30 * S,
        ),
    )
    events = seq([
        proc(0, "p0", 1, "x.exe"),
        flow(5 * S, "f1", 1),
        proc(8 * S, "p1", 1, "y.exe"),  # after the flow: the sequence completes
    ])  # fmt: skip
    alerts = evaluate(a, events)
    assert ids(alerts) == [("f1", "p1")]
    assert alerts[0].field("f.process.name") == "y.exe"  # nearest partner (3s vs 5s)


def history_analytic(lookback: int = 14 * D) -> ir.Analytic:
    """Aggregate of bytes per host and domain, ratio out/in >= 10, first seen in 14 days."""
    agg = ir.Aggregate(
        stream="flow",
        window=ir.Window("tumbling", H),
        keys=("host.name", "dom"),
        measures=(
            ir.Measure("out", "sum", "source.bytes"),
            ir.Measure("in", "sum", "destination.bytes"),
        ),
        compute=(("ratio", ir.BinOp("/", ir.MeasureRef("out"), ir.MeasureRef("in"))),),
        having=ir.BinOp(">=", ir.MeasureRef("ratio"), ir.Literal_(10)),
    )
    fs = ir.FirstSeen("flow", ("host.name", "dom"), ("host.name", "dom"), lookback)
    derive = (("dom", ir.Call("registered_domain", (ir.FieldRef("destination.domain"),))),)
    return analytic([stream("flow", derive=derive)], agg, baselines=(fs,))


def test_aggregate_ratio_with_first_seen() -> None:
    a = history_analytic()
    day0 = 1_700_000_000_000 - 1_700_000_000_000 % D
    events = seq([
        # history: ws1 talked to dropbox 3 days before (a normal, balanced flow)
        ev(day0 - 3 * D, "h1", host_name="ws1", destination_domain="www.dropbox.com",
           source_bytes=10, destination_bytes=10),
        # day0: ws1 uploads to dropbox (seen before) and to mega.nz (new): only mega alerts
        ev(day0 + 1, "a1", host_name="ws1", destination_domain="x.dropbox.com",
           source_bytes=1000, destination_bytes=1),
        ev(day0 + 2, "a2", host_name="ws1", destination_domain="g.mega.nz",
           source_bytes=600, destination_bytes=10),
        ev(day0 + 3, "a3", host_name="ws1", destination_domain="g.mega.nz",
           source_bytes=600, destination_bytes=10),
        # 20 days later dropbox is new again (outside the lookback)
        ev(day0 + 20 * D, "b1", host_name="ws1", destination_domain="dropbox.com",
           source_bytes=100, destination_bytes=1),
    ])  # fmt: skip
    alerts = evaluate(a, events)
    assert ids(alerts) == [("a2", "a3"), ("b1",)]
    assert alerts[0].key == (("host.name", "ws1"), ("dom", "mega.nz"))
    assert dict(alerts[0].measures)["ratio"] == 60.0
    assert alerts[0].start == day0 and alerts[0].end == day0 + H


def test_first_seen_history_excludes_the_detection_window() -> None:
    a = history_analytic()
    events = seq([
        ev(0, "a1", host_name="ws1", destination_domain="d.com", source_bytes=100,
           destination_bytes=1),
        ev(1, "a2", host_name="ws1", destination_domain="d.com", source_bytes=100,
           destination_bytes=1),
    ])  # fmt: skip
    assert ids(evaluate(a, events)) == [("a1", "a2")]


def test_baseline_waits_for_late_history_stream() -> None:
    """The history stream is a join (10 min late); an alert of an on-time stream must still see
    history that the join only releases after the alert's event arrived."""
    j = ir.Join("proc", ("source.port",), 10 * M, "around", ("process.name",))
    a = analytic(
        [
            stream("proc", ir.LogSource(product="sysmon")),
            stream("flow", ir.LogSource(product="zeek")),
            stream("hist", "flow", join=j),
            stream("alerting", ir.LogSource(product="edr")),
        ],
        ir.Match("alerting"),
        baselines=(ir.FirstSeen("hist", ("process.name",), ("process.name",), D),),
    )
    events = seq([
        flow(0, "f", 1),
        proc(9 * M, "p", 1, "seen.exe"),  # releases the joined flow at ts 0 (as seen.exe)
        ev(1 * M, "x0", event_module="edr", process_name="seen.exe"),  # history at ts 0
        ev(2 * M, "x1", event_module="edr", process_name="seen.exe"),
        ev(2 * M, "x9", event_module="edr", process_name="SEEN.exe"),  # another key
        ev(3 * M, "x2", event_module="edr", process_name="new.exe"),
    ])  # fmt: skip
    alerts = evaluate(a, events)
    assert ids(alerts) == [("x9",), ("x2",)]


def test_deviation_needs_aggregate() -> None:
    a = analytic([stream("s")], ir.Match("s"), baselines=(ir.Deviation("x", D, 3.0, None, 3),))
    with pytest.raises(ValueError, match="deviation"):
        evaluate(a, [])


def test_absence_uses_now() -> None:
    node = ir.Absence(
        ir.Step("first", "a", ("host.name",)), ir.Step("missing", "b", ("host.name",)), M
    )
    a = analytic(
        [stream("a", where=ir.Eq("k", ("a",))), stream("b", where=ir.Eq("k", ("b",)))], node
    )
    events = seq([ev(0, "a1", k="a", host_name="h"), ev(10 * S, "a2", k="a", host_name="g"),
                  ev(20 * S, "b2", k="b", host_name="g")])  # fmt: skip
    assert ids(evaluate(a, events, now=2 * M)) == [("a1",)]


def test_state_does_not_grow_with_events() -> None:
    a = history_analytic(lookback=H)
    run = Evaluation(a)
    sizes = []
    for i, e in enumerate(
        seq([
            ev(i * S, f"e{i}", host_name=f"h{i % 5}", destination_domain=f"d{i % 7}.com",
               source_bytes=i,
               destination_bytes=1)
            for i in range(20000)
        ])
    ):  # fmt: skip
        run.push(e)
        if i % 1000 == 999:
            sizes.append(run.state_size())
    run.finish()
    # windows of 1h = 3600 events; the history keeps ~1h of per-second occurrences per key
    assert max(sizes[5:]) < 3 * max(sizes[:5]) + 100
    assert max(sizes) < 20000


def test_before_join_output_is_not_late_for_a_window() -> None:
    """A `before` join has lateness 0 but still releases an event only at a later input: the
    event must reach the aggregate before the watermark closes its window."""
    j = ir.Join("proc", ("source.port",), H, "before", ("process.name",))
    agg = ir.Aggregate(
        stream="fp",
        window=ir.Window("tumbling", H),
        keys=("process.name",),
        measures=(ir.Measure("n", "count", None),),
        compute=(),
        having=None,
    )
    a = analytic(
        [
            stream("proc", ir.LogSource(product="sysmon")),
            stream("flow", ir.LogSource(product="zeek")),
            stream("fp", "flow", join=j),
        ],
        agg,
    )
    events = seq([
        proc(0, "p", 1, "x.exe"),
        flow(10 * M, "f1", 1),
        flow(50 * M, "f2", 1),
        proc(2 * H, "later", 2, "y.exe"),  # releases f2 and crosses the window end
    ])  # fmt: skip
    assert ids(evaluate(a, events)) == [("f1", "f2")]


KEY_PAIRS = [
    ("WS01", "WS01", True),
    ("WS01", "ws01", False),  # case-sensitive
    ("443", 443, True),  # a number is its decimal text
    (443, 443.0, True),
    ("443", 443.0, True),
    (" 443", "443.0", False),  # strings compare as text, as keyword fields do
    ("7", "7.0", False),
    ("0443", 443, False),
    (1.5, "1.5", True),
    ("10.0.0.1", "10.0.0.1", True),
    ("10.0.0.1", "10.0.0.01", False),  # not a number: compared as text
    (True, True, True),
    (True, 1, False),  # booleans are not numbers
    (True, "true", False),
    ("", "", True),
]


@pytest.mark.parametrize(("x", "y", "equal"), KEY_PAIRS)
def test_one_key_rule_for_every_detector(x: Any, y: Any, equal: bool) -> None:
    """Sequence `by`, co-occurrence `by`, absence `by`, aggregate `by`, join `on`, first_seen keys
    and rarity `across` values all compare keys the same way (keys.normalise)."""
    a_where, b_where = ir.Eq("kind", ("a",)), ir.Eq("kind", ("b",))
    streams = [stream("a", where=a_where), stream("b", where=b_where)]
    k = ("k",)
    events = seq([ev(0, "ea", kind="a", k=x, h="h"), ev(1 * S, "eb", kind="b", k=y, h="h")])

    def run(a: ir.Analytic) -> list[Alert]:
        return evaluate(a, events, now=1 * H)

    seq_alerts = run(
        analytic(streams, ir.Sequence((ir.Step("a", "a", k), ir.Step("b", "b", k)), M))
    )
    co_alerts = run(
        analytic(streams, ir.Cooccurrence((ir.Step("a", "a", k), ir.Step("b", "b", k)), M))
    )
    abs_alerts = run(analytic(streams, ir.Absence(ir.Step("a", "a", k), ir.Step("b", "b", k), M)))
    agg = ir.Aggregate(
        stream="all",
        window=ir.Window("tumbling", H),
        keys=k,
        measures=(ir.Measure("n", "count", None),),
        compute=(),
        having=ir.BinOp(">=", ir.MeasureRef("n"), ir.Literal_(2)),
    )
    agg_alerts = run(analytic([stream("all")], agg))
    join = ir.Join("a", k, 10 * S, "around", ("h",))
    join_alerts = run(analytic([*streams, stream("j", "b", join=join)], ir.Match("j")))
    fs = ir.FirstSeen("a", k, k, D)
    fs_alerts = run(analytic(streams, ir.Match("b"), baselines=(fs,)))
    # rarity: a key seen with `x` and `y` as across values is rare (< 2) iff they are equal
    rarity = ir.Rarity("all", ("h",), ("h",), "k", 2, D)
    last = ev(1 * H, "ez", kind="z", h="h")
    rare_alerts = evaluate(
        analytic([stream("all"), stream("z", where=ir.Eq("kind", ("z",)))], ir.Match("z"),
                 baselines=(rarity,)),
        seq([*events, last]),
    )  # fmt: skip

    assert len(seq_alerts) == equal
    assert len(co_alerts) == equal
    assert len(abs_alerts) == (not equal)  # the `b` event suppresses only with an equal key
    assert [a.evidence for a in agg_alerts] == ([("ea", "eb")] if equal else [])
    assert len(join_alerts) == equal
    assert len(fs_alerts) == (not equal)  # seen in `a` only with an equal key
    assert len(rare_alerts) == equal
    if equal:  # alert keys report the first event's value as it appears
        assert seq_alerts[0].key == co_alerts[0].key == agg_alerts[0].key == (("k", x),)


# --------------------------------------------------------------------------- routing memo
def test_routing_memo_agrees_with_the_logsource_conditions() -> None:
    # Logsources sharing conditions; values the memo must not confuse (True == 1 in Python,
    # multi-values are unhashable or hashable tuples, exists on lists of nulls).
    sources = [
        ir.LogSource(category="process_creation"),
        ir.LogSource(category="network_connection", product="linux"),
        ir.LogSource(category="network_flow"),
        ir.LogSource(product="windows"),
        ir.LogSource(service="conn"),
    ]
    names = [f"s{i}" for i in range(len(sources))]
    a = analytic([stream(n, ls) for n, ls in zip(names, sources, strict=True)], ir.Match("s0"))
    streams = StreamSet(a, names)
    pairs = zip(names, sources, strict=True)
    preds = {n: compile_predicate(logsource_predicate(ls), {}) for n, ls in pairs}
    values: list[Any] = [None, "process", "PROCESS", "network", ["network", "file"], ("network",)]
    values += [True, 1, 1.0, "start", "connection", "Linux", "windows", [None], [], 5, "zeek.conn"]
    cases = []
    for i, cat in enumerate(values):
        for j, other in enumerate(values):
            fields = {
                "event.category": cat,
                "event.type": values[(i + j) % len(values)],
                "host.os.type": other,
                "event.dataset": values[(2 * i + j) % len(values)],
                "source.bytes": values[(i * j) % len(values)],
            }
            cases.append({k: v for k, v in fields.items() if v is not None or (i + j) % 2})
    for _ in range(2):  # the second pass reads the memo
        for fields in cases:
            want = {n for n in names if preds[n](fields)}
            assert set(streams.router.route(fields).matched) == want, fields


def test_alert_field_reads_steps_lazily_in_record_order() -> None:
    first = {"host.name": "h1", "x": 1, "n": None}
    second = {"host.name": "h2", "x": 2, "y": 3}
    al = Alert(
        "A",
        (("host.name", "K"),),
        0,
        1,
        (),
        ("e1", "e2"),
        pairs=(("host.name", "K"),),
        steps=(("a.", first), ("b.", second)),
    )
    assert al.record == (
        ("host.name", "K"),
        ("a.host.name", "h1"),
        ("a.x", 1),
        ("a.n", None),
        ("b.host.name", "h2"),
        ("b.x", 2),
        ("b.y", 3),
    )
    for name, _ in al.record:
        assert al.field(name) == dict(al.record)[name]
    assert al.field("a.y") is None and al.field("b.n") is None and al.field("nope") is None
    match = Alert("A", (), 5, 5, (), ("e",), steps=(("", first),))
    assert match.field("x") == 1 and match.record == tuple(first.items())
