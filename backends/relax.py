"""Sound relaxations: an analytic with constructs removed whose removal can only add alerts.

A target that cannot express a baseline or a cancelling ``until`` can still deploy the rest of
the analytic: every alert of the original is an alert of the relaxed one (a superset, nothing
missed), and the backend reports what the relaxation dropped as a ``superset`` approximation.
Streams that only the dropped constructs read are removed too, so the target is not asked for a
join or a lookup nobody uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from dataclasses import dataclass

from compiler import ir
from compiler.lower import format_duration


@dataclass(frozen=True)
class Dropped:
    """One construct a relaxation removed: what the relaxed query no longer checks."""

    construct: str
    what: str
    span: ir.Span


def without_baselines(analytic: ir.Analytic) -> tuple[ir.Analytic, tuple[Dropped, ...]]:
    """The analytic without its baselines: every candidate alerts, seen before or not. Baselines
    only ever remove candidates (docs/semantics.md), so this is a superset."""
    dropped = tuple(_baseline_dropped(b) for b in analytic.baselines)
    if not dropped:
        return analytic, ()
    relaxed = dataclasses.replace(analytic, baselines=())
    return prune_streams(relaxed), dropped


def without_until(analytic: ir.Analytic) -> tuple[ir.Analytic, tuple[Dropped, ...]]:
    """The analytic without its sequence's ``until``: a cancelling event only removes pending
    sequences, so sequences that would have been cancelled alert too (a superset)."""
    d = analytic.detection
    if not isinstance(d, ir.Sequence) or d.until is None:
        return analytic, ()
    what = (
        f"a '{d.until.stream}' event no longer cancels a pending sequence with the same "
        f"{', '.join(d.until.keys) or 'keys'}"
    )
    relaxed = dataclasses.replace(analytic, detection=dataclasses.replace(d, until=None))
    return prune_streams(relaxed), (Dropped("sequence `until`", what, d.until.span),)


def one_threshold(
    analytic: ir.Analytic, kinds: Collection[str]
) -> tuple[ir.Analytic, tuple[Dropped, ...]]:
    """An aggregate whose ``having`` is a conjunction keeps one conjunct ``measure >= c`` (or
    ``>``) on a measure of a kind in ``kinds``, and drops the other measures, the computed
    values and the other conjuncts. Dropping conjuncts of a conjunction on the same windows and
    groups only lets more windows through (a superset); the measures and values only the
    dropped conjuncts read go with them. A ``having`` that is no conjunction with such a
    conjunct is left as it is (the target refuses what it cannot say)."""
    d = analytic.detection
    if not isinstance(d, ir.Aggregate) or d.having is None:
        return analytic, ()
    conjuncts = _conjuncts(d.having)
    kinds_of = {m.name: m.kind for m in d.measures}
    keep = next(
        (
            c
            for c in conjuncts
            if (name := _threshold_measure(c)) is not None and kinds_of.get(name) in kinds
        ),
        None,
    )
    if keep is None:
        return analytic, ()
    name = _threshold_measure(keep)
    measures = tuple(m for m in d.measures if m.name == name)
    if len(conjuncts) == 1 and measures == d.measures and not d.compute:
        return analytic, ()
    dropped = [
        Dropped(
            "having condition",
            f"windows alert whatever {_text(c)} is (only {_text(keep)} is tested)",
            getattr(c, "span", d.span),
        )
        for c in conjuncts
        if c is not keep
    ]
    other = [m.name for m in d.measures if m.name != name]
    if other or d.compute:
        names = other + [n for n, _ in d.compute]
        dropped.append(
            Dropped(
                "measures",
                f"{', '.join(names)} are neither computed nor reported",
                d.span,
            )
        )
    relaxed = dataclasses.replace(
        analytic,
        detection=dataclasses.replace(d, measures=measures, compute=(), having=keep),
    )
    return relaxed, tuple(dropped)


def _conjuncts(e: ir.Expr) -> list[ir.Expr]:
    if isinstance(e, ir.BinOp) and e.op == "and":
        return _conjuncts(e.left) + _conjuncts(e.right)
    return [e]


def _threshold_measure(e: ir.Expr) -> str | None:
    """The measure of ``m >= c`` / ``m > c`` (or ``c <= m`` / ``c < m``), else None."""
    if not isinstance(e, ir.BinOp):
        return None
    left, right, op = e.left, e.right, str(e.op)
    if isinstance(left, ir.Literal_):
        left, right, op = right, left, {"<=": ">=", "<": ">"}.get(op, "")
    if (
        op in (">=", ">")
        and isinstance(left, ir.MeasureRef)
        and isinstance(right, ir.Literal_)
        and isinstance(right.value, int | float)
        and not isinstance(right.value, bool)
    ):
        return left.name
    return None


def _text(e: ir.Expr) -> str:
    if isinstance(e, ir.BinOp):
        return f"{_text(e.left)} {e.op} {_text(e.right)}"
    if isinstance(e, ir.MeasureRef | ir.FieldRef):
        return e.name
    if isinstance(e, ir.Literal_):
        return repr(e.value) if isinstance(e.value, str) else str(e.value)
    if isinstance(e, ir.Call):
        return f"{e.func}({', '.join(_text(a) for a in e.args)})"
    if isinstance(e, ir.UnaryOp):
        return f"{e.op} {_text(e.operand)}"
    return type(e).__name__


def prune_streams(analytic: ir.Analytic) -> ir.Analytic:
    """The analytic without the streams neither its detection nor its baselines read."""
    kept = read_streams(analytic)
    streams = tuple(s for s in analytic.streams if s.name in kept)
    return dataclasses.replace(analytic, streams=streams)


def read_streams(analytic: ir.Analytic) -> set[str]:
    """The streams the detection and the baselines read, with the streams they come from
    (``from:``) and join."""
    by_name = {s.name: s for s in analytic.streams}
    todo = list(_roots(analytic))
    kept: set[str] = set()
    while todo:
        name = todo.pop()
        if name in kept or name not in by_name:
            continue
        kept.add(name)
        s = by_name[name]
        if isinstance(s.source, str):
            todo.append(s.source)
        if s.join is not None:
            todo.append(s.join.stream)
    return kept


def _roots(analytic: ir.Analytic) -> list[str]:
    d = analytic.detection
    names: list[str] = []
    if isinstance(d, ir.Match | ir.Aggregate):
        names.append(d.stream)
    elif isinstance(d, ir.Sequence):
        names += [s.stream for s in d.steps]
        if d.until is not None:
            names.append(d.until.stream)
    elif isinstance(d, ir.Cooccurrence):
        names += [s.stream for s in d.members]
    elif isinstance(d, ir.Absence):
        names += [d.first.stream, d.missing.stream]
    for b in analytic.baselines:
        if isinstance(b, ir.FirstSeen | ir.Rarity):
            names.append(b.stream)
    return names


def _baseline_dropped(b: ir.Baseline) -> Dropped:
    if isinstance(b, ir.FirstSeen):
        what = (
            f"candidates alert although ({', '.join(b.keys)}) was already seen in '{b.stream}' "
            f"during the {format_duration(b.lookback_ms)} lookback"
        )
        return Dropped("first-seen baseline", what, b.span)
    if isinstance(b, ir.Rarity):
        what = (
            f"candidates alert although ({', '.join(b.keys)}) was seen across {b.max} or more "
            f"{'days' if b.across == '@days' else b.across + ' values'} in '{b.stream}' during "
            f"the {format_duration(b.lookback_ms)} lookback"
        )
        return Dropped("rarity baseline", what, b.span)
    what = (
        f"windows alert whatever '{b.measure}' was in past windows of the "
        f"{format_duration(b.lookback_ms)} lookback"
    )
    return Dropped("deviation baseline", what, b.span)


# ---------------------------------------------------------------------- data the source lacks
def without_measures_over(
    analytic: ir.Analytic, lacking: Collection[str]
) -> tuple[ir.Analytic, tuple[Dropped, ...]]:
    """An aggregate without its measures over fields its source lacks (``lacking``: a flow
    source without byte counts), the computed values that read them and every conjunct of
    ``having`` that reads either. A conjunct dropped from a conjunction only lets more windows
    through, and a ``having`` left empty keeps every group with an event (a superset; over a
    sliding window, which consumes the events of each alert, the looser condition fires at
    earlier events and its windows differ: the target's sliding window says so). When no
    measure is left the aggregate counts the group's events."""
    d = analytic.detection
    if not isinstance(d, ir.Aggregate):
        return analytic, ()
    gone = {m.name for m in d.measures if _measure_reads(m).intersection(lacking)}
    if not gone:
        return analytic, ()
    compute = []
    for name, e in d.compute:  # in order: a value may read an earlier one
        if _reads(e) & gone:
            gone.add(name)
        else:
            compute.append((name, e))
    fields = sorted(
        {f for m in d.measures if m.name in gone for f in _measure_reads(m)}.intersection(lacking)
    )
    names = [m.name for m in d.measures] + [n for n, _ in d.compute]
    dropped = [
        Dropped(
            "measures",
            f"{', '.join(n for n in names if n in gone)} read {', '.join(fields)}, which the "
            "source does not carry: not computed",
            d.span,
        )
    ]
    having: ir.Expr | None = None
    if d.having is not None:
        kept = []
        for c in _conjuncts(d.having):
            if _reads(c) & gone:
                dropped.append(
                    Dropped(
                        "having condition",
                        f"windows alert whatever {_text(c)} is: the source does not carry "
                        f"{', '.join(fields)}",
                        getattr(c, "span", d.span),
                    )
                )
            else:
                kept.append(c)
        having = _conjunction(kept)
    measures = tuple(m for m in d.measures if m.name not in gone)
    if not measures:
        measures = (ir.Measure("events", "count", None, span=d.span),)
    relaxed = dataclasses.replace(
        analytic,
        detection=dataclasses.replace(d, measures=measures, compute=tuple(compute), having=having),
    )
    return relaxed, tuple(dropped)


def _measure_reads(m: ir.Measure) -> set[str]:
    """The event fields a measure reads: its field and its condition's."""
    out = {m.field} if m.field is not None else set()
    return out | (_pred_field_names(m.where) if m.where is not None else set())


def _reads(e: ir.Expr) -> set[str]:
    """The measures and computed values an expression reads."""
    if isinstance(e, ir.MeasureRef):
        return {e.name}
    if isinstance(e, ir.BinOp):
        return _reads(e.left) | _reads(e.right)
    if isinstance(e, ir.UnaryOp):
        return _reads(e.operand)
    if isinstance(e, ir.Call):
        return {n for a in e.args for n in _reads(a)}
    return set()


def _conjunction(items: list[ir.Expr]) -> ir.Expr | None:
    out: ir.Expr | None = None
    for c in items:
        out = c if out is None else ir.BinOp("and", out, c)
    return out


# ---------------------------------------------------------------------- coarser groups
# Measures that never shrink when a group takes in more events: counts, distinct counts, and sums
# of counters that are never negative (bytes, packets). A lower bound on one that holds for a group
# holds for every coarser group containing it.
_GROWING = ("count", "distinct")
_COUNTERS = (".bytes", ".packets")


def coarser_keys(
    analytic: ir.Analytic, computable: Callable[[str], bool]
) -> tuple[ir.Analytic, tuple[Dropped, ...]]:
    """An aggregate grouped only by the keys a target can compute (``computable``). A coarser
    group holds every event of each finer group in it, so where ``having`` is absent or a
    conjunction of lower bounds on measures that only grow with more events, the coarser group
    alerts in every window a finer one does (a superset: each evaluator alert lies inside a
    target alert on a subset of its keys, compiler.canonical.uncovered). Only over tumbling
    windows: a sliding window consumes the events of its alert per group (docs/semantics.md),
    so a coarser group fires after other events, in other windows, than a finer one. Anything
    else (an average, a ratio, an upper bound) is left as it is: the target refuses the key."""
    d = analytic.detection
    if not isinstance(d, ir.Aggregate) or d.window.kind != "tumbling":
        return analytic, ()
    drop = [k for k in d.keys if not computable(k)]
    if not drop or (d.having is not None and not _monotone(d, d.having)):
        return analytic, ()
    keys = tuple(k for k in d.keys if k not in drop)
    what = (
        f"groups by {', '.join(keys) or 'nothing'} instead of {', '.join(d.keys)}: "
        f"{', '.join(drop)} cannot be computed, so each alert stands for every group of "
        f"{', '.join(drop)} values in it"
    )
    if d.measures and not (len(d.measures) == 1 and d.measures[0].kind == "count" and not d.having):
        what += ", and its measures are taken over the coarser group"
    relaxed = dataclasses.replace(analytic, detection=dataclasses.replace(d, keys=keys))
    return prune_streams(relaxed), (Dropped("group-by keys", what, d.span),)


def _monotone(d: ir.Aggregate, having: ir.Expr) -> bool:
    kinds = {m.name: m for m in d.measures}
    for c in _conjuncts(having):
        name = _threshold_measure(c)
        m = kinds.get(name) if name is not None else None
        if m is None:
            return False
        if not (
            m.kind in _GROWING
            or (m.kind == "sum" and m.field is not None and m.field.endswith(_COUNTERS))
        ):
            return False
    return True


# ---------------------------------------------------------------------- joins on process identity
IDENTITY = "process.entity_id"
# What a process is, fixed for its whole life: every event of one process (same identity) that
# logs these logs the same values as its start event.
PROCESS_ATTRIBUTES = (
    "process.name",
    "process.executable",
    "process.pe.",
    "process.hash.",
    "process.entity_id",
    "process.pid",
)


def _attribute(name: str) -> bool:
    return any(name == a or (a.endswith(".") and name.startswith(a)) for a in PROCESS_ATTRIBUTES)


def join_as_own_filter(analytic: ir.Analytic) -> tuple[ir.Analytic, tuple[Dropped, ...]]:
    """An aggregate's stream joined to a partner on the process identity (``on`` includes
    process.entity_id), whose partner is a logsource stream filtering only on what the process is
    (its name, executable, hashes): the join becomes that filter on the event's own process
    fields. The partner tested those fields of the same process, so a joined event passes it
    whenever it logs its process' fields as its start event did (Sysmon network events log Image
    and ProcessGuid): events without a partner in time alert too (a superset). The fields the
    join added are gone: keys read from them are dropped (a coarser group, as
    :func:`coarser_keys`, so only under a ``having`` that only grows), derives nothing reads any
    more go with them; any other read of them leaves the analytic as it is. Only over tumbling
    windows, as :func:`coarser_keys`: more events in a sliding window move its alerts."""
    d = analytic.detection
    if not isinstance(d, ir.Aggregate) or d.window.kind != "tumbling":
        return analytic, ()
    chain = _chain(analytic, d.stream)
    joined = [x for x in chain if x.join is not None]
    if len(joined) != 1 or any(_readers(analytic, x.name) != 1 for x in chain[:-1]):
        return analytic, ()
    s = joined[0]
    j = s.join
    assert j is not None
    partner = analytic.stream(j.stream)
    tests = _pred_field_names(partner.filter)
    if (
        IDENTITY not in j.on
        or not isinstance(partner.source, ir.LogSource)
        or partner.join is not None
        or partner.enrich
        or partner.derive
        or not all(_attribute(f) for f in tests)
    ):
        return analytic, ()
    added = set(j.add)
    tainted = set(added)  # fields holding, or computed from, what the join added
    for x in chain[chain.index(s) :]:
        if _pred_field_names(x.filter) & tainted or any(
            f in tainted for e in x.enrich for _, f in e.match
        ):
            return analytic, ()
        for name, e in x.derive:
            if ir.field_names(e) & tainted:
                tainted.add(name)
            else:
                tainted.discard(name)
    if any(_measure_reads(m) & tainted for m in d.measures):
        return analytic, ()
    keys = tuple(k for k in d.keys if k not in tainted)
    if keys != d.keys and d.having is not None and not _monotone(d, d.having):
        return analytic, ()  # as coarser_keys
    # derives nothing reads once the keys are gone are dropped; the partner's tests must then
    # read the event's own fields, not a value a derive or an enrichment computed from them
    need = set(keys) | {f for m in d.measures for f in _measure_reads(m)}
    pruned: dict[str, ir.Stream] = {}
    for x in reversed(chain):
        need |= _pred_field_names(x.filter)
        kept = []
        for name, e in reversed(x.derive):
            if name in need:
                kept.append((name, e))
                need.discard(name)
                need |= ir.field_names(e)
        need |= {f for e in x.enrich for _, f in e.match} | set(x.join.on if x.join else ())
        pruned[x.name] = dataclasses.replace(x, derive=tuple(reversed(kept)))
    for x in chain[: chain.index(s) + 1]:
        made = {n for n, _ in pruned[x.name].derive} | {f for e in x.enrich for _, f in e.add}
        if made & tests:
            return analytic, ()
    pruned[s.name] = dataclasses.replace(
        pruned[s.name],
        join=None,
        filter=ir.And((s.filter, partner.filter), s.filter.span)
        if not (isinstance(s.filter, ir.And) and not s.filter.items)
        else partner.filter,
    )
    streams = tuple(pruned.get(x.name, x) for x in analytic.streams)
    relaxed = dataclasses.replace(
        analytic, streams=streams, detection=dataclasses.replace(d, keys=keys)
    )
    dropped = [
        Dropped(
            "stream join",
            f"the join to '{j.stream}' on {', '.join(j.on)} within {format_duration(j.within_ms)} "
            f"is '{j.stream}''s filter ({', '.join(sorted(tests))}) on the event's own process "
            f"(one process identity, one process: the event logs the name and executable its "
            f"start event did): events without such a '{j.stream}' event alert too",
            j.span,
        )
    ]
    if keys != d.keys:
        gone = [k for k in d.keys if k not in keys]
        dropped.append(
            Dropped(
                "group-by keys",
                f"groups by {', '.join(keys) or 'nothing'} instead of {', '.join(d.keys)}: "
                f"{', '.join(gone)} came from the join, so each alert stands for every group of "
                f"{', '.join(gone)} values in it",
                d.span,
            )
        )
    return prune_streams(relaxed), tuple(dropped)


def _readers(analytic: ir.Analytic, name: str) -> int:
    """How many streams, detection steps and baselines read stream ``name``."""
    n = sum(
        (s.source == name) + (s.join is not None and s.join.stream == name)
        for s in analytic.streams
    )
    return n + _roots(analytic).count(name)


def _chain(analytic: ir.Analytic, stream: str) -> list[ir.Stream]:
    out = [analytic.stream(stream)]
    while isinstance(out[-1].source, str):
        out.append(analytic.stream(out[-1].source))
    return out[::-1]


def _pred_field_names(p: ir.Predicate) -> set[str]:
    if isinstance(p, ir.And | ir.Or):
        return {f for x in p.items for f in _pred_field_names(x)}
    if isinstance(p, ir.Not):
        return _pred_field_names(p.item)
    if isinstance(p, ir.InLookup):
        return {f for _, f in p.match}
    return {p.field}
