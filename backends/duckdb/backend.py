"""The DuckDB backend: an analytic as one DuckDB SQL script, run locally as an engine.

The script defines the macros it calls (backends/duckdb/macros.py), then one ``WITH`` query:
the lookups as inline ``VALUES`` tables, each stream as a chain of CTEs, the detection last. It
reads a relation ``events`` (``compiler.engines.run_duckdb`` creates it from fixtures or from
ECS JSON Lines / Parquet files) with the columns ``_ts`` (BIGINT, ms since the epoch, UTC),
``_seq`` (BIGINT, input order: events are ordered by ``(_ts, _seq)``), ``_id`` (VARCHAR) and
one JSON column per field :func:`columns` names, NULL where the event lacks the field.
"""

from __future__ import annotations

from typing import ClassVar

from backends.base import Backend, Context, Support
from backends.duckdb import detections, macros
from backends.duckdb.absence import absence
from backends.duckdb.baselines import Baselines
from backends.duckdb.sql import col
from backends.duckdb.streams import StreamRenderer, lookup_cte, lookup_table
from compiler import ir
from compiler.evaluator.streams import logsource_predicate

_EXACT = "exact: the macros follow the evaluator's value rules (docs/duckdb.md)"


def columns(analytic: ir.Analytic) -> tuple[str, ...]:
    """Every field the compiled query reads or writes: the JSON columns ``events`` must have."""
    out: dict[str, None] = {}
    for s in analytic.streams:
        if isinstance(s.source, ir.LogSource):
            out.update(dict.fromkeys(ir.predicate_fields(logsource_predicate(s.source))))
        if s.join is not None:
            out.update(dict.fromkeys(s.join.on + s.join.add))
        for en in s.enrich:
            out.update(dict.fromkeys(f for _, f in en.match + en.add))
        for name, e in s.derive:
            out.update(dict.fromkeys(ir.field_names(e, steps=False)))
            out[name] = None
        out.update(dict.fromkeys(ir.predicate_fields(s.filter)))
    for b in analytic.baselines:
        if isinstance(b, ir.FirstSeen | ir.Rarity):
            out.update(dict.fromkeys(b.keys + b.current))
        if isinstance(b, ir.Rarity) and b.across != "@days":
            out[b.across] = None
    d = analytic.detection
    if isinstance(d, ir.Absence):
        out.update(dict.fromkeys(d.first.keys + d.missing.keys))
    if isinstance(d, ir.Aggregate):
        out.update(dict.fromkeys(d.keys))
        out.update(dict.fromkeys(m.field for m in d.measures if m.field is not None))
        for m in d.measures:
            if m.where is not None:
                out.update(dict.fromkeys(ir.predicate_fields(m.where)))
    return tuple(sorted(out))


class DuckdbBackend(Backend):
    target: ClassVar[str] = "duckdb"
    extension: ClassVar[str] = ".sql"
    comment: ClassVar[str] = "--"
    profiles: ClassVar[tuple[str, ...]] = ("duckdb",)
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"ties"})
    SUPPORT: ClassVar[dict[type, Support]] = {
        ir.Eq: Support("exact", "list_has_any over the lower-cased strings, numbers, booleans"),
        ir.StrMatch: Support("exact", "contains / starts_with / ends_with on lower()"),
        ir.Regex: Support("exact", "regexp_matches with the pattern re-spelled for RE2"),
        ir.Compare: Support("exact", "over the numeric elements (numeric strings coerced)"),
        ir.Exists: Support("exact", "siemc_missing: NULL, JSON null, [] and [null]"),
        ir.Cidr: Support("exact", "addresses parsed in SQL (IPv4, IPv6, IPv4-mapped)"),
        ir.InLookup: Support("exact", "EXISTS over the CSV rows inlined as VALUES"),
        ir.And: Support("exact", "AND of two-valued predicates"),
        ir.Or: Support("exact", "OR of two-valued predicates"),
        ir.Not: Support("exact", "NOT over two-valued predicates (holds on missing fields)"),
        ir.Literal_: Support("exact", "JSON literals"),
        ir.FieldRef: Support("exact", "JSON columns named by the ECS field"),
        ir.MeasureRef: Support("exact", "the measure's column"),
        ir.BinOp: Support("exact", "macros with the language's null and multi-value rules"),
        ir.UnaryOp: Support("exact", "macros with the language's null rules"),
        ir.Call: Support(
            "exact",
            "lower/upper/basename/coalesce/max/min/abs as macros; registered_domain and "
            "extract_ips call the evaluator's own functions, registered in DuckDB",
        ),
        ir.Enrich: Support("exact", "LEFT JOIN LATERAL to the first matching CSV row"),
        ir.Join: Support("exact", "JOIN ... QUALIFY row_number() = 1 (nearest in time)"),
        ir.Match: Support("exact", "one row per event"),
        ir.Sequence: Support("not_implemented", "the evaluator runs sequences"),
        ir.Cooccurrence: Support("not_implemented", "the evaluator runs co-occurrences"),
        ir.Absence: Support(
            "exact", "NOT EXISTS over the missing stream, decided at the watermark or now"
        ),
        ir.Aggregate: Support(
            "exact",
            "tumbling: GROUP BY the epoch-aligned window; sliding: a recursive query restarts "
            "each group's window after an alert",
        ),
        ir.Measure: Support(
            "exact",
            "the filter as a column of each row, and FILTER (WHERE it) on each aggregate the "
            "measure is made of (tumbling and sliding)",
        ),
        ir.FirstSeen: Support(
            "exact", "NOT EXISTS over the history CTE in [start - lookback, start)"
        ),
        ir.Rarity: Support(
            "exact", "count(DISTINCT across) over the history CTE in [start - lookback, start)"
        ),
        ir.Deviation: Support(
            "exact",
            "tumbling: the group's past windows as a list, judged by the evaluator's rule "
            "(a Python function siemc registers in DuckDB)",
        ),
        ir.Step: Support(
            "not_implemented",
            "a counted sequence step (EQL's `with runs`); the evaluator runs it",
        ),
    }

    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        ctes: list[tuple[str, str]] = [
            (lookup_cte(lk.name), lookup_table(lk)) for lk in analytic.lookups
        ]
        streams = StreamRenderer(ctx)
        for s in analytic.streams:
            ctes += streams.ctes(s)
        baselines = Baselines(analytic, ctx)
        ctes += baselines.ctes()
        d = analytic.detection
        if isinstance(d, ir.Match):
            *more, (_, final) = detections.match(d, baselines)
            ctes += more
        elif isinstance(d, ir.Absence):
            if analytic.baselines:
                raise ctx.not_implemented("baseline of an absence", analytic.baselines[0].span)
            final = absence(d, analytic, ctx)
        elif isinstance(d, ir.Aggregate):
            *more, (_, final) = detections.aggregate(d, ctx, baselines)
            ctes += more
        else:  # check_support refused the other detections
            raise ctx.not_implemented(type(d).__name__, d.span)
        recursive = " RECURSIVE" if any(name == '"chain"' for name, _ in ctes) else ""
        # a tumbling aggregate's alerts are read twice (their rows, and the semi-join picking
        # the evidence) and are few: computed once rather than judged twice over every group
        body = f"WITH{recursive}\n" + ",\n".join(
            f"{name} AS{' MATERIALIZED' if name == '"alerts"' else ''} (\n  {sql}\n)"
            for name, sql in ctes
        )
        query = f"{body}\n{final}\n"
        return macros.prelude(query) + query

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        lines = super().wrap(analytic, ctx, query).split("\n")
        at = next(i for i, ln in enumerate(lines) if not ln.startswith(self.comment))
        cols = ", ".join(col(c) for c in columns(analytic))
        lines.insert(at, f"{self.comment} reads events(_ts, _seq, _id, {cols}): fields are JSON")
        return "\n".join(lines)
