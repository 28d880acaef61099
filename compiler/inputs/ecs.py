"""ECS events as JSON Lines or one JSON array, nested or dotted: flattened, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from compiler.inputs._common import Record, fail, flatten, iter_objects, timestamp
from compiler.timeutil import parse_timestamp


def read(path: Path, limit: int | None = None) -> Iterator[Record]:
    for _, event in read_timed(path, limit):
        yield event


def read_timed(path: Path, limit: int | None = None) -> Iterator[tuple[int | None, Record]]:
    """``(ts, event)``: the events of :func:`read`, each with its ``@timestamp`` in ms when the
    file holds it as text (parsed once, here), else None: a number is rewritten as ISO text,
    which the evaluator parses (compiler.evaluator.engine.to_event), exactly as before."""
    for lineno, doc in iter_objects(path, limit):
        try:
            event = flatten(doc)
        except ValueError as exc:
            raise fail(path, lineno, str(exc)) from exc
        if "@timestamp" not in event:
            raise fail(path, lineno, "missing @timestamp")
        value = event["@timestamp"]
        ts: int | None = None
        try:
            if isinstance(value, str):
                ts = parse_timestamp(value)  # an ISO string that parses is kept as written
            else:
                event["@timestamp"] = timestamp(value)
        except ValueError as exc:
            raise fail(path, lineno, str(exc)) from exc
        yield ts, event
