"""Unordered co-occurrence as a declared superset: member counts per key over hopping buckets.

siemc's co-occurrence (docs/semantics.md, "Co-occurrence") fires when every member has an
event of one key and the chosen events lie within the window W (``max ts - min ts <= W``),
the latest usable event of each member, consuming them. ES|QL has neither input order nor
per-row windows, so the query counts each member's events per key in epoch-aligned buckets of
2W every W (each event in two, MV_EXPAND): events within W of each other always share one
bucket, and the distinct events siemc chooses make every member's count reach the number of
members reading its stream. The query therefore fires for every key and time siemc alerts on;
it also fires on members up to 2W apart and once per bucket instead of once per consumed set.
"""

from __future__ import annotations

from collections import Counter

from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import duration, slug
from backends.elastic_esql.expr import ident
from backends.elastic_esql.streams import MultiRead, check_keys
from compiler import ir


class CooccurrenceBuilder:
    def __init__(self, b: QueryBuild, co: ir.Cooccurrence) -> None:
        self.b = b
        self.ctx = b.ctx
        self.co = co

    def commands(self) -> list[str]:
        co = self.co
        if self.b.analytic.baselines:
            bl = self.b.analytic.baselines[0]
            raise self.ctx.not_implemented(
                f"{type(bl).__name__} baseline on a co-occurrence", bl.span
            )
        consumers = [(s.stream, k) for s in co.members for k in s.keys]
        m = MultiRead(self.b, [s.stream for s in co.members], consumers)
        cmds = list(m.build().commands)
        first = co.members[0]
        cols = [m.cols[first.stream].get(k, k) for k in first.keys]
        for s in co.members[1:]:
            if [m.cols[s.stream].get(k, k) for k in s.keys] != cols:
                raise self.ctx.not_implemented(
                    "co-occurrence whose members are keyed on different fields", co.span
                )
        check_keys(m, cols, "unordered co-occurrence", co.span)
        size, double = duration(co.window_ms), duration(2 * co.window_ms)
        self.ctx.approximate(
            "unordered co-occurrence",
            f"each member's events counted per key over epoch-aligned hopping buckets of "
            f"{double} every {size} (each event in two): members within {size} of each other "
            "always share a bucket, so the query fires for every key and time siemc alerts "
            f"on; it also fires on members up to {double} apart, in any order, and once per "
            "bucket instead of once per consumed set of events",
            co.span,
            direction="superset",
        )
        nonnull = [f"{ident(c)} IS NOT NULL" for c in cols]
        streams = Counter(s.stream for s in co.members)
        counts, conds, outs = [], [], []
        for stream, need in streams.items():
            n = f"events_{slug(stream)}"
            counts.append(f"{n} = COUNT(*) WHERE {m.flag[stream]}")
            outs.append(n)
            # distinct events: a stream listed k times needs k of its events
            conds.append(f"{n} >= {need}")
        start = f"DATE_TRUNC({size}, @timestamp)"
        keys = [
            ident(c) if c == k else f"{ident(k)} = {ident(c)}"
            for k, c in zip(first.keys, cols, strict=True)
        ]
        cmds += [
            "WHERE ("
            + " OR ".join(m.flag[s] for s in streams)
            + ")\n    AND "
            + " AND ".join(nonnull),
            f"EVAL window = MV_APPEND({start} - {size}, {start})",
            "MV_EXPAND window",
            "STATS " + ",\n    ".join(counts) + "\n    BY " + ", ".join(["window", *keys]),
            "WHERE " + " AND ".join(conds),
            f"EVAL window_end = window + {double}",
            "KEEP " + ", ".join(["window", "window_end", *(ident(k) for k in first.keys), *outs]),
        ]
        return cmds
