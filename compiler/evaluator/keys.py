"""Keys: how key field values become comparable, hashable tuples.

**One rule for every key comparison of the product** (docs/semantics.md, *Keys*):
correlation ``by`` keys (sequence, co-occurrence, absence, ``until``), join ``on`` keys, aggregate
``by`` keys and the ``first_seen``/``rarity`` keys and ``across`` values all compare through
:func:`normalise`:

* keys compare **exactly**: strings are case-SENSITIVE (``"WS01" != "ws01"``), as every target
  groups and joins on keys (Splunk ``stats by``, KQL ``summarize by``/``join``, Elasticsearch
  keyword fields in EQL ``by`` and ES|QL ``STATS BY``). String *filters* stay case-insensitive;
  an analyst who needs case-insensitive identity derives a normalised field
  (``derive: {process.name: lower(process.name)}``);
* except that numbers compare numerically, and a string that is a number by
  :func:`compiler.evaluator.values.to_number` (a decimal literal, surrounding blanks ignored:
  ``"443"``, ``" -1.5"``, ``"1e3"``; not ``"inf"``, hex or ``"1_000"``) is that number, so
  ``"443" == 443 == 443.0``;
* booleans are their own kind: ``True`` equals only ``True`` (never ``1``, which Python would
  consider equal, nor the string ``"true"``);
* ``None``, NaN, empty lists and non-scalar values (mappings) are *missing*; what a missing key
  does is up to each detector (a correlation event cannot take part, an aggregate event is
  dropped, a baseline key is never seen);
* a list is a *multi-valued* key: each normalisable element is one alternative (duplicates
  removed, first occurrence order kept). Two key tuples match when, position by position, some
  alternative is equal; :func:`key_tuples` therefore expands an event into every combination.

The normal form is internal: alerts report values as they appear in the event (:func:`raw_key`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from compiler.evaluator.model import Event
from compiler.evaluator.values import to_number

Key = tuple[object, ...]
"""A normalised key tuple: hashable, compared with ``==``."""

# The normal forms of booleans: equal to nothing but themselves (True == 1 in Python).
_TRUE: object = ("bool", True)
_FALSE: object = ("bool", False)

# Strings that may be numbers (IP addresses, ports, pids arrive as text) need a regex test:
# caching their normal form replaces it by one dict lookup. Bounded by clearing when full.
_NUM_CACHE: dict[str, object] = {}
_NUM_CACHE_MAX = 1 << 16
_MISSING = object()


def _numeric_str(value: str) -> object:
    """Normal form of a string that may be a number (its first character is not a letter)."""
    norm = _NUM_CACHE.get(value, _MISSING)
    if norm is _MISSING:
        try:
            number = to_number(value)
        except ValueError:  # more digits than int() accepts: not a usable number
            number = None
        if len(_NUM_CACHE) >= _NUM_CACHE_MAX:
            _NUM_CACHE.clear()
        norm = _NUM_CACHE[value] = value if number is None else number
    return norm


def _norm_str(value: str) -> object:
    # Fast path: a number starts with a sign, a dot, a digit or a blank, all ASCII <= "9"
    # except Unicode digits and blanks (non-ASCII); a string starting otherwise is itself.
    if value:
        c = value[0]
        if "9" < c < "\x80" or (c >= "\x80" and not (c.isdecimal() or c.isspace())):
            return value
        return _numeric_str(value)
    return value


def normalise(value: Any) -> object | None:
    """The comparable form of one scalar key value, or None when it cannot be a key."""
    if isinstance(value, str):
        return _norm_str(value)
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN equals nothing, not even itself
    return None


def alternatives(value: Any) -> tuple[object, ...]:
    """Distinct normalised values of one (possibly multi-valued) field value (empty: missing)."""
    if isinstance(value, list | tuple):
        seen: dict[object, None] = {}
        for item in value:
            norm = normalise(item)
            if norm is not None:
                seen.setdefault(norm, None)
        return tuple(seen)
    norm = normalise(value)
    return () if norm is None else (norm,)


def key_values(event: Event, fields: tuple[str, ...]) -> tuple[tuple[object, ...], ...] | None:
    """Per key field, the tuple of its distinct normalised values (one for a scalar, several for
    a multi-valued field); None when some field is missing, null or has no usable value."""
    out = []
    for name in fields:
        alts = alternatives(event.fields.get(name))
        if not alts:
            return None
        out.append(alts)
    return tuple(out)


def value_tuples(values: Sequence[Any]) -> tuple[Key, ...]:
    """Every normalised key tuple a sequence of field values stands for (the combinations of the
    alternatives of multi-valued values); ``()`` when some value is missing."""
    per = []
    for v in values:
        alts = alternatives(v)
        if not alts:
            return ()
        per.append(alts)
    return tuple(itertools.product(*per))


def key_tuples(event: Event, fields: tuple[str, ...]) -> tuple[Key, ...]:
    """Every normalised key tuple of ``event`` for ``fields`` (the combinations of the
    alternatives of multi-valued fields, in value order); ``()`` when the event has no key.

    ``fields == ()`` gives ``((),)``: one global group."""
    get = event.fields.get
    out: list[object] = []
    # Fast path: scalar fields, no intermediate alternatives tuples.
    for name in fields:
        value: Any = get(name)
        kind = type(value)
        if kind is str:
            norm = value
            if value and not "9" < value[0] < "\x80":  # may be a number (see _norm_str)
                norm = _NUM_CACHE.get(value, _MISSING)
                if norm is _MISSING:
                    norm = _norm_str(value)
        elif kind is int:
            norm = value
        elif kind is list or kind is tuple:
            return value_tuples([get(f) for f in fields])
        else:
            norm = normalise(value)
            if norm is None:
                return ()
        out.append(norm)
    return (tuple(out),)


def raw_key(event: Event, fields: tuple[str, ...], key: Key) -> tuple[tuple[str, Any], ...]:
    """``(field, original value)`` pairs of ``event`` for the normalised ``key``: the value as it
    appears in the event (original case and type); for a multi-valued field, the element that
    matched ``key``."""
    out = []
    for name, norm in zip(fields, key, strict=True):
        value = event.fields.get(name)
        if isinstance(value, list | tuple):
            value = next((item for item in value if normalise(item) == norm), norm)
        out.append((name, value))
    return tuple(out)
