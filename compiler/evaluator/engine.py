"""The reference evaluator's driver: events in, alerts out (docs/semantics.md "Evaluation").

``evaluate`` routes every event through the analytic's streams (:mod:`.streams`), feeds the
detection operator and the baseline history in ``(ts, seq, stream)`` order, moves the watermark,
filters alert candidates through the ``first_seen``/``rarity`` baselines and returns the alerts
in a deterministic order. State is bounded by the open windows and keys, never by the number of
events, so the same code runs fixtures and the 1M-event benchmark.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any

from compiler import ir
from compiler.evaluator.aggregate import AggregateDetector
from compiler.evaluator.baseline import HistoryIndex
from compiler.evaluator.correlation import (
    AbsenceDetector,
    CooccurrenceDetector,
    SequenceDetector,
)
from compiler.evaluator.model import Alert, Detector, Event
from compiler.evaluator.streams import Pipe, StreamSet
from compiler.inputs import flatten
from compiler.timeutil import parse_timestamp

__all__ = [
    "Evaluation",
    "MatchDetector",
    "evaluate",
    "make_events",
    "merge_events",
    "to_event",
]

_NO_ALERTS: tuple[Alert, ...] = ()
_NEVER = 2**63  # a watermark no input reaches


# --------------------------------------------------------------------------- detectors
class MatchDetector:
    """``match: stream``: every event of the stream is an alert (no key, start = end = ts)."""

    push_advances = True

    def __init__(self, analytic_id: str, node: ir.Match) -> None:
        self.analytic = analytic_id
        self.stream = node.stream

    def push(self, stream: str, event: Event) -> Iterable[Alert]:
        if stream != self.stream:
            return _NO_ALERTS
        return (
            Alert(
                analytic=self.analytic,
                key=(),
                start=event.ts,
                end=event.ts,
                measures=(),
                evidence=(event.id,),
                steps=(("", event.fields),),
            ),
        )

    def advance(self, watermark: int) -> Iterable[Alert]:
        return _NO_ALERTS

    def next_wake(self) -> int:
        return _NEVER

    def finish(self, now: int | None) -> Iterable[Alert]:
        return _NO_ALERTS

    def state_size(self) -> int:
        return 0


def build_detector(analytic: ir.Analytic) -> Detector:
    node = analytic.detection
    deviations = tuple(b for b in analytic.baselines if isinstance(b, ir.Deviation))
    if deviations and not isinstance(node, ir.Aggregate):
        raise ValueError("a deviation baseline needs an aggregate detection")
    if isinstance(node, ir.Match):
        return MatchDetector(analytic.id, node)
    if isinstance(node, ir.Sequence):
        return SequenceDetector(analytic.id, node)
    if isinstance(node, ir.Cooccurrence):
        return CooccurrenceDetector(analytic.id, node)
    if isinstance(node, ir.Absence):
        return AbsenceDetector(analytic.id, node)
    lookups = {lk.name: lk for lk in analytic.lookups}
    return AggregateDetector(analytic.id, node, deviations, lookups)


def detection_streams(node: ir.Detection) -> list[str]:
    """The streams a detection reads, in a stable order."""
    if isinstance(node, ir.Match):
        names = [node.stream]
    elif isinstance(node, ir.Sequence):
        steps = [*node.steps, *([node.until] if node.until else [])]
        names = [s.stream for s in steps]
    elif isinstance(node, ir.Cooccurrence):
        names = [s.stream for s in node.members]
    elif isinstance(node, ir.Absence):
        names = [node.first.stream, node.missing.stream]
    else:
        names = [node.stream]
    return list(dict.fromkeys(names))


def detection_span(node: ir.Detection) -> int:
    """How far before the watermark a future alert's ``start`` may lie (open windows)."""
    if isinstance(node, ir.Match):
        return 0
    if isinstance(node, ir.Sequence):
        return node.maxspan_ms
    if isinstance(node, ir.Cooccurrence):
        return node.window_ms
    if isinstance(node, ir.Absence):
        return node.within_ms
    return node.window.size_ms


# --------------------------------------------------------------------------- evaluation
class Evaluation:
    """An incremental evaluation: ``push`` events in ``(ts, seq)`` order, then ``finish``."""

    def __init__(self, analytic: ir.Analytic) -> None:
        self.analytic = analytic
        self.detector = build_detector(analytic)
        det_streams = detection_streams(analytic.detection)
        self.history_nodes = tuple(
            b for b in analytic.baselines if isinstance(b, ir.FirstSeen | ir.Rarity)
        )
        hist_streams = list(dict.fromkeys(b.stream for b in self.history_nodes))
        self.history = HistoryIndex(self.history_nodes) if self.history_nodes else None
        self.streams = StreamSet(analytic, [*det_streams, *hist_streams])
        # (pipe, feeds the detector, feeds the history) for every stream someone consumes,
        # in topological order: the order pushes of one event reach the consumers.
        self.consumers: list[tuple[Pipe, bool, bool]] = [
            (p, p.name in det_streams, p.name in hist_streams)
            for p in self.streams.pipes
            if p.name in det_streams or p.name in hist_streams
        ]
        # Joins delay their outputs (even a `before` join, of lateness 0, releases an event only
        # once a later input shows no partner at the same ts can follow); without any join every
        # output of a step is the input event itself, in order, and skips the reorder heap.
        self.lateness = max((p.lateness for p, _, _ in self.consumers), default=0)
        self._direct = not self.streams.has_joins
        self._by_rank = {c[0].rank: c for c in self.consumers}
        # detector.advance(w) is a no-op while w < detector.next_wake(); that bound only moves
        # when the detector is pushed to or advanced, so it is asked again only then.
        self._wake = _NEVER
        self._wake_stale = True
        # A detector whose push of an event at ts > watermark first does what advance(ts) would
        # (``push_advances``) needs no advance before that push. Only the point where its alerts
        # are emitted moves (from advance to push, same input event), which matters only when
        # baselines decide alerts against the history as of the watermark.
        self._push_advances = self.history is None and bool(
            getattr(self.detector, "push_advances", False)
        )
        self._detector_ranks = frozenset(p.rank for p, to_det, _ in self.consumers if to_det)
        self._heap: list[tuple[int, int, int, int, Event]] = []
        self._tiebreak = 0
        self.watermark: int | None = None  # last value given to advance()
        self._last: tuple[int, int] | None = None
        self._held: list[Alert] = []  # candidates waiting for their baseline history
        self.alerts: list[Alert] = []
        # History pruning: later queries have start >= watermark - span (open windows).
        self._span = detection_span(analytic.detection) + 1
        lookback = max((b.lookback_ms for b in self.history_nodes), default=0)
        self._prune_every = max(lookback // 8, 60_000)
        self._pruned_at: int | None = None
        self._finished = False

    # ----------------------------------------------------------------- feeding
    def push(self, event: Event) -> None:
        if self._finished:
            raise RuntimeError("evaluation already finished")
        ts = event.ts
        last = self._last
        if last is not None and (ts < last[0] or (ts == last[0] and event.seq < last[1])):
            raise ValueError(
                f"event {event.id!r} (ts={ts}, seq={event.seq}) is out of order: events "
                f"must be sorted by (ts, seq); previous was ts={last[0]}, seq={last[1]}"
            )
        self._last = (ts, event.seq)
        if not self._direct:
            self._enqueue(self.streams.step(event))
            self._drain(ts - self.lateness)
            return
        # Every output is this event: deliver directly, after the watermark reaches it.
        outs = self.streams.step_direct(event)
        if self.watermark is None or ts > self.watermark:
            if self._push_advances and self._feeds_detector(outs):
                # The push below does what advance(ts) would (see __init__).
                self.watermark = ts
            else:
                self._advance(ts)
        by_rank = self._by_rank
        for pipe, e in outs:
            consumer = by_rank.get(pipe.rank)
            if consumer is not None:
                self._deliver(pipe, consumer[1], consumer[2], e)

    def admits(self, fields: Mapping[str, Any]) -> bool:
        """Whether an input event with these fields may reach a stream; :meth:`skip` takes the
        place of :meth:`push` for one that does not (an exact pushdown into reading)."""
        return self.streams.admits(fields)

    def skip(self, ts: int, seq: int) -> None:
        """What :meth:`push` does for an input event at ``(ts, seq)`` that reaches no stream:
        check the order and move the time (watermark, join releases), without the event."""
        if self._finished:
            raise RuntimeError("evaluation already finished")
        last = self._last
        if last is not None and (ts < last[0] or (ts == last[0] and seq < last[1])):
            raise ValueError(
                f"event at ts={ts}, seq={seq} is out of order: events must be sorted by "
                f"(ts, seq); previous was ts={last[0]}, seq={last[1]}"
            )
        self._last = (ts, seq)
        if not self._direct:
            self._enqueue(self.streams.tick(ts))
            self._drain(ts - self.lateness)
        elif self.watermark is None or ts > self.watermark:
            self._advance(ts)

    def take_alerts(self) -> list[Alert]:
        """The alerts decided so far, removed (a long run hands them out as it goes). :meth:`finish`
        then returns only the rest; all of them sorted stably by :func:`alert_sort_key`, taken
        ones first, are what :meth:`finish` alone would have returned."""
        out, self.alerts = self.alerts, []
        return out

    def _feeds_detector(self, outs: list[tuple[Pipe, Event]]) -> bool:
        ranks = self._detector_ranks
        for pipe, _ in outs:  # noqa: SIM110 (any() over a generator costs a frame: hot path)
            if pipe.rank in ranks:
                return True
        return False

    def finish(self, now: int | None = None) -> list[Alert]:
        """Flush joins, close every open window (``now``: the observation end) and return the
        alerts sorted by (end, start, key, evidence)."""
        if self._finished:
            raise RuntimeError("evaluation already finished")
        self._finished = True
        self._enqueue(self.streams.flush())
        self._drain(None)
        self._accept(self.detector.finish(now), final=True)
        for a in self._held:
            self._check(a)
        self._held.clear()
        return sorted(self.alerts, key=alert_sort_key)

    def state_size(self) -> int:
        """Stored items across the pipeline (memory tests: must not grow with the events)."""
        size = getattr(self.detector, "state_size", None)
        n = size() if callable(size) else 0
        n += self.streams.state_size() + len(self._heap) + len(self._held)
        if self.history is not None:
            n += self.history.size()
        return int(n)

    # ----------------------------------------------------------------- internals
    def _enqueue(self, outs: Mapping[str, list[Event]]) -> None:
        # (ts, seq, rank) is unique (one output per event and stream); the counter only keeps
        # heapq from ever comparing Events.
        for pipe, _, _ in self.consumers:
            for e in outs[pipe.name]:
                self._tiebreak += 1
                heapq.heappush(self._heap, (e.ts, e.seq, pipe.rank, self._tiebreak, e))

    def _drain(self, watermark: int | None) -> None:
        """Deliver, in (ts, seq, stream) order, every queued output older than ``watermark``
        (all of them when None), then advance the detector to it."""
        heap = self._heap
        by_rank = self._by_rank
        while heap and (watermark is None or heap[0][0] < watermark):
            ts, _, rank, _, e = heapq.heappop(heap)
            if self.watermark is None or ts > self.watermark:
                self._advance(ts)
            pipe, to_det, to_hist = by_rank[rank]
            self._deliver(pipe, to_det, to_hist, e)
        if watermark is not None and (self.watermark is None or watermark > self.watermark):
            self._advance(watermark)

    def _deliver(self, pipe: Pipe, to_det: bool, to_hist: bool, e: Event) -> None:
        if to_det:
            alerts = self.detector.push(pipe.name, e)
            self._wake_stale = True
            if alerts:
                self._accept(alerts)
        if to_hist and self.history is not None:
            # After the detector: irrelevant for correctness (history is [start - lookback,
            # start) and this event is at ts >= start), but it keeps the order obvious.
            self.history.observe(e, pipe.name)

    def _advance(self, watermark: int) -> None:
        self.watermark = watermark
        detector = self.detector
        if self._wake_stale:
            self._wake = detector.next_wake()
            self._wake_stale = False
        if watermark >= self._wake:
            self._accept(detector.advance(watermark))
            self._wake = detector.next_wake()
        if self._held:
            # All history before the watermark has been delivered: these can be decided now.
            ready = [a for a in self._held if a.start <= watermark]
            if ready:
                self._held = [a for a in self._held if a.start > watermark]
                for a in ready:
                    self._check(a)
        if self.history is not None and (
            self._pruned_at is None or watermark - self._pruned_at >= self._prune_every
        ):
            self._pruned_at = watermark
            oldest = min((a.start for a in self._held), default=watermark)
            floor = min(oldest, watermark - self._span)
            self.history.prune(floor, 0)

    def _accept(self, alerts: Iterable[Alert], final: bool = False) -> None:
        if self.history is None:
            self.alerts.extend(alerts)
            return
        for a in alerts:
            # Every history event with ts < watermark has been observed; history for a start
            # beyond it is still incomplete (join lateness), so the candidate waits.
            if final or (self.watermark is not None and a.start <= self.watermark):
                self._check(a)
            else:
                self._held.append(a)

    def _check(self, alert: Alert) -> None:
        hist = self.history
        assert hist is not None
        for node in self.history_nodes:
            values = tuple(alert.field(n) for n in node.current)
            if isinstance(node, ir.FirstSeen):
                ok = hist.first_seen_ok(node, values, alert.start)
            else:
                ok = hist.rarity_ok(node, values, alert.start)
            if not ok:
                return
        self.alerts.append(alert)


def alert_sort_key(a: Alert) -> tuple[int, int, str, tuple[str, ...]]:
    return (a.end, a.start, repr(a.key), a.evidence)


def evaluate(analytic: ir.Analytic, events: Iterable[Event], now: int | None = None) -> list[Alert]:
    """Every alert of ``analytic`` over ``events`` (sorted by ``(ts, seq)``; ValueError naming
    the first event out of order otherwise). ``now`` is the observation end (absence windows)."""
    run = Evaluation(analytic)
    for e in events:
        run.push(e)
    return run.finish(now)


# --------------------------------------------------------------------------- events
def to_event(doc: Mapping[str, Any], n: int, source: str) -> Event:
    """One event from an ECS document (flat dotted or nested keys): ``ts`` from ``@timestamp``,
    ``id`` from ``event.id`` or else ``<source>#<n>``, ``seq`` = ``n``."""
    fields = flatten(doc)
    raw_id = fields.get("event.id")
    eid = f"{source}#{n}" if raw_id is None or raw_id == "" else str(raw_id)
    raw_ts = fields.get("@timestamp")
    if raw_ts is None:
        raise ValueError(f"event {eid!r} has no @timestamp")
    try:
        ts = parse_timestamp(raw_ts)
    except ValueError as exc:
        raise ValueError(f"event {eid!r}: {exc}") from exc
    return Event(ts, n, eid, fields)


def make_events(docs: Iterable[Mapping[str, Any]], source: str) -> list[Event]:
    """Events from ECS documents (see :func:`to_event`; n counts documents from 1), stably
    sorted by time with ``seq`` renumbered from 0, so ties keep the input order."""
    return merge_events([[to_event(doc, n, source) for n, doc in enumerate(docs, 1)]])


def merge_events(groups: Iterable[Iterable[Event]]) -> list[Event]:
    """Concatenate event lists (e.g. one per input file), stably sort them by ``(ts, seq)`` and
    renumber ``seq`` from 0: timestamp ties keep the order of the groups, then of each group."""
    merged = [e for g in groups for e in g]
    # Python's sort is stable: equal timestamps stay in concatenation order.
    merged.sort(key=lambda e: e.ts)
    for i, e in enumerate(merged):
        e.seq = i
    return merged
