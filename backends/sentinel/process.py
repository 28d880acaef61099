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

from compiler import ir

ENTITY = "process.entity_id"


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
