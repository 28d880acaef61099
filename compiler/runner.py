"""``siemc run``: the reference evaluator over a user's own log files."""

from __future__ import annotations

import dataclasses
import gc
import heapq
import json
import marshal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from compiler import ir
from compiler.evaluator import Alert, Evaluation, Event, make_events, merge_events
from compiler.evaluator.engine import alert_sort_key
from compiler.evaluator.feed import (
    RUN_EVENTS,
    Admits,
    OutOfOrder,
    Record,
    file_records,
    merge,
    sorted_records,
)
from compiler.evaluator.reads import read_fields
from compiler.evaluator.sieve import sieve_for
from compiler.inputs import FORMATS, Reading, read_events
from compiler.timeutil import format_timestamp

# Characters of alert lines per sorted run of an analytic's output. In memory a line costs about
# four times its text (its sort key holds the evidence ids as separate strings).
SINK_CHARS = 2_000_000


def parse_input_spec(spec: str, default_format: str) -> tuple[Path, str]:
    """``FILE`` or ``FORMAT:FILE`` (``sysmon:logs/sysmon.jsonl``)."""
    fmt, sep, rest = spec.partition(":")
    if sep and fmt in FORMATS:
        return Path(rest), fmt
    if sep and fmt.isidentifier() and not Path(spec).exists():
        raise ValueError(f"unknown input format '{fmt}' in '{spec}'; formats: {', '.join(FORMATS)}")
    return Path(spec), default_format


def load_sorted(inputs: list[tuple[Path, str]]) -> list[Event]:
    """Read every input and merge them in time order, all in memory (the reference that
    :func:`run_files` streams)."""
    return merge_events(make_events(read_events(p, fmt), p.name) for p, fmt in inputs)


def run(analytics: list[ir.Analytic], events: Iterable[Event], now: int | None) -> list[Alert]:
    """Evaluate several analytics in one pass over events sorted by ``(ts, seq)``."""
    runs = [Evaluation(a) for a in analytics]
    for ev in events:
        for r in runs:
            r.push(ev)
    out: list[Alert] = []
    for r in runs:
        out.extend(r.finish(now))
    return out


def run_files(
    analytics: list[ir.Analytic],
    inputs: list[tuple[Path, str]],
    now: int | None,
    presorted: bool = False,
    run_events: int = RUN_EVENTS,
) -> list[Alert]:
    """:func:`run` over the events of ``inputs`` (in the order of :func:`load_sorted`),
    streamed: each file is read lazily while it is in time order. At the first file found out
    of order the evaluation starts over, with every file not yet read to its end in order
    sorted externally (compiler.evaluator.feed); with ``presorted`` that is an error instead.

    Alerts carry no event fields (``steps``/``pairs``), only what is printed."""
    taken: list[list[Alert]] = []

    def collect(n: int) -> list[Callable[[Alert], None]]:
        taken[:] = [[] for _ in range(n)]
        return [t.append for t in taken]

    _run_restarting(analytics, inputs, now, presorted, run_events, collect)
    return [a for t in taken for a in sorted(t, key=alert_sort_key)]


def alert_lines(
    analytics: list[ir.Analytic],
    inputs: list[tuple[Path, str]],
    now: int | None,
    presorted: bool = False,
    run_events: int = RUN_EVENTS,
    sink_chars: int = SINK_CHARS,
    progress: Progress | None = None,
) -> Iterator[str]:
    """The :func:`alert_json` lines of :func:`run_files`, in the same order, with the alerts
    held as sorted runs of about ``sink_chars`` characters spilled to a temporary folder:
    memory does not grow with the number of alerts either. Evaluates before returning (errors are
    raised here, before any line); the folder goes when the lines have been read."""
    tmp = tempfile.TemporaryDirectory(prefix="siemc-alerts-")
    sinks: list[_Sink] = []

    def collect(n: int) -> list[Callable[[Alert], None]]:
        sinks[:] = [_Sink(Path(tmp.name) / f"a{k}", sink_chars) for k in range(n)]
        return [s.add for s in sinks]

    # Everything alive now (modules, the analytics) lives as long as the run: the collector
    # need not traverse it again at every full collection the events trigger.
    gc.freeze()
    try:
        _run_restarting(analytics, inputs, now, presorted, run_events, collect, progress)
    except BaseException:
        tmp.cleanup()
        raise
    finally:
        gc.unfreeze()
    return _drain(sinks, tmp)


Collect = Callable[[int], list[Callable[[Alert], None]]]
# called with the number of records read so far, every PROGRESS_EVERY records (siemc run's
# counter on a terminal); a restart after an out-of-order file counts again from 0
Progress = Callable[[int], None]
PROGRESS_EVERY = 1 << 14


def _run_restarting(
    analytics: list[ir.Analytic],
    inputs: list[tuple[Path, str]],
    now: int | None,
    presorted: bool,
    run_events: int,
    collect: Collect,
    progress: Progress | None = None,
) -> None:
    ordered: set[int] = set()
    to_sort: set[int] = set()
    while True:
        try:
            # a fresh collector per attempt: a restart forgets the alerts of the last one
            emit = collect(len(analytics))
            _evaluate(analytics, inputs, now, to_sort, ordered, run_events, emit, progress)
            return
        except OutOfOrder as exc:
            if presorted:
                raise ValueError(f"{exc}; --presorted needs each input in time order") from None
            to_sort = set(range(len(inputs))) - ordered


def _evaluate(
    analytics: list[ir.Analytic],
    inputs: list[tuple[Path, str]],
    now: int | None,
    to_sort: set[int],
    ordered: set[int],
    run_events: int,
    emit: list[Callable[[Alert], None]],
    progress: Progress | None = None,
) -> None:
    runs = [Evaluation(a) for a in analytics]
    admits = _entry_condition(runs)
    # the entry condition as a test of an ECS line's text, and the fields worth building
    reading = Reading(
        sieve_for(ir.Or(tuple(r.streams.entry for r in runs))), read_fields(analytics)
    )
    streams = [
        sorted_records(i, p, f, admits, run_events, reading)
        if i in to_sort
        else _noting_end(i, file_records(i, p, f, admits, reading=reading), ordered)
        for i, (p, f) in enumerate(inputs)
    ]
    _feed(runs, merge(streams), emit, progress)
    for r, add in zip(runs, emit, strict=True):
        for a in r.finish(now):
            add(_slim(a))


def _feed(
    runs: list[Evaluation],
    records: Iterator[Record],
    emit: list[Callable[[Alert], None]],
    progress: Progress | None = None,
) -> None:
    # seq counts every input event, skipped or not: the same numbers as load_sorted gives
    for seq, (ts, _, _, ev) in enumerate(records):
        if progress is not None and seq % PROGRESS_EVERY == 0:
            progress(seq)
        if ev is None:
            for r in runs:
                r.skip(ts, seq)
            continue
        ev.seq = seq
        for k, r in enumerate(runs):
            r.push(ev)
            if r.alerts:
                add = emit[k]
                for a in r.take_alerts():
                    add(_slim(a))


class _Sink:
    """One analytic's alert lines in :func:`alert_sort_key` order, ties in arrival order (the
    stable sort of :meth:`Evaluation.finish`), as sorted runs spilled to ``prefix``-named files."""

    def __init__(self, prefix: Path, chars: int) -> None:
        self.prefix, self.chars = prefix, chars
        self.buf: list[tuple[Any, int, str]] = []
        self.runs: list[Path] = []
        self.count = 0
        self.size = 0

    def add(self, alert: Alert) -> None:
        line = alert_json(alert)
        self.buf.append((alert_sort_key(alert), self.count, line))
        self.count += 1
        self.size += len(line)
        if self.size >= self.chars:
            self.size = 0
            self.buf.sort()
            path = self.prefix.with_name(f"{self.prefix.name}-{len(self.runs)}")
            with path.open("wb") as fh:
                for item in self.buf:
                    marshal.dump(item, fh)
            self.runs.append(path)
            self.buf = []

    def lines(self) -> Iterator[str]:
        self.buf.sort()  # (key, arrival, line): arrival is unique, lines are never compared
        for _, _, line in heapq.merge(*(_read(p) for p in self.runs), self.buf):
            yield line


def _read(path: Path) -> Iterator[tuple[Any, int, str]]:
    with path.open("rb") as fh:
        while True:
            try:
                yield marshal.load(fh)
            except EOFError:
                return


def _drain(sinks: list[_Sink], tmp: tempfile.TemporaryDirectory[str]) -> Iterator[str]:
    try:
        for sink in sinks:
            yield from sink.lines()
    finally:
        tmp.cleanup()


def _entry_condition(runs: list[Evaluation]) -> Admits:
    if len(runs) == 1:
        return runs[0].admits
    return lambda fields: any(r.admits(fields) for r in runs)


def _noting_end(index: int, records: Iterator[Record], ordered: set[int]) -> Iterator[Record]:
    yield from records
    ordered.add(index)


def _slim(alert: Alert) -> Alert:
    # What alert_json prints; the event fields an alert references are for baselines only.
    return dataclasses.replace(alert, pairs=(), steps=()) if alert.steps or alert.pairs else alert


def alert_json(al: Alert) -> str:
    doc: dict[str, Any] = {
        "analytic": al.analytic,
        "key": dict(al.key),
        "start": format_timestamp(al.start),
        "end": format_timestamp(al.end),
        "measures": {k: _number(v) for k, v in al.measures},
        "evidence": list(al.evidence),
    }
    return json.dumps(doc, sort_keys=False, ensure_ascii=False, default=str)


def _number(v: Any) -> Any:
    """A measure as JSON numbers mean it: an integral float is written as the integer (10.0 and
    10 are one number), so every engine prints the same line for the same alert."""
    if type(v) is float and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v
