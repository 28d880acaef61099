"""A single-event ``match`` with first-seen baselines: each matching event is a candidate,
decided against the history stream over ``[ts - lookback, ts)`` in the same read.

The detection's and the history's streams are read once (backends/elastic_esql/streams.py);
``INLINE STATS VALUES(@timestamp) BY <key tuple>`` gives every candidate row the times its tuple
occurred in the history, and ``MV_EXPAND`` with a test per time decides "never seen"
(backends/elastic_esql/baselines.py, docs/semantics.md "Baselines"). The expansion multiplies
each candidate by its history times; a second ``INLINE STATS ... BY _index, _id`` counts the
times inside the lookback per event (``_index`` and ``_id`` name one document), and the row
holding the smallest time of each list is the one kept, so each candidate alerts once.
"""

from __future__ import annotations

from backends.elastic_esql import baselines as bl_mod
from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import METADATA
from backends.elastic_esql.expr import ident
from backends.elastic_esql.rename import pred_fields
from backends.elastic_esql.streams import MultiRead
from compiler import ir


def match_first_seen(b: QueryBuild, d: ir.Match) -> list[str]:
    ctx = b.ctx
    bls = list(b.analytic.baselines)
    for x in bls:
        if not isinstance(x, ir.FirstSeen):
            raise ctx.not_implemented(
                f"{type(x).__name__} baseline on a single-event match", x.span
            )
    first_seen = [x for x in bls if isinstance(x, ir.FirstSeen)]
    if not b.stack.inline_stats:
        raise b.needs_inline_stats("a first-seen baseline decided per event", first_seen[0].span)
    consumers = [(d.stream, c) for x in first_seen for c in x.current]
    consumers += [(x.stream, k) for x in first_seen for k in x.keys]
    m = MultiRead(b, [d.stream, *(x.stream for x in first_seen)], consumers)
    cmds = list(m.build().commands)
    cols = m.cols[d.stream]
    cand = bl_mod.Candidates(
        m.flag[d.stream], "@timestamp", [[cols.get(c, c) for c in x.current] for x in first_seen]
    )
    cmds += bl_mod.history(m, first_seen, cand, None)
    is_cand = [cand.cond] if cand.role is None else [f'{cand.role} == "c"', cand.cond]
    cmds.append("WHERE " + " AND ".join(is_cand))
    # the row kept after the expansion: the smallest time (VALUES holds each time once; the
    # candidate's own time stands in for an empty history, as in bl_mod.decide)
    cmds.append(
        "EVAL "
        + ",\n    ".join(
            f"siemc_first_{i} = MV_MIN(COALESCE({col}, @timestamp))"
            for i, col in enumerate(cand.lists, 1)
        )
    )
    cmds += bl_mod.decide(cand, first_seen, all_rows=True)
    seen = [f"siemc_seen_{i}" for i in range(1, len(first_seen) + 1)]
    cmds.append(
        "INLINE STATS "
        + ",\n    ".join(f"{s}_n = COUNT(*) WHERE {s}" for s in seen)
        + "\n    BY _index, _id"
    )
    conds = [f"{s}_n == 0" for s in seen]
    conds += [f"{col} == siemc_first_{i}" for i, col in enumerate(cand.lists, 1)]
    cmds.append("WHERE " + "\n    AND ".join(conds))
    fields = [*sorted(pred_fields(b.analytic.stream(d.stream).filter))]
    fields += [c for x in first_seen for c in x.current]
    own = [f for f in fields if cols.get(f, f) == f and f != "@timestamp"]
    keep = [*METADATA, "@timestamp", *dict.fromkeys(own)]
    cmds.append("KEEP " + ", ".join(ident(f) for f in keep))
    return cmds
