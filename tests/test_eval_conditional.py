"""Conditional measures (`count`/`distinct`/`sum`/... with `where:`) in the reference evaluator,
from the YAML surface through lowering (docs/semantics.md, Aggregates)."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import ir
from compiler.diagnostics import DiagnosticError
from compiler.evaluator import evaluate, make_events
from compiler.lower import load_text

HEAD = """
id: T-COND
title: conditional measures
description: d
severity: low
streams:
  conn:
    logsource: {category: network_connection}
detect:
  aggregate:
    stream: conn
"""


def analytic(body: str) -> ir.Analytic:
    return load_text("t.yml", HEAD + body).analytic


def ev(t: str, eid: str, **fields: Any) -> dict[str, Any]:
    return {
        "@timestamp": f"2024-01-01T{t}Z",
        "event.id": eid,
        "event.category": "network",
        "event.type": "connection",
        "host.name": "h1",
        **{k.replace("__", "."): v for k, v in fields.items()},
    }


def measures(a: ir.Analytic, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(al.measures) for al in evaluate(a, make_events(docs, "t"), None)]


TUMBLING = """
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures:
      events: {count: true}
      low_events: {count: true, where: {destination.port|lt: 1024}}
      low_with_ip: {count: destination.ip, where: {destination.port|lt: 1024}}
      low_ports: {distinct: destination.port, where: {destination.port|lt: 1024}}
      low_bytes: {sum: source.bytes, where: {destination.port|lt: 1024}}
      high_max: {max: source.bytes, where: {not: {destination.port|lt: 1024}}}
"""


def test_conditional_measures_count_only_events_the_filter_holds_for() -> None:
    a = analytic(TUMBLING)
    docs = [
        ev("00:01:00", "e1", destination__port=22, destination__ip="10.0.0.1", source__bytes=5),
        ev("00:02:00", "e2", destination__port=22, source__bytes=7),
        ev("00:03:00", "e3", destination__port=443, destination__ip="10.0.0.2", source__bytes=9),
        ev("00:04:00", "e4", destination__port=8443, source__bytes=100),
        # no port: the condition cannot hold, so the event counts for no conditional measure,
        # but for `not: {port < 1024}` it does (plain negation of a filter that is false)
        ev("00:05:00", "e5", source__bytes=1000),
    ]
    (m,) = measures(a, docs)
    assert m == {
        "events": 5,
        "low_events": 3,
        "low_with_ip": 2,
        "low_ports": 2,
        "low_bytes": 21,
        "high_max": 1000,
    }


def test_conditional_measures_of_no_matching_event_are_zero_or_null() -> None:
    a = analytic(TUMBLING)
    (m,) = measures(a, [ev("00:01:00", "e1", destination__port=8080, source__bytes=3)])
    assert m["low_events"] == 0 and m["low_ports"] == 0 and m["low_with_ip"] == 0
    assert m["low_bytes"] is None and m["high_max"] == 3


def test_conditional_measure_on_a_multi_value_follows_the_filter_and_measure_rules() -> None:
    # the filter holds when some element satisfies it; the measure then counts every element
    a = analytic(TUMBLING)
    (m,) = measures(a, [ev("00:01:00", "e1", destination__port=[22, 8080, 23])])
    assert m["low_events"] == 1
    assert m["low_ports"] == 3  # 22, 8080 and 23: the event is in, with all its values


def test_sliding_conditional_threshold_fires_and_consumes() -> None:
    a = analytic("""
    window: {kind: sliding, size: 5m}
    by: [host.name]
    measures:
      failures: {count: true, where: {event.outcome: failure}}
    having: failures >= 2
""")
    docs = [
        ev("00:00:00", "f1", event__outcome="failure"),
        ev("00:01:00", "s1", event__outcome="success"),
        ev("00:02:00", "f2", event__outcome="FAILURE"),  # filters are case-insensitive
        ev("00:03:00", "f3", event__outcome="failure"),
        ev("00:09:00", "f4", event__outcome="failure"),
    ]
    alerts = evaluate(a, make_events(docs, "t"), None)
    assert [(al.evidence, dict(al.measures)["failures"]) for al in alerts] == [
        (("f1", "s1", "f2"), 2)
    ]


def test_conditional_measure_filter_may_test_a_lookup(tmp_path: Any) -> None:
    (tmp_path / "ports.csv").write_text("port\n22\n3389\n")
    text = (
        HEAD.replace("streams:", "lookups:\n  admin: {file: ports.csv}\nstreams:")
        + """
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures:
      admin_flows: {count: true, where: {lookup: {name: admin, match: {port: destination.port}}}}
"""
    )
    path = tmp_path / "t.yml"
    path.write_text(text)
    a = load_text(str(path), text).analytic
    docs = [ev("00:01:00", "e1", destination__port=22), ev("00:02:00", "e2", destination__port=80)]
    assert [dict(al.measures) for al in evaluate(a, make_events(docs, "t"), None)] == [
        {"admin_flows": 1}
    ]


def test_measure_filter_errors_are_positioned() -> None:
    with pytest.raises(DiagnosticError) as exc:
        analytic("""
    window: {kind: tumbling, size: 1h}
    measures:
      n: {count: true, where: {destination.port|between: 3}}
""")
    d = exc.value.diagnostics[0]
    assert (d.code, d.line, d.col) == ("E123", 15, 32) and "between" in d.message
