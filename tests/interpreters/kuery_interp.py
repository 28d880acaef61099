"""A query interpreter for the queries of native Elastic rules: KQL (``language: kuery``) and the
Lucene ``query_string`` subset siemc writes (``language: lucene``), run over Elasticsearch-shaped
documents (``compiler.engines.run_esql.document``: fields typed by the ECS mapping, keyword values
as text, numbers coerced, ip addresses parsed, multi-values as lists of doc values).

No Elasticsearch runs offline. Each construct follows the vendor documentation; anything else is
rejected with :class:`QueryError`, never guessed:

* KQL syntax: Kibana's grammar (kbn-es-query ``kuery/grammar/grammar.peggy``): ``or`` < ``and`` <
  ``not`` (keywords in any case, surrounded by whitespace), parentheses, ``field: value``,
  ``field: (v1 or v2)``, ``field <op> value``; quoted strings escape ``\\`` and ``"`` (and
  ``\\t \\r \\n \\uXXXX``); unquoted values escape ``\\ ( ) : < > " * { }`` and keywords, ``*``
  is a wildcard (``field: *`` alone is ``exists``), ``true``/``false``/``null`` are literals.
  https://www.elastic.co/docs/explore-analyze/query-filter/languages/kql
* KQL meaning: kbn-es-query ``functions/is.ts``/``range.ts``: a value on a keyword field is a
  ``term`` query (exact, case-sensitive; the detection engine sets no ``caseInsensitive``,
  ``rule_types/utils/get_query_filter.ts``), a wildcard a ``wildcard`` query (case-sensitive
  ``*``), on other fields a ``match``/range; ``not`` is ``must_not`` (true without the field).
* Term-level queries on a multi-valued field match when one value does (Elasticsearch
  "Arrays": each value is indexed as a term).
  https://www.elastic.co/docs/reference/elasticsearch/mapping-reference/array
* ``term`` on an ``ip`` field takes an address or a CIDR network (Elasticsearch "IP field type:
  Querying ip fields"); on a numeric field the number (a value with a fraction matches no long).
* ``range`` with date math: ``now-1m/m``; rounding goes down for ``gte``/``lt`` and up (to the
  last millisecond of the unit) for ``gt``/``lte`` (Elasticsearch "Range query: date math and
  rounding"); UTC (the detection engine's ``dateFormatTZ: Zulu``).
  https://www.elastic.co/docs/reference/query-languages/query-dsl/query-dsl-range-query
* Lucene: ``AND``/``OR``/``NOT`` and parentheses as the classic QueryParser builds boolean
  queries (``addClause``: ``NOT`` prohibits its clause, so ``a OR NOT b`` means "a and not
  b"; ``AND`` requires both sides; default operator OR),
  ``field:"phrase"`` (one term on keyword fields: exact), ``field:/regexp/`` (Lucene RegExp over
  each whole term: ``.``, ``*``, ``+``, ``?``, ``{n,m}``, ``[...]`` classes, ``|``, groups,
  ``\\x`` escapes; ``#``, ``@``, ``&``, ``~``, ``<>`` are rejected), ``field:[a TO b}`` ranges,
  ``_exists_:field``, ``*:*``; a purely negative group matches every document but those
  (Elasticsearch adds ``match_all`` to a negative boolean query).
  https://www.elastic.co/docs/reference/query-languages/query-dsl/query-dsl-query-string-query
  https://www.elastic.co/docs/reference/query-languages/query-dsl/regexp-syntax
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
Pred = Callable[[Doc, int], bool]  # (document, now ms) -> match
KEYWORDS = frozenset({"keyword", "wildcard", "constant_keyword"})
NUMBERS = frozenset({"long", "integer", "short", "byte", "double", "float", "scaled_float"})


class QueryError(Exception):
    """A query outside the documented subset, or one Elasticsearch would reject."""


def values(doc: Doc, field: str) -> list[Any]:
    v = doc.get(field)
    if v is None:
        return []
    return [x for x in (v if isinstance(v, list) else [v]) if x is not None]


# ------------------------------------------------------------------------------ leaf tests
@dataclass(frozen=True)
class Leaf:
    kind: str  # term | wildcard | regexp | exists | range | all
    field: str
    value: str = ""
    op: str = ""  # range: gt gte lt lte


def _ms(v: Any) -> int:
    return int(v.ms) if hasattr(v, "ms") else int(v)


_DATE_MATH = re.compile(r"now((?:[+-]\d+[yMwdhHms])*)(?:/([yMwdhHms]))?")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "H": 3_600_000, "d": 86_400_000}


def date_math(text: str, now: int, op: str) -> int:
    """Elasticsearch date math (``now``, ``+``/``-`` whole units, ``/`` rounding, UTC) for one
    range bound; ISO 8601 dates too."""
    m = _DATE_MATH.fullmatch(text)
    if not m:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"not a date: {text!r}") from None
        return int(when.timestamp() * 1000)
    t = now
    for sign, n, unit in re.findall(r"([+-])(\d+)([yMwdhHms])", m.group(1)):
        if unit not in _UNIT_MS:
            raise QueryError(f"date math unit {unit} is outside this interpreter")
        t += (1 if sign == "+" else -1) * int(n) * _UNIT_MS[unit]
    if m.group(2):
        unit = m.group(2)
        if unit not in _UNIT_MS:
            raise QueryError(f"rounding to {unit} is outside this interpreter")
        size = _UNIT_MS[unit]
        t = t - t % size
        if op in ("gt", "lte"):
            t += size - 1  # rounds up to the unit's last millisecond
    return t


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _term_test(kind: str, value: str, field: str) -> Callable[[Any], bool]:
    if kind in KEYWORDS:
        return lambda x: x == value
    if kind in NUMBERS:
        n = _number(value)
        if n is None:
            raise QueryError(f"{field}: {value!r} is not a number (Elasticsearch rejects it)")
        return lambda x: float(x) == n
    if kind == "ip":
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise QueryError(f"{field}: {value!r} is not an address or network") from None
        return lambda x: x.version == net.version and x in net
    if kind == "boolean":
        if value not in ("true", "false"):
            raise QueryError(f"{field}: {value!r} is not a boolean")
        return lambda x: x is (value == "true")
    raise QueryError(f"{field}: term on a {kind} field is outside this interpreter")


def _range_test(kind: str, op: str, value: str, field: str) -> Callable[[Any, int], bool]:
    cmp: dict[str, Callable[[Any, Any], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    f = cmp[op]
    if kind in NUMBERS:
        n = _number(value)
        if n is None:
            raise QueryError(f"{field}: range bound {value!r} is not a number")
        return lambda x, now: f(float(x), n)
    if kind == "date":
        return lambda x, now: f(_ms(x), date_math(value, now, op))
    if kind in KEYWORDS:  # terms compare as UTF-8 bytes
        b = value.encode("utf-8")
        return lambda x, now: f(x.encode("utf-8"), b)
    raise QueryError(f"{field}: range on a {kind} field is outside this interpreter")


class Compiler:
    def __init__(self, types: dict[str, str]) -> None:
        self.types = types

    def kind(self, field: str) -> str:
        return "date" if field == "@timestamp" else self.types.get(field, "keyword")

    def leaf(self, lf: Leaf) -> Pred:
        if lf.kind == "all":
            return lambda d, now: True
        if lf.kind == "exists":
            return lambda d, now: bool(values(d, lf.field))
        kind = self.kind(lf.field)
        if lf.kind == "range":
            rt = _range_test(kind, lf.op, lf.value, lf.field)
            return lambda d, now: any(rt(x, now) for x in values(d, lf.field))
        if lf.kind == "wildcard":
            if kind not in KEYWORDS:
                raise QueryError(f"{lf.field}: wildcard on a {kind} field")
            parts = lf.value.split("\0")  # \0 marks the wildcard, other text is literal
            rx = re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)
            return lambda d, now: any(rx.fullmatch(x) for x in values(d, lf.field))
        if lf.kind == "regexp":
            if kind not in KEYWORDS:
                raise QueryError(f"{lf.field}: regexp on a {kind} field")
            rx = lucene_regexp(lf.value)
            return lambda d, now: any(rx.fullmatch(x) for x in values(d, lf.field))
        tt = _term_test(kind, lf.value, lf.field)
        return lambda d, now: any(tt(x) for x in values(d, lf.field))


def lucene_regexp(pattern: str) -> re.Pattern[str]:
    """Lucene RegExp (the operators siemc writes and the core ones) as a Python pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                raise QueryError("regexp ends with a backslash")
            nxt = pattern[i + 1]
            if nxt in "dDsSwW":  # Lucene 9's shorthand classes
                raise QueryError(f"regexp class \\{nxt} is outside this interpreter")
            out.append(re.escape(nxt))
            i += 2
            continue
        if c in "#@&~<>":
            raise QueryError(f"regexp operator {c} is outside this interpreter")
        if c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise QueryError("unterminated character class")
            body = pattern[i + 1 : j]
            if "\\" in body or body.startswith("^") or "-" in body:
                raise QueryError("character class features outside this interpreter")
            out.append("[" + "".join(re.escape(x) for x in body) + "]")
            i = j + 1
            continue
        if c == ".":
            out.append("(?s:.)")
        elif c in "*+?|(){},0123456789" or c.isalnum():
            out.append(c if c in "*+?|(){}," else re.escape(c))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


# ------------------------------------------------------------------------------ KQL parser
_KQL_SPECIAL = set('\\():<>"*{}')
_WS = " \t\r\n\u00a0"


class _KqlParser:
    """Recursive descent over Kibana's kuery grammar (no nested ``{}`` queries, no cursor)."""

    def __init__(self, text: str, c: Compiler) -> None:
        self.s, self.i, self.c = text, 0, c

    def error(self, msg: str) -> QueryError:
        return QueryError(f"KQL: {msg} at {self.i}: {self.s[self.i : self.i + 30]!r}")

    def ws(self) -> int:
        n = 0
        while self.i < len(self.s) and self.s[self.i] in _WS:
            self.i += 1
            n += 1
        return n

    def keyword(self, word: str, need_space_before: bool) -> bool:
        """``Space+ word Space+`` (or ``word Space+`` for ``not``), case-insensitive."""
        j = self.i
        if need_space_before:
            if j >= len(self.s) or self.s[j] not in _WS:
                return False
            while j < len(self.s) and self.s[j] in _WS:
                j += 1
        if self.s[j : j + len(word)].lower() != word:
            return False
        k = j + len(word)
        if k >= len(self.s) or self.s[k] not in _WS:
            return False
        while k < len(self.s) and self.s[k] in _WS:
            k += 1
        self.i = k
        return True

    def parse(self) -> Pred:
        self.ws()
        if self.i == len(self.s):
            return lambda d, now: True
        p = self.or_query(self.sub_query)
        self.ws()
        if self.i != len(self.s):
            raise self.error("trailing text")
        return p

    def or_query(self, sub: Callable[[], Pred]) -> Pred:
        items = [self.and_query(sub)]
        while self.keyword("or", True):
            items.append(self.and_query(sub))
        return items[0] if len(items) == 1 else (lambda d, n: any(p(d, n) for p in items))

    def and_query(self, sub: Callable[[], Pred]) -> Pred:
        items = [self.not_query(sub)]
        while self.keyword("and", True):
            items.append(self.not_query(sub))
        return items[0] if len(items) == 1 else (lambda d, n: all(p(d, n) for p in items))

    def not_query(self, sub: Callable[[], Pred]) -> Pred:
        if self.keyword("not", False):
            inner = sub()
            return lambda d, n: not inner(d, n)
        return sub()

    def sub_query(self) -> Pred:
        if self.s.startswith("(", self.i):
            self.i += 1
            self.ws()
            p = self.or_query(self.sub_query)
            self.ws()
            if not self.s.startswith(")", self.i):
                raise self.error("expected )")
            self.i += 1
            return p
        field, quoted, _ = self.literal()
        if quoted or "\0" in field:
            raise self.error("quoted or wildcard field names are outside this interpreter")
        self.ws()
        for sym, op in (("<=", "lte"), (">=", "gte"), ("<", "lt"), (">", "gt")):
            if self.s.startswith(sym, self.i):
                self.i += len(sym)
                self.ws()
                value, _, wild = self.literal()
                if wild:
                    raise self.error("a wildcard range bound")
                return self.c.leaf(Leaf("range", field, value, op))
        if not self.s.startswith(":", self.i):
            raise self.error("free text (a value without a field) is outside this interpreter")
        self.i += 1
        self.ws()
        if self.s.startswith("{", self.i):
            raise self.error("nested queries are outside this interpreter")
        return self.values(field)

    def values(self, field: str) -> Pred:
        if self.s.startswith("(", self.i):
            self.i += 1
            self.ws()
            p = self.or_query(lambda: self.values(field))
            self.ws()
            if not self.s.startswith(")", self.i):
                raise self.error("expected ) after a value list")
            self.i += 1
            return p
        value, quoted, wild = self.literal()
        if not quoted and value in ("null",):
            raise self.error("the null literal is outside this interpreter")
        if wild:
            if value == "\0":
                return self.c.leaf(Leaf("exists", field))
            return self.c.leaf(Leaf("wildcard", field, value))
        return self.c.leaf(Leaf("term", field, value))

    def literal(self) -> tuple[str, bool, bool]:
        """(text, quoted, has wildcard); wildcards are ``\\0`` in the text."""
        if self.s.startswith('"', self.i):
            self.i += 1
            out: list[str] = []
            while True:
                if self.i >= len(self.s):
                    raise self.error("unterminated string")
                ch = self.s[self.i]
                if ch == '"':
                    self.i += 1
                    return "".join(out), True, False
                if ch == "\\":
                    out.append(self.escape(quoted=True))
                    continue
                out.append(ch)
                self.i += 1
        out, wild = [], False
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\\":
                out.append(self.escape(quoted=False))
                continue
            if ch in _KQL_SPECIAL:
                if ch != "*":
                    break
                out.append("\0")
                wild = True
                self.i += 1
                continue
            if self._at_keyword():
                break
            out.append(ch)
            self.i += 1
        text = "".join(out).strip(_WS)
        if not text:
            raise self.error("expected a value")
        return text, False, wild

    def _at_keyword(self) -> bool:
        rest = self.s[self.i :]
        return bool(re.match(r"[ \t\r\n\u00a0](or|and)[ \t\r\n\u00a0]", rest, re.I)) or bool(
            re.match(r"not[ \t\r\n\u00a0]", rest, re.I)
        )

    def escape(self, quoted: bool) -> str:
        s, i = self.s, self.i
        nxt = s[i + 1 : i + 2]
        if nxt in ("t", "r", "n"):
            self.i += 2
            return {"t": "\t", "r": "\r", "n": "\n"}[nxt]
        if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[i + 2 : i + 6]):
            self.i += 6
            return chr(int(s[i + 2 : i + 6], 16))
        if quoted and nxt in ('"', "\\"):
            self.i += 2
            return nxt
        if not quoted and nxt in _KQL_SPECIAL:
            self.i += 2
            return nxt
        if not quoted:
            for kw in ("or", "and", "not"):
                if s[i + 1 : i + 1 + len(kw)].lower() == kw:
                    self.i += 1 + len(kw)
                    return s[i + 1 : i + 1 + len(kw)]
        raise self.error("invalid escape")


def parse_kuery(text: str, types: dict[str, str]) -> Pred:
    return _KqlParser(text, Compiler(types)).parse()


# --------------------------------------------------------------------------- Lucene parser
class _LuceneParser:
    def __init__(self, text: str, c: Compiler) -> None:
        self.s, self.i, self.c = text, 0, c

    def error(self, msg: str) -> QueryError:
        return QueryError(f"Lucene: {msg} at {self.i}: {self.s[self.i : self.i + 30]!r}")

    def skip(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def word(self, w: str) -> bool:
        self.skip()
        if self.s.startswith(w, self.i) and self.s[self.i + len(w) : self.i + len(w) + 1] in (
            " ",
            "(",
        ):
            self.i += len(w)
            return True
        return False

    def parse(self) -> Pred:
        p = self.group()
        self.skip()
        if self.i != len(self.s):
            raise self.error("trailing text")
        return p

    def group(self) -> Pred:
        """One boolean group as Lucene's classic QueryParser builds it (``addClause``, default
        operator OR): ``AND`` makes the previous clause and this one required unless
        prohibited, ``NOT`` prohibits its clause, other clauses are optional. A document
        matches when it matches every required clause, no prohibited one, and, without
        required clauses, some optional one; a group of only prohibited clauses matches every
        other document (Elasticsearch's ``fixNegativeQueryIfNeeded`` adds ``match_all``)."""
        clauses: list[list[Any]] = []  # [occur, predicate]
        conj = ""
        while True:
            prohibited = self.word("NOT")
            q = self.atom()
            if clauses and conj == "AND" and clauses[-1][0] != "must_not":
                clauses[-1][0] = "must"
            occur = "must_not" if prohibited else ("must" if conj == "AND" else "should")
            clauses.append([occur, q])
            if self.word("AND"):
                conj = "AND"
            elif self.word("OR"):
                conj = "OR"
            else:
                self.skip()
                if self.i >= len(self.s) or self.s[self.i] == ")":
                    break
                conj = ""  # adjacent clauses: the default operator, OR
        if len(clauses) == 1 and clauses[0][0] != "must_not":
            only: Pred = clauses[0][1]
            return only
        must = [q for o, q in clauses if o == "must"]
        should = [q for o, q in clauses if o == "should"]
        must_not = [q for o, q in clauses if o == "must_not"]

        def match(d: Doc, n: int) -> bool:
            if any(q(d, n) for q in must_not) or not all(q(d, n) for q in must):
                return False
            return bool(must) or not should or any(q(d, n) for q in should)

        return match

    def atom(self) -> Pred:
        self.skip()
        if self.s.startswith("(", self.i):
            self.i += 1
            p = self.group()
            self.skip()
            if not self.s.startswith(")", self.i):
                raise self.error("expected )")
            self.i += 1
            return p
        if self.s.startswith("*:*", self.i):
            self.i += 3
            return self.c.leaf(Leaf("all", ""))
        m = re.compile(r"([@A-Za-z_][A-Za-z0-9_.@]*):").match(self.s, self.i)
        if not m:
            raise self.error("expected field:value")
        field = m.group(1)
        self.i = m.end()
        if field == "_exists_":
            m2 = re.compile(r"[@A-Za-z_][A-Za-z0-9_.@]*").match(self.s, self.i)
            if not m2:
                raise self.error("expected a field name after _exists_:")
            self.i = m2.end()
            return self.c.leaf(Leaf("exists", m2.group(0)))
        ch = self.s[self.i : self.i + 1]
        if ch == '"':
            return self.c.leaf(Leaf("term", field, self.quoted()))
        if ch == "/":
            j, out = self.i + 1, []
            while j < len(self.s) and self.s[j] != "/":
                if self.s[j] == "\\" and j + 1 < len(self.s):
                    out.append(self.s[j : j + 2])
                    j += 2
                    continue
                out.append(self.s[j])
                j += 1
            if j >= len(self.s):
                raise self.error("unterminated regexp")
            self.i = j + 1
            return self.c.leaf(Leaf("regexp", field, "".join(out)))
        if ch in ("[", "{"):
            return self.range(field)
        m3 = re.compile(r"[0-9.]+").match(self.s, self.i)
        if m3 and _number(m3.group(0)) is not None:
            self.i = m3.end()
            return self.c.leaf(Leaf("term", field, m3.group(0)))
        raise self.error("unquoted terms other than numbers are outside this interpreter")

    def quoted(self) -> str:
        self.i += 1
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise self.error("unterminated phrase")
            ch = self.s[self.i]
            if ch == '"':
                self.i += 1
                return "".join(out)
            if ch == "\\":
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            out.append(ch)
            self.i += 1

    def bound(self) -> str | None:
        self.skip()
        if self.s.startswith('"', self.i):
            return self.quoted()
        m = re.compile(r"[^\s\]}]+").match(self.s, self.i)
        if not m:
            raise self.error("expected a range bound")
        self.i = m.end()
        return None if m.group(0) == "*" else m.group(0)

    def range(self, field: str) -> Pred:
        lo_incl = self.s[self.i] == "["
        self.i += 1
        lo = self.bound()
        self.skip()
        if not self.s.startswith("TO", self.i):
            raise self.error("expected TO")
        self.i += 2
        hi = self.bound()
        self.skip()
        close = self.s[self.i : self.i + 1]
        if close not in ("]", "}"):
            raise self.error("expected ] or }")
        self.i += 1
        preds = []
        if lo is not None:
            preds.append(self.c.leaf(Leaf("range", field, lo, "gte" if lo_incl else "gt")))
        if hi is not None:
            preds.append(self.c.leaf(Leaf("range", field, hi, "lte" if close == "]" else "lt")))
        if len(preds) == 1:
            return preds[0]
        # both bounds hold for one value of the field
        kind = self.c.kind(field)
        tests = [
            _range_test(kind, "gte" if lo_incl else "gt", lo or "", field),
            _range_test(kind, "lte" if close == "]" else "lt", hi or "", field),
        ]
        return lambda d, n: any(all(t(x, n) for t in tests) for x in values(d, field))


def parse_lucene(text: str, types: dict[str, str]) -> Pred:
    return _LuceneParser(text, Compiler(types)).parse()


def parse(language: str, text: str, types: dict[str, str]) -> Pred:
    if language == "kuery":
        return parse_kuery(text, types)
    if language == "lucene":
        return parse_lucene(text, types)
    raise QueryError(f"language {language!r}")


def index_matches(index_name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(index_name, p) for p in patterns)
