"""ECS events as JSON Lines or one JSON array, nested or dotted: flattened, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from compiler.inputs._common import Record, fail, flatten, iter_objects, timestamp
from compiler.timeutil import parse_timestamp


def read(path: Path, limit: int | None = None) -> Iterator[Record]:
    for lineno, doc in iter_objects(path, limit):
        try:
            event = flatten(doc)
        except ValueError as exc:
            raise fail(path, lineno, str(exc)) from exc
        if "@timestamp" not in event:
            raise fail(path, lineno, "missing @timestamp")
        value = event["@timestamp"]
        try:
            if isinstance(value, str):
                parse_timestamp(value)  # an ISO string that parses is kept as written
            else:
                event["@timestamp"] = timestamp(value)
        except ValueError as exc:
            raise fail(path, lineno, str(exc)) from exc
        yield event
