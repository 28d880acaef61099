"""Filters (IR predicates) as EQL conditions.

EQL cannot create fields or read tables: lookups, enrichments and derived fields are first
inlined into tests on stored fields (:mod:`backends.inline`), which are then written here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, ClassVar

from backends.base import Context
from backends.elastic_eql.text import (
    RegexNotPortable,
    has_wildcard,
    lucene_regex,
    number,
    quote,
)
from backends.elastic_eql.text import (
    field as field_name,
)
from backends.elastic_esql.expr import declared_type, profile_arrays, profile_types
from backends.inline import Env, Inliner, Limits, holds
from compiler import ir
from compiler.evaluator.values import to_number

Leaf = ir.Eq | ir.StrMatch | ir.Regex | ir.Compare | ir.Exists | ir.Cidr


def join(op: str, parts: Sequence[str], top: bool = False) -> str:
    """Join conditions; a group of several is parenthesised unless it is the whole condition."""
    neutral, absorbing = ("true", "false") if op == "and" else ("false", "true")
    kept = [p for p in dict.fromkeys(parts) if p != neutral]
    if absorbing in kept:
        return absorbing
    if not kept:
        return neutral
    if len(kept) == 1:
        return kept[0]
    text = f" {op} ".join(kept)
    return text if top else f"({text})"


LIMITS = Limits(
    "EQL",
    100,
    "compile to esql (EVAL), kql (extend) or splunk (eval), which compute fields",
    "compile to splunk (lookup), kql (watchlist) or esql (LOOKUP JOIN)",
)


def eql_inliner(ctx: Context, env: Env) -> Inliner:
    """Lookups and derived fields inlined as EQL needs them (the ECS registered-domain fields
    filled at ingest read on the ecs profile)."""
    name = ctx.profile.name
    return Inliner(ctx, env, LIMITS, ingest=name == "ecs", arrays=profile_arrays(name))


class PredicateRenderer:
    CMP: ClassVar[dict[str, str]] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    # (case-insensitive, case-sensitive) forms of the string operators.
    WILDCARD_OP: ClassVar[tuple[str, str]] = (":", "like")
    STR_FUNC: ClassVar[dict[str, str]] = {
        "contains": "stringContains",
        "startswith": "startsWith",
        "endswith": "endsWith",
    }
    STR_PATTERN: ClassVar[dict[str, str]] = {
        "contains": "*{}*",
        "startswith": "{}*",
        "endswith": "*{}",
    }

    def __init__(self, ctx: Context, env: Env):
        self.ctx = ctx
        self.env = env

    def operands(self, p: ir.Predicate, negate: bool, op: str) -> list[str]:
        """The operands of an and/or, with lookups and derived fields inlined and nested
        groups of the same operator flattened."""
        return self._operands(eql_inliner(self.ctx, self.env).pred(p), negate, op)

    # ------------------------------------------------------------------ boolean structure
    def pred(self, p: ir.Predicate, negate: bool, top: bool = False) -> str:
        if isinstance(p, ir.And | ir.Or):
            op = "and" if isinstance(p, ir.And) != negate else "or"
            return join(op, self._operands(p, negate, op), top)
        if isinstance(p, ir.Not):
            return self.pred(p.item, not negate, top)
        assert not isinstance(p, ir.InLookup)  # inlined
        return self.field_leaf(p, field_name(self.ctx.field(p.field, p.span)), negate)

    def _operands(self, p: ir.Predicate, negate: bool, op: str) -> list[str]:
        while isinstance(p, ir.Not):
            p, negate = p.item, not negate
        if (
            isinstance(p, ir.And | ir.Or)
            and ("and" if isinstance(p, ir.And) != negate else "or") == op
        ):
            return [x for i in p.items for x in self._operands(i, negate, op)]
        return [self.pred(p, negate)]

    # ------------------------------------------------------------------ stored fields
    def field_leaf(self, p: Leaf, f: str, negate: bool) -> str:
        if isinstance(p, ir.Exists):
            return f"{f} != null" if p.present != negate else f"{f} == null"
        on_missing = holds(p, None)
        body = self.present(p, f)
        if not negate:
            return join("or", [f"{f} == null", body]) if on_missing else body
        if body in ("true", "false"):
            inverse = "false" if body == "true" else "true"
            return (
                join("and", [f"{f} != null", inverse])
                if on_missing
                else (join("or", [f"{f} == null", inverse]))
            )
        if on_missing:
            return join("and", [f"{f} != null", f"not {body}"])
        return join("or", [f"{f} == null", f"not {body}"])

    def present(self, p: Leaf, f: str) -> str:
        """The test on an event that has the field (the caller handles missing fields)."""
        if isinstance(p, ir.Eq):
            return self.eq(p, f)
        if isinstance(p, ir.StrMatch):
            return self.strmatch(p, f)
        if isinstance(p, ir.Regex):
            return self.regex(p, f)
        if isinstance(p, ir.Compare):
            if self.field_type(f) not in NUMERIC_TYPES | {"date"}:
                self.ctx.approximate(
                    "numeric comparison on a keyword field",
                    f"'{f}' is a keyword in the ECS mapping: Elasticsearch runs "
                    f"`{f} {self.CMP[p.op]} n` as a range query on its text, which orders "
                    "values as strings ('22' > '1000'), where siemc compares numbers",
                    p.span,
                )
            return f"{f} {self.CMP[p.op]} {number(p.value)}"
        if isinstance(p, ir.Cidr):
            nets = [quote(str(ipaddress.ip_network(n.strip(), strict=False))) for n in p.networks]
            if p.quantifier == "all":
                return join("and", [f"cidrMatch({f}, {n})" for n in nets])
            return f"cidrMatch({f}, {', '.join(nets)})"
        raise AssertionError(type(p))

    def eq(self, p: ir.Eq, f: str) -> str:
        values = [v for v in p.values if v is not None]
        if p.quantifier == "all":
            if len(values) != len(p.values):
                return "false"  # null never equals a present value
            return join("and", [self.eq_values(f, [v], p.cased, p.span) for v in values])
        return self.eq_values(f, values, p.cased, p.span) if values else "false"

    def keyword_texts(self, f: str, values: list[Any], span: ir.Span) -> list[Any]:
        """The values as the text a keyword field holds. Elasticsearch refuses `==` between a
        keyword and a number (the types must match), and a keyword indexes a JSON number or
        boolean as its text; but siemc equates every spelling of a number ("4625.0", "04625",
        " 4625"), which a text test cannot: a subset. A boolean never equals a string in siemc,
        while its text does here: declared both ways."""
        out: list[Any] = []
        spelled: list[str] = []
        for v in values:
            if isinstance(v, bool):
                self.ctx.approximate(
                    "boolean equality on a keyword field",
                    f"'{f}' is a keyword in the ECS mapping: compared with the text "
                    f"'{str(v).lower()}', which a JSON boolean is indexed as; siemc never "
                    "equates a boolean and a string",
                    span,
                )
                out.append(str(v).lower())
                continue
            n = to_number(v)
            if n is None:
                out.append(v)
                continue
            texts = [v] if isinstance(v, str) else []
            texts += [t for t in (number(n),) if t not in texts]
            out += texts
            spelled += texts
        if spelled:
            self.ctx.approximate(
                "numeric equality on a keyword field",
                f"'{f}' is a keyword in the ECS mapping: compared with the text "
                f"{', '.join(repr(t) for t in spelled)} (Elasticsearch does not compare a keyword "
                "with a number); siemc also equates other spellings of the same number "
                f"('{spelled[-1]}.0', '0{spelled[-1]}', ' {spelled[-1]}'), which this test "
                "misses",
                span,
                direction="subset",
            )
        return out

    def field_type(self, f: str) -> str:
        """The field's mapping type in the profile (ECS maps the fields it leaves out as
        keyword)."""
        return profile_types(self.ctx.profile.name).get(f, "keyword")

    def eq_values(self, f: str, values: list[Any], cased: bool, span: ir.Span) -> str:
        if self.field_type(f) in NUMERIC_TYPES:
            # A numeric string is its number (docs/semantics.md), and a numeric field indexes
            # numbers only: test the number, which `==` on the field matches.
            values = [_numeric(v) for v in values]
        elif declared_type(self.ctx.profile.name, f) in KEYWORD_TYPES:
            # a field ECS maps as keyword although its values are numbers (event IDs, user
            # ids): an undeclared field may be a number (dynamic mapping), compared as one
            values = self.keyword_texts(f, values, span)
        strings = [v for v in values if isinstance(v, str)]
        others = [number(v) for v in values if not isinstance(v, str)]
        parts: list[str] = []
        if strings:
            # Without letters there is no case to ignore: `==`/`in` are exact and, unlike `:`,
            # also apply to ip fields (IPv4 addresses) and numeric-looking keywords.
            exact = cased or all(s.lower() == s.upper() for s in strings)
            if len(strings) == 1 and not (has_wildcard(strings[0]) and not exact):
                parts.append(f"{f} {'==' if exact else ':'} {quote(strings[0])}")
            else:
                op = "in" if exact else "in~"
                parts.append(f"{f} {op} ({', '.join(quote(s) for s in strings)})")
        if len(others) == 1:
            parts.append(f"{f} == {others[0]}")
        elif others:
            parts.append(f"{f} in ({', '.join(others)})")
        return join("or", parts)

    def strmatch(self, p: ir.StrMatch, f: str) -> str:
        if p.quantifier == "all":
            return join("and", [self.str_values(p, f, [v]) for v in p.values])
        return self.str_values(p, f, list(p.values))

    def str_values(self, p: ir.StrMatch, f: str, values: list[str]) -> str:
        plain = [v for v in values if not has_wildcard(v)]
        wild = [v for v in values if has_wildcard(v)]
        parts: list[str] = []
        if plain:
            op = self.WILDCARD_OP[p.cased]
            pats = [quote(self.STR_PATTERN[p.op].format(v)) for v in plain]
            parts.append(
                f"{f} {op} {pats[0]}" if len(pats) == 1 else f"{f} {op} ({', '.join(pats)})"
            )
        func = self.STR_FUNC[p.op] + ("" if p.cased else "~")
        # EQL wildcards cannot be escaped: literal * and ? go through the string functions.
        parts += [f"{func}({f}, {quote(v)})" for v in wild]
        return join("or", parts)

    def regex(self, p: ir.Regex, f: str) -> str:
        pats: list[str] = []
        for pattern in p.patterns:
            try:
                lucene = lucene_regex(pattern, p.cased)
            except RegexNotPortable as exc:
                raise self.ctx.unsupported(
                    "regular expression",
                    f"pattern {pattern!r} has no Lucene equivalent ({exc})",
                    p.span,
                    "rewrite the pattern in the common subset, or compile to kql or splunk",
                ) from None
            for note in lucene.approximations:
                self.ctx.approximate("regular expression", f"{pattern!r}: {note}", p.span)
            pats.append(quote(lucene.pattern))
        op = "regex" if p.cased else "regex~"
        if p.quantifier == "all" or len(pats) == 1:
            return join("and", [f"{f} {op} {q}" for q in pats])
        return f"{f} {op} ({', '.join(pats)})"


NUMERIC_TYPES = frozenset({"long", "integer", "short", "byte", "double", "float", "scaled_float"})
KEYWORD_TYPES = frozenset({"keyword", "wildcard", "constant_keyword"})


def _numeric(v: Any) -> Any:
    n = to_number(v) if isinstance(v, str) else None
    return v if n is None else n
