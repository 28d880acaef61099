"""The Kusto scalar expressions a ``scan`` step of the KQL backend contains, parsed and evaluated in
Python (compiler/engines/kql_scan.py). Each function follows its page under
learn.microsoft.com/kusto/query/ (named in :data:`FUNCTIONS`); a function, operator or literal
not listed is a :class:`ScanError`, so the harness never runs something it does not implement.

Values: null is None, bool, long (int), real (float), string (str), datetime (naive UTC
``datetime``), timespan (``timedelta``) and dynamic arrays (lists).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]


class ScanError(ValueError):
    """Text the harness does not execute."""


# ------------------------------------------------------------------ syntax
@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Member:
    obj: str
    name: str


@dataclass(frozen=True)
class Index:
    obj: Expr
    index: Expr


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary:
    op: str
    arg: Expr


@dataclass(frozen=True)
class Binary:
    op: str
    left: Expr
    right: Expr


Expr = Lit | Name | Member | Index | Call | Unary | Binary

_TOKEN = re.compile(
    r"\s*(?:(?P<ts>\d+(?:\.\d+)?(?:ms|tick|microsecond|d|h|m|s)\b)"
    r"|(?P<num>\d+\.\d*(?:e[+-]?\d+)?|\d+(?:e[+-]?\d+)?)"
    r"|(?P<str>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>=>|==|!=|<=|>=|[-+*/%<>()\[\],.:;=]))",
    re.S,
)
_SPANS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_TYPES = ("bool", "long", "int", "real", "double", "string", "datetime", "timespan", "dynamic")


def null_of(ty: str) -> Any:
    """The default of a declared column without one: null ("Unless otherwise specified,
    DefaultValue is null")."""
    if ty not in _TYPES:
        raise ScanError(f"scan column type {ty}")
    return None


class Parser:
    def __init__(self, text: str) -> None:
        self.toks: list[tuple[str, str]] = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise ScanError(f"cannot read {text[pos : pos + 30]!r}")
            kind = m.lastgroup
            assert kind is not None
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    # token helpers
    def _peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "")

    def peek_word(self, w: str) -> bool:
        return self._peek() == ("name", w)

    def peek_punct(self, p: str) -> bool:
        return self._peek() == ("punct", p)

    def word(self, w: str) -> None:
        if not self.peek_word(w):
            raise ScanError(f"expected {w!r}, found {self._peek()[1]!r}")
        self.i += 1

    def punct(self, p: str) -> None:
        if not self.peek_punct(p):
            raise ScanError(f"expected {p!r}, found {self._peek()[1]!r}")
        self.i += 1

    def name(self) -> str:
        kind, v = self._peek()
        if kind != "name":
            raise ScanError(f"expected a name, found {v!r}")
        self.i += 1
        return v

    def end(self) -> None:
        if self.i != len(self.toks):
            raise ScanError(f"unexpected {self._peek()[1]!r}")

    # expressions, loosest first: or, and, comparison, additive, multiplicative, unary
    def expression(self) -> Expr:
        left = self._and()
        while self.peek_word("or"):
            self.i += 1
            left = Binary("or", left, self._and())
        return left

    def _and(self) -> Expr:
        left = self._cmp()
        while self.peek_word("and"):
            self.i += 1
            left = Binary("and", left, self._cmp())
        return left

    def _cmp(self) -> Expr:
        left = self._add()
        kind, v = self._peek()
        if kind == "punct" and v in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            return Binary(v, left, self._add())
        return left

    def _add(self) -> Expr:
        left = self._mul()
        while self._peek() in (("punct", "+"), ("punct", "-")):
            op = self._peek()[1]
            self.i += 1
            left = Binary(op, left, self._mul())
        return left

    def _mul(self) -> Expr:
        left = self._unary()
        while self._peek() in (("punct", "*"), ("punct", "/"), ("punct", "%")):
            op = self._peek()[1]
            self.i += 1
            left = Binary(op, left, self._unary())
        return left

    def _unary(self) -> Expr:
        if self.peek_punct("-"):
            self.i += 1
            return Unary("-", self._unary())
        e = self._primary()
        while self.peek_punct("["):
            self.i += 1
            idx = self.expression()
            self.punct("]")
            e = Index(e, idx)
        return e

    def _primary(self) -> Expr:
        kind, v = self._peek()
        self.i += 1
        if kind == "ts":
            unit = re.sub(r"[\d.]", "", v)
            if unit not in _SPANS:
                raise ScanError(f"timespan {v}")
            return Lit(dt.timedelta(milliseconds=float(v[: -len(unit)]) * _SPANS[unit]))
        if kind == "num":
            return Lit(float(v) if any(c in v for c in ".e") else int(v))
        if kind == "str":
            return Lit(json.loads('"' + v[1:-1].replace('\\"', '"').replace("\\'", "'") + '"'))
        if kind == "punct" and v == "(":
            e = self.expression()
            self.punct(")")
            return e
        if kind != "name":
            raise ScanError(f"unexpected {v!r}")
        if v in ("true", "false"):
            return Lit(v == "true")
        if self.peek_punct("("):
            return self._call(v)
        if self.peek_punct("."):
            self.i += 1
            return Member(v, self.name())
        return Name(v)

    def _call(self, func: str) -> Expr:
        self.punct("(")
        if func == "dynamic":
            # dynamic literals: a JSON array of numbers, strings, booleans and null
            start = self.i
            depth = 1
            while depth:
                kind, v = self._peek()
                if kind == "end":
                    raise ScanError("unterminated dynamic()")
                depth += (v == "(") - (v == ")") if kind == "punct" else 0
                self.i += 1
            text = "".join(t[1] for t in self.toks[start : self.i - 1])
            return Lit(json.loads(text))
        if func == "datetime":
            start = self.i
            while not self.peek_punct(")"):
                self.i += 1
            text = "".join(t[1] for t in self.toks[start : self.i])
            self.i += 1
            return Lit(dt.datetime.fromisoformat(text.replace("T", " ")))
        if func in _TYPES and self.peek_word("null"):
            self.i += 1
            self.punct(")")
            return Lit(None)  # typed null literal: long(null), bool(null), ...
        args: list[Expr] = []
        while not self.peek_punct(")"):
            args.append(self.expression())
            if not self.peek_punct(","):
                break
            self.punct(",")
        self.punct(")")
        if func not in FUNCTIONS:
            raise ScanError(f"the harness does not implement the function {func}()")
        return Call(func, tuple(args))


# ------------------------------------------------------------------ evaluation
def evaluate(
    e: Expr,
    row: Row,
    state: Mapping[str, Row],
    defaults: Mapping[str, Any] | None = None,
    steps: frozenset[str] = frozenset(),
) -> Any:
    """``e`` on the record ``row``; ``StepName.Column`` reads ``state`` (step name -> the values
    that step recorded), a declared column of a step with no values its default."""
    defaults = defaults or {}

    def ev(x: Expr) -> Any:
        if isinstance(x, Lit):
            return x.value
        if isinstance(x, Name):
            if x.name not in row:
                raise ScanError(f"unknown column {x.name}")
            return row[x.name]
        if isinstance(x, Member):
            if x.obj not in steps:
                raise ScanError(f"{x.obj}.{x.name}: only scan state references are executed")
            rec = state.get(x.obj)
            if rec is None:
                return defaults.get(x.name)
            return rec.get(x.name)
        if isinstance(x, Index):
            arr, i = ev(x.obj), ev(x.index)
            if not isinstance(arr, list) or not isinstance(i, int):
                return None
            i = i + len(arr) if i < 0 else i
            return arr[i] if 0 <= i < len(arr) else None
        if isinstance(x, Unary):
            v = ev(x.arg)
            return None if v is None else -v
        if isinstance(x, Binary):
            if x.op in ("and", "or"):
                return _logic(x.op, ev(x.left), ev(x.right))
            return _binary(x.op, ev(x.left), ev(x.right))
        assert isinstance(x, Call)
        return FUNCTIONS[x.func](*[ev(a) for a in x.args])

    return ev(e)


def _logic(op: str, a: Any, b: Any) -> Any:
    # three-valued logic: null and false = false, null or true = true, otherwise null
    if op == "and":
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if a is True or b is True:
        return True
    return None if a is None or b is None else False


def _binary(op: str, a: Any, b: Any) -> Any:
    # an operator with a null operand gives null (learn.microsoft.com/kusto/query/
    # null-values: "null values ... in comparisons and arithmetic ... yield null")
    if a is None or b is None:
        return None
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op in ("<", "<=", ">", ">="):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if isinstance(a, dt.timedelta) and isinstance(b, dt.timedelta):
            return a / b
        if isinstance(a, int) and isinstance(b, int):
            return None if b == 0 else int(a / b)  # long division truncates toward zero
        return a / b
    raise ScanError(f"operator {op}")


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _iff(cond: Any, then: Any, other: Any) -> Any:
    # iff(): "If if evaluates to true, returns the value of then, otherwise returns else"
    return then if cond is True else other


def _isempty(v: Any) -> bool:
    # isempty(): true for null and the empty string
    return v is None or v == ""


def _array_length(a: Any) -> Any:
    # array_length(): "The number of elements in array, or null if array isn't an array"
    return len(a) if isinstance(a, list) else None


def _array_concat(*arrays: Any) -> Any:
    # array_concat(): one array of the arrays' elements; null when an argument is no array
    if not arrays or not all(isinstance(a, list) for a in arrays):
        return None
    return [x for a in arrays for x in a]


def _array_slice(a: Any, start: Any, end: Any) -> Any:
    # array_slice(array, start, end): [start..end], both inclusive; negative indices count
    # from the end ("converted to array_length + start"); out of bounds indices are ignored
    if not isinstance(a, list) or not isinstance(start, int) or not isinstance(end, int):
        return None
    n = len(a)
    s = start + n if start < 0 else start
    e = end + n if end < 0 else end
    return a[max(s, 0) : min(e, n - 1) + 1] if s <= e else []


def _pack_array(*vals: Any) -> list[Any]:
    return list(vals)


def _repeat(value: Any, count: Any) -> Any:
    # repeat(value, count): an array of count copies; count 0 or less gives []
    if not isinstance(count, int):
        return None
    return [value] * max(count, 0)


def _series_less(s1: Any, s2: Any) -> Any:
    # series_less(): element-wise <; a non-numeric element or a missing one (arrays of
    # different sizes) gives null
    if not isinstance(s1, list) or not isinstance(s2, list):
        return None
    out: list[Any] = []
    for i in range(max(len(s1), len(s2))):
        a: Any = s1[i] if i < len(s1) else None
        b: Any = s2[i] if i < len(s2) else None
        out.append(bool(a < b) if _num(a) and _num(b) else None)
    return out


def _array_iff(cond: Any, when_true: Any, when_false: Any) -> Any:
    # array_iff(): element-wise iff; numeric conditions are true when not 0, other condition
    # values give null; a short when_true / when_false array reads as null past its end
    if not isinstance(cond, list):
        return None

    def pick(v: Any, i: int) -> Any:
        if isinstance(v, list):
            return v[i] if i < len(v) else None
        return v

    out: list[Any] = []
    for i, c in enumerate(cond):
        if isinstance(c, bool):
            out.append(pick(when_true if c else when_false, i))
        elif _num(c):
            out.append(pick(when_true if c != 0 else when_false, i))
        else:
            out.append(None)
    return out


def _array_sum(a: Any) -> Any:
    # array_sum(): the sum as a real; null when an element is not numeric. The backend only
    # passes non-empty arrays (the doc does not say what [] gives)
    if not isinstance(a, list) or not a:
        raise ScanError("array_sum() of an empty or non-array value")
    if not all(_num(x) for x in a):
        return None
    return float(math.fsum(a))


def _set_difference(*sets: Any) -> Any:
    # set_difference(set1, set2, ...): the distinct values of set1 in none of the others
    if len(sets) < 2 or not all(isinstance(s, list) for s in sets):
        return None
    out: list[Any] = []
    for x in sets[0]:
        if x not in out and not any(x in s for s in sets[1:]):
            out.append(x)
    return out


def _tolong(v: Any) -> Any:
    # tolong(): a number truncated to a long; a string that does not parse gives null
    if v is None or isinstance(v, bool):
        return None
    if _num(v):
        return int(v)
    try:
        return int(str(v))
    except ValueError:
        return None


def _tostring(v: Any) -> str:
    # tostring(): null gives ""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _min_of(*vals: Any) -> Any:
    # min_of(): the smallest argument; nulls are ignored (null only when all are)
    xs = [v for v in vals if v is not None]
    return min(xs) if xs else None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "iff": _iff,  # iff-function
    "iif": _iff,
    "isnull": lambda v: v is None,  # isnull-function
    "isnotnull": lambda v: v is not None,  # isnotnull-function
    "isempty": _isempty,  # isempty-function
    "isnotempty": lambda v: not _isempty(v),  # isnotempty-function
    "array_length": _array_length,  # array-length-function
    "array_concat": _array_concat,  # array-concat-function
    "array_slice": _array_slice,  # array-slice-function
    "array_iff": _array_iff,  # array-iff-function
    "array_sum": _array_sum,  # array-sum-function
    "pack_array": _pack_array,  # pack-array-function
    "repeat": _repeat,  # repeat-function
    "series_less": _series_less,  # series-less-function
    "set_difference": _set_difference,  # set-difference-function
    "tolong": _tolong,  # tolong-function
    "tostring": _tostring,  # tostring-function
    "min_of": _min_of,  # min-of-function
    "not": lambda v: None if v is None else not v,  # not-function
}
