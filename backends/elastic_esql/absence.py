"""Absence as a forward window: each ``first`` event alerts unless a ``missing`` event with equal
keys follows within the window (docs/semantics.md, "Absence").

One read of both streams; ``INLINE STATS siemc_next = VALUES(@timestamp) WHERE <missing> BY
<keys>`` gives every first event the times of its key's missing events; MV_EXPAND and a count of
the times in ``(t, t + within]`` decide each first event, which is its own instance. An instance
is decided once ``NOW()`` reaches ``t + within``, as a scheduled rule sees it. A missing event
must be strictly later than the first event, as in the evaluator: at one millisecond neither
comes first (an event in both streams never suppresses itself).
"""

from __future__ import annotations

from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import duration
from backends.elastic_esql.expr import ident
from backends.elastic_esql.streams import MultiRead, check_keys
from compiler import ir


class AbsenceBuilder:
    def __init__(self, b: QueryBuild, d: ir.Absence) -> None:
        self.b = b
        self.ctx = b.ctx
        self.d = d

    def commands(self) -> list[str]:
        d = self.d
        if self.b.analytic.baselines:
            x = self.b.analytic.baselines[0]
            raise self.ctx.not_implemented(f"{type(x).__name__} baseline on an absence", x.span)
        if not self.b.stack.inline_stats:
            raise self.b.needs_inline_stats("an absence", d.span)
        first, missing = d.first, d.missing
        consumers = [(first.stream, k) for k in first.keys]
        consumers += [(missing.stream, k) for k in missing.keys]
        m = MultiRead(self.b, [first.stream, missing.stream], consumers)
        cmds = list(m.build().commands)
        fcols = [m.cols[first.stream].get(k, k) for k in first.keys]
        mcols = [m.cols[missing.stream].get(k, k) for k in missing.keys]
        if fcols != mcols:
            raise self.ctx.not_implemented(
                "absence whose first and missing events key on different columns", d.span
            )
        check_keys(m, fcols, "absence", d.span)
        keys = [ident(c) for c in fcols]
        nonnull = " AND ".join(f"{k} IS NOT NULL" for k in keys)
        within = duration(d.within_ms)
        cmds += [
            f"EVAL siemc_first = COALESCE({m.flag[first.stream]} AND {nonnull}, false)",
            f"INLINE STATS siemc_next = VALUES(@timestamp) WHERE {m.flag[missing.stream]}\n"
            f"    BY {', '.join(keys)}",
            f"WHERE siemc_first AND @timestamp + {within} <= NOW()",
            "EVAL siemc_next = COALESCE(siemc_next, @timestamp)",
            "MV_EXPAND siemc_next",
            "EVAL siemc_hit = COALESCE(siemc_next > @timestamp AND "
            f"siemc_next <= @timestamp + {within}, false)",
            "STATS siemc_hits = COUNT(*) WHERE siemc_hit\n"
            f"    BY _index, _id, @timestamp, {', '.join(keys)}",
            "WHERE siemc_hits == 0",
        ]
        out = [
            ident(k) if k == c else f"{ident(k)} = {ident(c)}"
            for k, c in zip(first.keys, fcols, strict=True)
        ]
        renames = [o for o in out if " = " in o]
        if renames:
            cmds.append("EVAL " + ", ".join(renames))
        cmds.append(
            "KEEP "
            + ", ".join(dict.fromkeys(["_id", "@timestamp", *(ident(k) for k in first.keys)]))
        )
        return cmds
