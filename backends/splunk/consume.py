"""Consuming sliding windows and co-occurrences: one ordered ``streamstats`` pass with
``reset_after``.

docs/semantics.md: a sliding window that fires is emptied for its group ("the group starts again
empty"), and a co-occurrence that completes clears its key's state. ``streamstats`` has the reset:
``reset_after="(<eval>)"`` resets the accumulated statistics after the event it is true for, may
read the fields that streamstats itself just produced (the common ``streamstats count
reset_after="(count>=5)"`` idiom), and with ``window=N`` resets the window too
(https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Streamstats, reset_after).
But it resets *every* group's statistics: "the sum of the bytes is reset for both the y and x
hosts in the next events" (SPL2 streamstats command usage,
https://help.splunk.com/splunk-enterprise/search/spl2-search-reference/streamstats-command).
So the rows are first sorted by the group keys, then time (``sort 0 str(k) ... _time``; count 0
lifts sort's 10,000-result default, ``str()`` compares the keys as text, the way ``BY`` groups
them, so two groups never tie and interleave: "7" and "7.0" are two groups that a numeric sort
would mix). Only one group is then ever active: a reset only empties the group that fired,
and the groups after it start empty anyway.

**Count threshold** (``threshold`` with ``count``, or a sliding aggregate whose ``having`` is
``<count of events> >= T``). With a group's events since its last alert in time order, siemc's
window after an event ``e`` holds those in ``[e.ts - W, e.ts]``; it held fewer than T after the
previous event and gains only ``e``, so it fires exactly when it holds T events: when the last
T events since the reset span at most W. ``streamstats window=T count, min(_time)`` gives both
(fewer than T since the reset: the count says so), the alert's start is that ``min(_time)`` and
its end ``e``'s time, and at that moment the window of T events *is* the consumed window, so
every other measure (count of a field, dc, sum, avg, min, max, stdev, conditional or not)
computed over ``window=T`` is the alert's. Ties: with measures that tell events apart the rows
go in docs/semantics.md's (time, input) order (``siemc_seq``); a pure event count depends only on
the times, which no order of equal times changes.

**Distinct-count threshold** (a sliding aggregate whose one measure is ``distinct: F`` of a
single-valued field and whose ``having`` is ``<distinct> >= T``). The window after an event
``e`` holds the group's events since its last alert with times in ``[e.ts - W, e.ts]``, and
its distinct count is the number of values whose latest event since the reset lies there. Each
row carries ``"<ms>|<value>"`` (its time in integer milliseconds, so the window test is exact);
``streamstats values()`` of those pairs since the reset, and an ``mvmap`` that keeps the value
part of the pairs inside the window (``"x"`` for the others, added once and taken off the
count, so no null is asked of mvmap), give the count in the row's own ``reset_after``. Values
compare as text, as ``dc`` does (the tumbling form's measure).

**Co-occurrence** of distinct, disjoint member streams (an event fills exactly one member) on
single-valued keys: after an event at ``ts`` the key's set is complete when every member's
latest event since the last alert lies in ``[ts - W, ts]``; the alert's end is ``ts``.
``streamstats max()`` of each member's times (in time order the maximum is the latest) over the
key's rows since the reset decides it. Multi-valued keys (an event consumed for every key tuple)
and members sharing events keep the superset form.
"""

from __future__ import annotations

import math

from backends.base import Context
from backends.splunk import sequence
from backends.splunk.expr import eval_str, number
from backends.splunk.streams import SEQ, TAG, StreamBuilder
from compiler import ir

# limits.conf [stats] max_stream_window: the largest window streamstats accepts
# (https://docs.splunk.com/Documentation/Splunk/latest/Admin/Limitsconf)
MAX_WINDOW = 10_000
# a single search's rows in docs/semantics.md's input order, numbered: search results come newest
# first, events of one time newest-indexed first (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Reverse)
INPUT_ORDER = ["reverse", f"streamstats count AS {SEQ}"]
START = "siemc_ws"  # the alert's start: the earliest time in the window that fired
_MEASURES = ("count", "distinct", "sum", "avg", "min", "max", "stdev")


def count_limit(d: ir.Aggregate) -> int | None:
    """T when ``d`` is a sliding window that alerts on ``<count of every event> >= T`` alone
    (``> x`` is ``>= floor(x) + 1``), with measures streamstats computes over a window of
    events; else None."""
    if d.window.kind != "sliding" or not isinstance(d.having, ir.BinOp):
        return None
    h = d.having
    counts = {
        m.name for m in d.measures if m.kind == "count" and m.field is None and m.where is None
    }
    if (
        h.op not in (">=", ">")
        or not isinstance(h.left, ir.MeasureRef)
        or h.left.name not in counts
    ):
        return None
    if not isinstance(h.right, ir.Literal_) or isinstance(h.right.value, bool):
        return None
    if not isinstance(h.right.value, int | float) or not math.isfinite(h.right.value):
        return None
    if any(m.kind not in _MEASURES for m in d.measures):
        return None
    v = h.right.value
    limit = max(1, math.ceil(v) if h.op == ">=" else math.floor(v) + 1)
    return limit if limit <= MAX_WINDOW else None


def distinct_limit(d: ir.Aggregate, multi: frozenset[str]) -> tuple[str, int] | None:
    """(F, T) when ``d`` is a sliding window whose one measure is the distinct count of the
    single-valued field F, alerting on ``<it> >= T`` alone; else None."""
    if d.window.kind != "sliding" or len(d.measures) != 1 or not isinstance(d.having, ir.BinOp):
        return None
    m = d.measures[0]
    if m.kind != "distinct" or m.field is None or m.where is not None or m.field in multi:
        return None
    h = d.having
    if h.op not in (">=", ">") or not isinstance(h.left, ir.MeasureRef) or d.compute:
        return None
    if h.left.name != m.name:
        return None
    if not isinstance(h.right, ir.Literal_) or isinstance(h.right.value, bool):
        return None
    if not isinstance(h.right.value, int | float) or not math.isfinite(h.right.value):
        return None
    v = h.right.value
    return m.field, max(1, math.ceil(v) if h.op == ">=" else math.floor(v) + 1)


def distinct_pass(
    d: ir.Aggregate, keys: list[str], field: str, out: str, limit: int, ctx: Context
) -> list[str]:
    """Sort by group then (time, input) order; ``out`` is the distinct count of the window
    after each row since the group's last alert (the rows of every other group too: the
    ``where`` of the having keeps the alerts)."""
    w = d.window.size_ms
    bar, x = eval_str("|"), eval_str("x")
    time = f"tonumber(mvindex(split(siemc_dw, {bar}), 0))"
    value = f"replace(siemc_dw, {eval_str('^[^|]*[|]')}, {eval_str('v')})"
    inside = f"if({time}>=round(_time*1000)-{w}, {value}, {x})"
    count = f"mvcount(mvdedup(mvappend({x}, mvmap(siemc_dw, {inside}))))-1"
    ctx.note(
        f"streamstats keeps the last {MAX_WINDOW:,} rows of a key since its last alert "
        f"(window={MAX_WINDOW}, limits.conf max_stream_window): exact while no "
        f"{', '.join(d.keys)} has more than {MAX_WINDOW:,} events within "
        f"{number(w / 1000)} s; the distinct values of the window are kept by values() "
        "(limits.conf [stats] maxvalues: 0, no limit, by default) and read by mvmap "
        "(Splunk 8.0 or later)"
    )
    sort = ["sort 0", *(f"str({k})" for k in keys), "_time", SEQ]
    reset = quoted(f"({count}>={limit})")
    return [
        f"eval siemc_dv=if(isnotnull({field}), round(_time*1000) . {bar} . {field}, null())",
        " ".join(sort),
        f"streamstats window={MAX_WINDOW} global=false reset_after={reset} "
        f"values(siemc_dv) AS siemc_dw BY {' '.join(keys)}",
        f"eval {out}={count}",
        "fields - siemc_dv siemc_dw",
    ]


def quoted(expr: str) -> str:
    """A command argument in double quotes: backslash and double quote backslash-escaped, as
    in eval strings (an eval expression with string literals inside ``reset_after="(...)"``)."""
    return '"' + expr.replace("\\", "\\\\").replace('"', '\\"') + '"'


def needs_order(d: ir.Aggregate) -> bool:
    """Whether the measures tell events apart, so that which events of one time the window
    consumes matters: anything but a count of every event."""
    return any(m.kind != "count" or m.field is not None or m.where is not None for m in d.measures)


def window_pass(
    d: ir.Aggregate, keys: list[str], aggs: list[str], limit: int, ordered: bool
) -> list[str]:
    """Sort by group then (time, input) order, and the windows of ``limit`` events since the
    group's last alert; ``aggs`` are the measures' streamstats terms."""
    sort = ["sort 0", *(f"str({k})" for k in keys), "_time", *([SEQ] if ordered else [])]
    count = _count_out(d, aggs)
    fired = fires(count, limit, d.window.size_ms)
    terms = [*aggs, f"min(_time) AS {START}"]
    return [
        " ".join(sort),
        f'streamstats window={limit} global=false reset_after="({fired})" '
        f"{' '.join(terms)} BY {' '.join(keys)}",
    ]


def fires(count: str, limit: int, window_ms: int) -> str:
    """The row where the window fires: ``limit`` events since the last alert within the size."""
    return f"{count}>={limit} AND _time-{START}<={number(window_ms / 1000)}"


def _count_out(d: ir.Aggregate, aggs: list[str]) -> str:
    assert isinstance(d.having, ir.BinOp) and isinstance(d.having.left, ir.MeasureRef)
    i = [m.name for m in d.measures].index(d.having.left.name)
    return aggs[i].rsplit(" AS ", 1)[1]


# ------------------------------------------------------------------ co-occurrence
def cooccurrence_applies(d: ir.Cooccurrence, a: ir.Analytic, sb: StreamBuilder) -> bool:
    """Distinct member streams, pairwise disjoint, on single-valued keys."""
    streams = [m.stream for m in d.members]
    if len(streams) < 2 or len(set(streams)) < len(streams):
        return False
    for i, x in enumerate(streams):
        for y in streams[i + 1 :]:
            if not sequence.disjoint(a, x, y, sb.multi):
                return False
    return not any(k in sb.multi for m in d.members for k in m.keys)


def cooccurrence(d: ir.Cooccurrence, knames: list[str], ctx: Context) -> list[str]:
    """The pooled rows (TAG, SEQ, key columns ``knames``) of a complete set, one per alert."""
    window = number(d.window_ms / 1000)
    latest = [f"siemc_l{i}" for i in range(len(d.members))]
    times = [
        f"siemc_t{i}=if({TAG}=={eval_str(m.stream)}, _time, null())"
        for i, m in enumerate(d.members)
    ]
    complete = " AND ".join(f"_time-{lt}<={window}" for lt in latest)
    aggs = [f"max(siemc_t{i}) AS {lt}" for i, lt in enumerate(latest)]
    fields = ", ".join(dict.fromkeys(k for m in d.members for k in m.keys))
    ctx.note(
        f"streamstats keeps the last {MAX_WINDOW:,} rows of a key since its last alert "
        f"(window={MAX_WINDOW}, limits.conf max_stream_window): exact while no {fields} has "
        f"more than {MAX_WINDOW:,} events of the member streams within "
        f"{number(d.window_ms / 1000)} s; beyond, a member's latest event can leave the window "
        "and an alert is missed"
    )
    return [
        "eval " + ", ".join(times),
        " ".join(["sort 0", *(f"str({k})" for k in knames), "_time", SEQ]),
        f'streamstats window={MAX_WINDOW} global=false reset_after="({complete})" '
        f"{' '.join(aggs)} BY {' '.join(knames)}",
        f"where {complete}",
        "fields - siemc_t* siemc_l*",
    ]
