"""Named event streams: logsource routing, stream-to-stream joins, enrichment, derived fields and
filters (docs/semantics.md "Streams").

For one event the order is: logsource (or source stream) -> join -> enrich -> derive -> filter.
Every stream's output is in input order ``(ts, seq)``. A stream with a join may only release an
event once every event of the other stream that could still be its nearest partner has arrived,
so it *lags* the input by a static **lateness** (ms): at input time ``T`` (the newest event's
``ts``) every future output of stream ``S`` has ``ts >= T - lateness(S)``. Downstream operators
use that bound as their watermark.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from compiler import ir
from compiler.evaluator.keys import Key, key_tuples
from compiler.evaluator.model import Event
from compiler.evaluator.predicates import (
    compile_predicate,
    is_null,
    lookup_candidates,
    lookup_columns,
)
from compiler.evaluator.routing import Router
from compiler.evaluator.values import eval_expr

# --------------------------------------------------------------------------- logsources
# docs/language.md "Logsources", as data so that backends can reuse the same conditions.
LOGSOURCE_CATEGORIES: dict[str, ir.Predicate] = {
    "process_creation": ir.And(
        (ir.Eq("event.category", ("process",)), ir.Eq("event.type", ("start",)))
    ),
    "network_connection": ir.And(
        (ir.Eq("event.category", ("network",)), ir.Eq("event.type", ("connection",)))
    ),
    "dns_query": ir.And((ir.Eq("event.category", ("network",)), ir.Exists("dns.question.name"))),
    "network_flow": ir.And(
        (
            ir.Eq("event.category", ("network",)),
            ir.Or((ir.Exists("source.bytes"), ir.Exists("destination.bytes"))),
        )
    ),
}


def _ecs(category: str, *types: str, action: str | None = None) -> ir.Predicate:
    parts: list[ir.Predicate] = [ir.Eq("event.category", (category,))]
    if types:
        parts.append(ir.Eq("event.type", types))
    if action is not None:
        parts.append(ir.Eq("event.action", (action,)))
    return ir.And(tuple(parts))


def _event_code(provider: str, *codes: str) -> ir.Predicate:
    return ir.And((ir.Eq("event.provider", (provider,)), ir.Eq("event.code", codes)))


# The rest of Sigma's category taxonomy (what `siemc import sigma` reads, docs/import.md): the
# ECS categorisation where ECS has one (event.category and event.type, observer.type for
# proxies and firewalls), else the event's provider and code as Winlogbeat and Elastic's
# Sysmon integration record them (Sysmon event ids, PowerShell's 4103/4104 and 400/600/800).
_SYSMON, _PS, _PS_CLASSIC = "Microsoft-Windows-Sysmon", "Microsoft-Windows-PowerShell", "PowerShell"
LOGSOURCE_CATEGORIES.update(
    {
        "file_event": _ecs("file", "creation"),
        "file_change": _ecs("file", "change"),
        "file_rename": _ecs("file", "change", action="rename"),
        "file_delete": _ecs("file", "deletion"),
        "file_access": _ecs("file", "access"),
        "file_executable_detected": _event_code(_SYSMON, "29"),
        "create_stream_hash": _event_code(_SYSMON, "15"),
        "registry_add": _ecs("registry", "creation"),
        "registry_set": _ecs("registry", "change"),
        "registry_rename": _ecs("registry", "change", action="rename"),
        "registry_delete": _ecs("registry", "deletion"),
        "registry_event": _ecs("registry"),
        "image_load": _ecs("library", "start"),
        "driver_load": _ecs("driver", "start"),
        "process_access": _ecs("process", "access"),
        "create_remote_thread": _event_code(_SYSMON, "8"),
        "raw_access_thread": _event_code(_SYSMON, "9"),
        "pipe_created": _event_code(_SYSMON, "17", "18"),
        "wmi_event": _event_code(_SYSMON, "19", "20", "21"),
        "process_tampering": _event_code(_SYSMON, "25"),
        "sysmon_status": _event_code(_SYSMON, "4", "16"),
        "sysmon_error": _event_code(_SYSMON, "255"),
        "ps_module": _event_code(_PS, "4103"),
        "ps_script": _event_code(_PS, "4104"),
        "ps_classic_start": _event_code(_PS_CLASSIC, "400"),
        "ps_classic_provider_start": _event_code(_PS_CLASSIC, "600"),
        "ps_classic_script": _event_code(_PS_CLASSIC, "800"),
        "dns": LOGSOURCE_CATEGORIES["dns_query"],
        "webserver": _ecs("web", "access"),
        "proxy": ir.And((ir.Eq("event.category", ("web",)), ir.Eq("observer.type", ("proxy",)))),
        "firewall": ir.And(
            (ir.Eq("event.category", ("network",)), ir.Eq("observer.type", ("firewall",)))
        ),
        "antivirus": _ecs("malware"),
        "database": _ecs("database"),
        # application logs (Java, Python, Ruby, ...) have no ECS category: the product selects
        "application": ir.TRUE,
    }
)

# Operating systems select on host.os.type; every other product is an event.module value
# (zeek, sysmon, auditd, ... as set by the input profiles).
OS_PRODUCTS = frozenset({"windows", "linux", "macos"})


def logsource_predicate(ls: ir.LogSource) -> ir.Predicate:
    """The ECS condition of a logsource: the AND of the conditions of its keys."""
    parts: list[ir.Predicate] = []
    if ls.category is not None:
        if ls.category not in LOGSOURCE_CATEGORIES:
            known = ", ".join(sorted(LOGSOURCE_CATEGORIES))
            raise ValueError(f"unknown logsource category {ls.category!r} (known: {known})")
        parts.append(LOGSOURCE_CATEGORIES[ls.category])
    if ls.product is not None:
        field = "host.os.type" if ls.product.lower() in OS_PRODUCTS else "event.module"
        parts.append(ir.Eq(field, (ls.product,)))
    if ls.service is not None:
        if ls.product is not None:
            parts.append(ir.Eq("event.dataset", (f"{ls.product}.{ls.service}",)))
        else:
            # No product: any module's dataset of that name (`zeek.conn` for `conn`).
            parts.append(
                ir.Or(
                    (
                        ir.Eq("event.dataset", (ls.service,)),
                        ir.StrMatch("event.dataset", "endswith", (f".{ls.service}",)),
                    )
                )
            )
    return ir.And(tuple(parts))


# --------------------------------------------------------------------------- enrich
class Enricher:
    """A left join with a lookup: the first row (CSV order) whose ``match`` columns equal the
    event case-insensitively adds its ``add`` columns; no row (or an empty cell) leaves those
    fields absent, removing a value the event had."""

    def __init__(self, node: ir.Enrich, lookups: Mapping[str, ir.Lookup]) -> None:
        if node.lookup not in lookups:
            raise ValueError(f"unknown lookup {node.lookup!r}")
        lk = lookups[node.lookup]
        self.names = tuple(f for _, f in node.match)
        match_idx = lookup_columns(lk, tuple(c for c, _ in node.match))
        add_idx = lookup_columns(lk, tuple(c for c, _ in node.add))
        self.dests = tuple(d for _, d in node.add)
        # key -> (row number, added cells); setdefault keeps the first row in CSV order.
        self.table: dict[tuple[str, ...], tuple[int, tuple[str, ...]]] = {}
        for n, row in enumerate(lk.rows):
            key = tuple(row[i].lower() for i in match_idx)
            self.table.setdefault(key, (n, tuple(row[i] for i in add_idx)))

    def apply(self, fields: dict[str, Any]) -> None:
        best: tuple[int, tuple[str, ...]] | None = None
        for cand in lookup_candidates(fields, self.names):
            hit = self.table.get(cand)
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        for i, dest in enumerate(self.dests):
            if best is None or best[1][i] == "":
                fields.pop(dest, None)
            else:
                fields[dest] = best[1][i]


# --------------------------------------------------------------------------- join
JoinKey = Key


class JoinOp:
    """Inner join of each event of this stream to the nearest-in-time event of ``other`` with
    equal keys (ties in distance: the earlier event). Unmatched events are dropped. Keys are
    compared by the one key rule of the product (:mod:`compiler.evaluator.keys`: exactly, strings
    case-sensitive, numeric strings are numbers, a multi-valued key matches on any element).

    ``lag`` is how far after an event's ``ts`` a partner may lie (``within``, or 0 for
    ``before``); the event is released once the other stream's frontier has passed
    ``ts + lag``. State: the pending events of this stream and the other stream's events of the
    last ``within`` before the oldest event that may still need them."""

    def __init__(self, node: ir.Join) -> None:
        self.on = node.on
        self.within = node.within_ms
        self.direction = node.direction
        self.add = node.add
        self.lag = 0 if node.direction == "before" else node.within_ms
        self.index: dict[JoinKey, deque[Event]] = {}
        self.expiry: deque[tuple[int, JoinKey]] = deque()
        self.pending: deque[tuple[Event, tuple[JoinKey, ...]]] = deque()

    def state_size(self) -> int:
        return len(self.pending) + len(self.expiry)

    def add_other(self, events: Iterable[Event]) -> None:
        for o in events:
            for k in key_tuples(o, self.on):
                bucket = self.index.get(k)
                if bucket is None:
                    bucket = self.index[k] = deque()
                bucket.append(o)
                self.expiry.append((o.ts, k))

    def add_this(self, events: Iterable[Event]) -> None:
        for e in events:
            keys = key_tuples(e, self.on)
            if keys:  # without keys it can never match: drop now, not at release
                self.pending.append((e, keys))

    def release(self, this_frontier: int | None, other_frontier: int | None) -> list[Event]:
        """Join and release the pending events whose partners are all known (all of them when
        the frontiers are None: the end of input), then forget partners nobody can need."""
        out: list[Event] = []
        pending = self.pending
        while pending and (other_frontier is None or pending[0][0].ts + self.lag < other_frontier):
            e, keys = pending.popleft()
            joined = self._join(e, keys)
            if joined is not None:
                out.append(joined)
        if this_frontier is None:
            oldest = None if not pending else pending[0][0].ts
        else:
            oldest = this_frontier if not pending else min(this_frontier, pending[0][0].ts)
        self._expire(None if oldest is None else oldest - self.within)
        return out

    def _expire(self, cutoff: int | None) -> None:
        expiry, index = self.expiry, self.index
        while expiry and (cutoff is None or expiry[0][0] < cutoff):
            _, k = expiry.popleft()
            bucket = index[k]
            bucket.popleft()  # buckets and the expiry queue share insertion (ts) order
            if not bucket:
                del index[k]

    def _join(self, e: Event, keys: tuple[JoinKey, ...]) -> Event | None:
        t, w, direction = e.ts, self.within, self.direction
        best: Event | None = None
        best_rank: tuple[int, int, int] = (0, 0, 0)
        for k in keys:
            for o in self.index.get(k, ()):
                dt = o.ts - t
                if dt > w:
                    break  # buckets are in time order
                if dt < -w or (direction == "before" and dt > 0):
                    continue
                if direction == "after" and dt < 0:
                    continue
                rank = (abs(dt), o.ts, o.seq)
                if best is None or rank < best_rank:
                    best, best_rank = o, rank
        if best is None:
            return None
        fields = dict(e.fields)
        for name in self.add:
            v = best.fields.get(name)
            if not is_null(v):  # the other's value when it has one, else ours stays
                fields[name] = v
        return Event(e.ts, e.seq, e.id, fields)


# --------------------------------------------------------------------------- pipelines
@dataclass(frozen=True, slots=True)
class Route:
    """Where one input event goes: the logsource streams it satisfies, and ``plan``, the streams
    to run for it in stream order (those and the ``from:`` streams reading them)."""

    matched: frozenset[str]
    plan: tuple[Pipe, ...]


@dataclass(slots=True)
class Pipe:
    """One stream, compiled. ``rank`` is its position in the analytic's topological order."""

    name: str
    rank: int
    lateness: int
    logsource: ir.Predicate | None
    source: str | None
    join: JoinOp | None
    join_stream: str | None
    source_lateness: int
    other_lateness: int
    transform: Callable[[Event], Event | None]


def _make_transform(
    stream: ir.Stream, lookups: Mapping[str, ir.Lookup], copied: bool
) -> Callable[[Event], Event | None]:
    """enrich -> derive -> filter. ``copied``: the event is already a private copy (a join
    result), otherwise enrich/derive copy the fields, because one input event is shared by
    every stream it belongs to."""
    keep = compile_predicate(stream.filter, lookups)
    enrichers = [Enricher(e, lookups) for e in stream.enrich]
    derive = stream.derive
    if not enrichers and not derive:
        return lambda e: e if keep(e.fields) else None

    def transform(e: Event) -> Event | None:
        fields = e.fields if copied else dict(e.fields)
        for en in enrichers:
            en.apply(fields)

        def get(ref: ir.FieldRef) -> Any:
            return fields.get(ref.name)

        # In order: a derived field may read those derived before it.
        for name, expr in derive:
            v = eval_expr(expr, get, None)
            if v is None:
                fields.pop(name, None)
            else:
                fields[name] = v
        if not keep(fields):
            return None
        return e if fields is e.fields else Event(e.ts, e.seq, e.id, fields)

    return transform


def required_streams(analytic: ir.Analytic, roots: Iterable[str]) -> set[str]:
    """``roots`` and every stream they read (source streams and join partners)."""
    need: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in need:
            continue
        need.add(name)
        s = analytic.stream(name)
        if isinstance(s.source, str):
            todo.append(s.source)
        if s.join is not None:
            todo.append(s.join.stream)
    return need


class StreamSet:
    """The compiled streams an analytic needs, stepped once per input event."""

    def __init__(self, analytic: ir.Analytic, names: Iterable[str]) -> None:
        lookups = {lk.name: lk for lk in analytic.lookups}
        need = required_streams(analytic, names)
        self.pipes: list[Pipe] = []
        lateness: dict[str, int] = {}
        for rank, s in enumerate(analytic.streams):
            if s.name not in need:
                continue
            ls_pred = None
            src_late = 0
            if isinstance(s.source, str):
                if s.source not in lateness:
                    raise ValueError(f"stream {s.name!r} reads {s.source!r}, not defined before it")
                src_late = lateness[s.source]
            else:
                ls_pred = logsource_predicate(s.source)
            join = None
            other_late = 0
            late = src_late
            if s.join is not None:
                if s.join.stream not in lateness:
                    raise ValueError(
                        f"stream {s.name!r} joins {s.join.stream!r}, not defined before it"
                    )
                join = JoinOp(s.join)
                other_late = lateness[s.join.stream]
                late = max(src_late, other_late + join.lag)
            lateness[s.name] = late
            self.pipes.append(
                Pipe(
                    name=s.name,
                    rank=rank,
                    lateness=late,
                    logsource=ls_pred,
                    source=s.source if isinstance(s.source, str) else None,
                    join=join,
                    join_stream=None if s.join is None else s.join.stream,
                    source_lateness=src_late,
                    other_lateness=other_late,
                    transform=_make_transform(s, lookups, copied=join is not None),
                )
            )
        self.lateness = lateness
        self.by_name = {p.name: p for p in self.pipes}
        self.has_joins = any(p.join is not None for p in self.pipes)
        roots = [p for p in self.pipes if p.logsource is not None]
        conditions = [p.logsource for p in roots if p.logsource is not None]

        def outcome(positions: tuple[int, ...]) -> Route:
            matched = frozenset(roots[i].name for i in positions)
            plan: list[Pipe] = []
            reached = set(matched)
            for p in self.pipes:  # topological order: a source comes before its readers
                if p.name in matched or (p.source is not None and p.source in reached):
                    reached.add(p.name)
                    plan.append(p)
            return Route(matched, tuple(plan))

        self.router: Router[Route] = Router(conditions, lookups, outcome)
        self._chained = any(p.source is not None for p in self.pipes)
        # An input event reaches streams only through the logsource streams (the others read
        # their outputs, after their `where`); one that satisfies none of these conditions
        # changes nothing but the time. A stream that joins, enriches or derives may filter on
        # fields the input lacks, so only its logsource is a condition of entry.
        entry: list[ir.Predicate] = []
        for s in analytic.streams:
            if s.name in need and not isinstance(s.source, str):
                plain = s.join is None and not s.enrich and not s.derive
                ls = logsource_predicate(s.source)
                entry.append(ir.And((ls, s.filter)) if plain else ls)
        self.entry: ir.Predicate = ir.Or(tuple(entry))
        self.admits: Callable[[Mapping[str, Any]], bool] = compile_predicate(self.entry, lookups)

    def state_size(self) -> int:
        return sum(p.join.state_size() for p in self.pipes if p.join is not None)

    def step_direct(self, event: Event) -> list[tuple[Pipe, Event]]:
        """Without joins (``not has_joins``): the outputs of ``event``, in stream order, of the
        streams it reaches (each output is ``event`` or its transformed copy)."""
        out: list[tuple[Pipe, Event]] = []
        plan = self.router.route(event.fields).plan
        if not self._chained:
            for p in plan:
                r = p.transform(event)
                if r is not None:
                    out.append((p, r))
            return out
        got: dict[str, Event] = {}
        for p in plan:
            src = event if p.source is None else got.get(p.source)
            if src is None:
                continue
            r = p.transform(src)
            if r is not None:
                got[p.name] = r
                out.append((p, r))
        return out

    def step(self, event: Event) -> dict[str, list[Event]]:
        """Outputs of every stream after input ``event`` (possibly older, delayed join results)."""
        return self._run(event, event.ts)

    def tick(self, now: int) -> dict[str, list[Event]]:
        """Outputs after an input event at ``now`` that reaches no stream (joins release)."""
        return self._run(None, now)

    def flush(self) -> dict[str, list[Event]]:
        """End of input: release everything the joins still hold."""
        return self._run(None, None)

    def _run(self, event: Event | None, now: int | None) -> dict[str, list[Event]]:
        outs: dict[str, list[Event]] = {}
        empty: list[Event] = []
        matched = frozenset() if event is None else self.router.route(event.fields).matched
        for p in self.pipes:
            if p.logsource is not None and p.join is None:
                # The common case, kept free of intermediate lists (hot path).
                if event is None or p.name not in matched:
                    outs[p.name] = empty
                    continue
                r = p.transform(event)
                outs[p.name] = empty if r is None else [r]
                continue
            if p.logsource is not None:
                base = [event] if event is not None and p.name in matched else empty
            else:
                base = outs.get(p.source or "", empty)
            if p.join is not None:
                p.join.add_other(outs.get(p.join_stream or "", empty))
                p.join.add_this(base)
                if now is None:
                    base = p.join.release(None, None)
                else:
                    base = p.join.release(now - p.source_lateness, now - p.other_lateness)
            if not base:
                outs[p.name] = empty
                continue
            res: list[Event] = []
            for e in base:
                r = p.transform(e)
                if r is not None:
                    res.append(r)
            outs[p.name] = res
        return outs
