"""One read of several streams: ``FROM idx | WHERE <any logsource> | EVAL <per-stream flags>``.

A correlation, a join or a per-candidate baseline reads every stream it needs in one query, the
pattern Elastic's own cross-source ES|QL rules use (flag each event kind, then group by the
shared key; docs/research/target-idioms.md section 1.3). Each row is one event; a boolean column
``siemc_in_<stream>`` says whether the event is an event of the stream (after that stream's
whole pipeline). A field a stream computes (derive, enrich, join add) is written in place when no
stream outside that stream's descendants reads or writes it, else into its own column
``siemc_<stream>.<field>``, so two streams never see each other's values.

A stream join keyed on a process identity (one partner per key: a process starts once) is an
``INLINE STATS ... BY key`` over the partner's rows: every row of the key gets the partner's time
and fields, and the join holds where the time bound does (docs/semantics.md, "Join").
"""

from __future__ import annotations

from collections.abc import Iterable

from backends.elastic_esql import rename
from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import Pipeline, duration, slug
from backends.elastic_esql.expr import ident
from backends.identity import HOST_KEYS
from compiler import ir

# The unique process identity of ECS: a process starts once, so a process-start stream has at
# most one event per (host, process.entity_id) (backends/identity.py, docs/semantics.md).
ENTITY = "process.entity_id"


def check_keys(m: MultiRead, columns: list[str], construct: str, span: ir.Span) -> None:
    """INLINE STATS by a multi-valued key is not documented (which group's result does the row
    get?): declare it where a key is an ECS array field."""
    for c in columns:
        if c in m.r.arrays:
            m.ctx.approximate(
                construct,
                f"'{c}' is multi-valued in ECS: ES|QL does not document which group's INLINE "
                "STATS result a row with several key values receives, where siemc matches when "
                "any value does",
                span,
            )


class MultiRead:
    """The flags and columns of ``streams`` (and every stream they read) in one pipeline.
    ``consumers`` are the (stream, field) reads of the detection and baselines, which decide
    whether a computed field may be written in place."""

    def __init__(
        self, b: QueryBuild, streams: Iterable[str], consumers: Iterable[tuple[str, str]]
    ) -> None:
        self.b = b
        self.ctx = b.ctx
        self.r = b.r
        self.analytic = b.analytic
        self.by_name = {s.name: s for s in self.analytic.streams}
        self.needed = self._closure(streams)
        self.order = [s.name for s in self.analytic.streams if s.name in self.needed]
        self.cols: dict[str, dict[str, str]] = {}
        self.flag: dict[str, str] = {}
        self.reads = self._reads(list(consumers))
        self.p = Pipeline()

    # ------------------------------------------------------------------ analysis
    def _closure(self, streams: Iterable[str]) -> set[str]:
        out: set[str] = set()
        todo = list(streams)
        while todo:
            name = todo.pop()
            if name in out:
                continue
            out.add(name)
            s = self.by_name[name]
            if isinstance(s.source, str):
                todo.append(s.source)
            if s.join is not None:
                todo.append(s.join.stream)
        return out

    def parent(self, name: str) -> str | None:
        src = self.by_name[name].source
        return src if isinstance(src, str) else None

    def root(self, name: str) -> str:
        while (p := self.parent(name)) is not None:
            name = p
        return name

    def under(self, name: str, ancestor: str) -> bool:
        """Whether stream ``name`` is ``ancestor`` or reads it through ``from:``."""
        cur: str | None = name
        while cur is not None:
            if cur == ancestor:
                return True
            cur = self.parent(cur)
        return False

    def _reads(self, consumers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Every (stream context, field) read or written in the query."""
        out = list(consumers)
        for name in self.needed:
            s = self.by_name[name]
            out += [(name, f) for f in rename.pred_fields(s.filter)]
            for f, e in s.derive:
                out += [(name, x) for x in rename.expr_fields(e)] + [(name, f)]
            for en in s.enrich:
                out += [(name, f) for _, f in en.match] + [(name, f) for _, f in en.add]
            if s.join is not None:
                out += [(name, f) for f in s.join.on] + [(s.join.stream, f) for f in s.join.on]
                out += [(s.join.stream, f) for f in s.join.add] + [(name, f) for f in s.join.add]
        return out

    def _column(self, stream: str, f: str) -> str:
        """Where ``stream`` writes ``f``: in place unless another stream reads or writes it."""
        if any(x == f and not self.under(t, stream) for t, x in self.reads):
            return f"siemc_{slug(stream)}.{f}"
        return f

    # ------------------------------------------------------------------ rendering
    def build(self) -> Pipeline:
        roots = [n for n in self.order if self.parent(n) is None]
        conds = {n: self._logsource(n) for n in roots}
        indices = sorted({self._index(n) for n in roots})
        self.p.commands.append(
            self.b.from_command_for(indices[0] if len(indices) == 1 else ", ".join(indices))
        )
        distinct: dict[str, ir.Predicate] = {}
        for c in conds.values():  # streams of one logsource read the same rows once
            distinct.setdefault(" AND ".join(self.r.where(c)), c)
        alts = tuple(distinct.values())
        either = ir.Or(alts) if len(alts) > 1 else alts[0]
        self.p.commands += self.b.where(either)
        shared = self._shared_enrich(roots)
        for en in shared:
            self.b.enrich(en, self.p)
        for name in self.order:
            self._stream(name, conds.get(name), len(shared))
        return self.p

    def _logsource(self, name: str) -> ir.Predicate:
        s = self.by_name[name]
        assert isinstance(s.source, ir.LogSource)
        return self.b.logsource(s.source, s.span)

    def _index(self, name: str) -> str:
        s = self.by_name[name]
        assert isinstance(s.source, ir.LogSource)
        return self.b.index_of(s.source)

    def _shared_enrich(self, roots: list[str]) -> tuple[ir.Enrich, ...]:
        """Enrichments every root stream starts with (no join before them): applied once to
        every row, in place, since every row is an event of some root."""
        firsts = [self.by_name[n] for n in roots]
        if any(s.join is not None for s in firsts):
            return ()
        common = firsts[0].enrich
        for s in firsts[1:]:
            n = 0
            while n < min(len(common), len(s.enrich)) and _same(common[n], s.enrich[n]):
                n += 1
            common = common[:n]
        return common

    def _stream(self, name: str, base: ir.Predicate | None, skip_enrich: int) -> None:
        s = self.by_name[name]
        parent = self.parent(name)
        cols = dict(self.cols[parent]) if parent is not None else {}
        conds: list[str] = []
        if parent is not None:
            conds.append(self.flag[parent])
        if s.join is not None:
            conds += self._join(name, s.join, cols)
        for en in s.enrich[skip_enrich if parent is None else 0 :]:
            self._enrich(name, en, cols)
        if s.derive:
            assigns = []
            for f, e in s.derive:
                new = rename.expr(e, cols)
                col = self._column(name, f)
                assigns.append((col, new))
                cols[f] = col
            self.b.derive(tuple(assigns), self.p)
        filt = rename.pred(s.filter, cols)
        for lk in _lookups(filt):
            self.b.in_lookup(lk, self.p)
        if base is not None:
            filt = ir.And((base, filt))
        lines = [x for x in self.r.where(filt) if x != "true"]
        conds += lines
        flag = f"siemc_in_{slug(name)}"
        text = " AND ".join(conds) if conds else "true"
        self.p.commands.append(f"EVAL {flag} = COALESCE({text}, false)")
        self.cols[name] = cols
        self.flag[name] = flag

    def _enrich(self, name: str, en: ir.Enrich, cols: dict[str, str]) -> None:
        add = []
        for column, f in en.add:
            col = self._column(name, f)
            add.append((column, col))
            cols[f] = col
        match = tuple((c, cols.get(f, f)) for c, f in en.match)
        self.b.enrich(ir.Enrich(en.lookup, match, tuple(add), span=en.span), self.p)

    # ------------------------------------------------------------------ joins
    def _join(self, name: str, j: ir.Join, cols: dict[str, str]) -> list[str]:
        """INLINE STATS of the partner's time and added fields by the join keys; the join
        holds on rows whose key has a partner within the bound."""
        other = self.cols[j.stream]
        keys = []
        for f in j.on:
            mine, theirs = cols.get(f, f), other.get(f, f)
            if mine != theirs:
                raise self.ctx.not_implemented(
                    f"stream join on '{f}', which one side computes", j.span
                )
            keys.append(ident(mine))
        if not self.b.stack.inline_stats:
            raise self.b.needs_inline_stats("stream join", j.span)
        check_keys(self, [cols.get(f, f) for f in j.on], "stream join", j.span)
        if not self.identity(j.on, j.stream):
            return self._nearest(name, j, cols, keys)
        pflag = self.flag[j.stream]
        stem = f"siemc_{slug(name)}"
        ts = f"{stem}_partner_ts"
        aggs = [f"{ts} = MAX(@timestamp) WHERE {pflag}"]
        partner_cols = {}
        for f in j.add:
            pc = f"{stem}_partner.{f}"
            partner_cols[f] = pc
            aggs.append(f"{ident(pc)} = VALUES({ident(other.get(f, f))}) WHERE {pflag}")
            self.r.types[pc] = self.r.kind(other.get(f, f))
        self.p.commands.append(
            "INLINE STATS " + ",\n    ".join(aggs) + "\n    BY " + ", ".join(keys)
        )
        within = duration(j.within_ms)
        if j.direction == "before":
            bound = [f"{ts} <= @timestamp", f"@timestamp <= {ts} + {within}"]
        elif j.direction == "after":
            bound = [f"{ts} >= @timestamp", f"{ts} <= @timestamp + {within}"]
        else:
            bound = [f"{ts} >= @timestamp - {within}", f"{ts} <= @timestamp + {within}"]
        assigns = []
        for f in j.add:
            col = self._column(name, f)
            assigns.append(
                f"{ident(col)} = COALESCE({ident(partner_cols[f])}, {ident(cols.get(f, f))})"
            )
            self.r.types[col] = self.r.kind(cols.get(f, f))
            cols[f] = col
        if assigns:
            self.p.commands.append("EVAL " + ",\n    ".join(assigns))
        return [f"{k} IS NOT NULL" for k in keys] + bound

    def _nearest(self, name: str, j: ir.Join, cols: dict[str, str], keys: list[str]) -> list[str]:
        """A join on keys with several partners per key: each row is paired with every partner
        time of its key (INLINE STATS VALUES, MV_EXPAND), the copy of the nearest partner within
        the bound is kept (the earlier at equal distance: score 2 |dt| + (partner later)), or,
        without one, the copy of the smallest time; the partner's fields are then grouped by
        the key and the partner's time (docs/semantics.md, "Join")."""
        pflag = self.flag[j.stream]
        stem = f"siemc_{slug(name)}"
        ts, first, score, best = (f"{stem}_{x}" for x in ("partner_ts", "first", "score", "best"))
        within = duration(j.within_ms)
        if j.direction == "before":
            bound = f"{ts} <= @timestamp AND @timestamp <= {ts} + {within}"
        elif j.direction == "after":
            bound = f"{ts} >= @timestamp AND {ts} <= @timestamp + {within}"
        else:
            bound = f"{ts} >= @timestamp - {within} AND {ts} <= @timestamp + {within}"
        by = ", ".join(keys)
        self.p.commands += [
            f"INLINE STATS {ts} = VALUES(@timestamp) WHERE {pflag}\n    BY {by}",
            # a key without partners gets a time outside every bound (expanded once)
            f"EVAL {ts} = COALESCE({ts}, @timestamp - {within} - 1 millisecond), "
            f"{first} = MV_MIN({ts})",
            f"MV_EXPAND {ts}",
            f"EVAL {score} = CASE({bound}, 2 * ABS(TO_LONG({ts}) - TO_LONG(@timestamp))"
            f" + CASE({ts} > @timestamp, 1, 0), null)",
            f"INLINE STATS {best} = MIN({score})\n    BY {by}, @timestamp",
            f"WHERE {score} == {best} OR ({best} IS NULL AND {ts} == {first})",
        ]
        other = self.cols[j.stream]
        aggs, assigns = [], []
        for f in j.add:
            pc = f"{stem}_partner.{f}"
            aggs.append(f"{ident(pc)} = VALUES({ident(other.get(f, f))}) WHERE {pflag}")
            self.r.types[pc] = self.r.kind(other.get(f, f))
            col = self._column(name, f)
            assigns.append(f"{ident(col)} = COALESCE({ident(pc)}, {ident(cols.get(f, f))})")
            self.r.types[col] = self.r.kind(cols.get(f, f))
            cols[f] = col
        if aggs:
            self.p.commands.append("INLINE STATS " + ",\n    ".join(aggs) + f"\n    BY {by}, {ts}")
            self.p.commands.append("EVAL " + ",\n    ".join(assigns))
        self.ctx.note(
            f"the join of {name} takes the nearest {j.stream} event of its key, as siemc; "
            "when two of them share the key and the millisecond, siemc takes the first in "
            "input order, which Elasticsearch does not keep (the query then adds both "
            "events' values)"
        )
        return [f"{k} IS NOT NULL" for k in keys] + [f"{score} IS NOT NULL"]

    def identity(self, keys: Iterable[str], partner: str) -> bool:
        """Whether a key names one process and the partner stream has one event per process:
        a host key and process.entity_id, over process starts."""
        ks = set(keys)
        if ENTITY not in ks or not ks & HOST_KEYS:
            return False
        src = self.by_name[self.root(partner)].source
        return isinstance(src, ir.LogSource) and src.category == "process_creation"


def _same(a: ir.Enrich, b: ir.Enrich) -> bool:
    return (a.lookup, a.match, a.add) == (b.lookup, b.match, b.add)


def _lookups(p: ir.Predicate) -> list[ir.InLookup]:
    if isinstance(p, ir.And | ir.Or):
        out: list[ir.InLookup] = []
        for x in p.items:
            out += _lookups(x)
        return out
    if isinstance(p, ir.Not):
        return _lookups(p.item)
    return [p] if isinstance(p, ir.InLookup) else []
