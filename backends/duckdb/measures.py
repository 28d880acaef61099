"""Aggregate measures as DuckDB SQL, for tumbling (GROUP BY) and sliding (window function)
aggregates alike; conditional measures (`where:`) as FILTER (WHERE ...) clauses."""

from __future__ import annotations

from fractions import Fraction

from backends.base import Context
from backends.duckdb.exprs import ExprRenderer
from backends.duckdb.predicates import PredicateRenderer
from backends.duckdb.sql import col
from backends.duckdb.streams import lookup_cte
from compiler import ir


def cond_column(m: ir.Measure) -> str:
    """The per-row column holding whether conditional measure ``m``'s filter holds."""
    return col("cond:" + m.name)


def conditions(d: ir.Aggregate, ctx: Context) -> str:
    """``, <filter> AS "cond:<measure>"`` per conditional measure of ``d``: computed once per
    row, beside the stream's columns, for the FILTER clauses."""
    preds = PredicateRenderer(ctx, lookup_cte)
    return "".join(
        f", coalesce({preds.render(m.where)}, false) AS {cond_column(m)}"
        for m in d.measures
        if m.where is not None
    )


def measure_sql(m: ir.Measure, row: str = "", over: str = "") -> str:
    """The SQL aggregate of measure ``m`` over the rows of one group window: the rows are read
    through ``row`` (``p.`` in a self-join), and ``over`` makes it a window function. A
    conditional measure filters each aggregate it is made of (FILTER (WHERE ...)); list()
    of no row is NULL, so a conditional distinct count of nothing is coalesced to 0."""
    cond = f"{row}{cond_column(m)}" if m.where is not None else ""
    flt = f" FILTER (WHERE {cond})" if cond else ""
    w = f" {over}" if over else ""
    if m.field is None:
        return f"count(*){flt}{w}"
    f = f"{row}{col(m.field)}"
    if m.kind == "count":
        return f"count(*) FILTER (WHERE {cond + ' AND ' if cond else ''}NOT siemc_missing({f})){w}"
    if m.kind == "distinct":
        n = f"len(list_distinct(flatten(list(siemc_keys({f})){flt}{w})))"
        return f"coalesce({n}, 0)" if cond else n
    if m.kind == "sum":
        return f"sum(siemc_sum1({f})){flt}{w}"
    if m.kind == "min":
        return f"min(siemc_min1({f})){flt}{w}"
    if m.kind == "max":
        return f"max(siemc_max1({f})){flt}{w}"
    if m.kind == "avg":
        return (
            f"CASE WHEN sum(siemc_count1({f})){flt}{w} > 0 "
            f"THEN sum(siemc_sum1({f})){flt}{w} / sum(siemc_count1({f})){flt}{w} END"
        )
    if m.kind == "stdev":
        return f"list_aggregate(flatten(list(siemc_nums({f})){flt}{w}), 'stddev_samp')"
    # percentile: nearest rank, with P the decimal written (99.9 = 999/10 exactly)
    p = Fraction(str(m.p)) / 100
    return (
        f"siemc_nearest_rank(flatten(list(siemc_nums({f})){flt}{w}), "
        f"{p.numerator}, {p.denominator})"
    )


def computed(
    d: ir.Aggregate, ctx: Context, prev: str
) -> tuple[list[tuple[str, str]], str, ExprRenderer]:
    """One CTE per ``compute`` entry after the CTE ``prev`` (later entries read earlier ones as
    columns, not as repeated text): the CTEs, the last one's name, and the renderer ``having``
    uses. compute/having read the group's measures and key values; any other field is null."""
    known = {m.name for m in d.measures}

    def measure_ref(ref: ir.MeasureRef) -> str:
        if ref.name in known:
            return col("measure:" + ref.name)
        raise ctx.not_implemented(f"measure reference {ref.name!r}", ref.span)

    def field_ref(ref: ir.FieldRef) -> str:
        return col(ref.name) if ref.name in d.keys and ref.step is None else "NULL::JSON"

    exprs = ExprRenderer(ctx, field=field_ref, measure=measure_ref)
    ctes = []
    for i, (name, e) in enumerate(d.compute, 1):
        sql = f"SELECT *, {exprs.render(e)} AS {col('measure:' + name)} FROM {prev}"
        ctes.append((f'"computed:{i}"', sql))
        prev = f'"computed:{i}"'
        known.add(name)
    return ctes, prev, exprs
