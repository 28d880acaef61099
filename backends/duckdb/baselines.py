"""Baselines as conditions on the alert candidates (docs/semantics.md, "Baselines").

* ``first_seen`` / ``rarity``: each baseline's history is one CTE over its stream, one row per
  combination of key elements (and ``across`` element, or UTC day) with the event time, as the
  evaluator's HistoryIndex records it. A candidate holds when no row with one of its key
  tuples lies in ``[start - lookback, start)`` (``first_seen``), or when fewer than ``max``
  distinct ``across`` values do (``rarity``).
* ``deviation`` (tumbling aggregates): the measure of the group's past windows that had events,
  ``start - lookback <= past start`` and ``past end <= start``, collected from the CTE of every
  window (alerting or not), and judged by the evaluator's own rule (``siemc_py_deviates``,
  backends/duckdb/functions.py): exact moments and the nearest rank, not DuckDB's floating
  ``stddev_samp``.
"""

from __future__ import annotations

from collections.abc import Callable

from backends.base import Context
from backends.duckdb.functions import DEVIATES
from backends.duckdb.sql import col, num
from backends.duckdb.streams import stream_cte
from compiler import ir

DAY_MS = 86_400_000

# A candidate's value of one ``current`` field: (SQL, single). ``single``: the SQL is one
# normalised key (JSON); otherwise it is the list of its alternatives (JSON[]).
Candidate = Callable[[str], tuple[str, bool]]


def _hkey(i: int) -> str:
    return col(f"hkey:{i}")


def _ckey(i: int) -> str:
    return col(f"ckey:{i}")


def _history(i: int) -> str:
    return col(f"history:{i}")


class Baselines:
    def __init__(self, analytic: ir.Analytic, ctx: Context) -> None:
        self.ctx = ctx
        self.history = [b for b in analytic.baselines if not isinstance(b, ir.Deviation)]
        self.deviations = [b for b in analytic.baselines if isinstance(b, ir.Deviation)]

    def ctes(self) -> list[tuple[str, str]]:
        """The history CTE of each ``first_seen`` / ``rarity`` baseline."""
        out = []
        for i, b in enumerate(self.history):
            for f in b.keys:
                self.ctx.field(f, b.span)
            # one SELECT-list unnest per level (see detections.aggregate): a missing field
            # unnests to no row, so it records nothing
            rows = f"SELECT * FROM {stream_cte(b.stream)}"
            for j, f in enumerate(b.keys):
                rows = f"SELECT *, unnest(siemc_keys({col(f)})) AS {_hkey(j)} FROM ({rows})"
            across = ""
            if isinstance(b, ir.Rarity):
                if b.across == "@days":
                    across = f", (_ts - (_ts % {DAY_MS} + {DAY_MS}) % {DAY_MS}) // {DAY_MS} AS _a"
                else:
                    self.ctx.field(b.across, b.span)
                    rows = f"SELECT *, unnest(siemc_keys({col(b.across)})) AS _a FROM ({rows})"
                    across = ", _a"
            keys = "".join(f", {_hkey(j)}" for j in range(len(b.keys)))
            out.append((_history(i), f"SELECT _ts{keys}{across} FROM ({rows})"))
        return out

    def holds(self, start: str, candidate: Candidate) -> list[str]:
        """SQL conditions, one per ``first_seen`` / ``rarity`` baseline, on a candidate whose
        window starts at ``start`` (few rows: the alerts of an aggregate)."""
        out = []
        for i, b in enumerate(self.history):
            conds = [
                f"h._ts >= {start} - {b.lookback_ms}",
                f"h._ts < {start}",
            ]
            for j, f in enumerate(b.current):
                self.ctx.field(f, b.span)
                sql, single = candidate(f)
                conds.append(
                    f"h.{_hkey(j)} = {sql}" if single else f"list_contains({sql}, h.{_hkey(j)})"
                )
            where = " AND ".join(conds)
            if isinstance(b, ir.FirstSeen):
                out.append(f"NOT EXISTS (SELECT 1 FROM {_history(i)} h WHERE {where})")
            else:
                out.append(
                    f"(SELECT count(DISTINCT h._a) FROM {_history(i)} h WHERE {where}) < {b.max}"
                )
        return out

    def match_ctes(self, stream: str) -> tuple[list[tuple[str, str]], list[str]]:
        """For a match (every event of ``stream`` a candidate, starting at its time): CTEs
        naming the events each baseline rejects, by ``_seq``, and the conditions on a row
        ``e`` of the stream. Each candidate key tuple is one row (a multi-valued field, one per
        element), joined to the history by equality: a first_seen rejects the event when the
        latest occurrence before it (an ASOF join) is within the lookback."""
        ctes: list[tuple[str, str]] = []
        conds: list[str] = []
        for i, b in enumerate(self.history):
            fields = ", ".join(col(f) for f in dict.fromkeys(b.current))
            rows = f"SELECT _seq, _ts, {fields} FROM {stream}"
            for j, f in enumerate(b.current):
                self.ctx.field(f, b.span)
                rows = f"SELECT *, unnest(siemc_keys({col(f)})) AS {_ckey(j)} FROM ({rows})"
            cand = col(f"candidates:{i}")
            ctes.append((cand, rows))
            same = " AND ".join(f"c.{_ckey(j)} = h.{_hkey(j)}" for j in range(len(b.current)))
            if isinstance(b, ir.FirstSeen):
                body = (
                    f"SELECT DISTINCT c._seq FROM {cand} c ASOF JOIN {_history(i)} h\n"
                    f"    ON {same} AND c._ts > h._ts\n"
                    f"  WHERE h._ts >= c._ts - {b.lookback_ms}"
                )
            else:
                body = (
                    f"SELECT c._seq FROM {cand} c JOIN {_history(i)} h\n"
                    f"    ON {same} AND h._ts >= c._ts - {b.lookback_ms} AND h._ts < c._ts\n"
                    f"  GROUP BY c._seq HAVING count(DISTINCT h._a) >= {b.max}"
                )
            rejected = col(f"rejected:{i}")
            ctes.append((rejected, body))
            conds.append(f"NOT EXISTS (SELECT 1 FROM {rejected} r WHERE r._seq = e._seq)")
        return ctes, conds

    def deviates(self, d: ir.Aggregate, windows: str, keys: list[str]) -> list[str]:
        """SQL conditions, one per deviation, on a row ``a`` of CTE ``windows`` (every window
        of every group, with its measures and computed values; ``keys`` its key columns)."""
        out = []
        names = {m.name for m in d.measures} | {n for n, _ in d.compute}
        for dev in self.deviations:
            if d.window.kind != "tumbling":
                raise self.ctx.not_implemented("deviation over a sliding window", dev.span)
            if dev.measure not in names:
                raise self.ctx.not_implemented("deviation baseline of this form", dev.span)
            self.ctx.note(
                f"deviation calls {DEVIATES}, the evaluator's rule as a Python function siemc "
                "registers on its DuckDB connection (siemc run, siemc test)"
            )
            m = col("measure:" + dev.measure)
            same = "".join(f" AND h.{k} = a.{k}" for k in keys)
            past = (
                f"(SELECT list(h.{m}::VARCHAR) FROM {windows} h "
                f"WHERE h._window >= a._window - {dev.lookback_ms} "
                f"AND h._window + {d.window.size_ms} <= a._window{same})"
            )
            k = "NULL" if dev.k is None else num(dev.k)
            p = "NULL" if dev.percentile is None else num(dev.percentile)
            r = "NULL" if dev.ratio is None else num(dev.ratio)
            below = "true" if dev.direction == "below" else "false"
            cur = "true" if dev.include_current else "false"
            out.append(
                f"{DEVIATES}(a.{m}::VARCHAR, {past}, {k}, {p}, {dev.min_history}, {r}, {below}, "
                f"{cur})"
            )
        return out
