"""Runtime types shared by every part of the reference evaluator."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
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
    time (everything else), in ms; ``evidence`` lists event ids in time order.

    The fields of the candidate that baselines read (group keys, step-prefixed fields, event
    fields) are ``pairs`` followed by every field of every ``steps`` entry, named
    ``prefix + field``. ``steps`` holds ``(prefix, fields)`` with the evidence events' field
    mappings *by reference* (not copied: an alert costs no memory per field); ``prefix`` is
    ``"alias."`` for a correlation step and ``""`` for a match's event. :attr:`record` spells
    them out; :meth:`field` reads one without building it."""

    analytic: str
    key: tuple[tuple[str, Scalar], ...]
    start: int
    end: int
    measures: tuple[tuple[str, Scalar], ...]
    evidence: tuple[str, ...]
    pairs: tuple[tuple[str, Any], ...] = ()
    # Field mappings are not hashable: hash the alert by its other attributes.
    steps: tuple[tuple[str, Mapping[str, Any]], ...] = dataclass_field(default=(), hash=False)

    @property
    def record(self) -> tuple[tuple[str, Any], ...]:
        """Every ``(name, value)`` the candidate offers baselines, in order: ``pairs``, then
        each step's fields under its prefix."""
        if not self.steps:
            return self.pairs
        return self.pairs + tuple(
            (prefix + name, value)
            for prefix, fields in self.steps
            for name, value in fields.items()
        )

    def field(self, name: str) -> Any:
        """The first value named ``name`` in :attr:`record`, else in ``key``, else None."""
        for k, v in self.pairs:
            if k == name:
                return v
        for prefix, fields in self.steps:
            if not prefix:
                if name in fields:
                    return fields[name]
            elif name.startswith(prefix):
                rest = name[len(prefix) :]
                if rest in fields:
                    return fields[rest]
        for k, v in self.key:
            if k == name:
                return v
        return None


class Detector(Protocol):
    """A detection operator. The engine feeds it, in time order, every event of the streams it
    reads (``push``), advances the watermark (``advance``: no event with ``ts`` < watermark will
    arrive any more) and finally calls ``finish`` with the observation end (or None).

    ``next_wake()`` is the smallest watermark at which ``advance`` would do anything (return an
    alert or change state): ``advance(w)`` for ``w < next_wake()`` must be a no-op, so the engine
    skips it. The value may change only through ``push`` and ``advance``."""

    def push(self, stream: str, event: Event) -> Iterable[Alert]: ...

    def advance(self, watermark: int) -> Iterable[Alert]: ...

    def next_wake(self) -> int: ...

    def finish(self, now: int | None) -> Iterable[Alert]: ...
