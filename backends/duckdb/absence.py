"""Absence (``first`` not followed by ``missing`` within a time) as one anti-join.

Each ``first`` event with every key present is its own instance: it alerts unless a
``missing`` event with equal keys (the key rule, any alternative) lies in ``(t, t + within]``
(strictly later: input order at one timestamp does not count), and only once decided: the
input has passed ``t + within`` (its newest event, the watermark without joins) or the
observation end ``now`` (DuckDB variable ``siemc_now``, set by the engine; unset: no ``now``)
reaches it.
"""

from __future__ import annotations

from backends.base import Context
from backends.duckdb.sql import col
from backends.duckdb.streams import SOURCE, stream_cte
from compiler import ir


def absence(d: ir.Absence, analytic: ir.Analytic, ctx: Context) -> str:
    if any(s.join is not None for s in analytic.streams):
        # a join delays the watermark by its lateness, which this query does not model
        raise ctx.not_implemented("absence over a joined stream", d.span)
    w = d.within_ms
    for f in d.first.keys + d.missing.keys:
        ctx.field(f, d.span)
    present = " AND ".join(f"NOT siemc_missing(f.{col(k)})" for k in d.first.keys) or "true"
    meet = "".join(
        f" AND siemc_keys_meet(f.{col(a)}, m.{col(b)})"
        for a, b in zip(d.first.keys, d.missing.keys, strict=True)
    )
    keys = "".join(f", siemc_elems(f.{col(k)})[1] AS {col(k)}" for k in d.first.keys)
    return (
        f"SELECT f._ts AS _start, f._ts AS _end{keys}, [f._id] AS _evidence\n"
        f"FROM {stream_cte(d.first.stream)} f\n"
        f"WHERE {present}\n"
        f"  AND ((SELECT max(_ts) FROM {SOURCE}) > f._ts + {w}\n"
        f"       OR coalesce(getvariable('siemc_now') >= f._ts + {w}, false))\n"
        f"  AND NOT EXISTS (\n    SELECT 1 FROM {stream_cte(d.missing.stream)} m\n"
        f"    WHERE m._ts > f._ts AND m._ts <= f._ts + {w}{meet})\n"
        "ORDER BY f._ts, f._seq"
    )
