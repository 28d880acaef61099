"""Elastic ES|QL backend: one piped query per analytic (``FROM ... | WHERE ... | STATS ...``).

Stack floor: Elasticsearch 9.3 (LOOKUP JOIN on several fields, MV_CONTAINS, INLINE STATS; the
``detection-rules-esql-py`` validator gates these per version). Lookups are LOOKUP JOINs against
lookup-mode indices named ``siemc-lookup-<name>``, loaded from the analytic's CSV with, for every
column ``c``: ``c`` (the cell text, empty cells left out), ``siemc_lc_<c>`` (the cell text
lower-cased, because siemc matches lookups case-insensitively) and ``siemc_row`` (the 1-based CSV
row). See docs/semantics.md for the meaning reproduced here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import jinja2

from backends.base import Backend, Context, Support
from backends.comment import one_line
from backends.elastic_esql_agg import AggregateBuilder
from backends.elastic_esql_expr import (
    STRINGS,
    Renderer,
    ident,
    iter_lookups,
    profile_arrays,
    profile_types,
)
from backends.registered_domain import REQUIREMENT, requirements
from compiler import ir

MIN_STACK = "9.3.0"
DEFAULT_INDEX = "logs-*"
METADATA = ("_id", "_index", "_version")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates" / "esql"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)

_S = Support


def lookup_index(name: str) -> str:
    """Index names are lower-case, without the characters Elasticsearch forbids."""
    return "siemc-lookup-" + re.sub(r"[^a-z0-9_-]", "-", name.lower())


def lookup_key(column: str) -> str:
    return "siemc_lc_" + re.sub(r"[^A-Za-z0-9_]", "_", column)


@dataclass
class Pipeline:
    """The commands of one stream and the event fields it makes available."""

    commands: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)

    def note(self, name: str) -> None:
        if name not in self.fields:
            self.fields.append(name)


class EsqlBackend(Backend):
    target = "esql"
    extension = ".esql"
    comment = "//"
    profiles = ("ecs",)

    SUPPORT: ClassVar[dict[type, Support]] = {
        ir.Eq: _S(
            "exact",
            'TO_LOWER(f) == "v" / IN (...) (|cased: f == "v"); numbers compare numerically, '
            "keyword fields through TO_DOUBLE (approximate: Java number parsing); ECS array "
            "fields (event.category, ...) with MV_CONTAINS",
        ),
        ir.StrMatch: _S(
            "exact",
            'TO_LOWER(f) LIKE "*v*" with * ? \\ escaped (|cased: LIKE, STARTS_WITH, ENDS_WITH); '
            "approximate on ECS array fields (LIKE on a multi-value is null)",
        ),
        ir.Regex: _S(
            "exact",
            "RLIKE with the Python pattern translated to an anchored Lucene regex (.* added "
            "where unanchored, . as [^\\n], \\d \\w \\s as ASCII classes, TO_LOWER for "
            "case-insensitive); lookaround, backreferences and \\b are unsupported; approximate "
            "on ECS array fields (RLIKE on a multi-value is null)",
        ),
        ir.Compare: _S(
            "exact",
            "f > n on numeric fields; keyword fields through TO_DOUBLE (approximate); ECS array "
            "fields as MV_MAX(f) > n / MV_MIN(f) < n (some value passes)",
        ),
        ir.Exists: _S("exact", "f IS NOT NULL / f IS NULL"),
        ir.Cidr: _S(
            "exact",
            "CIDR_MATCH(ip, networks) with host bits cleared; IPv6 networks covering "
            "::ffff:0:0/96 are approximate (Elasticsearch stores mapped addresses as IPv4); "
            "approximate on ECS array fields (CIDR_MATCH on a multi-value is null)",
        ),
        ir.InLookup: _S(
            "exact",
            "LOOKUP JOIN siemc-lookup-<name> ON lower-cased keys, then siemc_row IS NOT NULL; "
            "approximate when several CSV rows share a key (LOOKUP JOIN repeats the event) or "
            "a key is an ECS array field (a multi-valued key matches no row)",
        ),
        ir.And: _S("exact", "AND (top-level conjuncts one per WHERE line)"),
        ir.Or: _S("exact", "OR; null operands read as false in a WHERE"),
        ir.Not: _S(
            "exact",
            "negation pushed to the atoms, each negated atom written (f IS NULL OR NOT ...) "
            "because ES|QL's NOT null is null where siemc's not holds",
        ),
        ir.Literal_: _S("exact", 'ES|QL literals; strings escape \\ " \\n \\r \\t'),
        ir.FieldRef: _S("exact", "the ECS column (back-quoted when not an identifier)"),
        ir.MeasureRef: _S("exact", "the STATS column of the measure"),
        ir.BinOp: _S(
            "exact",
            "arithmetic with / as CASE(b == 0, null, TO_DOUBLE(a) / b); string comparisons "
            "through TO_LOWER; and/or with COALESCE(x, false) where null must read as false",
        ),
        ir.UnaryOp: _S("exact", "-x; not as NOT COALESCE(x, false)"),
        ir.Call: _S(
            "exact",
            "lower/upper: TO_LOWER/TO_UPPER; basename: REPLACE(x, regex, ''); "
            "registered_domain: the ECS <entity>.registered_domain Elastic fills at ingest "
            "with the Public Suffix List for ECS name fields (destination.domain, "
            "dns.question.name, ...: a requirement noted in the artifact), otherwise the last "
            "two labels (approximate); coalesce: COALESCE; max/min: "
            "GREATEST/LEAST over rotated COALESCEs (siemc ignores nulls); abs: ABS; "
            "extract_ips is unsupported (no all-matches function; use kql or splunk)",
        ),
        ir.Enrich: _S(
            "exact",
            "LOOKUP JOIN siemc-lookup-<name> ON lower-cased keys, EVAL of the added columns; "
            "approximate when several CSV rows share a key (every row is joined, not the first)",
        ),
        ir.Join: _S(
            "unsupported",
            "LOOKUP JOIN joins a lookup index on equal keys only: no join of two event streams "
            "within a time bound; compile to kql or splunk",
        ),
        ir.Match: _S("exact", "FROM ... METADATA _id, _index, _version | WHERE ... | KEEP"),
        ir.Sequence: _S(
            "unsupported",
            "ES|QL has no ordered correlation of events; compile to eql (sequence), kql or sigma",
        ),
        ir.Cooccurrence: _S(
            "unsupported",
            "ES|QL has no windowed correlation of different events; compile to kql, splunk or "
            "sigma (temporal)",
        ),
        ir.Absence: _S(
            "unsupported",
            "ES|QL cannot test that no event followed another; compile to eql, kql or splunk",
        ),
        ir.Aggregate: _S(
            "exact",
            "tumbling: STATS ... BY window = BUCKET(@timestamp, size), keys (epoch-aligned); "
            "sliding: approximated by tumbling buckets of the same size; a multi-valued key puts "
            "the row in each value's group, as siemc; sum/avg/stdev/percentile of a multi-valued "
            "keyword field are approximate (doc values are de-duplicated per document)",
        ),
        ir.FirstSeen: _S(
            "approximate",
            "aggregates only: INLINE STATS COUNT(*) of the history rows BY the keys over "
            "[W - lookback, W) for the latest complete window W (NOW-anchored: one window per run)",
        ),
        ir.Rarity: _S(
            "approximate",
            "aggregates only: INLINE STATS COUNT_DISTINCT(across) of the history rows BY the "
            "keys over [W - lookback, W) for the latest complete window W (NOW-anchored)",
        ),
        ir.Deviation: _S(
            "approximate",
            "a second STATS over the group's past windows (mean + k * sample stdev from "
            "STD_DEV, percentile from PERCENTILE's t-digest) for the latest complete window "
            "(NOW-anchored: one window per run)",
        ),
    }

    # ------------------------------------------------------------------ entry points
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        build = _Build(self, analytic, ctx)
        commands = build.detection()
        return _TEMPLATES.get_template("query.esql.j2").render(commands=commands)

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        # one_line keeps every header line a single line, so the partition finds the first two
        text = super().wrap(analytic, ctx, query)
        head, _, rest = text.partition("\n")
        second, _, body = rest.partition("\n")
        notes = [f"{self.comment} requires Elasticsearch >= {MIN_STACK}"]
        if ctx.profile.name == "ecs":
            for reg, src in requirements(analytic):
                notes.append(f"{self.comment} {REQUIREMENT.format(reg=reg, src=src)}")
        for lk in analytic.lookups:
            notes.append(
                f"{self.comment} "
                + one_line(
                    f"lookup '{lk.name}': load {Path(lk.path).name} into lookup-mode "
                    f"index {lookup_index(lk.name)} (fields: each column, siemc_lc_<column> "
                    "lower-cased, siemc_row)"
                )
            )
        return "\n".join([head, second, *notes, body.rstrip("\n")]) + "\n"


class _Build:
    """Assembles the commands of one analytic."""

    def __init__(self, backend: EsqlBackend, analytic: ir.Analytic, ctx: Context):
        self.backend = backend
        self.analytic = analytic
        self.ctx = ctx
        types = profile_types(ctx.profile.name)
        self.r = Renderer(ctx, types, profile_arrays(ctx.profile.name))

    # ------------------------------------------------------------------ detection
    def detection(self) -> list[str]:
        d = self.analytic.detection
        if isinstance(d, ir.Match):
            if self.analytic.baselines:
                b = self.analytic.baselines[0]
                raise self.ctx.not_implemented(
                    f"{type(b).__name__} baseline on a single-event match", b.span
                )
            p = self.stream(d.stream)
            keep = [*METADATA, "@timestamp", *(f for f in p.fields if f != "@timestamp")]
            return [*p.commands, "KEEP " + ", ".join(ident(f) for f in keep)]
        if isinstance(d, ir.Aggregate):
            return AggregateBuilder(self, d).commands()
        raise self.ctx.unsupported(
            type(d).__name__, "not expressible in one ES|QL query", d.span, "compile to eql or kql"
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
        return f"FROM {index} METADATA {', '.join(METADATA)}"

    def logsource(self, ls: ir.LogSource, span: ir.Span) -> ir.Predicate:
        """The ECS condition of docs/semantics.md, as IR (rendered by the filter rules)."""
        conds: list[ir.Predicate] = []

        def eq(f: str, v: str) -> ir.Eq:
            return ir.Eq(f, (v,), span=span)

        cat = ls.category
        if cat == "process_creation":
            conds += [eq("event.category", "process"), eq("event.type", "start")]
        elif cat == "network_connection":
            conds += [eq("event.category", "network"), eq("event.type", "connection")]
        elif cat == "dns_query":
            conds += [eq("event.category", "network"), ir.Exists("dns.question.name", span=span)]
        elif cat == "network_flow":
            conds += [
                eq("event.category", "network"),
                ir.Or(
                    (
                        ir.Exists("source.bytes", span=span),
                        ir.Exists("destination.bytes", span=span),
                    )
                ),
            ]
        elif cat is not None:  # lowering rejects other categories
            raise self.ctx.not_implemented(f"logsource category '{cat}'", span)
        if ls.product in ("windows", "linux", "macos"):
            conds.append(eq("host.os.type", ls.product))
        elif ls.product:
            conds.append(eq("event.module", ls.product))
        if ls.service and ls.product:
            conds.append(eq("event.dataset", f"{ls.product}.{ls.service}"))
        elif ls.service:
            conds.append(
                ir.Or(
                    (
                        eq("event.dataset", ls.service),
                        ir.StrMatch("event.dataset", "endswith", ("." + ls.service,), span=span),
                    )
                )
            )
        return ir.And(tuple(conds))

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
            parts.append(f"{ident(self.ctx.field(name, e.span))} = {text}")
            self.r.types[name] = kind if kind != "null" else "keyword"
            # A column computed from an array field keeps its values: test it as an array.
            mv = self.r.mv_expr(e)
            self.r.arrays = self.r.arrays | {name} if mv else self.r.arrays - {name}
            p.note(name)
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
        text = _TEMPLATES.get_template("lookup_join.esql.j2").render(
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


__all__ = ["STRINGS", "EsqlBackend", "Pipeline", "lookup_index", "lookup_key"]
