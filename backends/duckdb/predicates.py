"""Filters (``where``, logsource conditions) as DuckDB SQL boolean expressions.

Every predicate renders to a two-valued expression (never NULL), so ``NOT`` is the language's
plain negation: ``not: {x: 1}`` holds on a missing ``x``. Each test is existential over the
field's non-null elements (``siemc_elems``), which makes a scalar, a list and a missing field
follow docs/semantics.md *Multi-valued fields* without separate cases.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence

from backends import regex_re2
from backends.base import Context
from backends.duckdb.sql import col, num, strlit
from compiler import ir
from compiler.evaluator.values import to_number

Lookups = Callable[[str], str]  # lookup name -> the CTE holding its rows


def _eq_one(field: str, values: Sequence[ir.Scalar], cased: bool) -> list[str]:
    """Tests of ``field`` equal to some of ``values`` (non-null), split by kind of value."""
    strs: list[str] = []
    nums: list[float] = []
    bools: list[bool] = []
    for v in values:
        if isinstance(v, bool):
            bools.append(v)
        elif isinstance(v, str):
            n = to_number(v)
            if n is not None:
                nums.append(float(n))
            else:
                strs.append(v if cased else v.lower())
        elif isinstance(v, int | float):
            n = to_number(v)
            if n is not None:
                nums.append(float(n))
    c = col(field)
    parts: list[str] = []
    if strs:
        fn = "siemc_strs" if cased else "siemc_istrs"
        lits = [strlit(s) for s in dict.fromkeys(strs)]
        text = f"siemc_str({c})" if cased else f"lower(siemc_str({c}))"
        parts.append(
            _plain(c, f"{text} IN ({', '.join(lits)})", f"list_has_any({fn}({c}), {_list(lits)})")
        )
    if nums:
        parts.append(f"list_has_any(siemc_nums({c}), {_list(num(n) for n in dict.fromkeys(nums))})")
    if bools:
        bs = ", ".join("true" if b else "false" for b in dict.fromkeys(bools))
        parts.append(f"list_has_any(siemc_bools({c}), [{bs}])")
    return parts


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


def _or(parts: Sequence[str]) -> str:
    if not parts:
        return "false"
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _and(parts: Sequence[str]) -> str:
    if not parts:
        return "true"
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


Cond = Callable[[str], str]  # a test of one text, given the SQL of that text


def _quantified(items: Sequence[Cond], tests: Callable[[Cond], str], quantifier: str) -> str:
    """``any``: one test over every value; ``all``: every value matched by some element."""
    if quantifier == "all" and len(items) > 1:
        return _and([tests(i) for i in items])
    return tests(lambda t: _or([i(t) for i in items]))


def _in_net(version: int, lo: int, hi: int) -> Cond:
    return lambda ip: f"({ip}.v = {version} AND {ip}.n BETWEEN {lo}::UHUGEINT AND {hi}::UHUGEINT)"


def _regexp(lit: str) -> Cond:
    return lambda t: f"regexp_matches({t}, {lit})"


def _plain(c: str, fast: str, general: str) -> str:
    """``fast`` where field column ``c`` holds one string with no escapes (``siemc_str(c)``,
    read on the JSON text: by far the commonest value), the general rule elsewhere; ``fast``
    must be what ``general`` gives for such a value."""
    return f"CASE WHEN siemc_plain({c}) THEN {fast} ELSE {general} END"


def _some_text(c: str, cond: Cond) -> str:
    """``cond`` holds for some text of field column ``c`` (a plain string is its only text)."""
    return _plain(
        c,
        f"coalesce({cond(f'siemc_str({c})')}, false)",
        f"siemc_any(list_transform(siemc_texts({c}), lambda t: {cond('t')}))",
    )


class PredicateRenderer:
    def __init__(self, ctx: Context, lookup_cte: Lookups) -> None:
        self.ctx = ctx
        self.lookup_cte = lookup_cte

    def render(self, p: ir.Predicate) -> str:
        if isinstance(p, ir.And):
            return _and([self.render(x) for x in p.items])
        if isinstance(p, ir.Or):
            return _or([self.render(x) for x in p.items])
        if isinstance(p, ir.Not):
            return f"NOT {self._atom(self.render(p.item))}"
        if isinstance(p, ir.Eq):
            return self.eq(p)
        if isinstance(p, ir.StrMatch):
            return self.strmatch(p)
        if isinstance(p, ir.Regex):
            return self.regex(p)
        if isinstance(p, ir.Compare):
            return self.compare(p)
        if isinstance(p, ir.Exists):
            self.ctx.field(p.field, p.span)
            test = f"siemc_missing({col(p.field)})"
            return f"NOT {test}" if p.present else test
        if isinstance(p, ir.Cidr):
            return self.cidr(p)
        return self.in_lookup(p)

    @staticmethod
    def _atom(sql: str) -> str:
        return sql if sql.startswith("(") or " " not in sql else f"({sql})"

    def eq(self, p: ir.Eq) -> str:
        self.ctx.field(p.field, p.span)
        want_null = any(v is None for v in p.values)
        concrete = [v for v in p.values if v is not None]
        null_test = f"siemc_missing({col(p.field)})"
        if p.quantifier == "all" and len(p.values) > 1:
            if want_null and concrete:
                return "false"
            if want_null:
                return null_test
            return _and([_or(_eq_one(p.field, [v], p.cased)) for v in concrete])
        parts = _eq_one(p.field, concrete, p.cased)
        if want_null:
            parts.insert(0, null_test)
        return _or(parts)

    def strmatch(self, p: ir.StrMatch) -> str:
        self.ctx.field(p.field, p.span)
        fn = {"contains": "contains", "startswith": "starts_with", "endswith": "ends_with"}[p.op]
        vals = [v if p.cased else v.lower() for v in p.values]

        def test(lit: str) -> Cond:
            return lambda t: f"{fn}({t if p.cased else f'lower({t})'}, {lit})"

        tests = [test(strlit(v)) for v in dict.fromkeys(vals)]
        return _quantified(tests, lambda cond: _some_text(col(p.field), cond), p.quantifier)

    def regex(self, p: ir.Regex) -> str:
        self.ctx.field(p.field, p.span)
        tests: list[Cond] = []
        for pattern in dict.fromkeys(p.patterns):
            try:
                r = regex_re2.to_re2(pattern, ignorecase=not p.cased)
            except regex_re2.Unsupported as exc:
                raise self.ctx.unsupported(
                    "regular expression",
                    f"DuckDB matches with RE2, which cannot express {pattern!r}: {exc}",
                    p.span,
                    "rewrite the pattern without look-around or back-references",
                ) from None
            for note in r.approximations:
                self.ctx.approximate("regular expression", note, p.span)
            tests.append(_regexp(strlit(r.text)))
        return _quantified(tests, lambda cond: _some_text(col(p.field), cond), p.quantifier)

    def compare(self, p: ir.Compare) -> str:
        self.ctx.field(p.field, p.span)
        op = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[p.op]
        c = col(p.field)
        general = f"siemc_any(list_transform(siemc_nums({c}), lambda n: n {op} {num(p.value)}))"
        # a JSON number, read on its text, is its own only number
        return (
            f"CASE WHEN siemc_numtext({c}) IS NOT NULL THEN siemc_numtext({c}) {op} "
            f"{num(p.value)} ELSE {general} END"
        )

    def cidr(self, p: ir.Cidr) -> str:
        self.ctx.field(p.field, p.span)
        tests: list[Cond] = []
        for text in dict.fromkeys(p.networks):
            net = ipaddress.ip_network(text.strip(), strict=False)
            lo, hi = int(net.network_address), int(net.broadcast_address)
            tests.append(_in_net(net.version, lo, hi))
        return _quantified(
            tests,
            lambda cond: (
                "siemc_any(list_transform(list_transform("
                f"siemc_texts({col(p.field)}), lambda t: siemc_ip(t)), "
                f"lambda ip: coalesce({cond('ip')}, false)))"
            ),
            p.quantifier,
        )

    def in_lookup(self, p: ir.InLookup) -> str:
        conds = []
        for column, field in p.match:
            self.ctx.field(field, p.span)
            conds.append(
                f"list_contains(list_transform(siemc_texts({col(field)}), lambda t: lower(t)), "
                f"r.{col('lower:' + column)})"
            )
        return f"EXISTS (SELECT 1 FROM {self.lookup_cte(p.lookup)} r WHERE {_and(conds)})"
