"""Correlation / grouping keys: how an event's key fields become comparable, hashable tuples.

One normalisation is shared by every detector so that "equal keys" means the same thing
everywhere (see docs/semantics.md, *Keys*):

* strings compare case-insensitively: they are lower-cased (``str.lower``);
* numbers compare numerically, and a string that is a number by
  :func:`compiler.evaluator.values.to_number` (a decimal literal, surrounding blanks ignored:
  ``"443"``, ``" -1.5"``, ``"1e3"``; not ``"inf"``, hex or ``"1_000"``) is that number, so
  ``"443" == 443 == 443.0``;
* booleans become ``"true"`` / ``"false"`` (so they never collide with ``1`` / ``0``, which
  Python would otherwise consider equal to ``True`` / ``False``);
* ``None``, NaN, empty lists and non-scalar values (mappings) are *missing*: an event with a
  missing key field cannot take part in a correlation;
* a list is a *multi-valued* key: each normalisable element is one alternative (duplicates
  removed, first occurrence order kept). Two key tuples match when, position by position, some
  alternative is equal; :func:`key_tuples` therefore expands an event into every combination.
"""

from __future__ import annotations

import itertools
from typing import Any

from compiler.evaluator.model import Event
from compiler.evaluator.values import to_number

Key = tuple[object, ...]
"""A normalised key tuple: hashable, compared with ``==``."""

# Key strings repeat a lot (host names, process ids): caching their normal form replaces a
# lower() allocation and a regex test by one dict lookup. Bounded by clearing when full.
_STR_CACHE: dict[str, object] = {}
_STR_CACHE_MAX = 1 << 16
_MISSING = object()


def _normalise_str(value: str) -> object:
    try:
        number = to_number(value)
    except ValueError:  # more digits than int() accepts: not a usable number
        number = None
    return value.lower() if number is None else number


def _cached_str(value: str) -> object:
    norm = _STR_CACHE.get(value, _MISSING)
    if norm is _MISSING:
        if len(_STR_CACHE) >= _STR_CACHE_MAX:
            _STR_CACHE.clear()
        norm = _STR_CACHE[value] = _normalise_str(value)
    return norm


def normalise(value: Any) -> object | None:
    """The comparable form of one scalar key value, or None when it cannot be a key."""
    if isinstance(value, str):
        return _cached_str(value)
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN equals nothing, not even itself
    return None


def _alternatives(value: Any) -> tuple[object, ...]:
    """Distinct normalised values of one field (empty: missing)."""
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
        alts = _alternatives(event.fields.get(name))
        if not alts:
            return None
        out.append(alts)
    return tuple(out)


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
            norm = _STR_CACHE.get(value, _MISSING)
            if norm is _MISSING:
                norm = _cached_str(value)
        elif kind is int:
            norm = value
        elif kind is list or kind is tuple:
            return _expand(event, fields)
        else:
            norm = normalise(value)
            if norm is None:
                return ()
        out.append(norm)
    return (tuple(out),)


def _expand(event: Event, fields: tuple[str, ...]) -> tuple[Key, ...]:
    values = key_values(event, fields)
    if values is None:
        return ()
    return tuple(itertools.product(*values))


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
