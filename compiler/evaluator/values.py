"""Value coercion and expression evaluation: the meaning of ``derive``, ``compute`` and ``having``.

Values are what events carry after normalisation: ``str``, ``int``, ``float``, ``bool``, ``None``
and lists of those (multi-values). The rules below are the specification; backends must agree:

* Numbers: ``int``/``float`` are numbers; a string is a number when its stripped text is a
  decimal literal (``"443"``, ``" 1.5 "``, ``"-2"``, ``"1e3"``). Booleans, hex, ``"1_000"``,
  ``"nan"``/``"inf"`` and non-finite floats are *not* numbers.
* Arithmetic (``+ - * /``, unary ``-``) works on numbers (numeric strings coerced). Anything else
  (null, a non-numeric string, a bool, a multi-value) makes the result null. ``/`` is null when the
  divisor is 0; it is true division and always yields a float. ``+ - *`` of two ints stay ints.
* Comparisons are false when either side is null (``x == null`` and ``x != null`` are both false).
  Two numbers (numeric strings included) compare numerically; two strings compare
  case-insensitively (``lower()`` of both, also for ``< <= > >=``); two booleans compare as
  booleans; any other mix is unequal (``==`` false, ``!=`` true, orderings false). A multi-value
  compares existentially: the comparison holds when it holds for some element (an empty
  multi-value is null).
* ``and``/``or``/``not`` are two-valued and short-circuit: a value is truthy when it is ``True``, a
  non-zero number, a non-empty string or a list with a non-null element; null is falsy. They
  return booleans.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from publicsuffixlist import PublicSuffixList

from compiler import ir

# ASCII: \d would also take the digits of other scripts, which int() and float() read and no
# target (Splunk's tonumber, KQL's todouble, Java's parseDouble) does
_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)


def to_number(v: Any) -> float | int | None:
    """The number ``v`` denotes, or None (see the module docstring)."""
    t = type(v)
    if t is int:
        return v  # type: ignore[no-any-return]
    if t is float:
        return v if math.isfinite(v) else None
    if t is str:
        s = v.strip()
        # Regex first: int()/float() also accept "1_000", "nan", "inf" and non-ASCII digits.
        if _INTEGER.fullmatch(s):
            return int(s)
        if _NUMERIC.fullmatch(s):
            f = float(s)
            return f if math.isfinite(f) else None
        return None
    if isinstance(v, int) and not isinstance(v, bool):  # int subclasses (IntEnum ...)
        return int(v)
    return None


def truthy(v: Any) -> bool:
    """Truthiness of ``and``/``or``/``not``/``having``: null is falsy (no third value)."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str):
        return len(v) > 0
    if isinstance(v, list | tuple):
        # A list of nulls is missing, as in filters (docs/semantics.md "Multi-valued fields").
        return any(x is not None for x in v)
    return True


# --------------------------------------------------------------------------- comparisons
def _cmp_scalar(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    x: Any
    y: Any
    if type(a) is int and type(b) is int:  # fast path: counts against thresholds
        x, y = a, b
    elif (na := to_number(a)) is not None and (nb := to_number(b)) is not None:
        x, y = na, nb
    elif isinstance(a, str) and isinstance(b, str):
        # Case-insensitive like every string operator of the language (filters default).
        x, y = a.lower(), b.lower()
    elif isinstance(a, bool) and isinstance(b, bool):
        x, y = a, b
    else:
        return op == "!="  # different kinds of value: unequal, unordered
    if op == "==":
        return bool(x == y)
    if op == "!=":
        return bool(x != y)
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


def compare(op: str, a: Any, b: Any) -> bool:
    """``a op b`` with the language's rules; multi-values compare existentially."""
    ta, tb = type(a), type(b)
    if ta is list or ta is tuple:
        return any(compare(op, x, b) for x in a)
    if tb is list or tb is tuple:
        return any(_cmp_scalar(op, a, y) for y in b)
    return _cmp_scalar(op, a, b)


def arith(op: str, a: Any, b: Any) -> float | int | None:
    x, y = to_number(a), to_number(b)
    if x is None or y is None:
        return None
    if op == "+":
        r: float | int = x + y
    elif op == "-":
        r = x - y
    elif op == "*":
        r = x * y
    else:
        if y == 0:
            return None
        r = x / y
    # Overflowing floats (1e308 * 10) are not numbers in this language either.
    if isinstance(r, float) and not math.isfinite(r):
        return None
    return r


# --------------------------------------------------------------------------- functions
def _map1(f: Callable[[str], Any], v: Any) -> Any:
    """Apply a string function to a scalar or elementwise to a multi-value; null stays null and
    non-string scalars pass through unchanged."""
    if isinstance(v, str):
        return f(v)
    if isinstance(v, list | tuple):
        return [_map1(f, x) for x in v]
    return v


def _basename(s: str) -> str:
    i = max(s.rfind("/"), s.rfind("\\"))
    return s[i + 1 :]


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # The list bundled with the pinned publicsuffixlist release (its version ends with the PSL
    # snapshot date), read from the package, never fetched. Private-section suffixes count
    # (github.io, blogspot.com): microsoft.github.io is a registered domain, as in Elastic's
    # registered_domain processor and URL Toolbox, which load the whole list.
    return PublicSuffixList()


@lru_cache(maxsize=8192)
def _registered_domain(s: str) -> str | None:
    """The PSL registrable domain of the host name ``s``: lower-cased, surrounding blanks and
    trailing dots removed; an IP address is returned as it is; null for a name that is a public
    suffix itself or a single label (`com`, `co.uk`, `localhost`), has an empty label, or is
    blank."""
    d = s.strip().rstrip(".").lower()
    if not d:
        return None
    if ":" in d or d[-1].isdigit():
        try:
            ipaddress.ip_address(d.strip("[]"))
            return d  # an IP address is its own "domain"
        except ValueError:
            pass
    return _psl().privatesuffix(d)


_IPV4 = re.compile(r"(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?![0-9]|\.[0-9])", re.ASCII)
# A run of IPv6 characters not glued to a word ("std::string" must not yield "d::").
_V6_TOKEN = re.compile(r"(?<![G-Zg-z_])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?![G-Zg-z_])")
_HEXDIGIT = re.compile(r"[0-9A-Fa-f]")


@lru_cache(maxsize=8192)
def _extract_ips(s: str) -> tuple[str, ...]:
    """Every IPv4/IPv6 address in ``s`` in order of appearance, without duplicates. IPv4-mapped
    IPv6 (``::ffff:1.2.3.4``) yields the IPv4 address; IPv6 is printed compressed, lower-case."""
    hits: list[tuple[int, str]] = []
    v6_spans: list[tuple[int, int]] = []
    if ":" in s:
        for m in _V6_TOKEN.finditer(s):
            tok = m.group().rstrip(".")
            if tok.count(":") < 2 or not _HEXDIGIT.search(tok):
                continue
            try:
                addr = ipaddress.IPv6Address(tok)
            except ValueError:
                continue
            mapped = addr.ipv4_mapped
            hits.append((m.start(), str(mapped if mapped is not None else addr)))
            v6_spans.append(m.span())
    for m in _IPV4.finditer(s):
        if any(a <= m.start() < b for a, b in v6_spans):
            continue  # the dotted tail of an IPv6 address already taken
        try:
            hits.append((m.start(), str(ipaddress.IPv4Address(m.group()))))
        except ValueError:  # 999.1.1.1, leading zeros (ambiguous octal)
            continue
    hits.sort()
    return tuple(dict.fromkeys(ip for _, ip in hits))


def extract_ips(v: Any) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, list | tuple):
        out: dict[str, None] = {}
        for x in v:
            for ip in extract_ips(x) or ():
                out[ip] = None
        return list(out)
    if not isinstance(v, str):
        v = str(v)
    return list(_extract_ips(v))


def _is_null(v: Any) -> bool:
    """Null, an empty list or a list of nulls: what filters call a missing field."""
    return v is None or (isinstance(v, list | tuple) and all(x is None for x in v))


def call(func: str, args: list[Any]) -> Any:
    """Evaluate a function of the language on already evaluated arguments."""
    if func == "lower":
        return _map1(str.lower, args[0])
    if func == "upper":
        return _map1(str.upper, args[0])
    if func == "basename":
        return _map1(_basename, args[0])
    if func == "registered_domain":
        return _map1(_registered_domain, args[0])
    if func == "extract_ips":
        return extract_ips(args[0])
    if func == "coalesce":
        for a in args:
            if not _is_null(a):
                return a
        return None
    if func in ("max", "min"):
        nums = [n for n in map(to_number, args) if n is not None]
        if not nums:
            return None
        return max(nums) if func == "max" else min(nums)
    if func == "abs":
        n = to_number(args[0])
        return None if n is None else abs(n)
    raise ValueError(f"unknown function {func!r}")


# --------------------------------------------------------------------------- expressions
def eval_expr(
    expr: ir.Expr,
    get: Callable[[ir.FieldRef], Any],
    measure: Callable[[str], Any] | None = None,
) -> Any:
    """Evaluate ``expr``: ``get`` resolves field references, ``measure`` measure references
    (``compute``/``having`` only; a MeasureRef without it is an error)."""
    if isinstance(expr, ir.Literal_):
        return expr.value
    if isinstance(expr, ir.FieldRef):
        return get(expr)
    if isinstance(expr, ir.MeasureRef):
        if measure is None:
            raise ValueError(f"measure {expr.name!r} referenced outside an aggregate")
        return measure(expr.name)
    if isinstance(expr, ir.BinOp):
        op = expr.op
        if op == "and":
            return truthy(eval_expr(expr.left, get, measure)) and truthy(
                eval_expr(expr.right, get, measure)
            )
        if op == "or":
            return truthy(eval_expr(expr.left, get, measure)) or truthy(
                eval_expr(expr.right, get, measure)
            )
        a = eval_expr(expr.left, get, measure)
        b = eval_expr(expr.right, get, measure)
        if op in ("+", "-", "*", "/"):
            return arith(op, a, b)
        return compare(op, a, b)
    if isinstance(expr, ir.UnaryOp):
        v = eval_expr(expr.operand, get, measure)
        if expr.op == "not":
            return not truthy(v)
        n = to_number(v)
        return None if n is None else -n
    if isinstance(expr, ir.Call):
        return call(expr.func, [eval_expr(a, get, measure) for a in expr.args])
    raise TypeError(f"not an expression: {expr!r}")


# --------------------------------------------------------------------------- compiled form
Getter = Callable[[ir.FieldRef], Any]
MeasureFn = Callable[[str], Any] | None
Compiled = Callable[[Getter, MeasureFn], Any]


def compile_expr(expr: ir.Expr) -> Compiled:
    """``expr`` as a closure ``f(get, measure)`` equal to ``eval_expr(expr, get, measure)``
    (same helpers, dispatch done once): for expressions evaluated per event or per window."""
    if isinstance(expr, ir.Literal_):
        value = expr.value
        return lambda get, measure: value
    if isinstance(expr, ir.FieldRef):
        ref = expr
        return lambda get, measure: get(ref)
    if isinstance(expr, ir.MeasureRef):
        name = expr.name

        def measure_ref(get: Getter, measure: MeasureFn) -> Any:
            if measure is None:
                raise ValueError(f"measure {name!r} referenced outside an aggregate")
            return measure(name)

        return measure_ref
    if isinstance(expr, ir.BinOp):
        op = expr.op
        left, right = compile_expr(expr.left), compile_expr(expr.right)
        if op == "and":
            return lambda g, m: truthy(left(g, m)) and truthy(right(g, m))
        if op == "or":
            return lambda g, m: truthy(left(g, m)) or truthy(right(g, m))
        if op in ("+", "-", "*", "/"):
            return lambda g, m: arith(op, left(g, m), right(g, m))
        return lambda g, m: compare(op, left(g, m), right(g, m))
    if isinstance(expr, ir.UnaryOp):
        operand = compile_expr(expr.operand)
        if expr.op == "not":
            return lambda g, m: not truthy(operand(g, m))

        def neg(g: Getter, m: MeasureFn) -> Any:
            n = to_number(operand(g, m))
            return None if n is None else -n

        return neg
    if isinstance(expr, ir.Call):
        func = expr.func
        if func not in ir.FUNCTIONS:
            raise ValueError(f"unknown function {func!r}")
        args = [compile_expr(a) for a in expr.args]
        return lambda g, m: call(func, [a(g, m) for a in args])
    raise TypeError(f"not an expression: {expr!r}")
