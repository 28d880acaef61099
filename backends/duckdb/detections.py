"""Detections as the final SELECT: one row per alert.

Every query returns the same columns, which ``compiler.engines.run_duckdb`` reads: ``_start``
and ``_end`` (ms), one JSON column per key field (named by the field, the value as the group's
first event holds it), one JSON column per measure and computed value (``measure:<name>``)
and ``_evidence`` (event ids in time order).
"""

from __future__ import annotations

from backends.base import Context
from backends.duckdb import sliding
from backends.duckdb.baselines import Baselines
from backends.duckdb.measures import computed, conditions, measure_sql
from backends.duckdb.sql import col
from backends.duckdb.streams import stream_cte
from compiler import ir


def match(d: ir.Match, baselines: Baselines) -> list[tuple[str, str]]:
    """CTEs (the baselines') and the final SELECT (named ``""``) of a match."""
    ctes, holds = baselines.match_ctes(stream_cte(d.stream))
    where = "".join(f"\n  {'WHERE' if i == 0 else 'AND'} {c}" for i, c in enumerate(holds))
    final = (
        "SELECT _ts AS _start, _ts AS _end, [_id] AS _evidence\n"
        f"FROM {stream_cte(d.stream)} e{where}\nORDER BY _ts, _seq"
    )
    return [*ctes, ("", final)]


# (_ts, _seq) as one number, ordered as the pair (_seq is below 2**63 and never negative):
# arg_min by a HUGEINT is several times cheaper than by a STRUCT.
_ORDER = "_ts::HUGEINT * 18446744073709551616 + _seq"


def _key(i: int) -> str:
    return col(f"key:{i}")


def aggregate(d: ir.Aggregate, ctx: Context, baselines: Baselines) -> list[tuple[str, str]]:
    """CTEs and the final SELECT (named ``""``) of an aggregate; ``baselines`` filter the
    alerts (after consumption: a sliding window's alert empties it whether it is kept or not)."""
    if d.window.kind == "sliding":
        return sliding.aggregate(d, ctx, baselines)
    size = d.window.size_ms
    keys = list(d.keys)
    for k in keys:
        ctx.field(k, d.span)
    for m in d.measures:
        if m.field is not None:
            ctx.field(m.field, m.span)
    # One row per combination of key elements: one SELECT-list unnest per level (a lateral
    # unnest in FROM is decorrelated into hash joins on the JSON columns, several times slower).
    # An event whose every key is one plain string (the commonest) is its only combination, its
    # key the string as JSON (siemc_keys' fast path): no unnest.
    rows = (
        f"SELECT *, _ts - (_ts % {size} + {size}) % {size} AS _window{conditions(d, ctx)} "
        f"FROM {stream_cte(d.stream)}"
    )
    if keys:
        plain = "coalesce(" + " AND ".join(f"siemc_plain({col(k)})" for k in keys) + ", false)"
        scalar = "".join(f", to_json(siemc_str({col(k)})) AS {_key(i)}" for i, k in enumerate(keys))
        unnested = f"{rows} WHERE NOT {plain}"
        for i, k in enumerate(keys):
            unnested = f"SELECT *, unnest(siemc_keys({col(k)})) AS {_key(i)} FROM ({unnested})"
        grouped = f"SELECT *{scalar} FROM ({rows}) WHERE {plain}\n  UNION ALL\n  {unnested}"
    else:
        grouped = rows
    group_by = ", ".join(["_window"] + [_key(i) for i in range(len(keys))])
    # The key values as the group's first event holds them (arg_min by time and input order):
    # for the alerting groups only (beside their evidence), unless compute, having or a
    # baseline reads them
    reads_keys = any(
        ir.field_names(e) for e in [*(e for _, e in d.compute), *([d.having] if d.having else [])]
    )
    late = not reads_keys and not ctx.analytic.baselines
    firsts = "".join(
        f",\n    arg_min(siemc_raw({col(k)}, {_key(i)}), {_ORDER}) AS {col(k)}"
        for i, k in enumerate(keys)
    )
    measures = "".join(
        f",\n    to_json({measure_sql(m)}) AS {col('measure:' + m.name)}" for m in d.measures
    )
    windows = (
        f"SELECT _window{''.join(f', {_key(i)}' for i in range(len(keys)))}"
        f"{'' if late else firsts}{measures}\n"
        f"  FROM grouped\n  GROUP BY {group_by}"
    )
    comp, prev, exprs = computed(d, ctx, '"windows"')
    ctes = [('"grouped"', grouped), ('"windows"', windows), *comp]
    outs = [f"_window + {size} AS _end"] + [col(k) for k in keys]
    outs += [col("measure:" + m.name) for m in d.measures]
    outs += [col("measure:" + n) for n, _ in d.compute]
    kcols = [_key(i) for i in range(len(keys))]
    conds = [] if d.having is None else [exprs.truth(d.having)]
    conds += baselines.holds("a._window", lambda f: (f"a.{kcols[keys.index(f)]}", True))
    conds += baselines.deviates(d, prev, kcols)
    where = "".join(f"\n  {'WHERE' if i == 0 else 'AND'} {c}" for i, c in enumerate(conds))
    ctes.append(('"alerts"', f"SELECT * FROM {prev} a{where}"))
    # Evidence only for the groups that alert: an ordered list per group of every window
    # costs more than the whole aggregation when few groups fire.
    using = ", ".join(["_window"] + [_key(i) for i in range(len(keys))])
    # option `ties`: how many of an alert's events share their time with another, for a run
    # over events whose order among equal times is unknown (compiler/engines/duckdb_files.py)
    ties = ", count(*) - count(DISTINCT _ts) AS _ties" if ctx.options.get("ties") else ""
    ctes.append(
        (
            '"evidence"',
            f"SELECT {using}, list(_id ORDER BY _ts, _seq) AS _evidence{ties}"
            f"{firsts if late else ''}\n"
            f"  FROM grouped SEMI JOIN alerts USING ({using})\n  GROUP BY {using}",
        )
    )
    final = (
        "SELECT _window AS _start, "
        + ", ".join(outs)
        + f", _evidence{', _ties' if ties else ''}\nFROM alerts JOIN evidence USING ({using})"
        + "\nORDER BY _end, _start"
    )
    return [*ctes, ("", final)]
