"""Literal text for Elasticsearch EQL: strings, field names, durations, and Python ``re`` patterns
rewritten as Lucene regular expressions.

Elasticsearch EQL reference: https://www.elastic.co/guide/en/elasticsearch/reference/current/eql-syntax.html
"""

from __future__ import annotations

import functools
import re
import string
import sys
from dataclasses import dataclass

# EQL string escapes (syntax reference, "Escape characters in a string"). Other control characters
# are written as they are: the Elasticsearch lexer only refuses raw CR/LF in a string, and eql
# 1.0.1 (the validator) unescapes ``\u{...}`` with a greedy regex that breaks on a second
# ``\u{...}`` in the same string.
_STRING_ESCAPES: dict[str, str] = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}

# The wildcard characters of ``:`` and ``like``; the docs give no way to escape them, so values
# holding them go through ``in~`` or the literal string functions instead.
WILDCARDS = frozenset("*?")

_PLAIN_SEGMENT = re.compile(r"[A-Za-z_@][A-Za-z0-9_@]*")


def quote(value: str) -> str:
    return '"' + "".join(_STRING_ESCAPES.get(ch, ch) for ch in value) + '"'


# EQL's keywords (the eql.g grammar of eql 1.0.1 and the Elasticsearch EQL syntax reference): a
# segment spelled like one would be read as the keyword, so the name is back-quoted.
_KEYWORD_TEXT = """
    and any as by const false fork in join like macro maxspan not null of or regex runs sample
    sequence true until where with
    """
KEYWORDS = frozenset(_KEYWORD_TEXT.split())


def field(name: str) -> str:
    """A field name. A segment with a hyphen, a space, a leading digit, or spelled like a keyword
    is written in backticks, segment by segment: eql.g reads a field as ``name ("." name)*`` with
    ``ESCAPED_NAME`` a name, so `` `labels.by` `` would be one key named "labels.by", where
    ``labels.`by` `` is the path (Elasticsearch EQL syntax reference, "Escape a field name")."""
    if "`" in name:
        raise ValueError(f"field name {name!r} cannot be written in EQL (backtick)")
    parts = name.split(".")
    return ".".join(
        p if _PLAIN_SEGMENT.fullmatch(p) and p not in KEYWORDS else f"`{p}`" for p in parts
    )


def number(value: float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def has_wildcard(value: str) -> bool:
    return any(ch in WILDCARDS for ch in value)


_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


def duration(ms: int) -> str:
    for unit, size in _UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


# --------------------------------------------------------------------------- regular expressions
class RegexNotPortable(Exception):
    """The pattern uses Python ``re`` syntax with no Lucene equivalent."""


@dataclass(frozen=True)
class LuceneRegex:
    pattern: str
    approximations: tuple[str, ...]  # what differs from Python re, empty when exact


# Characters with a meaning in Lucene regular expressions (with every optional operator enabled:
# ``# @ & < > ~``); a literal one is written escaped.
# https://www.elastic.co/guide/en/elasticsearch/reference/current/regexp-syntax.html
_LUCENE_SPECIAL = frozenset('.?+*|{}[]()"\\#@&<>~^$')


@functools.cache
def _digit_class() -> str:
    """Python's ``\\d`` on text is every Unicode decimal digit (category Nd), Lucene has no
    Unicode classes and its ``\\d`` is ``[0-9]``: the digits are spelled out, as the ranges
    Python's own ``re`` accepts (so the class means what the evaluator runs)."""
    digit = re.compile(r"\d")
    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        if digit.match(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


_SHORTHAND = {"d": "", "w": "A-Za-z0-9_", "s": " \t\n\r\f\v"}  # "d": _digit_class()


def _shorthand(ch: str) -> str:
    return _digit_class() if ch == "d" else _SHORTHAND[ch]


_SHORTHAND_NOTE = {
    "w": "\\w matches ASCII word characters only in Lucene (Python also matches Unicode letters)",
    "s": "\\s matches ASCII blanks only in Lucene (Python also matches Unicode spaces)",
}
_CHAR_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}


def literal(ch: str) -> str:
    return "\\" + ch if ch in _LUCENE_SPECIAL else ch


class _RegexTranslator:
    """Python ``re`` (search semantics) -> Lucene (whole-string semantics), for the common subset:
    literals, ``.``, classes, ``\\d \\w \\s``, greedy/lazy quantifiers, groups, alternation, and
    ``^``/``$`` at the ends of top-level alternatives. Anything else raises RegexNotPortable."""

    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.notes: list[str] = []

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def translate(self) -> LuceneRegex:
        alts = self.alternatives(top=True)
        if self.i != len(self.p):
            raise RegexNotPortable(f"unbalanced ')' at offset {self.i}")
        if len(alts) == 1:
            body = alts[0]
        else:
            body = "(" + ")|(".join(alts) + ")"
            body = "(" + body + ")"
        return LuceneRegex(body, tuple(dict.fromkeys(self.notes)))

    def alternatives(self, top: bool) -> list[str]:
        alts = [self.sequence(top)]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.sequence(top))
        return alts

    def sequence(self, top: bool) -> str:
        anchored_start = False
        if top and self.peek() == "^":
            anchored_start = True
            self.i += 1
        parts: list[str] = []
        anchored_end = False
        while True:
            ch = self.peek()
            if ch is None or ch in "|)":
                break
            if ch == "$":
                self.i += 1
                if top and self.peek() in (None, "|"):
                    anchored_end = True
                    break
                raise RegexNotPortable("'$' inside the pattern (only at its end)")
            if ch == "^":
                raise RegexNotPortable("'^' inside the pattern (only at its start)")
            atom = self.atom()
            parts.append(atom + self.quantifier())
        body = "".join(parts)
        if not top:
            return body
        # Python search finds the pattern anywhere; Lucene matches the whole value. ``$`` also
        # matches before a final newline in Python.
        prefix = "" if anchored_start else ".*"
        suffix = "\n?" if anchored_end else ".*"
        return prefix + body + suffix

    def quantifier(self) -> str:
        ch = self.peek()
        if ch is None or ch not in "*+?{":
            return ""
        if ch == "{":
            m = re.compile(r"\{(\d*)(,?)(\d*)\}").match(self.p, self.i)
            if m is None:
                # A lone brace is a literal in Python.
                return ""
            lo, comma, hi = m.groups()
            if not lo and not hi:
                return ""
            self.i = m.end()
            q = "{" + (lo or "0") + comma + hi + "}"
        else:
            self.i += 1
            q = ch
        nxt = self.peek()
        if nxt == "?":
            # Laziness changes what is captured, not whether the value matches.
            self.i += 1
        elif nxt == "+":
            raise RegexNotPortable("possessive quantifier")
        return q

    def atom(self) -> str:
        ch = self.p[self.i]
        self.i += 1
        if ch == ".":
            # Python '.' excludes the newline (no DOTALL); Lucene '.' matches any character.
            return "[^\n]"
        if ch == "(":
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise RegexNotPortable("group extension '(?...)' (lookaround, flags, named groups)")
            inner = self.alternatives(top=False)
            if self.peek() != ")":
                raise RegexNotPortable("missing ')'")
            self.i += 1
            return "(" + "|".join(inner) + ")"
        if ch == "[":
            return self.char_class()
        if ch == "\\":
            return self.escape(in_class=False)
        if ch in "*+?":
            raise RegexNotPortable(f"quantifier '{ch}' without an operand")
        return literal(ch)

    def escape(self, in_class: bool) -> str:
        ch = self.peek()
        if ch is None:
            raise RegexNotPortable("trailing backslash")
        self.i += 1
        if ch in _SHORTHAND:
            if ch in _SHORTHAND_NOTE:
                self.notes.append(_SHORTHAND_NOTE[ch])
            return _shorthand(ch) if in_class else "[" + _shorthand(ch) + "]"
        if ch in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[ch]
        width = {"x": 2, "u": 4, "U": 8}.get(ch, 0)
        code = self.p[self.i : self.i + width]
        if width and len(code) == width and all(c in string.hexdigits for c in code):
            # a code point (Python's \xhh, \uhhhh, \Uhhhhhhhh): Lucene reads the character
            self.i += width
            return literal(chr(int(code, 16)))
        if ch.isalnum():
            raise RegexNotPortable(f"escape '\\{ch}' (word boundaries, back-references, ...)")
        return literal(ch)

    def char_class(self) -> str:
        out = ["["]
        if self.peek() == "^":
            out.append("^")
            self.i += 1
        first = True
        while True:
            ch = self.peek()
            if ch is None:
                raise RegexNotPortable("unterminated character class")
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            self.i += 1
            if ch == "\\":
                nxt = self.peek()
                if nxt is not None and nxt in _SHORTHAND:
                    self.i += 1
                    if nxt in _SHORTHAND_NOTE:
                        self.notes.append(_SHORTHAND_NOTE[nxt])
                    out.append(
                        "".join(literal(c) if not c.isalnum() else c for c in _shorthand(nxt))
                    )
                    continue
                out.append(class_literal(self.escape(in_class=True)))
            elif ch == "-" and len(out) > 1 and self.peek() not in (None, "]"):
                out.append("-")
            elif ch == "[" and self.peek() in (":", "=", "."):
                raise RegexNotPortable("POSIX class syntax")
            else:
                out.append(class_literal(ch))
        if out in (["["], ["[", "^"]):
            raise RegexNotPortable("empty character class")
        return "".join(out) + "]"


def class_literal(s: str) -> str:
    if s.startswith("\\") and len(s) == 2:
        return s
    return "".join(c if c.isalnum() or c in " \n\t\r\f\v\a" else "\\" + c for c in s)


def lucene_regex(pattern: str, cased: bool) -> LuceneRegex:
    result = _RegexTranslator(pattern).translate()
    notes = list(result.approximations)
    if not cased and any(not c.isascii() and c.lower() + c.upper() != c + c for c in pattern):
        notes.append(
            "regex~ folds ASCII letters only (Lucene ASCII_CASE_INSENSITIVE); Python IGNORECASE "
            "also folds the non-ASCII letters of this pattern"
        )
    return LuceneRegex(result.pattern, tuple(notes))
