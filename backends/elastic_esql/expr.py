"""ES|QL text for siemc predicates and expressions: escaping, case and null rules, regex.

The pipeline around these pieces (FROM, LOOKUP JOIN, STATS, KEEP) lives in
:mod:`backends.elastic_esql`. Every value reaches the query through :func:`string` (string
literals), :func:`like_pattern` (LIKE wildcards) or :func:`lucene_regex` (RLIKE), never raw.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from backends.base import CompileError, Context
from backends.elastic_esql.regex import RegexError, lucene_regex
from backends.profiles import HERE as PROFILES_DIR
from backends.registered_domain import ECS_REGISTERED_DOMAIN, LABEL_CUT, ingest_source
from compiler import ir

NUMERIC = frozenset({"long", "integer", "double"})
STRINGS = frozenset({"keyword", "wildcard", "text"})

# ES|QL string literals know exactly these escapes (grammar: ESCAPE_SEQUENCE '\\' [tnr"\\]);
# any other character, unicode included, is written as itself.
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# LIKE wildcards are * and ?, escaped with a backslash
# (https://www.elastic.co/docs/reference/query-languages/esql/functions-operators/operators#esql-like).
_LIKE_SPECIAL = frozenset("\\*?")
_IDENT = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*|[_@][A-Za-z0-9_]+)$")


def string(value: str) -> str:
    return '"' + "".join(_STRING_ESCAPES.get(c, c) for c in value) + '"'


# The words ES|QL's lexer reads as keywords inside commands' expressions, case-insensitively
# (found by parsing `EVAL w = 1 | WHERE w >= 1 AND a.w IS NULL | STATS w = COUNT(*) BY w | SORT w
# | KEEP w | DROP w` for every literal word of detection-rules-esql-py's EsqlBaseLexer, stacks 8.19
# to 9.5; command names such as `registered_domain` are keywords only where a command starts),
# plus AS (RENAME): a field or measure segment spelled like one is back-quoted.
_KEYWORD_TEXT = """
    and as asc by desc false first in is last like not null nulls on or rlike true where with
    """
KEYWORDS = frozenset(_KEYWORD_TEXT.split())


def ident(name: str) -> str:
    """A column name: dotted ECS names of plain, non-keyword segments are written bare; any other
    name is back-quoted whole with backticks doubled, ES|QL's quoting of identifiers
    (https://www.elastic.co/docs/reference/query-languages/esql/esql-syntax#esql-identifiers;
    `` `a.b` `` names the same column as ``a.b``). A `*` inside backticks is still a wildcard in
    KEEP/DROP patterns, which is why the identifier grammar of `siemc check` has no `*`."""
    parts = name.split(".")
    if all(_IDENT.match(p) and p.lower() not in KEYWORDS for p in parts):
        return name
    return "`" + name.replace("`", "``") + "`"


def number(value: float | int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(value)


def like_pattern(value: str, prefix: bool, suffix: bool) -> str:
    body = "".join("\\" + c if c in _LIKE_SPECIAL else c for c in value)
    return string(("*" if prefix else "") + body + ("*" if suffix else ""))


def as_number(value: ir.Scalar) -> float | int | None:
    """The number a value spells by the evaluator's rule (decimal literals, blanks ignored)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    text = value.strip()
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
        return None
    f = float(text)
    if not math.isfinite(f):
        return None
    return int(f) if re.fullmatch(r"[+-]?\d+", text) else f


# ---------------------------------------------------------------------- profile facts
@functools.cache
def _profile_doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((PROFILES_DIR / f"{name}.yml").read_text("utf-8"))
    return doc


def profile_types(profile: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (_profile_doc(profile).get("types") or {}).items()}


def declared_type(profile: str, field: str) -> str | None:
    """The mapping type the profile states for ``field`` (a ``prefix.*`` key covers every field
    under the prefix), or None when it states none."""
    types = profile_types(profile)
    if field in types:
        return types[field]
    parts = field.split(".")
    for i in range(len(parts) - 1, 0, -1):
        hit = types.get(".".join(parts[:i]) + ".*")
        if hit is not None:
            return hit
    return None


def profile_arrays(profile: str) -> frozenset[str]:
    return frozenset(str(x) for x in _profile_doc(profile).get("array_fields") or [])


# ---------------------------------------------------------------------- rendering state
@dataclass
class Renderer:
    """Renders predicates and expressions of one analytic; ``types`` holds column types."""

    ctx: Context
    types: dict[str, str]
    arrays: frozenset[str]
    lookup_columns: dict[int, str] = field(default_factory=dict)  # id(InLookup) -> bool column
    hoisted: list[tuple[str, str]] = field(default_factory=list)  # helper EVAL assignments
    mv_contains: bool = True  # the stack has MV_CONTAINS (9.2+)
    _counter: int = 0

    # ------------------------------------------------------------------ fields
    def col(self, name: str, span: ir.Span) -> str:
        return ident(self.ctx.field(name, span))

    def kind(self, name: str) -> str:
        return self.types.get(name, "keyword")

    def text_of(self, name: str, span: ir.Span) -> str:
        """The field as a string, as the evaluator reads its text."""
        c = self.col(name, span)
        return c if self.kind(name) in STRINGS else f"TO_STRING({c})"

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"siemc_{stem}_{self._counter}"

    def _mv(self, name: str, span: ir.Span, construct: str) -> None:
        if name in self.arrays:
            self.ctx.approximate(
                construct,
                f"'{name}' is multi-valued in ECS; ES|QL evaluates {construct} on a "
                "multi-valued column to null (false) where siemc holds it when any value does",
                span,
            )

    # ------------------------------------------------------------------ predicates
    def where(self, p: ir.Predicate) -> list[str]:
        """Top-level conjuncts of a filter (the WHERE lines)."""
        if isinstance(p, ir.And):
            out: list[str] = []
            for x in p.items:
                out += self.where(x)
            return out
        return [self.pred(p)]

    def pred(self, p: ir.Predicate, neg: bool = False) -> str:
        # Negation is pushed down to the atoms (De Morgan) and every negated atom is made true
        # on a missing field, because ES|QL's NOT(null) is null (false) while siemc's `not`
        # holds there. Positive atoms may stay null: in a negation-free formula a null behaves
        # as false, exactly as siemc's missing-field rule.
        if isinstance(p, ir.And | ir.Or):
            if not p.items:
                return "true" if isinstance(p, ir.And) != neg else "false"
            conj = isinstance(p, ir.And) != neg
            parts = [self.pred(x, neg) for x in p.items]
            if len(parts) == 1:
                return parts[0]
            return "(" + (" AND " if conj else " OR ").join(parts) + ")"
        if isinstance(p, ir.Not):
            return self.pred(p.item, not neg)
        method: Callable[[Any, bool], str] = getattr(self, f"p_{type(p).__name__}")
        return method(p, neg)

    def _negate(self, text: str, fld: str | None) -> str:
        if fld is None:
            return f"NOT {text}"
        return f"({fld} IS NULL OR NOT {text})"

    def _combine(self, parts: list[str], quantifier: str) -> str:
        if len(parts) == 1:
            return parts[0]
        return "(" + (" OR " if quantifier == "any" else " AND ").join(parts) + ")"

    def p_Exists(self, p: ir.Exists, neg: bool) -> str:
        c = self.col(p.field, p.span)
        return f"{c} IS NOT NULL" if p.present != neg else f"{c} IS NULL"

    def p_Eq(self, p: ir.Eq, neg: bool) -> str:
        c = self.col(p.field, p.span)
        has_null = any(v is None for v in p.values)
        values = [v for v in p.values if v is not None]
        pairs = self._eq_parts(p, c, values) if values else []
        if has_null and p.quantifier == "all" and values:
            pairs = [("false", "true")]  # no field is both missing and equal to a value
            has_null = False
        any_ = p.quantifier == "any"
        pos = self._combine([x for x, _ in pairs], p.quantifier) if pairs else ""
        negs = self._combine([y for _, y in pairs], "all" if any_ else "any") if pairs else ""
        if has_null:
            if not pairs:
                return f"{c} IS NOT NULL" if neg else f"{c} IS NULL"
            return f"({c} IS NOT NULL AND {negs})" if neg else f"({c} IS NULL OR {pos})"
        if not neg:
            return pos
        if negs in ("true", "false"):
            return negs
        return f"({c} IS NULL OR {negs})"

    def _eq_parts(self, p: ir.Eq, c: str, values: Sequence[ir.Scalar]) -> list[tuple[str, str]]:
        """(positive, negated-when-present) text of each equality test."""
        kind = self.kind(p.field)
        array = p.field in self.arrays
        any_ = p.quantifier == "any"

        def tests(lhs: str, lits: list[str]) -> list[tuple[str, str]]:
            if array and not self.mv_contains:
                self.ctx.approximate(
                    "equality on an array field",
                    f"'{p.field}' is multi-valued in ECS and this stack has no MV_CONTAINS "
                    "(9.2+): == and != on a multi-valued column are null, so an event whose "
                    "array holds several values passes neither the test nor its negation",
                    p.span,
                )
            elif array:
                return [(f"MV_CONTAINS({lhs}, {x})", f"NOT MV_CONTAINS({lhs}, {x})") for x in lits]
            if len(lits) > 1 and any_:
                joined = ", ".join(lits)
                return [(f"{lhs} IN ({joined})", f"{lhs} NOT IN ({joined})")]
            return [(f"{lhs} == {x}", f"{lhs} != {x}") for x in lits]

        if kind in NUMERIC or kind in ("boolean", "ip"):
            lits = [x for x in (self._typed_literal(kind, v) for v in values) if x is not None]
            if not lits:
                return [("false", "true")]  # e.g. a non-numeric string never equals a number
            return tests(c, lits)
        # keyword: numbers (and numeric strings) compare numerically, other strings by text
        nums = [as_number(v) for v in values]
        out: list[tuple[str, str]] = []
        numbers = [n for n in nums if n is not None]
        if numbers:
            self.ctx.approximate(
                "numeric equality on a keyword field",
                f"'{p.field}' is a keyword field: TO_DOUBLE parses its text as Java does "
                "(also NaN and Infinity), where siemc accepts decimal literals only",
                p.span,
            )
            out += tests(f"TO_DOUBLE({c})", [number(n) for n in numbers])
        texts: list[str] = []
        for v, n in zip(values, nums, strict=True):
            if n is not None:
                continue
            if isinstance(v, bool):
                self.ctx.approximate(
                    "boolean equality on a keyword field",
                    f"'{p.field}' is a keyword field: compared with the text "
                    f"'{str(v).lower()}'; siemc never equates a boolean and a string",
                    p.span,
                )
            texts.append(str(v).lower() if isinstance(v, bool) else str(v))
        if texts:
            lhs = c if p.cased else f"TO_LOWER({c})"
            out += tests(lhs, [string(t if p.cased else t.lower()) for t in texts])
        return out

    def _typed_literal(self, kind: str, v: ir.Scalar) -> str | None:
        if kind == "boolean":
            return ("true" if v else "false") if isinstance(v, bool) else None
        if kind == "ip":
            if not isinstance(v, str):
                return None
            try:
                ipaddress.ip_address(v.strip())
            except ValueError:
                return None
            return f"TO_IP({string(v.strip())})"
        n = as_number(v)
        return None if n is None else number(n)

    def p_StrMatch(self, p: ir.StrMatch, neg: bool) -> str:
        self._mv(p.field, p.span, f"'{p.op}' match")
        c = self.col(p.field, p.span)
        s = self.text_of(p.field, p.span)
        parts: list[str] = []
        for v in p.values:
            if p.cased and p.op == "startswith":
                parts.append(f"STARTS_WITH({s}, {string(v)})")
            elif p.cased and p.op == "endswith":
                parts.append(f"ENDS_WITH({s}, {string(v)})")
            else:
                lhs = s if p.cased else f"TO_LOWER({s})"
                pat = like_pattern(
                    v if p.cased else v.lower(), p.op != "startswith", p.op != "endswith"
                )
                parts.append(f"{lhs} LIKE {pat}")
        if not p.cased and p.quantifier == "any" and len(parts) > 1:
            # LIKE takes a list of patterns (any of them)
            lhs = parts[0].split(" LIKE ", 1)[0]
            parts = [f"{lhs} LIKE ({', '.join(x.split(' LIKE ', 1)[1] for x in parts)})"]
        text = self._combine(parts, p.quantifier)
        return self._negate(text, c) if neg else text

    def p_Regex(self, p: ir.Regex, neg: bool) -> str:
        self._mv(p.field, p.span, "regular expression")
        c = self.col(p.field, p.span)
        s = self.text_of(p.field, p.span)
        lhs = s if p.cased else f"TO_LOWER({s})"
        parts = []
        for pat in p.patterns:
            try:
                parts.append(f"{lhs} RLIKE {string(lucene_regex(pat, not p.cased))}")
            except (RegexError, re.error) as exc:
                raise self.ctx.unsupported(
                    "regular expression",
                    f"'{pat}': {exc} (RLIKE takes Lucene regular expressions)",
                    p.span,
                    "rewrite the pattern without that construct, or compile to kql or splunk",
                ) from None
        text = self._combine(parts, p.quantifier)
        return self._negate(text, c) if neg else text

    def p_Compare(self, p: ir.Compare, neg: bool) -> str:
        c = self.col(p.field, p.span)
        op = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[p.op]
        kind = self.kind(p.field)
        if p.field in self.arrays and (kind in NUMERIC or kind in STRINGS):
            return self._compare_values(p, c, op, kind, neg)
        if kind in NUMERIC:
            text = f"{c} {op} {number(p.value)}"
        elif kind in STRINGS:
            self.ctx.approximate(
                "numeric comparison on a keyword field",
                f"'{p.field}' is a keyword field: TO_DOUBLE parses its text as Java does "
                "(also NaN and Infinity), where siemc accepts decimal literals only",
                p.span,
            )
            text = f"TO_DOUBLE({c}) {op} {number(p.value)}"
        else:
            text = "false"  # siemc: a non-numeric value (ip, date, boolean) compares false
            return "true" if neg else text
        if neg:
            inv = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}[op]
            return f"({c} IS NULL OR {text.replace(f' {op} ', f' {inv} ', 1)})"
        return text

    def _compare_values(self, p: ir.Compare, c: str, op: str, kind: str, neg: bool) -> str:
        """Some value of a multi-valued field passes the bound exactly when its largest (for
        > and >=) or smallest (< <=) value does: MV_MAX / MV_MIN, because a comparison with a
        multi-valued column is null (https://www.elastic.co/docs/reference/query-languages/
        esql/esql-multivalued-fields). Negated: no value passes; MV_MAX of no value is null."""
        x = c
        if kind in STRINGS:
            self.ctx.approximate(
                "numeric comparison on a keyword field",
                f"'{p.field}' is a keyword field: TO_DOUBLE parses its text as Java does "
                "(also NaN and Infinity), where siemc accepts decimal literals only",
                p.span,
            )
            x = f"TO_DOUBLE({c})"
        pick = "MV_MAX" if op in (">", ">=") else "MV_MIN"
        text = f"{pick}({x}) {op} {number(p.value)}"
        return f"NOT COALESCE({text}, false)" if neg else text

    def mv_expr(self, e: ir.Expr) -> bool:
        """Whether an expression may hold several values: an ECS array field (or a column
        derived from one) and TO_LOWER/TO_UPPER/COALESCE of one, which keep every value."""
        if isinstance(e, ir.FieldRef):
            return e.step is None and e.name in self.arrays
        if isinstance(e, ir.Call) and e.func in ("lower", "upper", "coalesce"):
            return any(self.mv_expr(a) for a in e.args)
        return False

    def _mv_operands(self, construct: str, operands: Sequence[ir.Expr], span: ir.Span) -> None:
        for a in operands:
            if self.mv_expr(a):
                self.ctx.approximate(
                    construct,
                    "an operand is multi-valued in ECS: ES|QL evaluates it to null on several "
                    "values and reads a one-value list as that value, where siemc maps string "
                    "functions over every value, compares when some value does and treats any "
                    "list as a non-number",
                    span,
                )
                return

    def p_Cidr(self, p: ir.Cidr, neg: bool) -> str:
        self._mv(p.field, p.span, "CIDR match")
        c = self.col(p.field, p.span)
        ip = c if self.kind(p.field) == "ip" else f"TO_IP({c})"
        nets = [ipaddress.ip_network(n.strip(), strict=False) for n in p.networks]
        mapped = ipaddress.ip_network("::ffff:0:0/96")
        for n in nets:
            if isinstance(n, ipaddress.IPv6Network) and n.overlaps(mapped):
                self.ctx.approximate(
                    "CIDR match",
                    f"{n} covers IPv4-mapped addresses, which Elasticsearch stores as IPv4: "
                    "IPv4 events may match it, where siemc never puts IPv4 in an IPv6 network",
                    p.span,
                )
        lits = [string(str(n)) for n in nets]
        if p.quantifier == "any":
            text = f"CIDR_MATCH({ip}, {', '.join(lits)})"
        else:
            text = self._combine([f"CIDR_MATCH({ip}, {x})" for x in lits], "all")
        return self._negate(text, c) if neg else text

    def p_InLookup(self, p: ir.InLookup, neg: bool) -> str:
        colname = self.lookup_columns[id(p)]  # never null: computed as `siemc_row IS NOT NULL`
        return f"NOT {colname}" if neg else colname

    # ------------------------------------------------------------------ expressions
    def expr(self, e: ir.Expr) -> tuple[str, str]:
        """(text, type) of an expression; types: keyword, long, integer, double, boolean,
        ip, date, null."""
        method: Callable[[Any], tuple[str, str]] = getattr(self, f"e_{type(e).__name__}")
        return method(e)

    def e_Literal_(self, e: ir.Literal_) -> tuple[str, str]:
        v = e.value
        if v is None:
            return "null", "null"
        if isinstance(v, bool):
            return ("true" if v else "false"), "boolean"
        if isinstance(v, int):
            return str(v), "integer" if abs(v) < 2**31 else "long"
        if isinstance(v, float):
            if not math.isfinite(v):
                return "null", "null"
            return (
                (number(v), "integer")
                if v.is_integer() and abs(v) < 2**31
                else (
                    repr(v),
                    "double",
                )
            )
        return string(v), "keyword"

    def e_FieldRef(self, e: ir.FieldRef) -> tuple[str, str]:
        if e.step is not None:
            raise self.ctx.not_implemented("step-qualified field reference", e.span)
        return self.col(e.name, e.span), self.kind(e.name)

    def e_MeasureRef(self, e: ir.MeasureRef) -> tuple[str, str]:
        return ident(e.name), self.types.get("\0measure:" + e.name, "double")

    def e_UnaryOp(self, e: ir.UnaryOp) -> tuple[str, str]:
        self._mv_operands(f"unary {e.op}", (e.operand,), e.span)
        text, kind = self.expr(e.operand)
        if e.op == "-":
            return (f"-({text})", kind) if kind in NUMERIC else ("null", "null")
        return f"NOT {self.truthy(text, kind)}", "boolean"

    def truthy(self, text: str, kind: str) -> str:
        """A never-null boolean: siemc's `not`, `and`, `or` are two-valued."""
        if kind == "boolean":
            return f"COALESCE({text}, false)"
        if kind in NUMERIC:
            return f"COALESCE({text} != 0, false)"
        if kind in STRINGS:
            return f'COALESCE({text} != "", false)'
        return f"({text} IS NOT NULL)"

    def e_BinOp(self, e: ir.BinOp) -> tuple[str, str]:
        self._mv_operands(f"operator {e.op}", (e.left, e.right), e.span)
        lt, lk = self.expr(e.left)
        rt, rk = self.expr(e.right)
        if e.op in ("and", "or"):
            if lk == "boolean" and rk == "boolean":
                return f"({lt} {e.op.upper()} {rt})", "boolean"
            return f"({self.truthy(lt, lk)} {e.op.upper()} {self.truthy(rt, rk)})", "boolean"
        if e.op in ("+", "-", "*", "/"):
            if "null" in (lk, rk):
                return "null", "null"
            lt, lk = self._numeric(lt, lk)
            rt, rk = self._numeric(rt, rk)
            if e.op == "/":
                # siemc: `/` is true division and null on a zero denominator; ES|QL divides
                # integers integrally and fails on / 0, hence TO_DOUBLE and the CASE.
                if rt == "0":
                    return "null", "null"
                num = lt if lk == "double" else f"TO_DOUBLE({lt})"
                if isinstance(e.right, ir.Literal_):
                    return f"{num} / {rt}", "double"
                return f"CASE({rt} == 0, null, {num} / {rt})", "double"
            kind = "double" if "double" in (lk, rk) else "long" if "long" in (lk, rk) else "integer"
            return f"({lt} {e.op} {rt})", kind
        # comparisons: null on either side is false in siemc
        if "null" in (lk, rk):
            return "false", "boolean"
        op = e.op
        if lk in STRINGS and rk in STRINGS:
            lt, rt = self._lower(lt), self._lower(rt)
        elif (lk in STRINGS) != (rk in STRINGS) and (lk in NUMERIC or rk in NUMERIC):
            lt, lk = self._numeric(lt, lk)
            rt, rk = self._numeric(rt, rk)
        return f"{lt} {op} {rt}", "boolean"

    def _lower(self, text: str) -> str:
        if text.startswith('"'):
            inner = text  # a literal: lower-case its characters, escapes are lower-case already
            return inner.lower()
        return f"TO_LOWER({text})"

    def _numeric(self, text: str, kind: str) -> tuple[str, str]:
        if kind in NUMERIC:
            return text, kind
        return f"TO_DOUBLE({text})", "double"

    def _unify(self, args: list[tuple[str, str]]) -> list[tuple[str, str]]:
        kinds = {k for _, k in args if k != "null"}
        if len(kinds) <= 1:
            return args
        if kinds <= NUMERIC:
            target = "double" if "double" in kinds else "long"
            fn = "TO_DOUBLE" if target == "double" else "TO_LONG"
            return [(t if k in (target, "null") else f"{fn}({t})", target) for t, k in args]
        if kinds <= STRINGS:
            return args
        return [
            (t if k in STRINGS or k == "null" else f"TO_STRING({t})", "keyword") for t, k in args
        ]

    def e_Call(self, e: ir.Call) -> tuple[str, str]:
        f = e.func
        if f not in ("lower", "upper", "coalesce"):  # these keep every value (TO_LOWER: 9.1+)
            self._mv_operands(f"function {f}()", e.args, e.span)
        args = [self.expr(a) for a in e.args]
        if f in ("lower", "upper"):
            t, k = args[0]
            return (f"TO_{f.upper()}({t})", "keyword") if k in STRINGS else (t, k)
        if f == "basename":
            t, k = args[0]
            if k not in STRINGS:
                t = f"TO_STRING({t})"
            # Java regex: (?s) so a newline in a path does not stop `.*`
            return f'REPLACE({t}, {string("(?s)^.*[/\\\\]")}, "")', "keyword"
        if f == "registered_domain":
            src = ingest_source(e.args[0])
            if src is not None and self.ctx.profile.name == "ecs":
                return self.col(ECS_REGISTERED_DOMAIN[src], e.span), "keyword"
            return self._registered_domain(args[0], e.span), "keyword"
        if f == "coalesce":
            args = self._unify(args)
            kind = next((k for _, k in args if k != "null"), "null")
            return f"COALESCE({', '.join(t for t, _ in args)})", kind
        if f in ("max", "min"):
            # siemc ignores null arguments (null only if all are); GREATEST/LEAST return null
            # as soon as one argument is null: rotate COALESCEs so each slot is non-null.
            args = self._unify([self._numeric(t, k) if k != "null" else (t, k) for t, k in args])
            fn = "GREATEST" if f == "max" else "LEAST"
            texts = [t for t, _ in args]
            if len(texts) == 1:
                return texts[0], args[0][1]
            slots = [f"COALESCE({', '.join(texts[i:] + texts[:i])})" for i in range(len(texts))]
            return f"{fn}({', '.join(slots)})", args[0][1]
        if f == "abs":
            t, k = self._numeric(*args[0]) if args[0][1] != "null" else args[0]
            return f"ABS({t})", k
        if f == "extract_ips":
            raise self.ctx.unsupported(
                "function extract_ips()",
                "ES|QL has no function that returns every regular-expression match of a string "
                "as a multi-value (GROK and DISSECT extract one occurrence)",
                e.span,
                "compile to kql (extract_all) or splunk (rex max_match=0)",
            )
        raise self.ctx.not_implemented(f"function {f}()", e.span)

    def _registered_domain(self, arg: tuple[str, str], span: ir.Span) -> str:
        self.ctx.approximate("registered_domain()", LABEL_CUT % "ES|QL", span)
        t, k = arg
        if k not in STRINGS:
            t = f"TO_STRING({t})"
        tmp = self.fresh("domain")
        # lower-cased, blanks trimmed, trailing dots removed
        low = t if t.startswith("TO_LOWER(") else f"TO_LOWER({t})"
        self.hoisted.append((tmp, f'REPLACE(TRIM({low}), {string("[.]+$")}, "")'))
        last_two = string("(?s)^.*[.]([^.]*[.][^.]*)$")
        return (
            f'CASE({tmp} == "", null, '
            f'({tmp} LIKE "*:*" OR {tmp} RLIKE {string(".*[0-9]")}) AND TO_IP({tmp}) IS NOT NULL, '
            f'{tmp}, REPLACE({tmp}, {last_two}, "$1"))'
        )


def iter_lookups(p: ir.Predicate) -> Iterator[ir.InLookup]:
    if isinstance(p, ir.InLookup):
        yield p
    elif isinstance(p, ir.And | ir.Or):
        for x in p.items:
            yield from iter_lookups(x)
    elif isinstance(p, ir.Not):
        yield from iter_lookups(p.item)


__all__ = ["CompileError", "Renderer", "ident", "iter_lookups", "lucene_regex", "string"]
