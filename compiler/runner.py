"""``siemc run``: the reference evaluator over a user's own log files."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from compiler import ir
from compiler.evaluator import Alert, Evaluation, Event, make_events, merge_events, to_event
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
    """Read every input and merge them in time order (memory grows with the input)."""
    return merge_events(make_events(read_events(p, fmt), p.name) for p, fmt in inputs)


def stream_sorted(inputs: list[tuple[Path, str]]) -> Iterator[Event]:
    """Merge inputs that are each already in time order, lazily: memory stays constant."""

    def one(i: int, path: Path, fmt: str) -> Iterator[tuple[int, int, Event]]:
        prev: int | None = None
        for n, doc in enumerate(read_events(path, fmt), 1):
            ev = to_event(doc, n, path.name)
            # Checked here, per file, where the file and record are known: once merged, the
            # evaluator could only name the event.
            if prev is not None and ev.ts < prev:
                raise ValueError(
                    f"{path}: record {n} is out of order: its time "
                    f"{format_timestamp(ev.ts)} is earlier than record {n - 1}'s "
                    f"({format_timestamp(prev)}); --presorted needs each input in time order"
                )
            prev = ev.ts
            yield ev.ts, i, ev

    merged = heapq.merge(*(one(i, p, f) for i, (p, f) in enumerate(inputs)))
    for seq, (_, _, ev) in enumerate(merged):
        ev.seq = seq
        yield ev


def run(analytics: list[ir.Analytic], events: Iterable[Event], now: int | None) -> list[Alert]:
    """Evaluate several analytics in one pass over the events."""
    runs = [Evaluation(a) for a in analytics]
    for ev in events:
        for r in runs:
            r.push(ev)
    out: list[Alert] = []
    for r in runs:
        out.extend(r.finish(now))
    return out


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
