"""``siemc run``: the reference evaluator over a user's own log files."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
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
from compiler.inputs import FORMATS, read_events
from compiler.timeutil import format_timestamp


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

    Alerts carry no event fields (``steps``/``pairs``): memory holds only what is printed."""
    ordered: set[int] = set()
    to_sort: set[int] = set()
    while True:
        try:
            return _evaluate(analytics, inputs, now, to_sort, ordered, run_events)
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
) -> list[Alert]:
    runs = [Evaluation(a) for a in analytics]
    admits = _entry_condition(runs)
    streams = [
        sorted_records(i, p, f, admits, run_events)
        if i in to_sort
        else _noting_end(i, file_records(i, p, f, admits), ordered)
        for i, (p, f) in enumerate(inputs)
    ]
    out: list[list[Alert]] = [[] for _ in runs]
    _feed(runs, merge(streams), out)
    alerts: list[Alert] = []
    for r, taken in zip(runs, out, strict=True):
        taken.extend(_slim(a) for a in r.finish(now))
        alerts.extend(sorted(taken, key=alert_sort_key))
    return alerts


def _feed(runs: list[Evaluation], records: Iterator[Record], out: list[list[Alert]]) -> None:
    # seq counts every input event, skipped or not: the same numbers as load_sorted gives
    for seq, (ts, _, _, ev) in enumerate(records):
        if ev is None:
            for r in runs:
                r.skip(ts, seq)
            continue
        ev.seq = seq
        for k, r in enumerate(runs):
            r.push(ev)
            if r.alerts:
                out[k].extend(_slim(a) for a in r.take_alerts())


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
        "measures": dict(al.measures),
        "evidence": list(al.evidence),
    }
    return json.dumps(doc, sort_keys=False, ensure_ascii=False, default=str)
