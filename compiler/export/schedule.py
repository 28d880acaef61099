"""Scheduled-rule timing derived from an analytic: how often a rule runs and how far back it reads.

A SIEM runs a detection every ``frequency`` over the data of the last ``lookback``. siemc's model
of an exact schedule (docs/export.md, *Schedules*):

* Every alert has a **decision time**: the time after which no later event can change it — the
  last evidence event (match, sequence, co-occurrence, sliding window), the end of a tumbling
  window, ``first + within`` for an absence.
* The run at time ``t`` decides the alerts whose decision time lies in
  ``[t - delay - frequency, t - delay)``; consecutive runs tile time, so every alert is decided
  exactly once (no gap, no double alert). ``delay`` is the stream lateness of joins whose partner
  may come later (``around``/``after``): a run waits that long for partners.
* To decide such an alert the run must see its whole state: the correlation ``span`` (maxspan,
  co-occurrence or absence window, window size) before the decision time, and the baselines'
  ``history`` before that. Hence ``lookback = frequency + delay + span + history``.

``tests/test_export_schedule.py`` simulates these runs over every fixture with the evaluator and
gets exactly the evaluator's alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compiler import ir

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
DEFAULT_FREQUENCY = 5 * MINUTE  # the smallest interval Sentinel allows; fine for Splunk/Elastic

_UNITS = {"m": MINUTE, "h": HOUR, "d": DAY}


class ScheduleError(ValueError):
    """A schedule that would miss or repeat decisions (or that no SIEM scheduler can run)."""


@dataclass(frozen=True)
class Schedule:
    frequency_ms: int
    delay_ms: int  # join lateness: decisions wait this long for late partners
    span_ms: int  # state before a decision time that the decision reads
    history_ms: int  # longest baseline lookback
    align_ms: int  # tumbling window size the frequency must be a multiple of (0: none)
    reason: str  # which construct set the numbers, for the docs and package notes

    @property
    def lookback_ms(self) -> int:
        return self.frequency_ms + self.delay_ms + self.span_ms + self.history_ms

    @property
    def detection_lookback_ms(self) -> int:
        """The range without the baseline history (for targets whose queries read history in a
        subsearch of their own, as the Splunk backend's baselines do)."""
        return self.frequency_ms + self.delay_ms + self.span_ms


def parse_every(text: str) -> int:
    """``15m``, ``1h``, ``1d`` -> milliseconds (whole minutes: the schedulers' resolution)."""
    m = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text)
    if not m or int(m.group(1)) == 0:
        raise ScheduleError(
            f"'{text}' is not a frequency: write minutes, hours or days (15m, 1h, 1d)"
        )
    return int(m.group(1)) * _UNITS[m.group(2)]


def cron_ok(freq_ms: int) -> bool:
    """Whether a cron schedule can run exactly every ``freq_ms``: minutes dividing an hour,
    hours dividing a day, or one day (cron fields restart every hour and every day)."""
    if freq_ms % MINUTE:
        return False
    minutes = freq_ms // MINUTE
    if minutes < 60:
        return 60 % minutes == 0
    if freq_ms % HOUR == 0 and freq_ms < DAY:
        return 24 % (freq_ms // HOUR) == 0
    return freq_ms == DAY


def _lateness(analytic: ir.Analytic) -> int:
    """Longest time a stream's output waits for a later join partner (docs/semantics.md)."""
    late: dict[str, int] = {}
    for s in analytic.streams:  # topologically ordered
        base = late.get(s.source, 0) if isinstance(s.source, str) else 0
        if s.join is not None:
            extra = 0 if s.join.direction == "before" else s.join.within_ms
            base = max(base, late.get(s.join.stream, 0) + extra)
        late[s.name] = base
    return max(late.values(), default=0)


def _reach(analytic: ir.Analytic) -> int:
    """How far before an event its join may find the partner (``before``/``around``): a run
    must read that much more data so that events near the start of its range are joined."""
    return max(
        (
            s.join.within_ms
            for s in analytic.streams
            if s.join is not None and s.join.direction != "after"
        ),
        default=0,
    )


def _span(d: ir.Detection) -> tuple[int, int, str]:
    """(span, alignment, reason) of a detection."""
    if isinstance(d, ir.Match):
        return 0, 0, "single-event match: each event is decided when it arrives"
    if isinstance(d, ir.Sequence):
        return d.maxspan_ms, 0, "sequence: a run reads one maxspan before each last step"
    if isinstance(d, ir.Cooccurrence):
        return d.window_ms, 0, "co-occurrence: a run reads one window before each completing event"
    if isinstance(d, ir.Absence):
        return d.within_ms, 0, "absence: decided at first + within, so a run reads `within` back"
    if d.window.kind == "tumbling":
        return (
            d.window.size_ms,
            d.window.size_ms,
            "tumbling window: runs decide whole epoch-aligned windows once they have ended",
        )
    return d.window.size_ms, 0, "sliding window: a run reads one window before each event"


def _history(analytic: ir.Analytic) -> int:
    return max((b.lookback_ms for b in analytic.baselines), default=0)


def derive(analytic: ir.Analytic, every_ms: int | None = None, min_ms: int = 0) -> Schedule:
    """The schedule of an analytic; ``every_ms`` overrides the frequency after checking that it
    keeps every decision exactly once. ``min_ms`` is the vendor's shortest frequency (Sentinel
    runs a scheduled rule at most every 5 minutes): a shorter window is then decided several at
    a time, by the smallest multiple of its size that the vendor allows."""
    span, align, reason = _span(analytic.detection)
    if every_ms is None:
        freq = align if align else DEFAULT_FREQUENCY
        if freq < min_ms:
            freq = -(-min_ms // freq) * freq
        if align and not cron_ok(freq):
            # A window size a cron schedule cannot follow (7m, 5h): run once per day, which
            # is a multiple of every window size that divides a day.
            freq = DAY if DAY % align == 0 else freq
    else:
        if every_ms < min_ms:
            raise ScheduleError(
                f"every {fmt_duration(every_ms)} is shorter than this vendor's shortest "
                f"frequency, {fmt_duration(min_ms)}"
            )
        freq = every_ms
        if align and freq % align:
            raise ScheduleError(
                f"a run every {fmt_duration(freq)} would cut {fmt_duration(align)} tumbling "
                f"windows: runs must decide whole windows (use a multiple of "
                f"{fmt_duration(align)})"
            )
    if not cron_ok(freq) and freq % DAY:
        raise ScheduleError(
            f"every {fmt_duration(freq)} cannot be scheduled on a fixed clock (cron): use minutes "
            "dividing an hour, hours dividing a day, or whole days"
        )
    reach = _reach(analytic)
    if reach:
        reason += f"; joins read up to {fmt_duration(reach)} before an event"
    return Schedule(freq, _lateness(analytic), span + reach, _history(analytic), align, reason)


def fmt_duration(ms: int) -> str:
    """Shortest exact spelling in d/h/m/s/ms (``90m`` -> ``90m``, ``86400000`` -> ``1d``)."""
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def decision_time(analytic: ir.Analytic, start: int, end: int) -> int:
    """The decision time of an alert with these bounds, as the last instant of data it reads:
    a tumbling window ``[s, e)`` is decided by its last millisecond, an absence at
    ``first + within`` (when the observation reaches it)."""
    d = analytic.detection
    if isinstance(d, ir.Aggregate) and d.window.kind == "tumbling":
        return end - 1
    if isinstance(d, ir.Absence):
        return start + d.within_ms  # a `missing` event at exactly first + within still counts
    return end
