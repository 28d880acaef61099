"""ES|QL expressions for the interpreter: operators and scalar functions over one row.

Each function follows its page of the ES|QL reference
(https://www.elastic.co/docs/reference/query-languages/esql/functions-operators/...); the rule
for multi-values is the reference's general one (null, with a warning) unless the page says the
function takes multi-values (TO_LOWER/TO_UPPER, the TO_* conversions, COALESCE, GREATEST/LEAST,
MV_*, IS NULL). Boolean logic is three-valued (SQL): ``null AND false`` is false,
``null OR true`` is true, ``NOT null`` is null, and WHERE keeps only rows where the condition is
true.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from typing import Any

from esql import ast

from tests.interpreters import esql_interp_regex as rx
from tests.interpreters.esql_interp_values import (
    Date,
    Duration,
    EsqlError,
    Period,
    compare,
    family,
    finite_or_null,
    ip_key,
    long_or_null,
    pack,
    shift,
    single,
    temporal,
    to_double,
    to_ip,
    to_long,
    to_string,
    trunc,
    type_of,
    unescape,
    values,
)

AGGREGATES = frozenset(
    {
        "count",
        "count_distinct",
        "sum",
        "avg",
        "min",
        "max",
        "std_dev",
        "percentile",
        "median",
        "values",
    }
)


class Row:
    """One row's columns; ``open`` rows (straight from FROM) read an unknown column as null,
    as an index whose mapping has the field but no document a value; after STATS, KEEP or
    DROP an unknown column is an error, as in Elasticsearch."""

    def __init__(
        self,
        data: Mapping[str, Any],
        columns: list[str],
        open_: bool,
        dropped: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        self.data = data
        self.columns = columns
        self.open = open_
        self.dropped = dropped

    def get(self, name: str) -> Any:
        if name in self.data:
            return self.data[name]
        if name in self.columns or (self.open and name not in self.dropped):
            return None
        raise EsqlError(f"Unknown column [{name}]")


def _bool3_and(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _bool3_or(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _bool(v: Any) -> bool | None:
    v = single(v)
    if v is None or isinstance(v, bool):
        return v
    raise EsqlError(f"a boolean was expected, got {type_of(v)}")


def _arith(op: str, a: Any, b: Any) -> Any:
    a, b = single(a), single(b)
    if a is None or b is None:
        return None
    if isinstance(a, Date) and isinstance(b, Duration | Period) and op in "+-":
        return shift(a, b, 1 if op == "+" else -1)
    if isinstance(a, Duration | Period) and isinstance(b, Date) and op == "+":
        return shift(b, a, 1)
    if family(a) != "numeric" or family(b) != "numeric":
        raise EsqlError(f"{type_of(a)} {op} {type_of(b)} is not interpreted")
    if isinstance(a, int) and isinstance(b, int):
        if op in "/%" and b == 0:
            return None  # "/ by zero": null with a warning
        if op == "/":
            q = abs(a) // abs(b)  # Java integer division truncates toward zero
            return long_or_null(q if (a >= 0) == (b >= 0) else -q)
        if op == "%":
            return long_or_null(int(math.fmod(a, b)))
        return long_or_null({"+": a + b, "-": a - b, "*": a * b}[op])
    x, y = float(a), float(b)
    if op in "/%" and y == 0:
        return None
    if op == "/":
        return finite_or_null(x / y)
    if op == "%":
        return finite_or_null(math.fmod(x, y))
    return finite_or_null({"+": x + y, "-": x - y, "*": x * y}[op])


_CMP: dict[str, Callable[[int], bool]] = {
    "==": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _compare(op: str, a: Any, b: Any) -> bool | None:
    c = compare(single(a), single(b))
    return None if c is None else _CMP[op](c)


def _in(a: Any, items: list[Any]) -> bool | None:
    """`a IN (...)`: true if some item equals a; else null if a or some item is null."""
    a = single(a)
    if a is None:
        return None
    saw_null = False
    for it in items:
        it = single(it)
        if it is None:
            saw_null = True
        elif compare(a, it) == 0:
            return True
    return None if saw_null else False


class Evaluator:
    def __init__(self, now_ms: int, lines: list[str]) -> None:
        self.now = Date(now_ms)
        self.lines = lines  # the query text, to tell triple-quoted literals from "..."
        # aggregate call node id -> value, set while STATS evaluates its output expressions
        self.agg_values: dict[int, Any] = {}

    # ------------------------------------------------------------------ nodes
    def eval(self, node: ast.Expression, row: Row) -> Any:
        if isinstance(node, ast.Literal):
            return self.literal(node)
        if isinstance(node, ast.ColumnRef):
            return row.get(node.name)
        if isinstance(node, ast.BinaryExpr):
            return self.binary(node, row)
        if isinstance(node, ast.FunctionCall):
            if id(node) in self.agg_values:
                return self.agg_values[id(node)]
            return self.call(node, row)
        if isinstance(node, ast.InlineCast):
            fn = _CASTS.get(node.target_type.lower())
            if fn is None:
                raise EsqlError(f"cast ::{node.target_type} is not interpreted")
            return _each(fn, self.eval(node.expr, row))
        raise EsqlError(f"expression {type(node).__name__} is not interpreted")

    def literal(self, node: ast.Literal) -> Any:
        k = node.kind
        if k == "string":
            return node.value if self._triple_quoted(node) else unescape(node.value)
        if k in ("long", "integer", "double", "boolean", "null"):
            return node.value
        if k in ("time_duration", "date_period"):
            return temporal(node.value)
        if k in ("string_array", "numeric_array", "boolean_array"):
            items = [unescape(v) if k == "string_array" else v for v in node.value]
            return pack(items)
        raise EsqlError(f"literal of kind {k} is not interpreted")

    def _triple_quoted(self, node: ast.Literal) -> bool:
        line, col = node.line, node.column
        if line is None or col is None or not 0 <= line < len(self.lines):
            return False
        return self.lines[line].startswith('"""', col)

    def binary(self, node: ast.BinaryExpr, row: Row) -> Any:
        op = node.op
        if op == "and":
            return _bool3_and(_bool(self.eval(node.left, row)), _bool(self.eval(node.right, row)))
        if op == "or":
            return _bool3_or(_bool(self.eval(node.left, row)), _bool(self.eval(node.right, row)))
        left = self.eval(node.left, row)
        if op in ("in", "not_in"):
            right = node.right
            if not (isinstance(right, ast.FunctionCall) and right.name == "__values__"):
                raise EsqlError("IN with a subquery is not interpreted")
            res = _in(left, [self.eval(a, row) for a in right.args])
            return res if op == "in" or res is None else not res
        right_v = self.eval(node.right, row)
        if op in _CMP:
            return _compare(op, left, right_v)
        if op in ("+", "-", "*", "/", "%"):
            return _arith(op, left, right_v)
        raise EsqlError(f"operator {op} is not interpreted")

    # ------------------------------------------------------------------ functions
    def call(self, node: ast.FunctionCall, row: Row) -> Any:
        name = node.name.lower()
        if name in AGGREGATES:
            raise EsqlError(f"aggregate {name.upper()} outside STATS")
        lazy = _LAZY.get(name)
        if lazy is not None:
            return lazy(self, node.args, row)
        fn = _FUNCS.get(name)
        if fn is None:
            raise EsqlError(f"function {name.upper()} is not interpreted")
        return fn(self, [self.eval(a, row) for a in node.args])


def _each(fn: Callable[[Any], Any], v: Any) -> Any:
    """Apply a conversion to every value of a (multi-)value; failed values are dropped."""
    return pack([fn(x) for x in values(v)])


def _strings(v: Any) -> Any:
    for x in values(v):
        if not isinstance(x, str):
            raise EsqlError(f"a string was expected, got {type_of(x)}")
    return v


def _case(ev: Evaluator, args: list[ast.Expression], row: Row) -> Any:
    """CASE(c1, v1, c2, v2, ..., [else]): the first true condition; a null condition is not
    true (https://www.elastic.co/docs/reference/query-languages/esql/functions-operators/conditional-functions-and-expressions#esql-case)."""
    i = 0
    while i + 1 < len(args):
        if _bool(ev.eval(args[i], row)) is True:
            return ev.eval(args[i + 1], row)
        i += 2
    return ev.eval(args[i], row) if i < len(args) else None


def _coalesce(ev: Evaluator, args: list[ast.Expression], row: Row) -> Any:
    for a in args:
        v = ev.eval(a, row)
        if v is not None:
            return v
    return None


def _is_null(ev: Evaluator, args: list[ast.Expression], row: Row) -> Any:
    return ev.eval(args[0], row) is None


def _is_not_null(ev: Evaluator, args: list[ast.Expression], row: Row) -> Any:
    return ev.eval(args[0], row) is not None


def _not(ev: Evaluator, args: list[ast.Expression], row: Row) -> Any:
    v = _bool(ev.eval(args[0], row))
    return None if v is None else not v


def _like_fn(kind: str, negate: bool) -> Callable[[Evaluator, list[ast.Expression], Row], Any]:
    def run(ev: Evaluator, args: list[ast.Expression], row: Row) -> Any:
        s = single(ev.eval(args[0], row))
        if s is None:
            return None
        if not isinstance(s, str):
            raise EsqlError(f"{kind.upper()} on {type_of(s)}")
        pats = [ev.eval(a, row) for a in args[1:]]
        hit = False
        for p in pats:
            if not isinstance(p, str):
                raise EsqlError(f"{kind.upper()} pattern must be a string")
            if (rx.like(p).fullmatch(s) is not None) if kind == "like" else rx.rlike(p, s):
                hit = True
                break
        return hit != negate

    return run


def _greatest(pick: Callable[[list[Any]], Any]) -> Callable[[Evaluator, list[Any]], Any]:
    """GREATEST/LEAST: null if any argument is null; a multi-valued argument contributes its
    largest/smallest value (MV_MAX/MV_MIN)."""

    def run(ev: Evaluator, args: list[Any]) -> Any:
        if any(a is None for a in args):
            return None
        return pick([pick(values(a)) for a in args])

    return run


def _max(vs: list[Any]) -> Any:
    best = vs[0]
    for v in vs[1:]:
        if (compare(v, best) or 0) > 0:
            best = v
    return best


def _min(vs: list[Any]) -> Any:
    best = vs[0]
    for v in vs[1:]:
        if (compare(v, best) or 0) < 0:
            best = v
    return best


def _cidr_match(ev: Evaluator, args: list[Any]) -> Any:
    ip = single(args[0])
    if ip is None:
        return None
    if not isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise EsqlError(f"CIDR_MATCH on {type_of(ip)}")
    key = ip_key(ip)
    for block in args[1:]:
        for b in values(block):
            addr, _, plen = str(b).partition("/")
            try:
                net = ipaddress.ip_address(addr)
            except ValueError:
                raise EsqlError(f"invalid CIDR block {b!r}") from None
            if not plen.isdigit():
                raise EsqlError(f"invalid CIDR block {b!r}")
            # both sides as 16 bytes (IPv4 as IPv4-mapped), like Elasticsearch's CIDRUtils
            bits = int(plen) + (96 if isinstance(net, ipaddress.IPv4Address) else 0)
            shift_ = 128 - bits
            if key >> shift_ == ip_key(net) >> shift_:
                return True
    return False


def _mv_append(ev: Evaluator, args: list[Any]) -> Any:
    """MV_APPEND(a, b): the values of a then those of b (functions-operators/mv-functions
    #esql-mv_append: "Concatenates values of two multi-value fields"). A null argument adds no
    value, as an empty multi-value; both null is null."""
    return pack(values(args[0]) + values(args[1]))


def _mv_contains(ev: Evaluator, args: list[Any]) -> Any:
    """Null is the empty set (MV_CONTAINS page): MV_CONTAINS(null, "x") is false."""
    sup, sub = values(args[0]), values(args[1])
    return all(any(compare(s, x) == 0 for x in sup) for s in sub)


def _replace(ev: Evaluator, args: list[Any]) -> Any:
    s, pattern, new = (single(a) for a in args)
    if s is None or pattern is None or new is None:
        return None
    return rx.java_replace(_strings(s), _strings(pattern), _strings(new))


_JAVA_SPACE = frozenset(
    "\t\n\u000b\f\r\u001c\u001d\u001e\u001f \u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2008\u2009\u200a\u2028\u2029\u205f\u3000"
)


def _trim(ev: Evaluator, args: list[Any]) -> Any:
    """TRIM strips Character.isWhitespace code points (Elasticsearch's Trim evaluator)."""
    s = single(args[0])
    return None if s is None else "".join(_strings(s)).strip("".join(_JAVA_SPACE))


def _starts(ev: Evaluator, args: list[Any]) -> Any:
    s, p = single(args[0]), single(args[1])
    return None if s is None or p is None else _strings(s).startswith(_strings(p))


def _ends(ev: Evaluator, args: list[Any]) -> Any:
    s, p = single(args[0]), single(args[1])
    return None if s is None or p is None else _strings(s).endswith(_strings(p))


def _abs(ev: Evaluator, args: list[Any]) -> Any:
    v = single(args[0])
    if v is None:
        return None
    return long_or_null(abs(v)) if isinstance(v, int) else abs(v)


def _sqrt(ev: Evaluator, args: list[Any]) -> Any:
    v = single(args[0])
    if v is None or v < 0:  # square root of a negative number: null with a warning
        return None
    return math.sqrt(v)


def _negate(ev: Evaluator, args: list[Any]) -> Any:
    v = single(args[0])
    if v is None:
        return None
    if isinstance(v, Duration):
        return Duration(-v.ms)
    if isinstance(v, Period):
        return Period(-v.days, -v.months)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise EsqlError(f"-{type_of(v)}")
    return long_or_null(-v) if isinstance(v, int) else -v


def _date_trunc(ev: Evaluator, args: list[Any]) -> Any:
    interval, d = single(args[0]), single(args[1])
    if interval is None or d is None:
        return None
    if not isinstance(d, Date) or not isinstance(interval, Duration | Period):
        raise EsqlError("DATE_TRUNC(interval, date) expected")
    return trunc(d, interval)


def _lower(v: Any) -> str:
    # Java toLowerCase(Locale.ROOT); Python's lower() agrees on everything but a few special
    # casings (both lower-case U+0130 to "i̇")
    return str(v).lower()


_FUNCS: dict[str, Callable[[Evaluator, list[Any]], Any]] = {
    "to_lower": lambda ev, a: _each(_lower, _strings(a[0])),
    "to_upper": lambda ev, a: _each(lambda s: s.upper(), _strings(a[0])),
    "to_string": lambda ev, a: _each(to_string, a[0]),
    "to_str": lambda ev, a: _each(to_string, a[0]),
    "to_double": lambda ev, a: _each(to_double, a[0]),
    "to_dbl": lambda ev, a: _each(to_double, a[0]),
    "to_long": lambda ev, a: _each(to_long, a[0]),
    "to_ip": lambda ev, a: _each(to_ip, a[0]),
    "greatest": _greatest(_max),
    "least": _greatest(_min),
    "cidr_match": _cidr_match,
    "mv_contains": _mv_contains,
    "mv_count": lambda ev, a: len(values(a[0])) or None,
    "mv_min": lambda ev, a: _min(values(a[0])) if values(a[0]) else None,
    "mv_max": lambda ev, a: _max(values(a[0])) if values(a[0]) else None,
    "mv_dedupe": lambda ev, a: pack(list(dict.fromkeys(values(a[0])))),
    "mv_append": _mv_append,
    "replace": _replace,
    "trim": _trim,
    "starts_with": _starts,
    "ends_with": _ends,
    "abs": _abs,
    "sqrt": _sqrt,
    "-": _negate,
    "+": lambda ev, a: single(a[0]),
    "date_trunc": _date_trunc,
    "bucket": lambda ev, a: _date_trunc(ev, [a[1], a[0]]),
    "now": lambda ev, a: ev.now,
    "length": lambda ev, a: None if single(a[0]) is None else len(_strings(single(a[0]))),
}

_LAZY: dict[str, Callable[[Evaluator, list[ast.Expression], Row], Any]] = {
    "case": _case,
    "coalesce": _coalesce,
    "is_null": _is_null,
    "is_not_null": _is_not_null,
    "not": _not,
    "like": _like_fn("like", False),
    "not_like": _like_fn("like", True),
    "rlike": _like_fn("rlike", False),
    "not_rlike": _like_fn("rlike", True),
}

_CASTS: dict[str, Callable[[Any], Any]] = {
    "string": to_string,
    "keyword": to_string,
    "double": to_double,
    "long": to_long,
    "ip": to_ip,
}
