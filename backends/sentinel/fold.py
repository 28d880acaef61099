"""MDE: "process start, then an event of that process" as one query over the event's rows.

MDE's DeviceNetworkEvents and DeviceEvents rows carry the initiating process: its name, folder,
command line, id, creation time, parent name and id, and account
(learn.microsoft.com/defender-xdr/advanced-hunting-devicenetworkevents-table). A process is
DeviceId + ProcessId + ProcessCreationTime and has one start, so for a two-step sequence keyed on
the process identity whose first step holds process starts (:mod:`.process`), the start's event
is the row's initiating process, created at ``InitiatingProcessCreationTime``. The start's
pipeline (enrichments, derived fields, filters) is evaluated on those columns of the row, and the
sequence is the row's earliest event within maxspan of the creation: no join.

The same holds for "process starts, then a child of it starts" (keys: the first step's process
against the second step's parent, :func:`.process.parent_child`): a DeviceProcessEvents row's
Initiating* columns are the new process' parent, so the parent's start is read from the child's
row (docs/semantics.md, "Process identity": parent and child).

One MDE fact is used: the tables record a process' file name with its folder path, so the
fallback ``coalesce(process.parent.name, <expression of process.parent.executable>)``, which
analytics write for sources that log only a path, is the parent's name; the parent's folder is
not a column of these rows, and any other reading of it keeps the join form.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from backends.base import Context
from backends.sentinel import text as t
from backends.sentinel.expr import Scope, Source
from backends.sentinel.process import ENTITY
from compiler import ir

CARRIERS = frozenset({"DeviceNetworkEvents", "DeviceEvents"})
# process-creation rows: their Initiating* columns are the new process' parent
CHILDREN = "DeviceProcessEvents"
# ECS field of the initiating process -> the column of a carrier row holding it
VIEW = {
    "@timestamp": "InitiatingProcessCreationTime",
    "host.name": "DeviceName",
    "host.id": "DeviceId",
    "process.name": "InitiatingProcessFileName",
    "process.executable": "InitiatingProcessFolderPath",
    "process.command_line": "InitiatingProcessCommandLine",
    "process.pid": "InitiatingProcessId",
    ENTITY: "InitiatingProcessUniqueId",
    "process.parent.name": "InitiatingProcessParentFileName",
    "process.parent.pid": "InitiatingProcessParentId",
    "process.parent.entity_id": "InitiatingProcessParentUniqueId",
    "user.name": "InitiatingProcessAccountName",
    "user.domain": "InitiatingProcessAccountDomain",
}
_PARENT_PATH = "process.parent.executable"


def _fields(x: Any) -> Iterator[str]:
    """Every event field a predicate or expression reads."""
    if isinstance(x, ir.FieldRef):
        yield x.name
    elif isinstance(x, ir.InLookup):
        yield from (f for _, f in x.match)
    elif isinstance(x, ir.Eq | ir.StrMatch | ir.Regex | ir.Compare | ir.Exists | ir.Cidr):
        yield x.field
    elif isinstance(x, ir.And | ir.Or):
        for item in x.items:
            yield from _fields(item)
    elif isinstance(x, ir.Not):
        yield from _fields(x.item)
    elif isinstance(x, ir.BinOp):
        yield from _fields(x.left)
        yield from _fields(x.right)
    elif isinstance(x, ir.UnaryOp):
        yield from _fields(x.operand)
    elif isinstance(x, ir.Call):
        for y in x.args:
            yield from _fields(y)


def _parent_fallback(e: ir.Expr) -> ir.Expr:
    """``coalesce(process.parent.name, f(process.parent.executable))`` -> the name (module
    docstring); other expressions unchanged."""
    if (
        isinstance(e, ir.Call)
        and e.func == "coalesce"
        and len(e.args) == 2
        and isinstance(e.args[0], ir.FieldRef)
        and e.args[0].name == "process.parent.name"
        and e.args[0].step is None
        and set(_fields(e.args[1])) == {_PARENT_PATH}
    ):
        return e.args[0]
    return e


def start_chain(analytic: ir.Analytic, stream: str, needed: set[str]) -> list[ir.Stream] | None:
    """The streams from the process-creation logsource to ``stream`` (root first), with the
    derived fields rewritten by :func:`_parent_fallback` and without the enrichments nothing
    reads (``needed``: the fields the caller reads), when every field they read is one the
    carrier rows hold (or one they make); None otherwise."""
    streams = {s.name: s for s in analytic.streams}
    chain: list[ir.Stream] = []
    name: str | None = stream
    while name is not None:
        s = streams[name]
        if s.join is not None:
            return None
        derive = tuple((n, _parent_fallback(e)) for n, e in s.derive)
        # a field derived as itself (the fallback above) is the row's column already
        derive = tuple(
            (n, e)
            for n, e in derive
            if not (isinstance(e, ir.FieldRef) and e.name == n and e.step is None)
        )
        chain.insert(0, ir.Stream(s.name, s.source, None, s.enrich, derive, s.filter, s.span))
        name = s.source if isinstance(s.source, str) else None
    made: set[str] = set()
    for s in chain:
        reads: list[str] = []
        for en in s.enrich:
            reads += [f for _, f in en.match]
        for n, e in s.derive:
            reads += [f for f in _fields(e) if f not in made]
            made.add(n)
        made |= {f for en in s.enrich for _, f in en.add}
        reads += list(_fields(s.filter))
        if any(f not in VIEW and f not in made for f in reads):
            return None
    read = set(needed)
    for s in chain:
        read |= {f for en in s.enrich for _, f in en.match}
        read |= {f for _, e in s.derive for f in _fields(e)} | set(_fields(s.filter))
    return [
        ir.Stream(
            s.name,
            s.source,
            None,
            tuple(en for en in s.enrich if any(f in read for _, f in en.add)),
            s.derive,
            s.filter,
            s.span,
        )
        for s in chain
    ]


class KqlFoldMixin:
    scope: Scope
    scopes: dict[str, Scope]
    used: set[str]

    def _view_columns(self, row: Scope, chain: list[ir.Stream], needed: set[str]) -> list[str]:
        """``| extend`` of the profile-computed view columns (the process ids) the folded start
        reads and the row's own stream did not compute."""
        reads = set(needed)
        for s in chain:
            reads |= {f for en in s.enrich for _, f in en.match}
            reads |= {f for _, e in s.derive for f in _fields(e)} | set(_fields(s.filter))
        made = {row.source.fields[f] for f in self.used if f in row.source.fields}
        cols = {VIEW[f] for f in reads if f in VIEW}
        ext = [f"{c} = {x}" for c, x in row.source.computed.items() if c in cols - made]
        return ["| extend " + ", ".join(ext)] if ext else []

    if TYPE_CHECKING:  # provided by KqlBackend / KqlDetectMixin

        def col(self, name: str, span: ir.Span, ctx: Context) -> str: ...
        def pipeline_lines(
            self,
            stream: ir.Stream,
            derive: tuple[tuple[str, ir.Expr], ...],
            analytic: ir.Analytic,
            ctx: Context,
        ) -> list[str]: ...
        def resolve_source(self, stream: ir.Stream, ctx: Context) -> Source: ...
        def _use(self, stream: str) -> Scope: ...
        def _present(self, c: str) -> str: ...

    def folded_sequence(
        self,
        a: ir.Analytic,
        d: ir.Sequence,
        extras: list[str],
        later: list[str],
        keys: list[str],
        ctx: Context,
    ) -> str | None:
        """The MDE one-query form of an identity-keyed two-step sequence (module docstring),
        with the key columns ``keys`` and ``<alias>_<field>`` columns for the fields of each
        step that baselines read (``extras`` of the first, ``later`` of the second); None when
        it does not apply."""
        first, second = d.steps
        if ctx.profile.name != "mde":
            return None
        row = self.scopes[second.stream]
        chain = start_chain(a, first.stream, set(extras))
        if row.source.table not in CARRIERS | {CHILDREN} or chain is None:
            return None
        self.scope = row
        if any(
            VIEW.get(k) != self.col(k2, d.span, ctx)
            for k, k2 in zip(first.keys, second.keys, strict=True)
        ):
            return None  # a key the row holds for another process than its initiating one
        # the start's columns, on the row
        types = {c: row.source.types.get(c, "string") for c in VIEW.values()}
        types["InitiatingProcessCreationTime"] = "datetime"
        view = Source(t.ident(second.stream), [], dict(VIEW), {}, types)
        self.scope = Scope(view, write_prefix="__p_")
        lines = [t.ident(second.stream), *self._view_columns(row, chain, set(extras))]
        root = chain[0]
        assert isinstance(root.source, ir.LogSource)
        # the start's logsource filters beyond "a process start" (the platform: same DeviceId)
        implied = set((ctx.profile.source("process_creation") or {}).get("where") or [])
        implied |= set(row.source.where)  # the row's own stream filtered on it already
        lines += [f"| where {w}" for w in self.resolve_source(root, ctx).where if w not in implied]
        for s in chain:
            lines += self.pipeline_lines(s, s.derive, a, ctx)
        start = self.scope
        cols = {f: self.col(f, d.span, ctx) for f in extras}
        created = "InitiatingProcessCreationTime"
        self.scope = row
        ts = t.ident(self.col("@timestamp", d.span, ctx))
        by = [t.ident(self.col(k, d.span, ctx)) for k in second.keys]
        # one start per process: keyed on PIDs, the group is still the initiating process
        ident = [*by, *(c for c in _IDENTITY if "InitiatingProcessUniqueId" not in by)]
        lines += [
            f"| where {' and '.join(self._present(c) for c in by)}",
            f"| where {ts} between ({created} .. ({created} + {t.timespan(d.maxspan_ms)}))",
            # the process' first such event completes the sequence and consumes the start
            f"| summarize arg_min({ts}, *) by {', '.join(dict.fromkeys(ident))}",
        ]
        proj = [f"__start = {created}", f"__end = {ts}"]
        proj += [f"{kn} = {c}" for kn, c in zip(keys, by, strict=True)]
        proj += [f"{first.alias}_{_safe(f)} = {t.ident(c)}" for f, c in cols.items()]
        proj += [f"{second.alias}_{_safe(f)} = {t.ident(self.col(f, d.span, ctx))}" for f in later]
        lines.append(f"| project {', '.join(proj)}")
        self.scope = start
        return "\n".join(lines)


# MDE's process identity on a row, for its initiating process (DeviceId is the host's)
_IDENTITY = ("DeviceId", "InitiatingProcessId", "InitiatingProcessCreationTime")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


class KqlJoinFoldMixin(KqlFoldMixin):
    if TYPE_CHECKING:  # provided by KqlExprMixin / KqlStreamMixin

        def target_col(self, name: str, ctx: Context) -> str: ...
        def ctype(self, column: str) -> str: ...

    def folded_join(self, j: ir.Join, a: ir.Analytic, ctx: Context) -> list[str] | None:
        """An MDE join of carrier rows with their own process' start (keys: the row's host and
        process identity) as filters on the row's initiating-process columns: the start's
        pipeline on those columns, its creation time within the join's bound, and the added
        fields read from them (module docstring). None when it does not apply."""
        mine = self.scope
        if ctx.profile.name != "mde" or mine.source.table not in CARRIERS:
            return None
        chain = start_chain(a, j.stream, set(j.add))
        if chain is None or ENTITY not in j.on:
            return None
        if any(VIEW.get(k) != self.col(k, j.span, ctx) for k in j.on):
            return None  # a key the row holds for another process (or not at all)
        types = {c: mine.source.types.get(c, "string") for c in VIEW.values()}
        types["InitiatingProcessCreationTime"] = "datetime"
        self.scope = Scope(Source("", [], dict(VIEW), {}, types), write_prefix="__jp_")
        implied = set((ctx.profile.source("process_creation") or {}).get("where") or [])
        implied |= set(mine.source.where)
        root = chain[0]
        lines = self._view_columns(mine, chain, set(j.add) | set(j.on))
        lines += [f"| where {w}" for w in self.resolve_source(root, ctx).where if w not in implied]
        for s in chain:
            lines += self.pipeline_lines(s, s.derive, a, ctx)
        start = self.scope
        added = [(f, self.col(f, j.span, ctx)) for f in j.add]
        self.scope = mine
        me = t.ident(self.col("@timestamp", j.span, ctx))
        w = t.timespan(j.within_ms)
        created = "InitiatingProcessCreationTime"
        bound = {
            "around": f"(({me} - {w}) .. ({me} + {w}))",
            "before": f"(({me} - {w}) .. {me})",
            "after": f"({me} .. ({me} + {w}))",
        }[j.direction]
        keys = [t.ident(self.col(k, j.span, ctx)) for k in j.on]
        lines.append(f"| where {' and '.join(self._present(c) for c in keys)}")
        lines.append(f"| where {created} between {bound}")
        sets = []
        for f, pc in added:
            col = self.target_col(f, ctx)
            ty = start.types.get(pc) or start.source.types.get(pc) or "string"
            empty = f"isempty({t.ident(pc)})" if ty == "string" else f"isnull({t.ident(pc)})"
            if col != pc:
                sets.append(f"{t.ident(col)} = iff({empty}, {t.ident(col)}, {t.ident(pc)})")
            self.scope.cols[f] = col
            self.scope.types[col] = ty
        if sets:
            lines.append(f"| extend {', '.join(sets)}")
        if any(c.startswith("__jp_") for c in start.cols.values()):
            lines.append("| project-away __jp_*")
        return lines
