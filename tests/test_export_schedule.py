"""Scheduled runs reproduce the evaluator: the schedule siemc export derives decides every alert
exactly once (docs/export.md, *Schedules*).

Each fixture is replayed as a SIEM would run the rule: at times ``t`` spaced by the frequency,
the evaluator reads only the events of ``[t - lookback, t)`` (observation end ``t``), and keeps
the alerts decided in that run, ``[t - delay - frequency, t - delay)``. The union over all runs
must equal the evaluator's alerts over the whole fixture.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import Any

import pytest

from backends.base import Artifact
from backends.profiles import load_profile
from backends.splunk.macros import definitions
from compiler import ir
from compiler.canonical import CanonicalAlert, diff, from_evaluator
from compiler.discover import load_catalog
from compiler.engines import run_spl
from compiler.evaluator import Alert, Event, evaluate
from compiler.export import schedule as sch
from compiler.export import splunk as export_splunk
from compiler.export.common import Request, compile_target
from compiler.lower import Loaded
from compiler.testing import fixture_events
from tests.differential_support import events_or_skip

ROOT = Path(__file__).resolve().parent.parent
CATALOG = sorted(load_catalog([ROOT / "analytics"]).loaded, key=lambda x: x.analytic.id)
CASES = [(lo, fx) for lo in CATALOG for fx in lo.fixtures]


def _identity(al: Alert) -> tuple[Any, ...]:
    return (al.key, al.start, al.end, tuple(al.evidence), tuple(al.measures))


def simulate(
    analytic: ir.Analytic, events: list[Event], now: int | None, s: sch.Schedule
) -> list[Alert]:
    """The alerts of runs every ``s.frequency_ms``, each deciding its own slice of time."""
    if not events:
        return []
    ts = [e.ts for e in events]
    f, reach = s.frequency_ms, s.delay_ms + s.frequency_ms + s.span_ms
    end = now if now is not None else ts[-1] + 1
    # Runs sit on the frequency's clock (epoch multiples, as cron runs); only runs with an event
    # in the part of their range a decision can come from can decide anything.
    first = (ts[0] // f + 1) * f
    runs = sorted(
        {t for e in ts for t in range(((e // f) + 1) * f, e + reach + f + 1, f) if first <= t}
    )
    out: dict[tuple[Any, ...], Alert] = {}
    for t in runs:
        if t > end:
            break
        lo, hi = bisect.bisect_left(ts, t - s.lookback_ms), bisect.bisect_left(ts, t)
        for al in evaluate(analytic, events[lo:hi], t):
            d = sch.decision_time(analytic, al.start, al.end)
            if t - s.delay_ms - f <= d < t - s.delay_ms:
                out.setdefault(_identity(al), al)
    # The observation ends: one last run at its end decides whatever is left (as the full
    # evaluation's finish does), reading the same lookback.
    last = max([t for t in runs if t <= end], default=end - f)
    lo = bisect.bisect_left(ts, end - s.lookback_ms)
    for al in evaluate(analytic, events[lo:], now):
        d = sch.decision_time(analytic, al.start, al.end)
        if d >= last - s.delay_ms:
            out.setdefault(_identity(al), al)
    return list(out.values())


@pytest.mark.parametrize("shortest", [0, 5 * 60_000], ids=["any", "sentinel-5m"])
@pytest.mark.parametrize(
    ("loaded", "fx"), CASES, ids=[f"{lo.analytic.id}:{fx.name[:40]}" for lo, fx in CASES]
)
def test_scheduled_runs_give_the_evaluators_alerts(
    loaded: Loaded, fx: ir.Fixture, shortest: int
) -> None:
    """Also under Sentinel's shortest frequency, 5 minutes: shorter windows are then decided
    several at a time (SIEMC-0013's one-minute buckets)."""
    events = events_or_skip(loaded, fx)
    want = sorted(_identity(a) for a in evaluate(loaded.analytic, events, fx.now_ms))
    s = sch.derive(loaded.analytic, min_ms=shortest)
    assert s.frequency_ms >= shortest
    got = sorted(_identity(a) for a in simulate(loaded.analytic, events, fx.now_ms, s))
    assert got == want


def test_a_shorter_lookback_misses_alerts() -> None:
    """The check above can fail: without the span in the lookback, a run every minute cannot see
    the three behaviours that lie 2 minutes apart, and the alert is lost."""
    lo, fx = next(
        (lo, fx)
        for lo, fx in CASES
        if lo.analytic.id == "SIEMC-0006" and fx.kind == "positive" and fx.data == "synthetic"
    )
    events = events_or_skip(lo, fx)
    s = sch.derive(lo.analytic, sch.parse_every("1m"))
    short = sch.Schedule(s.frequency_ms, s.delay_ms, 0, s.history_ms, s.align_ms, s.reason)
    assert evaluate(lo.analytic, events, fx.now_ms)
    assert simulate(lo.analytic, events, fx.now_ms, short) == []


def test_a_frequency_under_the_vendors_shortest_is_refused() -> None:
    lo = next(lo for lo in CATALOG if lo.analytic.id == "SIEMC-0013")
    assert sch.derive(lo.analytic).frequency_ms == 60_000
    assert sch.derive(lo.analytic, min_ms=300_000).frequency_ms == 300_000
    with pytest.raises(sch.ScheduleError, match="shorter than this vendor's shortest"):
        sch.derive(lo.analytic, sch.parse_every("1m"), min_ms=300_000)


def test_every_must_keep_tumbling_windows_whole() -> None:
    lo = next(lo for lo in CATALOG if lo.analytic.id == "SIEMC-0011")
    assert sch.derive(lo.analytic).frequency_ms == sch.HOUR
    assert sch.derive(lo.analytic, sch.parse_every("2h")).frequency_ms == 2 * sch.HOUR
    with pytest.raises(sch.ScheduleError, match="would cut 1h tumbling windows"):
        sch.derive(lo.analytic, sch.parse_every("30m"))


def test_every_must_run_on_a_clock() -> None:
    lo = next(lo for lo in CATALOG if lo.analytic.id == "SIEMC-0006")
    with pytest.raises(sch.ScheduleError, match="cannot be scheduled"):
        sch.derive(lo.analytic, sch.parse_every("7m"))
    with pytest.raises(sch.ScheduleError, match="not a frequency"):
        sch.parse_every("15 minutes")
    s = sch.derive(lo.analytic, sch.parse_every("15m"))
    assert (s.frequency_ms, s.span_ms, s.lookback_ms) == (
        15 * sch.MINUTE,
        2 * sch.MINUTE,
        17 * sch.MINUTE,
    )


def test_lookback_adds_join_lateness_and_history() -> None:
    lo = next(lo for lo in CATALOG if lo.analytic.id == "SIEMC-0003")  # around join within 1d
    s = sch.derive(lo.analytic)
    assert (s.delay_ms, s.span_ms, s.history_ms) == (sch.DAY, sch.HOUR + sch.DAY, 0)
    an = next(lo for lo in CATALOG if lo.analytic.id == "AN1511")  # before join, 30d first_seen
    s = sch.derive(an.analytic)
    assert (s.delay_ms, s.history_ms, s.lookback_ms) == (
        0,
        30 * sch.DAY,
        2 * sch.HOUR + 12 * sch.HOUR + 30 * sch.DAY,
    )


# --------------------------------------------------------------------------- Splunk runs
# The exported Splunk searches, run as the scheduler runs them: each run interprets the search
# over its dispatch range ``[t - range, t)`` (``dispatch.earliest_time = -<range>m@m``,
# ``dispatch.latest_time = @m``) with the SPL interpreter, whose ``addinfo`` reports that range.
# A search that reads its baseline history in the same pass judges only the candidates whose
# whole lookback lies in the range; alert suppression reports a result row found again by an
# overlapping run once. The union must be the search's result over all time, which the engine
# tests compare with the evaluator.
SPLUNK_BASELINES = [
    (lo, fx) for lo, fx in CASES if lo.analytic.baselines and lo.fixtures and fx.data is not None
]


def _splunk_artifact(lo: Loaded) -> Artifact:
    art = compile_target(lo, "splunk", Request((lo,), True, None)).artifact
    assert art is not None
    return art


def splunk_runs(
    lo: Loaded, fx: ir.Fixture, query: str, art: Artifact, s: sch.Schedule, *, all_time: bool
) -> list[CanonicalAlert]:
    interp = run_spl.interpreter()
    profile = load_profile(art.profile)
    events = fixture_events(lo, fx)
    conv = run_spl.ProfileEvents(profile, lo.analytic, interp)
    rows = [conv.event(e) for e in events]
    lookups = run_spl.lookup_definitions(lo, art, interp)
    macros = definitions(art.query, art.profile, lo.analytic.id)
    ts = [e.ts for e in events]
    end = fx.now_ms if fx.now_ms is not None else max(ts, default=0)

    def run(t: int, start: int | None, stop: int | None) -> list[CanonicalAlert]:
        got = interp.execute(query, rows, lookups, t, macros, (start, stop))
        return run_spl.to_alerts(lo.analytic, art.query, got, profile)

    if all_time:
        return run(end, None, None)
    f = s.frequency_ms
    back = -(-export_splunk.search_range_ms(art.query, s) // sch.MINUTE) * sch.MINUTE
    reach = s.delay_ms + f + s.span_ms
    # Runs with an event in the part of their range they report on, and the run right after
    # each event leaves the range: the one that sees the least history of the events after it.
    runs = sorted(
        {t for e in ts for t in range((e // f + 1) * f, e + reach + f + 1, f)}
        | {(e + back) // f * f + f for e in ts}
    )
    # Runs reading the same events give the same verdicts (the searches do not read now()),
    # and the earliest of them judges every candidate the later ones judge: one run per range
    # of events stands for them all.
    assert "now()" not in query
    by_events: dict[tuple[int, int], int] = {}
    for t in (t for t in runs if t < end):
        events_in = (bisect.bisect_left(ts, t - back), bisect.bisect_left(ts, t))
        by_events.setdefault(events_in, t)
    out: dict[CanonicalAlert, None] = {}
    for t in sorted(by_events.values()):
        out.update(dict.fromkeys(run(t, t - back, t)))  # suppression: one alert per result row
    # the observation ends: one last run reads the rest (as the evaluator's finish does)
    out.update(dict.fromkeys(run(end, end - back, None)))
    return list(out)


@pytest.mark.parametrize(
    ("loaded", "fx"),
    SPLUNK_BASELINES,
    ids=[f"{lo.analytic.id}:{fx.name[:40]}" for lo, fx in SPLUNK_BASELINES],
)
def test_scheduled_splunk_baselines_give_the_all_time_result(
    loaded: Loaded, fx: ir.Fixture
) -> None:
    art = _splunk_artifact(loaded)
    s = sch.derive(loaded.analytic)
    whole = splunk_runs(loaded, fx, art.query, art, s, all_time=True)
    got = splunk_runs(loaded, fx, art.query, art, s, all_time=False)
    assert sorted(got, key=repr) == sorted(set(whole), key=repr)
    if not art.approximations:
        want = [
            from_evaluator(a)
            for a in evaluate(loaded.analytic, fixture_events(loaded, fx), fx.now_ms)
        ]
        assert diff(want, got).equal


PARTIAL_HISTORY = """\
id: TEST-FIRST-SEEN
title: First run of a program on a host in a day
description: test analytic whose history reaches further back than the fixture's runs see
attack: {techniques: [T1059.004]}
platforms: [linux]
severity: low
streams:
  proc:
    logsource: {category: process_creation, product: linux}
detect:
  match: proc
baseline:
  - first_seen: {stream: proc, keys: [host.name, process.name], lookback: 1d}
tests:
  - name: curl at 00:00, again at 20:00 (seen) and at 23:00 on the next day (new)
    kind: positive
    data: synthetic
    events:
%s
    expect:
      - key: {}
        evidence: [p0]
      - key: {}
        evidence: [p2]
"""


def test_scheduled_splunk_first_seen_needs_the_whole_history(tmp_path: Path) -> None:
    """The run right after the 00:00 event leaves its range sees the 20:00 event without its
    history: judged there, it would look new. The search judges only candidates whose whole
    lookback lies in the run's range (addinfo info_min_time), so scheduled runs give the
    evaluator's two alerts; the same search without that test gives a third, false one."""
    day = 86_400_000
    t0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
    evs = [(f"p{i}", t0 + off) for i, off in enumerate((0, 20 * 3_600_000, day + 23 * 3_600_000))]
    lines = "\n".join(
        f'      - {{event.id: {eid}, "@timestamp": {ts}, event.category: process, '
        f"event.type: start, host.os.type: linux, host.name: web01, process.name: curl}}"
        for eid, ts in evs
    )
    (tmp_path / "a.yml").write_text(PARTIAL_HISTORY % lines)
    cat = load_catalog([tmp_path])
    assert not cat.errors and not cat.diagnostics
    (lo,) = cat.loaded
    (fx,) = lo.fixtures
    art = _splunk_artifact(lo)
    assert not art.approximations
    s = sch.derive(lo.analytic)
    want = [from_evaluator(a) for a in evaluate(lo.analytic, fixture_events(lo, fx), fx.now_ms)]
    assert len(want) == 2
    got = splunk_runs(lo, fx, art.query, art, s, all_time=False)
    assert diff(want, got).equal
    guard = " AND _time-86400>=info_min_time"
    assert guard in art.query
    unguarded = splunk_runs(lo, fx, art.query.replace(guard, ""), art, s, all_time=False)
    assert len(unguarded) == 3 and diff(want, unguarded).extra[0].start == evs[1][1]
