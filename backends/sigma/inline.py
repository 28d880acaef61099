"""Derived fields, enrichments and lookups inlined into the filters of a Sigma rule.

A Sigma rule matches fields as logged and has no lookup tables, so a stream's filter is rewritten
at compile time into an equivalent filter over the logged fields: a test on ``lower(f)`` is the
case-insensitive test on ``f``, on ``coalesce(a, b)`` a test on the first present argument, on
``registered_domain(f)`` a test of ``f`` against the domain and its subdomains, on an enriched
column a test of the lookup's match fields over the rows whose column passes it, and a lookup
membership the list of its rows. The result is a plain :mod:`compiler.ir` predicate over stored
fields (:class:`backends.sigma.filters.FilterTranslator` writes it); what cannot be inlined is
refused (E200). Where an inlined test is only approximately equal, the approximation says which
way it errs, flipped under an odd number of negations.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from backends.base import Context, Direction
from backends.sigma.fields import SourceMap
from compiler import ir
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.values import call

# More rows than this stay a `%placeholder%` (one column) or are refused (several columns): a
# rule listing thousands of values is no rule an engineer would deploy.
LOOKUP_ROW_LIMIT = 200
TRUE: ir.Predicate = ir.And(())
FALSE: ir.Predicate = ir.Or(())
_ENRICH = "@enrich"  # marks a reference to an enriched column inside a derived expression
_DERIVE_ALT = "compile to esql (EVAL), kql (extend) or splunk (eval), which compute fields"
_LOOKUP_ALT = "compile to splunk (lookup), kql (watchlist) or esql (LOOKUP JOIN)"

Leaf = ir.Eq | ir.StrMatch | ir.Regex | ir.Compare | ir.Exists | ir.Cidr


@dataclass(frozen=True)
class Env:
    """What each field name means at a point of a stream's pipeline: an expression over stored
    fields (``derive``), or a column of a lookup row (``enrich``)."""

    exprs: dict[str, ir.Expr] = field(default_factory=dict)
    # (enrich, column, the environment its match fields are read in), indexed by the marker
    enrichments: tuple[tuple[ir.Enrich, str, Env], ...] = ()

    def resolve(self, name: str) -> ir.Expr:
        return self.exprs.get(name, ir.FieldRef(name))

    def enriched(self, enrich: tuple[ir.Enrich, ...]) -> Env:
        env = self
        for e in enrich:
            exprs = dict(env.exprs)
            entries = list(env.enrichments)
            for column, target in e.add:
                exprs[target] = ir.Call(_ENRICH, (ir.Literal_(len(entries)),), e.span)
                entries.append((e, column, env))
            env = Env(exprs, tuple(entries))
        return env

    def derived(self, derive: tuple[tuple[str, ir.Expr], ...]) -> Env:
        exprs = dict(self.exprs)
        for name, expr in derive:
            exprs[name] = _substitute(expr, exprs)
        return Env(exprs, self.enrichments)

    def computed(self, name: str) -> bool:
        """Whether ``name`` is computed (derived or enriched) rather than stored."""
        e = self.resolve(name)
        return not (isinstance(e, ir.FieldRef) and e.step is None and e.name == name)


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


def conj(items: list[ir.Predicate], span: ir.Span) -> ir.Predicate:
    if any(x == FALSE for x in items):
        return FALSE
    kept = [x for x in items if x != TRUE]
    return kept[0] if len(kept) == 1 else ir.And(tuple(kept), span)


def disj(items: list[ir.Predicate], span: ir.Span) -> ir.Predicate:
    if any(x == TRUE for x in items):
        return TRUE
    kept = [x for x in items if x != FALSE]
    return kept[0] if len(kept) == 1 else ir.Or(tuple(kept), span)


def negate(p: ir.Predicate) -> ir.Predicate:
    if p == TRUE:
        return FALSE
    if p == FALSE:
        return TRUE
    return p.item if isinstance(p, ir.Not) else ir.Not(p, getattr(p, "span", ir.NO_SPAN))


def holds(p: Leaf, value: Any) -> bool:
    """The evaluator's answer for a test on a constant (None: the field is missing)."""
    fields = {} if value is None else {p.field: value}
    return compile_predicate(p, {})(fields)


class Inliner:
    """Rewrites one stream's predicates over stored fields (``env``: what its names mean)."""

    def __init__(self, ctx: Context, env: Env, src: SourceMap | None = None) -> None:
        self.ctx = ctx
        self.env = env
        self.src = src
        self.lookups = {lk.name: lk for lk in ctx.analytic.lookups}

    def approximate(
        self, construct: str, detail: str, span: ir.Span, d: Direction, neg: bool
    ) -> None:
        flip: dict[str, Direction] = {"superset": "subset", "subset": "superset", "mixed": "mixed"}
        self.ctx.approximate(construct, detail, span, direction=flip[d] if neg else d)

    # ------------------------------------------------------------------ boolean structure
    def pred(self, p: ir.Predicate, neg: bool = False) -> ir.Predicate:
        span = getattr(p, "span", ir.NO_SPAN)
        if isinstance(p, ir.And):
            return conj([self.pred(x, neg) for x in p.items], span)
        if isinstance(p, ir.Or):
            return disj([self.pred(x, neg) for x in p.items], span)
        if isinstance(p, ir.Not):
            return negate(self.pred(p.item, not neg))
        if isinstance(p, ir.InLookup):
            return self.lookup(p, neg)
        return self.leaf(p, self.env.resolve(p.field), neg)

    # ------------------------------------------------------------------ lookups
    def lookup(self, p: ir.InLookup, neg: bool) -> ir.Predicate:
        lk = self.lookups[p.lookup]
        idx = [lk.columns.index(c) for c, _ in p.match]
        rows = list(dict.fromkeys(tuple(r[i].lower() for i in idx) for r in lk.rows))
        fields = [f for _, f in p.match]
        if len(rows) > LOOKUP_ROW_LIMIT:
            if len(fields) == 1 and not self.env.computed(fields[0]):
                return p  # a placeholder the deployment's pySigma pipeline binds
            raise self.ctx.unsupported(
                f"lookup '{p.lookup}' ({len(rows)} rows)",
                f"Sigma has no lookup tables; siemc inlines at most {LOOKUP_ROW_LIMIT} rows "
                "(a bigger one-column lookup on a logged field becomes a placeholder)",
                p.span,
                _LOOKUP_ALT,
            )
        return self.pred(rows_predicate(fields, rows, p.span), neg)

    # ------------------------------------------------------------------ derived subjects
    def leaf(self, p: Leaf, subject: ir.Expr, neg: bool) -> ir.Predicate:
        if isinstance(subject, ir.FieldRef) and subject.step is None:
            if isinstance(p, ir.Exists):
                self.shared_exists(subject.name, p, neg, p.present)
            elif isinstance(p, ir.Eq) and None in p.values:
                # `Field: null` is the missing test of the shared field
                self.shared_exists(subject.name, p, neg, False)
            return p if subject.name == p.field else dataclasses.replace(p, field=subject.name)
        if isinstance(subject, ir.Literal_):
            return TRUE if holds(p, subject.value) else FALSE
        if isinstance(subject, ir.Call):
            if subject.func in ("lower", "upper") and self._case_blind(p):
                # every case-insensitive test answers the same on x, lower(x) and upper(x)
                return self.leaf(p, subject.args[0], neg)
            if subject.func == "coalesce":
                return self.coalesce(p, subject.args, neg)
            if subject.func == "registered_domain" and isinstance(p, ir.Eq) and not p.cased:
                return self.registered_domain(p, subject.args[0], neg)
            if subject.func == _ENRICH:
                arg = subject.args[0]
                assert isinstance(arg, ir.Literal_) and isinstance(arg.value, int)
                return self.enriched(p, arg.value, neg)
        what = (
            f"{subject.func}() under a case-sensitive or non-text test"
            if isinstance(subject, ir.Call) and subject.func in ("lower", "upper")
            else f"function {subject.func}()"
            if isinstance(subject, ir.Call)
            else "an arithmetic or comparison expression"
        )
        raise self.ctx.unsupported(
            f"a test on derived field '{p.field}'",
            f"Sigma rules cannot compute fields, and {what} cannot be inlined into the test",
            p.span,
            _DERIVE_ALT,
        )

    def shared_exists(self, name: str, p: Leaf, neg: bool, present: bool) -> None:
        others = self.src.shared(name) if self.src is not None else []
        if not others:
            return
        assert self.src is not None
        sigma = self.src.fields[name]
        sigma = sigma if isinstance(sigma, str) else sigma["field"]
        self.approximate(
            f"existence of {name}",
            f"{name} and {', '.join(others)} are both kept in {sigma} (a path and its last "
            f"part), so {sigma}|exists also holds on an event that logs only "
            f"{', '.join(others)}",
            p.span,
            "superset" if present else "subset",
            neg,
        )

    @staticmethod
    def _case_blind(p: Leaf) -> bool:
        if isinstance(p, ir.Exists):
            return True  # lower(x) is missing exactly when x is
        return isinstance(p, ir.Eq | ir.StrMatch | ir.Regex) and not p.cased

    def coalesce(self, p: Leaf, args: tuple[ir.Expr, ...], neg: bool) -> ir.Predicate:
        # coalesce() takes the first argument that is present: the test reads that one
        alts: list[ir.Predicate] = []
        nulls: list[ir.Predicate] = []
        on_missing = holds(p, None)
        for a in args:
            # a test false on a missing value needs no presence guard of its own
            present = [self.leaf(ir.Exists(p.field, True, p.span), a, neg)] if on_missing else []
            alts.append(conj([*nulls, *present, self.leaf(p, a, neg)], p.span))
            nulls.append(self.leaf(ir.Exists(p.field, False, p.span), a, neg))
        if on_missing:
            alts.append(conj(nulls, p.span))
        return disj(alts, p.span)

    def registered_domain(self, p: ir.Eq, arg: ir.Expr, neg: bool) -> ir.Predicate:
        """registered_domain(x) == "example.com" as a regular expression on x: the domain or a
        subdomain, with the blanks and trailing dots registered_domain() ignores."""
        if p.quantifier == "all" and len(p.values) > 1:
            items = tuple(ir.Eq(p.field, (v,), span=p.span) for v in p.values)
            return self.pred(ir.And(items, p.span), neg)
        domains: list[str] = []
        for v in p.values:
            if v is None:
                continue  # refused below
            text = str(v).strip().rstrip(".").lower()
            if not text or ":" in text or text[-1].isdigit():
                raise self.ctx.unsupported(
                    f"a test on derived field '{p.field}'",
                    f"registered_domain() can be inlined only against domain names, not {v!r}",
                    p.span,
                    _DERIVE_ALT,
                )
            # a value that is no registered domain (a public suffix, a subdomain) equals none
            if call("registered_domain", [text]) == text:
                domains.append(text)
        if None in p.values:
            raise self.ctx.unsupported(
                f"a null test on derived field '{p.field}'",
                "a name has no registered domain also when it is a public suffix or a single "
                "label, which Sigma cannot tell without the Public Suffix List",
                p.span,
                _DERIVE_ALT,
            )
        tests: list[ir.Predicate] = []
        if domains:
            below = sorted({s for d in domains for s in suffixes_below(d)})
            if below:
                self.approximate(
                    "registered_domain() test",
                    "inlined as a test of the name and its subdomains (Sigma has no Public "
                    f"Suffix List): under the public suffixes {', '.join(below[:4])} the "
                    "registered domain is a longer name, which the test still matches",
                    p.span,
                    "superset",
                    neg,
                )
            alt = "|".join(re.escape(d) for d in domains)
            # registered_domain() strips blanks and trailing dots; the labels before the domain
            # are non-empty (a name with an empty label has none), the first after the blanks
            pattern = rf"^\s*(?:[^.\s][^.]*\.(?:[^.]+\.)*)?(?:{alt})\.*\s*$"
            tests.append(self.leaf(ir.Regex(p.field, (pattern,), False, "any", p.span), arg, neg))
        return disj(tests, p.span)

    def enriched(self, p: Leaf, index: int, neg: bool) -> ir.Predicate:
        enrich, column, match_env = self.env.enrichments[index]
        lk = self.lookups[enrich.lookup]
        match_idx = [lk.columns.index(c) for c, _ in enrich.match]
        col = lk.columns.index(column)
        first: dict[tuple[str, ...], str] = {}
        for row in lk.rows:  # the first row of each match tuple wins, as in the evaluator
            first.setdefault(tuple(row[i].lower() for i in match_idx), row[col])
        if len(first) > LOOKUP_ROW_LIMIT:
            raise self.ctx.unsupported(
                f"enrichment from lookup '{enrich.lookup}' ({len(first)} rows)",
                f"Sigma has no lookup tables; siemc inlines at most {LOOKUP_ROW_LIMIT} rows",
                enrich.span,
                _LOOKUP_ALT,
            )
        # Exactly one case holds: one row (match tuple) matches, or none. List the rows on
        # which the test answers differently from its answer with no matching row.
        if_none = holds(p, None)
        rows = [k for k, v in first.items() if holds(p, v or None) != if_none]
        fields = [f for _, f in enrich.match]
        inner = Inliner(self.ctx, match_env, self.src)
        listed = rows_predicate(fields, rows, enrich.span)
        return inner.pred(negate(listed), not neg) if if_none else inner.pred(listed, neg)


def rows_predicate(fields: list[str], rows: list[tuple[str, ...]], span: ir.Span) -> ir.Predicate:
    """Some row equals the fields (case-insensitively); rows sharing all but the last column
    become one value list."""
    if not rows:
        return FALSE
    groups: dict[tuple[str, ...], list[str]] = {}
    for row in rows:
        groups.setdefault(row[:-1], []).append(row[-1])
    alts: list[ir.Predicate] = []
    for head, lasts in groups.items():
        tests: list[ir.Predicate] = [
            ir.Eq(f, (v,), span=span) for f, v in zip(fields[:-1], head, strict=True)
        ]
        tests.append(ir.Eq(fields[-1], tuple(lasts), span=span))
        alts.append(conj(tests, span))
    return disj(alts, span)


def suffixes_below(domain: str) -> list[str]:
    """Public suffixes (PSL rules) that end with ``.domain``: under them the registered domain
    of a name is longer than ``domain``."""
    tail = "." + domain
    return sorted(r.lstrip("!*.") for r in _psl_rules() if r.endswith(tail))


@functools.lru_cache(maxsize=1)
def _psl_rules() -> frozenset[str]:
    # the evaluator's own list (compiler.evaluator.values), so both read the same snapshot;
    # publicsuffixlist keeps its parsed rules (wildcards and exceptions spelled as in the
    # PSL) in one set
    from compiler.evaluator.values import _psl

    return frozenset(str(r) for r in getattr(_psl(), "_publicsuffix", ()))
