"""A pySigma condition tree (modifiers already applied by pySigma) -> a siemc filter.

pySigma resolves the condition (``1 of selection_*``, ``all of them``) and applies every value
modifier: ``contains``/``startswith``/``endswith`` become wildcards, ``windash`` and
``base64offset`` become an expansion (a group of alternatives), ``base64`` an encoded string.
This module reads that result and writes the language's operators: a string's wildcards become
equality, ``contains``, ``startswith``, ``endswith`` or an anchored regular expression; an
expansion becomes ``any:``. Whatever the language cannot say raises :class:`Refusal`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionIdentifier,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from compiler.importers.refusal import DocPath, Refusal

Filter = dict[str, Any]
# (detection name or None, Sigma field or None, a word of the key to prefer) -> path in the doc
Locate = Callable[[str | None, str | None, str | None], DocPath]
MapField = Callable[[str, DocPath], str]

_CMP = {
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
}
# the operators whose entries take a list of values (any, or all with |all)
_LISTABLE = ("eq", "contains", "startswith", "endswith", "re", "cidr")
_INLINE = ((SigmaRegularExpressionFlag.MULTILINE, "m"), (SigmaRegularExpressionFlag.DOTALL, "s"))
_OPS = ("contains", "startswith", "endswith", "re", "cidr", "exists", "gt", "gte", "lt", "lte")


def _identifier(node: Any) -> str | None:
    p = node
    while p is not None:
        if isinstance(p, ConditionIdentifier):
            return str(p.identifier)
        p = getattr(p, "parent", None)
    return None


class Converter:
    """One rule's detection. ``derive`` collects the fields computed for ``fieldref`` and
    ``lookups`` the placeholders of ``expand`` (each a lookup table the user fills)."""

    def __init__(self, map_field: MapField, locate: Locate):
        self.map_field = map_field
        self.locate = locate
        self.derive: dict[str, str] = {}
        self.lookups: list[str] = []

    # ------------------------------------------------------------------ tree
    def convert(self, node: Any) -> Filter:
        if isinstance(node, ConditionAND | ConditionOR):
            kind = "all" if isinstance(node, ConditionAND) else "any"
            items: list[Filter] = []
            for arg in node.args:
                sub = self.convert(arg)
                # (a and (b and c)) is (a and b and c): one level reads better
                items.extend(sub[kind] if list(sub) == [kind] else [sub])
            return merge(kind, items)
        if isinstance(node, ConditionNOT):
            return {"not": self.convert(node.args[0])}
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.leaf(node)
        if isinstance(node, ConditionValueExpression):
            name = _identifier(node)
            raise Refusal(
                "keyword",
                "a keyword search (a value without a field) has no equivalent: every filter "
                "of the language names a field",
                self.locate(name, None, None),
            )
        raise Refusal(
            "condition",
            f"unsupported condition element {type(node).__name__}",
            ("detection", "condition"),
            key=False,
        )

    # ------------------------------------------------------------------ leaves
    def leaf(self, node: ConditionFieldEqualsValueExpression) -> Filter:
        sigma_field = str(node.field)
        where = self.locate(_identifier(node), sigma_field, None)
        field = self.map_field(sigma_field, where)
        return self.value(field, node.value, sigma_field, _identifier(node))

    def value(self, field: str, v: Any, sigma_field: str, ident: str | None) -> Filter:
        def here(word: str | None = None) -> DocPath:
            return self.locate(ident, sigma_field, word)

        if isinstance(v, SigmaExpansion):
            return merge("any", [self.value(field, x, sigma_field, ident) for x in v.values])
        if isinstance(v, SigmaString):
            return self.string(field, v, isinstance(v, SigmaCasedString), here)
        if isinstance(v, SigmaBool):
            return {field: bool(v.boolean)}
        if isinstance(v, SigmaNumber):
            return {field: v.number}
        if isinstance(v, SigmaNull):
            return {field: None}
        if isinstance(v, SigmaExists):
            return {f"{field}|exists": bool(v.exists)}
        if isinstance(v, SigmaCIDRExpression):
            return {f"{field}|cidr": str(v.network)}
        if isinstance(v, SigmaCompareExpression):
            if v.op == CompareOperators.NEQ:
                # a missing field has no value to differ: Sigma's backends do not match it
                return {"all": [{f"{field}|exists": True}, {"not": {field: v.number.number}}]}
            return {f"{field}|{_CMP[v.op]}": v.number.number}
        if isinstance(v, SigmaRegularExpression):
            return self.regex(field, v)
        if isinstance(v, SigmaFieldReference):
            return self.fieldref(field, v, sigma_field, here)
        name = type(v).__name__
        construct = "timestamp-part" if "Timestamp" in name else f"value-{name}"
        raise Refusal(construct, f"the value type {name} has no equivalent", here())

    def string(
        self, field: str, s: SigmaString, cased: bool, here: Callable[..., DocPath]
    ) -> Filter:
        parts = list(s.s)
        if any(isinstance(p, Placeholder) for p in parts):
            return self.placeholder(field, parts, here)
        plain = "".join(p for p in parts if isinstance(p, str))
        if "\x00" in plain:
            raise Refusal(
                "nul-character",
                "the value holds NUL characters (utf16/wide without base64): analytic values "
                "cannot contain NUL",
                here("wide"),
            )
        suffix = "|cased" if cased else ""
        specials = [i for i, p in enumerate(parts) if isinstance(p, SpecialChars)]
        star = SpecialChars.WILDCARD_MULTI
        if not specials:
            return {f"{field}{suffix}": plain}
        inner = [i for i in specials if i not in (0, len(parts) - 1) or parts[i] != star]
        if not inner:
            if plain == "":
                # `*` alone: any value at all (an empty string included)
                return {f"{field}|exists": True}
            lead, trail = parts[0] == star, parts[-1] == star
            op = "contains" if lead and trail else "endswith" if lead else "startswith"
            return {f"{field}|{op}{suffix}": plain}
        rx = []
        for p in parts:
            if p == star:
                rx.append(".*")
            elif p == SpecialChars.WILDCARD_SINGLE:
                rx.append(".")
            else:
                rx.append(re.escape(str(p)))
        # (?s): a Sigma wildcard matches any character, a line break included
        return {f"{field}|re{suffix}": "(?s)^" + "".join(rx) + "$"}

    def regex(self, field: str, v: SigmaRegularExpression) -> Filter:
        pattern = v.regexp.original if isinstance(v.regexp, SigmaString) else str(v.regexp)
        flags = set(v.flags or ())
        inline = "".join(c for f, c in _INLINE if f in flags)
        if inline:
            pattern = f"(?{inline}){pattern}"
        # Sigma regular expressions are case-sensitive unless flagged i; the language's `re` is
        # case-insensitive unless `cased`
        cased = SigmaRegularExpressionFlag.IGNORECASE not in flags
        return {f"{field}|re" + ("|cased" if cased else ""): pattern}

    def fieldref(
        self, field: str, v: SigmaFieldReference, sigma_field: str, here: Callable[..., DocPath]
    ) -> Filter:
        if v.starts_with or v.ends_with:
            raise Refusal(
                "fieldref-startswith-endswith",
                "fieldref with startswith/endswith compares one field's start or end with "
                "another field: the language compares whole values only",
                here("fieldref"),
            )
        other = self.map_field(str(v.field), here("fieldref"))
        # a derived boolean: the language's filters compare a field with values, its
        # expressions compare fields (== is case-insensitive, as Sigma's matching)
        name = f"sigma_fieldref.f{len(self.derive) + 1}"
        self.derive[name] = f"{field} == {other}"
        return {name: True}

    def placeholder(self, field: str, parts: list[Any], here: Callable[..., DocPath]) -> Filter:
        if len(parts) != 1:
            raise Refusal(
                "expand-partial",
                "a placeholder inside a longer value (%name% with other text or wildcards): "
                "only a whole-value placeholder becomes a lookup table",
                here("expand"),
            )
        name = re.sub(r"[^A-Za-z0-9_]", "_", str(parts[0].name))
        if not re.match(r"[A-Za-z_]", name):
            name = f"p_{name}"
        if name not in self.lookups:
            self.lookups.append(name)
        return {"lookup": {"name": name, "match": {"value": field}}}


def _key_op(key: str) -> tuple[str, str, list[str]]:
    field, *mods = key.split("|")
    ops = [m for m in mods if m in _OPS]
    return field, (ops[0] if ops else "eq"), mods


def merge(kind: str, items: list[Filter]) -> Filter:
    """AND/OR of filters, written compactly: entries on distinct keys share one mapping (AND),
    values of one key share one list (OR, or AND with `|all`)."""
    if len(items) == 1:
        return items[0]
    singles = [next(iter(f.items())) for f in items if len(f) == 1]
    plain = len(singles) == len(items) and all(
        k not in ("any", "all", "not", "lookup") for k, _ in singles
    )
    if plain:
        keys = [k for k, _ in singles]
        _, op, mods = _key_op(keys[0])
        if len(set(keys)) == 1 and op in _LISTABLE and "all" not in mods:
            values: list[Any] = []
            for _, v in singles:
                for x in v if isinstance(v, list) else [v]:
                    if x not in values:
                        values.append(x)
            if kind == "any":
                return {keys[0]: values}
            # a list under AND would be read as alternatives: only single values join `|all`
            single = not any(isinstance(v, list) for _, v in singles)
            if single and op != "eq":
                return {f"{keys[0]}|all": values}
    if kind == "all":
        # a mapping is an AND of its entries: every entry on a key no other item uses joins it
        keys = [next(iter(f)) for f in items if len(f) == 1]
        unique = [f for f in items if len(f) == 1 and keys.count(next(iter(f))) == 1]
        rest = [f for f in items if not (len(f) == 1 and keys.count(next(iter(f))) == 1)]
        if len(unique) > 1 or (unique and not rest):
            joined = {k: v for f in unique for k, v in f.items()}
            return joined if not rest else {"all": [joined, *rest]}
    return {kind: items}
