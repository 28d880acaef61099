"""Elastic Stack versions the ES|QL backend targets, and the idioms each one has.

Versions come from the ``applies_to`` blocks of Elastic's ES|QL reference pages
(https://www.elastic.co/docs/reference/query-languages/esql/commands/inlinestats-by:
``stack: preview 9.2.0, ga 9.3.0``; .../commands/lookup-join: ``ga 9.1``, ``ON a, b`` ``ga 9.2``;
.../functions-operators/mv-functions#esql-mv_contains: ``preview 9.2.0``), summarised in
docs/research/target-idioms.md section 1.8, and from Elastic's own rule validator
(detection-rules-esql-py, the oracle of the tests): it parses 9.2 with the 8.19 grammar and
accepts INLINE STATS and multi-field LOOKUP JOIN from 9.3 (detection-rules sets
``min_stack_version = "9.3.0"`` on its INLINE STATS rules), so this backend uses both from 9.3,
never a tech preview. 9.3 is the default: the first stack where every idiom the backend uses is
generally available except MV_CONTAINS (tech preview since 9.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STACKS = ("8.19", "9.0", "9.1", "9.2", "9.3")
DEFAULT_STACK = "9.3"


@dataclass(frozen=True)
class Stack:
    name: str

    @property
    def version(self) -> tuple[int, int]:
        major, minor = self.name.split(".")
        return int(major), int(minor)

    @property
    def full(self) -> str:
        """The version string the ES|QL grammar registry and validator take."""
        return self.name + ".0"

    def at_least(self, major: int, minor: int) -> bool:
        return self.version >= (major, minor)

    @property
    def inline_stats(self) -> bool:
        return self.at_least(9, 3)

    @property
    def multi_field_lookup_join(self) -> bool:
        return self.at_least(9, 3)

    @property
    def mv_contains(self) -> bool:
        return self.at_least(9, 2)

    def previews(self, query: str) -> list[str]:
        """The tech-preview features ``query`` uses on this stack (named in its header)."""
        out = []
        if self.name == "9.0" and "LOOKUP JOIN " in query:
            out.append("LOOKUP JOIN")
        if "MV_CONTAINS(" in query:
            out.append("MV_CONTAINS")
        if "MV_EXPAND " in query:  # tech preview since its introduction (commands/mv_expand)
            out.append("MV_EXPAND")
        return out


# What a query uses that an older stack lacks, and the first stack where it is generally
# available (the pages cited above); everything else the backend writes runs on 8.19, which
# the engine checks against the header (compiler/engines/run_esql.py, verify_features).
_NEEDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\| INLINE STATS ", re.M), "9.3"),
    (re.compile(r"^\| LOOKUP JOIN \S+ ON [^\n,]+,", re.M), "9.3"),
    (re.compile(r"^\| LOOKUP JOIN ", re.M), "9.1"),
    (re.compile(r"\bMV_CONTAINS\("), "9.2"),
)


def oldest_stack(query: str, target: Stack) -> Stack:
    """The oldest known stack that runs ``query`` as written for ``target``: a query that uses
    none of the newer idioms runs on older stacks too, and its header says so."""
    needed = [v for pattern, v in _NEEDS if pattern.search(query)]
    oldest = max((Stack(v) for v in needed), key=lambda s: s.version, default=Stack(STACKS[0]))
    return oldest if oldest.version < target.version else target


def parse_stack(text: str | None) -> Stack | None:
    """The stack named by ``text`` (``9.3``, ``9.3.0``), or None when siemc does not know it."""
    if text is None:
        return Stack(DEFAULT_STACK)
    parts = text.strip().split(".")
    if len(parts) == 3 and parts[2].isdigit():
        parts = parts[:2]
    name = ".".join(parts)
    return Stack(name) if name in STACKS else None
