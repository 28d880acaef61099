"""Input profiles: raw logs -> flat, dotted ECS dicts for the reference evaluator.

``read_events(path, fmt)`` yields one dict per event in file order. Every dict has
``@timestamp`` and, where the source has a natural id, ``event.id``. See docs/inputs.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from compiler.inputs import auditd, ecs, sysmon, vmconnection, zeek
from compiler.inputs._common import Admits, Reading, flatten
from compiler.timeutil import parse_timestamp

__all__ = ["FORMATS", "Reading", "flatten", "read_events", "read_timed"]

FORMATS: tuple[str, ...] = ("ecs", "sysmon", "zeek", "auditd", "vmconnection")

_READERS: dict[str, Callable[[Path, int | None], Iterator[dict[str, Any]]]] = {
    "ecs": ecs.read,
    "sysmon": sysmon.read,
    "zeek": zeek.read,
    "auditd": auditd.read,
    "vmconnection": vmconnection.read,
}


def read_timed(
    path: Path,
    fmt: str,
    limit: int | None = None,
    admits: Admits | None = None,
    reading: Reading | None = None,
) -> Iterator[tuple[int | None, dict[str, Any] | None]]:
    """``(ts, fields)`` for the events of :func:`read_events`, flattened; ``ts`` is the
    ``@timestamp`` in ms where the reader has already parsed it, else None (the caller parses
    ``fields["@timestamp"]``, as compiler.evaluator.to_event does).

    ``admits`` (an entry condition on the fields): a record it rejects may come as
    ``(ts, None)``, its time only; every record that comes with fields is to be evaluated.
    ``reading``: what the evaluation wants of ECS records (:class:`Reading`: a test of the
    line's bytes, the fields it reads); the other profiles rename fields and ignore it."""
    if fmt == "ecs":
        return ecs.read_timed(Path(path), limit, admits, reading)
    return _timed(read_events(path, fmt, limit), admits)


def _timed(
    docs: Iterator[dict[str, Any]], admits: Admits | None
) -> Iterator[tuple[int | None, dict[str, Any] | None]]:
    for doc in docs:
        fields = flatten(doc)
        if admits is not None and not admits(fields):
            try:
                ts = parse_timestamp(fields.get("@timestamp"))
            except ValueError:
                yield None, fields  # evaluated after all: the evaluator reports the time
                continue
            yield ts, None
            continue
        yield None, fields


def read_events(path: Path, fmt: str, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Events of ``path`` read with input profile ``fmt`` (one of :data:`FORMATS`); with
    ``limit``, never more than that many bytes of it (RefusedPath E005 past it).

    Raises ``ValueError`` for an unknown format (before touching the file) and, while
    iterating, for a record it cannot read (the message starts with ``path:line:``)."""
    reader = _READERS.get(fmt)
    if reader is None:
        raise ValueError(f"unknown input format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    return reader(Path(path), limit)
