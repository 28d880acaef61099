"""Consuming sliding windows and co-occurrence in KQL with the ``scan`` operator.

siemc consumes the events of a firing sliding window and of a completed co-occurrence: the group
starts again empty (docs/semantics.md, "Sliding windows", "Co-occurrence", "De-duplication").
A self-join cannot say that; ``scan`` can (learn.microsoft.com/kusto/query/scan-operator). Per
group key (``partition hint.strategy=native by`` the key, sorted by time, as the scan page's own
per-key examples do), a one-step scan folds each row into a state and decides at that row:

* sliding aggregate: the state is the window since the last alert, the times (milliseconds) and,
  per distinct measure, the values of its rows. Each row drops the times older than ``t - size``
  (a prefix, the rows being sorted: ``series_less`` against ``repeat(lo, n)``, summed with
  ``array_sum``), appends itself and evaluates ``having``; when it holds the row is output and the
  state is emptied.
* co-occurrence: the state is each member's latest time within ``t - window``; when every member
  has one the row is output and the state is emptied.

Only the scan is order-dependent, and KQL has no input order for rows of one millisecond (the
sort leaves ties in no defined order). Which tied rows a firing window consumes is the only thing
that order decides: every earlier row of the group is in the window whatever the order of ties,
and a later one never is. So an event count (``count: true``) is a function of the sorted times
and never depends on it; a distinct measure or a co-occurrence can (:data:`TIES_DISTINCT`,
:data:`TIES_COOCCURRENCE`).
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler import ir

_EPOCH = "datetime(1970-01-01)"
_CMP = {"==", "!=", "<", "<=", ">", ">="}

TIES_DISTINCT = (
    "equal timestamps: KQL has no input order, so when rows of one group share the millisecond at "
    "which a window fires, which of them the alert consumes (and which start the next window) is "
    "not defined; the evaluator takes those before the firing event in input order. An event "
    "count does not depend on it; a distinct count does (the consumed values, and later windows), "
    "so alerts can differ either way. Equal to the evaluator when no two rows of a group share the "
    "millisecond of a firing row"
)
TIES_COOCCURRENCE = (
    "equal timestamps: KQL has no input order, so when rows of one key share the millisecond of "
    "the row that completes a set, whether they belong to that set or start the next one is not "
    "defined (the evaluator follows input order), so later sets can differ either way. Equal to "
    "the evaluator when no two rows of a key share the millisecond of a completing row"
)
NOTE_LIMITS = (
    "the sliding window and co-occurrence state is kept by scan per group key (partition "
    "hint.strategy=native, sorted by time): scan processes the rows of a partition one at a time "
    "in that order, and its state holds the times and values of the window's rows, so memory "
    "grows with the rows of one group inside one window; the native partition strategy is meant "
    "for thousands of keys (learn.microsoft.com/kusto/query/partition-operator: hint.strategy="
    "shuffle for millions)"
)


@dataclass(frozen=True)
class Measure:
    name: str  # the output column
    kind: str  # count | distinct
    value: str | None = None  # distinct: the pre-scan value column (strings, "" = none)


def simple_having(agg: ir.Aggregate) -> tuple[str, str, float | int] | None:
    """``measure <op> number``: the having the scan evaluates (every threshold)."""
    h = agg.having
    if (
        isinstance(h, ir.BinOp)
        and h.op in _CMP
        and isinstance(h.left, ir.MeasureRef)
        and isinstance(h.right, ir.Literal_)
        and isinstance(h.right.value, int | float)
        and not isinstance(h.right.value, bool)
    ):
        return h.left.name, h.op, h.right.value
    return None


def _drop(lo: str) -> str:
    """How many times of the state's window are older than ``lo``: a prefix, the rows being
    sorted. ``array_sum`` is given a leading 0, so it never sees an empty array."""
    return (
        "tolong(array_sum(array_concat(dynamic([0]), "
        f"array_iff(series_less(s.__w, repeat({lo}, array_length(s.__w))), 1, 0))))"
    )


def _slide(state: str, new: str) -> str:
    """The state's array with this row's value appended and the expired prefix dropped (the
    appended value never expires, so the start index is in bounds)."""
    return f"array_slice(array_concat(s.{state}, pack_array({new})), {_drop('__lo')}, -1)"


def sliding(
    source: str,
    keys: list[str],
    measures: list[Measure],
    having: tuple[str, str, float | int],
    size_ms: int,
    pre: list[str],
) -> tuple[str, str]:
    """The scan of a sliding aggregate over the rows of ``source`` (``__t`` and the key columns);
    ``pre`` are ``extend`` items computing the distinct measures' value columns. The result rows
    are the alerts: ``__start``, ``__end``, the keys and the measures."""
    win = _slide("__w", "__ms")
    value: dict[str, str] = {}
    for i, m in enumerate(measures):
        if m.kind == "count":
            value[m.name] = f"array_length({win})"
        else:
            assert m.value is not None
            value[m.name] = (
                f'array_length(set_difference({_slide(f"__v{i}", m.value)}, dynamic([""])))'
            )
    mname, op, lit = having
    fire = f"{value[mname]} {op} {lit}"
    decl = ["__w: dynamic = dynamic([])"]
    decl += [f"__v{i}: dynamic = dynamic([])" for i, m in enumerate(measures) if m.value]
    decl += ["__fire: bool = false", "__first: long"]
    decl += [f"{m.name}: long" for m in measures]
    assigns = [f"__fire = {fire}", f"__first = tolong({win}[0])"]
    assigns += [f"{m.name} = {value[m.name]}" for m in measures]
    assigns.append(f"__w = iff({fire}, dynamic([]), {win})")
    for i, m in enumerate(measures):
        if m.value:
            assigns.append(f"__v{i} = iff({fire}, dynamic([]), {_slide(f'__v{i}', m.value)})")
    return _scan(source, keys, pre, size_ms, decl, assigns, [*keys, *(m.name for m in measures)])


def cooccurrence(source: str, keys: list[str], members: int, window_ms: int) -> tuple[str, str]:
    """The scan of a co-occurrence of ``members`` member streams over the rows of ``source``
    (``__t``, the key columns and ``__m``, the member of the row). The result rows are the
    alerts: ``__start``, ``__end`` and the keys."""
    latest = [
        f"iff(__m == {i}, __ms, iff(s.__l{i} >= __lo, s.__l{i}, long(null)))"
        for i in range(members)
    ]
    fire = " and ".join(f"isnotnull({x})" for x in latest)
    decl = [f"__l{i}: long" for i in range(members)] + ["__fire: bool = false", "__first: long"]
    assigns = [f"__fire = {fire}", f"__first = min_of({', '.join(latest)})"]
    assigns += [f"__l{i} = iff({fire}, long(null), {x})" for i, x in enumerate(latest)]
    return _scan(source, keys, [], window_ms, decl, assigns, keys)


def _scan(
    source: str,
    keys: list[str],
    pre: list[str],
    size_ms: int,
    decl: list[str],
    assigns: list[str],
    out: list[str],
) -> tuple[str, str]:
    """(the body of ``let __scan``, the query of its alert rows)."""
    part = keys[0] if len(keys) == 1 else "__g"
    ext = [
        f"__ms = datetime_diff('millisecond', __t, {_EPOCH})",
        f"__lo = datetime_diff('millisecond', __t, {_EPOCH}) - {size_ms}",
        *pre,
    ]
    if part == "__g":
        # one partition per key tuple: the JSON text of the tuple names it alone
        ext.append(f"__g = tostring(pack_array({', '.join(keys)}))")
    body = ",\n            ".join(assigns)
    scan = "\n".join(
        [
            f"{source}",
            f"| extend {', '.join(ext)}",
            f"| partition hint.strategy=native by {part} (",
            "    sort by __ms asc",
            f"    | scan declare ({', '.join(decl)}) with (",
            "        step s: true =>",
            f"            {body};",
            "    )",
            ")",
        ]
    )
    final = "\n".join(
        [
            "__scan",
            "| where __fire",
            f"| extend __start = datetime_add('millisecond', __first, {_EPOCH}), __end = __t",
            f"| project {', '.join(['__start', '__end', *out])}",
        ]
    )
    return scan, final


def _forced(p: ir.Predicate) -> dict[str, set[str]]:
    """field -> the lower-cased strings every event satisfying ``p`` holds in it (a
    case-insensitive ``field: [values]`` test, through ``all`` and ``any``)."""
    if isinstance(p, ir.Eq):
        strings = p.values and all(isinstance(v, str) for v in p.values)
        if p.quantifier == "any" and not p.cased and strings:
            return {p.field: {str(v).lower() for v in p.values}}
        return {}
    if isinstance(p, ir.And):
        out: dict[str, set[str]] = {}
        for x in p.items:
            for f, vals in _forced(x).items():
                out[f] = out[f] & vals if f in out else set(vals)
        return out
    if isinstance(p, ir.Or) and p.items:
        branches = [_forced(x) for x in p.items]
        common = set.intersection(*(set(b) for b in branches))
        return {f: set().union(*(b[f] for b in branches)) for f in common}
    return {}


def disjoint(analytic: ir.Analytic, x: str, y: str, arrays: frozenset[str]) -> bool:
    """Whether no event can be in both streams: a field both filters pin to values, with none in
    common. Derived and enriched fields, and ``arrays`` (multi-valued columns: one event may
    hold a value of each set), are left out, as backends/identity.required_values does."""
    if x == y:
        return False
    streams = {s.name: s for s in analytic.streams}

    def pins(name: str) -> dict[str, set[str]]:
        s = streams[name]
        if isinstance(s.source, str):
            return {}  # a stream read from another: its chain is not walked here
        computed = {n for n, _ in s.derive} | {f for en in s.enrich for _, f in en.add}
        return {f: v for f, v in _forced(s.filter).items() if f not in computed | arrays}

    px, py = pins(x), pins(y)
    return any(not (px[f] & py[f]) for f in px.keys() & py.keys())
