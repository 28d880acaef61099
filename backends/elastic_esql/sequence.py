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

from backends.base import CompileError
from backends.elastic_esql import baselines as bl_mod
from backends.elastic_esql import child_sequence
from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import duration
from backends.elastic_esql.expr import ident
from backends.elastic_esql.streams import ENTITY, MultiRead, check_keys
from backends.identity import HOST_KEYS, sequence_process_key
from compiler import ir

PARENT_ENTITY = "process.parent.entity_id"
NEAREST = (
    "compile to eql (sequence), kql or splunk; the nearest ES|QL form starts at the process: "
    "a first step over process starts keyed on [host.name, process.entity_id] (the second "
    "step keyed on the same process or its parent), or an unordered STATS ... BY host.name, "
    "process.entity_id of both event kinds, which drops the order"
)


class SequenceBuilder:
    def __init__(self, b: QueryBuild, seq: ir.Sequence) -> None:
        self.b = b
        self.ctx = b.ctx
        self.seq = seq
        self.analytic = b.analytic
        self.r = b.r

    def commands(self) -> list[str]:
        seq = self.seq
        pos = child_sequence.link(seq)
        if pos is not None and self._by_children(pos):
            return child_sequence.commands(self.b, seq, pos)
        first, second = self._steps()
        g1, g2 = self._key_fields()
        bls = list(self.analytic.baselines)
        if not self.b.stack.inline_stats and bls:
            raise self.b.needs_inline_stats("a sequence with a baseline", bls[0].span)
        for x in bls:
            if not isinstance(x, ir.FirstSeen):
                raise self.ctx.not_implemented(f"{type(x).__name__} baseline on a sequence", x.span)
        first_seen = [x for x in bls if isinstance(x, ir.FirstSeen)]
        consumers = [(first.stream, k) for k in (*first.keys, *g1)]
        consumers += [(second.stream, k) for k in (*second.keys, *g2)]
        for x in first_seen:
            consumers += [(x.stream, k) for k in x.keys]
            consumers += [self._candidate(c) for c in x.current]
        m = MultiRead(
            self.b, [first.stream, second.stream, *(x.stream for x in first_seen)], consumers
        )
        if not m.identity(g1, first.stream):
            raise self.ctx.unsupported(
                "ordered sequence",
                "the first step is not a process start, so a key may have several first-step "
                "events; siemc pairs each second-step event with the latest pending one in "
                "input order (a newer one replaces it, a completed pair consumes both), which "
                "ES|QL, without input order or per-row window functions, cannot reproduce",
                seq.span,
                NEAREST,
            )
        self._conditions(m, g1, g2)
        p = m.build()
        cmds = list(p.commands)
        cols1, cols2 = m.cols[first.stream], m.cols[second.stream]
        c1s = [cols1.get(f, f) for f in g1]
        c2s = [cols2.get(f, f) for f in g2]
        check_keys(m, [*c1s, *c2s], "ordered sequence", seq.span)
        nonnull = [f"{ident(cols1.get(k, k))} IS NOT NULL" for k in first.keys]
        nonnull += [f"{ident(c)} IS NOT NULL" for c in c1s]
        c1 = " AND ".join([m.flag[first.stream], *dict.fromkeys(nonnull)])
        nonnull2 = [f"{ident(cols2.get(k, k))} IS NOT NULL" for k in second.keys]
        nonnull2 += [f"{ident(c)} IS NOT NULL" for c in c2s]
        c2 = " AND ".join([m.flag[second.stream], *dict.fromkeys(nonnull2)])
        flags = [f"siemc_step_1 = COALESCE({c1}, false)", f"siemc_step_2 = COALESCE({c2}, false)"]
        # one key column per position: the first step's field on its rows, the second step's
        # on its own (a row of both steps is a first-step row, as in every form here)
        keycols, shared = [], []
        for i, (a, b) in enumerate(zip(c1s, c2s, strict=True), 1):
            if a == b:
                keycols.append(a)
                continue
            col = f"siemc_seq_key_{i}"
            shared.append(f"{col} = CASE(siemc_step_1, {ident(a)}, siemc_step_2, {ident(b)}, null)")
            self.r.types[col] = self.r.kind(a)
            keycols.append(col)
        cmds.append("EVAL " + ",\n    ".join(flags + shared))
        by = [ident(c) for c in keycols]
        out_by = [
            ident(c) if c == f else f"{ident(f)} = {ident(c)}"
            for f, c in zip(g1, keycols, strict=True)
        ]
        names = [ident(f) for f in g1]
        if not self.b.stack.inline_stats:
            return cmds + self._without_inline_stats(first, cols1, out_by, names)
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
            out.append(ident(k))
            if ident(k) in names:
                continue
            aggs.append(f"{ident(k)} = VALUES({ident(col)}) WHERE siemc_step_1")
        aggs += [f"{s} = COUNT(*) WHERE {s}" for s in seen]
        cmds.append("WHERE siemc_step_1 OR siemc_step_2")
        cmds.append("STATS " + ",\n    ".join(aggs) + "\n    BY " + ", ".join(out_by))
        cmds.append("WHERE " + "\n    AND ".join(["end IS NOT NULL", *(f"{s} == 0" for s in seen)]))
        cmds.append("KEEP " + ", ".join(dict.fromkeys([*out, *names])))
        return cmds

    def _by_children(self, pos: int) -> bool:
        """Whether the sequence from a process to its children pairs each child with the
        latest first step before it (backends/elastic_esql/child_sequence.py): no baseline, no
        event of both steps, and no single-read form below already exact (a first step keyed
        on the entity id, whose one start per key makes the INLINE STATS pairing exact when
        the two steps read different event categories)."""
        first, second = self.seq.steps
        if self.analytic.baselines or not child_sequence.disjoint(
            self.b, first.stream, second.stream
        ):
            return False
        if first.keys[pos] != ENTITY:
            return True
        cats = {
            s.source.category if isinstance(s.source, ir.LogSource) else None
            for s in (self._root(first.stream), self._root(second.stream))
        }
        return len(cats) == 1

    def _root(self, name: str) -> ir.Stream:
        s = self.analytic.stream(name)
        while isinstance(s.source, str):
            s = self.analytic.stream(s.source)
        return s

    def _steps(self) -> tuple[ir.Step, ir.Step]:
        if len(self.seq.steps) != 2:
            raise self._refuse()
        first, second = self.seq.steps
        return first, second

    def _refuse(self) -> CompileError:
        return self.ctx.unsupported(
            "ordered sequence",
            "ES|QL has no ordered correlation of events: one read grouped by the key pairs "
            "each first-step event with its earliest second-step event, which is the sequence "
            "only for two steps whose first step holds process starts keyed on the process "
            "(host and process.entity_id, or host and process.pid until the process ends)",
            self.seq.span,
            NEAREST,
        )

    def _key_fields(self) -> tuple[list[str], list[str]]:
        """The fields each step is grouped on, position by position. ``by: [host, pid]``
        until the process ends is the process identity (both steps keyed on it); without
        ``until``, a first step keyed on the host and ``process.entity_id`` names one process
        itself, and the second step's keys (its own process, its parent, ...) are read as
        written."""
        seq = self.seq
        first, second = seq.steps
        pk = sequence_process_key(self.analytic, seq)
        if pk is not None and pk.host:
            group = [*pk.host, ENTITY, *pk.others]
            return group, list(group)
        if seq.until is None and ENTITY in first.keys and any(k in HOST_KEYS for k in first.keys):
            return list(first.keys), list(second.keys)
        raise self._refuse()

    def _conditions(self, m: MultiRead, g1: list[str], g2: list[str]) -> None:
        """The data conditions under which one read grouped by the key is the sequence when
        the second step is keyed on another process than its own (its parent, ...): beyond
        docs/semantics.md "Process identity", no event fills both steps, and a second-step
        event at the first step's millisecond comes after it in input order."""
        seq = self.seq
        first, second = seq.steps
        linked = g2[g1.index(ENTITY)]
        if linked == ENTITY:
            return  # the same process: the Process identity conditions
        cats = [self._category(m, first.stream), self._category(m, second.stream)]
        if None in cats or cats[0] == cats[1]:
            self.ctx.approximate(
                "ordered sequence",
                "one event may fill both steps: siemc lets it complete the pending sequence "
                f"of its {linked} and then start none of its own, where the query keeps it as "
                "a first step only",
                seq.span,
            )
        if linked != PARENT_ENTITY:
            self.ctx.approximate(
                "ordered sequence",
                f"the second step is linked to the first by {linked}: ES|QL keeps no input "
                "order, so a second-step event at the first step's own millisecond counts, "
                "where siemc counts it only when it comes later in the input",
                seq.span,
            )
            return
        self.ctx.note(
            "exact under docs/semantics.md Process identity, for a first step and its child "
            f"processes' {cats[1]} events: no event is both a {cats[0]} and a {cats[1]} "
            "event, and a child's events come after its parent's start in input order (a "
            "second-step event at the first step's millisecond counts)"
        )

    @staticmethod
    def _category(m: MultiRead, stream: str) -> str | None:
        src = m.by_name[m.root(stream)].source
        return src.category if isinstance(src, ir.LogSource) else None

    def _without_inline_stats(
        self,
        first: ir.Step,
        cols1: dict[str, str],
        out_by: list[str],
        names: list[str],
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
            if ident(k) in names:
                continue
            aggs.append(f"{ident(k)} = VALUES({ident(col)}) WHERE siemc_step_1")
            carry.append(f"{ident(k)} = VALUES({ident(k)})")
        return [
            "WHERE siemc_step_1 OR siemc_step_2",
            "STATS " + ",\n    ".join(aggs) + "\n    BY " + ", ".join(out_by),
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
            + ", ".join(names),
            "WHERE end IS NOT NULL",
            "KEEP " + ", ".join(dict.fromkeys([*out, *names])),
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
