"""History in fixtures (`inputs: [{..., history: true}]`, inline `history:`): evaluated like any
event, feeding baselines, but an alert with a history event among its evidence is not
reported (docs/semantics.md, Fixtures and history)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from compiler.diagnostics import DiagnosticError
from compiler.discover import load_catalog
from compiler.evaluator import evaluate
from compiler.lower import Loaded, load_file, load_text
from compiler.testing import load_fixture, run_fixture

ROOT = Path(__file__).resolve().parent.parent

FIRST_SEEN = """
id: T-HIST
title: first-seen process on a host
description: d
severity: low
streams:
  proc:
    logsource: {category: process_creation}
detect:
  match: proc
baseline:
  - first_seen: {stream: proc, keys: [host.name, process.name], lookback: 14d}
tests:
  - name: seen a week earlier
    kind: negative
    history:
      - {"@timestamp": "2024-01-01T10:00:00Z", event.id: h1, event.category: process,
         event.type: start, host.name: ws1, process.name: rclone.exe}
    events:
      - {"@timestamp": "2024-01-08T10:00:00Z", event.id: e1, event.category: process,
         event.type: start, host.name: ws1, process.name: rclone.exe}
  - name: new on another host
    kind: positive
    history:
      - {"@timestamp": "2024-01-01T10:00:00Z", event.id: h1, event.category: process,
         event.type: start, host.name: ws1, process.name: rclone.exe}
    events:
      - {"@timestamp": "2024-01-08T10:00:00Z", event.id: e2, event.category: process,
         event.type: start, host.name: ws2, process.name: rclone.exe}
    expect:
      - key: {}
        evidence: [e2]
"""


def _loaded(text: str = FIRST_SEEN) -> Loaded:
    return load_text("t.yml", text)


def test_inline_history_feeds_the_baseline_and_its_alerts_are_not_reported() -> None:
    lo = _loaded()
    negative, positive = lo.fixtures
    assert run_fixture(lo, negative).status == "passed"
    assert run_fixture(lo, positive).status == "passed"
    # the history event alerts itself (first seen); the fixture drops exactly that alert
    fx = load_fixture(lo, negative)
    every = evaluate(lo.analytic, fx.events, None)
    assert [al.evidence for al in every] == [("h1",)] and fx.history == {"h1"}


def test_without_history_the_negative_fixture_fails() -> None:
    lo = _loaded()
    negative = lo.fixtures[0]
    as_events = dataclasses.replace(negative, events=negative.history + negative.events, history=())
    res = run_fixture(lo, as_events)
    assert res.status == "failed" and [al.evidence for al in res.actual] == [("h1",)]


def test_bundled_first_seen_has_a_real_negative_fixture() -> None:
    lo = next(x for x in load_catalog([ROOT / "analytics"]).loaded if x.analytic.id == "AN1511")
    fx = next(f for f in lo.fixtures if any(i.history for i in f.inputs))
    assert fx.kind == "negative"
    res = run_fixture(lo, fx)
    assert res.status == "passed", res.detail
    # the history upload raised its own alert, which is the one left out
    every = evaluate(lo.analytic, load_fixture(lo, fx).events, None)
    assert [al.evidence for al in every] == [("a1511-h1-flow",)]
    # and without the mark the fixture cannot be negative
    plain = dataclasses.replace(
        fx, inputs=tuple(dataclasses.replace(i, history=False) for i in fx.inputs)
    )
    assert run_fixture(lo, plain).status == "failed"


def test_an_aggregate_window_with_a_history_event_is_not_reported(tmp_path: Path) -> None:
    text = """
id: T-HIST-AGG
title: burst
description: d
severity: low
streams:
  proc:
    logsource: {category: process_creation}
detect:
  aggregate:
    stream: proc
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures: {n: {count: true}}
    having: n >= 2
tests:
  - name: the window holds a history event
    kind: negative
    inputs:
      - {file: past.jsonl, history: true}
    events:
      - {"@timestamp": "2024-01-01T10:30:00Z", event.id: e1, event.category: process,
         event.type: start, host.name: ws1}
"""
    (tmp_path / "past.jsonl").write_text(
        '{"@timestamp": "2024-01-01T10:10:00Z", "event.id": "h1", "event.category": "process",'
        ' "event.type": "start", "host.name": "ws1"}\n'
    )
    (tmp_path / "t.yml").write_text(text)
    lo = load_file(tmp_path / "t.yml")
    (fx,) = lo.fixtures
    res = run_fixture(lo, fx)
    assert res.status == "passed" and res.message == "0 alerts; 1 on history, not reported"


def test_an_id_shared_by_history_and_other_events_is_an_error() -> None:
    text = FIRST_SEEN.replace("event.id: e1", "event.id: h1")
    lo = _loaded(text)
    res = run_fixture(lo, lo.fixtures[0])
    assert res.status == "error" and "'h1' names both a history event" in res.message


def test_a_fixture_of_history_only_is_refused() -> None:
    text = (
        FIRST_SEEN.split("tests:")[0]
        + """tests:
  - name: only history
    kind: negative
    history:
      - {"@timestamp": "2024-01-01T10:00:00Z", event.id: h1, host.name: ws1}
"""
    )
    with pytest.raises(DiagnosticError) as exc:
        _loaded(text)
    assert "history" in exc.value.diagnostics[0].message
