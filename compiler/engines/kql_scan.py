"""The Kusto ``scan`` operator, executed in Python for the KQL harness (duckdb-kql 1.1.2 cannot run
``scan``, ``partition`` or ``serialize``).

Everything here follows Microsoft's documentation, cited per rule; anything it does not cover is a
:class:`ScanError`, never a guess:

* scan operator (learn.microsoft.com/kusto/query/scan-operator): syntax ``scan [with_match_id =
  Col] [declare (Col: type [= default], ...)] with (step Name [output = all|last|none]: Condition
  [=> Col = Expr, ...]; ...)``, and its "Scan logic" (State, Matching logic), implemented in
  :func:`scan`.
* partition operator (learn.microsoft.com/kusto/query/partition-operator): ``T | partition
  hint.strategy=native by Col (SubQuery)`` runs the subquery on the rows of each value of ``Col``
  and returns the union, which is how the scan documentation's own per-key examples use it.
* sort operator (learn.microsoft.com/kusto/query/sort-operator): ``asc`` puts nulls first,
  ``desc`` last; the order of rows with equal sort keys is not defined. The harness breaks such
  ties *against* the order the engine returned the rows in (or, on request, in it), so a query
  whose result depends on the order of tied rows can show it; tests run both orders where a
  backend claims the result does not depend on it.
* the scalar functions of :mod:`compiler.engines.kql_scalar`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from compiler.engines.kql_scalar import Expr, Parser, ScanError, evaluate, null_of

Row = dict[str, Any]


@dataclass(frozen=True)
class Step:
    name: str
    output: str  # all | none
    condition: Expr
    assignments: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Scan:
    match_id: str | None
    declare: tuple[tuple[str, str, Any], ...]  # (column, type, default)
    steps: tuple[Step, ...]

    @property
    def declared(self) -> list[str]:
        return [c for c, _, _ in self.declare]


@dataclass(frozen=True)
class SortKey:
    column: str
    desc: bool
    nulls_first: bool


@dataclass(frozen=True)
class Partitioned:
    """``partition hint.strategy=native by column (sort by ... | scan ...)``."""

    column: str
    sort: tuple[SortKey, ...]
    scan: Scan


# ------------------------------------------------------------------ parsing
def parse_scan(text: str) -> Scan:
    """The text of a scan operator, from ``scan`` to its closing parenthesis."""
    p = Parser(text)
    p.word("scan")
    match_id = None
    if p.peek_word("with_match_id"):
        p.word("with_match_id")
        p.punct("=")
        match_id = p.name()
    declare: list[tuple[str, str, Any]] = []
    if p.peek_word("declare"):
        p.word("declare")
        p.punct("(")
        while True:
            col = p.name()
            p.punct(":")
            ty = p.name()
            default = null_of(ty)
            if p.peek_punct("="):
                p.punct("=")
                default = evaluate(p.expression(), {}, {})
            declare.append((col, ty, default))
            if not p.peek_punct(","):
                break
            p.punct(",")
        p.punct(")")
    p.word("with")
    p.punct("(")
    steps: list[Step] = []
    while p.peek_word("step"):
        p.word("step")
        name = p.name()
        output = "all"
        if p.peek_word("output"):
            p.word("output")
            p.punct("=")
            output = p.name()
            if output == "last":
                # "last outputs only the last record in a series of repeating matches": the doc
                # does not say when a series ends, so the harness does not guess
                raise ScanError("scan step output=last is not executed by the harness")
            if output not in ("all", "none"):
                raise ScanError(f"scan step output={output}")
        p.punct(":")
        cond = p.expression()
        assigns: list[tuple[str, Expr]] = []
        if p.peek_punct("=>"):
            p.punct("=>")
            while True:
                col = p.name()
                p.punct("=")
                assigns.append((col, p.expression()))
                if not p.peek_punct(","):
                    break
                p.punct(",")
        p.punct(";")
        steps.append(Step(name, output, cond, tuple(assigns)))
    p.punct(")")
    p.end()
    if not steps:
        raise ScanError("scan without steps")
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise ScanError("scan step names must be unique")
    known = {c for c, _, _ in declare}
    for s in steps:
        for col, _ in s.assignments:
            if col not in known:
                raise ScanError(f"scan step {s.name} assigns the undeclared column {col}")
    return Scan(match_id, tuple(declare), tuple(steps))


_PARTITION = re.compile(
    r"\|\s*partition\s+hint\.strategy\s*=\s*native\s+by\s+(\w+)\s*\(\s*sort\s+by\s+", re.S
)


def split_partition(body: str) -> tuple[str, Partitioned] | None:
    """``head | partition hint.strategy=native by C (sort by ... | scan ...)`` -> (head, the
    partitioned scan), or None when the text has no partitioned scan."""
    m = _PARTITION.search(body)
    if m is None:
        return None
    depth, i = 1, m.end()
    quote = ""
    while i < len(body) and depth:
        ch = body[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        i += 1
    if depth:
        raise ScanError("unbalanced partition subquery")
    inner = body[m.end() : i - 1]
    if body[i:].strip():
        raise ScanError("operators after the partitioned scan: end the let statement there")
    sort_text, bar, scan_text = inner.partition("| scan")
    if not bar:
        raise ScanError("the partition subquery must be `sort by ... | scan ...`")
    keys = []
    for part in sort_text.split(","):
        words = part.split()
        if not words:
            raise ScanError("empty sort key")
        desc = True  # "desc: sort in descending order (the default)"
        if len(words) > 1 and words[1] in ("asc", "desc"):
            desc = words[1] == "desc"
        nulls = " ".join(words[2:])
        nulls_first = (not desc) if not nulls else nulls == "nulls first"
        if len(words) > 2 and nulls not in ("nulls first", "nulls last"):
            raise ScanError(f"sort key {part.strip()!r}")
        keys.append(SortKey(words[0], desc, nulls_first))
    return body[: m.start()], Partitioned(m.group(1), tuple(keys), parse_scan("scan" + scan_text))


# ------------------------------------------------------------------ execution
def scan(rows: Iterable[Row], sc: Scan) -> list[Row]:
    """The scan operator over ``rows`` in their (serialized) order: "Scan logic" of the
    documentation. The state is one entry per step: None (empty) or the match id and, per step
    name, the values that step last recorded."""
    n = len(sc.steps)
    defaults = {c: d for c, _, d in sc.declare}
    state: list[tuple[int, dict[str, Row]] | None] = [None] * n
    next_id = 0
    out: list[Row] = []
    names = frozenset(s.name for s in sc.steps)

    def env(entry: tuple[int, dict[str, Row]] | None) -> dict[str, Row]:
        # an empty state reads as the declared defaults (the cumulative-sum example reads
        # s1.cumulative_x = 0 on its first record) and null for the input's columns
        return entry[1] if entry is not None else {}

    def extend(r: Row, step: Step, st: dict[str, Row]) -> Row:
        ext = dict(r)
        # "If not assigned, the DefaultValue is returned"
        ext.update(defaults)
        for col, e in step.assignments:
            ext[col] = evaluate(e, r, st, defaults, names)
        return ext

    for r in rows:
        # "Each input record is evaluated against all of the steps in reverse order"
        for k in range(n - 1, -1, -1):
            step = sc.steps[k]
            prev = state[k - 1] if k > 0 else None
            if prev is not None and _true(evaluate(step.condition, r, env(prev), defaults, names)):
                # Check 1: clear s_k, promote s_k-1 into it, extend r, output and record it
                ext = extend(r, step, env(prev))
                state[k] = (prev[0], {**prev[1], step.name: ext})
                state[k - 1] = None
                if step.output == "all":
                    out.append(_emit(ext, sc, prev[0]))
                continue  # "If Check 1 results in a match, Check 2 is disregarded"
            cur = state[k]
            if (cur is not None or k == 0) and _true(
                evaluate(step.condition, r, env(cur), defaults, names)
            ):
                # Check 2: extend r, replace s_k's values in its own state, output when
                # output=all; on the first step with no active sequence a new match begins
                ext = extend(r, step, env(cur))
                if cur is None:
                    cur = (next_id, {})
                    next_id += 1
                state[k] = (cur[0], {**cur[1], step.name: ext})
                if step.output == "all":
                    out.append(_emit(ext, sc, cur[0]))
    return out


def _true(v: Any) -> bool:
    if v is not None and not isinstance(v, bool):
        raise ScanError(f"a scan step condition must be bool, got {v!r}")
    return v is True


def _emit(ext: Row, sc: Scan, match: int) -> Row:
    row = dict(ext)
    if sc.match_id:
        row[sc.match_id] = match
    return row


def _sort_key(
    keys: tuple[SortKey, ...], reverse_ties: bool
) -> Callable[[tuple[int, Row]], tuple[Any, ...]]:
    def key(item: tuple[int, Row]) -> tuple[Any, ...]:
        i, r = item
        parts: list[Any] = []
        for k in keys:
            v = r.get(k.column)
            null = v is None
            # nulls sort first or last; values ascending or, negated, descending
            parts.append(null != k.nulls_first)
            parts.append(_Desc(v) if k.desc and not null else (v if not null else 0))
        parts.append(-i if reverse_ties else i)  # ties (module docstring)
        return tuple(parts)

    return key


class _Desc:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and bool(other.v == self.v)

    __hash__ = None  # type: ignore[assignment]


def run_partitioned(rows: list[Row], part: Partitioned, reverse_ties: bool = True) -> list[Row]:
    """The partition operator over ``rows`` with the subquery ``sort by ... | scan ...``; rows
    with equal sort keys go against the order of ``rows`` (or in it: ``reverse_ties=False``)."""
    groups: dict[Any, list[tuple[int, Row]]] = {}
    for i, r in enumerate(rows):
        if part.column not in r:
            raise ScanError(f"partition by the unknown column {part.column}")
        groups.setdefault(_hashable(r[part.column]), []).append((i, r))
    out: list[Row] = []
    for items in groups.values():
        ordered = sorted(items, key=_sort_key(part.sort, reverse_ties))
        out += scan((r for _, r in ordered), part.scan)
    return out


def _hashable(v: Any) -> Any:
    return repr(v) if isinstance(v, list | dict) else v
