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
* keys compare as text: a number is its decimal text, integral floats as integers, so
  ``"443" == 443 == 443.0`` while ``"7" != "7.0"`` and ``"0443" != 443`` (strings stay text, as
  keyword fields and Splunk fields hold them);
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

Key = tuple[object, ...]
"""A normalised key tuple: hashable, compared with ``==``."""

# The normal forms of booleans: equal to nothing but themselves (True == 1 in Python).
_TRUE: object = ("bool", True)
_FALSE: object = ("bool", False)


def normalise(value: Any) -> object | None:
    """The comparable form of one scalar key value, or None when it cannot be a key.

    Keys compare as text, as the targets' keyword fields and Splunk's fields do: a string is
    itself, a number is its shortest decimal text with integral floats written as integers
    (``443``, ``443.0`` and ``"443"`` are one key; ``"7"`` and ``"7.0"`` are two)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None  # NaN equals nothing; infinities are no key
        return str(int(value)) if value.is_integer() else repr(value)
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
