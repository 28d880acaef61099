"""Rarity baselines in one time-ordered pass over the history and the candidates.

docs/semantics.md: a candidate starting at ``t`` is rare when fewer than ``max`` distinct
``across`` values occurred with its key tuple in ``[t - lookback, t)``. The history rows stay in
the detection's pool; candidates and history rows are sorted by time, candidates first at one
time (a history event at ``t`` is not history). Two streamstats decide each candidate without a
subsearch (so none of the subsearch result limits apply,
https://docs.splunk.com/Documentation/Splunk/latest/Search/Aboutsubsearches) and without
depending on how streamstats treats an event exactly ``time_window`` away:

1. ``values()`` of the across values by key over ``lookback + 1s``: every value that may have
   occurred within the lookback (and maybe a few just older);
2. the candidate becomes one row per such value (mvexpand), and ``last()`` of the history
   times by key and value gives that value's latest occurrence before the candidate, tested
   against ``t - lookback`` exactly, as the first-seen pass does;
3. ``eventstats dc()`` of the values that passed, by candidate time and key, is the count
   (candidates with one time and key have the same history, so their rows may mix), and one
   row per candidate is kept.

Only candidates whose whole lookback lies in the search's time range are judged
(:func:`backends.splunk.firstseen.judged`): earlier ones would count a partial history.

(https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Streamstats,
https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Mvexpand,
https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eventstats)
"""

from __future__ import annotations

from backends.base import Context
from backends.splunk.expr import eval_str, field_ref, number, seconds
from backends.splunk.firstseen import ADDINFO, CandidateField, history_note, judged
from backends.splunk.streams import TAG, Names, StreamBuilder
from compiler import ir

CAND = "siemc_cand"  # 1 on the candidate rows, through every pass


def applies(a: ir.Analytic, d: ir.Detection, multi: frozenset[str]) -> bool:
    """Rarity baselines only (no first-seen), on a match or a tumbling aggregate (below a day,
    epoch-aligned as bin is) whose baselines read group keys with one value."""
    hist = [b for b in a.baselines if not isinstance(b, ir.Deviation)]
    if not hist or not all(isinstance(b, ir.Rarity) for b in hist):
        return False
    if isinstance(d, ir.Match):
        return True
    if isinstance(d, ir.Aggregate):
        keys = all(c in d.keys and c not in multi for b in hist for c in getattr(b, "current", ()))
        if d.window.kind == "sliding":
            # the candidates are the sliding window's rows, so the history must be the same
            # rows (another stream's rows would enter the window's statistics)
            return keys and all(b.stream == d.stream for b in hist)
        return keys and d.window.size_ms < 86_400_000 and d.window.size_ms % 1000 == 0
    return False


def history_streams(a: ir.Analytic) -> list[str]:
    return [b.stream for b in a.baselines if isinstance(b, ir.Rarity)]


def one_pass(
    a: ir.Analytic,
    ctx: Context,
    sb: StreamBuilder,
    names: Names,
    det_stream: str,
    pooled: bool,
    start: str | None = None,
    candidate: str | None = None,
) -> list[str]:
    """Commands after the pool of the detection stream and the history streams (``pooled``:
    rows carry their stream in TAG; else every row is a detection row and history).
    ``candidate``: the condition of the candidates among the detection rows (None: all).
    ``start``: the candidate's start where it is not the row's time (an eval expression; a
    tumbling window's start, so that a group window is dropped or kept whole)."""
    field = CandidateField(ctx, names)
    rarities = [b for b in a.baselines if isinstance(b, ir.Rarity)]
    cmds: list[str] = []
    conds = [f"{TAG}=={eval_str(det_stream)}"] if pooled else []
    conds += [candidate] if candidate else []
    if pooled:
        wanted = sorted({det_stream, *(b.stream for b in rarities)})
        if any(a.stream(s).join is not None for s in wanted):
            # the join partners' rows leave the pool
            cmds.append("where " + " OR ".join(f"{TAG}=={eval_str(s)}" for s in wanted))
    cmds.append(f"eval {CAND}=" + (f"if({' AND '.join(conds)}, 1, 0)" if conds else "1"))
    cmds.append(ADDINFO)
    for i, b in enumerate(rarities):
        later = [x.stream for x in rarities[i + 1 :]]
        cmds += _pass(b, ctx, sb, names, field, pooled, later, start)
    if len(rarities) > 1:
        cmds.append(f"where {CAND}==1")
    cmds.append(f"fields - {CAND} info_*")
    return cmds


def _pass(
    b: ir.Rarity,
    ctx: Context,
    sb: StreamBuilder,
    names: Names,
    field: CandidateField,
    pooled: bool,
    later: list[str],
    start: str | None,
) -> list[str]:
    history_note(ctx, b.lookback_ms, "candidate")
    is_hist = f"{TAG}=={eval_str(b.stream)}" if pooled else "true()"
    # rows kept only for a later baseline's history: neither role here
    passing = pooled and bool(set(later) - {b.stream})
    cmds: list[str] = []
    # a row both candidate and history of this baseline is one row for each role
    # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Mvexpand)
    role = (
        f'case({CAND}==1 AND {is_hist}, mvappend("c", "h"), {CAND}==1, "c", {is_hist}, "h"'
        + (', true(), "x")' if passing else ")")
        if pooled
        else f'if({CAND}==1, mvappend("c", "h"), "h")'
    )
    cmds.append(f"eval siemc_role={role}")
    cmds.append("mvexpand siemc_role")
    sets = []
    if start is not None:
        # a candidate is judged at its start: _time moved there for the pass
        sets += ["siemc_t=_time", f'_time=if(siemc_role=="c", {start}, _time)']
    for i, (k, c) in enumerate(zip(b.keys, b.current, strict=True)):
        h, cf = field_ref(names(k, b.span)), field_ref(field(c))
        if h == cf:
            val = f'if(siemc_role=="x", null(), {h})' if passing else h
            sets.append(f"siemc_h{i}={val}")
        else:
            sets.append(f'siemc_h{i}=case(siemc_role=="h", {h}, siemc_role=="c", {cf})')
    across = "floor(_time/86400)" if b.across == "@days" else field_ref(names(b.across, b.span))
    sets.append(f'siemc_ra=if(siemc_role=="h", {across}, null())')
    sets.append('siemc_ht=if(siemc_role=="h", _time, null())')
    cmds.append("eval " + ", ".join(sets))
    for i, k in enumerate(b.keys):
        if k in sb.multi:
            # a history event records every element
            cmds.append(f"mvexpand siemc_h{i}")
    if b.across != "@days" and b.across in sb.multi:
        cmds.append("mvexpand siemc_ra")
    group = " ".join(f"siemc_h{i}" for i in range(len(b.keys)))
    window = seconds(b.lookback_ms + 1000)
    # "c" sorts before "h": at one time the candidates come first
    cmds.append("sort 0 _time siemc_role")
    cmds.append(
        f"streamstats current=f time_window={window} values(siemc_ra) AS siemc_rv BY {group}"
    )
    cmds.append(
        'eval siemc_ri=if(siemc_role=="c", mvrange(0, max(1, coalesce(mvcount(siemc_rv), 0))), 0)'
    )
    cmds.append("mvexpand siemc_ri")
    cmds.append('eval siemc_ra=if(siemc_role=="c", mvindex(siemc_rv, siemc_ri), siemc_ra)')
    cmds.append(
        f"streamstats current=f time_window={window} last(siemc_ht) AS siemc_rs BY {group} siemc_ra"
    )
    look = number(b.lookback_ms / 1000)
    cmds.append(f'eval siemc_ro=if(siemc_role=="c" AND siemc_rs>=_time-{look}, siemc_ra, null())')
    # the values seen within the lookback, per candidate time and key
    cmds.append(f"eventstats dc(siemc_ro) AS siemc_rn BY _time {group}")
    rare = f"(isnull(siemc_rn) OR siemc_rn<{b.max})"
    full = judged(b.lookback_ms)
    if not later:
        cmds.append(f'where siemc_role=="c" AND siemc_ri==0 AND {full} AND {rare}')
    else:
        # a candidate that is not rare, or not judged on a whole history, stays as history of
        # a later baseline
        cmds.append(f'eval {CAND}=if(siemc_role=="c" AND NOT ({full} AND {rare}), 0, {CAND})')
        if pooled:
            tags = " OR ".join(f"{TAG}=={eval_str(s)}" for s in sorted(set(later)))
            keep = [
                f'siemc_role=="c" AND siemc_ri==0 AND ({CAND}==1 OR {tags})',
                f'siemc_role=="h" AND {CAND}==0 AND ({tags})',
            ]
        else:
            keep = ['siemc_role=="c" AND siemc_ri==0', f'siemc_role=="h" AND {CAND}==0']
        if passing:
            keep.append('siemc_role=="x"')
        cmds.append("where " + " OR ".join(f"({x})" for x in keep))
    if start is not None:
        cmds.append("eval _time=siemc_t")
    drop = "siemc_h* siemc_r*"
    cmds.append(f"fields - {drop}" + (" siemc_t" if start is not None else ""))
    return cmds
