"""Correlation detectors of the reference evaluator: sequence, co-occurrence and absence.

The meaning implemented here is specified in docs/semantics.md (section *Correlations*); every
rule there is tested in tests/test_eval_correlation.py. Design constraints:

* State is indexed by normalised key tuples (:mod:`compiler.evaluator.keys`: the one key rule of
  the product, exact and case-sensitive with numeric strings as numbers), so an event costs a few
  dict look-ups, never a scan of the open instances.
* Every stored item sits in a FIFO ordered by the time it stops mattering, so expiry (on
  ``advance`` and, implicitly, on every ``push``: a pushed event at ``ts`` promises that no later
  event is earlier) pops from the front and state stays proportional to the open windows.
* The same input event may be pushed once per stream it belongs to (``push(a, e)``,
  ``push(b, e)``, same ``seq``). Sequence and co-occurrence buffer the pushes of one ``seq`` and
  process them together, so the result does not depend on the engine's push order; their alerts
  are therefore returned by the *next* call (``push`` of another event, ``advance`` or
  ``finish``).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from compiler import ir
from compiler.evaluator.keys import Key, key_tuples, raw_key
from compiler.evaluator.model import Alert, Event

__all__ = ["AbsenceDetector", "CooccurrenceDetector", "SequenceDetector"]

_NO_ALERTS: tuple[Alert, ...] = ()
_FAR_PAST = -(2**63)
_NEVER = 2**63


def _alert_order(alert: Alert) -> tuple[int, int, tuple[str, ...]]:
    return (alert.end, alert.start, alert.evidence)


def _make_alert(
    analytic: str,
    key: tuple[tuple[str, Any], ...],
    prefixes: tuple[str, ...],
    events: list[Event],
) -> Alert:
    """``events`` are in step/member order (one per prefix, ``alias.``); evidence is in
    (ts, seq) order. The record refers to the events' fields, without copying them."""
    steps = tuple(zip(prefixes, [e.fields for e in events], strict=True))
    ordered: Sequence[Event]
    if len(events) == 2:  # the common shape: no sort, no key function
        a, b = events
        ordered = (a, b) if (a.ts, a.seq) <= (b.ts, b.seq) else (b, a)
    else:
        ordered = sorted(events, key=lambda e: (e.ts, e.seq))
    return Alert(
        analytic=analytic,
        key=key,
        start=ordered[0].ts,
        end=ordered[-1].ts,
        measures=(),
        evidence=tuple([e.id for e in ordered]),
        pairs=key,
        steps=steps,
    )


def _check_keys(steps: Iterable[ir.Step]) -> None:
    widths = {len(step.keys) for step in steps}
    if len(widths) > 1:
        raise ValueError(f"correlation steps have different numbers of keys: {sorted(widths)}")


class _Detector:
    """Alert buffering shared by the three detectors. ``push`` of an event later than the
    watermark first does what ``advance`` to its time would (``push_advances``)."""

    push_advances = True

    def __init__(self, analytic_id: str) -> None:
        self.analytic_id = analytic_id
        self._out: list[Alert] = []
        self._watermark = _FAR_PAST

    def _take(self) -> Iterable[Alert]:
        out = self._out
        if not out:
            return _NO_ALERTS
        self._out = []
        if len(out) > 1:
            out.sort(key=_alert_order)
        return out


class _Batching(_Detector, ABC):
    """Buffers the pushes of one event (same ``seq``, one per stream) and hands them to
    ``_process`` together once the next event, a passing watermark or ``finish`` shows that no
    more pushes of it can come."""

    def __init__(self, analytic_id: str) -> None:
        super().__init__(analytic_id)
        self._pending: list[tuple[str, Event]] = []

    def push(self, stream: str, event: Event) -> Iterable[Alert]:
        pending = self._pending
        if pending and pending[0][1].seq != event.seq:
            self._process(pending)
            pending.clear()
        # Expire only after processing the previous event: it may still extend an instance that
        # this event's timestamp rules out.
        if event.ts > self._watermark:
            self._watermark = event.ts
            self._expire(event.ts)
        pending.append((stream, event))
        return self._take()

    def advance(self, watermark: int) -> Iterable[Alert]:
        pending = self._pending
        # An event at ts < watermark cannot be pushed again. One at ts >= watermark might (the
        # engine may advance between its pushes); keeping it is safe: expiring up to the
        # watermark only removes state that it could not use either.
        if pending and pending[0][1].ts < watermark:
            self._process(pending)
            pending.clear()
        if watermark > self._watermark:
            self._watermark = watermark
            self._expire(watermark)
        return self._take()

    def next_wake(self) -> int:
        # advance() processes a pending event once the watermark passes it, else only expires.
        if self._pending:
            return self._pending[0][1].ts + 1
        return self._expiry_wake()

    def finish(self, now: int | None) -> Iterable[Alert]:
        if self._pending:
            self._process(self._pending)
            self._pending.clear()
        self._reset()
        return self._take()

    @abstractmethod
    def _expiry_wake(self) -> int:
        """The smallest watermark at which ``_expire`` removes something."""

    @abstractmethod
    def _process(self, pushes: list[tuple[str, Event]]) -> None:
        """Handle every push of one event (same ``seq``) together."""

    @abstractmethod
    def _expire(self, watermark: int) -> None:
        """Drop state no event at or after ``watermark`` can use."""

    @abstractmethod
    def _reset(self) -> None:
        """Drop every partial at the end of the input."""


# --------------------------------------------------------------------------- sequence
class _Partial:
    """A partial sequence: events of steps ``0 .. stage-1``; waits for step ``stage``.
    ``stage == 0`` marks a dead partial (completed or expired) still sitting in the FIFO."""

    __slots__ = ("events", "first_ts", "keys", "stage")

    def __init__(self, event: Event, keys: tuple[Key, ...]) -> None:
        self.first_ts = event.ts
        self.events = [event]
        self.keys = keys  # the key tuples under which it is registered
        self.stage = 1


class SequenceDetector(_Batching):
    """Ordered steps with equal keys within ``maxspan`` of the first step (EQL ``sequence``)."""

    def __init__(self, analytic_id: str, node: ir.Sequence) -> None:
        super().__init__(analytic_id)
        steps = _expand_counted(node.steps)
        if not steps:
            raise ValueError("a sequence needs at least one step")
        _check_keys(steps if node.until is None else (*steps, node.until))
        self._steps = steps
        # A counted step is its step repeated (EQL `with runs`), whose copies advance together
        # (_advance_run); the record names each step once, with the first event of its run.
        self._firsts = _run_starts(node.steps) if len(steps) > len(node.steps) else None
        self._runs = _runs_of(node.steps) if self._firsts is not None else {}
        self._n = len(steps)
        self._prefixes = tuple(step.alias + "." for step in steps)
        self._maxspan = node.maxspan_ms
        self._until = node.until
        by_stream: dict[str, list[int]] = {}
        for i, step in enumerate(steps):
            by_stream.setdefault(step.stream, []).append(i)
        # Latest step first: an event extends the most advanced partial it can.
        self._by_stream = {s: tuple(sorted(ix, reverse=True)) for s, ix in by_stream.items()}
        # _waiting[i][key]: the partial waiting for step i (index 0 unused).
        self._waiting: list[dict[Key, _Partial]] = [{} for _ in steps]
        # Partials in creation order == first_ts order: the expiry FIFO.
        self._fifo: deque[_Partial] = deque()

    def state_size(self) -> int:
        """Stored partials (FIFO, including dead ones awaiting expiry) plus index entries."""
        return len(self._fifo) + sum(len(d) for d in self._waiting)

    def _process(self, pushes: list[tuple[str, Event]]) -> None:
        until = self._until
        if until is not None:
            for stream, event in pushes:
                if stream == until.stream:
                    self._cancel(key_tuples(event, until.keys))
        if len(pushes) == 1:
            stream, event = pushes[0]
            candidates: Iterable[tuple[int, Event]] = [
                (i, event) for i in self._by_stream.get(stream, ())
            ]
        else:
            candidates = sorted(
                ((i, ev) for s, ev in pushes for i in self._by_stream.get(s, ())),
                key=lambda c: -c[0],
            )
        starter = None
        runs = self._runs
        handled: tuple[int, int] | None = None
        for i, event in candidates:
            run = runs.get(i) if runs else None
            if run is not None:
                if run != handled:
                    handled = run
                    if self._advance_run(run, event):
                        return
                continue
            if i == 0:
                starter = event
            elif self._extend(i, event):
                return  # an event fills at most one step of one instance
        if starter is not None:
            self._start(starter)

    def _advance_run(self, run: tuple[int, int], event: Event) -> bool:
        """An event of a counted step's stream, as EQL runs the copies of a repeated step: each
        copy takes it independently, the last copy first, so every partial of its key waiting
        inside the run moves on by one copy (one event sits in several partials, which hold the
        latest events of the key), and a run that starts the sequence starts a new partial at
        every event. Whether the event took part in anything."""
        first, n = run
        moved = False
        for q in range(first + n - 1, max(first, 1) - 1, -1):
            if self._waiting[q] and self._extend(q, event):
                moved = True
        if first == 0:
            self._start(event)
            moved = True
        return moved

    def _cancel(self, keys: tuple[Key, ...]) -> None:
        for waiting in self._waiting:
            for key in keys:
                waiting.pop(key, None)

    def _start(self, event: Event) -> None:
        keys = key_tuples(event, self._steps[0].keys)
        if not keys:
            return
        partial = _Partial(event, keys)
        if self._n == 1:
            self._complete(partial, keys[0])
            return
        waiting = self._waiting[1]
        for key in keys:
            waiting[key] = partial  # replaces an older partial waiting for step 1 (as EQL)
        self._fifo.append(partial)

    def _extend(self, i: int, event: Event) -> bool:
        keys = key_tuples(event, self._steps[i].keys)
        waiting = self._waiting[i]
        for key in keys:
            partial = waiting.get(key)
            if partial is None:
                continue
            if event.ts - partial.first_ts > self._maxspan:
                del waiting[key]  # expired (normally already removed by _expire)
                continue
            bound: tuple[Key, ...]
            if len(partial.keys) == 1:
                bound = partial.keys
                del waiting[key]
            else:
                # Multi-valued keys: keep the key tuples this event shares with the partial (the
                # instance is bound to a key all its events have), drop the others.
                bound = tuple(k for k in partial.keys if k in keys and waiting.get(k) is partial)
                for k in partial.keys:
                    if waiting.get(k) is partial:
                        del waiting[k]
            partial.events.append(event)
            nxt = i + 1
            if nxt == self._n:
                partial.stage = 0
                self._complete(partial, bound[0])
            else:
                waiting_next = self._waiting[nxt]
                for k in bound:
                    waiting_next[k] = partial
                partial.keys = bound
                partial.stage = nxt
            return True
        return False

    def _complete(self, partial: _Partial, key: Key) -> None:
        first = partial.events[0]
        pairs = raw_key(first, self._steps[0].keys, key)
        alert = _make_alert(self.analytic_id, pairs, self._prefixes, partial.events)
        if self._firsts is not None:
            alert = dataclasses.replace(alert, steps=tuple(alert.steps[i] for i in self._firsts))
        self._out.append(alert)

    def _expiry_wake(self) -> int:
        fifo = self._fifo
        return fifo[0].first_ts + self._maxspan + 1 if fifo else _NEVER

    def _expire(self, watermark: int) -> None:
        limit = watermark - self._maxspan  # first_ts < limit: no later event fits in maxspan
        fifo = self._fifo
        while fifo and fifo[0].first_ts < limit:
            partial = fifo.popleft()
            if partial.stage:
                waiting = self._waiting[partial.stage]
                for key in partial.keys:
                    if waiting.get(key) is partial:
                        del waiting[key]
                partial.stage = 0

    def _reset(self) -> None:
        for waiting in self._waiting:
            waiting.clear()
        self._fifo.clear()


def _expand_counted(steps: tuple[ir.Step, ...]) -> tuple[ir.Step, ...]:
    """A counted step (``count`` events in a row) as that many copies of the step, the
    definition of EQL's ``with runs`` (their matching: ``_advance_run``)."""
    if all(st.count == 1 for st in steps):
        return steps
    return tuple(st for st in steps for _ in range(st.count))


def _runs_of(steps: tuple[ir.Step, ...]) -> dict[int, tuple[int, int]]:
    """For each expanded position of a counted step: (its first position, its count)."""
    out: dict[int, tuple[int, int]] = {}
    at = 0
    for st in steps:
        if st.count > 1:
            out.update((at + c, (at, st.count)) for c in range(st.count))
        at += st.count
    return out


def _run_starts(steps: tuple[ir.Step, ...]) -> tuple[int, ...]:
    """The position, among the expanded steps, of each step's first event."""
    out, at = [], 0
    for st in steps:
        out.append(at)
        at += st.count
    return tuple(out)


# --------------------------------------------------------------------------- co-occurrence
class CooccurrenceDetector(_Batching):
    """Every member has an event with equal keys, all within ``window`` (Sigma ``temporal``)."""

    def __init__(self, analytic_id: str, node: ir.Cooccurrence) -> None:
        super().__init__(analytic_id)
        members = node.members
        if not members:
            raise ValueError("a co-occurrence needs at least one member")
        _check_keys(members)
        self._members = members
        self._n = len(members)
        self._prefixes = tuple(m.alias + "." for m in members)
        self._window = node.window_ms
        by_stream: dict[str, list[int]] = {}
        for i, member in enumerate(members):
            by_stream.setdefault(member.stream, []).append(i)
        self._by_stream = {s: tuple(ix) for s, ix in by_stream.items()}
        # _groups[key][m]: the latest events eligible for member m, oldest first. n of them are
        # enough: if distinct events can fill the members at all, they can from each member's n
        # latest (at most n-1 of those are taken by the other members).
        self._groups: dict[Key, list[deque[Event]]] = {}
        self._fifo: deque[tuple[int, Key]] = deque()  # (ts, key) of every stored event
        # Events used by an alert. A multi-valued event may sit in several groups; rather than
        # finding them all, a consumed event is skipped until it is stale.
        self._consumed: set[int] = set()
        self._consumed_fifo: deque[tuple[int, int]] = deque()  # (alert end, seq)

    def state_size(self) -> int:
        """Held events plus FIFO and consumed-set entries."""
        held = sum(len(d) for group in self._groups.values() for d in group)
        return held + len(self._fifo) + len(self._consumed_fifo)

    def _process(self, pushes: list[tuple[str, Event]]) -> None:
        members = self._members
        if len(pushes) == 1:  # the common case, without the bookkeeping below
            stream, event = pushes[0]
            indexes = self._by_stream.get(stream, ())
            if len(indexes) == 1:
                m = indexes[0]
                low = event.ts - self._window
                for key in key_tuples(event, members[m].keys):
                    if event.seq in self._consumed:
                        return
                    group = self._groups.get(key)
                    if group is None:
                        group = self._new_group(key)
                    group[m].append(event)
                    self._fifo.append((event.ts, key))
                    self._check(key, group, low)
                return
        # Add the event to every group first: a completed set consumes it for all the others.
        touched: dict[Key, list[deque[Event]]] = {}
        ts = pushes[0][1].ts
        for stream, event in pushes:
            for m in self._by_stream.get(stream, ()):
                for key in key_tuples(event, members[m].keys):
                    group = self._groups.get(key)
                    if group is None:
                        group = self._new_group(key)
                    group[m].append(event)
                    touched[key] = group
                    self._fifo.append((ts, key))
        seq = pushes[0][1].seq
        for key, group in touched.items():
            if seq in self._consumed:
                return  # used by a set already: no other set can complete without it
            self._check(key, group, ts - self._window)

    def _new_group(self, key: Key) -> list[deque[Event]]:
        n = self._n
        group: list[deque[Event]] = [deque(maxlen=n) for _ in range(n)]
        self._groups[key] = group
        return group

    def _check(self, key: Key, group: list[deque[Event]], low: int) -> None:
        consumed = self._consumed
        # Fast path, also the most common outcome: some member has no usable event.
        latest: list[Event] = []
        for events in group:
            for event in reversed(events):
                if event.ts < low:
                    return
                if event.seq not in consumed:
                    latest.append(event)
                    break
            else:
                return
        if len({e.seq for e in latest}) < len(latest):
            # An event is the latest of several members (a stream used twice, or one event
            # pushed under several streams): find distinct ones, latest first, by member order.
            found = self._distinct(group, low, [], set())
            if found is None:
                return
            latest = found
        # Complete: fire at the event that completes the set; the key's events are consumed.
        del self._groups[key]
        end = max(e.ts for e in latest)
        for event in latest:
            consumed.add(event.seq)
            self._consumed_fifo.append((end, event.seq))
        pairs = raw_key(latest[0], self._members[0].keys, key)
        self._out.append(_make_alert(self.analytic_id, pairs, self._prefixes, latest))

    def _distinct(
        self, group: list[deque[Event]], low: int, chosen: list[Event], used: set[int]
    ) -> list[Event] | None:
        """Backtracking over members in order (n is small): distinct usable events, or None."""
        m = len(chosen)
        if m == len(group):
            return list(chosen)
        for event in reversed(group[m]):
            if event.ts < low:
                break
            if event.seq in used or event.seq in self._consumed:
                continue
            chosen.append(event)
            used.add(event.seq)
            found = self._distinct(group, low, chosen, used)
            if found is not None:
                return found
            chosen.pop()
            used.discard(event.seq)
        return None

    def _expiry_wake(self) -> int:
        oldest = min(
            self._fifo[0][0] if self._fifo else _NEVER,
            self._consumed_fifo[0][0] if self._consumed_fifo else _NEVER,
        )
        return _NEVER if oldest == _NEVER else oldest + self._window + 1

    def _expire(self, watermark: int) -> None:
        limit = watermark - self._window  # ts < limit: too old for any later event
        fifo, groups = self._fifo, self._groups
        while fifo and fifo[0][0] < limit:
            key = fifo.popleft()[1]
            group = groups.get(key)
            if group is None:
                continue
            alive = False
            for events in group:
                while events and events[0].ts < limit:
                    events.popleft()
                alive = alive or bool(events)
            if not alive:
                del groups[key]
        consumed_fifo = self._consumed_fifo
        while consumed_fifo and consumed_fifo[0][0] < limit:
            self._consumed.discard(consumed_fifo.popleft()[1])

    def _reset(self) -> None:
        self._groups.clear()
        self._fifo.clear()
        self._consumed.clear()
        self._consumed_fifo.clear()


# --------------------------------------------------------------------------- absence
class _Open:
    """One ``first`` event waiting for its ``missing`` event."""

    __slots__ = ("alive", "event", "keys")

    def __init__(self, event: Event, keys: tuple[Key, ...]) -> None:
        self.event = event
        self.keys = keys
        self.alive = True  # False: a missing event was seen


class AbsenceDetector(_Detector):
    """``first`` not followed by ``missing`` with equal keys within ``within``."""

    def __init__(self, analytic_id: str, node: ir.Absence) -> None:
        super().__init__(analytic_id)
        _check_keys((node.first, node.missing))
        self._first = node.first
        self._missing = node.missing
        self._within = node.within_ms
        self._prefixes = (node.first.alias + ".",)
        self._by_key: dict[Key, deque[_Open]] = {}
        self._fifo: deque[_Open] = deque()  # in (ts, seq) order: the decision order

    def state_size(self) -> int:
        """Open instances (FIFO, including suppressed ones) plus per-key index entries."""
        return len(self._fifo) + sum(len(d) for d in self._by_key.values())

    def push(self, stream: str, event: Event) -> Iterable[Alert]:
        # No pushed event is later than this one's ts: windows ending before it are decided.
        if event.ts > self._watermark:
            self._watermark = event.ts
            self._decide(event.ts - self._within - 1)
        # Only strictly earlier instances are suppressed, so an event in both streams never
        # suppresses itself, whichever role is applied first.
        if stream == self._missing.stream:
            for key in key_tuples(event, self._missing.keys):
                self._suppress(key, event.ts)
        if stream == self._first.stream:
            keys = key_tuples(event, self._first.keys)
            if keys:
                instance = _Open(event, keys)
                self._fifo.append(instance)
                for key in keys:
                    queue = self._by_key.get(key)
                    if queue is None:
                        queue = self._by_key[key] = deque()
                    queue.append(instance)
        return self._take()

    def _suppress(self, key: Key, ts: int) -> None:
        queue = self._by_key.get(key)
        if queue is None:
            return
        # Every open instance of the key ends at or after ts (_decide ran); those that start
        # strictly before ts are suppressed. Those at ts itself, the tail of the queue, are not:
        # input order at one timestamp is not observable in a SIEM (docs/semantics.md).
        while queue and queue[0].event.ts < ts:
            queue.popleft().alive = False
        if not queue:
            del self._by_key[key]

    def _decide(self, last_start: int) -> None:
        """Decide the instances whose first event has ``ts <= last_start``."""
        fifo = self._fifo
        while fifo and fifo[0].event.ts <= last_start:
            instance = fifo.popleft()
            for key in instance.keys:
                queue = self._by_key.get(key)
                if queue and queue[0] is instance:
                    queue.popleft()
                    if not queue:
                        del self._by_key[key]
            if instance.alive:
                event = instance.event
                pairs = raw_key(event, self._first.keys, instance.keys[0])
                self._out.append(_make_alert(self.analytic_id, pairs, self._prefixes, [event]))

    def advance(self, watermark: int) -> Iterable[Alert]:
        if watermark > self._watermark:
            self._watermark = watermark
            # Final when watermark > t + within: no missing event at ts <= t + within can come.
            self._decide(watermark - self._within - 1)
        return self._take()

    def next_wake(self) -> int:
        fifo = self._fifo
        return fifo[0].event.ts + self._within + 1 if fifo else _NEVER

    def finish(self, now: int | None) -> Iterable[Alert]:
        if now is not None:
            self._decide(now - self._within)  # observed up to now >= t + within
        # Windows still open at the end of observation are undecided: no alert.
        self._fifo.clear()
        self._by_key.clear()
        return self._take()
