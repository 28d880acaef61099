"""Regular expressions in Sigma rules: one spelling Python's re (the evaluator's meaning, and
pySigma's sqlite backend's REGEXP here) and RE2 (pySigma validates `re` values with RE2 when
google-re2 is installed) both read, and the basename rewrite for names kept in path fields."""

from __future__ import annotations

import re
from dataclasses import dataclass
from re import _constants as _C  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

import re2  # type: ignore[import-untyped]

from backends.regex_re2 import Unsupported, to_re2

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


class RegexNotPortable(Exception):
    """No spelling reads the same in Python's re and RE2 (the message says why)."""


@dataclass(frozen=True)
class SigmaRegex:
    text: str
    notes: tuple[str, ...]  # how RE2 reads it differently from Python; empty: the same


def _re2_accepts(text: str) -> bool:
    try:
        re2.compile(text, _RE2_OPTIONS)
    except Exception:  # re2.error, and TypeError/ValueError on bad input
        return False
    return True


# RE2-only escapes of backends.regex_re2's output, and their Python spelling
_RE2_ONLY = re.compile(r"\\x\{([0-9A-F]+)\}|\\([pP])\{Nd\}|(\\n\?)?\\z")


def _pythonic(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            code = int(m.group(1), 16)
            return f"\\x{code:02x}" if code <= 0xFF else chr(code)
        if m.group(2) is not None:
            return "\\d" if m.group(2) == "p" else "\\D"
        return "$"  # Python has no \z before 3.14; its `$` also matches before a final newline

    return _RE2_ONLY.sub(repl, text)


def sigma_regex(pattern: str, cased: bool) -> SigmaRegex:
    """The pattern as a Sigma `re` value (the `|i` modifier carries case-insensitivity).

    A pattern RE2 accepts as written is kept as written: the evaluator's Python meaning is what
    the harness runs, and it reads as the author wrote it. Otherwise (verbose `(?x)`, comments,
    `\\Z`, `a{,3}` ...) backends.regex_re2 re-spells it by meaning, and the RE2-only escapes of
    that spelling are written in forms Python reads the same way."""
    if _re2_accepts(pattern):
        return SigmaRegex(pattern, ())
    try:
        r = to_re2(pattern, ignorecase=not cased)
    except Unsupported as exc:
        raise RegexNotPortable(str(exc)) from None
    text = r.text[4:] if r.text.startswith("(?i)") else r.text
    text = _pythonic(text)
    notes = list(r.approximations)
    if "\\d" in text or "\\D" in text:
        notes.append("RE2's \\d is ASCII, Python's also takes other scripts' decimal digits")
    if "\\z" in r.text:
        notes.append("RE2's `$` does not match before a final newline, Python's does")
    try:
        re.compile(text)
    except re.error as exc:
        raise RegexNotPortable(f"the re-spelled pattern {text!r} is not Python ({exc})") from None
    if not _re2_accepts(text):
        raise RegexNotPortable(f"RE2 rejects the re-spelled pattern {text!r}")
    return SigmaRegex(text, tuple(notes))


def basename_exact(pattern: str, separators: str) -> bool:
    """Whether ``^body$`` matched against a path with the leading ``^`` read as "start or after
    a separator" means the same as ``body`` matched against the path's last part: the pattern
    is anchored at both ends and nothing in ``body`` can match a separator, so the match cannot
    start before the last one."""
    if not pattern.startswith("^"):
        return False
    try:
        tree = list(_parser.parse(pattern, 0))
    except re.error:
        return False
    # `^a|b$` parses to one branch whose anchors bind to one alternative each: not anchored
    anchored = (
        len(tree) >= 2 and tree[0] == (_C.AT, _C.AT_BEGINNING) and tree[-1] == (_C.AT, _C.AT_END)
    )
    return anchored and not _can_match(tree[1:-1], separators)


def _can_match(tree: Any, chars: str) -> bool:
    for op, arg in tree:
        name = str(op)
        if name == "LITERAL":
            if chr(arg) in chars:
                return True
        elif name in ("ANY", "NOT_LITERAL"):
            return True
        elif name == "IN":
            if any(re.fullmatch(_class_text(arg), c) for c in chars):
                return True
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if _can_match(arg[2], chars):
                return True
        elif name == "SUBPATTERN":
            if _can_match(arg[3], chars):
                return True
        elif name == "BRANCH":
            if any(_can_match(b, chars) for b in arg[1]):
                return True
        elif name in ("AT",):
            continue
        else:
            return True  # anything else (categories outside a class, groups refs): assume it can
    return False


def _class_text(items: Any) -> str:
    """A character class equal to a parsed ``IN`` node, to test characters against."""
    parts: list[str] = []
    neg = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            neg = True
        elif name == "LITERAL":
            parts.append(re.escape(chr(arg)))
        elif name == "RANGE":
            parts.append(f"{re.escape(chr(arg[0]))}-{re.escape(chr(arg[1]))}")
        elif name == "CATEGORY":
            parts.append(_CATEGORIES[str(arg)])
        else:
            return "[\\s\\S]"  # unknown item: assume it can match anything
    return "[" + ("^" if neg else "") + "".join(parts) + "]"


_CATEGORIES = {
    "CATEGORY_DIGIT": "\\d",
    "CATEGORY_NOT_DIGIT": "\\D",
    "CATEGORY_SPACE": "\\s",
    "CATEGORY_NOT_SPACE": "\\S",
    "CATEGORY_WORD": "\\w",
    "CATEGORY_NOT_WORD": "\\W",
}
