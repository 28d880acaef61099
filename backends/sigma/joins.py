"""Joins as chained Sigma correlations. A Sigma rule cannot copy fields from one event to
another, but a correlation may reference another correlation (specification v2.1.0, "rules":
rules or correlations): a step over ``a join b on keys within T (b before a)`` becomes a
``temporal`` correlation of a rule for ``a`` and a rule for ``b`` grouped by the join keys with
timespan T, and the detection's correlation references that one. Its alert carries both events,
so the outer correlation can group by a field the join added (read from ``b``'s rule).

It is a superset of the join: the evaluator pairs each event with its nearest partner before
it, the temporal correlation with every partner within T in either order. Supported where only
the outer correlation reads the added fields (as keys): filters after the join that read them
would need the partner's value on the joined event."""

from __future__ import annotations

from collections.abc import Callable

from backends.sigma.streams import chain
from compiler import ir
from compiler.diagnostics import Diagnostic

Reject = Callable[[object, str | None, str | None, str | None], list[Diagnostic]]
SUPERSET = (
    "a Sigma rule cannot copy fields from another event: the join is a temporal correlation "
    "of the event and its partner ({keys} equal, within {within}) that the detection's "
    "correlation references (a chained correlation); it pairs them in either order and with "
    "every partner in the window, not only the nearest earlier one: a superset"
)


def joined(analytic: ir.Analytic, stream: str) -> ir.Stream | None:
    """The stream of ``stream``'s chain that joins another, if any."""
    return next((s for s in chain(analytic, stream) if s.join is not None), None)


def _fields(p: ir.Predicate) -> set[str]:
    if isinstance(p, ir.And | ir.Or):
        return {f for x in p.items for f in _fields(x)}
    if isinstance(p, ir.Not):
        return _fields(p.item)
    if isinstance(p, ir.InLookup):
        return {f for _, f in p.match}
    return {p.field}


def join_errors(analytic: ir.Analytic, reject: Reject) -> list[Diagnostic]:
    """Refusals for the joins of the streams the detection reads."""
    det = analytic.detection
    steps: tuple[ir.Step, ...] = ()
    if isinstance(det, ir.Sequence):
        steps = det.steps
    elif isinstance(det, ir.Cooccurrence):
        steps = det.members
    errors: list[Diagnostic] = []
    seen: set[str] = set()
    others = [det.stream] if isinstance(det, ir.Match | ir.Aggregate) else []
    if isinstance(det, ir.Absence):
        others = [det.first.stream, det.missing.stream]
    for name in others:
        for s in chain(analytic, name):
            if s.join is not None and s.name not in seen:
                seen.add(s.name)
                errors += reject(
                    s.join,
                    None,
                    "a Sigma rule cannot copy fields from another event; only a sequence or "
                    "co-occurrence step over a join becomes a chained correlation",
                    None,
                )
    for step in steps:
        streams = chain(analytic, step.stream)
        joins = [s for s in streams if s.join is not None]
        for s in joins[:1]:
            if s.name in seen:
                continue
            seen.add(s.name)
            errors += _join_shape(analytic, streams, s, reject)
        for s in joins[1:]:
            errors += reject(s.join, "a second join", "one join per step becomes one chain", None)
    return errors


def _join_shape(
    analytic: ir.Analytic, streams: list[ir.Stream], s: ir.Stream, reject: Reject
) -> list[Diagnostic]:
    j = s.join
    assert j is not None
    if j.direction != "before":
        return reject(
            j,
            f"a join with direction {j.direction}",
            "the chained correlation times the joined event by the later of the two, which is "
            "the event itself only when its partner comes before it",
            "use direction: before, or compile to kql or splunk",
        )
    if any(x.join is not None for x in chain(analytic, j.stream)):
        return reject(j, "a join of a joined stream", "one join per step becomes one chain", None)
    added = set(j.add)
    after = streams[streams.index(s) :]
    used = {f for x in after for f in _fields(x.filter)}
    used |= {f for x in after for _, e in x.derive for f in ir.field_names(e)}
    used |= {f for x in after for e in x.enrich for _, f in e.match}
    if used & added:
        return reject(
            j,
            f"a test on a joined field ({', '.join(sorted(used & added))})",
            "the chained correlation sees the partner's fields only in its group-by: a filter "
            "on a joined field would need them on the event",
            "key the detection on the joined field, or compile to kql or splunk",
        )
    return []
