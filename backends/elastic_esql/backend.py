"""The ES|QL Backend: support table, dispatch per detection, header notes.

The target stack is the backend option ``stack`` (``--stack``, default 9.3,
backends/elastic_esql/stack.py): correlations and per-candidate baselines need INLINE STATS
(9.3), lookups on several columns a multi-field LOOKUP JOIN (9.3), ECS array equality
MV_CONTAINS (9.2+).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from backends.base import Backend, CompileError, Context, Support
from backends.comment import one_line
from backends.elastic_esql.absence import AbsenceBuilder
from backends.elastic_esql.aggregate import AggregateBuilder
from backends.elastic_esql.build import E_UNKNOWN_STACK, QueryBuild
from backends.elastic_esql.common import TEMPLATES, lookup_index
from backends.elastic_esql.cooccurrence import CooccurrenceBuilder
from backends.elastic_esql.expr import profile_arrays
from backends.elastic_esql.match import match_first_seen
from backends.elastic_esql.sequence import SequenceBuilder
from backends.elastic_esql.stack import DEFAULT_STACK, STACKS, Stack, oldest_stack, parse_stack
from backends.inline import Env, Inliner, Limits, read_lookups, render_best
from backends.registered_domain import REQUIREMENT, requirements
from compiler import ir
from compiler.diagnostics import Diagnostic

_S = Support


class EsqlBackend(Backend):
    target = "esql"
    extension = ".esql"
    comment = "//"
    profiles = ("ecs",)
    OPTIONS = frozenset({"stack"})

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
            "two labels (approximate), or, when only the stream's filter reads it, a test on "
            "the name proven against the Public Suffix List (backends/inline.py: no EVAL, no "
            "LOOKUP JOIN for lookups only filters read); coalesce: COALESCE; max/min: "
            "GREATEST/LEAST over rotated COALESCEs (siemc ignores nulls); abs: ABS; "
            "extract_ips is unsupported (no all-matches function; use kql or splunk)",
        ),
        ir.Enrich: _S(
            "exact",
            "LOOKUP JOIN siemc-lookup-<name> ON lower-cased keys, EVAL of the added columns; "
            "approximate when several CSV rows share a key (every row is joined, not the first)",
        ),
        ir.Join: _S(
            "exact",
            "one read of both streams (FROM idx | EVAL per-stream flags), INLINE STATS of the "
            "partner's time and added fields BY the join keys (9.3+), the time bound on each "
            "row; on a process identity (host and process.entity_id, partner a process "
            "start: one partner per key) the partner's time by the key, on other keys every "
            "partner time of the key (VALUES, MV_EXPAND) and the copy of the nearest kept "
            "(the earlier at equal distance), its fields grouped by the key and its time "
            "(partners sharing a key and a millisecond: noted, siemc takes the first in input "
            "order)",
        ),
        ir.Match: _S("exact", "FROM ... METADATA _id, _index, _version | WHERE ... | KEEP"),
        ir.Sequence: _S(
            "exact",
            "two steps on one process (by host and process.pid until the process ends, first "
            "step a process start): keyed on process.entity_id, one read of both streams, "
            "INLINE STATS MIN(@timestamp) of the start BY the key (9.3+; before: STATS "
            "VALUES + MV_EXPAND), then STATS of the "
            "earliest second-step event within maxspan (ES|QL has no input order: exact under "
            "docs/semantics.md Process identity, no event of a process before its start); "
            "likewise a first step of process starts keyed on the host and process.entity_id "
            "without until, the second step keyed on the same process or its parent (exact "
            "when a child's events come after its parent's start, noted); two steps from a "
            "process (process.pid or process.entity_id, no until) to its children (the "
            "parent's key) over streams sharing no event: each child pairs with the latest "
            "first step at or before it (STATS VALUES by the key, MV_EXPAND, STATS MAX then "
            "MIN; exact when a child at its parent's millisecond comes after it, noted); other "
            "sequences are unsupported (compile to eql, kql or splunk)",
        ),
        ir.Cooccurrence: _S(
            "approximate",
            "ES|QL has no windowed correlation of different events (no input order, no "
            "per-row windows): each member's events counted per key over hopping buckets of "
            "twice the window every window (MV_EXPAND), a superset that also fires on members "
            "up to twice the window apart and once per bucket; compile to kql, splunk or "
            "sigma (temporal) for the exact correlation",
        ),
        ir.Absence: _S(
            "exact",
            "a forward window (9.3+): INLINE STATS VALUES(@timestamp) of the missing events BY "
            "the keys, MV_EXPAND, a count of those in (t, t + within] per first event, decided "
            "once NOW() reaches t + within",
        ),
        ir.Aggregate: _S(
            "exact",
            "tumbling: STATS ... BY window = BUCKET(@timestamp, size), keys (epoch-aligned); "
            "sliding: hopping buckets of twice the size every size (MV_EXPAND) when the "
            "condition only grows with events (counts, distinct counts, maxima at or above a "
            "number, minima at or below one: a superset), else tumbling buckets (mixed); a "
            "distinct count is exact by a STATS BY the value then a COUNT per group (with "
            "counts, sums, minima and maxima beside it), else COUNT_DISTINCT (HyperLogLog++, "
            "approximate); a multi-valued key puts "
            "the row in each value's group, as siemc; sum/avg/stdev/percentile of a multi-valued "
            "keyword field are approximate (doc values are de-duplicated per document)",
        ),
        ir.Measure: _S(
            "exact",
            "the aggregate's own filter, STATS agg WHERE <filter> (the "
            "stream filter rendering, true exactly where siemc's holds); an exact distinct "
            "count keeps a value when some event holding it satisfies the filter; an exact "
            "percentile ranks only those events; not over a stream join",
        ),
        ir.Step: _S(
            "unsupported",
            "a counted sequence step (EQL's `with runs`): its run is the latest N events of a "
            "key before the next step, which needs an order of rows and a look back per row "
            "that ES|QL does not have (no input order, no per-row windows)",
        ),
        ir.FirstSeen: _S(
            "exact",
            "decided per candidate in the same read (tumbling aggregates over a join or with "
            "first_seen only, sequences, and single-event matches, one row per event by "
            "_index and _id): INLINE STATS VALUES(time) of the history rows "
            "BY the key tuple, MV_EXPAND and a count of the times in [start - lookback, start); "
            "otherwise approximate: INLINE STATS COUNT(*) over [W - lookback, W) for the latest "
            "complete window W (NOW-anchored: one window per run)",
        ),
        ir.Rarity: _S(
            "approximate",
            "aggregates only: INLINE STATS COUNT_DISTINCT(across) of the history rows BY the "
            "keys over [W - lookback, W) for the latest complete window W (NOW-anchored)",
        ),
        ir.Deviation: _S(
            "exact",
            "mean +/- k * sample stdev or a ratio (count and sum products): every window "
            "decided against its own past (9.3+: "
            "INLINE STATS VALUES(window) BY the group, MV_EXPAND, a STATS of the past windows "
            "within the lookback per window); approximate with a percentile (PERCENTILE's "
            "t-digest) or before 9.3: a second STATS over the past windows for the latest "
            "complete window (NOW-anchored: one window per run)",
        ),
    }

    # ------------------------------------------------------------------ entry points
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        # a small static lookup or a derived field only filters read: no LOOKUP JOIN, no EVAL
        return render_best(ctx, analytic, esql_inliner, self._render)

    def _render(self, analytic: ir.Analytic, ctx: Context) -> str:
        build = QueryBuild(analytic, ctx, stack_of(ctx))
        d = analytic.detection
        if isinstance(d, ir.Match) and analytic.baselines:
            commands = match_first_seen(build, d)
        elif isinstance(d, ir.Match):
            commands = build.match(d)
        elif isinstance(d, ir.Aggregate):
            commands = AggregateBuilder(build, d).commands()
        elif isinstance(d, ir.Sequence):
            commands = SequenceBuilder(build, d).commands()
        elif isinstance(d, ir.Absence):
            commands = AbsenceBuilder(build, d).commands()
        elif isinstance(d, ir.Cooccurrence):
            commands = CooccurrenceBuilder(build, d).commands()
        else:
            raise ctx.unsupported(
                type(d).__name__,
                "not expressible in one ES|QL query",
                d.span,
                "compile to eql or kql",
            )
        return TEMPLATES.get_template("query.esql.j2").render(commands=commands)

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        # one_line keeps every header line a single line, so the partition finds the first two
        text = super().wrap(analytic, ctx, query)
        head, _, rest = text.partition("\n")
        second, _, body = rest.partition("\n")
        stack = oldest_stack(query, stack_of(ctx))
        notes = [f"{self.comment} requires Elasticsearch >= {stack.full}"]
        if stack.previews(query):
            notes.append(
                f"{self.comment} uses tech-preview features on {stack.name}: "
                + ", ".join(stack.previews(query))
            )
        if ctx.profile.name == "ecs":
            for reg, src in requirements(analytic):
                notes.append(f"{self.comment} {REQUIREMENT.format(reg=reg, src=src)}")
        for lk in read_lookups(ctx.analytic):
            notes.append(
                f"{self.comment} "
                + one_line(
                    f"lookup '{lk.name}': load {Path(lk.path).name} into lookup-mode "
                    f"index {lookup_index(lk.name)} (fields: each column, siemc_lc_<column> "
                    "lower-cased, siemc_row)"
                )
            )
        return "\n".join([head, second, *notes, body.rstrip("\n")]) + "\n"


_LIMITS = Limits(
    "ES|QL",
    100,
    "keep the EVAL (the field is read outside filters)",
    "keep the LOOKUP JOIN",
)


def esql_inliner(ctx: Context, env: Env) -> Inliner:
    """Lookups and derived fields inlined as ES|QL filters (the ECS registered-domain fields
    filled at ingest read on the ecs profile, as the EVAL would)."""
    name = ctx.profile.name
    return Inliner(ctx, env, _LIMITS, ingest=name == "ecs", arrays=profile_arrays(name))


def stack_of(ctx: Context) -> Stack:
    """The target stack of the compilation (``--stack``; default 9.3)."""
    stack = parse_stack(ctx.options.get("stack"))
    if stack is None:
        span = ctx.analytic.span
        raise CompileError(
            [
                Diagnostic(
                    E_UNKNOWN_STACK,
                    f"unknown Elastic Stack version '{ctx.options.get('stack')}' for esql",
                    span.path,
                    span.line,
                    span.col,
                    1,
                    f"use one of {', '.join(STACKS)} (default {DEFAULT_STACK})",
                    "error",
                )
            ]
        )
    return stack


__all__ = ["EsqlBackend", "stack_of"]
