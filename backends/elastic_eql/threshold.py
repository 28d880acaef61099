"""The Elastic threshold rule an aggregate EQL cannot express would map to, named in the refusal.

EQL has no aggregation. Elastic Security's threshold rule (Kibana detection engine: a query,
``threshold.field`` group-by fields, ``threshold.value`` a minimum count and
``threshold.cardinality`` a minimum distinct count of one field) counts the events of one rule
execution's look-back: a count or distinct-count threshold fits it, with the rule's schedule as
the window (executions are fixed slices, not siemc's sliding or aligned tumbling windows), so it
is named as the Elastic answer rather than compiled.
"""

from __future__ import annotations

from compiler import ir
from compiler.lower import format_duration


def threshold_rule(agg: ir.Aggregate) -> str | None:
    """How a threshold rule would say ``agg`` (None: it needs more than a count and a distinct
    count, e.g. sums, ratios or computed fields)."""
    if agg.compute or agg.having is None:
        return None
    bounds = _bounds(agg.having)
    if bounds is None:
        return None
    kinds = {m.name: m for m in agg.measures}
    count: int | None = None
    distinct: tuple[str, int] | None = None
    for name, value in bounds:
        m = kinds.get(name)
        if m is None:
            return None
        if m.kind == "count" and m.field is None and count is None:
            count = value
        elif m.kind == "distinct" and m.field is not None and distinct is None:
            distinct = (m.field, value)
        else:
            return None
    parts = [f"group by {', '.join(agg.keys)}" if agg.keys else "no group-by"]
    parts.append(f"threshold.value {count if count is not None else 1}")
    if distinct is not None:
        parts.append(f"cardinality of {distinct[0]} >= {distinct[1]}")
    return (
        f"the Elastic answer is a threshold rule ({'; '.join(parts)}; the stream's filter as "
        f"its query), approximate: each execution's {format_duration(agg.window.size_ms)} "
        f"look-back stands for the {agg.window.kind} window"
    )


def _bounds(e: ir.Expr) -> list[tuple[str, int]] | None:
    """``m >= n [and ...]`` (or ``m > n`` on integers) as (measure, minimum) pairs."""
    if isinstance(e, ir.BinOp) and e.op == "and":
        left, right = _bounds(e.left), _bounds(e.right)
        return None if left is None or right is None else left + right
    if (
        isinstance(e, ir.BinOp)
        and e.op in (">=", ">")
        and isinstance(e.left, ir.MeasureRef)
        and isinstance(e.right, ir.Literal_)
        and type(e.right.value) is int
    ):
        return [(e.left.name, e.right.value + (e.op == ">"))]
    return None
