"""``siemc run`` streams its inputs (compiler.runner.run_files, compiler.evaluator.feed) and must
give exactly the alerts of the reference path that loads and sorts every event first
(compiler.runner.load_sorted), on every bundled fixture and differential catalog, on files out
of order (sorted on disk), and on several files merged."""

from __future__ import annotations

import json
import marshal
import random
from pathlib import Path
from typing import Any

import pytest

from compiler import ir
from compiler.discover import load_catalog
from compiler.evaluator import Evaluation, Event, evaluate, feed
from compiler.lower import Loaded, load_text
from compiler.runner import alert_json, load_sorted, run, run_files
from compiler.testing import MissingData, resolve_input
from tests.ci_support import skip_unless_ci

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = [ROOT / "analytics", *sorted((ROOT / "tests" / "differential").iterdir())]


def _catalog() -> list[Loaded]:
    out: list[Loaded] = []
    for folder in CATALOGS:
        out.extend(load_catalog([folder]).loaded)
    return out


CATALOG = _catalog()
CASES = [(lo, fx) for lo in CATALOG for fx in lo.fixtures]


def _inputs(lo: Loaded, fx: ir.Fixture, tmp: Path) -> list[tuple[Path, str]]:
    """The fixture's files, then its inline events as a JSON Lines file (as siemc run sees)."""
    inputs: list[tuple[Path, str]] = []
    for inp in fx.inputs:
        try:
            inputs.append((resolve_input(inp.file, lo.analytic.path, lo.root), inp.format))
        except MissingData:
            skip_unless_ci(f"real data missing: {inp.file}")
    if fx.events:
        inline = tmp / "inline.jsonl"
        inline.write_text("".join(json.dumps(e) + "\n" for e in fx.events), encoding="utf-8")
        inputs.append((inline, "ecs"))
    return inputs


def _reference(analytics: list[ir.Analytic], inputs: list[tuple[Path, str]], now: Any) -> str:
    return "".join(alert_json(a) + "\n" for a in run(analytics, load_sorted(inputs), now))


def _streamed(
    analytics: list[ir.Analytic], inputs: list[tuple[Path, str]], now: Any, **kw: Any
) -> str:
    return "".join(alert_json(a) + "\n" for a in run_files(analytics, inputs, now, **kw))


def test_the_catalogs_have_fixtures() -> None:
    assert len(CASES) > 100
    assert any(fx.inputs for _, fx in CASES) and any(fx.events for _, fx in CASES)


@pytest.mark.parametrize(
    ("lo", "fx"), CASES, ids=[f"{lo.analytic.id}:{fx.name[:40]}" for lo, fx in CASES]
)
def test_streaming_gives_the_reference_alerts(lo: Loaded, fx: ir.Fixture, tmp_path: Path) -> None:
    inputs = _inputs(lo, fx, tmp_path)
    want = _reference([lo.analytic], inputs, fx.now_ms)
    assert _streamed([lo.analytic], inputs, fx.now_ms) == want
    # the same files out of order: each is sorted on disk in runs of 2 events
    shuffled = []
    for i, (path, fmt) in enumerate(inputs):
        if fmt != "ecs":
            shuffled.append((path, fmt))
            continue
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        random.Random(i).shuffle(lines)
        copy = tmp_path / f"shuffled{i}-{path.name}"
        copy.write_text("".join(lines), encoding="utf-8")
        shuffled.append((copy, fmt))
    assert _streamed([lo.analytic], shuffled, fx.now_ms, run_events=2) == _reference(
        [lo.analytic], shuffled, fx.now_ms
    )


@pytest.mark.parametrize("folder", CATALOGS, ids=[f.name for f in CATALOGS])
def test_every_analytic_of_a_catalog_in_one_pass(folder: Path, tmp_path: Path) -> None:
    """Several analytics share one reading: an event skipped by all of them only moves time."""
    cases = [(lo, fx) for lo, fx in CASES if str(lo.analytic.path).startswith(str(folder))]
    analytics = sorted(
        {lo.analytic.id: lo.analytic for lo, _ in cases}.values(), key=lambda a: a.id
    )
    for k, (lo, fx) in enumerate(cases[:12]):
        sub = tmp_path / str(k)
        sub.mkdir()
        inputs = _inputs(lo, fx, sub)
        assert _streamed(analytics, inputs, None) == _reference(analytics, inputs, None)


# --------------------------------------------------------------------------- order, merging
SEQ = """\
id: T-SEQ
title: t
description: t
attack: {techniques: [T1059]}
platforms: [linux]
severity: low
streams:
  a: {logsource: {category: process_creation}, where: {process.name: a}}
  b: {logsource: {category: process_creation}, where: {process.name: b}}
detect:
  sequence:
    by: [host.name]
    maxspan: 1m
    steps: [{stream: a, as: a}, {stream: b, as: b}]
"""

ABSENCE = """\
id: T-ABS
title: t
description: t
attack: {techniques: [T1059]}
platforms: [linux]
severity: low
streams:
  a: {logsource: {category: process_creation}, where: {process.name: a}}
  b: {logsource: {category: process_creation}, where: {process.name: b}}
detect:
  absence: {by: [host.name], first: a, missing: b, within: 1m}
"""


def _analytic(text: str) -> ir.Analytic:
    return load_text("t.yml", text).analytic


def _doc(sec: int, name: str, eid: str, host: str = "h") -> dict[str, Any]:
    return {
        "@timestamp": f"2024-01-01T00:{sec // 60:02d}:{sec % 60:02d}Z",
        "event": {"id": eid, "category": "process", "type": "start"},
        "process": {"name": name},
        "host": {"name": host},
    }


def _write(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def test_files_merge_in_time_order_and_ties_keep_the_file_order(tmp_path: Path) -> None:
    # b in the first file and a in the second, both at second 5: file order makes b first, so
    # the sequence a -> b needs the later b of the first file
    one = _write(tmp_path / "one.jsonl", [_doc(5, "b", "b1"), _doc(7, "b", "b2")])
    two = _write(tmp_path / "two.jsonl", [_doc(5, "a", "a1"), _doc(6, "x", "x1")])
    inputs = [(one, "ecs"), (two, "ecs")]
    alerts = run_files([_analytic(SEQ)], inputs, None)
    assert [a.evidence for a in alerts] == [("a1", "b2")]
    swapped = run_files([_analytic(SEQ)], inputs[::-1], None)
    assert [a.evidence for a in swapped] == [("a1", "b1")]
    assert _streamed([_analytic(SEQ)], inputs, None) == _reference([_analytic(SEQ)], inputs, None)


def test_a_file_out_of_order_is_sorted_and_presorted_refuses_it(tmp_path: Path) -> None:
    docs = [_doc(9, "b", "b1"), _doc(1, "a", "a1"), _doc(5, "b", "b0")]
    path = _write(tmp_path / "late.jsonl", docs)
    alerts = run_files([_analytic(SEQ)], [(path, "ecs")], None)
    assert [a.evidence for a in alerts] == [("a1", "b0")]
    with pytest.raises(ValueError, match=r"late\.jsonl: record 2 is out of order.*--presorted"):
        run_files([_analytic(SEQ)], [(path, "ecs")], None, presorted=True)


def test_out_of_order_files_spill_sorted_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(3)
    docs = [_doc(s, rng.choice("abx"), f"e{s}", host=f"h{s % 3}") for s in range(200)]
    rng.shuffle(docs)
    path = _write(tmp_path / "shuffled.jsonl", docs)
    spilled: list[int] = []
    real_spill = feed._spill

    def spy(target: Path, records: Any, consumed: list[Path] | None = None) -> Path:
        out = real_spill(target, records, consumed)
        spilled.append(len(consumed or ()))
        return out

    monkeypatch.setattr(feed, "_spill", spy)
    monkeypatch.setattr(feed, "MAX_FAN_IN", 4)  # also merge runs in rounds
    records = list(feed.sorted_records(0, path, "ecs", None, run_events=16))
    assert len(spilled) > 13 and max(spilled) == 4  # 13 runs of 16, and rounds of 4 merged
    assert [(ts, n) for ts, _, n, _ in records] == sorted((ts, n) for ts, _, n, _ in records)
    assert len(records) == 200
    analytic = _analytic(SEQ)
    assert _streamed([analytic], [(path, "ecs")], None, run_events=16) == _reference(
        [analytic], [(path, "ecs")], None
    )


def test_reading_is_lazy(tmp_path: Path) -> None:
    """Records come one by one as the file is read: a broken line further down is not reached
    before the records above it are used (nothing reads the whole file first)."""
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(_doc(1, "a", "a1")) + "\n{broken\n", encoding="utf-8")
    records = feed.file_records(0, path, "ecs", None)
    first = next(records)
    assert first[0] == 1_704_067_201_000 and first[3] is not None and first[3].id == "a1"
    with pytest.raises(ValueError, match=r"big\.jsonl:2: invalid JSON"):
        next(records)


def test_events_outside_every_stream_only_move_time(tmp_path: Path) -> None:
    """The entry condition drops events before they are built; the evaluator still learns their
    time: here an unrelated event two minutes later closes the absence window."""
    docs = [_doc(1, "a", "a1"), _doc(125, "x", "x1", host="other")]
    path = _write(tmp_path / "abs.jsonl", docs)
    analytic = _analytic(ABSENCE)
    records = list(feed.file_records(0, path, "ecs", Evaluation(analytic).admits))
    assert [r[3] is None for r in records] == [False, True]
    alerts = run_files([analytic], [(path, "ecs")], None)
    assert [a.evidence for a in alerts] == [("a1",)]
    assert _streamed([analytic], [(path, "ecs")], None) == _reference(
        [analytic], [(path, "ecs")], None
    )


def test_skip_equals_pushing_an_event_that_reaches_no_stream() -> None:
    analytic = _analytic(ABSENCE)
    flat = [
        Event(
            1000,
            0,
            "a1",
            {
                "event.category": "process",
                "event.type": "start",
                "process.name": "a",
                "host.name": "h",
            },
        ),
        Event(90_000, 1, "n1", {"event.category": "network"}),
    ]
    pushed = evaluate(analytic, flat)
    run_ = Evaluation(analytic)
    run_.push(flat[0])
    assert not run_.admits(flat[1].fields)
    run_.skip(90_000, 1)
    assert run_.finish() == pushed and len(pushed) == 1
    with pytest.raises(ValueError, match="out of order"):
        other = Evaluation(analytic)
        other.skip(5, 3)
        other.skip(4, 4)


def test_alerts_taken_as_they_come_sort_into_finish_order() -> None:
    from compiler.evaluator.engine import alert_sort_key

    analytic = _analytic(SEQ)
    names = ["a", "b", "a", "a", "b", "b", "a", "b"]
    events = [
        Event(
            1000 * (i // 2),
            i,
            f"e{i}",
            {
                "event.category": "process",
                "event.type": "start",
                "process.name": n,
                "host.name": f"h{i % 2}",
            },
        )
        for i, n in enumerate(names)
    ]
    whole = evaluate(analytic, events)
    run_ = Evaluation(analytic)
    taken = []
    for e in events:
        run_.push(e)
        taken.extend(run_.take_alerts())
    assert taken and run_.alerts == []
    rest = run_.finish()
    assert sorted(taken + rest, key=alert_sort_key) == whole and len(whole) >= 2


OTRF = ROOT / "analytics" / "fixtures" / "otrf"
RAW_FILES = [
    ("otrf_lsass06_payload_sysmon.jsonl", "sysmon"),
    ("otrf_lsass06_zeek_conn.log", "zeek"),
    ("otrf_log4shell_linux_sysmon_syslog.jsonl", "sysmon"),
    ("otrf_log4shell_linux_auoms.jsonl", "auditd"),
    ("UTICA-ONE-DRIVE_ssl.log", "zeek"),
]


@pytest.mark.parametrize(("name", "fmt"), RAW_FILES)
def test_raw_formats_sort_on_disk_as_in_memory(name: str, fmt: str) -> None:
    path = OTRF / name
    assert path.is_file(), f"{path}: the OTRF extracts ship with the repository"
    want = load_sorted([(path, fmt)])
    got = [ev for _, _, _, ev in feed.sorted_records(0, path, fmt, None, run_events=16)]
    assert [(e.ts, e.id, e.fields) for e in got if e is not None] == [
        (e.ts, e.id, e.fields) for e in want
    ]


def test_alert_lines_spill_sorted_runs_and_equal_run_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compiler import runner

    rng = random.Random(5)
    docs = [_doc(s, rng.choice("ab"), f"e{s}", host=f"h{s % 4}") for s in range(300)]
    path = _write(tmp_path / "many.jsonl", docs)
    analytics = [_analytic(SEQ), _analytic(ABSENCE)]
    want = _reference(analytics, [(path, "ecs")], None)
    spilled: list[int] = []
    real_dump = marshal.dump

    def spy(item: Any, fh: Any) -> None:
        spilled.append(1)
        real_dump(item, fh)

    monkeypatch.setattr(marshal, "dump", spy)
    lines = runner.alert_lines(analytics, [(path, "ecs")], None, sink_chars=700)
    assert spilled, "alerts beyond 700 characters per analytic are spilled while evaluating"
    got = "".join(line + "\n" for line in lines)
    assert got == want and want.count("\n") > 30
    assert _streamed(analytics, [(path, "ecs")], None) == want
