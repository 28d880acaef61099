"""Counted sequence steps on KQL: N events of a stream, then an event of another (EQL ``[...]
with runs=N`` then a step; docs/semantics.md, "Counted steps"), with ``scan``.

The layout rendered is ``[run: count N] [next]``, the run first, two steps, no event in two of the
streams (the run's, the next step's, the until's), one value per key. For it the evaluator's EQL
state machine has a closed form. Per key, with the key's events of the three streams in ``(ts,
seq)`` order, a next-step event ``s`` alerts iff

(a) the key's event just before ``s`` is a run event ``f`` (the previous-step-event test),
(b) the key has at least N run events up to ``f`` since its last until event, and
(c) ``s.ts - r.ts <= maxspan`` for ``r`` the N-th latest of them;

the evidence is those N run events, then ``s``. Why: every run event moves each partial of its
key waiting inside the run on by one copy and starts one more (``_advance_run``), so the partial
that has taken the whole run is the one started at the N-th latest run event, the earlier ones
having moved past the run (where a newer arrival replaces them) or expired (maxspan holds from
the first event, and a partial that expired is older than every one still waiting). Only a
next-step event consumes, and only the partial past the run: after it nothing waits there until
a run event moves the next one up, so a second next-step event right after the first finds
nothing (a). A next-step event that fails maxspan drops that partial, and no later event could
have used it. An until event drops every partial of its key: the run starts again after it.

The scan keeps, per key, the times of the latest N run events (``__runs``) and whether the row
before was a run event (``__after``); a next-step row sees both in the state of the row before.

KQL rows have no input order. Rows of one key at one millisecond are sorted run first, then the
next step, then until. The sort's other ties, among rows of one stream, change no alert's key or
times (only which of the tied events its evidence names, which a query's rows do not carry). The
evaluator follows input order there: :func:`ties`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.base import Context
from backends.identity import disjoint_streams
from backends.sentinel import scan
from backends.sentinel import text as t
from backends.sentinel.expr import Scope
from compiler import ir


def ties(until: bool) -> str:
    """What the order of rows of one millisecond changes (the approximation's detail)."""
    order = "run events first, then next-step events" + (", then until events" if until else "")
    stop = (
        ", an until event logged before a run event of its millisecond cancels it here, and one "
        "logged before a next-step event does not stop it here"
        if until
        else ""
    )
    shared = "run, next-step and until events" if until else "run and next-step events"
    return (
        f"equal timestamps: KQL has no input order, so rows of one key at one millisecond are "
        f"taken {order}; the evaluator follows input order. A next-step event logged before a run "
        "event of its millisecond alerts here with that run event (a later start, or an alert "
        f"where the run was one event short){stop}: alerts can differ either way. Equal to the "
        f"evaluator when no {shared} of one key share a millisecond (the scan is the closed form "
        "of the evaluator's EQL state machine for a run followed by one step: "
        "backends/sentinel/counted.py)"
    )


def _note(n: int) -> str:
    return (
        "the latest run events of each key are kept by scan in a partition per key (partition "
        f"hint.strategy=native, sorted by time): {n} times per key. " + scan.PARTITIONS
    )


def _required(a: ir.Analytic, stream: str) -> set[str]:
    """The fields the stream's own filter requires to exist (a key test would repeat it)."""
    s = next(x for x in a.streams if x.name == stream)
    items = s.filter.items if isinstance(s.filter, ir.And) else (s.filter,)
    return {x.field for x in items if isinstance(x, ir.Exists) and x.present}


def counted_layout(
    a: ir.Analytic, d: ir.Sequence, tables: dict[str, str] | None = None
) -> str | None:
    """Why the scan form does not apply to the counted sequence ``d`` (None: it does);
    ``tables``: the table each stream reads (a row is in one table, so streams of two tables
    share no event)."""
    if len(d.steps) != 2 or d.steps[0].count < 2 or d.steps[1].count != 1:
        return (
            "only a counted first step followed by one uncounted step (N failures, then a "
            "success) is proven equal to the evaluator's EQL state machine on KQL; with the run "
            "elsewhere or more steps, partials inside and after the run overlap, which a "
            "per-key scan of the latest run events does not follow"
        )
    names = [s.stream for s in d.steps] + ([d.until.stream] if d.until is not None else [])
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            if (tables or {}).get(x, x) == (tables or {}).get(y, y) and not disjoint_streams(
                a, x, y
            ):
                return (
                    f"an event can be in both streams '{x}' and '{y}' (no field both require "
                    "has disjoint values): the evaluator offers it to the last step first and "
                    "to the run only when it completes nothing, and KQL rows of two streams do "
                    "not say they are one event"
                )
    return None


class KqlCountedMixin:
    lets: list[tuple[str, str]]

    if TYPE_CHECKING:  # provided by KqlExprMixin / KqlDetectMixin

        def _step_cols(self, step: ir.Step, ctx: Context) -> tuple[str, list[str]]: ...
        def _present(self, c: str) -> str: ...
        def ctype(self, column: str) -> str: ...
        def _use(self, stream: str) -> Scope: ...

    def counted_sequence(
        self, a: ir.Analytic, d: ir.Sequence, keys: list[str], ctx: Context
    ) -> str:
        """The alert rows (``__start``, ``__end``, ``keys``) of the run-first counted sequence
        ``d``; E200 for another layout (:func:`counted_layout`)."""
        streams = [s.stream for s in (*d.steps, *([d.until] if d.until else []))]
        why = counted_layout(a, d, {s: self._use(s).source.table for s in streams})
        if why is not None:
            raise ctx.unsupported(
                "this counted sequence step (count)", why, d.span, "compile to eql (`with runs`)"
            )
        run, nxt = d.steps
        parts = [self._rows(a, s, i, keys, ctx) for i, s in enumerate((run, nxt, d.until)) if s]
        self.lets.append(("__runs_and_steps", "union " + ",\n    ".join(parts)))
        n = run.count
        body, final = scan.counted(
            "__runs_and_steps", keys, n, d.until is not None, t.timespan(d.maxspan_ms)
        )
        self.lets.append(("__scan", body))
        ctx.approximate("counted sequence ties", ties(d.until is not None), run.span)
        ctx.note(f"counted sequence step ({run.span.at()}): {_note(n)}")
        return final

    def _rows(self, a: ir.Analytic, step: ir.Step, i: int, keys: list[str], ctx: Context) -> str:
        """One stream's rows: time, the key columns as ``keys``, and ``__step`` (0 the run, 1 the
        next step, 2 until), keyless events left out."""
        tcol, kcols = self._step_cols(step, ctx)
        for c in kcols:
            if self.ctype(c) == "dynamic":
                raise ctx.unsupported(
                    "a counted sequence step keyed on a multi-valued column",
                    f"'{c}' puts one event under several keys, and the evaluator binds a "
                    "sequence to the key values all its events share; a scan partition per "
                    "key value does not follow that",
                    step.span,
                    "compile to eql (`with runs`)",
                )
        proj = ", ".join(
            [f"__t = {tcol}", *[f"{k} = {t.ident(c)}" for k, c in zip(keys, kcols, strict=True)]]
        )
        have = _required(a, step.stream)
        pres = [self._present(c) for k, c in zip(step.keys, kcols, strict=True) if k not in have]
        where = f" | where {' and '.join(pres)}" if pres else ""
        return f"({t.ident(step.stream)}{where} | project {proj}, __step = {i})"
