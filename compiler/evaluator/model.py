"""Runtime types shared by every part of the reference evaluator."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from compiler.ir import Scalar


@dataclass(slots=True)
class Event:
    """One normalised event. ``fields`` holds flat, dotted ECS names (``process.name``).

    ``ts`` is milliseconds since the Unix epoch (UTC); ``seq`` is the position in the merged
    input and breaks timestamp ties (input order); ``id`` is ``event.id`` when present, else
    ``<source>#<n>``.
    """

    ts: int
    seq: int
    id: str
    fields: dict[str, Any]

    def get(self, name: str) -> Any:
        return self.fields.get(name)


@dataclass(frozen=True, slots=True)
class Alert:
    """What the evaluator reports. ``key`` is the group/correlation key as (field, value) pairs in
    declaration order; ``start``/``end`` are the window (aggregates) or the first/last evidence
    time (everything else), in ms; ``evidence`` lists event ids in time order."""

    analytic: str
    key: tuple[tuple[str, Scalar], ...]
    start: int
    end: int
    measures: tuple[tuple[str, Scalar], ...]
    evidence: tuple[str, ...]
    # Fields of the candidate that baselines read (group keys, step-prefixed fields, event fields)
    record: tuple[tuple[str, Any], ...] = ()

    def field(self, name: str) -> Any:
        for k, v in self.record:
            if k == name:
                return v
        for k, v in self.key:
            if k == name:
                return v
        return None


class Detector(Protocol):
    """A detection operator. The engine feeds it, in time order, every event of the streams it
    reads (``push``), advances the watermark (``advance``: no event with ``ts`` < watermark will
    arrive any more) and finally calls ``finish`` with the observation end (or None)."""

    def push(self, stream: str, event: Event) -> Iterable[Alert]: ...

    def advance(self, watermark: int) -> Iterable[Alert]: ...

    def finish(self, now: int | None) -> Iterable[Alert]: ...
