"""Azure Monitor VM insights ``VMConnection`` rows (JSON lines) -> ECS network flows.

A row summarises one connection of one process over a reporting interval. ``BytesSent`` and
``BytesReceived`` are from the local process's point of view, whereas ECS ``source`` is the
side that initiated the connection: for ``Direction: outbound`` the local host is the source,
for ``inbound`` the remote one is, and the byte counts swap accordingly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler.inputs._common import (
    IdDeduper,
    Record,
    clean_ip,
    fail,
    iter_objects,
    put,
    timestamp,
    to_int,
)


def read(path: Path, limit: int | None = None) -> Iterator[Record]:
    ids = IdDeduper()
    for lineno, row in iter_objects(path, limit):
        try:
            yield _to_ecs(row, ids)
        except (ValueError, TypeError) as exc:
            raise fail(path, lineno, str(exc)) from exc


def _to_ecs(row: dict[str, Any], ids: IdDeduper) -> Record:
    when = row.get("TimeGenerated")
    if when in (None, ""):
        raise ValueError("missing TimeGenerated")
    out: Record = {
        "@timestamp": timestamp(when),
        "event.kind": "event",
        "event.category": "network",
        "event.type": "connection",
        "event.module": "azure",
        "event.dataset": "azure.vmconnection",
    }
    if row.get("ConnectionId"):
        out["event.id"] = ids(str(row["ConnectionId"]))
    put(out, "host.name", row.get("Computer"))
    put(out, "process.name", row.get("ProcessName"))
    put(out, "source.ip", clean_ip(row.get("SourceIp")))
    put(out, "destination.ip", clean_ip(row.get("DestinationIp")))
    put(out, "destination.port", to_int(row.get("DestinationPort")))
    if isinstance(row.get("Protocol"), str):
        out["network.transport"] = row["Protocol"].lower()
    sent, received = to_int(row.get("BytesSent")), to_int(row.get("BytesReceived"))
    direction = str(row.get("Direction", "")).lower()
    if direction == "inbound":
        out["network.direction"] = "ingress"
        sent, received = received, sent
    elif direction == "outbound":
        out["network.direction"] = "egress"
    put(out, "source.bytes", sent)
    put(out, "destination.bytes", received)
    for name, value in row.items():
        out[f"azure.vmconnection.{name}"] = value
    return out
