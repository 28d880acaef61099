"""Names and small pieces every ES|QL module shares (the lowest layer of the package)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

DEFAULT_INDEX = "logs-*"
METADATA = ("_id", "_index", "_version")

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[1] / "templates" / "esql"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)

_UNITS = (
    (86_400_000, "day", "days"),
    (3_600_000, "hour", "hours"),
    (60_000, "minute", "minutes"),
    (1_000, "second", "seconds"),
    (1, "millisecond", "milliseconds"),
)


def duration(ms: int) -> str:
    """An ES|QL time-duration literal. Weeks are avoided: a calendar week starts on Monday,
    not on the epoch's Thursday, so `1 week` buckets would not be epoch-aligned."""
    for size, one, many in _UNITS:
        if ms % size == 0:
            n = ms // size
            return f"{n} {one if n == 1 else many}"
    raise AssertionError(ms)


def lookup_index(name: str) -> str:
    """Index names are lower-case, without the characters Elasticsearch forbids."""
    return "siemc-lookup-" + re.sub(r"[^a-z0-9_-]", "-", name.lower())


def lookup_key(column: str) -> str:
    return "siemc_lc_" + re.sub(r"[^A-Za-z0-9_]", "_", column)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass
class Pipeline:
    """The commands of one stream and the event fields it makes available."""

    commands: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)

    def note(self, name: str) -> None:
        if name not in self.fields:
            self.fields.append(name)
