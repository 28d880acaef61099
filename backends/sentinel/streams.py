"""Stream pipeline steps of the kql backend that read other data: lookup enrichments
(``lookup kind=leftouter`` against a watchlist) and stream joins.

An enrichment takes the first CSV row of its key (docs/semantics.md, Lookups), and a watchlist
keeps no row order (its items are rows of the Watchlist table, which has none). So the watchlist
of a lookup carries the CSV row number as a column of its own (:data:`ROW`, written by ``siemc
export --target sentinel`` and by the engine's watchlist), and where the CSV repeats a match key
the query keeps the row with the least number per key (``summarize arg_min(row, *) by key``).

A stream join pairs each event with ONE partner (docs/semantics.md, Join): the nearest in time
within ``within`` on the allowed side, at equal distance the earlier. KQL has no row identity, so
each event gets one (``new_guid()``, a random UUID per row: learn.microsoft.com/kusto/query/
new-guid-function) before ``join kind=inner`` (never the default ``innerunique``, which dedupes
the left keys); the time bound is a ``where``, and ``summarize arg_min(distance, *) by`` the row
id keeps one partner per event, so events with equal time and keys stay separate rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.base import Context
from backends.sentinel import text as t
from backends.sentinel.expr import Scope
from backends.sentinel.process import one_partner
from compiler import ir

# the watchlist column holding the CSV row number (1 the first data row); lookup columns named
# siemc_* are reserved (E128), so no CSV has it
ROW = "siemc_row"


def with_row_numbers(lk: ir.Lookup) -> ir.Lookup:
    """The lookup as its watchlist: the CSV's columns and :data:`ROW`."""
    rows = tuple((*r, str(n)) for n, r in enumerate(lk.rows, 1))
    return ir.Lookup(lk.name, lk.path, (*lk.columns, ROW), rows, lk.span)


class KqlStreamMixin:
    scope: Scope
    scopes: dict[str, Scope]
    folded: set[str]
    building: str  # the stream being built

    if TYPE_CHECKING:  # provided by KqlExprMixin / KqlBackend

        def col(self, name: str, span: ir.Span, ctx: Context) -> str: ...
        def target_col(self, name: str, ctx: Context) -> str: ...
        def ctype(self, column: str) -> str: ...
        def _dynamic(self, c: str, what: str, span: ir.Span, ctx: Context) -> None: ...
        def folded_join(self, j: ir.Join, a: ir.Analytic, ctx: Context) -> list[str] | None: ...

    def enrich_lines(self, en: ir.Enrich, analytic: ir.Analytic, ctx: Context) -> list[str]:
        lk = analytic.lookup(en.lookup)
        keyed = [tuple(r[lk.columns.index(c)].lower() for c, _ in en.match) for r in lk.rows]
        dup = len(set(keyed)) != len(keyed)
        lefts, rights, proj = [], [], []
        for i, (column, fld) in enumerate(en.match):
            c = self.col(fld, en.span, ctx)
            self._dynamic(c, "a lookup enrichment", en.span, ctx)
            lefts.append(f"__lk{i} = tolower(tostring({t.ident(c)}))")
            rights.append(f"__lk{i} = tolower(tostring({t.ident(column)}))")
        for column, _ in en.add:
            proj.append(f"__e_{_safe(column)} = tostring({t.ident(column)})")
        keys = ", ".join(f"__lk{i}" for i in range(len(en.match)))
        if dup:
            proj.append(f"__lk_row = toint({ROW})")
        right = f"_GetWatchlist({t.string(en.lookup)}) | project {', '.join(rights + proj)}"
        right += " | where " + " and ".join(f"isnotempty(__lk{i})" for i in range(len(en.match)))
        if dup:
            ctx.note(
                f"lookup '{en.lookup}' repeats a match key; the evaluator takes the first CSV row "
                f"of a key, and the watchlist's column {ROW} is the CSV row number (a watchlist "
                "keeps no row order; siemc export --target sentinel writes the column): the "
                "query keeps the least per key"
            )
            right += f" | summarize arg_min(__lk_row, *) by {keys}"
        out = [f"| extend {', '.join(lefts)}", f"| lookup kind=leftouter ({right}) on {keys}"]
        sets = []
        for column, fld in en.add:
            col = self.target_col(fld, ctx)
            self.scope.cols[fld] = col
            self.scope.types[col] = "string"
            sets.append(f"{t.ident(col)} = __e_{_safe(column)}")
        out.append(f"| extend {', '.join(sets)}")
        out.append("| project-away __lk*, __e_*")
        return out

    def join_lines(self, j: ir.Join, analytic: ir.Analytic, ctx: Context) -> list[str]:
        if one_partner(analytic, j.on, j.stream):
            folded = self.folded_join(j, analytic, ctx)
            if folded is not None:
                self.folded.add(self.building)
                return folded
        if j.add and not one_partner(analytic, j.on, j.stream):
            ctx.approximate(
                "stream join",
                f"partners in '{j.stream}' at the same timestamp and distance are a tie the "
                "evaluator breaks by input order, which KQL rows do not have (arg_min keeps one "
                "of them): the added fields may come from the other tied partner",
                j.span,
                direction="mixed",
            )
        other = self.scopes[j.stream]
        mine = self.scope
        t_me = self.col("@timestamp", j.span, ctx)
        lkeys = [self.col(f, j.span, ctx) for f in j.on]
        self.scope = other
        t_other = self.col("@timestamp", j.span, ctx)
        rkeys = [self.col(f, j.span, ctx) for f in j.on]
        radd = [(f, self.col(f, j.span, ctx)) for f in j.add]
        for c in rkeys:
            self._dynamic(c, "a join key", j.span, ctx)
        self.scope = mine
        for c in lkeys:
            self._dynamic(c, "a join key", j.span, ctx)
        proj = [f"__jt = {t.ident(t_other)}"]
        proj += [f"__jk{i} = {t.ident(c)}" for i, c in enumerate(rkeys)]
        proj += [f"__ja{i} = {t.ident(c)}" for i, (_, c) in enumerate(radd)]
        on = ", ".join(f"$left.{t.ident(lc)} == $right.__jk{i}" for i, lc in enumerate(lkeys))
        w = t.timespan(j.within_ms)
        me = t.ident(t_me)
        cond = {
            # `between` rather than abs() of a timespan: the same inclusive bound, and the form
            # duckdb-kql (the differential engine) can run
            "around": f"__jt between (({me} - {w}) .. ({me} + {w}))",
            "before": f"__jt between (({me} - {w}) .. {me})",
            "after": f"__jt between ({me} .. ({me} + {w}))",
        }[j.direction]
        present = " and ".join(self._present(c) for c in lkeys)
        out = [
            f"| where {present}",
            "| extend __jrow = new_guid()",
            f"| join kind=inner ({t.ident(j.stream)} | project {', '.join(proj)}) on {on}",
            f"| where {cond}",
        ]
        if j.add:
            # the nearest partner; at equal distance the earlier one (docs/semantics.md, Join):
            # twice the distance, plus one for a later partner
            out += [
                f"| extend __jd = 2 * abs(tolong(__jt - {me})) + iff(__jt > {me}, 1, 0)",
                "| summarize arg_min(__jd, *) by __jrow",
            ]
        else:
            # without added fields any partner will do: the event is kept once
            out.append("| summarize take_any(*) by __jrow")
        sets = []
        for i, (f, rc) in enumerate(radd):
            col = self.target_col(f, ctx)
            ty = other.types.get(rc) or other.source.types.get(rc) or "string"
            empty = f"isempty(__ja{i})" if ty == "string" else f"isnull(__ja{i})"
            cur = t.ident(col) if (f in mine.cols or f in mine.source.fields) else None
            sets.append(
                f"{t.ident(col)} = " + (f"iff({empty}, {cur}, __ja{i})" if cur else f"__ja{i}")
            )
            self.scope.cols[f] = col
            self.scope.types[col] = ty
        if sets:
            out.append(f"| extend {', '.join(sets)}")
        out.append("| project-away __j*")
        return out

    def _present(self, c: str) -> str:
        ty = self.ctype(c)
        if ty == "string":
            return f"isnotempty({t.ident(c)})"
        if ty == "dynamic":
            return f"array_length({t.ident(c)}) > 0"
        return f"isnotnull({t.ident(c)})"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
