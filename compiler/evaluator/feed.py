"""Input files -> events in ``(ts, seq)`` order, in memory that does not grow with the input.

docs/semantics.md "Event delivery": the input order is ``(ts, seq)``; ties keep file order, and
the files in the order they are listed. That is a stable sort of the concatenated files by
time, which this module produces without holding the files:

* a file already in time order (most logs) is read lazily, and the files are merged lazily
  (:func:`heapq.merge` on ``(ts, file, record)``);
* a file out of order is sorted externally: runs of :data:`RUN_EVENTS` events are sorted in
  memory and spilled to a private temporary folder (``marshal``: the records are JSON values),
  then merged back lazily.

Whether a file is in order is found while it is read: :func:`file_records` raises
:class:`OutOfOrder` at the first record older than its predecessor, and the caller starts over
with that file sorted (compiler.runner.run_files).

Records are ``(ts, file, n, event)``: ``n`` counts the file's records from 1 (an event without
``event.id`` is named ``<file name>#<n>``), and ``event`` is None when the analytics' entry
condition (``admits``, or its test of the line, ``Reading.sieve``) rejects it: the evaluator then
only learns its time (:meth:`Evaluation.skip`), so it is neither built nor spilled in full.
"""

from __future__ import annotations

import heapq
import itertools
import marshal
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from compiler.evaluator.model import Event
from compiler.inputs import Reading, read_timed
from compiler.timeutil import format_timestamp, parse_timestamp

Record = tuple[int, int, int, Event | None]
Admits = Callable[[Mapping[str, Any]], bool]

# Events per sorted run of an out-of-order file: about 100 MB of flattened ECS events.
RUN_EVENTS = 50_000
# Runs merged at once; more are merged in rounds (each run holds an open file).
MAX_FAN_IN = 128


class OutOfOrder(Exception):
    """A record of file ``index`` is older than the record before it."""

    def __init__(self, index: int, path: Path, n: int, ts: int, prev: int) -> None:
        super().__init__(
            f"{path}: record {n} is out of order: its time {format_timestamp(ts)} is earlier "
            f"than record {n - 1}'s ({format_timestamp(prev)})"
        )
        self.index = index


def make_event(fields: dict[str, Any], ts: int | None, n: int, source: str) -> Event:
    """compiler.evaluator.engine.to_event for flat ``fields`` whose time may be known."""
    raw_id = fields.get("event.id")
    eid = f"{source}#{n}" if raw_id is None or raw_id == "" else str(raw_id)
    if ts is None:
        raw_ts = fields.get("@timestamp")
        if raw_ts is None:
            raise ValueError(f"event {eid!r} has no @timestamp")
        try:
            ts = parse_timestamp(raw_ts)
        except ValueError as exc:
            raise ValueError(f"event {eid!r}: {exc}") from exc
    return Event(ts, n, eid, fields)


def file_records(
    index: int,
    path: Path,
    fmt: str,
    admits: Admits | None,
    ordered: bool = True,
    reading: Reading | None = None,
) -> Iterator[Record]:
    """The records of one file in file order. ``ordered``: raise :class:`OutOfOrder` at the
    first record older than its predecessor. ``reading``: see compiler.inputs.read_timed."""
    source = path.name
    prev = -(2**63)
    event: Event | None
    for n, (ts, fields) in enumerate(read_timed(path, fmt, None, admits, reading), 1):
        if fields is None:
            assert ts is not None
            event = None
        else:
            event = make_event(fields, ts, n, source)
            ts = event.ts
        if ts < prev and ordered:
            raise OutOfOrder(index, path, n, ts, prev)
        prev = ts
        yield ts, index, n, event


def sorted_records(
    index: int,
    path: Path,
    fmt: str,
    admits: Admits | None,
    run_events: int = RUN_EVENTS,
    reading: Reading | None = None,
) -> Iterator[Record]:
    """The records of one file sorted by ``(ts, n)``: in memory when the file has at most
    ``run_events`` records, else through sorted runs spilled to a temporary folder."""
    records = file_records(index, path, fmt, admits, ordered=False, reading=reading)
    buf: list[Record] = []
    for rec in records:
        buf.append(rec)
        if len(buf) >= run_events:
            break
    else:
        buf.sort()  # (ts, index, n) is unique: events are never compared
        yield from buf
        return
    with tempfile.TemporaryDirectory(prefix="siemc-sort-") as tmp:
        names = (Path(tmp) / f"run{i}" for i in itertools.count())
        runs: list[Path] = []
        while buf:
            buf.sort()
            runs.append(_spill(next(names), buf))
            buf = []
            for rec in records:
                buf.append(rec)
                if len(buf) >= run_events:
                    break
            if len(runs) >= MAX_FAN_IN:
                merged = heapq.merge(*(_read_run(r, index) for r in runs))
                runs = [_spill(next(names), merged, runs)]
        yield from heapq.merge(*(_read_run(r, index) for r in runs))


def _spill(path: Path, records: Any, consumed: list[Path] | None = None) -> Path:
    with path.open("wb", buffering=1 << 20) as fh:
        dump = marshal.dump
        for ts, _, n, ev in records:
            dump((ts, n, None) if ev is None else (ts, n, ev.id, ev.fields), fh)
    for old in consumed or ():
        old.unlink()
    return path


def _read_run(path: Path, index: int) -> Iterator[Record]:
    with path.open("rb", buffering=1 << 20) as fh:
        load = marshal.load
        while True:
            try:
                item = load(fh)
            except EOFError:
                return
            ts, n = item[0], item[1]
            yield ts, index, n, None if len(item) == 3 else Event(ts, n, item[2], item[3])


def merge(streams: list[Iterator[Record]]) -> Iterator[Record]:
    """Records of several files in ``(ts, file, n)`` order: ties keep the files' order."""
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams)
