"""Lookups, enrichments and derived fields inlined into filters, at the IR level (every target).

A filter that reads a derived or enriched field, or tests lookup membership, is rewritten at
compile time into an equal :mod:`compiler.ir` predicate over stored fields: a test on
``lower(f)`` is the case-insensitive test on ``f``, on ``coalesce(a, b)`` a test on the first
present argument, on ``registered_domain(f)`` a regular expression on ``f`` built from the
Public Suffix List (:mod:`backends.psl_names`), on an enriched column a test of the lookup's
match fields over the rows whose column passes it (the first matching row wins, an empty cell
is a missing field), and a lookup membership the list of its rows (case-insensitive equality).

EQL and Sigma, which cannot compute fields or read tables, inline every filter this way
(:class:`Inliner`). ES|QL and KQL inline a stream whose derived and enriched fields only its
own filter reads (:func:`filter_only_streams`, :func:`inlined`): the query then needs no LOOKUP
JOIN, watchlist or computed column; the backend keeps the form with the fewer approximations
(:func:`render_best`). What cannot be inlined is refused (E200). Where an inlined test is only
approximately equal, the approximation says which way it errs, flipped under an odd number of
negations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from backends.base import CompileError, Context, Direction
from backends.psl_names import domain_test
from backends.registered_domain import ECS_REGISTERED_DOMAIN, ingest_source
from compiler import ir
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.values import call

TRUE: ir.Predicate = ir.And(())
FALSE: ir.Predicate = ir.Or(())
_ENRICH = "@enrich"  # marks a reference to an enriched column inside a derived expression

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

    def raw_field(self, name: str) -> str | None:
        """The stored field ``name`` reads, or None when it is computed from several."""
        e = self.resolve(name)
        return e.name if isinstance(e, ir.FieldRef) and e.step is None else None

    def computed(self, name: str) -> bool:
        """Whether ``name`` is computed (derived or enriched) rather than stored."""
        return self.raw_field(name) != name

    def enriched(self, enrich: tuple[ir.Enrich, ...]) -> Env:
        env = self
        for e in enrich:
            exprs = dict(env.exprs)
            entries = list(env.enrichments)
            for column, target in e.add:
                exprs[target] = ir.Call(_ENRICH, (ir.Literal_(len(entries)),), e.span)
                # the match fields mean what they meant before this enrichment
                entries.append((e, column, env))
            env = Env(exprs, tuple(entries))
        return env

    def derived(self, derive: tuple[tuple[str, ir.Expr], ...]) -> Env:
        exprs = dict(self.exprs)
        for name, expr in derive:
            exprs[name] = _substitute(expr, exprs)
        return Env(exprs, self.enrichments)


def stream_env(analytic: ir.Analytic, stream: str) -> Env:
    """The environment at the filter of ``stream`` (its source streams' pipelines first)."""
    chain: list[ir.Stream] = []
    s = analytic.stream(stream)
    while True:
        chain.append(s)
        if isinstance(s.source, ir.LogSource):
            break
        s = analytic.stream(s.source)
    env = Env()
    for s in reversed(chain):
        env = env.enriched(s.enrich).derived(s.derive)
    return env


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


@dataclass(frozen=True)
class Limits:
    """How a target words what it cannot inline, and how many lookup rows it inlines."""

    name: str  # the target as users know it ("EQL", "Sigma")
    row_limit: int
    derive_alt: str  # the alternative named when a derived field cannot be inlined
    lookup_alt: str  # ... when a lookup is too big


class Inliner:
    """Rewrites one stream's predicates over stored fields (``env``: what its names mean).

    Subclasses adapt it to a target: :meth:`stored` sees every test on a stored field,
    :meth:`big_lookup` decides what a lookup over the row limit becomes. ``arrays`` names the
    stored fields that may hold several values; ``ingest`` reads ECS
    ``<entity>.registered_domain`` (filled at ingest) for the registered domain of an ECS name
    field, as the Elastic targets do."""

    def __init__(
        self,
        ctx: Context,
        env: Env,
        limits: Limits,
        *,
        ingest: bool = False,
        arrays: frozenset[str] = frozenset(),
    ) -> None:
        self.ctx = ctx
        self.env = env
        self.limits = limits
        self.ingest = ingest
        self.arrays = arrays
        self.lookups = {lk.name: lk for lk in ctx.analytic.lookups}

    def _with_env(self, env: Env) -> Inliner:
        """The same inliner in another environment (an enrichment's match fields)."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.env = env
        return other

    def approximate(
        self, construct: str, detail: str, span: ir.Span, d: Direction, neg: bool
    ) -> None:
        flip: dict[str, Direction] = {"superset": "subset", "subset": "superset", "mixed": "mixed"}
        self.ctx.approximate(construct, detail, span, direction=flip[d] if neg else d)

    # ------------------------------------------------------------------ target hooks
    def stored(self, name: str, p: Leaf, neg: bool) -> None:
        """Called for every test on the stored field ``name`` (polarity ``neg``)."""

    def big_lookup(self, p: ir.InLookup, rows: int) -> ir.Predicate:
        raise self.ctx.unsupported(
            f"lookup '{p.lookup}' ({rows} rows)",
            f"{self.limits.name} has no lookup tables here, and siemc inlines at most "
            f"{self.limits.row_limit} rows",
            p.span,
            self.limits.lookup_alt,
        )

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

    def on(self, subject: ir.Expr, q: ir.Predicate, neg: bool) -> ir.Predicate:
        """``q`` (and/or/not of leaves) with every leaf read on ``subject``."""
        span = getattr(q, "span", ir.NO_SPAN)
        if isinstance(q, ir.And):
            return conj([self.on(subject, x, neg) for x in q.items], span)
        if isinstance(q, ir.Or):
            return disj([self.on(subject, x, neg) for x in q.items], span)
        if isinstance(q, ir.Not):
            return negate(self.on(subject, q.item, not neg))
        assert not isinstance(q, ir.InLookup)
        return self.leaf(q, subject, neg)

    # ------------------------------------------------------------------ lookups
    def lookup(self, p: ir.InLookup, neg: bool) -> ir.Predicate:
        lk = self.lookups[p.lookup]
        idx = [lk.columns.index(c) for c, _ in p.match]
        rows = list(dict.fromkeys(tuple(r[i].lower() for i in idx) for r in lk.rows))
        if len(rows) > self.limits.row_limit:
            return self.big_lookup(p, len(rows))
        return self.pred(rows_predicate([f for _, f in p.match], rows, p.span), neg)

    def enriched(self, p: Leaf, index: int, neg: bool) -> ir.Predicate:
        enrich, column, match_env = self.env.enrichments[index]
        lk = self.lookups[enrich.lookup]
        match_idx = [lk.columns.index(c) for c, _ in enrich.match]
        col = lk.columns.index(column)
        first: dict[tuple[str, ...], str] = {}
        for row in lk.rows:  # the first row of each match tuple wins, as in the evaluator
            first.setdefault(tuple(row[i].lower() for i in match_idx), row[col])
        if len(first) > self.limits.row_limit:
            raise self.ctx.unsupported(
                f"enrichment from lookup '{enrich.lookup}' ({len(first)} rows)",
                f"{self.limits.name} has no lookup tables here, and siemc inlines at most "
                f"{self.limits.row_limit} rows",
                enrich.span,
                self.limits.lookup_alt,
            )
        fields = [f for _, f in enrich.match]
        for f in fields:
            raw = match_env.raw_field(f)
            if raw is not None and raw in self.arrays:
                self.approximate(
                    "lookup enrichment",
                    f"'{raw}' may hold several values on {self.limits.name}: the inlined test "
                    "holds when some value matches a row whose column passes it, where siemc "
                    "enriches from the first row in CSV order that some value matches",
                    enrich.span,
                    "mixed",
                    neg,
                )
        # Exactly one case holds: one row (match tuple) matches, or none (an empty cell is a
        # missing field). List the rows on which the test answers differently from its answer
        # with no matching row.
        if_none = holds(p, None)
        rows = [k for k, v in first.items() if holds(p, v or None) != if_none]
        inner = self._with_env(match_env)
        listed = rows_predicate(fields, rows, enrich.span)
        return inner.pred(negate(listed), not neg) if if_none else inner.pred(listed, neg)

    # ------------------------------------------------------------------ derived subjects
    def leaf(self, p: Leaf, subject: ir.Expr, neg: bool) -> ir.Predicate:
        if isinstance(subject, ir.FieldRef) and subject.step is None:
            self.stored(subject.name, p, neg)
            return p if subject.name == p.field else dataclasses.replace(p, field=subject.name)
        if isinstance(subject, ir.Literal_):
            return TRUE if holds(p, subject.value) else FALSE
        if isinstance(subject, ir.Call):
            if subject.func in ("lower", "upper") and _case_blind(p):
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
            f"{self.limits.name} cannot compute fields here, and {what} cannot be inlined "
            "into the test",
            p.span,
            self.limits.derive_alt,
        )

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
        """registered_domain(x) == d as a test on x (:func:`backends.psl_names.domain_test`),
        or, on the Elastic targets, on the ECS registered-domain field filled at ingest."""
        src = ingest_source(arg) if self.ingest else None
        if src is not None:
            reg = ECS_REGISTERED_DOMAIN[src]
            return self.leaf(dataclasses.replace(p, field=reg), ir.FieldRef(reg), neg)
        if p.quantifier == "all" and len(p.values) > 1:
            items = tuple(ir.Eq(p.field, (v,), span=p.span) for v in p.values)
            return self.pred(ir.And(items, p.span), neg)
        if None in p.values:
            raise self.ctx.unsupported(
                f"a null test on derived field '{p.field}'",
                "a name has no registered domain also when it is a public suffix or a single "
                f"label, which {self.limits.name} cannot tell without the Public Suffix List",
                p.span,
                self.limits.derive_alt,
            )
        domains: list[str] = []
        for v in p.values:
            text = v.lower() if isinstance(v, str) else ""
            if not text.strip(". ") or ":" in text or text[-1].isdigit():
                raise self.ctx.unsupported(
                    f"a test on derived field '{p.field}'",
                    f"registered_domain() can be inlined only against domain names, not {v!r}",
                    p.span,
                    self.limits.derive_alt,
                )
            # the test compares lower-cased texts, and registered_domain() is lower-case: a
            # value that is no registered domain (a public suffix, a subdomain, blanks or a
            # trailing dot) equals none
            if call("registered_domain", [text]) == text:
                domains.append(text)
        if not domains:
            return FALSE
        test, kept = domain_test(p.field, domains, p.span)
        for d, below in kept.items():
            self.approximate(
                "registered_domain() test",
                f"the names under {d} are matched also below the {len(below)} public "
                f"suffixes the Public Suffix List names under it ({', '.join(below[:3])}, ...), "
                f"where the registered domain is longer than {d}",
                p.span,
                "superset",
                neg,
            )
        return self.on(arg, test, neg)


def _case_blind(p: Leaf) -> bool:
    if isinstance(p, ir.Exists):
        return True  # lower(x) is missing exactly when x is
    return isinstance(p, ir.Eq | ir.StrMatch | ir.Regex) and not p.cased


# --------------------------------------------------------------------------- whole streams
def _read_elsewhere(analytic: ir.Analytic, stream: ir.Stream) -> set[str]:
    """Every field name the analytic reads outside ``stream``'s own pipeline (keys, measures,
    other streams, joins, baselines), with and without a step alias."""
    names: set[str] = set()
    for s in analytic.streams:
        if s.name == stream.name:
            continue
        if s.source == stream.name:
            return {"*"}  # a derived stream reads every field of this one
        names.update(ir.predicate_fields(s.filter))
        for _, e in s.derive:
            names |= ir.field_names(e)
        for en in s.enrich:
            names.update(f for _, f in en.match)
        if s.join is not None:
            names.update(s.join.on)
            names.update(s.join.add)
    for node in _detection_nodes(analytic):
        if isinstance(node, str):
            names.add(node)
        else:
            names |= ir.field_names(node)
    if stream.join is not None:
        names.update(stream.join.on)
        names.update(stream.join.add)
    aliases = analytic.step_aliases()
    for n in list(names):
        head, _, rest = n.partition(".")
        if head in aliases and rest:
            names.add(rest)
    return names


def _detection_nodes(analytic: ir.Analytic) -> Iterator[str | ir.Expr]:
    d = analytic.detection
    steps: tuple[ir.Step, ...] = ()
    if isinstance(d, ir.Sequence):
        steps = d.steps + ((d.until,) if d.until is not None else ())
    elif isinstance(d, ir.Cooccurrence):
        steps = d.members
    elif isinstance(d, ir.Absence):
        steps = (d.first, d.missing)
    for st in steps:
        yield from st.keys
    if isinstance(d, ir.Aggregate):
        yield from d.keys
        yield from (m.field for m in d.measures if m.field is not None)
        yield from (e for _, e in d.compute)
        if d.having is not None:
            yield d.having
    for b in analytic.baselines:
        if isinstance(b, ir.FirstSeen | ir.Rarity):
            yield from b.keys
            yield from b.current
        if isinstance(b, ir.Rarity) and b.across != "@days":
            yield b.across


def filter_only_streams(analytic: ir.Analytic) -> list[str]:
    """Streams whose filter tests lookup membership, or that enrich or derive fields only their
    own filter reads: their filter can be inlined, and the enrichments and derivations
    dropped."""
    out = []
    for s in analytic.streams:
        if not (s.enrich or s.derive):
            if any(isinstance(x, ir.InLookup) for x in _leaves(s.filter)):
                out.append(s.name)
            continue
        made = {t for e in s.enrich for _, t in e.add} | {n for n, _ in s.derive}
        elsewhere = _read_elsewhere(analytic, s)
        if "*" not in elsewhere and not made & elsewhere:
            out.append(s.name)
    return out


def inlined(
    ctx: Context, analytic: ir.Analytic, make: Callable[[Context, Env], Inliner]
) -> ir.Analytic:
    """``analytic`` with every filter-only stream's lookups and derived fields inlined into its
    filter (approximations recorded in ``ctx``; CompileError when one cannot be inlined)."""
    names = filter_only_streams(analytic)
    streams = []
    for s in analytic.streams:
        if s.name in names:
            made = [n for n, _ in s.derive] + [f for en in s.enrich for _, f in en.add]
            if made:
                # the alert rows are the events as logged: say where the computed fields went
                ctx.note(
                    f"stream '{s.name}': {', '.join(made)} are not added to the alert rows: "
                    "only its filter reads them, where their lookups and expressions are inlined"
                )
            env = Env().enriched(s.enrich).derived(s.derive)
            s = dataclasses.replace(s, enrich=(), derive=(), filter=make(ctx, env).pred(s.filter))
        streams.append(s)
    return dataclasses.replace(analytic, streams=tuple(streams))


def _leaves(p: ir.Predicate) -> Iterator[ir.Predicate]:
    if isinstance(p, ir.And | ir.Or):
        for x in p.items:
            yield from _leaves(x)
    elif isinstance(p, ir.Not):
        yield from _leaves(p.item)
    else:
        yield p


_RANK = {None: 0, "superset": 1, "subset": 2, "mixed": 3}


def render_best(
    ctx: Context,
    analytic: ir.Analytic,
    make: Callable[[Context, Env], Inliner],
    render: Callable[[ir.Analytic, Context], str],
) -> str:
    """The query of ``analytic`` with its filter-only lookups and derived fields inlined, or
    as written when that has fewer or weaker approximations (or inlining is impossible)."""
    if not filter_only_streams(analytic):
        return render(analytic, ctx)
    trial = dataclasses.replace(ctx, approximations=[], errors=[], notes=[])
    try:
        flat = inlined(trial, analytic, make)
        trial.analytic = flat
        query = render(flat, trial)
    except CompileError:
        return render(analytic, ctx)
    plain = dataclasses.replace(ctx, approximations=[], errors=[], notes=[])
    try:
        other = render(analytic, plain)
    except CompileError:
        other = None
    if other is not None and _weight(plain) < _weight(trial):
        chosen, query = plain, other
    else:
        chosen = trial
    ctx.approximations[:] = chosen.approximations
    ctx.notes[:] = chosen.notes
    ctx.errors[:] = chosen.errors
    ctx.analytic = chosen.analytic  # what the header describes (the lookups still read)
    return query


def read_lookups(analytic: ir.Analytic) -> list[ir.Lookup]:
    """The lookups the analytic still reads (an enrichment or a membership test)."""
    names = {e.lookup for s in analytic.streams for e in s.enrich}
    names |= {
        x.lookup for s in analytic.streams for x in _leaves(s.filter) if isinstance(x, ir.InLookup)
    }
    return [lk for lk in analytic.lookups if lk.name in names]


def _weight(ctx: Context) -> tuple[int, int]:
    worst = max((_RANK[a.direction] for a in ctx.approximations), default=0)
    return worst, len(ctx.approximations)
