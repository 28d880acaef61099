"""Streams as common table expressions: logsource -> join -> enrich -> derive -> filter.

Each stream is a chain of CTEs over the ``events`` relation (or over the stream it reads), one
per stage, so a stage reads the fields the one before it wrote. Every CTE keeps every column:
``_ts``, ``_seq`` and ``_id`` and one JSON column per field the analytic names.
"""

from __future__ import annotations

from backends.base import Context
from backends.duckdb.exprs import ExprRenderer
from backends.duckdb.predicates import PredicateRenderer
from backends.duckdb.sql import col, strlit
from compiler import ir
from compiler.evaluator.streams import logsource_predicate

SOURCE = "events"


def stream_cte(name: str) -> str:
    return col(f"stream:{name}")


def lookup_cte(name: str) -> str:
    return col(f"lookup:{name}")


def lookup_table(lk: ir.Lookup) -> str:
    """A lookup's rows inline, with each cell lower-cased beside it (lookups compare
    case-insensitively) and its 1-based CSV row (enrichment takes the first matching row)."""
    names = ["_row"]
    for c in lk.columns:
        # prefixed: a subquery's bare field names must never bind to a lookup column
        names += [col("cell:" + c), col("lower:" + c)]
    rows = []
    for i, row in enumerate(lk.rows, 1):
        cells = [str(i)]
        for cell in row:
            cells += [strlit(cell), strlit(cell.lower())]
        rows.append("(" + ", ".join(cells) + ")")
    if not rows:
        nulls = ", ".join(["NULL::INTEGER"] + ["NULL::VARCHAR"] * (2 * len(lk.columns)))
        return f"SELECT * FROM (VALUES ({nulls})) t({', '.join(names)}) WHERE false"
    body = ",\n    ".join(rows)
    return f"SELECT * FROM (VALUES\n    {body}\n  ) t({', '.join(names)})"


class StreamRenderer:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.preds = PredicateRenderer(ctx, lookup_cte)
        self.exprs = ExprRenderer(ctx)

    def ctes(self, s: ir.Stream) -> list[tuple[str, str]]:
        """(name, body) of the CTEs of stream ``s``; the last one is the stream itself."""
        out: list[tuple[str, str]] = []
        final = stream_cte(s.name)
        if isinstance(s.source, ir.LogSource):
            src, where = SOURCE, self.preds.render(logsource_predicate(s.source))
        else:
            src, where = stream_cte(s.source), "true"
        staged = s.join is not None or bool(s.enrich) or bool(s.derive)
        if not staged:
            cond = _conj(where, self.preds.render(s.filter))
            return [(final, _select("*", src, cond))]
        step = 0

        def stage(body: str) -> str:
            nonlocal step
            step += 1
            name = col(f"stream:{s.name}:{step}")
            out.append((name, body))
            return name

        prev = stage(_select("*", src, where)) if where != "true" else src
        if s.join is not None:
            prev = stage(self.join(prev, s.join))
        for en in s.enrich:
            prev = stage(self.enrich(prev, en))
        for name, expr in s.derive:
            self.ctx.field(name, s.span)
            prev = stage(f"SELECT * REPLACE ({self.exprs.render(expr)} AS {col(name)}) FROM {prev}")
        out.append((final, _select("*", prev, self.preds.render(s.filter))))
        return out

    def join(self, prev: str, j: ir.Join) -> str:
        """The nearest partner in time with equal keys (ties: the earlier, then the earlier in
        input order), as the evaluator's JoinOp; events without one are dropped. Both sides
        are unnested into one row per key alternative, so the keys join by hash."""
        for f in j.on + j.add:
            self.ctx.field(f, j.span)
        keys = [col(f"key:{i}") for i in range(len(j.on))]

        def keyed(rel: str) -> str:
            unnest = "".join(
                f", unnest(siemc_keys(t.{col(f)})) AS u{i}({k})"
                for i, (f, k) in enumerate(zip(j.on, keys, strict=True))
            )
            return f"(SELECT t.*, {', '.join(keys)} FROM {rel} t{unnest})"

        on = " AND ".join(f"b.{k} = a.{k}" for k in keys)
        lo = "0" if j.direction == "after" else f"-{j.within_ms}"
        hi = "0" if j.direction == "before" else str(j.within_ms)
        repl = ", ".join(
            f"CASE WHEN siemc_missing(b.{col(f)}) THEN a.{col(f)} ELSE b.{col(f)} END AS {col(f)}"
            for f in j.add
        )
        cols = f"a.* EXCLUDE ({', '.join(keys)})" + (f" REPLACE ({repl})" if repl else "")
        return (
            f"SELECT {cols}\n  FROM {keyed(prev)} a\n  JOIN {keyed(stream_cte(j.stream))} b\n"
            f"    ON {on} AND b._ts - a._ts BETWEEN {lo} AND {hi}\n"
            "  QUALIFY row_number() OVER (PARTITION BY a._seq "
            "ORDER BY abs(b._ts - a._ts), b._ts, b._seq) = 1"
        )

    def enrich(self, prev: str, en: ir.Enrich) -> str:
        """A left join to the first CSV row matching some element (combination); the added
        fields are absent without a row or for an empty cell."""
        conds = " AND ".join(
            f"list_contains(list_transform(siemc_texts(a.{col(f)}), lambda t: lower(t)), "
            f"r.{col('lower:' + c)})"
            for c, f in en.match
        )
        for _, f in en.match:
            self.ctx.field(f, en.span)
        cells = [(f"m.{col('cell:' + c)}", col(f)) for c, f in en.add]
        picks = ", ".join(f"CASE WHEN {m} <> '' THEN to_json({m}) END AS {f}" for m, f in cells)
        cols = ", ".join(f"r.{col('cell:' + c)}" for c, _ in en.add)
        return (
            f"SELECT a.* REPLACE ({picks})\n  FROM {prev} a LEFT JOIN LATERAL (\n"
            f"    SELECT {cols} FROM {lookup_cte(en.lookup)} r WHERE {conds} "
            "ORDER BY r._row LIMIT 1\n  ) m ON true"
        )


def _conj(a: str, b: str) -> str:
    if a == "true":
        return b
    if b == "true":
        return a
    return f"{a}\n    AND {b}"


def _select(cols: str, src: str, where: str) -> str:
    if where == "true":
        return f"SELECT {cols} FROM {src}"
    return f"SELECT {cols} FROM {src}\n  WHERE {where}"
