"""The boolean tree of a Sigma detection: leaves are Sigma *field conditions*
(``Image|endswith: [...]``); :class:`DetectionRenderer` groups them into named selections (a map
is an AND, a list of maps an OR) and writes the ``condition`` string."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


# ---------------------------------------------------------------------- boolean tree
@dataclass(frozen=True)
class Cond:
    """One Sigma field condition: ``key`` is ``Field|modifier|...``."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Neg:
    item: Node


Node = Cond | All | Any_ | Neg


def conj(items: list[Node]) -> Node:
    flat: list[Node] = []
    for x in items:
        flat.extend(x.items if isinstance(x, All) else (x,))
    return flat[0] if len(flat) == 1 else All(tuple(flat))


def disj(items: list[Node]) -> Node:
    flat: list[Node] = []
    for x in items:
        flat.extend(x.items if isinstance(x, Any_) else (x,))
    # `a: [x]` or `a: [y]` is `a: [x, y]` (Sigma lists are ORs) unless the key carries |all
    merged: dict[str, int] = {}
    out: list[Node] = []
    for x in flat:
        if isinstance(x, Cond) and "|all" not in x.key:
            if x.key in merged:
                i = merged[x.key]
                prev = out[i]
                assert isinstance(prev, Cond)
                out[i] = Cond(
                    x.key, prev.values + tuple(v for v in x.values if v not in prev.values)
                )
                continue
            merged[x.key] = len(out)
        out.append(x)
    return out[0] if len(out) == 1 else Any_(tuple(out))


def neg(item: Node) -> Node:
    return item.item if isinstance(item, Neg) else Neg(item)


def quantified(key: str, values: list[Any], quantifier: str) -> Node:
    """``key: values`` with the `all` quantifier; Sigma forbids `|all` on a single value."""
    if quantifier == "all" and len(values) > 1:
        return Cond(key + "|all", tuple(values))
    return Cond(key, tuple(values))


def combine(nodes: list[Node], quantifier: str) -> Node:
    return conj(nodes) if quantifier == "all" else disj(nodes)


# ---------------------------------------------------------------------- rendering
class DetectionRenderer:
    """Named selections and the condition string for one boolean tree."""

    def __init__(self) -> None:
        self.selections: dict[str, Any] = {}

    def _name(self, base: str) -> str:
        if base not in self.selections:
            return base
        n = 2
        while f"{base}_{n}" in self.selections:
            n += 1
        return f"{base}_{n}"

    def _add(self, body: Any, negated: bool) -> str:
        name = self._name("filter" if negated else "selection")
        self.selections[name] = body
        return name

    @staticmethod
    def _value(values: tuple[Any, ...]) -> Any:
        return values[0] if len(values) == 1 else list(values)

    def _as_map(self, node: Node) -> dict[str, Any] | None:
        """A condition or an AND of conditions on distinct keys, as one selection map."""
        conds = (
            [node] if isinstance(node, Cond) else list(node.items) if isinstance(node, All) else []
        )
        if not conds or not all(isinstance(c, Cond) for c in conds):
            return None
        keys = [c.key for c in conds if isinstance(c, Cond)]
        if len(set(keys)) != len(keys):
            return None
        return {c.key: self._value(c.values) for c in conds if isinstance(c, Cond)}

    def condition(self, node: Node, negated: bool = False) -> str:
        if isinstance(node, Neg):
            return "not " + self._group(node.item, not negated)
        as_map = self._as_map(node)
        if as_map is not None:
            return self._add(as_map, negated)
        if isinstance(node, All):
            # the conditions on distinct keys share one selection, the rest stand alone
            plain: dict[str, Any] = {}
            rest: list[Node] = []
            for item in node.items:
                if isinstance(item, Cond) and item.key not in plain:
                    plain[item.key] = self._value(item.values)
                else:
                    rest.append(item)
            parts = [self._add(plain, negated)] if plain else []
            parts += [self._group(x, negated) for x in rest]
            return " and ".join(parts)
        assert isinstance(node, Any_)
        maps = [self._as_map(x) for x in node.items]
        if all(m is not None for m in maps):
            # a list of maps is an OR of ANDs (sigma-specification, "Lists of maps")
            return self._add([m for m in maps if m is not None], negated)
        return " or ".join(self._group(x, negated) for x in node.items)

    def _group(self, node: Node, negated: bool) -> str:
        text = self.condition(node, negated)
        return f"({text})" if " and " in text or " or " in text else text
