"""Sliding-window aggregates: the evaluator's windows that are emptied when they fire.

After each event ``i`` of a group the window holds the group's events from ``a`` to ``i``, where
``a`` is the later of the first event with ``ts >= ts_i - size`` (``_lo``) and the first event
after the group's last alert (consumption). So:

1. ``pairs``: every event ``i`` with every event ``j`` of its group in ``[_lo_i, i]``, and the
   measures of the window ``[j, i]`` (window functions over ``j`` descending), which says
   whether ``having`` holds for that window;
2. ``chain``: a recursive query per group: from ``s = 1``, the first ``i >= s`` whose window
   starting at ``max(s, _lo_i)`` fires; the next search starts at ``i + 1``.

Rows grow with the events inside a window, squared: fine for backtests of bursts, not for
windows holding millions of events.
"""

from __future__ import annotations

from backends.base import Context
from backends.duckdb.baselines import Baselines
from backends.duckdb.measures import computed, conditions, measure_sql
from backends.duckdb.sql import col
from backends.duckdb.streams import stream_cte
from compiler import ir

W = "OVER w"


def aggregate(d: ir.Aggregate, ctx: Context, baselines: Baselines) -> list[tuple[str, str]]:
    size = d.window.size_ms
    keys = list(d.keys)
    kcols = [col(f"key:{i}") for i in range(len(keys))]
    part = ", ".join(kcols) if kcols else "true"
    unnest = "".join(
        f",\n    unnest(siemc_keys(s.{col(k)})) AS u{i}({kc})"
        for i, (k, kc) in enumerate(zip(keys, kcols, strict=True))
    )
    ordered = (
        f"SELECT s.*{''.join(f', {k}' for k in kcols)}{conditions(d, ctx)}, "
        f"row_number() OVER (PARTITION BY {part} ORDER BY s._ts, s._seq) AS _i\n"
        f"  FROM {stream_cte(d.stream)} s{unnest}"
    )
    spans = (
        f"SELECT *, min(_i) OVER (PARTITION BY {part} ORDER BY _ts "
        f"RANGE BETWEEN {size} PRECEDING AND CURRENT ROW) AS _lo\n  FROM ordered"
    )
    same = " AND ".join(f"p.{k} = e.{k}" for k in kcols) or "true"
    firsts = "".join(
        f", siemc_raw(p.{col(k)}, p.{kc}) AS {col(k)}" for k, kc in zip(keys, kcols, strict=True)
    )
    measures = "".join(
        f",\n    to_json({measure_sql(m, 'p.', W)}) AS {col('measure:' + m.name)}"
        for m in d.measures
    )
    pairs = (
        f"SELECT {', '.join(f'e.{k}' for k in kcols) + ', ' if kcols else ''}"
        f"e._i, e._lo, e._ts AS _end, p._i AS _a, p._ts AS _start{firsts}{measures},\n"
        f"    list_reverse(list(p._id) {W}) AS _evidence\n"
        f"  FROM spans e JOIN spans p ON {same} AND p._i BETWEEN e._lo AND e._i\n"
        f"  WINDOW w AS (PARTITION BY {', '.join(f'e.{k}' for k in kcols) + ', ' if kcols else ''}"
        "e._i ORDER BY p._i DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    comp, prev, exprs = computed(d, ctx, '"pairs"')
    ctes = [('"ordered"', ordered), ('"spans"', spans), ('"pairs"', pairs), *comp]
    fires = "true" if d.having is None else exprs.truth(d.having)
    ctes.append(('"fires"', f"SELECT * FROM {prev} WHERE {fires}"))
    groups = ", ".join(kcols)
    on = " AND ".join(f"f.{k} = c.{k}" for k in kcols) or "true"
    seed_cols = f"{groups}, " if kcols else ""
    chain = (
        f"SELECT {seed_cols}1::BIGINT AS _s, NULL::BIGINT AS _i, NULL::BIGINT AS _a\n"
        f"  FROM (SELECT DISTINCT {groups or 'true'} FROM ordered)\n"
        "  UNION ALL\n"
        f"  SELECT {', '.join(f'c.{k}' for k in kcols) + ', ' if kcols else ''}"
        "x._i + 1, x._i, x._a FROM chain c JOIN LATERAL (\n"
        f"    SELECT f._i, f._a FROM fires f WHERE {on} AND f._i >= c._s "
        "AND f._a = greatest(c._s, f._lo) ORDER BY f._i LIMIT 1\n  ) x ON true"
    )
    ctes.append(('"chain"', chain))
    outs = ["f._start", "f._end"] + [f"f.{col(k)}" for k in keys]
    outs += [f"f.{col('measure:' + m.name)}" for m in d.measures]
    outs += [f"f.{col('measure:' + n)}" for n, _ in d.compute]
    holds = baselines.holds("f._start", lambda f: (f"f.{kcols[keys.index(f)]}", True))
    holds += baselines.deviates(d, '"fires"', kcols)  # refuses: the evaluator's are tumbling
    where = "".join(f"\n  AND {c}" for c in holds)
    final = (
        f"SELECT {', '.join(outs)}, f._evidence\nFROM chain c JOIN fires f ON {on} "
        f"AND f._i = c._i AND f._a = c._a{where}\nORDER BY f._end, f._start"
    )
    return [*ctes, ("", final)]
