"""The part of :func:`compiler.inputs.flatten` that names given fields: ``project(doc)`` equals
``{k: v for k, v in flatten(doc).items() if k in names}`` up to key order, for a JSON object
nested at most MAX_NESTING deep (the caller checks that; flatten raises beyond it).

``siemc run`` reads a handful of the forty-odd fields of an ECS event; flattening the rest
costs more than decoding the line. Flattening writes the dotted name of every path of keys that
ends at a value other than an object, in the document's order (the last one written wins when
two paths spell one name: ``{"a": {"b": 1}, "a.b": 2}``). A name ``a.b.c`` can only be written
by the paths that split it at dots: ``(a, b, c)``, ``(a, b.c)``, ``(a.b, c)``, ``(a.b.c)``. The
projection walks the document in the same order along a trie of exactly those paths, so it
writes the same values for the names in the trie, in the same order, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# key -> (the name a path ending here writes, or None; the trie below, or None)
Trie = dict[str, tuple[str | None, "Trie | None"]]

MAX_SEGMENTS = 12  # 2048 paths for one name; a name with more dots disables the projection


def _splits(parts: list[str]) -> Iterable[tuple[str, ...]]:
    for mask in range(1 << (len(parts) - 1)):
        keys = [parts[0]]
        for i, part in enumerate(parts[1:]):
            if mask >> i & 1:
                keys[-1] += "." + part
            else:
                keys.append(part)
        yield tuple(keys)


def build_trie(names: Iterable[str]) -> Trie | None:
    """The trie of every path that writes one of ``names``; None when a name has more than
    :data:`MAX_SEGMENTS` dot-separated parts."""
    root: Trie = {}
    for name in names:
        parts = name.split(".")
        if len(parts) > MAX_SEGMENTS:
            return None
        for path in _splits(parts):
            node = root
            for i, key in enumerate(path):
                last = i == len(path) - 1
                written, child = node.get(key, (None, None))
                if last:
                    written = name
                elif child is None:
                    child = {}
                node[key] = (written, child)
                if not last:
                    assert child is not None
                    node = child
    return root


class Projection:
    """``project(doc)``: the fields named at construction of ``flatten(doc)``."""

    __slots__ = ("_trie",)

    def __init__(self, trie: Trie) -> None:
        self._trie = trie

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        _walk(out, doc, self._trie)
        return out


def _walk(out: dict[str, Any], doc: dict[str, Any], trie: Trie) -> None:
    get = trie.get
    for key, value in doc.items():
        hit = get(key)
        if hit is None:
            continue
        if type(value) is dict:
            child = hit[1]
            if child is None:
                continue
            # One level inline, as in flatten: ECS objects are mostly one level of leaves.
            get2 = child.get
            for key2, value2 in value.items():
                hit2 = get2(key2)
                if hit2 is None:
                    continue
                if type(value2) is dict:
                    if hit2[1] is not None:
                        _walk(out, value2, hit2[1])
                elif hit2[0] is not None:
                    out[hit2[0]] = value2
        elif hit[0] is not None:
            out[hit[0]] = value
