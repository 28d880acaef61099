"""Sequences on one process keyed on ECS ``process.entity_id`` instead of (host, PID) + until.

``by: [host.name, process.pid]`` with ``until: <process end>`` says "the same process"
(``backends.identity``). ECS gives every process a unique ``process.entity_id`` (Elastic Defend,
Auditbeat, Winlogbeat's Sysmon ProcessGuid), so the Elastic idiom is ``sequence by host.name,
process.entity_id`` with no ``until``, as Elastic's own endpoint rules write it: it needs no end
events, and a reused PID cannot join another process' events. ``host.name`` stays a key: a
step event without it never joins, as in the analytic, and it lets Elasticsearch partition by
host. Alerts still report the analytic's keys (host and PID of the first event).
"""

from __future__ import annotations

import dataclasses

from backends.identity import ProcessKey, sequence_process_key
from compiler import ir

ENTITY_ID = "process.entity_id"


def entity_keyed(analytic: ir.Analytic, seq: ir.Sequence) -> ir.Sequence | None:
    """The sequence keyed on the process identity, without its until (None: it does not
    correlate one process)."""
    pk = sequence_process_key(analytic, seq)
    if pk is None:
        return None
    keys = (*pk.host, *pk.others, ENTITY_ID)
    steps = tuple(dataclasses.replace(s, keys=keys) for s in seq.steps)
    return dataclasses.replace(seq, steps=steps, until=None)


def note(analytic: ir.Analytic, seq: ir.Sequence) -> str | None:
    """The artifact note stating when the entity-keyed query equals the analytic."""
    pk: ProcessKey | None = sequence_process_key(analytic, seq)
    if pk is None or seq.until is None:
        return None
    named = ", ".join((*pk.host, pk.pid))
    return (
        f"process identity: keyed on {ENTITY_ID} instead of ({named}) with until "
        f"'{seq.until.stream}'; equal to the analytic when every step event carries "
        f"{ENTITY_ID} and {pk.pid}, a ({named}) pair names a new process (a new {ENTITY_ID}) "
        f"only after an end event of the previous one, and no event of a process is ordered "
        f"after its own end (docs/semantics.md, Process identity). Alerts report ({named}) "
        "of the first event"
    )
