"""Patterns of ES|QL translated to Python ``re``: LIKE wildcards, RLIKE's Lucene regular
expressions and REPLACE's Java regular expressions. A construct outside what is translated
raises :class:`EsqlError` rather than being matched differently."""

from __future__ import annotations

import functools
import re

from tests.interpreters.esql_interp_values import EsqlError

# Java's line terminators (java.util.regex.Pattern, without UNIX_LINES)
_JAVA_EOL = "\n\r\u0085\u2028\u2029"


@functools.cache
def like(pattern: str) -> re.Pattern[str]:
    """LIKE: `*` any characters, `?` one character, `\\` escapes the next character; the
    pattern matches the whole string, case-sensitively
    (https://www.elastic.co/docs/reference/query-languages/esql/functions-operators/operators#esql-like)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                raise EsqlError("LIKE pattern ends with an escape character")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


# ----------------------------------------------------------------------------- Lucene
class _Lucene:
    """Recursive-descent reader of Lucene's RegExp grammar
    (https://www.elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax) producing
    a Python pattern. The optional operators (`~ & @ # <n-m>`) are refused unescaped; `.`
    matches any character (newlines too); the pattern is anchored on both ends."""

    SPECIAL_OPTIONAL = frozenset("~&@#<>")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def take(self) -> str:
        c = self.s[self.i]
        self.i += 1
        return c

    def parse(self) -> str:
        out = self.union()
        if self.i != len(self.s):
            raise EsqlError(f"RLIKE pattern {self.s!r}: unexpected {self.s[self.i]!r}")
        return out

    def union(self) -> str:
        parts = [self.concat()]
        while self.peek() == "|":
            self.take()
            parts.append(self.concat())
        return "|".join(parts) if len(parts) > 1 else parts[0]

    def concat(self) -> str:
        out = ""
        while self.peek() not in (None, "|", ")"):
            out += self.repeat()
        return out

    def repeat(self) -> str:
        atom = self.atom()
        while True:
            c = self.peek()
            if c in ("?", "*", "+"):
                atom = f"(?:{atom}){self.take()}"
            elif c == "{":
                m = re.compile(r"\{(\d+)(,(\d*))?\}").match(self.s, self.i)
                if m is None:
                    raise EsqlError(f"RLIKE pattern {self.s!r}: bad repetition")
                self.i = m.end()
                atom = f"(?:{atom}){m.group(0)}"
            else:
                return atom

    def char(self) -> str:
        c = self.take()
        if c == "\\":
            if self.peek() is None:
                raise EsqlError(f"RLIKE pattern {self.s!r} ends with an escape")
            e = self.take()
            if e in "dw":  # Lucene >= 9.? shorthand classes
                return {"d": "[0-9]", "w": "[a-zA-Z0-9_]"}[e]
            if e.isalnum():
                raise EsqlError(f"RLIKE escape \\{e} is not interpreted")
            return re.escape(e)
        if c in self.SPECIAL_OPTIONAL:
            raise EsqlError(f"RLIKE optional operator {c!r} is not interpreted (escape it)")
        return re.escape(c)

    def atom(self) -> str:
        c = self.peek()
        if c == ".":
            self.take()
            return "."
        if c == "(":
            self.take()
            inner = "" if self.peek() == ")" else self.union()
            if self.peek() != ")":
                raise EsqlError(f"RLIKE pattern {self.s!r}: unclosed group")
            self.take()
            return f"(?:{inner})"
        if c == "[":
            return self.klass()
        if c == '"':
            self.take()
            end = self.s.find('"', self.i)
            if end < 0:
                raise EsqlError(f"RLIKE pattern {self.s!r}: unclosed quoted string")
            lit = self.s[self.i : end]
            self.i = end + 1
            return re.escape(lit)
        if c in ("*", "+", "?", "{", ")", "]", "}"):
            raise EsqlError(f"RLIKE pattern {self.s!r}: unexpected {c!r}")
        return self.char()

    def klass(self) -> str:
        self.take()
        neg = self.peek() == "^"
        if neg:
            self.take()
        items: list[str] = []
        while self.peek() != "]":
            if self.peek() is None:
                raise EsqlError(f"RLIKE pattern {self.s!r}: unclosed class")
            lo = self._class_char()
            if self.peek() == "-" and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                self.take()
                hi = self._class_char()
                items.append(f"{lo}-{hi}")
            else:
                items.append(lo)
        self.take()
        return "[" + ("^" if neg else "") + "".join(items) + "]"

    def _class_char(self) -> str:
        c = self.take()
        if c == "\\":
            if self.peek() is None:
                raise EsqlError(f"RLIKE pattern {self.s!r} ends with an escape")
            c = self.take()
        return re.escape(c) if c not in "-" else "\\-"


@functools.cache
def lucene(pattern: str) -> re.Pattern[str]:
    return re.compile(_Lucene(pattern).parse(), re.DOTALL)


def rlike(pattern: str, text: str) -> bool:
    return lucene(pattern).fullmatch(text) is not None


# ----------------------------------------------------------------------------- Java regex
@functools.cache
def java(pattern: str) -> re.Pattern[str]:
    """A java.util.regex pattern (REPLACE) as Python: inline flags (?s)/(?i) at the start,
    escapes and classes copied, `.` and `$` rewritten to Java's line-terminator rules. Nested
    classes, intersections and possessive/atomic constructs are refused."""
    flags = 0
    body = pattern
    m = re.match(r"\(\?([a-zA-Z]+)\)", body)
    if m:
        for f in m.group(1):
            if f == "s":
                flags |= re.DOTALL
            elif f == "i":
                flags |= re.IGNORECASE
            else:
                raise EsqlError(f"Java regex flag (?{f}) is not interpreted")
        body = body[m.end() :]
    out: list[str] = []
    i = 0
    in_class = False
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 >= len(body):
                raise EsqlError("Java regex ends with an escape")
            nxt = body[i + 1]
            if nxt in "QEpPhHvVRXGZzbB" or nxt.isdigit():
                raise EsqlError(f"Java regex escape \\{nxt} is not interpreted")
            out.append(c + nxt)
            i += 2
            continue
        if in_class:
            if c == "[" or body.startswith("&&", i):
                raise EsqlError("nested Java character classes are not interpreted")
            if c == "]":
                in_class = False
            out.append(c)
        elif c == "[":
            in_class = True
            out.append(c)
            if body.startswith("^]", i + 1) or body.startswith("]", i + 1):
                raise EsqlError("a Java class starting with ] is not interpreted")
        elif c == "." and not flags & re.DOTALL:
            out.append(f"[^{_JAVA_EOL}]")
        elif c == "$":
            out.append(f"(?=(?:\r\n|[{_JAVA_EOL}])?\\Z)")
        elif c in "+*?}" and i + 1 < len(body) and body[i + 1] == "+":
            raise EsqlError("possessive quantifiers are not interpreted")
        else:
            out.append(c)
        i += 1
    return re.compile("".join(out), flags)


def java_replace(text: str, pattern: str, replacement: str) -> str:
    """String.replaceAll: `$n` and `${name}` insert groups, `\\x` is a literal x."""
    parts: list[str | int] = []
    i = 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            parts.append(replacement[i + 1])
            i += 2
        elif c == "$":
            m = re.compile(r"\$(?:(\d)|\{([A-Za-z][A-Za-z0-9]*)\})").match(replacement, i)
            if m is None:
                raise EsqlError(f"illegal group reference in replacement {replacement!r}")
            if m.group(2):
                raise EsqlError("named group references are not interpreted")
            parts.append(int(m.group(1)))
            i = m.end()
        else:
            parts.append(c)
            i += 1
    rx = java(pattern)

    def expand(m: re.Match[str]) -> str:
        return "".join(p if isinstance(p, str) else (m.group(p) or "") for p in parts)

    return rx.sub(expand, text)
