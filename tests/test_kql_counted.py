"""Counted sequence steps on KQL (backends/sentinel/counted.py): the closed form the scan
computes is the evaluator's EQL state machine for a run followed by one step, layouts it does not
cover are E200, and the engine catches a query that breaks the idiom."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.base import Artifact
from compiler import canonical, ir
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_kql
from compiler.evaluator.correlation import SequenceDetector
from compiler.evaluator.model import Alert, Event
from compiler.lower import Loaded, load_text
from tests.ci_support import skip_unless_ci
from tests.differential_support import evaluator_alerts, find_fixture

ROOT = Path(__file__).resolve().parent.parent
RANK = {"F": 0, "S": 1, "U": 2}  # the scan's sort of one key's rows at one millisecond


# --------------------------------------------------------------------------- the closed form
def scan_model(
    rows: list[tuple[int, str, str, str]], n: int, maxspan: int
) -> list[tuple[str, int, int, tuple[str, ...]]]:
    """What the query computes, transcribed: per key, rows sorted by (time, run first), the
    latest n run events, and whether the row before was a run event. Rows are (ts, stream, key,
    id); alerts are (key, start, end, evidence)."""
    out = []
    state: dict[str, tuple[list[tuple[int, str]], bool]] = {}
    for ts, stream, key, eid in rows:
        runs, after = state.get(key, ([], False))
        if stream == "F":
            state[key] = ([*runs, (ts, eid)][-n:], True)
        elif stream == "S":
            if after and len(runs) == n and ts - runs[0][0] <= maxspan:
                out.append((key, runs[0][0], ts, (*(e for _, e in runs), eid)))
            state[key] = (runs, False)
        else:
            state[key] = ([], False)
    return out


def evaluator(
    rows: list[tuple[int, str, str, str]], n: int, maxspan: int, until: bool
) -> list[tuple[str, int, int, tuple[str, ...]]]:
    keys = ("user.name",)
    steps = (ir.Step("f", "F", keys, count=n), ir.Step("s", "S", keys))
    u = ir.Step("u", "U", keys) if until else None
    det = SequenceDetector("T", ir.Sequence(steps, maxspan, u))
    alerts: list[Alert] = []
    for seq, (ts, stream, key, eid) in enumerate(rows):
        alerts += det.push(stream, Event(ts, seq, eid, {"user.name": key}))
    alerts += det.finish(None)
    return [(str(dict(a.key)["user.name"]), a.start, a.end, a.evidence) for a in alerts]


def random_rows(rng: random.Random, until: bool) -> list[tuple[int, str, str, str]]:
    streams = "FFFSU" if until else "FFFS"
    rows = [
        (rng.randrange(60), rng.choice(streams), rng.choice("ab"), f"e{i}")
        for i in range(rng.randrange(1, 40))
    ]
    # the order the scan reads: time, then run events, next-step events, until events
    return sorted(rows, key=lambda r: (r[0], RANK[r[1]]))


@pytest.mark.parametrize("until", [False, True])
def test_the_scan_is_the_evaluators_state_machine(until: bool) -> None:
    """Alerts, times and evidence agree on 1,500 random inputs (ties included, fed to the
    evaluator in the order the scan sorts them)."""
    rng = random.Random(18)
    alerts = 0
    for _ in range(1500):
        n, maxspan = rng.choice([2, 3, 5]), rng.choice([0, 4, 10, 30])
        rows = random_rows(rng, until)
        want = evaluator(rows, n, maxspan, until)
        assert scan_model(rows, n, maxspan) == want, (n, maxspan, rows)
        alerts += len(want)
    assert alerts > 500  # the inputs exercise alerts, not only silence


def test_an_order_kql_does_not_have_decides_the_alert() -> None:
    """Why the ties are declared: two inputs with the same rows, listed in another order at one
    millisecond, alert differently in the evaluator, and a KQL table is the same for both."""
    before = [(0, "F", "a", "f1"), (1, "F", "a", "f2"), (1, "S", "a", "s1")]
    after = [before[0], before[2], before[1]]
    assert evaluator(before, 2, 10, False) == [("a", 0, 1, ("f1", "f2", "s1"))]
    assert evaluator(after, 2, 10, False) == []


# --------------------------------------------------------------------------- layouts
_HEAD = """id: T-CNT
title: counted
description: counted layouts
attack: {techniques: [T1110]}
platforms: [windows]
severity: low
streams:
  failed:
    logsource: {product: windows, service: security}
    where: {event.code: 4625}
  logon:
    logsource: {product: windows, service: security}
    where: {event.code: 4624}
  other:
    logsource: {product: windows, service: security}
    where: {user.name: admin}
  dns:
    logsource: {product: zeek, service: dns}
    where: {zeek.dns.query: a.example}
  dns_ok:
    logsource: {product: zeek, service: dns}
    where: {zeek.dns.query: b.example}
detect:
  sequence:
"""


def _refusal(body: str) -> str:
    loaded = load_text("t.yml", _HEAD + body)
    pair = compile_pair(loaded, "kql", profile="asim", allow_approximate=True)
    assert pair.artifact is None
    (d,) = pair.diagnostics
    assert d.code == "E200", d
    return d.message


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (
            """    by: [host.name]
    maxspan: 1m
    steps:
      - {stream: logon, as: s}
      - {stream: failed, as: f, count: {gte: 3}}
""",
            "only a counted first step followed by one uncounted step",
        ),
        (
            """    by: [host.name]
    maxspan: 1m
    steps:
      - {stream: failed, as: f, count: {gte: 3}}
      - {stream: logon, as: s}
      - {stream: failed, as: g}
""",
            "only a counted first step followed by one uncounted step",
        ),
        (
            """    by: [host.name]
    maxspan: 1m
    steps:
      - {stream: failed, as: f, count: {gte: 3}}
      - {stream: other, as: s}
""",
            "an event can be in both streams 'failed' and 'other'",
        ),
        (
            """    by: [host.name]
    maxspan: 1m
    steps:
      - {stream: failed, as: f, count: {gte: 3}}
      - {stream: logon, as: s}
    until: {stream: other}
""",
            "an event can be in both streams 'failed' and 'other'",
        ),
        (
            """    by: [zeek.dns.answers]
    maxspan: 1m
    steps:
      - {stream: dns, as: f, count: {gte: 3}}
      - {stream: dns_ok, as: s}
""",
            "'answers' puts one event under several keys",
        ),
    ],
    ids=["run-second", "three-steps", "overlapping", "overlapping-until", "multi-valued"],
)
def test_layouts_the_scan_does_not_cover_are_refused_with_the_reason(body: str, why: str) -> None:
    assert why in _refusal(body)


def test_the_run_first_layout_compiles_with_the_ties_declared() -> None:
    loaded = load_text(
        "t.yml",
        _HEAD
        + """    by: [host.name]
    maxspan: 1m
    steps:
      - {stream: failed, as: f, count: {gte: 3}}
      - {stream: logon, as: s}
""",
    )
    art = compile_pair(loaded, "kql", profile="asim", allow_approximate=True).artifact
    assert art is not None
    assert [(a.construct, a.direction) for a in art.approximations] == [
        ("counted sequence ties", "mixed")
    ]
    assert "sort by __ms asc, __step asc" in art.query
    assert "array_slice(array_concat(s.__runs, pack_array(__ms)), -3, -1)" in art.query
    # MDE has no Windows Security log: the profile says so, the pair is not compiled there
    mde = compile_pair(loaded, "kql", profile="mde", allow_approximate=True)
    assert mde.artifact is None and "no Windows Security event log" in mde.diagnostics[0].message


# --------------------------------------------------------------------------- mutations
def _engine() -> None:
    try:
        run_kql._require()
    except run_kql.EngineUnavailable as exc:
        skip_unless_ci(str(exc))


def _cnt1() -> Iterator[tuple[Loaded, ir.Fixture]]:
    cat = load_catalog([ROOT / "tests" / "differential" / "kql"]).loaded
    for fx in next(lo for lo in cat if lo.analytic.id == "D-KQL-CNT1").fixtures:
        yield find_fixture(cat, "D-KQL-CNT1", fx.name)


def _diffs(text: str, wrong: str) -> list[canonical.Diff]:
    out = []
    for loaded, fx in _cnt1():
        art = compile_pair(loaded, "kql", profile="asim", allow_approximate=True).artifact
        assert art is not None and text in art.query
        assert canonical.diff(evaluator_alerts(loaded, fx), run_kql.run(loaded, fx, art)).equal
        bad = Artifact(**{**art.__dict__, "query": art.query.replace(text, wrong)})
        out.append(canonical.diff(evaluator_alerts(loaded, fx), run_kql.run(loaded, fx, bad)))
    return out


def test_dropping_the_previous_step_event_test_is_caught() -> None:
    """Without it a second logon right after an alert alerts again (a6 at 34 s)."""
    _engine()
    d = _diffs("__hit = __step == 1 and s.__after", "__hit = __step == 1")
    extra = [a.describe() for x in d for a in x.extra]
    assert extra == ["D-KQL-CNT1 {host.name='dc1', source.ip='10.0.0.1'} "
                     "[1704067220000..1704067234000]"], extra  # fmt: skip
    assert not any(x.missing for x in d)


def test_keeping_the_first_run_events_instead_of_the_latest_is_caught() -> None:
    """The run that completes is the latest three failures (EQL's runs): the first three of
    dc1's five span more than 30 s to each logon, so both of its alerts are lost."""
    _engine()
    d = _diffs("pack_array(__ms)), -3, -1)", "pack_array(__ms)), 0, 2)")
    key = "D-KQL-CNT1 {host.name='dc1', source.ip='10.0.0.1'}"
    assert [a.describe() for x in d for a in x.missing] == [
        f"{key} [1704067220000..1704067233000]",
        f"{key} [1704067231000..1704067236000]",
    ]
    assert not any(x.extra for x in d)
