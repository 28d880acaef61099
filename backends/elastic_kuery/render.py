"""Query trees as KQL (Kibana's ``kuery`` grammar, kbn-es-query ``grammar.peggy``) or as Lucene
query syntax (Elasticsearch ``query_string``).

KQL: a quoted value escapes only ``\\`` and ``"``; an unquoted wildcard value escapes KQL's
special characters (``\\ ( ) : < > " * { }``) with a backslash, and whitespace as ``\\uXXXX``
so that no ``or``/``and``/``not`` keyword can form inside it. Lucene: quoted values escape
``\\`` and ``"``; regular expressions escape every character that is not a letter or digit
(Lucene's RegExp reads ``\\x`` as ``x``; letters stay unescaped because ``\\d``, ``\\s`` and
``\\w`` are classes), and each cased letter becomes the class of its case variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backends.elastic_kuery.nodes import (
    And,
    Exists,
    Node,
    Not,
    Or,
    Range,
    Term,
    Text,
    needs_lucene,
    variants,
)

Language = Literal["kuery", "lucene"]
_KQL_SPECIAL = set('\\():<>"*{}')
_KQL_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class Query:
    language: Language
    text: str


def render(n: Node) -> Query:
    """KQL when it says the tree exactly, else Lucene."""
    if needs_lucene(n):
        return Query("lucene", Lucene().node(n, top=True))
    return Query("kuery", Kuery().node(n, top=True))


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------- KQL
class Kuery:
    def node(self, n: Node, top: bool = False) -> str:
        if isinstance(n, And | Or):
            if not n.items:
                assert isinstance(n, And)
                return "*" if top else "*: *"
            same = self._value_list(n)
            if same is not None:
                return same
            word = " and " if isinstance(n, And) else " or "
            text = word.join(self.node(x) for x in n.items)
            return text if top or len(n.items) == 1 else f"({text})"
        if isinstance(n, Not):
            return (
                f"not {self.node(n.item)}"
                if self._atom(n.item)
                else f"not ({self.node(n.item, True)})"
            )
        if isinstance(n, Exists):
            return f"{n.field}: *"
        if isinstance(n, Range):
            v = n.value if _plain_number(n.value) else _quote(n.value)
            return f"{n.field} {_KQL_RANGE[n.op]} {v}"
        return f"{n.field}: {self.value(n)}"

    @staticmethod
    def _atom(n: Node) -> bool:
        return not isinstance(n, And | Or) or (len(n.items) == 1)

    def value(self, n: Term | Text) -> str:
        if isinstance(n, Term):
            return _quote(n.value) if n.quoted else n.value
        if n.op == "eq":
            return _quote(n.value)
        body = "".join(self._wild_char(c) for c in n.value)
        return {"contains": f"*{body}*", "startswith": f"{body}*", "endswith": f"*{body}"}[n.op]

    @staticmethod
    def _wild_char(c: str) -> str:
        if c in _KQL_SPECIAL:
            return "\\" + c
        if not c.isprintable() and ord(c) <= 0xFFFF:
            return f"\\u{ord(c):04x}"  # control characters as escapes, not raw
        return c

    def _value_list(self, n: And | Or) -> str | None:
        """``f: ("a" or "b")`` for a list of values of one field."""
        if len(n.items) < 2 or not all(isinstance(x, Term | Text) for x in n.items):
            return None
        fields = {x.field for x in n.items if isinstance(x, Term | Text)}
        if len(fields) != 1:
            return None
        word = " and " if isinstance(n, And) else " or "
        vals = word.join(self.value(x) for x in n.items if isinstance(x, Term | Text))
        return f"{fields.pop()}: ({vals})"


def _plain_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return not v.startswith("-")


# ----------------------------------------------------------------------------- Lucene
class Lucene:
    """Lucene's classic parser is not boolean algebra: in ``a OR NOT b`` the ``NOT`` makes
    ``b`` a prohibited clause of the group, which means "a and not b". A negation is therefore
    its own parenthesised group except directly under an AND; Elasticsearch's query_string adds
    ``match_all`` to a group with only prohibited clauses (``fixNegativeQueryIfNeeded``)."""

    def node(self, n: Node, top: bool = False) -> str:
        if isinstance(n, And | Or):
            if not n.items:
                return "*:*"
            word = " AND " if isinstance(n, And) else " OR "
            text = word.join(self.item(x, isinstance(n, And)) for x in n.items)
            return text if top or len(n.items) == 1 else f"({text})"
        if isinstance(n, Not):
            inner = self.node(n.item)  # a compound or a negation comes parenthesised
            return f"NOT {inner}" if top else f"(NOT {inner})"
        if isinstance(n, Exists):
            return f"_exists_:{n.field}"
        if isinstance(n, Range):
            v = n.value if _plain_number(n.value) else _quote(n.value)
            lo, hi = {
                "gt": (f"{{{v}", "*]"),
                "gte": (f"[{v}", "*]"),
                "lt": ("[*", f"{v}}}"),
                "lte": ("[*", f"{v}]"),
            }[n.op]
            return f"{n.field}:{lo} TO {hi}"
        if isinstance(n, Term):
            return f"{n.field}:{_quote(n.value) if n.quoted else n.value}"
        if n.op == "eq" and (n.cased or not any(len(variants(c)) > 1 for c in n.value)):
            return f"{n.field}:{_quote(n.value)}"
        body = "".join(self._re_char(c, n.cased) for c in n.value)
        pattern = {
            "eq": body,
            "contains": f".*{body}.*",
            "startswith": f"{body}.*",
            "endswith": f".*{body}",
        }[n.op]
        return f"{n.field}:/{pattern}/"

    def item(self, n: Node, under_and: bool) -> str:
        """An operand of AND/OR: ``AND NOT x`` is a prohibited clause, as meant."""
        if under_and and isinstance(n, Not):
            return self.node(n, top=True)
        return self.node(n)

    @staticmethod
    def _re_char(c: str, cased: bool) -> str:
        vs = [c] if cased else variants(c)
        if len(vs) > 1:
            return "[" + "".join(vs) + "]"
        return c if c.isalnum() or c in "_-" else "\\" + c
