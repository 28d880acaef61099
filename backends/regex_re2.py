"""Python ``re`` patterns as RE2 patterns of the same meaning: KQL ``matches regex`` runs them,
and SPL ``match()`` (PCRE, which reads RE2's syntax the same way) takes them too.

The evaluator matches with Python ``re.search`` (``re.IGNORECASE`` unless ``|cased``); Kusto's
``matches regex`` is RE2 ("RE2 syntax", learn.microsoft.com/kusto/query/re2). Passing the
Python text through is wrong both ways: RE2 rejects Python syntax of a plain meaning (``(?x)``,
``(?#...)``, ``\\N{...}``, ``\\Z``) and reads some Python syntax differently (``a{,3}`` is 0 to 3
``a`` in Python, the literal text ``a{,3}`` in RE2). So the pattern is parsed by Python's own
parser (the meaning the evaluator runs) and re-spelled node by node in RE2 syntax whose meaning
is the same; RE2 itself (google-re2) then decides whether it accepts the result (repetition
limits, sizes).

What cannot be re-spelled exactly is reported: look-around, back-references, conditionals,
atomic groups and possessive repeats are not in RE2 (:class:`Unsupported`); Unicode ``\\d \\w \\s
\\b`` (RE2's are ASCII), ``\\B`` (RE2's matches the empty text), a ``$`` that is not at the end of
the pattern (Python's also matches before a final newline) and case-insensitive classes too large
to check are approximations. Case-insensitive letters are checked against both engines over the
letter's whole case family (Python folds ``i`` with ``ı`` and ``İ``, RE2 does not), and spelled
as explicit classes where the two differ.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from re import _constants as C  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import re2  # type: ignore[import-untyped]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_MAX_CLASS = 4096  # code points a case-insensitive range may span to be checked one by one
_MAXREPEAT: int = C.MAXREPEAT


class Unsupported(Exception):
    """No RE2 pattern has the Python pattern's meaning (the message says why)."""


@dataclass(frozen=True)
class Re2Pattern:
    text: str  # the RE2 pattern, with (?i) when case-insensitive
    approximations: tuple[str, ...]  # how its meaning differs from Python's; empty: exact


def to_re2(pattern: str, *, ignorecase: bool) -> Re2Pattern:
    """The RE2 spelling of ``re.search(pattern, text, re.I if ignorecase else 0)``."""
    return _to_re2(pattern, ignorecase)


@functools.cache
def _to_re2(pattern: str, ignorecase: bool) -> Re2Pattern:
    try:
        tree = _parser.parse(pattern, re.IGNORECASE if ignorecase else 0)
    except re.error as exc:
        raise Unsupported(f"the pattern is invalid ({exc})") from None
    flags = int(tree.state.flags)
    w = _Writer()
    body = w.seq(list(tree), flags, tail=True)
    text = ("(?i)" if flags & re.IGNORECASE else "") + body
    try:
        re2.compile(text, _RE2_OPTIONS)
    except re2.error as exc:
        raise Unsupported(f"RE2 rejects the pattern ({_msg(exc)})") from None
    return Re2Pattern(text, tuple(dict.fromkeys(w.notes)))


def _msg(exc: Exception) -> str:
    m = exc.args[0] if exc.args else exc
    return m.decode("utf-8", "replace") if isinstance(m, bytes) else str(m)


# --------------------------------------------------------------------------- spelling
_ASCII_CLASS = {  # Python's ASCII-mode categories as RE2 POSIX classes (RE2 \s lacks \v)
    C.CATEGORY_DIGIT: "[:digit:]",
    C.CATEGORY_NOT_DIGIT: "[:^digit:]",
    C.CATEGORY_WORD: "[:word:]",
    C.CATEGORY_NOT_WORD: "[:^word:]",
    C.CATEGORY_SPACE: "[:space:]",
    C.CATEGORY_NOT_SPACE: "[:^space:]",
}
_UNICODE_CLASS = {
    C.CATEGORY_DIGIT: ("\\d", "\\d"),
    C.CATEGORY_NOT_DIGIT: ("\\D", "\\d"),
    C.CATEGORY_WORD: ("\\w", "\\w"),
    C.CATEGORY_NOT_WORD: ("\\W", "\\w"),
    C.CATEGORY_SPACE: ("\\s", "\\s"),
    C.CATEGORY_NOT_SPACE: ("\\S", "\\s"),
}
_PY_CATEGORY = {k: v[0] for k, v in _UNICODE_CLASS.items()}
_UNICODE_DIGIT = {C.CATEGORY_DIGIT: "\\p{Nd}", C.CATEGORY_NOT_DIGIT: "\\P{Nd}"}
_ASCII_MEMBERS = {
    C.CATEGORY_DIGIT: "0123456789",
    C.CATEGORY_WORD: "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_",
    C.CATEGORY_SPACE: " \t\n\r\f\v",
}
# A negated class is decided on the same characters as its positive one: the case families of
# the ASCII members are where the engines' folding can differ (`ſ` folds to `s` in RE2, so
# `(?i)[[:^word:]]` rejects it while Python's ASCII `\W` takes it).
_ASCII_MEMBERS[C.CATEGORY_NOT_DIGIT] = _ASCII_MEMBERS[C.CATEGORY_DIGIT]
_ASCII_MEMBERS[C.CATEGORY_NOT_WORD] = _ASCII_MEMBERS[C.CATEGORY_WORD]
_ASCII_MEMBERS[C.CATEGORY_NOT_SPACE] = _ASCII_MEMBERS[C.CATEGORY_SPACE]
_MISSING = {
    C.GROUPREF: "back-references (\\1, (?P=name))",
    C.GROUPREF_EXISTS: "conditional groups ((?(1)...|...))",
    C.ATOMIC_GROUP: "atomic groups ((?>...))",
    C.POSSESSIVE_REPEAT: "possessive repeats (*+, ++, ?+)",
}


_META = frozenset("\\.+*?()|[]{}^$")
_CLASS_META = frozenset("\\]^-[")


def _lit(c: int, in_class: bool = False) -> str:
    ch = chr(c)
    if ch in (_CLASS_META if in_class else _META):
        return "\\" + ch
    if ch.isprintable() and (ch == " " or unicodedata.category(ch)[0] not in "ZC"):
        return ch
    return f"\\x{{{c:X}}}"


def _ranges(codes: list[int]) -> str:
    """Sorted code points as class ranges (`a-z`)."""
    out: list[str] = []
    i = 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = _lit(codes[i], True), _lit(codes[j], True)
        out.append(lo if i == j else lo + hi if j == i + 1 else f"{lo}-{hi}")
        i = j + 1
    return "".join(out)


@functools.cache
def _unicode_set(category: str) -> tuple[int, ...]:
    """The code points Python's Unicode ``\\d`` or ``\\s`` matches (asked of Python's re)."""
    rx = re.compile(category)
    return tuple(c for c in range(0x110000) if rx.match(chr(c)))


def _spans(codes: tuple[int, ...]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in codes:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def _complement(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, lo = [], 0
    for a, b in spans:
        if a > lo:
            out.append((lo, a - 1))
        lo = b + 1
    if lo <= 0x10FFFF:
        out.append((lo, 0x10FFFF))
    return out


class _Writer:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def seq(self, items: list[tuple[Any, Any]], flags: int, *, tail: bool) -> str:
        out = []
        for i, (op, av) in enumerate(items):
            out.append(self.node(op, av, flags, tail=tail and i == len(items) - 1))
        return "".join(out)

    def atom(self, items: list[tuple[Any, Any]], flags: int) -> str:
        text = self.seq(items, flags, tail=False)
        single = len(items) == 1 and items[0][0] in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY)
        if single and text and (len(text) <= 2 or text[0] in "[(" or text.startswith("\\x")):
            return text
        if len(items) == 1 and items[0][0] is C.SUBPATTERN:
            return text
        return f"(?:{text})"

    def node(self, op: Any, av: Any, flags: int, *, tail: bool) -> str:
        if op in _MISSING:
            raise Unsupported(f"RE2 has no {_MISSING[op]}")
        if op in (C.ASSERT, C.ASSERT_NOT):
            negative = "negative " if op is C.ASSERT_NOT else ""
            which = "look-ahead (?" if av[0] == 1 else "look-behind (?<"
            raise Unsupported(f"RE2 has no {negative}{which}{'!' if negative else '='}...)")
        if op is C.LITERAL:
            return self.chars([(C.LITERAL, av)], False, flags, single=av)
        if op is C.NOT_LITERAL:
            return self.chars([(C.LITERAL, av)], True, flags)
        if op is C.IN:
            neg = bool(av) and av[0][0] is C.NEGATE
            return self.chars(list(av[1:] if neg else av), neg, flags)
        if op is C.ANY:
            return "(?s:.)" if flags & re.DOTALL else "."
        if op is C.AT:
            return self.at(av, flags, tail)
        if op is C.BRANCH:
            return "(?:" + self.alternatives(av, flags, tail) + ")"
        if op is C.SUBPATTERN:
            group, add, delete, sub = av
            inner = (flags | add) & ~delete
            if len(sub) == 1 and sub[0][0] is C.BRANCH:
                body = self.alternatives(sub[0][1], inner, tail)
            else:
                body = self.seq(list(sub), inner, tail=tail)
            if (inner ^ flags) & re.IGNORECASE:
                body = ("(?i:" if inner & re.IGNORECASE else "(?-i:") + body + ")"
                return f"({body})" if group is not None else body
            return f"({body})" if group is not None else f"(?:{body})"
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, sub = av
            q = {(0, _MAXREPEAT): "*", (1, _MAXREPEAT): "+", (0, 1): "?"}.get((lo, hi))
            if q is None:
                q = (
                    f"{{{lo}}}"
                    if lo == hi
                    else f"{{{lo},}}"
                    if hi == _MAXREPEAT
                    else f"{{{lo},{hi}}}"
                )
            return self.atom(list(sub), flags) + q + ("?" if op is C.MIN_REPEAT else "")
        raise Unsupported(f"siemc cannot re-spell the construct {op} for RE2")

    def alternatives(self, av: Any, flags: int, tail: bool) -> str:
        return "|".join(self.seq(list(b), flags, tail=tail) for b in av[1])

    def at(self, code: Any, flags: int, tail: bool) -> str:
        multiline = flags & re.MULTILINE
        if code is C.AT_BEGINNING:
            return "(?m:^)" if multiline else "^"
        if code is C.AT_BEGINNING_STRING:
            return "\\A"
        if code is C.AT_END_STRING:
            return "\\z"
        if code is C.AT_END:
            if multiline:
                return "(?m:$)"
            if tail:
                # the end, or before a newline that ends the text: consuming that newline
                # changes no match/no-match decision, and nothing follows it
                return "\\n?\\z"
            self.notes.append(
                "a `$` followed by more pattern: Python's `$` also matches before a final "
                "newline, RE2's only at the end of the text"
            )
            return "$"
        if code in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
            b = "\\b" if code is C.AT_BOUNDARY else "\\B"
            if not flags & re.ASCII:
                self.notes.append(
                    f"`{b}`: Python's word boundary uses Unicode word characters, RE2's only "
                    "ASCII [0-9A-Za-z_]"
                )
            if code is C.AT_NON_BOUNDARY:
                self.notes.append("`\\B`: RE2's matches the empty text, Python's does not")
            return b
        raise Unsupported(f"siemc cannot re-spell the anchor {code} for RE2")

    # ------------------------------------------------------------------ characters and classes
    def chars(
        self, items: list[tuple[Any, Any]], neg: bool, flags: int, single: int | None = None
    ) -> str:
        items, neg = self.expand(items, neg, flags)
        parts = []
        for op, av in items:
            if op is C.LITERAL:
                parts.append(_lit(av, True))
            elif op is C.RANGE:
                lo, hi = _lit(av[0], True), _lit(av[1], True)
                parts.append(lo if av[0] == av[1] else f"{lo}-{hi}")
            elif op is C.CATEGORY:
                if flags & re.ASCII:
                    parts.append(_ASCII_CLASS[av])
                else:
                    parts.append(_UNICODE_DIGIT.get(av, _UNICODE_CLASS[av][0]))
            else:
                raise Unsupported(f"siemc cannot re-spell the class item {op} for RE2")
        if single is not None:
            natural = _lit(single)
        elif len(parts) == 1 and not neg and items[0][0] is not C.RANGE and parts[0][0] == "\\":
            natural = parts[0]
        else:
            natural = "[" + ("^" if neg else "") + "".join(parts) + "]"
        if not flags & re.IGNORECASE:
            return natural
        return self.folded(items, neg, flags, natural)

    def expand(
        self, items: list[tuple[Any, Any]], neg: bool, flags: int
    ) -> tuple[list[tuple[Any, Any]], bool]:
        """Unicode-mode ``\\d \\s`` (and their negations) as the code point ranges Python gives
        them; ``\\w`` stays RE2's ASCII class, reported."""
        if flags & re.ASCII:
            return items, neg
        out: list[tuple[Any, Any]] = []
        for op, av in items:
            if op is not C.CATEGORY:
                out.append((op, av))
                continue
            text, what = _UNICODE_CLASS[av]
            if av in _UNICODE_DIGIT:
                # Python's str \d is the Unicode category Nd, which RE2 and PCRE name \p{Nd}
                out.append((op, av))
                continue
            if what == "\\w":
                self.notes.append(
                    f"`{text}`: Python's word characters are Unicode letters and digits of every "
                    "script, RE2's only ASCII [0-9A-Za-z_]"
                )
                out.append((op, av))
                continue
            spans = _spans(_unicode_set(what))
            if text.isupper():
                if len(items) == 1:  # [^...] of the positive set reads best
                    return [(C.RANGE, sp) for sp in spans], not neg
                spans = _complement(spans)
            out += [(C.RANGE, sp) for sp in spans]
        return out, neg

    def folded(self, items: list[tuple[Any, Any]], neg: bool, flags: int, natural: str) -> str:
        """A case-insensitive class spelled so that RE2 matches what Python matches, checked
        with both engines over the case families of its members."""
        members: set[int] = set()
        for op, av in items:
            if op is C.LITERAL:
                members.add(av)
            elif op is C.RANGE:
                if av[1] - av[0] >= _MAX_CLASS:
                    self.notes.append(
                        "a case-insensitive range too large to check letter by letter: Python "
                        "and RE2 fold some letters differently (ı, İ, K, ſ)"
                    )
                    return natural
                members.update(range(av[0], av[1] + 1))
            elif op is C.CATEGORY:
                if not flags & re.ASCII:
                    return natural  # \w: already reported
                members.update(ord(x) for x in _ASCII_MEMBERS.get(av, ""))
        universe = sorted({x for m in members for x in _family(m)} | members)
        py = _py_class(items, neg, flags)
        want = {x for x in universe if py.fullmatch(chr(x))}
        for text in ("(?i)" + natural, natural):
            if _re2_set(text, universe) == want:
                return natural if text != natural else f"(?-i:{natural})"
        if neg:
            return "(?-i:[^" + _ranges([x for x in universe if x not in want]) + "])"
        return "(?-i:[" + _ranges(sorted(want)) + "])"


def _py_class(items: list[tuple[Any, Any]], neg: bool, flags: int) -> re.Pattern[str]:
    parts = []
    for op, av in items:
        if op is C.LITERAL:
            parts.append(f"\\U{av:08x}")
        elif op is C.RANGE:
            parts.append(f"\\U{av[0]:08x}-\\U{av[1]:08x}")
        else:
            parts.append(_PY_CATEGORY[av])
    keep = flags & (re.IGNORECASE | re.ASCII)
    return re.compile("[" + ("^" if neg else "") + "".join(parts) + "]", keep)


def _re2_set(pattern: str, universe: list[int]) -> set[int]:
    rx = re2.compile(pattern, _RE2_OPTIONS)
    return {x for x in universe if rx.fullmatch(chr(x)) is not None}


def _family(c: int) -> frozenset[int]:
    return _families().get(c, frozenset((c,)))


@functools.cache
def _families() -> dict[int, frozenset[int]]:
    """Code points linked by lower/upper/casefold mappings of one character and by Python's
    extra case pairs (re._casefix): every character either engine can fold together."""
    import _sre  # type: ignore[import-not-found]
    from re import _casefix  # type: ignore[attr-defined]

    simple_lower = getattr(_sre, "unicode_tolower", None)  # the mapping re.IGNORECASE uses
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for c in range(0x20000):  # no character above U+1FFFF has a case mapping
        if 0xD800 <= c <= 0xDFFF:
            continue
        ch = chr(c)
        for m in (ch.lower(), ch.upper(), ch.casefold()):
            if m != ch and len(m) == 1:
                union(c, ord(m))
        if simple_lower is not None and simple_lower(c) != c:
            union(c, simple_lower(c))
    for c, extra in _casefix._EXTRA_CASES.items():
        for e in extra:
            union(c, e)
    groups: dict[int, set[int]] = {}
    for c in parent:
        groups.setdefault(find(c), set()).add(c)
    out: dict[int, frozenset[int]] = {}
    for g in groups.values():
        fs = frozenset(g)
        for c in g:
            out[c] = fs
    return out
