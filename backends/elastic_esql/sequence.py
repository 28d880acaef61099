"""Two-step sequences on one process: one read of both streams grouped by the process identity.

``by: [host.name, process.pid]`` with ``until: <process end>`` names one process
(backends/identity.py); ECS names it directly with ``process.entity_id``. When the first step is
a process start, a key has at most one first-step event, and it is the first event of its process
in input order (a process logs nothing before it starts). Then the evaluator's sequence
(docs/semantics.md, "Sequence") alerts once per key whose start has a second-step event at or
after it within maxspan, with the earliest such event: replacement, consumption and until have
nothing left to decide. In ES|QL::

    INLINE STATS siemc_seq_start = MIN(@timestamp) WHERE <step 1> BY host.name, process.entity_id
    STATS start = MIN(@timestamp) WHERE <step 1>,
          end = MIN(@timestamp) WHERE <step 2> AND siemc_seq_start <= @timestamp <= + maxspan
          BY host.name, process.entity_id

A second-step event at the start's own timestamp counts (the start comes first in input order);
the start event itself never fills step 2 (one event, one step).
"""

from __future__ import annotations

from backends.elastic_esql import baselines as bl_mod
from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import duration
from backends.elastic_esql.expr import ident
from backends.elastic_esql.streams import ENTITY, MultiRead, check_keys
from backends.identity import sequence_process_key
from compiler import ir


class SequenceBuilder:
    def __init__(self, b: QueryBuild, seq: ir.Sequence) -> None:
        self.b = b
        self.ctx = b.ctx
        self.seq = seq
        self.analytic = b.analytic

    def commands(self) -> list[str]:
        seq = self.seq
        pk = sequence_process_key(self.analytic, seq)
        if pk is None or len(seq.steps) != 2 or not pk.host:
            raise self.ctx.unsupported(
                "ordered sequence",
                "ES|QL has no ordered correlation of events; one read grouped by the key is "
                "exact only for two steps keyed on one process (by host and process.pid until "
                "the process ends)",
                seq.span,
                "compile to eql (sequence), kql or sigma",
            )
        first, second = seq.steps
        bls = list(self.analytic.baselines)
        if not self.b.stack.inline_stats and bls:
            raise self.b.needs_inline_stats("a sequence with a baseline", bls[0].span)
        for x in bls:
            if not isinstance(x, ir.FirstSeen):
                raise self.ctx.not_implemented(f"{type(x).__name__} baseline on a sequence", x.span)
        first_seen = [x for x in bls if isinstance(x, ir.FirstSeen)]
        consumers = [(s.stream, k) for s in seq.steps for k in s.keys]
        consumers += [(first.stream, ENTITY), (second.stream, ENTITY)]
        for x in first_seen:
            consumers += [(x.stream, k) for k in x.keys]
            consumers += [self._candidate(c) for c in x.current]
        m = MultiRead(
            self.b, [first.stream, second.stream, *(x.stream for x in first_seen)], consumers
        )
        if not m.identity([*pk.host, ENTITY], first.stream):
            raise self.ctx.unsupported(
                "ordered sequence",
                "the first step is not a process start, so a process may have several "
                "first-step events and ES|QL cannot pair them in order",
                seq.span,
                "compile to eql (sequence), kql or sigma",
            )
        p = m.build()
        cmds = list(p.commands)
        group = [*pk.host, ENTITY, *pk.others]
        cols1, cols2 = m.cols[first.stream], m.cols[second.stream]
        by = []
        for f in group:
            if cols1.get(f, f) != cols2.get(f, f):
                raise self.ctx.not_implemented(f"sequence key '{f}' computed by one step", seq.span)
            by.append(ident(cols1.get(f, f)))
        check_keys(m, [cols1.get(f, f) for f in group], "ordered sequence", seq.span)
        nonnull = [f"{ident(cols1.get(k, k))} IS NOT NULL" for k in first.keys]
        nonnull += [f"{k} IS NOT NULL" for k in by]
        c1 = " AND ".join([m.flag[first.stream], *dict.fromkeys(nonnull)])
        nonnull2 = [f"{ident(cols2.get(k, k))} IS NOT NULL" for k in second.keys]
        c2 = " AND ".join([m.flag[second.stream], *nonnull2])
        cmds.append(
            f"EVAL siemc_step_1 = COALESCE({c1}, false), siemc_step_2 = COALESCE({c2}, false)"
        )
        if not self.b.stack.inline_stats:
            return cmds + self._without_inline_stats(first, cols1, by)
        cmds.append(
            "INLINE STATS siemc_seq_start = MIN(@timestamp) WHERE siemc_step_1\n    BY "
            + ", ".join(by)
        )
        seen: list[str] = []
        if first_seen:
            cand = bl_mod.Candidates(
                "siemc_step_1",
                "@timestamp",
                [[self._candidate_col(m, c) for c in x.current] for x in first_seen],
            )
            cmds += bl_mod.history(m, first_seen, cand, None)
            cmds += bl_mod.decide(cand, first_seen, all_rows=False)
            seen = [f"siemc_seen_{i}" for i in range(1, len(first_seen) + 1)]
        span = duration(seq.maxspan_ms)
        step2 = (
            "siemc_step_2 AND NOT siemc_step_1 AND @timestamp >= siemc_seq_start"
            f" AND @timestamp <= siemc_seq_start + {span}"
        )
        aggs = [
            "start = MIN(@timestamp) WHERE siemc_step_1",
            f"end = MIN(@timestamp) WHERE {step2}",
        ]
        out = ["start", "end"]
        for k in first.keys:
            col = cols1.get(k, k)
            if ident(col) in by and col == k:
                out.append(ident(k))
                continue
            aggs.append(f"{ident(k)} = VALUES({ident(col)}) WHERE siemc_step_1")
            out.append(ident(k))
        aggs += [f"{s} = COUNT(*) WHERE {s}" for s in seen]
        cmds.append("WHERE siemc_step_1 OR siemc_step_2")
        cmds.append("STATS " + ",\n    ".join(aggs) + "\n    BY " + ", ".join(by))
        cmds.append("WHERE " + "\n    AND ".join(["end IS NOT NULL", *(f"{s} == 0" for s in seen)]))
        cmds.append("KEEP " + ", ".join(dict.fromkeys([*out, *by])))
        return cmds

    def _without_inline_stats(
        self, first: ir.Step, cols1: dict[str, str], by: list[str]
    ) -> list[str]:
        """Before 9.3: STATS by the key collects the start's time and every second-step time
        (VALUES), MV_EXPAND pairs them, and a second STATS keeps the earliest within maxspan
        (docs/research/target-idioms.md section 1.3, the flagged STATS idiom)."""
        span = duration(self.seq.maxspan_ms)
        within = f"siemc_next >= start AND siemc_next <= start + {span}"
        aggs = [
            "start = MIN(@timestamp) WHERE siemc_step_1",
            "siemc_next = VALUES(@timestamp) WHERE siemc_step_2 AND NOT siemc_step_1",
        ]
        carry = ["start = MIN(start)"]
        out = ["start", "end"]
        for k in first.keys:
            col = cols1.get(k, k)
            out.append(ident(k))
            if ident(col) in by and col == k:
                continue
            aggs.append(f"{ident(k)} = VALUES({ident(col)}) WHERE siemc_step_1")
            carry.append(f"{ident(k)} = VALUES({ident(k)})")
        return [
            "WHERE siemc_step_1 OR siemc_step_2",
            "STATS " + ",\n    ".join(aggs) + "\n    BY " + ", ".join(by),
            # a key without second-step events keeps one row (its own start) and no end
            "WHERE start IS NOT NULL",
            "EVAL siemc_next = COALESCE(siemc_next, start - 1 millisecond)",
            "MV_EXPAND siemc_next",
            "STATS "
            + ",\n    ".join(
                [
                    *carry,
                    f"end = MIN(siemc_next) WHERE {within}",
                ]
            )
            + "\n    BY "
            + ", ".join(by),
            "WHERE end IS NOT NULL",
            "KEEP " + ", ".join(dict.fromkeys([*out, *by])),
        ]

    def _candidate(self, name: str) -> tuple[str, str]:
        """The (stream, field) a baseline's candidate value reads: ``alias.field`` reads that
        step's event; a bare name the first step's."""
        for s in self.seq.steps:
            if name.startswith(s.alias + "."):
                return s.stream, name[len(s.alias) + 1 :]
        return self.seq.steps[0].stream, name

    def _candidate_col(self, m: MultiRead, name: str) -> str:
        stream, f = self._candidate(name)
        if stream != self.seq.steps[0].stream:
            raise self.ctx.not_implemented(
                "first_seen candidate from the second sequence step", self.seq.span
            )
        return m.cols[stream].get(f, f)
