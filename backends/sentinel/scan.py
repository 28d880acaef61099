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
PARTITIONS = (
    "The native strategy is documented for partition keys numbering roughly in the thousands; "
    "for millions of keys use hint.strategy=shuffle, which gives the same result "
    "(learn.microsoft.com/kusto/query/partition-operator)"
)
NOTE_SLIDING = (
    "the window of each group is kept by scan in a partition per group key (partition "
    "hint.strategy=native, sorted by time): the state holds the times and the distinct measures' "
    "values of the rows in the current window, so its size grows with the rows of one group "
    "within one window. " + PARTITIONS
)
NOTE_COOCCURRENCE = (
    "the set of each key is kept by scan in a partition per key (partition hint.strategy=native, "
    "sorted by time): one time per member. " + PARTITIONS
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


def _expired() -> str:
    """How many times of the state's window are older than this row's ``__lo``: a prefix, the
    rows being sorted. ``array_sum`` is given a leading 0, so it never sees an empty array (its
    page does not say what that gives)."""
    return (
        "tolong(array_sum(array_concat(dynamic([0]), "
        "array_iff(series_less(s.__w, repeat(__lo, array_length(s.__w))), 1, 0))))"
    )


def _measure(m: Measure, i: int, state: str) -> str:
    """The measure over the window arrays ``<state>__w`` / ``<state>__v<i>``."""
    if m.kind == "count":
        return f"array_length({state}__w)"
    return f'array_length(set_difference({state}__v{i}, dynamic([""])))'


def sliding(
    source: str,
    keys: list[str],
    measures: list[Measure],
    having: tuple[str, str, float | int],
    size_ms: int,
    pre: list[str],
) -> tuple[str, str]:
    """The scan of a sliding aggregate over the rows of ``source`` (``__t`` and the key
    columns); ``pre`` are ``extend`` items computing the distinct measures' value columns.

    Each output row carries the window after that row: ``__w`` (times) and ``__v<i>`` (values).
    The row fires when ``having`` holds on it; the next row of the group then starts from an
    empty window (the reset), which it can tell by evaluating ``having`` on the state it reads.
    Returns (the body of ``let __scan``, the alert rows with the measures, before ``having``)."""
    name, op, lit = having
    idx = next(i for i, m in enumerate(measures) if m.name == name)
    fired = f"{_measure(measures[idx], idx, 's.')} {op} {lit}"
    arrays = [("__w", "__ms")] + [(f"__v{i}", m.value) for i, m in enumerate(measures) if m.value]
    decl = [f"{a}: dynamic = dynamic([])" for a, _ in arrays]
    drop = f"iff({fired}, 0, {_expired()})"
    assigns = [
        f"{a} = array_slice(array_concat(iff({fired}, dynamic([]), s.{a}), pack_array({x})),\n"
        f"                {drop}, -1)"
        for a, x in arrays
    ]
    ext = [f"{m.name} = {_measure(m, i, '')}" for i, m in enumerate(measures)]
    ext.append(f"__start = datetime_add('millisecond', tolong(__w[0]), {_EPOCH}), __end = __t")
    out = ["__start", "__end", *keys, *(m.name for m in measures)]
    return _scan(source, keys, pre, size_ms, decl, assigns, ext, out)


def cooccurrence(source: str, keys: list[str], members: int, window_ms: int) -> tuple[str, str]:
    """The scan of a co-occurrence of ``members`` member streams over the rows of ``source``
    (``__t``, the key columns and ``__m``, the member of the row).

    ``__l<i>`` is member i's latest time within the window; a row where every member has one
    completes a set, and the next row of the key starts from nothing (it sees the complete
    state it reads). Returns (the body of ``let __scan``, the alert rows)."""
    ls = [f"__l{i}" for i in range(members)]
    complete = " and ".join(f"isnotnull(s.{x})" for x in ls)
    decl = [f"{x}: long" for x in ls]
    assigns = [
        f"{x} = iff(__m == {i}, __ms, iff(not({complete}) and s.{x} >= __lo, s.{x}, long(null)))"
        for i, x in enumerate(ls)
    ]
    ext = [f"__start = datetime_add('millisecond', min_of({', '.join(ls)}), {_EPOCH}), __end = __t"]
    where = " and ".join(f"isnotnull({x})" for x in ls)
    return _scan(
        source, keys, [], window_ms, decl, assigns, ext, ["__start", "__end", *keys], where
    )


def counted(source: str, keys: list[str], n: int, until: bool, maxspan: str) -> tuple[str, str]:
    """The scan of a run of ``n`` events followed by one step (backends/sentinel/counted.py)
    over the rows of ``source`` (``__t``, the key columns and ``__step``: 0 a run event, 1 a
    next-step event, 2 an until event), sorted run first on ties.

    ``__runs`` holds the times of the key's latest ``n`` run events (emptied by an until row),
    ``__after`` whether the row is a run event; a next-step row whose row before was a run event
    is a candidate (``__hit``), and alerts when ``n`` run times lie within ``maxspan`` of it.
    Returns (the body of ``let __scan``, the alert rows)."""
    kept = f"array_slice(array_concat(s.__runs, pack_array(__ms)), -{n}, -1)"
    runs = f"iff(__step == 0, {kept}, s.__runs)"
    if until:
        runs = f"iff(__step == 2, dynamic([]), {runs})"
    decl = ["__runs: dynamic = dynamic([])", "__after: bool = false", "__hit: bool = false"]
    assigns = [f"__runs = {runs}", "__hit = __step == 1 and s.__after", "__after = __step == 0"]
    ext = [f"__start = datetime_add('millisecond', tolong(__runs[0]), {_EPOCH}), __end = __t"]
    body, final = _scan(
        source, keys, [], None, decl, assigns, ext, ["__start", "__end", *keys],
        f"__hit and array_length(__runs) == {n}", "__ms asc, __step asc",
    )  # fmt: skip
    head, _, tail = final.partition("\n| project ")
    return body, f"{head}\n| where __end - __start <= {maxspan}\n| project {tail}"


def _scan(
    source: str,
    keys: list[str],
    pre: list[str],
    size_ms: int | None,
    decl: list[str],
    assigns: list[str],
    ext: list[str],
    out: list[str],
    where: str | None = None,
    order: str = "__ms asc",
) -> tuple[str, str]:
    """(the body of ``let __scan``, the query of its result rows); ``size_ms`` the window
    (``__lo``, the start of each row's window), ``order`` the sort inside each partition."""
    part = keys[0] if len(keys) == 1 and keys[0].isidentifier() else "__g"
    items = [*([f"__lo = __ms - {size_ms}"] if size_ms is not None else []), *pre]
    if part == "__g":
        # one partition per key tuple: the JSON text of the tuple names it alone
        items.append(f"__g = tostring(pack_array({', '.join(keys)}))")
    body = "\n".join(
        [
            f"{source}",
            f"| extend __ms = datetime_diff('millisecond', __t, {_EPOCH})",
            *([f"| extend {', '.join(items)}"] if items else []),
            f"| partition hint.strategy=native by {part} (",
            f"    sort by {order}",
            f"    | scan declare ({', '.join(decl)}) with (",
            "        step s: true =>",
            "            " + ",\n            ".join(assigns) + ";",
            "    )",
            ")",
        ]
    )
    final = ["__scan"] + ([f"| where {where}"] if where else [])
    final += [f"| extend {', '.join(ext)}", f"| project {', '.join(out)}"]
    return body, "\n".join(final)
