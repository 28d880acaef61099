"""The query tree both renderers share: what siemc's filter means on an Elasticsearch index,
before it is spelled in KQL or Lucene."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TextOp = Literal["eq", "contains", "startswith", "endswith"]
RangeOp = Literal["gt", "gte", "lt", "lte"]


@dataclass(frozen=True)
class Text:
    """A string test on a keyword field: ``cased`` exact, else case-insensitive (``lower()``)."""

    field: str
    op: TextOp
    value: str
    cased: bool


@dataclass(frozen=True)
class Term:
    """An exact term on a field that is not text (a number, an IP address or a CIDR network)."""

    field: str
    value: str
    quoted: bool  # an address or network: KQL and Lucene need quotes around ``:`` and ``/``


@dataclass(frozen=True)
class Range:
    field: str
    op: RangeOp
    value: str  # a number, or date math for @timestamp


@dataclass(frozen=True)
class Exists:
    field: str


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Text | Term | Range | Exists | And | Or | Not


def needs_lucene(n: Node) -> bool:
    """Whether KQL cannot say the tree: a case-insensitive test on a value with cased letters
    (KQL's term and wildcard queries are case-sensitive), or a substring with whitespace (a KQL
    wildcard on a field Kibana has no mapping for becomes a ``query_string``, which splits the
    value at whitespace: kbn-es-query ``functions/is.ts``)."""
    if isinstance(n, And | Or):
        return any(needs_lucene(x) for x in n.items)
    if isinstance(n, Not):
        return needs_lucene(n.item)
    if not isinstance(n, Text):
        return False
    if n.op != "eq" and any(c.isspace() for c in n.value):
        return True
    return not n.cased and has_case(n.value)


def has_case(s: str) -> bool:
    return any(len(variants(c)) > 1 for c in s)


def variants(c: str) -> list[str]:
    """The single characters ``lower()`` maps to the same letter as ``c`` (``c`` first)."""
    out = [c]
    for x in (c.lower(), c.upper(), c.title(), c.swapcase()):
        if len(x) == 1 and x not in out and x.lower() == c.lower():
            out.append(x)
    return out
