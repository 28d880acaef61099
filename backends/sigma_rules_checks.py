"""Which parts of an analytic the Sigma backend rejects, all reported at once at their spans
before anything is rendered (E200: Sigma cannot express it)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from backends.base import Context
from compiler import ir
from compiler.diagnostics import Diagnostic

if TYPE_CHECKING:
    from backends.sigma_rules import SigmaBackend

_CASE_FUNCS = ("lower", "upper")
_HISTORY_ALT = "compile to kql or splunk, which can query the lookback"


def _preds(p: ir.Predicate) -> list[ir.Predicate]:
    out: list[ir.Predicate] = [p]
    if isinstance(p, ir.And | ir.Or):
        for x in p.items:
            out += _preds(x)
    elif isinstance(p, ir.Not):
        out += _preds(p.item)
    return out


def _cased_fields(streams: list[ir.Stream]) -> set[str]:
    out: set[str] = set()
    for s in streams:
        for p in _preds(s.filter):
            if isinstance(p, ir.Eq | ir.StrMatch | ir.Regex) and p.cased:
                out.add(p.field)
    return out


def _case_only(name: str, expr: ir.Expr) -> bool:
    """``f: lower(f)`` or ``f: upper(f)``: a case change of the field itself."""
    return (
        isinstance(expr, ir.Call)
        and expr.func in _CASE_FUNCS
        and len(expr.args) == 1
        and isinstance(expr.args[0], ir.FieldRef)
        and expr.args[0].step is None
        and expr.args[0].name == name
    )


def detection_streams(det: ir.Detection) -> list[str]:
    if isinstance(det, ir.Match):
        return [det.stream]
    if isinstance(det, ir.Aggregate):
        return [det.stream]
    if isinstance(det, ir.Sequence):
        return [s.stream for s in det.steps] + ([det.until.stream] if det.until else [])
    if isinstance(det, ir.Cooccurrence):
        return [s.stream for s in det.members]
    return [det.first.stream, det.missing.stream]


def support_errors(b: SigmaBackend, analytic: ir.Analytic, ctx: Context) -> list[Diagnostic]:
    errors: list[Diagnostic] = []
    used: list[ir.Stream] = []
    for name in detection_streams(analytic.detection):
        for s in b._chain(analytic, name):
            if s not in used:
                used.append(s)
    cased = _cased_fields(used)
    for s in (x for x in analytic.streams if x in used):
        if s.join is not None:
            errors += b.reject(s.join, ctx)
        for e in s.enrich:
            errors += b.reject(e, ctx)
        for name, expr in s.derive:
            if _case_only(name, expr) and name not in cased:
                # Sigma matches case-insensitively by default: the filters read the same
                continue
            errors += b.reject(
                expr,
                ctx,
                construct=f"derived field '{name}' ({construct(expr)})",
                reason="Sigma rules match fields as logged and cannot compute new ones",
                alternative="compile to esql, kql or splunk, which compute fields "
                "(EVAL / extend / eval)",
            )
        for p in _preds(s.filter):
            if isinstance(p, ir.InLookup) and len(p.match) != 1:
                errors += b.reject(
                    p,
                    ctx,
                    construct=f"lookup '{p.lookup}' on {len(p.match)} columns",
                    reason="a Sigma placeholder expands to one list of values; matching "
                    "several columns of the same row needs a join",
                )
    det = analytic.detection
    if isinstance(det, ir.Absence):
        errors += b.reject(det, ctx)
    elif isinstance(det, ir.Sequence) and det.until is not None:
        errors += b.reject(
            det.until,
            ctx,
            construct="sequence `until`",
            reason="Sigma correlations have no cancelling event: temporal_ordered cannot "
            "drop a pending sequence when another event with the same keys arrives",
            alternative="compile to eql (sequence ... until), kql or splunk",
        )
    elif isinstance(det, ir.Aggregate):
        errors += _aggregate_errors(b, det, ctx)
    for bl in analytic.baselines:
        alt = "compile to kql or splunk" if isinstance(bl, ir.Deviation) else _HISTORY_ALT
        errors += b.reject(bl, ctx, alternative=alt)
    return errors


def construct(expr: ir.Expr) -> str:
    if isinstance(expr, ir.Call):
        return f"function {expr.func}()"
    if isinstance(expr, ir.BinOp):
        return f"operator {expr.op}"
    return "an expression" if not isinstance(expr, ir.FieldRef) else "a field copy"


def _aggregate_errors(b: SigmaBackend, det: ir.Aggregate, ctx: Context) -> list[Diagnostic]:
    errors: list[Diagnostic] = []
    alt = "compile to esql, kql or splunk"
    if len(det.measures) != 1:
        errors += b.reject(
            det,
            ctx,
            construct=f"{len(det.measures)} measures ({', '.join(m.name for m in det.measures)})",
            reason="a Sigma correlation computes one metric (event_count, value_count, "
            "value_sum, value_avg, value_percentile)",
            alternative=alt,
        )
    for m in det.measures:
        if m.span == ir.NO_SPAN:
            m = dataclasses.replace(m, span=det.span)
        if m.kind not in b.CORRELATION_TYPES:
            errors += b.reject(
                m,
                ctx,
                construct=f"measure {m.kind} ({m.name})",
                reason="Sigma correlation types count events, count distinct values, sum, "
                "average or take a percentile; there is no min, max or stdev",
                alternative=alt,
            )
        elif m.kind == "percentile" and m.p is not None and not float(m.p).is_integer():
            errors += b.reject(
                m,
                ctx,
                construct=f"percentile {m.p}",
                reason="value_percentile takes an integer percentile",
                alternative=alt,
            )
    for name, expr in det.compute:
        errors += b.reject(
            expr,
            ctx,
            construct=f"computed value '{name}'",
            reason="a Sigma correlation condition compares its one metric with a number",
            alternative="ratio thresholds cannot be expressed in Sigma correlations (nor any "
            "arithmetic over measures); compile to esql, kql or splunk",
        )
    if len(det.measures) == 1 and not det.compute:
        m = det.measures[0]
        if det.having is None and m.kind != "count":
            errors += b.reject(
                det,
                ctx,
                construct=f"a {m.kind} without `having`",
                reason="a Sigma correlation alerts on a condition over its metric",
                alternative="add a having on the measure, or compile to esql, kql or splunk",
            )
        elif det.having is not None and b.having_condition(det.having, m.name) is None:
            errors += b.reject(
                det.having,
                ctx,
                construct="this `having`",
                reason=f"a Sigma correlation condition is one comparison of its metric "
                f"({m.name}) with a number (gt, gte, lt, lte, eq, neq)",
                alternative=alt,
            )
    return errors
