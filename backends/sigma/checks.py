"""Which parts of an analytic the Sigma backend rejects, all reported at once at their spans
before anything is rendered (E200: Sigma cannot express it). The analytic is the relaxed one
(:func:`backends.sigma.streams.relaxed`): what Sigma can drop soundly is gone already."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from backends.sigma.joins import join_errors
from backends.sigma.support import CORRELATION_TYPES, having_condition
from compiler import ir
from compiler.diagnostics import Diagnostic

# (node, construct, reason, alternative) -> the diagnostics of one refusal
Reject = Callable[[object, str | None, str | None, str | None], list[Diagnostic]]
_ALT = "compile to esql, kql or splunk"


def support_errors(analytic: ir.Analytic, reject: Reject) -> list[Diagnostic]:
    errors: list[Diagnostic] = join_errors(analytic, reject)
    det = analytic.detection
    if isinstance(det, ir.Aggregate):
        errors += _aggregate_errors(det, reject)
    return errors


def _aggregate_errors(det: ir.Aggregate, reject: Reject) -> list[Diagnostic]:
    errors: list[Diagnostic] = []
    if len(det.measures) != 1 or det.compute:
        names = [m.name for m in det.measures] + [n for n, _ in det.compute]
        errors += reject(
            det,
            f"{len(names)} measures and values ({', '.join(names)})",
            "a Sigma correlation computes one metric (event_count, value_count, value_sum, "
            "value_avg, value_percentile), and only a `having` that is a conjunction with a "
            "`>=`/`>` threshold on one of them relaxes to it",
            _ALT,
        )
    for m in det.measures:
        if m.span == ir.NO_SPAN:
            m = dataclasses.replace(m, span=det.span)
        if m.where is not None:
            errors += reject(m, None, None, _ALT)
        if m.kind not in CORRELATION_TYPES:
            errors += reject(
                m,
                f"measure {m.kind} ({m.name})",
                "Sigma correlation types count events, count distinct values, sum, "
                "average or take a percentile; there is no min, max or stdev",
                _ALT,
            )
        elif m.kind == "percentile" and m.p is not None and not float(m.p).is_integer():
            errors += reject(
                m, f"percentile {m.p}", "value_percentile takes an integer percentile", _ALT
            )
    if len(det.measures) == 1 and not det.compute:
        m = det.measures[0]
        if det.having is None and m.kind != "count":
            errors += reject(
                det,
                f"a {m.kind} without `having`",
                "a Sigma correlation alerts on a condition over its metric",
                "add a having on the measure, or compile to esql, kql or splunk",
            )
        elif det.having is not None and having_condition(det.having, m.name) is None:
            errors += reject(
                det.having,
                "this `having`",
                f"a Sigma correlation condition is one comparison of its metric ({m.name}) "
                "with a number (gt, gte, lt, lte, eq, neq)",
                _ALT,
            )
    return errors
