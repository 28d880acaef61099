"""Two-step sequences from a process to its children, with any number of first-step events per
key: the partial each child finds is the latest first step before it.

The first step is keyed on a process (``process.pid`` or ``process.entity_id``), the second on
its parent (``process.parent.pid`` / ``process.parent.entity_id``) at the same position, the
other positions on the same fields. When no event can be in both streams, docs/semantics.md's
sequence alerts, per key, for a first-step event ``s`` exactly when the first second-step event
``d`` after it comes before the next first-step event (which would replace ``s``) and within
maxspan; later second-step events find ``s`` consumed. So every second-step event pairs with the
latest first step at or before it, and each first step with the earliest of the events that
pair with it::

    STATS siemc_starts = VALUES(@timestamp) WHERE <step 1>,
          siemc_children = VALUES(@timestamp) WHERE <step 2> BY key
    | MV_EXPAND siemc_children | MV_EXPAND siemc_starts | WHERE siemc_starts <= siemc_children
    | STATS start = MAX(siemc_starts) BY key, siemc_children
    | STATS end = MIN(siemc_children) BY key, start
    | WHERE end <= start + maxspan

No key-level identity is assumed: a reused PID replaces the pending start as in siemc. Without
input order, a child at a first step's own millisecond is taken to come after it (a child
starts after its parent), the one data condition, stated in a NOTE.
"""

from __future__ import annotations

from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import duration
from backends.elastic_esql.expr import ident
from backends.elastic_esql.streams import ENTITY, MultiRead, check_keys
from backends.identity import disjoint_streams
from compiler import ir

PARENT = {"process.pid": "process.parent.pid", ENTITY: "process.parent.entity_id"}


def link(seq: ir.Sequence) -> int | None:
    """The key position linking the second step's parent to the first step's process."""
    if len(seq.steps) != 2 or seq.until is not None:
        return None
    first, second = seq.steps
    if len(first.keys) != len(second.keys):
        return None
    pos = [i for i, k in enumerate(first.keys) if PARENT.get(k) == second.keys[i]]
    if len(pos) != 1:
        return None
    others = [
        (a, b) for i, (a, b) in enumerate(zip(first.keys, second.keys, strict=True)) if i != pos[0]
    ]
    return pos[0] if all(a == b for a, b in others) else None


def disjoint(b: QueryBuild, x: str, y: str) -> bool:
    """Whether no event can be in both streams; an ECS array field may hold a value of each
    set, so it proves nothing."""
    return disjoint_streams(b.analytic, x, y, frozenset(b.r.arrays))


def commands(b: QueryBuild, seq: ir.Sequence, pos: int) -> list[str]:
    first, second = seq.steps
    m = MultiRead(
        b,
        [first.stream, second.stream],
        [(first.stream, k) for k in first.keys] + [(second.stream, k) for k in second.keys],
    )
    cmds = list(m.build().commands)
    cols1, cols2 = m.cols[first.stream], m.cols[second.stream]
    c1s = [cols1.get(k, k) for k in first.keys]
    c2s = [cols2.get(k, k) for k in second.keys]
    check_keys(m, [*c1s, *c2s], "ordered sequence", seq.span)
    step1 = " AND ".join([m.flag[first.stream], *(f"{ident(c)} IS NOT NULL" for c in c1s)])
    step2 = " AND ".join([m.flag[second.stream], *(f"{ident(c)} IS NOT NULL" for c in c2s)])
    evals = [f"siemc_step_1 = COALESCE({step1}, false)", f"siemc_step_2 = COALESCE({step2}, false)"]
    by = []
    for i, (k, a, c) in enumerate(zip(first.keys, c1s, c2s, strict=True), 1):
        if a == c == k:
            by.append(ident(k))
            continue
        col = f"siemc_seq_key_{i}"
        evals.append(f"{col} = CASE(siemc_step_1, {ident(a)}, siemc_step_2, {ident(c)}, null)")
        by.append(f"{ident(k)} = {col}")
    names = [ident(k) for k in first.keys]
    b.ctx.note(
        f"exact when an event of '{second.stream}' at the millisecond of an event of "
        f"'{first.stream}' with its key comes after it in input order (ES|QL keeps no input "
        "order; a child starts after its parent): each child pairs with the latest event of "
        f"'{first.stream}' at or before it, so a PID reused within maxspan replaces the "
        "pending one, as in siemc"
    )
    return [
        *cmds,
        "EVAL " + ",\n    ".join(evals),
        "WHERE siemc_step_1 OR siemc_step_2",
        "STATS siemc_starts = VALUES(@timestamp) WHERE siemc_step_1,\n"
        "    siemc_children = VALUES(@timestamp) WHERE siemc_step_2\n    BY " + ", ".join(by),
        # a key without one of the two kinds holds no pair (and MV_EXPAND of null is undocumented)
        "WHERE siemc_starts IS NOT NULL AND siemc_children IS NOT NULL",
        "MV_EXPAND siemc_children",
        "MV_EXPAND siemc_starts",
        "WHERE siemc_starts <= siemc_children",
        # the partial each child finds: a newer first step replaced the older ones
        "STATS start = MAX(siemc_starts) BY " + ", ".join([*names, "siemc_children"]),
        # the earliest child completes it and consumes it
        "STATS end = MIN(siemc_children) BY " + ", ".join([*names, "start"]),
        f"WHERE end <= start + {duration(seq.maxspan_ms)}",
        "KEEP " + ", ".join(["start", "end", *names]),
    ]
