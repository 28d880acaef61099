"""History for the ``first_seen`` and ``rarity`` baselines.

The engine feeds :class:`HistoryIndex` the events of history streams in time order
(:meth:`HistoryIndex.observe`) and asks, for an alert candidate whose window starts at
``start``, about the history interval ``[start - lookback, start)``:

* :meth:`HistoryIndex.first_seen_ok`: True when the candidate's key tuple was *not* seen in it.
* :meth:`HistoryIndex.rarity_ok`: True when the number of distinct ``across`` values (or distinct
  UTC days, ``across == "@days"``) seen with the key in it is ``< max``.

Semantics (the specification; docs/semantics.md, section "Baselines"):

* The interval is half-open: an occurrence at exactly ``start - lookback`` counts as seen, one at
  ``start`` does not (the detection window is excluded from its own history).
* Key values and ``across`` values compare by the one key rule of the product
  (:mod:`compiler.evaluator.keys`): exactly as text (case-SENSITIVE), a number as its decimal
  text (``"443" == 443``, ``"7" != "7.0"``); booleans are not numbers. For
  case-insensitive identity (Windows host or process names) derive a ``lower()``-ed field on both
  the history and the candidate stream.
* A history event with a missing/null key field records nothing; a multi-valued field records
  every element (cartesian product over several keys). Likewise a multi-valued candidate field
  was "seen" when any of its values was (``first_seen``), and ``rarity`` counts the distinct
  ``across`` values seen with any of them. A null candidate key equals nothing: never seen, so
  both conditions hold.
* A history event with a missing/null ``across`` field adds nothing to ``rarity``; ``@days`` uses
  the UTC calendar day of the event time.

Memory: per key (and per (key, across value)) the index keeps the latest occurrence older than
the *query horizon* plus the occurrences at or after it. The caller promises, via
:meth:`HistoryIndex.prune`, that later queries have ``start >= watermark - horizon``; only the
latest occurrence before that bound can decide any such query, and keys whose latest occurrence
is older than the bound minus the longest lookback are forgotten. So memory is proportional to the
number of distinct keys plus the occurrences inside the horizon.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from typing import Any

from compiler import ir
from compiler.evaluator.keys import Key, alternatives, key_tuples, value_tuples
from compiler.evaluator.model import Event

DAY_MS = 86_400_000
_MIN = -(2**63)


class _Seen:
    """Occurrence times of one key: the latest one before the horizon, and those after it."""

    __slots__ = ("old", "recent")

    def __init__(self) -> None:
        self.old = _MIN  # latest occurrence < horizon (_MIN: none)
        self.recent: list[int] = []  # occurrences >= horizon, ascending, without duplicates

    def add(self, ts: int) -> None:
        r = self.recent
        if not r or ts > r[-1]:
            r.append(ts)
        elif ts != r[-1]:
            i = bisect_left(r, ts)  # out of order input: still exact
            if i == len(r) or r[i] != ts:
                insort(r, ts)

    def seen(self, lo: int, hi: int) -> bool:
        """Some occurrence in ``[lo, hi)``."""
        r = self.recent
        i = bisect_left(r, lo)
        if i < len(r) and r[i] < hi:
            return True
        return lo <= self.old < hi

    def compact(self, horizon: int) -> None:
        r = self.recent
        i = bisect_left(r, horizon)
        if i:
            self.old = max(self.old, r[i - 1])
            del r[:i]

    def latest(self) -> int:
        return self.recent[-1] if self.recent else self.old


class HistoryIndex:
    """Occurrence index for the ``first_seen``/``rarity`` baselines of one analytic.

    ``nodes`` are the baselines to serve; nodes reading the same stream and keys (and ``across``)
    share one table whatever their lookbacks.
    """

    def __init__(self, nodes: Iterable[ir.FirstSeen | ir.Rarity]) -> None:
        # (stream, keys) -> key tuple -> occurrences
        self._first: dict[tuple[str, tuple[str, ...]], dict[Key, _Seen]] = {}
        # (stream, keys, across) -> key tuple -> across value -> occurrences
        self._rare: dict[tuple[str, tuple[str, ...], str], dict[Key, dict[Any, _Seen]]] = {}
        self._lookback: dict[tuple[Any, ...], int] = {}  # table -> longest lookback
        for n in nodes:
            t: tuple[Any, ...]
            if isinstance(n, ir.FirstSeen):
                t = (n.stream, n.keys)
                self._first.setdefault(t, {})
            else:
                t = (n.stream, n.keys, n.across)
                self._rare.setdefault(t, {})
            self._lookback[t] = max(self._lookback.get(t, 0), n.lookback_ms)
        self._horizon = _MIN  # queries must have start >= this

    # ----------------------------------------------------------------- feeding
    def observe(self, event: Event, stream: str | None = None) -> None:
        """Record a history event (of ``stream``; None: of every history stream served)."""
        fields = event.fields
        ts = event.ts
        for (s, keys), table in self._first.items():
            if stream is not None and s != stream:
                continue
            for kt in key_tuples(event, keys):
                seen = table.get(kt)
                if seen is None:
                    seen = table[kt] = _Seen()
                seen.add(ts)
        for (s, keys, across), rtable in self._rare.items():
            if stream is not None and s != stream:
                continue
            acr = (ts // DAY_MS,) if across == "@days" else alternatives(fields.get(across))
            if not acr:
                continue
            for kt in key_tuples(event, keys):
                per = rtable.get(kt)
                if per is None:
                    per = rtable[kt] = {}
                for a in acr:
                    seen = per.get(a)
                    if seen is None:
                        seen = per[a] = _Seen()
                    seen.add(ts)

    def prune(self, watermark_ms: int, horizon_ms: int) -> None:
        """Promise that every later query has ``start >= watermark_ms - horizon_ms`` and drop what
        such queries cannot need. Costs O(stored keys): call it periodically (e.g. once per
        horizon of watermark progress), not per event."""
        h = watermark_ms - horizon_ms
        if h <= self._horizon:
            return
        self._horizon = h
        for t, table in self._first.items():
            forget = h - self._lookback[t]  # seen before this: outside every future interval
            for kt in list(table):
                seen = table[kt]
                seen.compact(h)
                if seen.latest() < forget:
                    del table[kt]
        for t3, rtable in self._rare.items():
            forget = h - self._lookback[t3]
            for kt in list(rtable):
                per = rtable[kt]
                for a in list(per):
                    seen = per[a]
                    seen.compact(h)
                    if seen.latest() < forget:
                        del per[a]
                if not per:
                    del rtable[kt]

    def size(self) -> int:
        """Stored occurrence records (for memory tests)."""
        n = sum(1 + len(s.recent) for t in self._first.values() for s in t.values())
        for rt in self._rare.values():
            n += sum(1 + len(s.recent) for per in rt.values() for s in per.values())
        return n

    # ----------------------------------------------------------------- queries
    def _check(self, start_ms: int) -> None:
        if start_ms < self._horizon:
            raise ValueError(
                f"baseline query at {start_ms} is before the pruned horizon {self._horizon}"
            )

    def first_seen_ok(self, node: ir.FirstSeen, values: Sequence[Any], start_ms: int) -> bool:
        """True when no key tuple of ``values`` (the candidate's ``node.current`` fields) occurred
        in ``[start_ms - lookback, start_ms)``."""
        self._check(start_ms)
        table = self._first[(node.stream, node.keys)]
        lo = start_ms - node.lookback_ms
        for kt in value_tuples(values):
            seen = table.get(kt)
            if seen is not None and seen.seen(lo, start_ms):
                return False
        return True

    def rarity_ok(self, node: ir.Rarity, values: Sequence[Any], start_ms: int) -> bool:
        """True when fewer than ``node.max`` distinct ``across`` values (or UTC days) occurred with
        the key in ``[start_ms - lookback, start_ms)``."""
        self._check(start_ms)
        rtable = self._rare[(node.stream, node.keys, node.across)]
        lo = start_ms - node.lookback_ms
        limit = node.max
        found: set[Any] = set()
        for kt in value_tuples(values):
            per = rtable.get(kt)
            if per is None:
                continue
            for a, seen in per.items():
                if a not in found and seen.seen(lo, start_ms):
                    found.add(a)
                    if len(found) >= limit:  # early exit: popular keys have many values
                        return False
        return len(found) < limit
