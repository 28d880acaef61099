"""The part of :func:`compiler.inputs.flatten` that names given fields: ``project(doc)`` equals
``{k: v for k, v in flatten(doc).items() if k in names}`` up to key order, for a JSON object
nested at most MAX_NESTING deep (the caller checks that; flatten raises beyond it).

``siemc run`` reads a handful of the forty-odd fields of an ECS event; flattening the rest
costs more than decoding the line. Flattening writes the dotted name of every path of keys that
ends at a value other than an object, in the document's order (the last one written wins when
two paths spell one name: ``{"a": {"b": 1}, "a.b": 2}``). A name ``a.b.c`` can only be written
by the paths that split it at dots: ``(a, b, c)``, ``(a, b.c)``, ``(a.b, c)``, ``(a.b.c)``. The
projection visits exactly those paths of the document (a trie of them), so it writes the same
values for those names and nothing else; where it visits them in another order than flattening
would, a name written twice sends the document to the walk in the document's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from compiler.inputs.nested import key_splits

# key -> (the name a path ending here writes, or None; the trie below, or None)
Trie = dict[str, tuple[str | None, "Trie | None"]]

MAX_SEGMENTS = 12  # 2048 paths for one name; a name with more dots disables the projection


def build_trie(names: Iterable[str]) -> Trie | None:
    """The trie of every path that writes one of ``names``; None when a name has more than
    :data:`MAX_SEGMENTS` dot-separated parts."""
    root: Trie = {}
    for name in names:
        parts = name.split(".")
        if len(parts) > MAX_SEGMENTS:
            return None
        for path in key_splits(parts):
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
    """``project(doc)``: the fields named at construction of ``flatten(doc)``.

    The top level is walked in the document's order (it holds a few keys; the trie's top holds
    every name). Below it, the trie leads: an object of an ECS event holds many more fields than
    an analytic reads of it, so each wanted key is looked up instead. Looking up changes the
    order of the writes, which matters only where two paths write one name: the first name
    written twice sends the document back to the walk in the document's order (exact)."""

    __slots__ = ("_items", "_trie")

    def __init__(self, trie: Trie) -> None:
        self._trie = trie
        # key -> (the name written at the top, or None; the child's entries as a tuple)
        self._items = {key: (name, _entries(child)) for key, (name, child) in trie.items()}

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get = self._items.get
        try:
            for key, value in doc.items():
                hit = get(key)
                if hit is None:
                    continue
                if type(value) is dict:
                    if hit[1]:
                        _lookup(out, value, hit[1])
                elif hit[0] is not None:
                    if hit[0] in out:
                        raise _Twice
                    out[hit[0]] = value
        except _Twice:
            out = {}
            _walk(out, doc, self._trie)
        return out


class _Twice(Exception):
    """Two paths of a document write one name."""


Entries = tuple[tuple[str, str | None, "Entries"], ...]
_MISSING = object()


def _entries(trie: Trie | None) -> Entries:
    if not trie:
        return ()
    return tuple((key, name, _entries(child)) for key, (name, child) in trie.items())


def _lookup(out: dict[str, Any], doc: dict[str, Any], entries: Entries) -> None:
    get = doc.get
    for key, name, below in entries:
        value = get(key, _MISSING)
        if value is _MISSING:
            continue
        if type(value) is dict:
            if below:
                _lookup(out, value, below)
        elif name is not None:
            if name in out:
                raise _Twice
            out[name] = value


def _walk(out: dict[str, Any], doc: dict[str, Any], trie: Trie) -> None:
    """The writes of flatten for the names of ``trie``, in the document's order."""
    get = trie.get
    for key, value in doc.items():
        hit = get(key)
        if hit is None:
            continue
        if type(value) is dict:
            if hit[1] is not None:
                _walk(out, value, hit[1])
        elif hit[0] is not None:
            out[hit[0]] = value
