"""Filters (``where``): an :class:`ir.Predicate` compiled once into a closure over event fields.

This is the hot path of the evaluator (every event of a 1M-event benchmark goes through every
stream filter), so everything that does not depend on the event is computed at compile time:
lower-cased values, numeric values, compiled regular expressions, parsed networks and lookup row
sets. The rules (the specification; docs/semantics.md "Filters" restates them):

* A field value is a scalar (``str``/``int``/``float``/``bool``), null, or a list (multi-value).
  A leaf predicate holds for a multi-value when **some** element satisfies it; with the ``all``
  quantifier every listed value must be matched by some (possibly different) element.
* A missing or null field (or an empty list) satisfies no leaf predicate except ``Exists(False)``
  and ``Eq`` with a ``null`` value. ``Not`` is plain negation, so ``not: {x: 1}`` holds when ``x``
  is missing (as ``NOT x=1`` in Splunk search and Sigma; KQL ``x != 1`` differs and backends must
  add the ``isnull`` branch).
* Equality is the expression ``==`` of :mod:`compiler.evaluator.values`: two numbers (numeric
  strings included, ``"443" == 443 == 443.0``) compare numerically, two strings compare
  case-insensitively (``str.lower``; exact with ``cased``), two booleans as booleans, any other
  mix is unequal (``"true"`` does not equal ``True``).
* ``contains``/``startswith``/``endswith``/``re``/``cidr`` read the *text* of a scalar: strings
  as they are, integers and integral floats in decimal (``443.0`` -> ``"443"``), booleans as
  ``"true"``/``"false"``.
* ``re`` is ``re.search`` with ``re.IGNORECASE`` unless ``cased``.
* ``cidr`` parses the text as an IP address (IPv4-mapped IPv6 is its IPv4 address); a value that
  is not an address does not match.
* ``gt``/``gte``/``lt``/``lte`` compare numbers (numeric strings coerced); anything else is false.
* A lookup predicate holds when some row equals the event, case-insensitively on the text of the
  values, on every listed (column, field) pair; a multi-valued field may match with any element.
"""

from __future__ import annotations

import ipaddress
import itertools
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

from compiler import ir
from compiler.evaluator.values import to_number

Fields = Mapping[str, Any]
Pred = Callable[[Fields], bool]
ElemTest = Callable[[Any], bool]
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def _true(_: Fields) -> bool:
    return True


def _false(_: Fields) -> bool:
    return False


# --------------------------------------------------------------------------- value helpers
def text(v: Any) -> str | None:
    """The text a string operator sees for a scalar (None for null and non-scalars)."""
    t = type(v)
    if t is str:
        return v  # type: ignore[no-any-return]
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return str(int(v)) if v.is_integer() else repr(v)
    return None


def elements(v: Any) -> list[Any]:
    """The non-null elements of a field value: [] for null, the list itself for a multi-value."""
    if v is None:
        return []
    if type(v) is list or type(v) is tuple:
        return [x for x in v if x is not None]
    return [v]


def is_null(v: Any) -> bool:
    if type(v) is list or type(v) is tuple:
        return all(x is None for x in v)
    return v is None


@lru_cache(maxsize=65536)
def parse_ip(s: str) -> IpAddr | None:
    """An address, or None. Cached: the same few addresses recur across a large event stream."""
    try:
        addr = ipaddress.ip_address(s.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def lookup_texts(v: Any) -> list[str]:
    """Lower-cased texts of a field value's elements, as compared with lookup cells."""
    out: list[str] = []
    for x in elements(v):
        s = text(x)
        if s is not None:
            out.append(s.lower())
    return out


def lookup_candidates(fields: Fields, names: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every tuple of lower-cased texts the event offers for ``names`` (one per element
    combination of multi-valued fields); nothing when a field is missing."""
    per_field = [lookup_texts(fields.get(n)) for n in names]
    if all(len(c) == 1 for c in per_field):
        yield tuple(c[0] for c in per_field)
        return
    yield from itertools.product(*per_field)


# --------------------------------------------------------------------------- leaves
def _lift(field: str, test: ElemTest) -> Pred:
    """A field-level predicate from an element test: false when missing, existential on lists."""

    def pred(fields: Fields) -> bool:
        v = fields.get(field)
        if v is None:
            return False
        if type(v) is list or type(v) is tuple:
            return any(x is not None and test(x) for x in v)
        return test(v)

    return pred


def _quantified(field: str, tests: list[ElemTest], quantifier: str) -> Pred:
    """``any``: one element test that ORs the values; ``all``: every value's test must hold for
    some element (each value may be matched by a different element)."""
    if not tests:
        return _false
    if quantifier == "any" or len(tests) == 1:
        if len(tests) == 1:
            return _lift(field, tests[0])
        return _lift(field, lambda x: any(t(x) for t in tests))
    lifted = [_lift(field, t) for t in tests]
    return lambda fields: all(p(fields) for p in lifted)


def _eq_test(values: tuple[ir.Scalar, ...], cased: bool) -> ElemTest:
    """One element test for ``any of values`` (nulls handled by the caller)."""
    strs: set[str] = set()  # non-numeric strings, lower-cased unless cased
    nums: set[int | float] = set()  # numbers and numeric strings (int and float hash alike)
    bools: set[bool] = set()
    for v in values:
        if isinstance(v, bool):
            bools.add(v)
        elif isinstance(v, str):
            n = to_number(v)
            if n is not None:
                nums.add(n)
            else:
                strs.add(v if cased else v.lower())
        elif isinstance(v, int | float):
            n = to_number(v)
            if n is not None:
                nums.add(n)

    def test(x: Any) -> bool:
        t = type(x)
        if t is str:
            if strs and (x if cased else x.lower()) in strs:
                return True
            if nums:
                n = to_number(x)
                return n is not None and n in nums
            return False
        if t is bool:
            return x in bools
        if t is int or t is float:
            return bool(nums) and to_number(x) in nums
        return False

    return test


def _eq_any(field: str, values: tuple[ir.Scalar, ...], cased: bool) -> Pred:
    """``field`` equals one of ``values``. The common shapes (only non-numeric strings such as
    process names, or only numbers such as ports) get a fast path for scalar fields: one
    ``lower()`` and one set lookup, no element-test call."""
    generic = _lift(field, _eq_test(values, cased))
    if all(isinstance(v, str) and to_number(v) is None for v in values):
        strs = frozenset(v if cased else v.lower() for v in values if isinstance(v, str))

        def eq_str(fields: Fields) -> bool:
            v = fields.get(field)
            if type(v) is str:
                # A numeric string cannot equal a non-numeric one either: no coercion needed.
                # ``lower()`` is idempotent, so a value already in ``strs`` needs no lowering.
                return v in strs or (not cased and v.lower() in strs)
            return generic(fields)

        return eq_str
    if all(type(v) is int for v in values):
        ints = frozenset(values)

        def eq_int(fields: Fields) -> bool:
            v = fields.get(field)
            if type(v) is int:
                return v in ints
            return generic(fields)

        return eq_int
    return generic


def _compile_eq(p: ir.Eq) -> Pred:
    field = p.field
    want_null = any(v is None for v in p.values)
    concrete = tuple(v for v in p.values if v is not None)
    if p.quantifier == "all" and len(p.values) > 1:
        if want_null and concrete:
            return _false  # null and a value at once: impossible
        if want_null:
            return lambda fields: is_null(fields.get(field))
        return _quantified(field, [_eq_test((v,), p.cased) for v in concrete], "all")
    matches = _eq_any(field, concrete, p.cased) if concrete else _false
    if not want_null:
        return matches
    return lambda fields: is_null(fields.get(field)) or matches(fields)


_STR_OPS: dict[str, Callable[[str, str], bool]] = {
    "contains": operator.contains,
    "startswith": str.startswith,
    "endswith": str.endswith,
}


def _str_test(op: str, values: tuple[str, ...], cased: bool) -> ElemTest:
    vals = values if cased else tuple(v.lower() for v in values)

    def norm(x: Any) -> str | None:
        s = x if type(x) is str else text(x)
        return s if s is None or cased else s.lower()

    if op == "startswith" or op == "endswith":
        # str.startswith/endswith accept a tuple: one C call for all values.
        method = str.startswith if op == "startswith" else str.endswith

        def affix(x: Any) -> bool:
            s = norm(x)
            return s is not None and method(s, vals)

        return affix

    def contains(x: Any) -> bool:
        s = norm(x)
        return s is not None and any(v in s for v in vals)

    return contains


def _compile_str(p: ir.StrMatch) -> Pred:
    if p.op not in _STR_OPS:
        raise ValueError(f"unknown string operator {p.op!r}")
    if p.quantifier == "all":
        tests = [_str_test(p.op, (v,), p.cased) for v in p.values]
    else:
        tests = [_str_test(p.op, p.values, p.cased)] if p.values else []
    return _quantified(p.field, tests, p.quantifier)


def _regex_test(patterns: list[re.Pattern[str]]) -> ElemTest:
    def test(x: Any) -> bool:
        s = x if type(x) is str else text(x)
        if s is None:
            return False
        return any(pat.search(s) is not None for pat in patterns)

    return test


def _compile_regex(p: ir.Regex) -> Pred:
    flags = 0 if p.cased else re.IGNORECASE
    try:
        compiled = [re.compile(pat, flags) for pat in p.patterns]
    except re.error as exc:
        raise ValueError(f"invalid regular expression for {p.field}: {exc}") from exc
    if p.quantifier == "all":
        tests = [_regex_test([c]) for c in compiled]
    else:
        tests = [_regex_test(compiled)] if compiled else []
    return _quantified(p.field, tests, p.quantifier)


_CMP_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _compile_compare(p: ir.Compare) -> Pred:
    op = _CMP_OPS[p.op]
    bound = p.value

    def test(x: Any) -> bool:
        n = to_number(x)
        return n is not None and op(n, bound)

    return _lift(p.field, test)


def _compile_exists(p: ir.Exists) -> Pred:
    field = p.field
    if p.present:
        return lambda fields: not is_null(fields.get(field))
    return lambda fields: is_null(fields.get(field))


def _cidr_test(networks: list[IpNet]) -> ElemTest:
    def test(x: Any) -> bool:
        s = x if type(x) is str else None  # numbers are not addresses
        if s is None:
            return False
        addr = parse_ip(s)
        # `in` is False (not an error) across IP versions.
        return addr is not None and any(addr in n for n in networks)

    return test


def _compile_cidr(p: ir.Cidr) -> Pred:
    try:
        nets = [ipaddress.ip_network(n.strip(), strict=False) for n in p.networks]
    except ValueError as exc:
        raise ValueError(f"invalid network for {p.field}: {exc}") from exc
    if p.quantifier == "all":
        tests = [_cidr_test([n]) for n in nets]
    else:
        tests = [_cidr_test(nets)] if nets else []
    return _quantified(p.field, tests, p.quantifier)


def lookup_columns(lk: ir.Lookup, columns: tuple[str, ...]) -> list[int]:
    try:
        return [lk.columns.index(c) for c in columns]
    except ValueError as exc:
        raise ValueError(f"lookup {lk.name!r} has no column ({exc}); has {lk.columns}") from exc


def _compile_lookup(p: ir.InLookup, lookups: Mapping[str, ir.Lookup]) -> Pred:
    if p.lookup not in lookups:
        raise ValueError(f"unknown lookup {p.lookup!r}")
    lk = lookups[p.lookup]
    cols = tuple(c for c, _ in p.match)
    names = tuple(f for _, f in p.match)
    idx = lookup_columns(lk, cols)
    rows = {tuple(row[i].lower() for i in idx) for row in lk.rows}

    def pred(fields: Fields) -> bool:
        return any(c in rows for c in lookup_candidates(fields, names))

    return pred


# --------------------------------------------------------------------------- entry point
def compile_predicate(p: ir.Predicate, lookups: Mapping[str, ir.Lookup]) -> Pred:
    """Compile ``p`` to a function of the event fields (flat dotted names)."""
    if isinstance(p, ir.And):
        items = [compile_predicate(i, lookups) for i in p.items]
        if not items:
            return _true
        if len(items) == 1:
            return items[0]
        if len(items) == 2:
            a, b = items
            return lambda fields: a(fields) and b(fields)

        # Explicit loops: all()/any() over a generator cost a frame per event (hot path).
        def all_of(fields: Fields) -> bool:
            for i in items:  # noqa: SIM110
                if not i(fields):
                    return False
            return True

        return all_of
    if isinstance(p, ir.Or):
        items = [compile_predicate(i, lookups) for i in p.items]
        if not items:
            return _false
        if len(items) == 1:
            return items[0]
        if len(items) == 2:
            a, b = items
            return lambda fields: a(fields) or b(fields)

        def any_of(fields: Fields) -> bool:
            for i in items:  # noqa: SIM110
                if i(fields):
                    return True
            return False

        return any_of
    if isinstance(p, ir.Not):
        inner = compile_predicate(p.item, lookups)
        return lambda fields: not inner(fields)
    if isinstance(p, ir.Eq):
        return _compile_eq(p)
    if isinstance(p, ir.StrMatch):
        return _compile_str(p)
    if isinstance(p, ir.Regex):
        return _compile_regex(p)
    if isinstance(p, ir.Compare):
        return _compile_compare(p)
    if isinstance(p, ir.Exists):
        return _compile_exists(p)
    if isinstance(p, ir.Cidr):
        return _compile_cidr(p)
    if isinstance(p, ir.InLookup):
        return _compile_lookup(p, lookups)
    raise TypeError(f"not a predicate: {p!r}")
