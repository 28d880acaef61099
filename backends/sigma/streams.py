"""The streams a Sigma rule reads, and the relaxation that makes an analytic deployable as Sigma
rules: what Sigma cannot express but can drop soundly (baselines, a sequence's `until`, the
measures and ratios a correlation cannot compute) is dropped, each a declared superset."""

from __future__ import annotations

import dataclasses

from backends.identity import sequence_process_key
from backends.profiles import FieldProfile
from backends.relax import (
    IDENTITY,
    Dropped,
    coarser_keys,
    join_as_own_filter,
    one_threshold,
    prune_streams,
    without_baselines,
    without_measures_over,
    without_until,
)
from backends.sigma.inline import Env
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


IDENTITY_NOTE = (
    "the sequence is keyed on the process identity (Sysmon's ProcessGuid, ECS "
    "process.entity_id) besides host and PID instead of cancelling on the process end: the two "
    "mean the same process when every step event carries the identity (docs/semantics.md, "
    "'Process identity'); the alert key stays host and PID"
)


def relaxed(
    analytic: ir.Analytic, profile: FieldProfile
) -> tuple[ir.Analytic, tuple[Dropped, ...], bool]:
    """``analytic`` without what a Sigma rule cannot check, what was dropped, and whether a
    process end was replaced by the process identity."""
    a, baselines = without_baselines(analytic)
    a, identity = by_identity(a)
    a, until = without_until(a)
    a, lacking = without_measures_over(a, lacking_measure_fields(a, profile))
    a, join = join_as_own_filter(a)
    keys: tuple[Dropped, ...] = ()
    if isinstance(a.detection, ir.Aggregate):
        # a Sigma correlation groups by fields as logged (a derive that copies one is fine)
        env = _env(a, a.detection.stream)
        a, keys = coarser_keys(a, lambda k: isinstance(env.resolve(k), ir.FieldRef))
    a, having = one_threshold(a, CORRELATION_TYPES)
    return a, baselines + until + lacking + join + keys + having, identity


def _env(analytic: ir.Analytic, stream: str) -> Env:
    env = Env()
    for s in chain(analytic, stream):
        env = env.enriched(s.enrich).derived(s.derive)
    return env


def lacking_measure_fields(analytic: ir.Analytic, profile: FieldProfile) -> set[str]:
    """The aggregate's measure fields its logsource does not carry (a byte count on Sysmon
    network events), read as logged: a measure of a derived field counts when every field the
    derive reads is lacking."""
    d = analytic.detection
    if not isinstance(d, ir.Aggregate):
        return set()
    streams = chain(analytic, d.stream)
    root = streams[0]
    if not isinstance(root.source, ir.LogSource):
        return set()
    # a field a join adds comes from the partner's source
    joined = {f for s in streams if s.join is not None for f in s.join.add}
    env = _env(analytic, d.stream)
    out = set()
    for m in d.measures:
        if m.field is None:
            continue
        reads = sorted(ir.field_names(env.resolve(m.field)))
        if (
            reads
            and not joined & set(reads)
            and len(profile.lacking(root.source, reads)) == len(reads)
        ):
            out.add(m.field)
    return out


def by_identity(analytic: ir.Analytic) -> tuple[ir.Analytic, bool]:
    """A sequence keyed on (host, PID) and cancelled by that process' end, keyed on the process
    identity too, with no `until` (backends.identity)."""
    d = analytic.detection
    if not isinstance(d, ir.Sequence) or sequence_process_key(analytic, d) is None:
        return analytic, False
    steps = tuple(dataclasses.replace(s, keys=(*s.keys, IDENTITY)) for s in d.steps)
    seq = dataclasses.replace(d, steps=steps, until=None)
    return prune_streams(dataclasses.replace(analytic, detection=seq)), True
