"""Counted sequence steps (``count: {gte: N}``, EQL's ``with runs=N``) as one time-ordered pass.

docs/semantics.md, "Counted steps": a run is its step written N times, every event of the run's
stream advances every partial of its key waiting inside the run by one copy, and a run that
starts the sequence starts a partial at every event. For the layout ``[F count N] [S] by K
maxspan M until U``, F, S and U streams that never share an event and single-valued keys, an S
event ``s`` alerts exactly when, among its key's F, S and U events before it in (time, input)
order:

* the latest of the F and S events is an F event ``f`` (the previous-step-event test);
* the key has at least N F events up to ``f``; call ``r`` the N-th latest of them;
* ``s.ts - r.ts <= M``;
* no U event lies after ``r`` (it would have dropped every partial of the key).

Why. The partial started at an F event takes each later F event of its key, one copy each, so
the one that completes the run at ``f`` holds the N latest F events up to ``f``, ``r`` first; it
waits for S and replaces the older one waiting there. An older one waiting instead (the newer
did not fit in M) started at or before ``r``, so ``s`` is further than M from it too. A partial
waiting for S is consumed by the first S that fits, and one that did not fit does not fit a
later S: so an S between ``f`` and ``s`` leaves nothing for ``s``. The alert's evidence is the
run ``r .. f`` then ``s``: it starts at ``r``'s time.

For ``[A] [F count N] by K maxspan M until U`` (the run last) an F event ``f`` alerts exactly
when, with ``r`` the N-th latest F event of its key up to ``f``, the key's event just before
``r`` is an A event ``a``, ``f.ts - a.ts <= M`` and no U event lies after ``a``. Why: an A event
starts a partial waiting for the run's first copy and replaces the one waiting there (a launch
not yet followed by an F event); every F event then moves every partial inside the run on by
one copy, so the partial of ``a`` takes exactly the N F events after it and completes at the
N-th. The one of ``a`` survives its start only if an F event comes before the next A, that is,
if the event before ``r`` is ``a``; completing consumes only it. Evidence: ``a``, then the run.

``streamstats window=N global=false ... BY K tag`` gives each F row the count (capped at N) and
the values of the N-th latest F row of its key: ``window`` applies to each BY group with
``global=false`` (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Streamstats,
"global"), and ``first()`` is the oldest row of the window. ``streamstats current=f last()``
carries the values of the latest row of a kind to later rows (``last()`` skips nulls, so each
column is set only on the rows it describes).

Other layouts (more than two steps, two runs, streams that may share an event, multi-valued
keys) have no such argument here yet: refused (E200) with the reason.
"""

from __future__ import annotations

from backends.base import CompileError, Context
from backends.identity import disjoint_streams
from backends.splunk import sequence
from backends.splunk.expr import eval_str, number
from backends.splunk.streams import SEQ, TAG, Names, StreamBuilder
from compiler import ir

_ALTERNATIVE = "compile to eql (`with runs`), which runs every layout of counted steps"


def is_counted(d: ir.Sequence) -> bool:
    return any(s.count > 1 for s in d.steps)


def _refuse(ctx: Context, reason: str, span: ir.Span) -> CompileError:
    return ctx.unsupported("this counted sequence step", reason, span, _ALTERNATIVE)


def check(d: ir.Sequence, a: ir.Analytic, ctx: Context, sb: StreamBuilder) -> None:
    """Refuse (E200) every layout the closed form above does not cover, with its reason."""
    run = next(s for s in d.steps if s.count > 1)
    if len(d.steps) != 2 or min(s.count for s in d.steps) != 1:
        raise _refuse(
            ctx,
            "the one-pass form is proven for two steps, one of them a run (first or last); "
            "with more steps, or two runs, several partials of one key wait in different "
            "places, which streamstats over the latest rows does not track",
            run.span,
        )
    roles = [*d.steps, *([d.until] if d.until else [])]
    for i, x in enumerate(roles):
        for y in roles[i + 1 :]:
            if not sequence.disjoint(a, x.stream, y.stream, sb.multi):
                raise _refuse(
                    ctx,
                    f"streams {x.stream} and {y.stream} may share an event, which siemc "
                    "offers as one event to until first, then to the steps from the last; the "
                    "pool holds it as two rows, whose order does not follow that",
                    run.span,
                )
    for s in roles:
        for k in s.keys:
            if k in sb.multi:
                raise _refuse(
                    ctx,
                    f"the key {k} may hold several values: siemc keeps one partial under every "
                    "value its events share and narrows it as the run goes on, which rows of "
                    "one value each (mvexpand) do not follow",
                    s.span,
                )
    if a.baselines:
        raise ctx.not_implemented("a baseline beside a counted sequence step", a.baselines[0].span)


def compile_counted(
    d: ir.Sequence, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
) -> list[str]:
    """The commands of a layout :func:`check` accepted; one row per alert with ``_time`` (the
    sequence's first event), ``duration`` and the keys ``siemc_k<i>``."""
    roles = [*d.steps, *([d.until] if d.until else [])]
    for i, x in enumerate(roles):
        for y in roles[i + 1 :]:
            if not disjoint_streams(a, x.stream, y.stream, sb.multi):
                ctx.note(
                    f"streams {x.stream} and {y.stream} read different logsource categories, "
                    "which this query takes as disjoint: Sysmon writes one EventCode per "
                    "record and a CIM event belongs to one dataset"
                )
    group = [f"siemc_g{i}" for i in range(len(d.steps[0].keys))]
    cmds = sb.pipeline([s.stream for s in roles])
    keyed = [f"{g}={sequence.per_step(roles, i, names)}" for i, g in enumerate(group)]
    cmds.append("eval " + ", ".join(keyed))
    cmds.append("where " + " AND ".join(f"isnotnull({g})" for g in group))
    cmds.append(f"sort 0 _time {SEQ}")
    by = " ".join(group)
    if d.steps[0].count > 1:
        cmds += _run_first(d, by)
        temp = ["siemc_rn", "siemc_st", "siemc_rs", "siemc_p"]
    else:
        cmds += _run_last(d, by)
        temp = ["siemc_at", "siemc_as", "siemc_ls", "siemc_pt", "siemc_ps", "siemc_po"]
        temp += ["siemc_rn", "siemc_fo", "siemc_st", "siemc_fs"]
    if d.until is not None:
        temp += ["siemc_u", "siemc_pu"]
    outs = ["duration=_time-siemc_st"]
    outs += [f"siemc_k{i}={g}" for i, g in enumerate(group)]
    outs.append("_time=siemc_st")
    cmds.append("eval " + ", ".join(outs))
    cmds.append("fields - " + " ".join([*temp, "siemc_g*"]))
    return cmds


def _until(d: ir.Sequence) -> tuple[list[str], list[str]]:
    """The eval and streamstats terms of the latest U row's position (``siemc_pu``)."""
    if d.until is None:
        return [], []
    return [f"siemc_u=if({TAG}=={eval_str(d.until.stream)}, {SEQ}, null())"], [
        "last(siemc_u) AS siemc_pu"
    ]


def _run_first(d: ir.Sequence, by: str) -> list[str]:
    """``[F count N] [S]``: each F row gets the count (capped at N) and the time and position
    of the N-th latest F row of its key; S and U rows compute the same over their own group
    and are blanked. Each S row then reads the latest F row's, and the key's previous row: a U
    row there lies after the run's first event, which the until test rejects anyway."""
    run, last = d.steps
    n = run.count
    is_run = f"{TAG}=={eval_str(run.stream)}"
    u_sets, u_aggs = _until(d)
    cols = ("siemc_rn", "siemc_st", "siemc_rs")
    sets = [f"{c}=if({is_run}, {c}, null())" for c in cols] + u_sets
    aggs = [f"last({c}) AS {c}" for c in cols] + [f"last({TAG}) AS siemc_p"] + u_aggs
    tests = [
        f"{TAG}=={eval_str(last.stream)}",
        f"siemc_p=={eval_str(run.stream)}",
        f"siemc_rn>={n}",
        f"_time-siemc_st<={number(d.maxspan_ms / 1000)}",
    ]
    if d.until is not None:
        tests.append("(isnull(siemc_pu) OR siemc_pu<siemc_rs)")
    return [
        f"streamstats window={n} global=false count AS siemc_rn first(_time) AS siemc_st "
        f"first({SEQ}) AS siemc_rs BY {by} {TAG}",
        "eval " + ", ".join(sets),
        f"streamstats current=f {' '.join(aggs)} BY {by}",
        "where " + " AND ".join(tests),
    ]


def _run_last(d: ir.Sequence, by: str) -> list[str]:
    """``[A] [F count N]``: each row gets whether the key's previous row is an A row, and that
    A's time and position (``last()`` of the positions of every row and of the A rows); the
    F rows then get the count (capped at N) and those of the N-th latest F row of the key,
    which must follow an A row. ``first()`` skips nulls, so the flag is 0 or 1 on every row and
    the A's time is null only where the flag is 0, so it is read from the right row."""
    first, run = d.steps
    n = run.count
    is_a = f"{TAG}=={eval_str(first.stream)}"
    u_sets, u_aggs = _until(d)
    sets = [f"siemc_at=if({is_a}, _time, null())", f"siemc_as=if({is_a}, {SEQ}, null())"]
    aggs = [
        f"last({SEQ}) AS siemc_ls",
        "last(siemc_at) AS siemc_pt",
        "last(siemc_as) AS siemc_ps",
    ]
    tests = [
        f"{TAG}=={eval_str(run.stream)}",
        f"siemc_rn>={n}",
        "siemc_fo==1",
        f"_time-siemc_st<={number(d.maxspan_ms / 1000)}",
    ]
    if d.until is not None:
        tests.append("(isnull(siemc_pu) OR siemc_pu<siemc_fs)")
    return [
        "eval " + ", ".join(sets + u_sets),
        f"streamstats current=f {' '.join(aggs + u_aggs)} BY {by}",
        "eval siemc_po=if(siemc_ls==siemc_ps, 1, 0)",
        f"streamstats window={n} global=false count AS siemc_rn first(siemc_po) AS siemc_fo "
        f"first(siemc_pt) AS siemc_st first(siemc_ps) AS siemc_fs BY {by} {TAG}",
        "where " + " AND ".join(tests),
    ]
