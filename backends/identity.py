"""Process identity: when a correlation keyed on (host, PID) and cancelled by the process' end
means "the same process", so that a target may key on the data source's unique process id
(ECS ``process.entity_id``, Sysmon ``ProcessGuid``, MDE's id + creation time) and need no end
events.

The analytic says ``by: [host.name, process.pid]`` with ``until: <process end>``: a PID names a
process from its start to its end, and the end cancels whatever is pending, so a reused PID is
never blamed for another program's events. A unique process id says the same thing directly.
The two forms find the same alerts when (docs/semantics.md, "Process identity"):

1. every event of the correlated steps carries the identity, and
2. the identity changes exactly when the (host, PID) pair starts naming another process, that
   is, an end event with the same host and PID is logged between two processes sharing a PID.

Where a source drops end events, the PID form may blame a reused PID and the identity form
cannot: the identity form is the one that means what the analytic says.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import ir
from compiler.evaluator.values import to_number

PID = "process.pid"
# Fields naming the host a PID belongs to; any other key makes the correlation finer than the
# process (e.g. also by user), which the identity key keeps as an extra key.
HOST_KEYS = frozenset({"host.name", "host.id", "host.hostname", "agent.id"})


@dataclass(frozen=True)
class ProcessKey:
    """A correlation keyed on one process: ``host`` and ``pid`` are the keys naming it (as
    written in the analytic), ``others`` the remaining keys, in order."""

    host: tuple[str, ...]
    pid: str
    others: tuple[str, ...]


def process_key(
    analytic: ir.Analytic, keys: tuple[str, ...], until: ir.Step | None
) -> ProcessKey | None:
    """The process the keys name when ``until`` is that process' end (None otherwise)."""
    if PID not in keys or until is None or tuple(until.keys) != tuple(keys):
        return None
    if not is_process_end(analytic, until.stream):
        return None
    host = tuple(k for k in keys if k in HOST_KEYS)
    others = tuple(k for k in keys if k != PID and k not in HOST_KEYS)
    return ProcessKey(host, PID, others)


def sequence_process_key(analytic: ir.Analytic, seq: ir.Sequence) -> ProcessKey | None:
    """:func:`process_key` for a sequence whose steps all share the same keys."""
    keys = {tuple(s.keys) for s in seq.steps}
    if len(keys) != 1:
        return None
    return process_key(analytic, next(iter(keys)), seq.until)


def is_process_end(analytic: ir.Analytic, stream_name: str) -> bool:
    """Whether every event of the stream is a process end: its logsource is the process
    termination category, or its filters (along its ``from`` chain) require ``event.type: end``
    with ``event.category: process`` (or a process logsource category)."""
    streams = {s.name: s for s in analytic.streams}
    required: set[tuple[str, str]] = set()
    category: str | None = None
    name: str | None = stream_name
    while name is not None and name in streams:
        s = streams[name]
        required |= _required_eqs(s.filter)
        if isinstance(s.source, ir.LogSource):
            category = s.source.category
            name = None
        else:
            name = s.source
    if category == "process_termination":
        return True
    is_end = ("event.type", "end") in required
    is_process = ("event.category", "process") in required or category in {
        "process_creation",
        "process_termination",
    }
    return is_end and is_process and category != "process_creation"


def _required_eqs(p: ir.Predicate) -> set[tuple[str, str]]:
    """(field, value) pairs every matching event has: single-valued equalities, through and."""
    if isinstance(p, ir.Eq) and len(p.values) == 1 and isinstance(p.values[0], str):
        return {(p.field, p.values[0].lower())}
    if isinstance(p, ir.And):
        out: set[tuple[str, str]] = set()
        for item in p.items:
            out |= _required_eqs(item)
        return out
    return set()


# A value a filter equality pins a field to, as the evaluator compares them: a number or a
# numeric string by its numeric value ("443" == 443 == 443.0), other text by str.lower().
Pinned = tuple[str, object]


def _pinned(v: ir.Scalar) -> Pinned | None:
    if isinstance(v, bool) or v is None:
        return None
    n = to_number(v)
    if n is not None:
        return ("number", int(n) if isinstance(n, float) and n.is_integer() else n)
    return ("text", str(v).lower())


def _pins(p: ir.Predicate) -> dict[str, set[Pinned]]:
    """field -> the values one of which every event matching ``p`` holds in it: ``field:
    [values]`` tests (case-insensitive, any value), through ``all`` (every set) and ``any``
    (fields every alternative pins)."""
    if isinstance(p, ir.Eq):
        vals = [_pinned(v) for v in p.values]
        if p.quantifier == "any" and not p.cased and vals and None not in vals:
            return {p.field: {v for v in vals if v is not None}}
        return {}
    if isinstance(p, ir.And):
        out: dict[str, set[Pinned]] = {}
        for item in p.items:
            for f, v in _pins(item).items():
                out[f] = out[f] & v if f in out else set(v)
        return out
    if isinstance(p, ir.Or) and p.items:
        branches = [_pins(item) for item in p.items]
        common = set.intersection(*(set(b) for b in branches))
        return {f: set().union(*(b[f] for b in branches)) for f in common}
    return {}


def required_values(
    analytic: ir.Analytic, stream: str, arrays: frozenset[str] = frozenset()
) -> dict[str, set[Pinned]]:
    """field -> the values (:data:`Pinned`) one of which every event of ``stream`` holds in it,
    from its filters along its ``from:`` chain.
    Left out: derived and enriched fields (another stream may compute other values for the same
    event) and ``arrays``, the fields a target stores as multi-values (one event may hold a value
    of each of two disjoint sets)."""
    streams = {s.name: s for s in analytic.streams}
    req: dict[str, set[Pinned]] = {}
    computed: set[str] = set()
    cur: str | None = stream
    while cur is not None and cur in streams:
        s = streams[cur]
        computed |= {n for n, _ in s.derive} | {f for en in s.enrich for _, f in en.add}
        for f, v in _pins(s.filter).items():
            req[f] = req[f] & v if f in req else set(v)
        cur = s.source if isinstance(s.source, str) else None
    return {f: v for f, v in req.items() if f not in computed and f not in arrays}


def disjoint_streams(
    analytic: ir.Analytic, x: str, y: str, arrays: frozenset[str] = frozenset()
) -> bool:
    """Whether no event can be in both streams: a field both require (required_values) with no
    value in common."""
    if x == y:
        return False
    rx, ry = required_values(analytic, x, arrays), required_values(analytic, y, arrays)
    return any(not (rx[f] & ry[f]) for f in rx.keys() & ry.keys())
