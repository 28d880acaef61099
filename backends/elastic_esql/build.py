"""The single-stream part of an ES|QL query: FROM, logsource conditions, LOOKUP JOIN
enrichment and membership, derived fields and filters. Detections (aggregates, correlations)
build on it; it imports none of them.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from backends.base import CompileError, Context
from backends.elastic_esql.common import (
    DEFAULT_INDEX,
    METADATA,
    TEMPLATES,
    Pipeline,
    lookup_index,
    lookup_key,
)
from backends.elastic_esql.expr import Renderer, ident, iter_lookups, profile_arrays, profile_types
from backends.elastic_esql.stack import Stack
from compiler import ir
from compiler.diagnostics import Diagnostic
from compiler.evaluator.streams import logsource_predicate

E_NO_INLINE_STATS = "E230"  # the correlation needs INLINE STATS, which the target stack lacks
E_UNKNOWN_STACK = "E231"  # --stack names a version siemc does not know
E_MULTI_KEY_LOOKUP = "E232"  # LOOKUP JOIN on several fields before 9.3


class QueryBuild:
    """Assembles the commands of one analytic."""

    def __init__(self, analytic: ir.Analytic, ctx: Context, stack: Stack):
        self.analytic = analytic
        self.stack = stack
        self.ctx = ctx
        types = profile_types(ctx.profile.name)
        self.r = Renderer(ctx, types, profile_arrays(ctx.profile.name))
        self.r.mv_contains = stack.mv_contains

    # ------------------------------------------------------------------ detection
    def match(self, d: ir.Match) -> list[str]:
        if self.analytic.baselines:
            b = self.analytic.baselines[0]
            raise self.ctx.not_implemented(
                f"{type(b).__name__} baseline on a single-event match", b.span
            )
        p = self.stream(d.stream)
        keep = [*METADATA, "@timestamp", *(f for f in p.fields if f != "@timestamp")]
        return [*p.commands, "KEEP " + ", ".join(ident(f) for f in keep)]

    def needs_inline_stats(self, construct: str, span: ir.Span) -> CompileError:
        return CompileError(
            [
                Diagnostic(
                    E_NO_INLINE_STATS,
                    f"esql on Elastic Stack {self.stack.name} cannot express {construct}: it "
                    "needs INLINE STATS (GA 9.3)",
                    span.path,
                    span.line,
                    span.col,
                    1,
                    "compile with --stack 9.3",
                    "error",
                )
            ]
        )

    # ------------------------------------------------------------------ streams
    def stream(self, name: str) -> Pipeline:
        s = self.analytic.stream(name)
        if isinstance(s.source, str):
            p = self.stream(s.source)
        else:
            p = Pipeline([self.from_command(s.source)])
            p.commands += self.where(self.logsource(s.source, s.span))
        if s.join is not None:
            raise self.ctx.unsupported(
                "stream join",
                "LOOKUP JOIN only joins lookup indices on equal keys, not two event streams",
                s.join.span,
                "compile to kql or splunk",
            )
        for en in s.enrich:
            self.enrich(en, p)
        if s.derive:
            self.derive(s.derive, p)
        for lk in iter_lookups(s.filter):
            self.in_lookup(lk, p)
        p.commands += self.where(s.filter)
        for f in _filter_fields(s.filter):
            p.note(f)
        return p

    def from_command(self, ls: ir.LogSource) -> str:
        return self.from_command_for(self.index_of(ls))

    @staticmethod
    def from_command_for(index: str) -> str:
        return f"FROM {index} METADATA {', '.join(METADATA)}"

    def index_of(self, ls: ir.LogSource) -> str:
        keys = []
        if ls.product and ls.service:
            keys.append(f"{ls.product}/{ls.service}")
        if ls.category and ls.product:
            keys.append(f"{ls.category}/{ls.product}")
        keys += [k for k in (ls.product, ls.category) if k]
        index = DEFAULT_INDEX
        for k in keys:
            src = self.ctx.profile.source(k)
            if src and src.get("index"):
                index = str(src["index"])
                break
        return index

    def logsource(self, ls: ir.LogSource, span: ir.Span) -> ir.Predicate:
        """The ECS condition of docs/semantics.md (the evaluator's own, every category of
        Sigma's taxonomy), as IR at the stream's position (rendered by the filter rules)."""
        return ir.And(tuple(_at(p, span) for p in _conjuncts(logsource_predicate(ls))))

    def where(self, p: ir.Predicate) -> list[str]:
        lines = self.r.where(p)
        lines = [x for x in lines if x != "true"]
        if not lines:
            return []
        return ["WHERE " + "\n    AND ".join(lines)]

    # ------------------------------------------------------------------ derive
    def derive(self, assigns: tuple[tuple[str, ir.Expr], ...], p: Pipeline) -> None:
        parts: list[str] = []
        helpers: list[str] = []
        for name, e in assigns:
            text, kind = self.r.expr(e)
            if kind == "boolean":
                text = f"COALESCE({text}, false)"  # a comparison with null is false, not null
            parts += [f"{h} = {t}" for h, t in self.r.hoisted]
            helpers += [h for h, _ in self.r.hoisted]
            self.r.hoisted.clear()
            target = ident(self.ctx.field(name, e.span))
            if text != target:  # an ECS column already holding the value needs no EVAL
                parts.append(f"{target} = {text}")
            self.r.types[name] = kind if kind != "null" else "keyword"
            # A column computed from an array field keeps its values: test it as an array.
            mv = self.r.mv_expr(e)
            self.r.arrays = self.r.arrays | {name} if mv else self.r.arrays - {name}
            p.note(name)
        if parts:
            p.commands.append("EVAL " + ",\n    ".join(parts))
        if helpers:
            p.commands.append("DROP " + ", ".join(helpers))

    # ------------------------------------------------------------------ lookups
    def _join(
        self,
        lookup_name: str,
        match: tuple[tuple[str, str], ...],
        assigns: list[str],
        span: ir.Span,
        construct: str,
    ) -> list[str]:
        lk = self.analytic.lookup(lookup_name)
        self._check_columns(lk, span)
        if len(match) > 1 and not self.stack.multi_field_lookup_join:
            raise CompileError(
                [
                    Diagnostic(
                        E_MULTI_KEY_LOOKUP,
                        f"esql on Elastic Stack {self.stack.name} cannot join lookup "
                        f"'{lk.name}' on {len(match)} columns: LOOKUP JOIN takes several "
                        "fields from 9.3 (Elastic's rule validator)",
                        span.path,
                        span.line,
                        span.col,
                        1,
                        "compile with --stack 9.3",
                        "error",
                    )
                ]
            )
        keys = []
        for column, fld in match:
            text = self.r.text_of(fld, span)
            keys.append(f"{lookup_key(column)} = TO_LOWER({text})")
            if fld in self.r.arrays:
                self.ctx.approximate(
                    construct,
                    f"'{fld}' is multi-valued in ECS: LOOKUP JOIN matches no row for a "
                    "multi-valued key, where siemc matches when any value does",
                    span,
                )
        idx = [lk.columns.index(c) for c, _ in match]
        seen: set[tuple[str, ...]] = set()
        for row in lk.rows:
            key = tuple(row[i].lower() for i in idx)
            if key in seen:
                self.ctx.approximate(
                    construct,
                    f"several rows of {Path(lk.path).name} have the key "
                    f"{', '.join(key)}: LOOKUP JOIN repeats the event once per matching row, "
                    "where siemc uses the first matching row",
                    span,
                )
                break
            seen.add(key)
        added = {a.split(" = ", 1)[0] for a in assigns}
        drop = [ident(c) for c in lk.columns if ident(c) not in added]
        drop += ["siemc_lc_*", "siemc_row"]
        text = TEMPLATES.get_template("lookup_join.esql.j2").render(
            keys=keys,
            index=lookup_index(lk.name),
            on=[lookup_key(c) for c, _ in match],
            assigns=assigns,
            drop=drop,
        )
        return [line for line in text.splitlines() if line]

    def _check_columns(self, lk: ir.Lookup, span: ir.Span) -> None:
        # LOOKUP JOIN overwrites event columns named like lookup columns.
        used = set(_analytic_fields(self.analytic))
        clash = sorted(c for c in lk.columns if c in used)
        if clash:
            raise self.ctx.unsupported(
                f"lookup '{lk.name}'",
                f"column(s) {', '.join(clash)} have the name of event fields, which LOOKUP JOIN "
                "would overwrite",
                span,
                "rename the CSV column",
            )

    def enrich(self, en: ir.Enrich, p: Pipeline) -> None:
        assigns = []
        for column, fld in en.add:
            assigns.append(f"{ident(self.ctx.field(fld, en.span))} = {ident(column)}")
            self.r.types[fld] = "keyword"
            p.note(fld)
        p.commands += self._join(en.lookup, en.match, assigns, en.span, "lookup enrichment")

    def in_lookup(self, lk: ir.InLookup, p: Pipeline) -> None:
        name = self.r.fresh("in_" + re.sub(r"[^A-Za-z0-9_]", "_", lk.lookup))
        self.r.lookup_columns[id(lk)] = name
        p.commands += self._join(
            lk.lookup, lk.match, [f"{name} = siemc_row IS NOT NULL"], lk.span, "lookup membership"
        )


def _filter_fields(p: ir.Predicate) -> list[str]:
    out: list[str] = []
    if isinstance(p, ir.And | ir.Or):
        for x in p.items:
            out += _filter_fields(x)
    elif isinstance(p, ir.Not):
        out += _filter_fields(p.item)
    elif isinstance(p, ir.InLookup):
        out += [f for _, f in p.match]
    else:
        out.append(p.field)
    return out


def _analytic_fields(a: ir.Analytic) -> list[str]:
    out: list[str] = ["@timestamp"]
    for s in a.streams:
        out += _filter_fields(s.filter)
        out += [f for f, _ in s.derive]
        for en in s.enrich:
            out += [f for _, f in en.match] + [f for _, f in en.add]
    d = a.detection
    if isinstance(d, ir.Aggregate):
        out += list(d.keys) + [m.field for m in d.measures if m.field]
    return out


def _conjuncts(p: ir.Predicate) -> list[ir.Predicate]:
    if isinstance(p, ir.And):
        return [q for item in p.items for q in _conjuncts(item)]
    return [p]


def _at(p: ir.Predicate, span: ir.Span) -> ir.Predicate:
    """``p`` with every node placed at ``span``, so a diagnostic about it points at the stream."""
    if isinstance(p, ir.And | ir.Or):
        return dataclasses.replace(p, items=tuple(_at(i, span) for i in p.items), span=span)
    return dataclasses.replace(p, span=span) if hasattr(p, "span") else p
