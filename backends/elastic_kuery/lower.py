"""siemc filters (docs/semantics.md, *Filters*) as query trees, or :class:`Declined` with the
reason where an Elasticsearch term-level query cannot say them exactly."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence

from backends.elastic_esql.expr import profile_types
from backends.elastic_kuery.nodes import And, Exists, Node, Not, Or, Range, Term, Text
from compiler import ir
from compiler.evaluator.values import to_number

KEYWORDS = frozenset({"keyword", "wildcard", "constant_keyword"})
NUMBERS = frozenset({"long", "integer", "short", "byte", "double", "float", "scaled_float"})


class Declined(Exception):
    """A predicate no KQL or Lucene query says exactly; the message says why."""


def field_types() -> dict[str, str]:
    return profile_types("ecs")


def number_text(n: float | int) -> str:
    if isinstance(n, float) and n.is_integer() and abs(n) < 2**53:
        return str(int(n))
    return repr(n)


class _Lowering:
    def __init__(self, types: dict[str, str]) -> None:
        self.types = types

    def kind(self, field: str) -> str:
        return self.types.get(field, "keyword")

    def lower(self, p: ir.Predicate) -> Node:
        if isinstance(p, ir.And):
            return And(tuple(self.lower(x) for x in p.items))
        if isinstance(p, ir.Or):
            if not p.items:
                raise Declined("an empty OR (a filter that holds for nothing)")
            return Or(tuple(self.lower(x) for x in p.items))
        if isinstance(p, ir.Not):
            return Not(self.lower(p.item))
        if isinstance(p, ir.Exists):
            return Exists(p.field) if p.present else Not(Exists(p.field))
        if isinstance(p, ir.Eq):
            return self.eq(p)
        if isinstance(p, ir.StrMatch):
            return self.strmatch(p)
        if isinstance(p, ir.Compare):
            if self.kind(p.field) not in NUMBERS:
                raise Declined(
                    f"{p.field} {p.op} {number_text(p.value)}: the field is "
                    f"{self.kind(p.field)}, where a range compares text, not numbers"
                )
            if not math.isfinite(p.value):
                raise Declined(f"{p.field}: a bound that is not a finite number")
            return Range(p.field, p.op, number_text(p.value))
        if isinstance(p, ir.Cidr):
            if self.kind(p.field) != "ip":
                raise Declined(f"{p.field}|cidr: the field is {self.kind(p.field)}, not ip")
            nets = [
                Term(p.field, str(ipaddress.ip_network(n, strict=False)), True) for n in p.networks
            ]
            return self.quantify(nets, p.quantifier)
        if isinstance(p, ir.Regex):
            raise Declined(
                f"{p.field}|re: siemc's regular expressions are Python re.search, which "
                "Lucene's anchored RegExp syntax does not say in general"
            )
        if isinstance(p, ir.InLookup):
            raise Declined(f"lookup {p.lookup}: a rule query cannot read a lookup index")
        raise Declined(f"unsupported predicate {type(p).__name__}")

    @staticmethod
    def quantify(items: Sequence[Node], quantifier: str) -> Node:
        if len(items) == 1:
            return items[0]
        return And(tuple(items)) if quantifier == "all" else Or(tuple(items))

    def eq(self, p: ir.Eq) -> Node:
        kind = self.kind(p.field)
        items: list[Node] = []
        for v in p.values:
            if v is None:
                items.append(Not(Exists(p.field)))  # `field: null`: missing or null
            elif isinstance(v, bool):
                if kind != "boolean":
                    raise Declined(
                        f"{p.field}: {str(v).lower()} on a {kind} field, where siemc's boolean "
                        "equals no text"
                    )
                items.append(Term(p.field, str(v).lower(), False))
            elif to_number(v) is not None:
                n = to_number(v)
                assert n is not None
                if kind not in NUMBERS:
                    raise Declined(
                        f"{p.field}: {v}: siemc compares numeric values as numbers ('443' = "
                        f"'443.0'), a {kind} field as text"
                    )
                items.append(Term(p.field, number_text(n), False))
            elif kind in KEYWORDS:
                items.append(Text(p.field, "eq", str(v), p.cased))
            elif kind == "ip":
                try:
                    addr = ipaddress.ip_address(str(v).strip())
                except ValueError:
                    raise Declined(f"{p.field}: {v} is not an IP address") from None
                items.append(Term(p.field, str(addr), True))
            else:
                raise Declined(f"{p.field}: text equality on a {kind} field")
        if p.quantifier == "all" and len(items) > 1 and any(isinstance(x, Not) for x in items):
            raise Declined(f"{p.field}|all: null and a value at once")
        return self.quantify(items, p.quantifier)

    def strmatch(self, p: ir.StrMatch) -> Node:
        kind = self.kind(p.field)
        if kind not in KEYWORDS:
            raise Declined(
                f"{p.field}|{p.op}: siemc reads the text of a {kind} value, which a {kind} "
                "field does not index"
            )
        items: list[Node] = []
        for v in p.values:
            if v == "":  # every text contains, starts and ends with the empty string
                items.append(Exists(p.field))
            else:
                items.append(Text(p.field, p.op, v, p.cased))
        return self.quantify(items, p.quantifier)


def flatten(n: Node) -> Node:
    """Nested ANDs (ORs) as one, without the empty AND siemc writes for "no filter"."""
    if isinstance(n, Not):
        return Not(flatten(n.item))
    if not isinstance(n, And | Or):
        return n
    items: list[Node] = []
    for x in (flatten(i) for i in n.items):
        if type(x) is type(n):
            assert isinstance(x, And | Or)
            items += x.items
        elif isinstance(n, And) and x == And(()):
            continue
        else:
            items.append(x)
    if len(items) == 1:
        return items[0]
    return And(tuple(items)) if isinstance(n, And) else Or(tuple(items))


def lower_predicate(p: ir.Predicate, types: dict[str, str] | None = None) -> Node:
    """The query tree of a filter (raises :class:`Declined`)."""
    return flatten(_Lowering(field_types() if types is None else types).lower(p))
