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

``streamstats window=N global=false ... BY K tag`` gives each F row the count (capped at N) and
the time and position of the N-th latest F row of its key: ``window`` applies to each BY group
with ``global=false`` (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Streamstats,
"global"). A second ``streamstats current=f last()`` carries those of the latest F row, and the
stream of the key's previous row, to each S row (``last()`` skips nulls, so each column is set
only on the rows it describes).

Other layouts (the run after the first step, more than two steps, streams that may share an
event, multi-valued keys) have no such argument here yet: refused (E200) with the reason.
"""

from __future__ import annotations

from backends.base import CompileError, Context
from backends.identity import disjoint_streams
from backends.splunk import sequence
from backends.splunk.consume import MAX_WINDOW
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
    if len(d.steps) != 2 or d.steps[0].count == 1 or d.steps[1].count != 1:
        raise _refuse(
            ctx,
            "the one-pass form is proven for a run that is the first of two steps; with the "
            "run elsewhere or more steps, several partials of one key wait inside the run at "
            "once, which streamstats over the latest rows does not track",
            run.span,
        )
    roles = [*d.steps, *([d.until] if d.until else [])]
    for i, x in enumerate(roles):
        for y in roles[i + 1 :]:
            if not sequence.disjoint(a, x.stream, y.stream, sb.multi):
                raise _refuse(
                    ctx,
                    f"streams {x.stream} and {y.stream} may share an event, which siemc "
                    "offers to until, then the last step, then the run; pooled rows of one "
                    "event in two streams cannot be ordered that way",
                    run.span,
                )
    for s in roles:
        for k in s.keys:
            if k in sb.multi:
                raise _refuse(
                    ctx,
                    f"the key {k} may hold several values, and an event then advances the "
                    "partials of every value, where the rows of mvexpand count per value "
                    "independently only if no two events share a value set",
                    s.span,
                )
    if a.baselines:
        raise ctx.not_implemented("a baseline beside a counted sequence step", a.baselines[0].span)
    if run.count > MAX_WINDOW:
        raise _refuse(
            ctx,
            f"streamstats window= accepts at most {MAX_WINDOW:,} events "
            "(limits.conf max_stream_window)",
            run.span,
        )


def run_first(
    d: ir.Sequence, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
) -> list[str]:
    """The commands of ``[F count N] [S]`` (checked by :func:`check`); one row per alert with
    ``_time`` (the run's first event), ``duration`` and the keys ``siemc_k<i>``."""
    run, last = d.steps
    until = d.until
    roles = [run, last, *([until] if until else [])]
    for i, x in enumerate(roles):
        for y in roles[i + 1 :]:
            if not disjoint_streams(a, x.stream, y.stream, sb.multi):
                ctx.note(
                    f"streams {x.stream} and {y.stream} read different logsource categories, "
                    "which this query takes as disjoint: Sysmon writes one EventCode per "
                    "record and a CIM event belongs to one dataset"
                )
    n = run.count
    nk = len(run.keys)
    is_run = f"{TAG}=={eval_str(run.stream)}"
    is_last = f"{TAG}=={eval_str(last.stream)}"
    group = [f"siemc_g{i}" for i in range(nk)]
    cmds = sb.pipeline([s.stream for s in roles])
    cmds.append(
        "eval "
        + ", ".join(f"{g}={sequence.per_step(roles, i, names)}" for i, g in enumerate(group))
    )
    cmds.append("where " + " AND ".join(f"isnotnull({g})" for g in group))
    cmds.append(f"sort 0 _time {SEQ}")
    # each F row: how many F rows of its key up to it (capped at N), and the N-th latest's time
    # and position; S and U rows compute the same over their own group and are blanked below
    cmds.append(
        f"streamstats window={n} global=false count AS siemc_rn first(_time) AS siemc_rt "
        f"first({SEQ}) AS siemc_rs BY {' '.join(group)} {TAG}"
    )
    sets = [f"{c}=if({is_run}, {c}, null())" for c in ("siemc_rn", "siemc_rt", "siemc_rs")]
    aggs = [f"last({c}) AS {c}" for c in ("siemc_rn", "siemc_rt", "siemc_rs")]
    # the key's previous row: a U row there lies after the run's first event, which the until
    # test below rejects anyway, so it need not be skipped
    aggs.append(f"last({TAG}) AS siemc_p")
    if until is not None:
        sets.append(f"siemc_u=if({TAG}=={eval_str(until.stream)}, {SEQ}, null())")
        aggs.append("last(siemc_u) AS siemc_pu")
    cmds.append("eval " + ", ".join(sets))
    cmds.append(f"streamstats current=f {' '.join(aggs)} BY {' '.join(group)}")
    tests = [
        is_last,
        f"siemc_p=={eval_str(run.stream)}",
        f"siemc_rn>={n}",
        f"_time-siemc_rt<={number(d.maxspan_ms / 1000)}",
    ]
    if until is not None:
        tests.append("(isnull(siemc_pu) OR siemc_pu<siemc_rs)")
    cmds.append("where " + " AND ".join(tests))
    outs = ["duration=_time-siemc_rt"]
    outs += [f"siemc_k{i}={g}" for i, g in enumerate(group)]
    outs.append("_time=siemc_rt")
    cmds.append("eval " + ", ".join(outs))
    cmds.append("fields - siemc_r* siemc_p siemc_g*" + (" siemc_u siemc_pu" if until else ""))
    return cmds
