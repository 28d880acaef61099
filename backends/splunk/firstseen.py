"""A first-seen baseline in one time-ordered pass over the history and the candidates.

docs/semantics.md: a candidate starting at ``t`` was seen when a history event with its key
tuple has ``t - lookback <= ts < t``. The history stream's rows stay in the detection's pool;
the candidates (the detection's result rows, at their start time) and the history rows are
sorted by time, candidates first at one time (a history event at ``t`` is not history), and
streamstats ``last()`` of the history rows' times by key gives, at each candidate, the latest
occurrence before it: seen when it is within the lookback. No subsearch, so none of the
subsearch result limits apply (https://docs.splunk.com/Documentation/Splunk/latest/Search/Aboutsubsearches).

The history is what the search's time range holds, so a candidate less than ``lookback`` after
the range's start would be judged on a partial history: a key seen just before the range looks
new. :func:`judged` keeps only candidates whose whole lookback lies in the range (``addinfo``'s
``info_min_time``; an all-time search has 0, so nothing is dropped). A scheduled search whose
range is ``lookback`` + its interval (+ the detection's span) then judges each candidate in
full, in one run or in the overlapping runs that all see the same history.
"""

from __future__ import annotations

from backends.base import Context
from backends.splunk.expr import eval_str, field_ref, number, seconds
from backends.splunk.streams import TAG, Names, StreamBuilder
from compiler import ir


def history_streams(a: ir.Analytic) -> list[str]:
    return [b.stream for b in a.baselines if isinstance(b, ir.FirstSeen)]


def applies(a: ir.Analytic, d: ir.Detection) -> bool:
    """One first-seen baseline (and no other history baseline) on a match or a two-step
    sequence whose second step is not the history stream."""
    hist = [b for b in a.baselines if not isinstance(b, ir.Deviation)]
    if len(hist) != 1 or not isinstance(hist[0], ir.FirstSeen):
        return False
    if isinstance(d, ir.Match):
        return True
    if isinstance(d, ir.Aggregate):
        # candidates are group windows: tumbling ones, epoch-aligned below a day as bin is
        return d.window.kind == "tumbling" and d.window.size_ms < 86_400_000
    return isinstance(d, ir.Sequence) and len(d.steps) == 2 and d.steps[1].stream != hist[0].stream


def history_note(ctx: Context, lookback_ms: int, candidate: str) -> None:
    """The history is read in the query's own pass, so from the search's time range."""
    ctx.note(
        f"the baseline history is read from the search's own time range: only {candidate}s "
        f"at least {seconds(lookback_ms)} after its start are judged (addinfo info_min_time; "
        f"an all-time search judges all), earlier ones would see a partial history (the "
        f"export's dispatch.earliest_time covers the lookback of the {candidate}s each "
        "scheduled run decides)"
    )


ADDINFO = "addinfo"  # info_min_time: the start of the search's time range


def judged(lookback_ms: int, at: str = "_time") -> str:
    """The condition that the candidate at ``at`` (epoch seconds) has its whole lookback
    inside the search's time range; needs :data:`ADDINFO` before it
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Addinfo)."""
    return f"{at}-{number(lookback_ms / 1000)}>=info_min_time"


def one_pass(
    a: ir.Analytic,
    ctx: Context,
    sb: StreamBuilder,
    names: Names,
    b: ir.FirstSeen,
    candidate: str | None,
    pooled: bool,
    candidate_field: CandidateField,
    start_s: int | None = None,
) -> list[str]:
    """Commands after the detection: ``candidate`` is the condition of the candidate rows
    (None: every row is a candidate and a history row, the match stream being the history).
    With ``start_s`` the candidates are the events of tumbling windows of that many seconds
    (before the aggregation): each is judged at its window's start, so a group window is
    dropped whole or kept whole."""
    hist = eval_str(b.stream)
    history_note(ctx, b.lookback_ms, "candidate")
    cmds: list[str] = []
    if candidate is None:
        if pooled:
            cmds.append(f"where {TAG}=={hist}")
        # each event is a candidate and a history row: one row for each role
        # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Mvexpand)
        cmds.append('eval siemc_role=mvappend("c", "h")')
        cmds.append("mvexpand siemc_role")
    else:
        cmds.append(f"where ({candidate}) OR {TAG}=={hist}")
        cmds.append(f'eval siemc_role=if({candidate}, "c", "h")')
    sets = []
    for i, (k, c) in enumerate(zip(b.keys, b.current, strict=True)):
        h, cf = field_ref(names(k, b.span)), field_ref(candidate_field(c))
        sets.append(f"siemc_h{i}={h}" if h == cf else f'siemc_h{i}=if(siemc_role=="h", {h}, {cf})')
    sets.append('siemc_ht=if(siemc_role=="h", _time, null())')
    cmds.append("eval " + ", ".join(sets))
    for i, k in enumerate(b.keys):
        if k in sb.multi:
            # a history event records every element
            cmds.append(f"mvexpand siemc_h{i}")
    if start_s is not None:
        # judged at the window start: _time moved there for the pass, restored after
        cmds.append(
            f'eval siemc_t=_time, _time=if(siemc_role=="c", floor(_time/{start_s})*{start_s}, '
            "_time)"
        )
    # "c" sorts before "h": at one time the candidates come first
    cmds.append("sort 0 _time siemc_role")
    group = " ".join(f"siemc_h{i}" for i in range(len(b.keys)))
    cmds.append(
        f"streamstats current=f time_window={seconds(b.lookback_ms + 1000)} "
        f"last(siemc_ht) AS siemc_seen BY {group}"
    )
    look = number(b.lookback_ms / 1000)
    cmds.append(ADDINFO)
    cmds.append(
        f'where siemc_role=="c" AND {judged(b.lookback_ms)} '
        f"AND (isnull(siemc_seen) OR siemc_seen<_time-{look})"
    )
    if start_s is not None:
        cmds.append("eval _time=siemc_t")
    cmds.append("fields - siemc_role siemc_h* siemc_seen info_*" + (" siemc_t" if start_s else ""))
    return cmds


class CandidateField:
    """The field a candidate reads for an ``as:`` name (a step-prefixed field, or a field)."""

    def __init__(self, ctx: Context, names: Names) -> None:
        self.ctx, self.names = ctx, names

    def __call__(self, name: str) -> str:
        head, _, rest = name.partition(".")
        if rest and head in self.ctx.analytic.step_aliases():
            return self.ctx.profile.local(name)
        return self.names(name, ir.NO_SPAN)
