"""Accumulators for aggregate measures (``count``, ``distinct``, ``sum``, ``avg``, ``min``, ``max``,
``stdev``, ``percentile``).

Every accumulator takes the *raw* field value of one event (``add``) and can take it back
(``remove``, used by sliding windows, which drop events in arrival order). Results are
independent of the order of additions and removals: sums are kept exactly (ints as ints, floats
as integers scaled by 2**1074, the weight of the smallest double) and rounded once, when read.

Semantics (the specification; see docs/semantics.md):

* A multi-valued field contributes each of its non-null elements (``sum`` of ``[1, 2]`` adds 3,
  ``distinct`` sees two values), except ``count: field``, which counts *events* whose field has
  at least one non-null value. ``count: true`` counts every event.
* ``sum``/``avg``/``min``/``max``/``stdev``/``percentile`` read numbers and numeric strings
  (:func:`compiler.evaluator.values.to_number`); missing, null and non-numeric values are ignored.
  With no numeric value at all the result is null (like Splunk, unlike SQL ``COUNT``).
* ``sum``, ``min``, ``max`` and ``percentile`` of ints are ints; ``avg`` and ``stdev`` are floats.
  ``sum`` is the correctly rounded exact sum; ``avg`` the correctly rounded exact mean.
* ``stdev`` is the *sample* standard deviation (n - 1); fewer than 2 values: null.
* ``percentile p`` is the nearest rank: the smallest value v such that at least p% of the values
  are <= v, i.e. the ``ceil(p/100 * n)``-th smallest (at least the 1st). p is taken as the decimal
  number written (``99.9`` is 999/10 exactly).
* ``distinct`` counts distinct non-null values under the one key rule of :mod:`.keys`: exact and
  case-sensitive text (Splunk ``dc`` and KQL ``dcount`` are case-sensitive), a number as its
  decimal text (``"443"`` = ``443`` = ``443.0``, ``"7"`` != ``"7.0"``), booleans are not numbers.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache, partial
from typing import Any, Protocol

from compiler import ir
from compiler.evaluator.keys import alternatives
from compiler.evaluator.values import to_number

Number = int | float
_FBITS = 1074  # every finite double is an integer multiple of 2**-1074
_FONE = 1 << _FBITS
_MULTI = (list, tuple)


class Accumulator(Protocol):
    def add(self, v: Any) -> None: ...

    def remove(self, v: Any) -> None: ...

    def result(self) -> ir.Scalar: ...


def _elements(v: Any) -> Sequence[Any]:
    """The non-null values a raw field value contributes (one level of multi-value)."""
    if v is None:
        return ()
    if isinstance(v, list | tuple):
        return [x for x in v if x is not None]
    return (v,)


def _numbers(v: Any) -> list[Number]:
    out: list[Number] = []
    for x in _elements(v):
        n = to_number(x)
        if n is not None:
            out.append(n)
    return out


def _scaled(x: float) -> int:
    """``x * 2**1074`` exactly (``x`` finite)."""
    num, den = x.as_integer_ratio()  # den is a power of two <= 2**1074
    return num << (_FBITS - den.bit_length() + 1)


def _div(num: int, den: int) -> float | None:
    """Correctly rounded ``num / den`` (Python int true division); None if it overflows."""
    try:
        return num / den
    except OverflowError:
        return None


@lru_cache(maxsize=256)
def _p_fraction(p: float) -> Fraction:
    # repr() gives the shortest decimal that round-trips: the number the author wrote.
    return Fraction(repr(float(p)))


def nearest_rank_index(p: float, n: int) -> int:
    """0-based index of the nearest-rank ``p``-th percentile among ``n`` sorted values."""
    r = math.ceil(_p_fraction(p) * n / 100)
    return min(max(r, 1), n) - 1


def percentile(sorted_values: Sequence[Number], p: float) -> Number | None:
    if not sorted_values:
        return None
    return sorted_values[nearest_rank_index(p, len(sorted_values))]


# --------------------------------------------------------------------------- exact moments
class _Moments:
    """Exact n, sum and sum of squares of numbers; ints and floats kept apart so that all-int
    input never touches the (slower) scaled representation."""

    __slots__ = ("n", "nf", "s1f", "s1i", "s2f", "s2i", "squares")

    def __init__(self, squares: bool) -> None:
        self.squares = squares
        self.n = 0
        self.nf = 0  # how many of the n are floats
        self.s1i = 0
        self.s2i = 0
        self.s1f = 0  # scaled by 2**1074
        self.s2f = 0  # scaled by 2**2148

    def put(self, x: Number, sign: int) -> None:
        self.n += sign
        if type(x) is int:
            self.s1i += sign * x
            if self.squares:
                self.s2i += sign * x * x
        else:
            self.nf += sign
            sx = _scaled(float(x))
            self.s1f += sign * sx
            if self.squares:
                self.s2f += sign * sx * sx

    def total(self) -> Number | None:
        if self.n == 0:
            return None
        if self.nf == 0:
            return self.s1i
        return _div((self.s1i << _FBITS) + self.s1f, _FONE)

    def mean(self) -> float | None:
        if self.n == 0:
            return None
        if self.nf == 0:
            return _div(self.s1i, self.n)
        return _div((self.s1i << _FBITS) + self.s1f, self.n << _FBITS)

    def sample_stdev(self) -> float | None:
        n = self.n
        if n < 2:
            return None
        if self.nf == 0:
            num = n * self.s2i - self.s1i * self.s1i
            den = n * (n - 1)
        else:
            s1 = (self.s1i << _FBITS) + self.s1f
            s2 = (self.s2i << (2 * _FBITS)) + self.s2f
            num = n * s2 - s1 * s1
            den = (n * (n - 1)) << (2 * _FBITS)
        var = _div(num, den)  # exact rational, rounded once
        return None if var is None else math.sqrt(max(var, 0.0))


def sample_stdev(values: Sequence[Number]) -> float | None:
    """Sample standard deviation of ``values`` (exact moments), None for fewer than 2."""
    m = _Moments(squares=True)
    for x in values:
        m.put(x, 1)
    return m.sample_stdev()


def mean(values: Sequence[Number]) -> float | None:
    m = _Moments(squares=False)
    for x in values:
        m.put(x, 1)
    return m.mean()


# --------------------------------------------------------------------------- accumulators
class CountAll:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def add(self, v: Any) -> None:
        self.n += 1

    def remove(self, v: Any) -> None:
        self.n -= 1

    def result(self) -> ir.Scalar:
        return self.n


class CountField(CountAll):
    """Events whose field has a non-null value (a multi-valued field counts once)."""

    __slots__ = ()

    def add(self, v: Any) -> None:
        if v is not None and (type(v) not in _MULTI or any(x is not None for x in v)):
            self.n += 1

    def remove(self, v: Any) -> None:
        if v is not None and (type(v) not in _MULTI or any(x is not None for x in v)):
            self.n -= 1


class Distinct:
    """Distinct values; a value -> multiplicity map so that removal is exact."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}

    def add(self, v: Any) -> None:
        c = self.counts
        for k in alternatives(v):
            c[k] = c.get(k, 0) + 1

    def remove(self, v: Any) -> None:
        c = self.counts
        for k in alternatives(v):
            left = c[k] - 1
            if left:
                c[k] = left
            else:
                del c[k]

    def result(self) -> ir.Scalar:
        return len(self.counts)


class DistinctSet:
    """Distinct values without removal (tumbling windows): a plain set."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: set[Any] = set()

    def add(self, v: Any) -> None:
        self.seen.update(alternatives(v))

    def remove(self, v: Any) -> None:
        raise TypeError("DistinctSet does not support removal")

    def result(self) -> ir.Scalar:
        return len(self.seen)


class _MomentAcc(_Moments):
    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(squares=False)

    def add(self, v: Any) -> None:
        if type(v) is int:  # fast path: byte counts, ports, ...
            self.n += 1
            self.s1i += v
            if self.squares:
                self.s2i += v * v
            return
        for x in _numbers(v):
            self.put(x, 1)

    def remove(self, v: Any) -> None:
        for x in _numbers(v):
            self.put(x, -1)


class Sum(_MomentAcc):
    __slots__ = ()

    def result(self) -> ir.Scalar:
        return self.total()


class Avg(_MomentAcc):
    __slots__ = ()

    def result(self) -> ir.Scalar:
        return self.mean()


class Stdev(_MomentAcc):
    __slots__ = ()

    def __init__(self) -> None:
        _Moments.__init__(self, squares=True)

    def result(self) -> ir.Scalar:
        return self.sample_stdev()


class RunningMinMax:
    """min/max without removal (tumbling windows): O(1) memory."""

    __slots__ = ("best", "is_max")

    def __init__(self, is_max: bool) -> None:
        self.is_max = is_max
        self.best: Number | None = None

    def add(self, v: Any) -> None:
        for x in _numbers(v):
            b = self.best
            if b is None or (x > b if self.is_max else x < b):
                self.best = x

    def remove(self, v: Any) -> None:
        raise TypeError("RunningMinMax does not support removal")

    def result(self) -> ir.Scalar:
        return self.best


class SortedValues:
    """All numeric values in a sorted list: min, max or percentile, with exact removal.
    Memory is proportional to the values in the window, which the window holds anyway."""

    __slots__ = ("p", "values", "what")

    def __init__(self, what: str, p: float | None = None) -> None:
        self.what = what
        self.p = p
        self.values: list[Number] = []

    def add(self, v: Any) -> None:
        for x in _numbers(v):
            insort(self.values, x)

    def remove(self, v: Any) -> None:
        vals = self.values
        for x in _numbers(v):
            del vals[bisect_left(vals, x)]

    def result(self) -> ir.Scalar:
        vals = self.values
        if not vals:
            return None
        if self.what == "min":
            return vals[0]
        if self.what == "max":
            return vals[-1]
        return vals[nearest_rank_index(self.p if self.p is not None else 50.0, len(vals))]


class AppendPercentile:
    """Percentile without removal: append, sort once when read (tumbling windows)."""

    __slots__ = ("p", "values")

    def __init__(self, p: float) -> None:
        self.p = p
        self.values: list[Number] = []

    def add(self, v: Any) -> None:
        self.values.extend(_numbers(v))

    def remove(self, v: Any) -> None:
        raise TypeError("AppendPercentile does not support removal")

    def result(self) -> ir.Scalar:
        self.values.sort()
        return percentile(self.values, self.p)


def accumulator_factory(m: ir.Measure, removable: bool = False) -> Callable[[], Accumulator]:
    """A function making fresh accumulators for ``m`` (dispatch done once, for windows that
    open a group per event); ``removable`` when values will be taken back."""
    kind = m.kind
    if kind == "count":
        # a conditional `count: true` is given True or None per event (see aggregate.py)
        return CountAll if m.field is None and m.where is None else CountField
    if kind == "distinct":
        return Distinct if removable else DistinctSet
    if kind == "sum":
        return Sum
    if kind == "avg":
        return Avg
    if kind == "stdev":
        return Stdev
    if kind in ("min", "max"):
        if removable:
            return partial(SortedValues, kind)
        return partial(RunningMinMax, kind == "max")
    if kind == "percentile":
        p = 50.0 if m.p is None else m.p
        return partial(SortedValues, "percentile", p) if removable else partial(AppendPercentile, p)
    raise ValueError(f"unknown measure kind {kind!r}")


def make_accumulator(m: ir.Measure, removable: bool = False) -> Accumulator:
    """A fresh accumulator for ``m``; ``removable`` when values will be taken back."""
    return accumulator_factory(m, removable)()
