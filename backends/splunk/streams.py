"""Streams as SPL pipelines: base searches, enrich (lookup), derive (eval/rex), filters, and the
multisearch pool with stream joins that correlations read."""

from __future__ import annotations

from backends.base import E_NO_SOURCE, CompileError, Context, _diag
from backends.profiles import describe, ecs_array_fields
from backends.splunk import ips, psl
from backends.splunk.expr import (
    ExprRenderer,
    NotACondition,
    PredicateRenderer,
    eval_str,
    field_ref,
    is_boolean,
    number,
    seconds,
)
from backends.splunk.macros import default_source, event_codes
from compiler import ir

TAG = "siemc_stream"  # the multisearch branch (stream) a pooled row belongs to
SEQ = "siemc_seq"  # a pooled row's position in the input order (docs/semantics.md, ties)

# ECS values of a field -> the profile's vocabulary, where the data models disagree on values
# (CIM Network_Traffic direction: https://docs.splunk.com/Documentation/CIM/latest/User/NetworkTraffic).
_CIM_DIRECTION = {"network.direction": {"egress": "outbound", "ingress": "inbound"}}
VALUE_MAP: dict[str, dict[str, dict[str, str]]] = {
    "cim": _CIM_DIRECTION,
    "sysmon": _CIM_DIRECTION,  # the Sysmon add-ons' CIM direction field
}


class Names:
    """Field naming for one analytic: profile-mapped names, and local names for the fields the
    query computes (derive, enrich, join add) that the profile does not map."""

    def __init__(self, analytic: ir.Analytic, ctx: Context):
        self.ctx = ctx
        self.local: set[str] = set()
        for s in analytic.streams:
            self.local.update(n for n, _ in s.derive)
            for en in s.enrich:
                self.local.update(n for _, n in en.add)
            if s.join is not None:
                self.local.update(s.join.add)

    def __call__(self, name: str, span: ir.Span) -> str:
        if name in self.local:
            prof = self.ctx.profile
            if name in prof.fields:
                return prof.fields[name]
            return prof.local(name)
        return self.ctx.field(name, span)


def multi_valued(a: ir.Analytic) -> frozenset[str]:
    """The fields of the analytic that may hold several values: ECS array fields, and fields
    derived from one (extract_ips, elementwise functions) or joined from one."""
    out = set(ecs_array_fields())
    changed = True
    while changed:
        changed = False
        for s in a.streams:
            made = [n for n, e in s.derive if _multi_expr(e, out)]
            if s.join is not None:
                made += [f for f in s.join.add if f in out]
            for n in made:
                if n not in out:
                    out.add(n)
                    changed = True
    return frozenset(out)


def _elementwise(e: ir.Expr, multi: frozenset[str]) -> str | None:
    """The multi-valued field that ``lower``/``upper``/``basename`` maps value by value."""
    if (
        isinstance(e, ir.Call)
        and e.func in ("lower", "upper", "basename")
        and isinstance(e.args[0], ir.FieldRef)
        and e.args[0].step is None
        and e.args[0].name in multi
    ):
        return e.args[0].name
    return None


def _reads(e: ir.Expr, fields: frozenset[str]) -> bool:
    if isinstance(e, ir.FieldRef):
        return e.name in fields
    if isinstance(e, ir.BinOp):
        return _reads(e.left, fields) or _reads(e.right, fields)
    if isinstance(e, ir.UnaryOp):
        return _reads(e.operand, fields)
    if isinstance(e, ir.Call):
        return any(_reads(x, fields) for x in e.args)
    return False


def _multi_expr(e: ir.Expr, multi: set[str]) -> bool:
    if isinstance(e, ir.FieldRef):
        return e.name in multi
    if isinstance(e, ir.Call):
        return e.func == "extract_ips" or any(_multi_expr(x, multi) for x in e.args)
    return False


CODE = "event.code"


def _by_event_code(p: ir.Eq, codes: dict[str, dict[str, str]]) -> ir.Predicate:
    """An equality on event.category / event.type as the EventCodes whose events have it (a
    profile's ``event_codes``): each code's events carry exactly the listed values."""

    def equal(have: str, v: ir.Scalar) -> bool:
        return isinstance(v, str) and (have == v if p.cased else have.lower() == v.lower())

    hits = []
    for code, values in codes.items():
        have = values.get(p.field)
        if have is None:
            continue
        tests = [equal(have, v) for v in p.values if v is not None]
        if tests and (all(tests) if p.quantifier == "all" else any(tests)):
            hits.append(code)
    if not hits:
        return ir.Or(())  # no Sysmon event has that category or type
    return ir.Eq(CODE, tuple(hits), False, "any", p.span)


def _merge_codes(items: tuple[ir.Predicate, ...]) -> tuple[ir.Predicate, ...]:
    """Conjunctions of EventCode tests as one test of the codes they all allow."""
    tests = [x for x in items if isinstance(x, ir.Eq) and x.field == CODE and x.quantifier == "any"]
    if len(tests) < 2:
        return items
    allowed = [c for c in tests[0].values if all(c in t.values for t in tests[1:])]
    if not allowed:
        return (ir.Or(()),)
    merged = ir.Eq(CODE, tuple(allowed), False, "any", tests[0].span)
    out: list[ir.Predicate] = []
    for x in items:
        if x is tests[0]:
            out.append(merged)
        elif x not in tests:
            out.append(x)
    return tuple(out)


def _covers(key: str, part: str) -> bool:
    return key == part or key.startswith(part + "/") or key.endswith("/" + part)


class StreamBuilder:
    def __init__(self, analytic: ir.Analytic, ctx: Context, names: Names):
        self.analytic = analytic
        self.ctx = ctx
        self.names = names
        self.markers: dict[ir.InLookup, str] = {}
        self.multi = multi_valued(analytic)
        self.exprs = ExprRenderer(
            lambda r: (
                ctx.profile.local(r.name) if isinstance(r, ir.MeasureRef) else names(r.name, r.span)
            ),
            ctx.approximate,
        )

    # ------------------------------------------------------------------ predicates
    def _marker(self, p: ir.InLookup) -> str:
        if p not in self.markers:
            self.markers[p] = f"siemc_in_{len(self.markers) + 1}"
        return self.markers[p]

    def preds(self) -> PredicateRenderer:
        return PredicateRenderer(
            self._field_value_mapped,
            self._marker,
            self.multi.__contains__,
            lambda construct, detail, span: self.ctx.approximate(construct, detail, span),
        )

    def _field_value_mapped(self, name: str, span: ir.Span) -> str:
        return self.names(name, span)

    def translate_values(
        self, p: ir.Predicate, booleans: frozenset[str] = frozenset(), positive: bool = True
    ) -> ir.Predicate:
        """Rewrite ECS values into the profile's vocabulary (see VALUE_MAP); on a field holding
        a derived boolean as text, drop the values no boolean equals (strings, numbers).

        A required event.category / event.type no EventCode of the profile carries (Sysmon
        logs no authentication) is refused as a missing data source: the query would never
        fire where the evaluator alerts on such events, so it cannot claim to be exact."""
        table = VALUE_MAP.get(self.ctx.profile.name, {})
        false = ir.Or(())
        if isinstance(p, ir.And | ir.Or):
            items = [self.translate_values(x, booleans, positive) for x in p.items]
            unit, zero = (ir.TRUE, false) if isinstance(p, ir.And) else (false, ir.TRUE)
            if zero in items:
                return zero
            terms = tuple(x for x in items if x != unit)
            if isinstance(p, ir.And):
                terms = _merge_codes(terms)
                if false in terms:
                    return false
            return type(p)(terms, p.span)
        if isinstance(p, ir.Not):
            item = self.translate_values(p.item, booleans, not positive)
            if item in (ir.TRUE, false):
                return false if item == ir.TRUE else ir.TRUE
            return ir.Not(item, p.span)
        if isinstance(p, ir.Eq) and p.field in booleans:
            # `f: "true"` is false on a derived boolean (docs/semantics.md, Equality), though
            # the text Splunk holds it as would equal it
            kept = tuple(v for v in p.values if v is None or isinstance(v, bool))
            if kept == p.values:
                return p
            if not kept or p.quantifier == "all":
                return false  # never equal
            return ir.Eq(p.field, kept, p.cased, p.quantifier, p.span)
        codes = event_codes(self.ctx.profile.name)
        if isinstance(p, ir.Eq) and codes and p.field in ("event.category", "event.type"):
            coded = _by_event_code(p, codes)
            if positive and coded == false:
                shown = ", ".join(str(v) for v in p.values)
                raise self._no_source(f"events with {p.field} {shown}", p.span)
            return coded
        if isinstance(p, ir.Eq) and p.field in table:
            m = table[p.field]
            vals = tuple(m.get(v.lower(), v) if isinstance(v, str) else v for v in p.values)
            return ir.Eq(p.field, vals, p.cased, p.quantifier, p.span)
        return p

    def lookup_cmds(self, p: ir.Predicate) -> list[str]:
        out: list[str] = []
        if isinstance(p, ir.And | ir.Or):
            for x in p.items:
                out += self.lookup_cmds(x)
        elif isinstance(p, ir.Not):
            out += self.lookup_cmds(p.item)
        elif isinstance(p, ir.InLookup):
            pairs = " ".join(f"{c} AS {self.names(f, p.span)}" for c, f in p.match)
            col = p.match[0][0]
            out.append(f"lookup {p.lookup} {pairs} OUTPUT {col} AS {self._marker(p)}")
        return out

    def filter_parts(
        self, p: ir.Predicate, booleans: frozenset[str] = frozenset()
    ) -> tuple[str, str]:
        """(search-form text, where-form text) whose AND is the predicate."""
        p = self.translate_values(p, booleans)
        pr = self.preds()
        items = p.items if isinstance(p, ir.And) else (p,)
        s = [x for x in items if pr.searchable(x)]
        w = [x for x in items if not pr.searchable(x)]
        stext = pr.search(ir.And(tuple(s))) if s else ""
        wtext = pr.where(ir.And(tuple(w))) if w else ""
        return stext, wtext

    # ------------------------------------------------------------------ base searches
    def base(self, ls: ir.LogSource, span: ir.Span, earliest: str | None) -> str:
        """The base search of a logsource: the macros of its sources (users point them at
        their indexes; see backends/splunk/macros.py), then the searches of the entries that
        are filters on them (e.g. a Sysmon EventCode)."""
        prof = self.ctx.profile
        if not prof.has_source(ls):
            raise self._no_source(describe(ls), span)
        covered: set[str] = set()
        entries = []
        for key, entry in prof.source_entries(ls):
            parts = {p for p in (ls.category, ls.product) if p and _covers(key, p)}
            if parts <= covered:
                continue  # a more specific entry (product/service) already selects it
            covered |= parts
            entries.append(entry)
        macros = [f"`{e['macro']}`" for e in entries if e.get("macro")]
        if not macros:
            default = default_source(prof)
            if default is None:
                raise self._no_source(describe(ls), span)
            macros = [f"`{default['macro']}`"]
        text = " ".join(macros + [str(e["search"]) for e in entries if not e.get("macro")])
        if earliest:
            text = f"earliest={earliest} " + text
        return text

    def _no_source(self, what: str, span: ir.Span) -> CompileError:
        return CompileError(
            [
                _diag(
                    E_NO_SOURCE,
                    f"the {self.ctx.profile.name} profile has no data source for logsource "
                    f"{what} ({self.ctx.target})",
                    span,
                    f"add a base search for it under `sources:` in "
                    f"backends/profiles/{self.ctx.profile.name}.yml",
                )
            ]
        )

    # ------------------------------------------------------------------ stream bodies
    def chain(self, name: str) -> list[ir.Stream]:
        out: list[ir.Stream] = []
        s = self.analytic.stream(name)
        while True:
            out.append(s)
            if isinstance(s.source, ir.LogSource):
                break
            s = self.analytic.stream(s.source)
        return out[::-1]

    def body(
        self, streams: list[ir.Stream], earliest: str | None, cond: str | None = None
    ) -> tuple[str, list[str]]:
        """(base search, commands) of streams applied in order (no joins among them)."""
        root = streams[0]
        assert isinstance(root.source, ir.LogSource)
        base = self.base(root.source, root.span, earliest)
        cmds: list[str] = []
        for s in streams:
            if s.join is not None:
                raise self.ctx.not_implemented("a join on a stream read through `from:`", s.span)
            cmds += self.enrich_cmds(s, cond)
            cmds += self.derive_cmds(s, cond)
            stext, wtext = self.filter_parts(s.filter, self.booleans(s.name))
            cmds += self.lookup_cmds(s.filter)
            if stext and not cmds and cond is None:
                base += " " + stext
            elif stext:
                cmds.append(f"search {stext}")
            if wtext:
                cmds.append(f"where {wtext}")
        return base, cmds

    def enrich_cmds(self, s: ir.Stream, cond: str | None) -> list[str]:
        out: list[str] = []
        for en in s.enrich:
            ins = " ".join(f"{c} AS {self.names(f, en.span)}" for c, f in en.match)
            if cond is None:
                outs = ", ".join(f"{c} AS {self.names(f, en.span)}" for c, f in en.add)
                out.append(f"lookup {en.lookup} {ins} OUTPUT {outs}")
                continue
            tmp = [(c, f, f"siemc_tmp_{i}") for i, (c, f) in enumerate(en.add)]
            outs = ", ".join(f"{c} AS {t}" for c, _, t in tmp)
            out.append(f"lookup {en.lookup} {ins} OUTPUT {outs}")
            sets = ", ".join(
                f"{field_ref(self.names(f, en.span))}=if({cond}, {t}, "
                f"{field_ref(self.names(f, en.span))})"
                for _, f, t in tmp
            )
            out.append(f"eval {sets}")
            out.append("fields - siemc_tmp_*")
        return out

    def derive_cmds(self, s: ir.Stream, cond: str | None) -> list[str]:
        out: list[str] = []
        bools = set(self._input_booleans(s))
        for name, e in s.derive:
            dst = field_ref(self.names(name, s.span))
            mapped = _elementwise(e, self.multi)
            if mapped is not None:
                # mvmap(<mv>, <expression>) evaluates the expression once per value, the field
                # name standing for the value (MultivalueEvalFunctions#mvmap, Splunk 8.0+)
                src = field_ref(self.names(mapped, s.span))
                text = f"mvmap({src}, {self.exprs.render(e)})"
                out.append(
                    f"eval {dst}={text}"
                    if cond is None
                    else f"eval {dst}=if({cond}, {text}, {dst})"
                )
                continue
            if _reads(e, self.multi):
                raise self.ctx.not_implemented(
                    f"derived field '{name}' computed from a multi-valued field "
                    "(Splunk eval functions other than the mv* ones read one value; siemc maps "
                    "lower/upper/basename of a field with mvmap only)",
                    e.span,
                )
            if isinstance(e, ir.Call) and e.func == "extract_ips":
                out += self._extract_ips(dst, e, cond)
                bools.discard(name)
                continue
            if isinstance(e, ir.Call) and e.func == "registered_domain":
                # the Public Suffix List as a lookup: exact (backends/splunk/psl.py)
                arg = self.expr(e.args[0], frozenset(bools))
                out += psl.commands(self.names(name, s.span), arg, cond)
                bools.discard(name)
                continue
            text = self.expr(e, frozenset(bools))
            out.append(
                f"eval {dst}={text}" if cond is None else f"eval {dst}=if({cond}, {text}, {dst})"
            )
            if is_boolean(e, frozenset(bools)):
                bools.add(name)
            else:
                bools.discard(name)
        return out

    def expr(self, e: ir.Expr, booleans: frozenset[str], condition: bool = False) -> str:
        """eval text of ``e`` as a field value (or a condition), ``booleans`` naming the fields
        that hold a derived boolean as text."""
        self.exprs.booleans = booleans
        try:
            return self.exprs.cond(e) if condition else self.exprs.render(e)
        except NotACondition as exc:
            raise self.ctx.not_implemented(
                "a non-boolean value read as a condition (Splunk conditions take comparisons, "
                "and/or/not and fields derived from them)",
                getattr(exc.expr, "span", ir.NO_SPAN),
            ) from None

    def _input_booleans(self, s: ir.Stream) -> frozenset[str]:
        """The fields holding a derived boolean (as text) when ``s``'s derives start: its
        source stream's, kept through the join only where the partner's are booleans too,
        and dropped where a lookup enrichment writes them."""
        out = set(self.booleans(s.source)) if isinstance(s.source, str) else set()
        if s.join is not None:
            partner = self.booleans(s.join.stream)
            out -= {f for f in s.join.add if f not in partner}
        for en in s.enrich:
            out -= {f for _, f in en.add}
        return frozenset(out)

    def booleans(self, name: str) -> frozenset[str]:
        """The fields of stream ``name``'s output that hold a derived boolean as text."""
        s = self.analytic.stream(name)
        out = set(self._input_booleans(s))
        for n, e in s.derive:
            if not (isinstance(e, ir.Call) and e.func == "extract_ips") and is_boolean(
                e, frozenset(out)
            ):
                out.add(n)
            else:
                out.discard(n)
        return frozenset(out)

    def _extract_ips(self, dst: str, e: ir.Call, cond: str | None) -> list[str]:
        arg = e.args[0]
        if not isinstance(arg, ir.FieldRef):
            raise self.ctx.not_implemented("extract_ips() of a computed value", e.span)
        return ips.commands(self.names(arg.name, arg.span), dst, cond)

    # ------------------------------------------------------------------ pipelines
    def pipeline(self, wanted: list[str], earliest: str | None = None) -> list[str]:
        """Commands producing the events of ``wanted`` streams. One stream without joins is a
        plain search; otherwise a multisearch pool whose rows carry their stream in TAG."""
        need: list[str] = []
        for n in wanted:
            if n not in need:
                need.append(n)
            j = self.analytic.stream(n).join
            if j is not None and j.stream not in need:
                need.append(j.stream)
        if len(need) == 1:
            base, cmds = self.body(self.chain(need[0]), earliest)
            return [f"search {base}", *cmds]
        branches: list[str] = []
        post: list[str] = []
        for n in need:
            streams = self.chain(n)
            top = streams[-1]
            head = streams[:-1] if top.join is not None else streams
            if not head:
                raise self.ctx.not_implemented("a join on a logsource stream", top.span)
            base, cmds = self.body(head, earliest)
            # https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Multisearch:
            # every branch is a streaming search, run concurrently
            cmds.append(f"eval {TAG}={eval_str(n)}")
            branches.append("[search " + " | ".join([base, *cmds]) + "]")
            if top.join is not None:
                post += self.join_cmds(top, top.join)
        # Search results come newest first, events of one time newest-indexed first: reversed,
        # they are in the input order, which breaks ties of _time (streamstats count numbers them)
        # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Reverse)
        order = ["reverse", f"streamstats count AS {SEQ}"]
        return ["| multisearch " + " ".join(branches), *order, *post]

    def join_cmds(self, s: ir.Stream, j: ir.Join) -> list[str]:
        """The nearest partner within ``within``: streamstats ``last()`` carries the partner
        rows' values forwards (partners before) and/or backwards (partners after) in the
        (time, input) order, partners first at equal times and, among partners at one time,
        the earliest in the input last, so ``last()`` is docs/semantics.md's nearest partner
        (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Streamstats:
        last() is the last value seen; events without the field add none)."""
        on = [self.names(f, j.span) for f in j.on]
        for f in j.on:
            if f in self.multi:
                self.ctx.approximate(
                    "stream join on a multi-valued field",
                    f"streamstats groups by the whole value of {f}, where siemc joins on any "
                    "element",
                    j.span,
                )
        for f in j.add:
            if f in self.multi:
                self.ctx.approximate(
                    "stream join adding a multi-valued field",
                    f"last() carries one value of {f}, where siemc copies the partner's list",
                    j.span,
                )
        me, other = eval_str(s.name), eval_str(j.stream)
        add = [self.names(f, j.span) for f in j.add]
        win = seconds(j.within_ms + 1000)  # the explicit bound below decides the edge
        within = number(j.within_ms / 1000)
        cond = f"{TAG}=={me}"
        partner = f"{TAG}=={other}"
        cmds: list[str] = [f"eval siemc_jr=if({partner}, 0, 1)"]
        dirs = {"before": ["b"], "after": ["a"], "around": ["b", "a"]}[j.direction]
        for d in dirs:
            cmds.append("sort 0 " + ("_time" if d == "b" else "-_time") + f" siemc_jr -{SEQ}")
            cv = Carry(f"siemc_{d}", partner)
            cmds.append("eval " + ", ".join(cv.sets(add)))
            cmds.append(f"streamstats time_window={win} {' '.join(cv.aggs())} BY {' '.join(on)}")
        if j.direction == "around":
            cmds.append(
                "eval siemc_pick=if(isnull(siemc_at) OR (isnotnull(siemc_bt) AND "
                '_time-siemc_bt<=siemc_at-_time), "b", "a")'
            )
            picks = {"t": "t", "s": "s"}
            sets = [
                f'siemc_j{k}=if(siemc_pick=="b", siemc_b{v}, siemc_a{v})' for k, v in picks.items()
            ]
            for i in range(len(add)):
                sets.append(
                    f'siemc_j{i}=if(siemc_pick=="b", {Carry("siemc_b", partner).value(i)}, '
                    f"{Carry('siemc_a', partner).value(i)})"
                )
            cmds.append("eval " + ", ".join(sets))
        else:
            c = Carry(f"siemc_{dirs[0]}", partner)
            sets = [f"siemc_jt={c.prefix}t"] + [f"siemc_j{i}={c.value(i)}" for i in range(len(add))]
            cmds.append("eval " + ", ".join(sets))
        cmds.append(f"where {TAG}!={me} OR (isnotnull(siemc_jt) AND abs(_time-siemc_jt)<={within})")
        if add:
            cmds.append(
                "eval "
                + ", ".join(
                    f"{fr}=if({cond}, coalesce(siemc_j{i}, {fr}), {fr})"
                    for i, fr in enumerate(field_ref(f) for f in add)
                )
            )
        cmds.append("fields - siemc_a* siemc_b* siemc_j* siemc_pick")
        cmds += self.enrich_cmds(s, cond)
        cmds += self.derive_cmds(s, cond)
        cmds += self.lookup_cmds(s.filter)
        p = self.translate_values(s.filter, self.booleans(s.name))
        if p != ir.TRUE:
            cmds.append(f"where {TAG}!={me} OR {self.preds().where(p)}")
        return cmds


class Carry:
    """Values of the latest row satisfying ``cond`` carried to later rows by streamstats
    ``last()``, exactly: ``last(x)`` skips rows where ``x`` is null, so next to each value the
    position of the row it came from is carried, and a value counts only when it came from the
    latest such row (``<prefix>s``, its position; ``<prefix>t``, its time)."""

    def __init__(self, prefix: str, cond: str) -> None:
        self.prefix, self.cond = prefix, cond
        self.n = 0

    def sets(self, fields: list[str]) -> list[str]:
        p, c = self.prefix, self.cond
        out = [f"{p}t=if({c}, _time, null())", f"{p}s=if({c}, {SEQ}, null())"]
        for i, f in enumerate(fields):
            fr = field_ref(f)
            out.append(f"{p}v{i}=if({c}, {fr}, null())")
            out.append(f"{p}h{i}=if({c} AND isnotnull({fr}), {SEQ}, null())")
        self.n = len(fields)
        return out

    def aggs(self) -> list[str]:
        names = ["t", "s"] + [f"{k}{i}" for i in range(self.n) for k in ("v", "h")]
        return [f"last({self.prefix}{x}) AS {self.prefix}{x}" for x in names]

    def value(self, i: int) -> str:
        p = self.prefix
        return f"if({p}h{i}=={p}s, {p}v{i}, null())"
