"""The streams a Sigma rule reads, and the relaxation that makes an analytic deployable as Sigma
rules: what Sigma cannot express but can drop soundly (baselines, a sequence's `until`, the
measures and ratios a correlation cannot compute) is dropped, each a declared superset."""

from __future__ import annotations

from backends.relax import Dropped, one_threshold, without_baselines, without_until
from backends.sigma.support import CORRELATION_TYPES
from compiler import ir


def chain(analytic: ir.Analytic, stream: str) -> list[ir.Stream]:
    """The stream and the streams it is derived from, the logsource stream first."""
    out = [analytic.stream(stream)]
    while isinstance(out[-1].source, str):
        out.append(analytic.stream(out[-1].source))
    return out[::-1]


def detection_streams(det: ir.Detection) -> list[str]:
    if isinstance(det, ir.Match | ir.Aggregate):
        return [det.stream]
    if isinstance(det, ir.Sequence):
        return [s.stream for s in det.steps] + ([det.until.stream] if det.until else [])
    if isinstance(det, ir.Cooccurrence):
        return [s.stream for s in det.members]
    return [det.first.stream, det.missing.stream]


def relaxed(analytic: ir.Analytic) -> tuple[ir.Analytic, tuple[Dropped, ...]]:
    """``analytic`` without what a Sigma rule cannot check, and what was dropped."""
    a, baselines = without_baselines(analytic)
    a, until = without_until(a)
    a, having = one_threshold(a, CORRELATION_TYPES)
    return a, baselines + until + having
