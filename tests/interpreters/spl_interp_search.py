"""The search command's expression language
(https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Search):

* ``field=value`` compares the value **case-insensitively** (field names are case-sensitive),
  ``*`` is a wildcard even inside quotes, and a multivalue field matches when any value does;
* ``field=*`` matches events where the field has a value; ``field!=value`` needs the field;
* ``NOT x`` is true for every event ``x`` does not match, events without the field included;
* juxtaposition and ``AND`` are conjunction, ``OR`` disjunction; the order of evaluation is
  parentheses, NOT, OR, then AND (Search reference, "Boolean expressions"): ``a b OR c`` is
  ``a AND (b OR c)``;
* ``earliest=`` / ``latest=`` are time modifiers relative to the search's now
  (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/SearchTimeModifiers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.interpreters.spl_interp_values import (
    NotExecutable,
    SplRuntimeError,
    mv,
    num,
    relative,
    text,
    wildcard,
)
from tests.oracles.spl_grammar import Cursor, Tok, _string_value, lex


@dataclass(frozen=True)
class Term:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND / OR
    items: tuple[SNode, ...]


@dataclass(frozen=True)
class SNot:
    item: SNode


SNode = Term | BoolOp | SNot

TIME_MODIFIERS = ("earliest", "latest")


def parse(text_: str, where: str = "search") -> SNode | None:
    c = Cursor(lex(text_, "search"), where)
    if c.done():
        return None

    def and_expr() -> SNode:
        items = [or_expr()]
        while not c.done() and not c.at("RP"):
            if c.at("WORD", "AND"):
                c.next()
            items.append(or_expr())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def or_expr() -> SNode:
        items = [unary()]
        while c.at("WORD", "OR"):
            c.next()
            items.append(unary())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def unary() -> SNode:
        if c.at("WORD", "NOT"):
            c.next()
            return SNot(unary())
        t = c.next()
        if t.kind == "LP":
            e = and_expr()
            c.expect("RP")
            return e
        if t.kind in ("WORD", "NUM") and c.at("OP"):
            op = c.next().text
            v = c.next()
            return Term(t.text, op, _value(v))
        if t.kind == "WORD" and t.text == "*":
            # a lone wildcard keyword matches every event and result: `search *` keeps
            # everything, the default definition of ESCU's `<detection>_filter` macros
            return Term("*", "=", "*")
        raise NotExecutable(f"search term without a field ({t.text})")

    node = and_expr()
    c.end()
    return node


def _value(t: Tok) -> str:
    return _string_value(t.text) if t.kind == "STR" else t.text


def time_bounds(node: SNode | None, now: float) -> tuple[float | None, float | None]:
    """earliest/latest modifiers at the top level of the expression."""
    lo = hi = None
    items = node.items if isinstance(node, BoolOp) and node.op == "AND" else (node,)
    for it in items:
        if isinstance(it, Term) and it.field in TIME_MODIFIERS:
            t = relative(now, it.value)
            if it.field == "earliest":
                lo = t
            else:
                hi = t
    return lo, hi


def _term(t: Term, row: dict[str, Any]) -> bool:
    if t.field in TIME_MODIFIERS or t.field == "*":
        return True  # time modifiers: applied to the event set by time_bounds
    if t.field == "index":
        return wildcard(t.value).match(str(row.get("index", "main"))) is not None
    values = mv(row.get(t.field))
    if t.op == "=":
        rx = wildcard(t.value)
        return any(rx.match(text(v)) for v in values)
    if t.op == "!=":
        rx = wildcard(t.value)
        return bool(values) and not any(rx.match(text(v)) for v in values)
    if t.op in ("<", "<=", ">", ">="):
        want = num(t.value)
        if want is None:
            raise SplRuntimeError(f"non-numeric value in {t.field}{t.op}{t.value}")
        for v in values:
            n = num(v)
            if n is not None and {"<": n < want, "<=": n <= want, ">": n > want,
                                  ">=": n >= want}[t.op]:  # fmt: skip
                return True
        return False
    raise SplRuntimeError(f"'{t.op}' is not a search operator")


def matches(node: SNode | None, row: dict[str, Any]) -> bool:
    if node is None:
        return True
    if isinstance(node, Term):
        return _term(node, row)
    if isinstance(node, SNot):
        return not matches(node.item, row)
    if node.op == "AND":
        return all(matches(x, row) for x in node.items)
    return any(matches(x, row) for x in node.items)
