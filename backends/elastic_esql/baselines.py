"""First-seen baselines decided per candidate, in the same read as the detection.

The history stream's rows and the candidate rows are grouped by the baseline's key tuple with
``INLINE STATS siemc_hist_<i> = VALUES(time) WHERE <history row> BY <tuple>``: every candidate row
gets the times at which its tuple occurred in the history. After the detection has reduced the
rows to candidates, ``MV_EXPAND`` of that list and a count of the times inside
``[start - lookback, start)`` decide "never seen" exactly (docs/semantics.md, "Baselines"). The
candidate's own time stands in for an empty list: it is never inside its own history interval and
keeps the row (what MV_EXPAND does with null is not documented).

A row that is both a candidate and a history event with different tuple values (the candidate
reads a joined or derived column) is expanded into two rows by a role column first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backends.elastic_esql.common import duration
from backends.elastic_esql.expr import ident
from backends.elastic_esql.streams import MultiRead, check_keys
from compiler import ir


@dataclass
class Candidates:
    """What the detection tells the baselines: the rows that are candidates (a condition),
    their tuple column per baseline field, and their time (a column or expression)."""

    cond: str
    time: str
    columns: list[list[str]]  # per baseline, the candidate's column of each key
    # set by :func:`history`: the per-baseline list columns, and the role column (if any)
    lists: list[str] = field(default_factory=list)
    role: str | None = None


def history(
    m: MultiRead,
    baselines: list[ir.FirstSeen],
    cand: Candidates,
    truncate_ms: int | None,
) -> list[str]:
    """Commands appending ``siemc_hist_<i>`` (the history times of the row's tuple) to every
    candidate row. With ``truncate_ms`` the times are truncated to that size (exact when the
    candidate's time and its lookback are multiples of it: fewer values to carry)."""
    cmds: list[str] = []
    for i, (bl, ccols) in enumerate(zip(baselines, cand.columns, strict=True), 1):
        hcols = [m.cols[bl.stream].get(k, k) for k in bl.keys]
        check_keys(m, sorted(set(hcols) | set(ccols)), "baseline", bl.span)
        hflag = m.flag[bl.stream]
        keys = []
        role = None
        if ccols != hcols:
            role = f"siemc_role_{i}"
            cmds.append(
                f'EVAL {role} = CASE({cand.cond} AND {hflag}, MV_APPEND("c", "h"), '
                f'{cand.cond}, "c", "h")'
            )
            cmds.append(f"MV_EXPAND {role}")
            evals = []
            for n, (c, h) in enumerate(zip(ccols, hcols, strict=True), 1):
                if c == h:
                    keys.append(ident(c))
                    continue
                k = f"siemc_key_{i}_{n}"
                evals.append(f'{k} = CASE({role} == "c", {ident(c)}, {ident(h)})')
                keys.append(k)
            cmds.append("EVAL " + ",\n    ".join(evals))
            is_hist = f'{role} == "h" AND {hflag}'
            cand.role = role
        else:
            keys = [ident(c) for c in ccols]
            is_hist = hflag
        # a history event with a null key records nothing: it must not reach the null group,
        # where candidates with a null key (never seen) land
        notnull = " AND ".join(f"{k} IS NOT NULL" for k in keys)
        t = (
            "@timestamp"
            if truncate_ms is None
            else f"DATE_TRUNC({duration(truncate_ms)}, @timestamp)"
        )
        col = f"siemc_hist_{i}"
        cmds.append(
            f"INLINE STATS {col} = VALUES({t}) WHERE {is_hist} AND {notnull}\n    BY "
            + ", ".join(keys)
        )
        cand.lists.append(col)
    return cmds


def decide(cand: Candidates, baselines: list[ir.FirstSeen], all_rows: bool) -> list[str]:
    """MV_EXPAND each list and flag the candidate rows with a history time inside the
    lookback; the caller counts ``siemc_seen_<i>`` per candidate. ``all_rows``: every row is a
    candidate (after the detection's STATS); otherwise other rows keep one value, so they are
    not multiplied."""
    cmds = []
    is_cand = "true" if all_rows else (f'{cand.role} == "c"' if cand.role else cand.cond)
    for i, bl in enumerate(baselines, 1):
        col = cand.lists[i - 1]
        # the candidate's own time is never in its history interval [time - lookback, time)
        fill = f"COALESCE({col}, {cand.time})"
        cmds.append(
            f"EVAL {col} = {fill}"
            if all_rows
            else f"EVAL {col} = CASE({is_cand}, {fill}, {cand.time})"
        )
        cmds.append(f"MV_EXPAND {col}")
        since = f"{cand.time} - {duration(bl.lookback_ms)}"
        test = f"{col} >= {since} AND {col} < {cand.time}"
        if not all_rows:
            test = f"{is_cand} AND {test}"
        cmds.append(f"EVAL siemc_seen_{i} = COALESCE({test}, false)")
    return cmds
