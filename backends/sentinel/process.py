"""Process identity in the kql backend: when a correlation or join names one process, so that
the query may key on the data source's unique process id and rely on there being one process
start per id (docs/semantics.md, "Process identity"; :mod:`backends.identity`).

MDE names a process by DeviceId + ProcessId + ProcessCreationTime (the profile's
``ProcessUniqueId`` / ``InitiatingProcessUniqueId``), ASIM by ``TargetProcessGuid`` /
``SrcProcessGuid``: a process has one start event, so a join or a sequence step over the process
starts of one identity has at most one candidate event, and the order of equal timestamps cannot
change which one is chosen.
"""

from __future__ import annotations

import dataclasses

from backends.identity import HOST_KEYS, disjoint_streams, sequence_process_key
from backends.relax import read_streams
from compiler import ir

ENTITY = "process.entity_id"
# a first-step key naming a process -> the second-step key naming that process as the parent
PARENT = {"process.pid": "process.parent.pid", ENTITY: "process.parent.entity_id"}


def is_process_start(analytic: ir.Analytic, stream_name: str) -> bool:
    """Whether every event of the stream is a process start: its ``from`` chain ends at a
    ``process_creation`` logsource."""
    streams = {s.name: s for s in analytic.streams}
    name: str | None = stream_name
    seen: set[str] = set()
    while name is not None and name in streams and name not in seen:
        seen.add(name)
        s = streams[name]
        if isinstance(s.source, ir.LogSource):
            return s.source.category == "process_creation"
        name = s.source
    return False


def one_partner(analytic: ir.Analytic, on: tuple[str, ...], other: str) -> bool:
    """Whether a join on ``on`` with the stream ``other`` has at most one partner per event:
    the keys hold the process identity and the partner stream holds process starts."""
    return ENTITY in on and is_process_start(analytic, other)


def identity_sequence(analytic: ir.Analytic) -> ir.Sequence | None:
    """The analytic's sequence keyed on the process identity instead of (host, PID) + until
    process end (:func:`backends.identity.sequence_process_key`): every step keyed on the host
    keys, ``process.entity_id`` and the other keys, without the until. None when the sequence
    does not name one process that way."""
    d = analytic.detection
    # a counted step is rendered with its until (backends/sentinel/counted.py)
    if not isinstance(d, ir.Sequence) or any(s.count > 1 for s in d.steps):
        return None
    pk = sequence_process_key(analytic, d)
    if pk is None:
        return None
    keys = (*pk.host, ENTITY, *pk.others)
    steps = tuple(ir.Step(s.alias, s.stream, keys, s.span) for s in d.steps)
    return ir.Sequence(steps, d.maxspan_ms, None, d.span)


def exact_identity_pairs(analytic: ir.Analytic, seq: ir.Sequence) -> bool:
    """Whether the join-built sequence is exact: two steps on the process identity whose first
    step holds process starts, so each process has one first-step event (consumption and the
    replacement of pending partials cannot occur) and its pairing is its earliest later
    second-step event within maxspan, whichever of tied ones it is (they give the same alert)."""
    return (
        len(seq.steps) == 2
        and ENTITY in seq.steps[0].keys
        and seq.until is None
        and is_process_start(analytic, seq.steps[0].stream)
    )


def needed_streams(analytic: ir.Analytic, seq: ir.Sequence | None) -> set[str]:
    """The streams the query reads (``seq`` replacing a sequence detection)."""
    d = seq or analytic.detection
    return read_streams(dataclasses.replace(analytic, detection=d))


def parent_child(analytic: ir.Analytic, seq: ir.Sequence) -> str | None:
    """The process key of a parent -> child sequence, or None: two steps of process starts that
    no event belongs to both of, without until, whose keys are the same host keys and one
    process key of the first step (``process.pid`` or ``process.entity_id``) against that
    key of the second step's parent. Then the second step's event is a child of the first's
    process, and one process start names the first step's event (docs/semantics.md, "Process
    identity": parent and child)."""
    if len(seq.steps) != 2 or seq.until is not None:
        return None
    first, second = seq.steps
    if not all(is_process_start(analytic, s.stream) for s in seq.steps):
        return None
    if len(first.keys) != len(second.keys) or not disjoint_streams(
        analytic, first.stream, second.stream
    ):
        return None
    pairs = list(zip(first.keys, second.keys, strict=True))
    own = [a for a, b in pairs if PARENT.get(a) == b]
    rest = [(a, b) for a, b in pairs if PARENT.get(a) != b]
    if len(own) != 1 or any(a != b or a not in HOST_KEYS for a, b in rest):
        return None
    return own[0]
