"""The ``aggregate`` (and ``threshold``) detection: windowed, grouped measures with a condition.

Semantics (the specification; docs/semantics.md, section "Aggregates"):

* Group key: the values of ``by`` fields. An event whose key field is missing, null or an empty
  multi-value is dropped (as Splunk ``stats by``). Key values compare by the one key rule of the
  product (:mod:`compiler.evaluator.keys`): exactly, case-SENSITIVELY (``"Admin"`` and ``"admin"``
  are two groups) like Splunk ``stats by`` and KQL ``summarize by``, a number as its decimal
  text (``"443"`` and ``443`` are one group, ``"7"`` and ``"7.0"`` two); booleans are not
  numbers. pySigma's sqlite backend lower-cases, the others do not. A multi-valued key puts the
  event in one group per distinct element (cartesian product over several multi-valued keys), like
  Splunk ``stats by`` an mv field and ES|QL ``STATS ... BY`` an mv field. The alert's key (and a
  field name read by ``compute``/``having``) is the value as it appears in the group's **first**
  event (original case and type; for a multi-valued field, the element that matched).
* Tumbling windows are ``[k*size, (k+1)*size)`` aligned to the Unix epoch (UTC); an event at
  exactly a window end belongs to the next window. A window is final when the watermark (or an
  event's time) reaches its end, and at ``finish``, where every open window is final whatever
  ``now`` is. One alert per (group, window) whose ``having`` holds (no ``having``: always);
  ``start``/``end`` are the window bounds; ``evidence`` lists every event of the group window in
  time order (no cap).
* Sliding windows: after each event ``e`` of a group, the window holds the group's events with
  ``ts`` in ``[e.ts - size, e.ts]`` (both ends inclusive) that arrived so far. When ``having``
  holds, an alert is raised (``start`` = earliest event in the window, ``end`` = ``e.ts``) and the
  window's events are *consumed*: the group starts again empty, so overlapping windows never
  report the same events twice (the de-duplication rule).
* ``measures`` of an alert: each measure, then each ``compute`` value, in declaration order.
  ``compute``/``having`` read measures and earlier computed values by name; a field name reads the
  group's key value (other fields are null). ``record`` = key fields + measures.
* ``deviation`` baselines (tumbling only): per group, the named measure of past windows that had
  events and a non-null numeric value, with ``start >= current start - lookback`` (and, being past
  windows, ``end <= current start``). A condition holds when there are at least ``min_history``
  such values and the current value is ``> mean + k * stdev`` (sample stdev; needs 2 values),
  ``> percentile(p)`` (nearest rank) or ``>= ratio * mean`` (exactly, with a positive mean) of
  them; ``direction: below`` turns these into ``< mean - k * stdev``, ``< percentile(p)`` and
  ``<= mean / ratio``; ``include_current`` adds the current value to the values compared with
  (``min_history`` still counts past windows). Every deviation must hold. The current window's
  value enters the history whether or not it alerted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any

from compiler import ir
from compiler.evaluator.keys import Key, key_tuples, raw_key
from compiler.evaluator.measures import (
    Accumulator,
    Sum,
    accumulator_factory,
    mean,
    percentile,
    sample_stdev,
)
from compiler.evaluator.model import Alert, Event
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.values import compare, compile_expr, to_number, truthy

_NO_ALERTS: tuple[Alert, ...] = ()
_NEVER = 2**63  # no open window: a time no event reaches
GroupKey = Key
"""A normalised group key (:mod:`compiler.evaluator.keys`)."""
RawKey = tuple[tuple[str, Any], ...]
"""``(field, value)`` pairs as they appear in a group's first event."""


class _Cell:
    """One group's sliding window."""

    __slots__ = ("accs", "items", "key")

    def __init__(self, accs: list[Accumulator], key: RawKey) -> None:
        self.accs = accs
        self.key = key  # the alert key: the group's first event's values
        self.items: deque[tuple[int, str, tuple[Any, ...]]] = deque()  # (ts, id, raw values)


# A tumbling cell (one group in one window; most events open one) is a plain list:
# [raw key values, event ids, lane, ...]. Each measure has a lane kind: `count: true` is the
# number of ids (no slot); `sum` holds two ints, the number of values and their sum, while every
# value is an int (the Sum accumulator's own fast path), and otherwise a Sum accumulator in its
# first slot; any other measure holds its accumulator in one slot.
TCell = list[Any]
_RAW, _IDS = 0, 1
_COUNT, _SUM, _ACC = 0, 1, 2


class AggregateDetector:
    """Detector for an :class:`ir.Aggregate` node (see the module docstring). A push of the
    aggregate's stream closes windows (tumbling) or sweeps (sliding) as ``advance`` to its time
    would (``push_advances``)."""

    push_advances = True

    def __init__(
        self,
        analytic_id: str,
        node: ir.Aggregate,
        deviation: tuple[ir.Deviation, ...] = (),
        lookups: Mapping[str, ir.Lookup] | None = None,
    ) -> None:
        if deviation and node.window.kind != "tumbling":
            raise ValueError("deviation baselines need a tumbling aggregate")
        if node.window.size_ms <= 0:
            raise ValueError("window size must be positive")
        self.analytic = analytic_id
        self.node = node
        self.deviation = deviation
        self.size = node.window.size_ms
        self.sliding = node.window.kind == "sliding"
        self._keys = node.keys
        self._fields = tuple(m.field for m in node.measures)
        # Conditional measures (`where:`) read the value of an event their filter holds for
        # and nothing (None) from any other; None otherwise (the plain field reads).
        self._getters = (
            tuple(_value_getter(m, lookups or {}) for m in node.measures)
            if any(m.where is not None for m in node.measures)
            else None
        )
        self._factories = tuple(accumulator_factory(m, self.sliding) for m in node.measures)
        self._init_lanes(node.measures)
        self._measure_index = {m.name: i for i, m in enumerate(node.measures)}
        self._compiled_compute = {name: compile_expr(e) for name, e in node.compute}
        self._having = None if node.having is None else compile_expr(node.having)
        # A having of the form `measure <op> literal` (every threshold) is checked directly.
        self._simple_having: tuple[int, str, Any] | None = None
        h = node.having
        if (
            isinstance(h, ir.BinOp)
            and isinstance(h.left, ir.MeasureRef)
            and h.left.name in self._measure_index
            and isinstance(h.right, ir.Literal_)
            and h.op in ("==", "!=", "<", "<=", ">", ">=")
        ):
            self._simple_having = (self._measure_index[h.left.name], h.op, h.right.value)
        self._names = tuple(m.name for m in node.measures) + tuple(n for n, _ in node.compute)
        self.late = 0  # events older than an already final window (never, if fed in order)
        # tumbling: window start -> group -> cell; few windows are open at a time
        self._windows: dict[int, dict[GroupKey, TCell]] = {}
        self._cur: TCell = []  # the tumbling cell being evaluated
        self._memo: dict[str, Any] = {}  # its computed values
        self._next_close = _NEVER  # smallest end of an open window
        self._closed_until = -(2**63)  # events before this belong to final windows
        # sliding: group -> cell
        self._groups: dict[GroupKey, _Cell] = {}
        self._last_sweep = -(2**63)
        # deviation history: group -> deque of (window start, value per deviation)
        self._history: dict[GroupKey, deque[tuple[int, tuple[float | int | None, ...]]]] = {}
        self._max_lookback = max((d.lookback_ms for d in deviation), default=0)
        self._history_swept = -(2**63)

    # ----------------------------------------------------------------- Detector protocol
    def push(self, stream: str, event: Event) -> Iterable[Alert]:
        if stream != self.node.stream:
            return _NO_ALERTS
        if self.sliding:
            return self._push_sliding(event)
        return self._push_tumbling(event)

    def advance(self, watermark: int) -> Iterable[Alert]:
        if self.sliding:
            self._sweep_sliding(watermark)
            return _NO_ALERTS
        if watermark >= self._next_close:
            return self._close(watermark)
        return _NO_ALERTS

    def next_wake(self) -> int:
        if self.sliding:
            return self._last_sweep + self.size
        return self._next_close

    def finish(self, now: int | None) -> Iterable[Alert]:
        if self.sliding:
            self._groups.clear()
            return _NO_ALERTS
        # Every open window is final at the end of the input, whatever ``now`` says: the
        # evaluator reports what the data shows, never "pending" windows.
        out = self._close(None)
        self._history.clear()
        return out

    def state_size(self) -> int:
        """Number of stored items (cells, retained events, history entries): the memory bound
        tests check."""
        n = len(self._groups) + sum(len(c.items) for c in self._groups.values())
        for groups in self._windows.values():
            n += len(groups) + sum(len(c[_IDS]) for c in groups.values())
        n += len(self._history) + sum(len(h) for h in self._history.values())
        return n

    # ----------------------------------------------------------------- common
    def _new_cell(self, event: Event, key: GroupKey) -> _Cell:
        accs = [f() for f in self._factories]
        return _Cell(accs, raw_key(event, self._keys, key))

    def _evaluate(
        self, key: RawKey, accs: list[Accumulator], full: bool
    ) -> tuple[dict[str, Any], bool]:
        """Whether ``having`` holds, and the measures and computed values (declaration order;
        only those ``having`` needed unless ``full``). Values are computed lazily and once, so
        evaluating a sliding window after each event costs only what ``having`` reads."""
        values: dict[str, Any] = {}
        midx = self._measure_index
        computed = self._compiled_compute
        keys = self._keys

        def get(ref: ir.FieldRef) -> Any:
            if ref.step is None and ref.name in keys:
                return key[keys.index(ref.name)][1]
            return None

        def measure(name: str) -> Any:
            if name in values:
                return values[name]
            i = midx.get(name)
            v = accs[i].result() if i is not None else computed[name](get, measure)
            values[name] = v
            return v

        holds = True if self._having is None else truthy(self._having(get, measure))
        if full or holds:
            values = {name: measure(name) for name in self._names}
        return values, holds

    def _alert(
        self, key: RawKey, values: dict[str, Any], start: int, end: int, ids: Iterable[str]
    ) -> Alert:
        measures = tuple(values.items())
        return Alert(
            analytic=self.analytic,
            key=key,
            start=start,
            end=end,
            measures=measures,
            evidence=tuple(ids),
            pairs=key + measures,
        )

    # ----------------------------------------------------------------- tumbling
    def _push_tumbling(self, event: Event) -> Iterable[Alert]:
        ts = event.ts
        out: Iterable[Alert] = _NO_ALERTS
        # Events arrive in time order: an event at ts finalises every window ending at or before
        # ts, so memory stays bounded even if the engine never advances the watermark.
        if ts >= self._next_close:
            out = self._close(ts)
        if ts < self._closed_until:
            self.late += 1
            return out
        fields = event.fields
        keys = key_tuples(event, self._keys)
        if not keys:
            return out
        start = ts - ts % self.size  # floor: also right for negative times
        groups = self._windows.get(start)
        if groups is None:
            groups = self._windows[start] = {}
            self._next_close = min(self._next_close, start + self.size)
        eid = event.id
        if self._lanes_fixed:  # only `count: true` and int sums: no accumulator objects
            upd = self._lane_updates
            raw = [fields.get(f) for _, f in upd]
            for key in keys:
                cell = groups.get(key)
                if cell is None:
                    cell = groups[key] = [self._raw_values(event, key), [eid], *self._lane_init]
                else:
                    cell[_IDS].append(eid)
                for (pos, _), v in zip(upd, raw, strict=True):
                    if type(v) is int:
                        n = cell[pos]
                        if type(n) is int:
                            cell[pos] = n + 1
                            cell[pos + 1] += v
                        else:
                            n.add(v)
                    elif v is not None:
                        self._sum_slow(cell, pos, v)
            return out
        if self._getters is None:
            raw = [fields.get(f) for f in self._fields]  # type: ignore[arg-type]
        else:
            raw = [g(fields) for g in self._getters]
        for key in keys:
            cell = groups.get(key)
            if cell is None:
                cell = groups[key] = self._new_tcell(event, key)
            cell[_IDS].append(eid)
            for (kind, pos), v in zip(self._lanes, raw, strict=True):
                if kind == _ACC:
                    cell[pos].add(v)
                elif kind == _SUM:
                    if type(v) is int and type(cell[pos]) is int:
                        cell[pos] += 1
                        cell[pos + 1] += v
                    elif v is not None:
                        self._sum_slow(cell, pos, v)
        return out

    def _close(self, watermark: int | None) -> list[Alert]:
        """Finalise windows with end <= watermark (all when None), oldest first."""
        size = self.size
        due = sorted(s for s in self._windows if watermark is None or s + size <= watermark)
        out: list[Alert] = []
        for start in due:
            groups = self._windows.pop(start)
            end = start + size
            for key, cell in groups.items():
                values, fire = self._evaluate_tcell(cell, bool(self.deviation))
                if self.deviation:
                    fire = self._deviates(key, start, values, fire)
                if fire:
                    raw = tuple(zip(self._keys, cell[_RAW], strict=True))
                    out.append(self._alert(raw, values, start, end, cell[_IDS]))
            self._closed_until = max(self._closed_until, end)
            if self.deviation and start - self._history_swept >= self._max_lookback:
                self._sweep_history(start)
        self._next_close = min(self._windows, default=_NEVER - size) + size
        return out

    # ----------------------------------------------------------------- tumbling cells
    def _init_lanes(self, measures: tuple[ir.Measure, ...]) -> None:
        lanes: list[tuple[int, int]] = []  # (kind, slot) per measure
        init: list[Any] = []  # the lane slots of a new cell
        pos = 2
        for m in measures:
            if m.kind == "count" and m.field is None and m.where is None:
                lanes.append((_COUNT, 0))
            elif m.kind == "sum" and m.where is None:
                lanes.append((_SUM, pos))
                init += [0, 0]
                pos += 2
            else:
                lanes.append((_ACC, pos))
                init.append(None)
                pos += 1
        self._lanes = tuple(lanes)
        self._lane_init = tuple(init)
        self._lanes_fixed = all(kind != _ACC for kind, _ in lanes)
        # Fixed lanes: (slot, field) of every sum (counts need no update).
        self._lane_updates = tuple(
            (p, m.field or "") for (kind, p), m in zip(lanes, measures, strict=True) if kind == _SUM
        )

    def _new_tcell(self, event: Event, key: GroupKey) -> TCell:
        cell: TCell = [self._raw_values(event, key), [], *self._lane_init]
        for (kind, pos), make in zip(self._lanes, self._factories, strict=True):
            if kind == _ACC:
                cell[pos] = make()
        return cell

    def _raw_values(self, event: Event, key: GroupKey) -> tuple[Any, ...]:
        """The key values as they appear in the group's first event (see :func:`raw_key`)."""
        values = tuple(map(event.fields.get, self._keys))
        for v in values:
            if type(v) is list or type(v) is tuple:  # JSON values: no subclasses (hot path)
                return tuple(v for _, v in raw_key(event, self._keys, key))
        return values

    @staticmethod
    def _sum_slow(cell: TCell, pos: int, v: Any) -> None:
        """Add a value other than an int to a sum lane, switching it to a Sum accumulator that
        holds the same state (the int fast path of ``Sum.add``: count and integer sum)."""
        acc = cell[pos]
        if type(acc) is int:
            acc = Sum()
            acc.n, acc.s1i = cell[pos], cell[pos + 1]
            cell[pos] = acc
        acc.add(v)

    def _lane_result(self, cell: TCell, i: int) -> Any:
        kind, pos = self._lanes[i]
        if kind == _COUNT:
            return len(cell[_IDS])
        if kind == _SUM:
            n = cell[pos]
            if type(n) is int:
                return None if n == 0 else cell[pos + 1]
        return cell[pos].result()

    def _evaluate_tcell(self, cell: TCell, full: bool) -> tuple[dict[str, Any], bool]:
        """:meth:`_evaluate` of a tumbling cell, without closures per cell: ``having`` reads
        measures and computed values (once each) through :meth:`_tget` and :meth:`_tmeasure`."""
        self._cur = cell
        memo = self._memo
        memo.clear()
        holds = True if self._having is None else truthy(self._having(self._tget, self._tmeasure))
        if full or holds:
            return {name: self._tmeasure(name) for name in self._names}, holds
        return {}, holds

    def _tget(self, ref: ir.FieldRef) -> Any:
        keys = self._keys
        if ref.step is None and ref.name in keys:
            return self._cur[_RAW][keys.index(ref.name)]
        return None

    def _tmeasure(self, name: str) -> Any:
        memo = self._memo
        if name in memo:
            return memo[name]
        i = self._measure_index.get(name)
        if i is not None:
            v = self._lane_result(self._cur, i)
        else:
            v = self._compiled_compute[name](self._tget, self._tmeasure)
        memo[name] = v
        return v

    # ----------------------------------------------------------------- deviation
    def _deviates(self, key: GroupKey, start: int, values: dict[str, Any], fire: bool) -> bool:
        """Check every deviation condition against the group's history, then record the
        current window in it (whether or not it fires)."""
        hist = self._history.get(key)
        current = tuple(to_number(values.get(d.measure)) for d in self.deviation)
        if fire:
            for i, d in enumerate(self.deviation):
                past = [
                    v[i]
                    for s, v in (hist or ())
                    if s >= start - d.lookback_ms and s + self.size <= start and v[i] is not None
                ]
                if not _deviation_holds(d, current[i], past):
                    fire = False
                    break
        if hist is None:
            hist = self._history[key] = deque()
        hist.append((start, current))
        # Windows older than the longest lookback can never be history again.
        horizon = start - self._max_lookback
        while hist and hist[0][0] < horizon:
            hist.popleft()
        return fire

    def _sweep_history(self, start: int) -> None:
        # Groups that stopped appearing keep history only until it falls out of every lookback;
        # sweeping once per lookback period keeps this amortised O(1) per window.
        horizon = start - self._max_lookback
        for key in [k for k, h in self._history.items() if not h or h[-1][0] < horizon]:
            del self._history[key]
        self._history_swept = start

    # ----------------------------------------------------------------- sliding
    def _push_sliding(self, event: Event) -> Iterable[Alert]:
        ts = event.ts
        if ts - self._last_sweep >= self.size:
            self._sweep_sliding(ts)
        fields = event.fields
        keys = key_tuples(event, self._keys)
        if not keys:
            return _NO_ALERTS
        if self._getters is None:
            raw = tuple([fields.get(f) for f in self._fields])  # type: ignore[arg-type]
        else:
            raw = tuple([g(fields) for g in self._getters])
        item = (ts, event.id, raw)
        lo = ts - self.size  # inclusive lower bound
        out: list[Alert] | None = None
        for key in keys:
            cell = self._groups.get(key)
            if cell is None:
                cell = self._groups[key] = self._new_cell(event, key)
            items = cell.items
            accs = cell.accs
            items.append(item)
            for acc, v in zip(accs, raw, strict=True):
                acc.add(v)
            while items[0][0] < lo:
                _, _, old = items.popleft()
                for acc, v in zip(accs, old, strict=True):
                    acc.remove(v)
            simple = self._simple_having
            if simple is not None:  # `measure <op> literal`: same compare(), no closures
                fire = compare(simple[1], accs[simple[0]].result(), simple[2])
            else:
                fire = self._evaluate(cell.key, accs, False)[1]
            if fire:
                values = self._evaluate(cell.key, accs, True)[0]
                alert = self._alert(cell.key, values, items[0][0], ts, (it[1] for it in items))
                # Consume the window: its events cannot contribute to another alert.
                del self._groups[key]
                if out is None:
                    out = []
                out.append(alert)
        return _NO_ALERTS if out is None else out

    def _sweep_sliding(self, watermark: int) -> None:
        """Drop events no future window can contain (ts < watermark - size), and empty groups.
        Run at most once per window size of watermark progress: amortised O(1) per event."""
        if watermark - self._last_sweep < self.size:
            return
        self._last_sweep = watermark
        lo = watermark - self.size
        dead: list[GroupKey] = []
        for key, cell in self._groups.items():
            items = cell.items
            while items and items[0][0] < lo:
                _, _, old = items.popleft()
                for acc, v in zip(cell.accs, old, strict=True):
                    acc.remove(v)
            if not items:
                dead.append(key)
        for key in dead:
            del self._groups[key]


def _value_getter(
    m: ir.Measure, lookups: Mapping[str, ir.Lookup]
) -> Callable[[Mapping[str, Any]], Any]:
    """What an event gives measure ``m``'s accumulator: its field's value (``True`` for
    ``count: true``, whose conditional form counts the events that give a non-null value) when
    the condition holds, else None, which no accumulator counts."""
    if m.where is None:
        name = m.field
        return (lambda fields: fields.get(name)) if name is not None else (lambda fields: True)
    holds = compile_predicate(m.where, lookups)
    field = m.field
    if field is None:
        return lambda fields: True if holds(fields) else None
    return lambda fields: fields.get(field) if holds(fields) else None


def _deviation_holds(d: ir.Deviation, current: float | int | None, past: list[Any]) -> bool:
    if current is None or len(past) < max(d.min_history, 1):
        return False
    values = [*past, current] if d.include_current else past
    below = d.direction == "below"
    if d.k is not None:
        m, sd = mean(values), sample_stdev(values)
        if m is None or sd is None:
            return False
        if not (current < m - d.k * sd if below else current > m + d.k * sd):
            return False
    if d.percentile is not None:
        q = percentile(sorted(values), d.percentile)
        if q is None or not (current < q if below else current > q):
            return False
    return d.ratio is None or _ratio_holds(current, values, d.ratio, below)


def _ratio_holds(current: float | int, values: list[Any], ratio: float, below: bool) -> bool:
    """``current >= ratio * mean`` (below: ``current <= mean / ratio``) in exact rational
    arithmetic, as ``current * n >= ratio * sum`` (``current * n * ratio <= sum``), so a tie
    is decided by the numbers and not by how a mean happened to round. A mean that is not
    positive has no "times the usual": the condition is false."""
    total = sum((Fraction(v) for v in values), Fraction(0))
    if total <= 0:
        return False
    c, n, r = Fraction(current), len(values), Fraction(ratio)
    return c * n * r <= total if below else c * n >= r * total
