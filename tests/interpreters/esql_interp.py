"""An interpreter for the subset of ES|QL siemc's Elastic backend emits, used by the
differential tests because no Elasticsearch runs offline.

It executes the syntax tree of Elastic's own parser (``detection-rules-esql-py``, module
``esql``: ``parse_query``), never siemc's IR, and each command follows its ES|QL reference page
(https://www.elastic.co/docs/reference/query-languages/esql/commands/...):

* ``FROM <patterns> [METADATA _id, _index, _version]`` (from): the rows of every index whose
  name matches a pattern (``*`` wildcards); ``ROW`` (row) for unit tests.
* ``WHERE`` (where): keeps the rows whose condition is *true*; null and false drop the row.
* ``EVAL`` (eval): columns computed left to right; a new column with an existing name replaces
  it (the column moves to the end).
* ``STATS ... [WHERE ...] BY`` (stats-by): groups by the BY expressions; a multi-valued group
  value puts the *whole row* in one group per distinct value (cartesian product over several
  keys), a null value forms its own group; aggregates skip nulls and read every value of a
  multi-value; a per-aggregate WHERE filters the rows of that aggregate only; without BY there
  is exactly one output row. Output: the aggregates, then the BY columns (a BY name hides an
  aggregate of the same name).
* ``INLINE STATS`` (inline-stats-by): the same aggregates, added to every input row of the
  group instead of collapsing it.
* ``LOOKUP JOIN <index> ON <fields>`` (lookup-join): a left join on equality of every field
  with a lookup index: one output row per matching lookup row, the row kept with null lookup
  columns when none matches; a null or multi-valued key matches nothing; lookup columns replace
  same-named columns.
* ``MV_EXPAND column`` (mv_expand): one row per value of the column.
* ``KEEP`` / ``DROP`` (keep, drop) with ``*`` patterns; ``LIMIT`` (limit). Without LIMIT a
  query returns at most 1000 rows: a larger result raises (which rows Elasticsearch would
  return is unspecified).

Aggregates: COUNT(*) counts rows, COUNT(x) the values of x (each value of a multi-value);
COUNT_DISTINCT is exact (Elasticsearch's HyperLogLog++ is exact below its precision threshold,
barring hash collisions); VALUES (the distinct values as a multi-value); SUM, AVG, MIN, MAX,
STD_DEV (population), MEDIAN and PERCENTILE (t-digest, interpolated between values: exact for
the few values of a fixture).

``execute(query, indices, lookups, now_ms)`` returns the result rows as dicts (every output
column, ``None`` for null). Documents are dicts, nested or with dotted keys, whose values are
already of their ES|QL type (see :mod:`tests.interpreters.esql_interp_values`); a key with a
``None`` value is a mapped field without a value.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import esql
from esql import ast

from tests.interpreters.esql_interp_funcs import AGGREGATES, Evaluator, Row
from tests.interpreters.esql_interp_values import (
    EsqlError,
    compare,
    finite_or_null,
    hashable,
    long_or_null,
    pack,
    values,
)

DEFAULT_LIMIT = 1000
Doc = Mapping[str, Any]

__all__ = ["EsqlError", "execute", "parse"]


def parse(query: str) -> ast.EsqlQuery:
    return esql.parse_query(query)


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "."))
        else:
            out[name] = v
    return out


class _Table:
    """The rows between two commands and their columns (in order)."""

    def __init__(self, rows: list[dict[str, Any]], columns: list[str], open_: bool) -> None:
        self.rows = rows
        self.columns = columns
        self.open = open_
        self.dropped: set[str] = set()

    def row(self, data: dict[str, Any]) -> Row:
        return Row(data, self.columns, self.open, self.dropped)

    def has(self, name: str) -> bool:
        return name in self.columns or (self.open and name not in self.dropped)


def execute(
    query: str,
    indices: Mapping[str, Sequence[Doc]],
    lookups: Mapping[str, Sequence[Doc]],
    now_ms: int,
) -> list[dict[str, Any]]:
    tree = parse(query)
    ev = Evaluator(now_ms, query.split("\n"))
    table = _Table([], [], False)
    limited = False
    for cmd in tree.commands:
        if isinstance(cmd, ast.FromCommand):
            table = _from(cmd, indices)
        elif isinstance(cmd, ast.RowCommand):
            data: dict[str, Any] = {}
            for a in cmd.fields:
                data[a.name] = ev.eval(a.expr, Row(data, list(data), False))
            table = _Table([data], list(data), False)
        elif isinstance(cmd, ast.WhereCommand):
            assert cmd.predicate is not None
            pred = cmd.predicate
            table.rows = [r for r in table.rows if _true(ev.eval(pred, table.row(r)))]
        elif isinstance(cmd, ast.EvalCommand):
            _eval(cmd, table, ev)
        elif isinstance(cmd, ast.StatsCommand):
            table = _stats(cmd, table, ev)
        elif isinstance(cmd, ast.KeepCommand):
            _keep(cmd, table)
        elif isinstance(cmd, ast.DropCommand):
            _drop(cmd, table)
        elif isinstance(cmd, ast.JoinCommand):
            table = _lookup_join(cmd, table, lookups)
        elif isinstance(cmd, ast.MvExpandCommand):
            _mv_expand(cmd, table)
        elif isinstance(cmd, ast.LimitCommand):
            if not isinstance(cmd.count, int) or cmd.by:
                raise EsqlError("LIMIT takes a constant here")
            table.rows = table.rows[: cmd.count]
            limited = True
        else:
            raise EsqlError(f"command {type(cmd).__name__} is not interpreted")
    if not limited and len(table.rows) > DEFAULT_LIMIT:
        raise EsqlError(
            f"{len(table.rows)} rows: ES|QL returns {DEFAULT_LIMIT} of them (unspecified which)"
        )
    return [{c: r.get(c) for c in table.columns} for r in table.rows]


def _true(v: Any) -> bool:
    if isinstance(v, list):
        return False  # a multi-valued condition is null
    if v is not None and not isinstance(v, bool):
        raise EsqlError("WHERE needs a boolean condition")
    return v is True


# ------------------------------------------------------------------------------ FROM
def _from(cmd: ast.FromCommand, indices: Mapping[str, Sequence[Doc]]) -> _Table:
    patterns = cmd.index_patterns
    if len(patterns) != len(cmd.sources):
        raise EsqlError("FROM with a subquery is not interpreted")
    names = sorted(n for n in indices if any(fnmatch.fnmatchcase(n, p) for p in patterns))
    if not names:
        raise EsqlError(f"Unknown index [{', '.join(patterns)}]")
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    for name in names:
        for n, doc in enumerate(indices[name], 1):
            flat = flatten(doc)
            meta = {"_index": name, "_id": str(flat.pop("_id", f"{name}#{n}")), "_version": 1}
            row = {k: pack(values(v)) for k, v in flat.items()}
            for m in cmd.metadata:
                if m not in meta:
                    raise EsqlError(f"metadata field {m} is not interpreted")
                row[m] = meta[m]
            columns.update(dict.fromkeys(row))
            rows.append(row)
    return _Table(rows, list(columns), True)


# ------------------------------------------------------------------------------ EVAL / KEEP / DROP
def _eval(cmd: ast.EvalCommand, table: _Table, ev: Evaluator) -> None:
    for a in cmd.assignments:
        for r in table.rows:
            value = ev.eval(a.expr, table.row(r))
            r.pop(a.name, None)
            r[a.name] = value
        if a.name in table.columns:
            table.columns.remove(a.name)
        table.columns.append(a.name)


def _matching(table: _Table, pattern: str) -> list[str]:
    return [c for c in table.columns if fnmatch.fnmatchcase(c, pattern)]


def _keep(cmd: ast.KeepCommand, table: _Table) -> None:
    # the parser lists plain names before patterns (their relative order is lost): the order
    # of the columns is not what the tests compare
    keep: list[str] = []
    for name in cmd.columns:
        if not table.has(name):
            raise EsqlError(f"Unknown column [{name}]")
        keep.append(name)
    for pat in cmd.wildcards:
        keep += [c for c in _matching(table, pat) if c not in keep]
    table.columns = list(dict.fromkeys(keep))
    table.rows = [{c: r.get(c) for c in table.columns} for r in table.rows]
    table.open = False


def _drop(cmd: ast.DropCommand, table: _Table) -> None:
    gone: set[str] = set()
    for name in cmd.columns:
        if not table.has(name):
            raise EsqlError(f"Unknown column [{name}]")
        gone.add(name)
    for pat in cmd.wildcards:
        hit = _matching(table, pat)
        if not hit:
            raise EsqlError(f"No matches found for pattern [{pat}]")
        gone.update(hit)
    table.columns = [c for c in table.columns if c not in gone]
    for r in table.rows:
        for c in gone:
            r.pop(c, None)
    table.dropped |= gone  # no longer readable, even where the mapping has the field


# ------------------------------------------------------------------------------ MV_EXPAND
def _mv_expand(cmd: ast.MvExpandCommand, table: _Table) -> None:
    """One row per value of the column, the other columns duplicated (commands/mv_expand).
    The page does not say what a null column gives; Elasticsearch's MvExpandOperator emits
    the row once with null, which this follows (the backend never relies on it)."""
    name = cmd.field
    if name is None or not table.has(name):
        raise EsqlError(f"Unknown column [{name}]")
    rows: list[dict[str, Any]] = []
    for r in table.rows:
        vs = values(table.row(r).get(name))
        for v in vs or [None]:
            out = dict(r)
            out[name] = v
            rows.append(out)
    table.rows = rows
    if name not in table.columns:
        table.columns.append(name)


# ------------------------------------------------------------------------------ LOOKUP JOIN
def _lookup_join(
    cmd: ast.JoinCommand, table: _Table, lookups: Mapping[str, Sequence[Doc]]
) -> _Table:
    if (cmd.kind or "").lower() != "lookup" or cmd.target is None:
        raise EsqlError(f"{cmd.kind} JOIN is not interpreted")
    if cmd.on_fields != cmd.on_lookup_fields:
        raise EsqlError("LOOKUP JOIN with expressions is not interpreted")
    if cmd.target not in lookups:
        raise EsqlError(f"Unknown index [{cmd.target}]")
    docs = [flatten(d) for d in lookups[cmd.target]]
    lk_columns = list(dict.fromkeys(c for d in docs for c in d))
    keys = list(cmd.on_fields)
    for k in keys:
        if k not in lk_columns:
            raise EsqlError(f"Unknown column [{k}] in right side of join")
        if not table.has(k):
            raise EsqlError(f"Unknown column [{k}] in left side of join")
    added = [c for c in lk_columns if c not in keys]
    index: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for d in docs:
        kv = [d.get(k) for k in keys]
        if any(v is None or isinstance(v, list) for v in kv):
            continue
        index.setdefault(tuple(hashable(v) for v in kv), []).append(d)
    rows: list[dict[str, Any]] = []
    for r in table.rows:
        kv = [table.row(r).get(k) for k in keys]
        matches: list[dict[str, Any]] = []
        if not any(v is None or isinstance(v, list) for v in kv):
            matches = index.get(tuple(hashable(v) for v in kv), [])
        for d in matches or [{}]:
            out = {c: v for c, v in r.items() if c not in added}
            for c in added:
                out[c] = pack(values(d.get(c)))
            rows.append(out)
    columns = [c for c in table.columns if c not in added] + added
    out_table = _Table(rows, columns, table.open)
    out_table.dropped = table.dropped - set(added)
    return out_table


# ------------------------------------------------------------------------------ STATS
def _filters(cmd: ast.StatsCommand) -> dict[int, ast.Expression]:
    """Aggregate index -> its WHERE filter. The tree keeps the filters in one list, in source
    order: each belongs to the last aggregate that starts before it."""
    out: dict[int, ast.Expression] = {}
    starts = [(a.line or 0, a.column or 0) for a in cmd.aggregates]
    for f in cmd.aggregate_filters:
        pos = _first_pos(f)
        owner = max((i for i, s in enumerate(starts) if s < pos), default=None)
        if owner is None or owner in out:
            raise EsqlError("cannot place an aggregate's WHERE filter")
        out[owner] = f
    return out


def _first_pos(node: ast.BaseNode) -> tuple[int, int]:
    return min(((n.line or 0, n.column or 0) for n in node if n.line is not None), default=(0, 0))


def _groupings(cmd: ast.StatsCommand) -> list[tuple[str, ast.Expression]]:
    exprs: dict[str, ast.Expression] = {a.name: a.expr for a in cmd.grouping_aliases}
    exprs.update({r.name: r for r in cmd.grouping_refs})
    return [(name, exprs[name]) for name in cmd.grouping]


def _stats(cmd: ast.StatsCommand, table: _Table, ev: Evaluator) -> _Table:
    filters = _filters(cmd)
    groups_by = _groupings(cmd)
    groups: dict[tuple[Any, ...], tuple[list[Any], list[dict[str, Any]]]] = {}
    member_of: list[list[tuple[Any, ...]]] = []
    for r in table.rows:
        per_key: list[list[Any]] = []
        for _, expr in groups_by:
            vs = list(dict.fromkeys(values(ev.eval(expr, table.row(r))))) or [None]
            per_key.append(vs)
        keys = []
        for combo in itertools.product(*per_key):
            k = tuple(None if v is None else hashable(v) for v in combo)
            groups.setdefault(k, (list(combo), []))[1].append(r)
            keys.append(k)
        member_of.append(keys)
    if not groups_by and not groups:
        groups[()] = ([], [])
    names = [a.name for a in cmd.aggregates]
    results: dict[tuple[Any, ...], dict[str, Any]] = {}
    for k, (_, rows) in groups.items():
        out: dict[str, Any] = {}
        for i, a in enumerate(cmd.aggregates):
            sel = rows
            if i in filters:
                sel = [r for r in rows if _true(ev.eval(filters[i], table.row(r)))]
            out[a.name] = _aggregate_expr(a.expr, sel, table, ev)
        results[k] = out
    group_names = [n for n, _ in groups_by]
    if cmd.inline:
        if any(len(keys) != 1 for keys in member_of):
            raise EsqlError("INLINE STATS by a multi-valued key is not interpreted")
        agg_cols = [n for n in dict.fromkeys(names) if n not in group_names]
        rows_out = []
        for r, keys in zip(table.rows, member_of, strict=True):
            new = {c: v for c, v in r.items() if c not in agg_cols}
            new.update({c: results[keys[0]][c] for c in agg_cols})
            rows_out.append(new)
        columns = [c for c in table.columns if c not in agg_cols] + agg_cols
        inline = _Table(rows_out, columns, table.open)
        inline.dropped = table.dropped - set(agg_cols)
        return inline
    agg_cols = [n for n in dict.fromkeys(reversed(names)) if n not in group_names][::-1]
    rows_out = []
    for k, (gvals, _) in groups.items():
        row = {c: results[k][c] for c in agg_cols}
        row.update(zip(group_names, gvals, strict=True))
        rows_out.append(row)
    return _Table(rows_out, agg_cols + group_names, False)


def _aggregate_expr(
    expr: ast.Expression, rows: list[dict[str, Any]], table: _Table, ev: Evaluator
) -> Any:
    """An aggregate, or a scalar expression over aggregates (``MAX(a) + 1``)."""
    calls = [n for n in expr if isinstance(n, ast.FunctionCall) and n.name.lower() in AGGREGATES]
    if not calls:
        raise EsqlError("a STATS expression needs an aggregate function")
    ev.agg_values = {id(c): _aggregate(c, rows, table, ev) for c in calls}
    try:
        return ev.eval(expr, table.row({}))
    finally:
        ev.agg_values = {}


def _aggregate(
    call: ast.FunctionCall, rows: list[dict[str, Any]], table: _Table, ev: Evaluator
) -> Any:
    name = call.name.lower()
    if name == "count" and not call.args:
        return len(rows)  # COUNT(*)
    arg = call.args[0]
    vals = [v for r in rows for v in values(ev.eval(arg, table.row(r)))]
    if name == "count":
        return len(vals)
    if name == "count_distinct":
        return len({hashable(v) for v in vals})
    if name == "values":
        # VALUES: every distinct value of the group as a multi-value, nulls skipped; "the order
        # of the returned values isn't guaranteed" (aggregation-functions#esql-values): this
        # interpreter returns them in first-seen order, which no siemc query depends on
        return pack(list({hashable(v): v for v in vals}.values())) if vals else None
    if not vals:
        return None
    if name in ("min", "max"):
        best = vals[0]
        for v in vals[1:]:
            c = compare(v, best) or 0
            if (c < 0) if name == "min" else (c > 0):
                best = v
        return best
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in vals):
        raise EsqlError(f"{name.upper()} of a non-numeric column")
    if name == "sum":
        if all(isinstance(v, int) for v in vals):
            return long_or_null(sum(vals))
        return finite_or_null(math.fsum(vals))
    floats = [float(v) for v in vals]
    mean = math.fsum(floats) / len(floats)
    if name == "avg":
        return mean
    if name == "std_dev":
        return math.sqrt(math.fsum((x - mean) ** 2 for x in floats) / len(floats))
    if name in ("percentile", "median"):
        p = 50.0 if name == "median" else ev.eval(call.args[1], table.row({}))
        return _tdigest_quantile(sorted(floats), float(p) / 100)
    raise EsqlError(f"aggregate {name.upper()} is not interpreted")


def _tdigest_quantile(xs: list[float], q: float) -> float:
    """t-digest over few values keeps each value as a centroid at rank i + 0.5 and
    interpolates linearly between centroids (min and max at the ends)."""
    n = len(xs)
    if n == 1:
        return xs[0]
    idx = q * n
    if idx <= 0.5:
        return xs[0]
    if idx >= n - 0.5:
        return xs[-1]
    i = math.floor(idx - 0.5)
    frac = idx - 0.5 - i
    return xs[i] + frac * (xs[i + 1] - xs[i])


def rows_of(result: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in result]
