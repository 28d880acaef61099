"""Two-step sequences as the previous-step-event test (docs/research/target-idioms.md, 4.1).

docs/semantics.md's sequence ``[A, B] by K maxspan M until U``, for events of two streams that
never share an event, alerts at a B event ``b`` exactly when, among the events with ``b``'s keys
before it in input order:

* the latest A event ``a`` exists and ``b.ts - a.ts <= M``: it is the partial waiting for B (a
  newer A replaces an older one, and an older one could not be younger than M either);
* no B event lies between ``a`` and ``b``: the first such B would have completed with ``a``
  (it is nearer) and consumed it;
* no U event lies between ``a`` and ``b``: it would have dropped the partial.

So one time-ordered streamstats pass (``last()`` of the positions of the A, B and U rows by key)
decides every alert; ``last()`` skips null values, which makes it "the latest row of that
stream" (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Streamstats).

Process identity (backends/identity.py): a sequence keyed on (host, PID) until the process
ends keys on the profile's unique process id instead (Sysmon ProcessGuid) and needs no end
events.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from backends.base import Context
from backends.identity import disjoint_streams, sequence_process_key
from backends.profiles import UnmappedField
from backends.splunk.expr import eval_str, field_ref, number, seconds
from backends.splunk.streams import SEQ, TAG, Carry, Names, StreamBuilder
from compiler import ir

ENTITY = "process.entity_id"


def identity_steps(
    a: ir.Analytic, d: ir.Sequence, ctx: Context
) -> tuple[list[ir.Step], ir.Step | None]:
    """The steps keyed on the process identity where the profile has one (the PID key replaced
    by the entity id, no until), else the steps and until as written."""
    pk = sequence_process_key(a, d)
    if pk is None:
        return list(d.steps), d.until
    try:
        ctx.profile.map_field(ENTITY)
    except UnmappedField:
        return list(d.steps), d.until
    steps = [
        dataclasses.replace(s, keys=tuple(ENTITY if k == pk.pid else k for k in s.keys))
        for s in d.steps
    ]
    return steps, None


def disjoint(a: ir.Analytic, x: str, y: str, arrays: frozenset[str] = frozenset()) -> bool:
    """Whether no event can be in both streams: different logsource categories (one Sysmon
    EventCode or CIM dataset per event), or a single-valued field (not in ``arrays``) both
    require with no common value."""
    if x == y:
        return False
    cx, cy = _category(a, x), _category(a, y)
    return bool(cx and cy and cx != cy) or disjoint_streams(a, x, y, arrays)


def _category(a: ir.Analytic, name: str) -> str | None:
    streams = {s.name: s for s in a.streams}
    cur: str | None = name
    while cur is not None and cur in streams:
        src = streams[cur].source
        if isinstance(src, ir.LogSource):
            return src.category
        cur = src
    return None


def pair(
    d: ir.Sequence,
    a: ir.Analytic,
    ctx: Context,
    sb: StreamBuilder,
    names: Names,
    step_fields: list[tuple[str, str]],
    history: list[str],
) -> list[str]:
    """The commands of a two-step sequence; rows of the ``history`` streams pass through."""
    steps, until = identity_steps(a, d, ctx)
    first, second = steps
    roles = [first, second] + ([until] if until else [])
    for i, x in enumerate(roles):
        for y in roles[i + 1 :]:
            by_category = x.stream != y.stream and not disjoint_streams(
                a, x.stream, y.stream, sb.multi
            )
            if by_category and disjoint(a, x.stream, y.stream, sb.multi):
                ctx.note(
                    f"streams {x.stream} and {y.stream} read different logsource "
                    "categories, which this query takes as disjoint: Sysmon writes one "
                    "EventCode per record and a CIM event belongs to one dataset, where "
                    "an ECS event may carry two categories (siemc then applies until, "
                    "then the last step, then the first to that one event)"
                )
                continue
            if not disjoint(a, x.stream, y.stream, sb.multi):
                ctx.approximate(
                    "ordered sequence over streams that may share an event",
                    f"an event in both {x.stream} and {y.stream} is two rows here, whose "
                    "order at one time follows the multisearch branches, where siemc "
                    "applies until, then the last step, then the first to one event",
                    d.span,
                )
    for k in second.keys:
        if k in sb.multi:
            ctx.approximate(
                f"ordered sequence keyed on the multi-valued field {k} of its last step",
                "mvexpand gives one row per value and each row may complete, where siemc "
                "completes one partial per event (the first value with one)",
                second.span,
            )
    # first-step values: each row stands for the partial under one value; the event is
    # consumed for all of them by its first completion (kept below)
    multi_first = [i for i, k in enumerate(first.keys) if k in sb.multi]
    streams = [s.stream for s in roles] + [h for h in history if h not in {s.stream for s in roles}]
    cmds = sb.pipeline(streams)
    n = len(first.keys)
    is_step = {s.stream: f"{TAG}=={eval_str(s.stream)}" for s in roles}
    # grouping keys (per-step field names) and the first step's keys as written (the alert's)
    sets = [f"siemc_g{i}={per_step(roles, i, names)}" for i in range(n)]
    cmds.append("eval " + ", ".join(sets))
    keep = " OR ".join(f"{TAG}=={eval_str(h)}" for h in history)
    tests = [f"isnotnull(siemc_g{i})" for i in range(n)]
    if steps != list(d.steps):
        # keyed on the identity, the events still need the keys the analytic names
        written = list(d.steps) + ([d.until] if d.until else [])
        for i in range(n):
            if per_step(written, i, names) != per_step(roles, i, names):
                tests.append(f"isnotnull({per_step(written, i, names)})")
    has_keys = " AND ".join(dict.fromkeys(tests))
    cmds.append(f"where {keep} OR ({has_keys})" if keep else f"where {has_keys}")
    for i in range(n):
        if any(s.keys[i] in sb.multi for s in roles):
            cmds.append(f"mvexpand siemc_g{i}")
    # the (time, input) order of docs/semantics.md
    cmds.append(f"sort 0 _time {SEQ}")
    # the alert key: the first step's values, for a multi-valued one the element that matched
    orig = [
        f"siemc_g{i}" if i in multi_first else names(k, first.span)
        for i, k in enumerate(d.steps[0].keys)
    ]
    carried = orig + [names(f, first.span) for alias, f in step_fields if alias == first.alias]
    a_rows = Carry("siemc_a", is_step[first.stream])
    sets = a_rows.sets(carried)
    sets.append(f"siemc_b=if({is_step[second.stream]}, {SEQ}, null())")
    aggs = [*a_rows.aggs(), "last(siemc_b) AS siemc_pb"]
    if until is not None:
        sets.append(f"siemc_u=if({is_step[until.stream]}, {SEQ}, null())")
        aggs.append("last(siemc_u) AS siemc_pu")
    cmds.append("eval " + ", ".join(sets))
    # current=f: the rows before this one; the window only bounds the state (the where below
    # decides the maxspan edge)
    win = seconds(d.maxspan_ms + 1000)
    group = " ".join(f"siemc_g{i}" for i in range(n))
    cmds.append(f"streamstats current=f time_window={win} {' '.join(aggs)} BY {group}")
    tests = [
        is_step[second.stream],
        "isnotnull(siemc_as)",
        f"_time-siemc_at<={number(d.maxspan_ms / 1000)}",
        "(isnull(siemc_pb) OR siemc_pb<siemc_as)",
    ]
    if until is not None:
        tests.append("(isnull(siemc_pu) OR siemc_pu<siemc_as)")
    done = " AND ".join(tests)
    cmds.append(f"where {keep} OR ({done})" if keep else f"where {done}")
    if multi_first:
        # a first-step event completes once: with the earliest last step of any of its values
        # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eventstats)
        b_row = is_step[second.stream]
        cmds.append(
            f"eval siemc_ca=if({b_row}, siemc_as, null()), siemc_cb=if({b_row}, {SEQ}, null())"
        )
        cmds.append("eventstats min(siemc_cb) AS siemc_cf BY siemc_ca")
        cmds.append(f"where NOT ({b_row}) OR siemc_cb==siemc_cf")
        cmds.append("fields - siemc_ca siemc_cb siemc_cf")
    # the alert: the first step's time and keys, and the step fields the baselines read
    is_alert = is_step[second.stream]  # never a history stream (firstseen.applies)
    outs = [f"duration=if({is_alert}, _time-siemc_at, null())"]
    outs += [f"siemc_k{i}=if({is_alert}, {a_rows.value(i)}, null())" for i in range(n)]
    j = n
    for alias, f in step_fields:
        local = field_ref(ctx.profile.local(f"{alias}.{f}"))
        if alias == first.alias:
            outs.append(f"{local}=if({is_alert}, {a_rows.value(j)}, null())")
            j += 1
        elif alias == second.alias:
            src = field_ref(names(f, second.span))
            outs.append(f"{local}=if({is_alert}, {src}, null())")
    outs.append(f"_time=if({is_alert}, siemc_at, _time)")
    cmds.append("eval " + ", ".join(outs))
    cmds.append("fields - siemc_a* siemc_b siemc_u siemc_pb siemc_pu siemc_g*")
    return cmds


def per_step(steps: list[ir.Step], i: int, names: Callable[[str, ir.Span], str]) -> str:
    seen: dict[str, str] = {}
    for s in steps:
        seen.setdefault(s.stream, field_ref(names(s.keys[i], s.span)))
    if len(set(seen.values())) == 1:
        return next(iter(seen.values()))
    return "case(" + ", ".join(f"{TAG}=={eval_str(st)}, {f}" for st, f in seen.items()) + ")"
