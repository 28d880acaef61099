"""A test on the raw bytes of a JSON Lines record: can the analytics' entry condition hold?

``siemc run`` evaluates only the events some stream admits (compiler.evaluator
``Evaluation.admits``); in a typical log most events are rejected by the logsource alone. Deciding
that on the text, before the record is flattened, costs one or two case-insensitive searches of
the line. The sieve is *sound*: it answers False only for a line on which the condition cannot
hold, and True whenever it is not sure. Why a missing literal proves that:

* Only lines that are pure ASCII and hold neither ``\\u`` nor ``\\/`` are judged. In such a line
  every decoded string is ASCII, and every character of it is written in one way only: ``"``
  as ``\\"``, ``\\`` as ``\\\\``, the five short escapes for their control characters, and
  every other character as itself (:func:`encode`). So a string value ``x`` is the substring
  ``"`` + encode(x) + ``"`` of the line, and a substring of ``x`` is a substring of the line.
* ``str.lower`` of an ASCII string and ``bytes.lower`` agree, and lowering the line leaves its
  escapes as they are, so ``x.lower()`` is found, encoded, in the lowered line: a search that
  ignores ASCII case finds it in the line.
* Equality with a non-numeric string holds only for a string element equal to it case-insensitively
  (compiler.evaluator.predicates: numbers and booleans never equal such a string): the quoted
  literal must occur. ``contains``/``startswith``/``endswith`` read the text of numbers and
  booleans too; a number's text (``str``/``repr`` of an int or float) is made of the characters
  of :data:`_NUMBER_TEXT`, a boolean's is written as the line holds it, so a literal with
  another character occurs unquoted in the line whenever the operator holds.
* Everything else (numbers, nulls, regular expressions, networks, comparisons, ``exists``,
  lookups, negations, ``@timestamp``, which the ECS reader rewrites) proves nothing and is
  treated as possibly true.

Multi-valued fields, nested or dotted spellings of a field and duplicate keys do not matter: the
test looks for values, wherever they stand. It is applied only to ECS records (the other input
profiles rename and rewrite fields); tests/test_eval_pushdown.py checks it against the evaluator.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from compiler import ir
from compiler.evaluator.values import to_number

# The characters of the text of any number a JSON decoder gives (digits, sign, point,
# exponent, and "inf"/"nan" for the values the standard library reads from overflowing or
# NaN literals).
_NUMBER_TEXT = frozenset("0123456789+-.einfa")
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A literal of a clause: the bytes that must occur in the lowered line.
Clause = tuple[bytes, ...]  # at least one of them occurs
_UNTIMED = "@timestamp"  # the ECS reader rewrites a numeric @timestamp as text


def encode(text: str) -> bytes:
    """``text`` as a JSON string's body holds it when written without ``\\u`` and ``\\/``."""
    out = []
    for c in text:
        short = _SHORT.get(c)
        if short is not None:
            out.append(short)
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")  # never in a judged line (it has no \u)
        else:
            out.append(c)
    return "".join(out).encode("utf-8")


def clauses(p: ir.Predicate) -> list[Clause]:
    """Clauses that hold on the lowered line of every record satisfying ``p`` (an empty list:
    nothing is known)."""
    if isinstance(p, ir.And):
        return [c for item in p.items for c in clauses(item)]
    if isinstance(p, ir.Or):
        if not p.items:
            return [()]  # false: no line can satisfy it
        # (a1 and a2) or (b1 and b2) implies (a_i or b_j) for every i, j: the products, as long
        # as there are few of them
        out: list[Clause] = [()]
        for item in p.items:
            found = [c for c in clauses(item) if b"" not in c]
            if not found or len(out) * len(found) > _MAX_PRODUCT:
                found = [max(found, key=_strength)] if found else []
            if not found:
                return []
            out = [tuple(dict.fromkeys(a + b)) for a in out for b in found]
        return out
    if isinstance(p, ir.Eq):
        return _eq(p)
    if isinstance(p, ir.StrMatch):
        return _str_match(p)
    return []


_MAX_PRODUCT = 16


def _strength(c: Clause) -> tuple[int, int]:
    # Prefer the clause whose weakest literal is longest, then fewer alternatives.
    return (min((len(x) for x in c), default=1 << 30), -len(c))


def _plain_string(v: object) -> bool:
    return isinstance(v, str) and to_number(v) is None


def _eq(p: ir.Eq) -> list[Clause]:
    if p.field == _UNTIMED or any(not _plain_string(v) for v in p.values):
        return []  # a null, a number or a numeric string: equality by value
    quoted = [b'"' + encode(str(v).lower()) + b'"' for v in p.values]
    if p.quantifier == "all":
        return [(q,) for q in quoted]
    return [tuple(dict.fromkeys(quoted))]


def _str_match(p: ir.StrMatch) -> list[Clause]:
    if p.field == _UNTIMED:
        return []
    lits = [encode(v.lower()) for v in p.values]
    usable = [not set(v.lower()) <= _NUMBER_TEXT for v in p.values]
    if p.quantifier == "all":
        return [(lit,) for lit, ok in zip(lits, usable, strict=True) if ok]
    if not lits or not all(usable):
        return [] if lits else [()]
    return [tuple(dict.fromkeys(lits))]


class Sieve:
    """``sieve(raw)``: False only when no record written as the JSON line ``raw`` satisfies the
    predicate it was built from.

    Each clause is one case-insensitive search of the line (``re.IGNORECASE`` on bytes folds
    ASCII letters only, as ``bytes.lower`` does). The clauses are tried in the order that has
    rejected most lines so far, so a typical line is rejected after one search. Where the
    searches cost more than the rejections save (most lines pass: every clause is searched for
    nothing), the sieve stops searching and passes every line, trying again now and then; what
    it answers stays sound either way."""

    __slots__ = ("_lines", "_off", "_on", "_order", "_rejected", "_searches", "_wins")

    BLOCK = 1024  # lines between two decisions
    RETRY = 16  # blocks a sieve that did not pay stays off
    # A rejected line saves decoding its fields and evaluating it: about five searches' worth.
    PAYOFF = 5

    def __init__(self, clauses: Sequence[Clause]) -> None:
        self._order = [
            # an empty clause (a false condition) is a search that never finds anything
            re.compile(b"|".join(re.escape(lit) for lit in c) or b"(?!)", re.IGNORECASE).search
            for c in clauses
        ]
        self._rejected = dict.fromkeys(self._order, 0)
        self._lines = self._searches = self._wins = self._off = 0
        self._on = True

    def __call__(self, raw: bytes) -> bool:
        self._lines += 1
        if self._lines >= self.BLOCK:
            self._decide()
        if not self._on:
            return True
        for search in self._order:
            self._searches += 1
            if search(raw) is None:
                if raw.isascii() and not (b"\\" in raw and _ESCAPES(raw)):
                    self._rejected[search] += 1
                    self._wins += 1
                    return False
                return True
        return True

    def _decide(self) -> None:
        if self._on:
            self._on = self._wins * self.PAYOFF >= self._searches
            self._order.sort(key=self._rejected.__getitem__, reverse=True)
        else:
            self._off += 1
            self._on = self._off % self.RETRY == 0
        self._lines = self._searches = self._wins = 0


# the escapes that spell a character in another way than encode() does
_ESCAPES = re.compile(rb"\\[u/]").search


def sieve_for(p: ir.Predicate) -> Sieve | None:
    """The sieve of ``p``, or None when the text proves nothing about it."""
    found = [c for c in clauses(p) if b"" not in c]
    return Sieve(found) if found else None
