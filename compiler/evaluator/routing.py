"""Routing input events to logsource streams (docs/semantics.md "Logsources").

Every stream with a ``logsource`` receives the events satisfying its condition. Many streams share
a logsource (or parts of one), and a logsource condition reads only a few fields
(``event.category``, ``event.type``, ``host.os.type``, ...), whose values repeat across millions of
events. :class:`Router` therefore evaluates each *distinct* logsource condition once per event and
memoises the outcome on the values of the fields the conditions read: for a typical event,
routing costs a few ``dict.get`` calls and one dictionary look-up, whatever the number of streams.

The memo is exact: a logsource condition is a pure function of the fields it names. Only keys
whose values are strings or null are stored (other values, e.g. a multi-valued
``event.category``, are evaluated directly every time), and a field read only by ``exists``
enters the key as ``True`` when it holds a scalar (``None`` when missing; a multi-value is never
memoised). Since nothing but a string equals a string (event values are plain ``str``, ``int``,
``float``, ``bool``, None or lists), a hit can only be an event whose fields hold those same
strings (or nulls). With a single distinct condition there is nothing to share: it is evaluated
directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from compiler import ir
from compiler.evaluator.predicates import compile_predicate

Fields = Mapping[str, Any]
_MEMO_MAX = 4096  # distinct combinations kept; cleared when full (bounded memory)


def _predicate_fields(p: ir.Predicate, values: set[str], exists: set[str]) -> bool:
    """Collect the fields ``p`` reads (by value, or only by presence); False when ``p`` holds a
    node whose inputs are not known here (then routing is not memoised)."""
    if isinstance(p, ir.And | ir.Or):
        return all(_predicate_fields(i, values, exists) for i in p.items)
    if isinstance(p, ir.Not):
        return _predicate_fields(p.item, values, exists)
    if isinstance(p, ir.Exists):
        exists.add(p.field)
        return True
    if isinstance(p, ir.Eq | ir.StrMatch | ir.Regex | ir.Compare | ir.Cidr):
        values.add(p.field)
        return True
    return False


_MULTI = (list, tuple)


class Router[T]:
    """``route(fields)``: ``outcome(positions)``, ``positions`` being the tuple of the positions
    (in ``conditions`` order) of the conditions ``fields`` satisfy. Each distinct condition is
    evaluated once; outcomes are computed once per distinct ``positions``."""

    def __init__(
        self,
        conditions: Sequence[ir.Predicate],
        lookups: Mapping[str, ir.Lookup],
        outcome: Callable[[tuple[int, ...]], T],
    ) -> None:
        distinct: dict[ir.Predicate, int] = {}
        self._slot: list[int] = []  # condition position -> distinct predicate
        for c in conditions:
            self._slot.append(distinct.setdefault(c, len(distinct)))
        self._preds: list[Callable[[Fields], bool]] = [
            compile_predicate(c, lookups) for c in distinct
        ]
        values: set[str] = set()
        exists: set[str] = set()
        self._memoise = all(_predicate_fields(c, values, exists) for c in distinct)
        self._values = tuple(sorted(values))
        self._exists = tuple(sorted(exists - values))
        self._outcome = outcome
        self._outcomes: dict[tuple[int, ...], T] = {}  # at most 2**len(conditions)
        self._memo: dict[tuple[Any, ...], T] = {}

        self.route: Callable[[Fields], T] = self._make_route()

    def _make_route(self) -> Callable[[Fields], T]:
        """``route``, specialised: the key of one to three value fields is built inline (a
        ``tuple(map(...))`` or a loop costs more than the memo saves)."""
        evaluate, memo, names, exists = self._evaluate, self._memo, self._values, self._exists
        width = len(names)
        if not self._memoise:
            return evaluate
        if len(self._preds) == 1:  # one distinct condition: evaluating it is as cheap as a memo
            pred = self._preds[0]
            yes, no = self._outcome_of(tuple(range(len(self._slot)))), self._outcome_of(())
            return lambda fields: yes if pred(fields) else no

        def slow(fields: Fields, key: tuple[Any, ...]) -> T:
            try:
                hit = memo.get(key)
            except TypeError:  # an unhashable value (a multi-value): no memo
                return evaluate(fields)
            if hit is not None:
                return hit
            out = evaluate(fields)
            if all(v is None or type(v) is str for v in key[:width]) and all(
                v is None or v is True for v in key[width:]
            ):
                if len(memo) >= _MEMO_MAX:
                    memo.clear()
                memo[key] = out
            return out

        if exists or width > 3 or width == 0:

            def route(fields: Fields) -> T:
                get = fields.get
                # A field read only by `exists` enters as True when it holds a scalar, None when
                # missing; a multi-value enters as itself and is never memoised.
                key = tuple(
                    [get(f) for f in names]
                    + [
                        True if (v := get(f)) is not None and type(v) not in _MULTI else v
                        for f in exists
                    ]
                )
                return slow(fields, key)

            return route
        a, b, c = (*names, "", "")[:3]

        def route_values(fields: Fields) -> T:
            get = fields.get
            if width == 2:
                key: tuple[Any, ...] = (get(a), get(b))
            elif width == 1:
                key = (get(a),)
            else:
                key = (get(a), get(b), get(c))
            try:
                hit = memo.get(key)
            except TypeError:
                hit = None
            return slow(fields, key) if hit is None else hit

        return route_values

    def _evaluate(self, fields: Fields) -> T:
        results = [p(fields) for p in self._preds]
        return self._outcome_of(tuple(i for i, slot in enumerate(self._slot) if results[slot]))

    def _outcome_of(self, positions: tuple[int, ...]) -> T:
        out = self._outcomes.get(positions)
        if out is None:
            out = self._outcomes[positions] = self._outcome(positions)
        return out
