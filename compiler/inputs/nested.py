"""A nested JSON object read under :func:`compiler.inputs.flatten`'s dotted names, without
flattening it: the entry condition of ``siemc run`` rejects most events of a typical file after
reading two or three fields, and flattening costs more than decoding (docs/inputs.md).

Exact: ``NestedFields(doc).get(name)`` is ``flatten(doc).get(name)``. Flattening joins keys
with dots, so ``process.name`` may come from ``{"process": {"name": ..}}`` or from a key
``"process.name"`` at the top; every such path is looked up, and where more than one holds a
value (flatten keeps the last one written) the document is flattened after all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from compiler.inputs._common import flatten
from compiler.inputs._lines import MAX_NESTING

_MISSING = object()
_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {}
_MAX_SEGMENTS = 6  # 32 paths; a name with more dots is read from the flattened document


def key_splits(parts: list[str]) -> Iterator[tuple[str, ...]]:
    """Every grouping of the dotted name's ``parts`` into consecutive keys, in a fixed order."""
    for mask in range(1 << (len(parts) - 1)):
        keys = [parts[0]]
        for i, part in enumerate(parts[1:]):
            if mask >> i & 1:
                keys[-1] += "." + part
            else:
                keys.append(part)
        yield tuple(keys)


def _paths(name: str) -> tuple[tuple[str, ...], ...]:
    """Every way to read ``name`` as keys of nested objects: ``a.b.c`` -> ``(a, b, c)``,
    ``(a, b.c)``, ``(a.b, c)``, ``(a.b.c,)``."""
    parts = name.split(".")
    if len(parts) > _MAX_SEGMENTS:
        return ()
    out = list(key_splits(parts))
    if len(_PATHS) < 10_000:
        _PATHS[name] = tuple(out)
    return tuple(out)


class NestedFields:
    """The read-only ``get`` of ``flatten(doc)`` (what compiled predicates use)."""

    __slots__ = ("doc", "flat")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.flat: dict[str, Any] | None = None

    def get(self, name: str, default: Any = None) -> Any:
        if self.flat is not None:
            return self.flat.get(name, default)
        paths = _PATHS.get(name)
        if paths is None:
            paths = _paths(name)
            if not paths:
                return self._flattened().get(name, default)
        found: Any = _MISSING
        for path in paths:
            node: Any = self.doc
            for key in path:
                if type(node) is not dict:
                    node = _MISSING
                    break
                node = node.get(key, _MISSING)
            if node is _MISSING or type(node) is dict:  # absent, or flattened further down
                continue
            if found is not _MISSING:  # two paths hold the name: the last written wins
                return self._flattened().get(name, default)
            found = node
        return default if found is _MISSING else found

    def _flattened(self) -> dict[str, Any]:
        self.flat = flatten(self.doc)
        return self.flat


def within_depth(doc: dict[str, Any], depth: int = 1) -> bool:
    """Whether :func:`flatten` accepts the nesting of ``doc`` (a JSON object: dicts only)."""
    if depth + 1 > MAX_NESTING:
        return _within(doc, depth)
    for value in doc.values():
        if type(value) is dict:
            # One level inline, as in flatten: most objects hold only leaves.
            for inner in value.values():
                if type(inner) is dict and not within_depth(inner, depth + 2):
                    return False
    return True


def _within(doc: dict[str, Any], depth: int) -> bool:
    if depth > MAX_NESTING:
        return False
    return all(_within(v, depth + 1) for v in doc.values() if type(v) is dict)
