"""Filters (IR predicates) as EQL conditions, with derived and enriched fields inlined.

EQL cannot create fields, so a test on a derived field is rewritten as a test on the fields the
expression reads, and a test on an enriched field as a test of the lookup's match fields.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from backends.elastic_esql.expr import profile_arrays, profile_types
from backends.registered_domain import ECS_REGISTERED_DOMAIN, ingest_source
from compiler import ir
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.values import call, to_number

LOOKUP_ROW_LIMIT = 100
_DERIVE_ALT = "compile to esql (EVAL), kql (extend) or splunk (eval), which compute fields"
_LOOKUP_ALT = "compile to splunk (lookup), kql (watchlist) or esql (LOOKUP JOIN)"
_ENRICH_FUNC = "@enrich"  # marks a reference to an enriched field inside a derived expression

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


@dataclass(frozen=True)
class Env:
    """What each field name means at a point of a stream's pipeline: a derived expression over
    stored fields (``derive``), or a column of a lookup row (``enrich``)."""

    exprs: dict[str, ir.Expr] = field(default_factory=dict)
    # (enrich, column, environment the match fields are read in), indexed by the marker
    enrichments: tuple[tuple[ir.Enrich, str, Env], ...] = ()

    def resolve(self, name: str) -> ir.Expr:
        return self.exprs.get(name, ir.FieldRef(name))

    def raw_field(self, name: str) -> str | None:
        e = self.resolve(name)
        return e.name if isinstance(e, ir.FieldRef) and e.step is None else None

    def enriched(self, enrich: tuple[ir.Enrich, ...]) -> Env:
        env = self
        for e in enrich:
            exprs = dict(env.exprs)
            entries = list(env.enrichments)
            for column, target in e.add:
                exprs[target] = ir.Call(_ENRICH_FUNC, (ir.Literal_(len(entries)),), e.span)
                # The match fields mean what they meant before this enrichment.
                entries.append((e, column, env))
            env = Env(exprs, tuple(entries))
        return env

    def derived(self, derive: tuple[tuple[str, ir.Expr], ...]) -> Env:
        exprs = dict(self.exprs)
        for name, expr in derive:
            exprs[name] = _substitute(expr, exprs)
        return Env(exprs, self.enrichments)


def _substitute(e: ir.Expr, exprs: dict[str, ir.Expr]) -> ir.Expr:
    if isinstance(e, ir.FieldRef) and e.step is None:
        return exprs.get(e.name, e)
    if isinstance(e, ir.Call):
        return ir.Call(e.func, tuple(_substitute(a, exprs) for a in e.args), e.span)
    if isinstance(e, ir.BinOp):
        return ir.BinOp(e.op, _substitute(e.left, exprs), _substitute(e.right, exprs), e.span)
    if isinstance(e, ir.UnaryOp):
        return ir.UnaryOp(e.op, _substitute(e.operand, exprs), e.span)
    return e


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
        self.lookups = {lk.name: lk for lk in ctx.analytic.lookups}
        # Tests built here whose values are whole wildcard patterns already.
        self.verbatim: list[ir.StrMatch] = []

    # ------------------------------------------------------------------ boolean structure
    def pred(self, p: ir.Predicate, negate: bool, top: bool = False) -> str:
        if isinstance(p, ir.And | ir.Or):
            op = "and" if isinstance(p, ir.And) != negate else "or"
            return join(op, self.operands(p, negate, op), top)
        if isinstance(p, ir.Not):
            return self.pred(p.item, not negate, top)
        if isinstance(p, ir.InLookup):
            return self.pred(self.lookup_predicate(p), negate, top)
        return self.leaf(p, self.env.resolve(p.field), negate)

    def operands(self, p: ir.Predicate, negate: bool, op: str) -> list[str]:
        """The operands of an and/or, with nested groups of the same operator flattened."""
        while isinstance(p, ir.Not):
            p, negate = p.item, not negate
        if (
            isinstance(p, ir.And | ir.Or)
            and ("and" if isinstance(p, ir.And) != negate else "or") == op
        ):
            return [x for i in p.items for x in self.operands(i, negate, op)]
        return [self.pred(p, negate)]

    # ------------------------------------------------------------------ lookups
    def lookup_predicate(self, p: ir.InLookup) -> ir.Predicate:
        lk = self.lookups[p.lookup]
        idx = [lk.columns.index(c) for c, _ in p.match]
        rows = list(dict.fromkeys(tuple(r[i].lower() for i in idx) for r in lk.rows))
        if len(rows) > LOOKUP_ROW_LIMIT:
            raise self.ctx.unsupported(
                f"lookup '{p.lookup}' ({len(rows)} rows)",
                f"EQL has no lookup tables and inlines at most {LOOKUP_ROW_LIMIT} rows",
                p.span,
                _LOOKUP_ALT,
            )
        return rows_predicate([f for _, f in p.match], rows, p.span)

    # ------------------------------------------------------------------ derived subjects
    def leaf(self, p: Leaf, subject: ir.Expr, negate: bool) -> str:
        if isinstance(subject, ir.FieldRef) and subject.step is None:
            return self.field_leaf(p, field_name(self.ctx.field(subject.name, p.span)), negate)
        if isinstance(subject, ir.Literal_):
            return "true" if _holds(p, subject.value) != negate else "false"
        if isinstance(subject, ir.Call):
            if subject.func in ("lower", "upper") and not getattr(p, "cased", False):
                # Every case-insensitive test gives the same answer on x and lower(x).
                return self.leaf(p, subject.args[0], negate)
            if subject.func == "coalesce":
                return self.coalesce_leaf(p, subject.args, negate)
            if subject.func == "registered_domain" and isinstance(p, ir.Eq) and not p.cased:
                return self.registered_domain_leaf(p, subject.args[0], negate)
            if subject.func == _ENRICH_FUNC:
                arg = subject.args[0]
                assert isinstance(arg, ir.Literal_) and isinstance(arg.value, int)
                return self.enriched_leaf(p, arg.value, negate)
        what = (
            f"{subject.func}() under a case-sensitive test"
            if isinstance(subject, ir.Call) and subject.func in ("lower", "upper")
            else f"function {subject.func}()"
            if isinstance(subject, ir.Call)
            else "an arithmetic or comparison expression"
        )
        raise self.ctx.unsupported(
            f"a test on derived field '{p.field}'",
            f"EQL cannot create fields, and {what} cannot be inlined into the test",
            p.span,
            _DERIVE_ALT,
        )

    def coalesce_leaf(self, p: Leaf, args: tuple[ir.Expr, ...], negate: bool) -> str:
        alts: list[str] = []
        nulls: list[str] = []
        for a in args:
            present = self.leaf(ir.Exists(p.field, True, p.span), a, False)
            alts.append(join("and", [*nulls, present, self.leaf(p, a, negate)]))
            nulls.append(self.leaf(ir.Exists(p.field, False, p.span), a, False))
        if _holds(p, None) != negate:
            alts.append(join("and", nulls))
        return join("or", alts)

    def registered_domain_leaf(self, p: ir.Eq, arg: ir.Expr, negate: bool) -> str:
        """registered_domain(x) == "example.com": the ingest-filled ECS field when x is an ECS
        name field, else inlined as `x : ("example.com", "*.example.com")`."""
        src = ingest_source(arg)
        if src is not None and self.ctx.profile.name == "ecs":
            reg = ECS_REGISTERED_DOMAIN[src]
            ingest = ir.Eq(reg, p.values, p.cased, p.quantifier, p.span)
            return self.leaf(ingest, ir.FieldRef(reg), negate)
        if p.quantifier == "all" and len(p.values) > 1:
            items = tuple(ir.Eq(p.field, (v,), span=p.span) for v in p.values)
            return self.pred(ir.And(items, p.span), negate)
        patterns: list[str] = []
        for v in p.values:
            if (
                not isinstance(v, str)
                or not v.strip(". ")
                or ":" in v
                or v[-1].isdigit()
                or has_wildcard(v)
            ):
                raise self.ctx.unsupported(
                    f"a test on derived field '{p.field}'",
                    f"registered_domain() can be inlined only for domain names, not {v!r}",
                    p.span,
                    _DERIVE_ALT,
                )
            # A value that is no registered domain (a public suffix, a subdomain, a trailing
            # dot) never equals one: it adds no pattern.
            if call("registered_domain", [v]) == v.lower():
                patterns.extend((v, "*." + v))
        self.ctx.approximate(
            "registered_domain() test",
            "inlined as a wildcard test of the name and its subdomains (EQL has no Public "
            "Suffix List): a subdomain under a public suffix registered below the value "
            "(a.github.map.fastly.net for fastly.net) matches although its registered domain "
            "differs (superset), and names with surrounding blanks or trailing dots "
            "('example.com.') do not match (subset). Direction: mixed",
            p.span,
        )
        if not patterns:
            return "true" if negate else "false"
        # The derived value is missing exactly when x is, or is blanks/dots only, which no
        # pattern matches: x's own null guard gives the right answer either way. The values
        # hold no wildcard (domain names), so `*` is the only one.
        test = ir.StrMatch(p.field, "endswith", tuple(patterns), span=p.span)
        self.verbatim.append(test)
        return self.leaf(test, arg, negate)

    def enriched_leaf(self, p: Leaf, index: int, negate: bool) -> str:
        enrich, column, match_env = self.env.enrichments[index]
        lk = self.lookups[enrich.lookup]
        match_idx = [lk.columns.index(c) for c, _ in enrich.match]
        col = lk.columns.index(column)
        first: dict[tuple[str, ...], str] = {}
        for row in lk.rows:  # the first row of each match tuple wins
            first.setdefault(tuple(row[i].lower() for i in match_idx), row[col])
        if len(first) > LOOKUP_ROW_LIMIT:
            raise self.ctx.unsupported(
                f"enrichment from lookup '{enrich.lookup}' ({len(first)} rows)",
                f"EQL has no lookup tables and inlines at most {LOOKUP_ROW_LIMIT} rows",
                enrich.span,
                _LOOKUP_ALT,
            )
        fields = [f for _, f in enrich.match]
        arrays = profile_arrays(self.ctx.profile.name)
        for f in fields:
            raw = match_env.raw_field(f)
            if raw is not None and raw in arrays:
                self.ctx.approximate(
                    "lookup enrichment",
                    f"'{raw}' is multi-valued in ECS: the inlined test holds when some value "
                    "matches a row whose column passes it, where siemc enriches from the first "
                    "row in CSV order that some value matches",
                    enrich.span,
                )
        # Exactly one case holds: one row (key tuple) matches first, or none does. List the
        # rows on which the test's answer differs from its answer with no matching row.
        if_none = _holds(p, None) != negate
        rows = [k for k, v in first.items() if (_holds(p, v or None) != negate) != if_none]
        renderer = PredicateRenderer(self.ctx, match_env)
        return renderer.pred(rows_predicate(fields, rows, enrich.span), if_none)

    # ------------------------------------------------------------------ stored fields
    def field_leaf(self, p: Leaf, f: str, negate: bool) -> str:
        if isinstance(p, ir.Exists):
            return f"{f} != null" if p.present != negate else f"{f} == null"
        on_missing = _holds(p, None)
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
            return join("and", [self.eq_values(f, [v], p.cased) for v in values])
        return self.eq_values(f, values, p.cased) if values else "false"

    def field_type(self, f: str) -> str:
        """The field's mapping type in the profile (ECS maps the fields it leaves out as
        keyword)."""
        return profile_types(self.ctx.profile.name).get(f, "keyword")

    def eq_values(self, f: str, values: list[Any], cased: bool) -> str:
        if self.field_type(f) in NUMERIC_TYPES:
            # A numeric string is its number (docs/semantics.md), and a numeric field indexes
            # numbers only: test the number, which `==` on the field matches.
            values = [_numeric(v) for v in values]
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
        verbatim = any(p is t for t in self.verbatim)
        plain = [v for v in values if verbatim or not has_wildcard(v)]
        wild = [v for v in values if not verbatim and has_wildcard(v)]
        parts: list[str] = []
        if plain:
            op = self.WILDCARD_OP[p.cased]
            fmt = "{}" if verbatim else self.STR_PATTERN[p.op]
            pats = [quote(fmt.format(v)) for v in plain]
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


def rows_predicate(fields: list[str], rows: list[tuple[str, ...]], span: ir.Span) -> ir.Predicate:
    """Some row equals the fields (case-insensitively); rows sharing all but the last column
    become one `in~` list."""
    if not rows:
        return ir.Or(())
    groups: dict[tuple[str, ...], list[str]] = {}
    for row in rows:
        groups.setdefault(row[:-1], []).append(row[-1])
    alts: list[ir.Predicate] = []
    for head, lasts in groups.items():
        tests: list[ir.Predicate] = [
            ir.Eq(f, (v,), span=span) for f, v in zip(fields[:-1], head, strict=True)
        ]
        tests.append(ir.Eq(fields[-1], tuple(lasts), span=span))
        alts.append(ir.And(tuple(tests), span))
    return ir.Or(tuple(alts), span)


NUMERIC_TYPES = frozenset({"long", "integer", "short", "byte", "double", "float", "scaled_float"})


def _numeric(v: Any) -> Any:
    n = to_number(v) if isinstance(v, str) else None
    return v if n is None else n


def _holds(p: Leaf, value: Any) -> bool:
    """The evaluator's answer for a test on a constant (None: the field is missing)."""
    fields = {} if value is None else {p.field: value}
    return compile_predicate(p, {})(fields)
