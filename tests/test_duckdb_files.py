"""The DuckDB engine's readers (compiler/engines/duckdb_files.py): the typed parallel read,
its fallbacks, and the unnumbered run of order-free analytics, each against the evaluator's
lines over the same file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backends.duckdb import DuckdbBackend
from compiler import ir, run_engine
from compiler.engines import duckdb_files, run_duckdb
from compiler.lower import load_text
from compiler.runner import alert_lines

HEAD = """\
id: T-FILES
title: t
description: t
attack: {techniques: [T1059]}
platforms: [windows]
severity: low
"""

FILTER = """\
streams:
  s:
    logsource: {category: process_creation}
    where:
      process.executable|startswith: [/tmp/, "C:\\\\Temp\\\\"]
detect:
  match: s
"""

TUMBLING = """\
streams:
  f:
    logsource: {category: network_flow}
detect:
  aggregate:
    stream: f
    window: {kind: tumbling, size: 1m}
    by: [host.name]
    measures:
      out: {sum: source.bytes}
    having: out >= 100
"""


def _analytic(body: str) -> Any:
    return load_text("t.yml", HEAD + body).analytic


def _write(tmp_path: Path, lines: list[str], name: str = "e.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return path


def _doc(ts: str, **fields: Any) -> str:
    return json.dumps({"@timestamp": ts, **fields})


def _same_as_evaluator(body: str, path: Path) -> list[str]:
    a = _analytic(body)
    ours = run_engine.duckdb_lines(a, [(path, "ecs")], None)
    assert ours == list(alert_lines([a], [(path, "ecs")], None))
    return ours


def _attempt(body: str, path: Path, fmt: str = "ecs-jsonl") -> list[Any] | None:
    a = _analytic(body)
    art = DuckdbBackend().configure({"ties": "count"}).compile(a)
    return run_duckdb._attempt(a, art, [(path, fmt)], None)


def _net(ts: str, host: Any, out: Any, eid: str | None = None) -> str:
    doc: dict[str, Any] = {"category": "network"}
    if eid is not None:
        doc["id"] = eid
    return _doc(ts, event=doc, host={"name": host}, source={"bytes": out})


def test_order_free_analytics_are_matches_and_tumbling_aggregates() -> None:
    assert duckdb_files.order_free(_analytic(FILTER))
    assert duckdb_files.order_free(_analytic(TUMBLING))
    # a having reading the first event's key value, which ties would make arbitrary (the
    # language names only measures there today; the IR allows fields)
    agg = _analytic(TUMBLING)
    reads_key = replace(agg, detection=replace(agg.detection, having=ir.FieldRef("host.name")))
    assert not duckdb_files.order_free(reads_key)
    sliding = TUMBLING.replace("kind: tumbling", "kind: sliding")
    assert not duckdb_files.order_free(_analytic(sliding))
    with_baseline = (
        FILTER + "baseline:\n  - first_seen: {stream: s, keys: [host.name], lookback: 1d}\n"
    )
    assert not duckdb_files.order_free(_analytic(with_baseline))


def test_a_match_runs_unnumbered_and_prints_the_evaluators_lines(tmp_path: Path) -> None:
    proc = {"category": "process", "type": "start"}
    path = _write(
        tmp_path,
        [
            _doc(
                "2024-01-01T00:00:01.000Z",
                event={**proc, "id": "p1"},
                process={"executable": "/TMP/x"},
            ),
            # dotted keys, a list, an escaped string, a number
            json.dumps(
                {
                    "@timestamp": "2024-01-01T00:00:02.000Z",
                    "event.category": "process",
                    "event.type": ["start", "info"],
                    "event.id": "p2",
                    "process.executable": "C:\\Temp\\a.exe",
                }
            ),
            _doc("2024-01-01T00:00:03.000Z", event={**proc, "id": "p3"}, process={"executable": 7}),
            _doc(
                "2024-01-01T00:00:03.000Z",
                event={**proc, "id": "p4"},
                process={"executable": ["/bin/a", "/tmp/b"]},
            ),
        ],
    )
    got = _attempt(FILTER, path)
    assert got is not None and sorted(a.evidence for a in got) == [("p1",), ("p2",), ("p4",)]
    assert len(_same_as_evaluator(FILTER, path)) == 3


def test_ties_in_an_alerting_group_take_the_numbered_read(tmp_path: Path) -> None:
    """Two events of one time in an alert: only input order ranks them (evidence order, the
    reported key), so the unnumbered result is refused and the numbered read gives the
    evaluator's lines."""
    lines = [
        # one key ("7" as text), held as a number first, then as a string
        _net("2024-01-01T00:00:05.000Z", 7, 60, "z"),
        _net("2024-01-01T00:00:05.000Z", "7", 50, "a"),
    ]
    path = _write(tmp_path, lines)
    assert _attempt(TUMBLING, path) is None
    out = _same_as_evaluator(TUMBLING, path)
    assert '"evidence": ["z", "a"]' in out[0] and '"host.name": 7' in out[0]
    untied = _write(
        tmp_path, [lines[0], lines[1].replace("00:00:05.000", "00:00:06.000")], "u.jsonl"
    )
    assert _attempt(TUMBLING, untied) is not None
    _same_as_evaluator(TUMBLING, untied)


def test_events_without_an_id_are_named_by_the_numbered_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [_net("2024-01-01T00:00:05.000Z", "h1", 60), _net("2024-01-01T00:00:07.000Z", "h1", 50)],
    )
    assert _attempt(TUMBLING, path) is None
    (line,) = _same_as_evaluator(TUMBLING, path)
    assert '"evidence": ["e.jsonl#1", "e.jsonl#2"]' in line


def test_a_bad_time_on_a_record_no_stream_selects_still_stops_the_run(tmp_path: Path) -> None:
    for body in (FILTER, TUMBLING):
        path = _write(
            tmp_path,
            [
                _net("2024-01-01T00:00:05.000Z", "h1", 500, "n1"),
                _doc("2024-01-01 00:00", event={"category": "file", "id": "f1"}),
            ],
        )
        assert _attempt(body, path) is None
        with pytest.raises(ValueError, match=r"not read here: e\.jsonl#2"):
            run_duckdb.run_analytic(_analytic(body), [(path, "ecs-jsonl")])


@pytest.mark.parametrize(
    "odd",
    [
        # an object expected where a string is
        '{"@timestamp": "2024-01-01T00:00:09Z", "host": "h1", "event": {"id": "s1"}}',
        # a key given twice (the typed read refuses it)
        '{"@timestamp": "2024-01-01T00:00:09Z", "event": {"category": "network", "id": "d1"}, '
        '"host": {"name": "h2"}, "source": {"bytes": 1, "bytes": 2}}',
        # a list of objects
        '{"@timestamp": "2024-01-01T00:00:09Z", "host": [{"name": "h1"}], "event": {"id": "l1"}}',
    ],
    ids=["string-for-object", "duplicate-key", "list-of-objects"],
)
def test_documents_the_typed_read_refuses_are_read_by_the_generic_one(
    tmp_path: Path, odd: str
) -> None:
    path = _write(tmp_path, [_net("2024-01-01T00:00:05.000Z", "h1", 500, "n1"), odd])
    assert _attempt(TUMBLING, path) is None
    (line,) = _same_as_evaluator(TUMBLING, path)
    assert '"evidence": ["n1"]' in line


def test_a_json_array_file_takes_the_typed_read(tmp_path: Path) -> None:
    docs = [json.loads(_net("2024-01-01T00:00:05.000Z", "h1", 500, "n1"))]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(docs), "utf-8")
    got = _attempt(TUMBLING, path, "ecs-json")
    assert got is not None and [a.evidence for a in got] == [("n1",)]
    _same_as_evaluator(TUMBLING, path)


def test_fields_the_typed_read_cannot_shape_leave_it_to_the_generic_read() -> None:
    """A key read both as a value and as an object (fields ``host`` and ``host.name``), or two
    keys differing only in case (DuckDB's names are not case-sensitive), have no typed shape."""
    assert (
        duckdb_files._tree([*duckdb_files._keys("host"), *duckdb_files._keys("host.name")]) is None
    )
    assert duckdb_files._tree([("Process", "name"), ("process", "name")]) is None
    tree = duckdb_files._tree(duckdb_files._keys("process.parent.name"))
    assert tree == {
        "process.parent.name": None,
        "process.parent": {"name": None},
        "process": {"parent.name": None, "parent": {"name": None}},
    }
