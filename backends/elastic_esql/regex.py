"""Python regular expressions -> Lucene regular expressions (ES|QL RLIKE)."""

from __future__ import annotations

import importlib
import re
from typing import Any

# Python's own regex parser (re._parser, re._constants): the exact syntax tree of a pattern.
# Private but stable across 3.11-3.13; the deprecated public aliases sre_parse/sre_constants warn.
sre_parse: Any = importlib.import_module("re._parser")
sre_c: Any = importlib.import_module("re._constants")

# Lucene RegExp operators (https://www.elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax),
# including the optional ones (# @ & < > ~): any of them is escaped when meant literally.
_LUCENE_SPECIAL = frozenset('.?+*|{}[]()"\\#@&<>~^$-')


class RegexError(Exception):
    pass


_CATEGORIES = {
    sre_c.CATEGORY_DIGIT: "0-9",
    sre_c.CATEGORY_WORD: "a-zA-Z0-9_",
    sre_c.CATEGORY_SPACE: " \t\n\r\f\v",
}


def _class_char(c: str) -> str:
    return "\\" + c if c in _LUCENE_SPECIAL else c


def _lit(c: str) -> str:
    return "\\" + c if c in _LUCENE_SPECIAL else c


def lucene_regex(pattern: str, lower: bool) -> str:
    """Python ``re.search`` pattern -> an anchored Lucene regex with the same matches.

    Lucene regexes match the whole value (RLIKE is anchored) and know no lookaround,
    backreference or word boundary; ``.`` matches any character there (``[^\n]`` here).
    With ``lower`` the field is ``TO_LOWER``-ed, so literals and letter ranges are lower-cased.
    """
    tree = sre_parse.parse(pattern)
    flags = tree.state.flags
    if flags & (re.MULTILINE | re.DOTALL | re.VERBOSE) or (flags & re.IGNORECASE and not lower):
        raise RegexError("inline flags (?i)/(?m)/(?s)/(?x) have no Lucene equivalent")
    items = list(tree)
    start, end = 0, len(items)
    head = tail = ".*"
    if items and items[0][0] is sre_c.AT and items[0][1] in _STARTS:
        start, head = 1, ""
    if end > start and items[-1][0] is sre_c.AT and items[-1][1] in _ENDS:
        # Python's $ also matches before one final newline; \Z does not.
        end, tail = end - 1, ("\n?" if items[-1][1] is sre_c.AT_END else "")
    return head + _seq(items[start:end], lower) + tail


_STARTS = (sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_STRING)
_ENDS = (sre_c.AT_END, sre_c.AT_END_STRING)
_ATOMS = (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.IN, sre_c.ANY, sre_c.SUBPATTERN, sre_c.BRANCH)


def _seq(items: Any, lower: bool) -> str:
    return "".join(_node(op, av, lower) for op, av in items)


def _node(op: Any, av: Any, lower: bool) -> str:
    if op is sre_c.LITERAL:
        c = chr(av)
        return _lit(c.lower() if lower else c)
    if op is sre_c.NOT_LITERAL:
        c = chr(av)
        return "[^" + _class_char(c.lower() if lower else c) + "]"
    if op is sre_c.ANY:
        return "[^\n]"
    if op is sre_c.IN:
        return _class(av, lower)
    if op is sre_c.SUBPATTERN:
        _, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise RegexError("inline flags have no Lucene equivalent")
        return "(" + _seq(sub, lower) + ")"
    if op is sre_c.ATOMIC_GROUP:
        return "(" + _seq(av, lower) + ")"
    if op is sre_c.BRANCH:
        return "(" + "|".join(_seq(b, lower) for b in av[1]) + ")"
    if op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
        # laziness and possessiveness change what is captured, never whether a value matches
        lo, hi, sub = av
        inner = _seq(sub, lower)
        if len(sub) != 1 or sub[0][0] not in _ATOMS:
            inner = "(" + inner + ")"
        if hi == sre_c.MAXREPEAT:
            return inner + {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
        if (lo, hi) == (0, 1):
            return inner + "?"
        return inner + (f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}")
    raise RegexError(f"{str(op).lower()} has no Lucene equivalent")


def _class(items: Any, lower: bool) -> str:
    neg = False
    parts: list[str] = []
    for op, av in items:
        if op is sre_c.NEGATE:
            neg = True
        elif op is sre_c.LITERAL:
            c = chr(av)
            parts.append(_class_char(c.lower() if lower else c))
        elif op is sre_c.RANGE:
            lo, hi = chr(av[0]), chr(av[1])
            parts.append(_class_char(lo) + "-" + _class_char(hi))
            if lower and lo <= "Z" and hi >= "A":
                parts.append(max(lo, "A").lower() + "-" + min(hi, "Z").lower())
        elif op is sre_c.CATEGORY and av in _CATEGORIES:
            parts.append(_CATEGORIES[av])
        else:
            raise RegexError(f"class item {str(op).lower()} has no Lucene equivalent")
    return "[" + ("^" if neg else "") + "".join(parts) + "]"
