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

from compiler import ir
from compiler.discover import load_catalog
from compiler.evaluator import Alert, Event, evaluate
from compiler.export import schedule as sch
from compiler.lower import Loaded
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
