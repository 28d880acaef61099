"""When the kql backend can consume: the scan forms of sliding windows and co-occurrence
(backends/sentinel/scan.py renders them), and the conditions under which they apply."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.base import Context
from backends.identity import disjoint_streams
from backends.sentinel import scan
from backends.sentinel import text as t
from backends.sentinel.expr import Scope
from compiler import ir


class KqlConsumeMixin:
    lets: list[tuple[str, str]]
    _ctx_analytic: ir.Analytic

    if TYPE_CHECKING:  # provided by KqlExprMixin / KqlDetectMixin

        def col(self, name: str, span: ir.Span, ctx: Context) -> str: ...
        def ctype(self, column: str) -> str: ...
        def _use(self, stream: str) -> Scope: ...

    def _sliding_scan(
        self, agg: ir.Aggregate, keys: list[str], lines: list[str], ctx: Context
    ) -> str | None:
        """The consuming sliding window as a scan (backends/sentinel/scan.py), or None where
        the scan form does not apply: no group keys, compute, a having other than `measure op
        number`, a conditional measure, or a measure other than an event count or a distinct
        count of a string or integer column."""
        having = scan.simple_having(agg)
        if not keys or agg.compute or having is None:
            return None
        measures: list[scan.Measure] = []
        pre: list[str] = []
        fcols: list[str] = []
        for i, m in enumerate(agg.measures):
            if m.where is not None or t.ident(m.name) != m.name or m.name in keys:
                return None
            if m.kind == "count" and m.field is None:
                measures.append(scan.Measure(m.name, "count"))
                continue
            if m.kind != "distinct" or m.field is None:
                return None
            c = self.col(m.field, m.span, ctx)
            ty = self.ctype(c)
            if ty not in ("string", "long", "int"):
                return None
            fcols.append(c)
            value = t.ident(c)
            if ty != "string":
                # as strings, "" for none: the set of a string column's values leaves out ""
                # (a string column's absent value), so a number's does too
                value = f"__x{i}"
                pre.append(f'{value} = iff(isnotnull({t.ident(c)}), tostring({t.ident(c)}), "")')
            measures.append(scan.Measure(m.name, "distinct", value))
        if any(m.kind == "distinct" for m in measures):
            ctx.approximate("sliding window ties", scan.TIES_DISTINCT, agg.window.span)
        ctx.note(f"sliding window ({agg.window.span.at()}): {scan.NOTE_SLIDING}")
        w = f"__w_{_safe(agg.stream)}"
        proj = ", ".join([f"__t = {self.col('@timestamp', agg.span, ctx)}",
                          *[t.ident(c) for c in dict.fromkeys(keys + fcols)]])  # fmt: skip
        self.lets.append((w, "\n".join([*lines, f"| project {proj}"])))
        body, final = scan.sliding(
            w, [t.ident(k) for k in keys], measures, having, agg.window.size_ms, pre
        )
        self.lets.append(("__scan", body))
        return final

    def _members_disjoint(self, d: ir.Cooccurrence, ctx: Context) -> bool:
        """Whether no event is a row of two members: each member's own stream, and any two
        read different tables (a row is in one table) or filters that exclude each other."""
        names = [m.stream for m in d.members]
        if len(set(names)) != len(names):
            return False
        tables, arrays = {}, set()
        for m in d.members:
            sc = self._use(m.stream)
            tables[m.stream] = sc.source.table
            arrays |= {f for f, c in sc.source.fields.items() if self.ctype(c) == "dynamic"}
        a = self._ctx_analytic
        return all(
            tables[x] != tables[y] or disjoint_streams(a, x, y, frozenset(arrays))
            for i, x in enumerate(names)
            for y in names[i + 1 :]
        )


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
