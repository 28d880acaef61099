"""ECS events as JSON Lines or one JSON array, nested or dotted: flattened, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from compiler.inputs._common import (
    Admits,
    Reading,
    Record,
    fail,
    flatten,
    iter_objects,
    timestamp,
)
from compiler.inputs._lines import Checked
from compiler.inputs.nested import NestedFields, within_depth
from compiler.inputs.project import Projection, build_trie
from compiler.timeutil import parse_timestamp


def read(path: Path, limit: int | None = None) -> Iterator[Record]:
    for _, event in read_timed(path, limit):
        if event is not None:  # always: nothing is rejected without an entry condition
            yield event


def read_timed(
    path: Path,
    limit: int | None = None,
    admits: Admits | None = None,
    reading: Reading | None = None,
) -> Iterator[tuple[int | None, Record | None]]:
    """``(ts, event)``: the events of :func:`read`, each with its ``@timestamp`` in ms when the
    file holds it as text (parsed once, here), else None: a number is rewritten as ISO text,
    which the evaluator parses (compiler.evaluator.engine.to_event), exactly as before.

    ``admits``: an entry condition on the fields, tried on the nested document (before
    flattening); a record it rejects comes as ``(ts, None)``. Records whose time is not text
    are not tried (they come whole).

    ``reading`` (with ``admits``): a record whose line its ``sieve`` rejects comes as
    ``(ts, None)`` untried; with ``fields``, an event holds only those of its fields (the
    others are never read), for the records of JSON Lines whose time is text."""
    checked = admits is not None and reading is not None
    sieve = (reading.sieve or _keep) if checked and reading is not None else None
    # the fields an event is made of (compiler.evaluator.feed.make_event) are always built
    wanted = None if reading is None or reading.fields is None else reading.fields | _MADE_OF
    trie = build_trie(wanted) if checked and wanted else None
    project = flatten if trie is None else Projection(trie)
    probe = _Probe() if admits is not None else None
    for lineno, doc in iter_objects(path, limit, sieve):
        if type(doc) is Checked:
            try:
                ts = parse_timestamp(doc.doc["@timestamp"])
            except ValueError as exc:
                raise fail(path, lineno, str(exc)) from exc
            if not doc.wanted:
                yield ts, None
                continue
            # within MAX_NESTING: neither flattening nor projecting raises
            event = project(doc.doc)
            if probe is not None and admits is not None and probe.trying():
                if not admits(event):
                    yield ts, None
                    continue
                probe.admitted()
            yield ts, event
            continue
        if probe is not None and admits is not None and probe.trying():
            value = doc.get("@timestamp")  # flatten's "@timestamp" is this key or nothing
            if type(value) is str:
                if admits(NestedFields(doc)):
                    probe.admitted()
                elif within_depth(doc):
                    try:
                        skipped = parse_timestamp(value)
                    except ValueError as exc:
                        raise fail(path, lineno, str(exc)) from exc
                    yield skipped, None
                    continue
        try:
            event = flatten(doc)
        except ValueError as exc:
            raise fail(path, lineno, str(exc)) from exc
        if "@timestamp" not in event:
            raise fail(path, lineno, "missing @timestamp")
        value = event["@timestamp"]
        known: int | None = None
        try:
            if isinstance(value, str):
                known = parse_timestamp(value)  # an ISO string that parses is kept as written
            else:
                event["@timestamp"] = timestamp(value)
        except ValueError as exc:
            raise fail(path, lineno, str(exc)) from exc
        yield known, event


_MADE_OF = frozenset({"@timestamp", "event.id"})


def _keep(raw: bytes) -> bool:
    return True


class _Probe:
    """Whether trying the entry condition on nested documents pays: where most records pass
    it, they are flattened anyway and the try is wasted (the evaluator routes them exactly as
    well). Decided per block of records, and tried again now and then."""

    BLOCK = 1024
    RETRY = 16  # blocks

    def __init__(self) -> None:
        self.count = 0
        self.passed = 0
        self.on = True
        self.off_blocks = 0

    def trying(self) -> bool:
        self.count += 1
        if self.count < self.BLOCK:
            return self.on
        if self.on:
            self.on = self.passed * 2 < self.count  # most rejected: keep trying
        else:
            self.off_blocks += 1
            self.on = self.off_blocks % self.RETRY == 0
        self.count = self.passed = 0
        return self.on

    def admitted(self) -> None:
        self.passed += 1
