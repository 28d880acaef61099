"""Sound relaxations: an analytic with constructs removed whose removal can only add alerts.

A target that cannot express a baseline or a cancelling ``until`` can still deploy the rest of
the analytic: every alert of the original is an alert of the relaxed one (a superset, nothing
missed), and the backend reports what the relaxation dropped as a ``superset`` approximation.
Streams that only the dropped constructs read are removed too, so the target is not asked for a
join or a lookup nobody uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
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
    streams = tuple(s for s in analytic.streams if s.name in kept)
    return dataclasses.replace(analytic, streams=streams)


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
