"""SPL text for predicates and expressions: the search-command form and the eval/where form.

Two languages live inside SPL and they disagree on case and nulls:

* the ``search`` command compares ``field=value`` case-insensitively, treats ``*`` as a wildcard
  that cannot be escaped, and ``NOT field=value`` also matches events without the field — the
  evaluator's rule for ``not``
  (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Search);
* ``where``/``eval`` compare case-sensitively, ``like()`` uses ``%``/``_``, and a comparison with
  a null field is null, so ``where NOT f=="x"`` drops events without ``f``
  (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Where).

A predicate goes to the search form when every leaf is safe there; otherwise to the where form,
where negation is pushed to the leaves and each negated leaf is guarded with ``isnull()``.

Multivalue fields: a search-command ``field=value`` matches when any value does (Search,
"Multivalue fields"), which is siemc's rule. The eval comparison and string functions do not
document a per-value meaning on a multivalue field, so where-form leaves on a field that may hold
several values wrap each test in ``mvfilter()``, which evaluates its predicate on every value and
returns those that pass, null when none does
(https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/MultivalueEvalFunctions#mvfilter.28.26lt.3Bpredicate.26gt.3B.29):
``isnotnull(mvfilter(test))`` is "some value passes", and two-valued under ``NOT``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from backends.base import CompileError
from backends.regex_re2 import Unsupported, to_re2
from backends.registered_domain import LABEL_CUT
from compiler import ir

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A field name search reads whole before `=`: the dotted names of the identifier grammar.
SEARCH_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_TICKS = "```"  # SPL inline comment delimiter: must never appear inside emitted query text

FieldFn = Callable[[str, ir.Span], str]


# ---------------------------------------------------------------------- escaping
def eval_str(value: str) -> str:
    """An eval/where string literal. Backslash and double quote are backslash-escaped
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eval, "Usage").
    Splunk expands macros and inline comments before it parses quotes, so a backtick pair
    (`name`) would call a macro and three open a comment even inside a string: every backtick
    is its own literal, joined with the ``.`` concatenation operator."""
    esc = value.replace("\\", "\\\\").replace('"', '\\"')
    if "`" not in esc:
        return f'"{esc}"'
    return '"' + '" . "`" . "'.join(esc.split("`")) + '"'


def search_str(value: str) -> str:
    """A quoted search-command term: ``\\`` and ``"`` escaped with a backslash; the caller has
    checked that the value holds no ``*`` (always a wildcard in search) and no backticks."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_literal(text: str) -> str:
    """PCRE text matching ``text`` literally: every ASCII punctuation character escaped."""
    out = []
    for ch in text:
        if ch == "`":
            out.append("\\x60")
        elif ch.isascii() and not ch.isalnum() and ch != " ":
            out.append("\\" + ch if ch.isprintable() else f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


PCRE_NATIVE = (
    "PCRE runs the Python pattern as written (it has look-around and back-references, which "
    "RE2 lacks, so siemc cannot re-spell it): PCRE's \\d \\w \\s \\b are ASCII-only and "
    "its case folding is Unicode's, where Python's classes take every script's digits and "
    "letters and its folding also pairs i with ı and İ. Direction: mixed"
)


def regex_pattern(pattern: str) -> str:
    """A Python ``re`` pattern as PCRE text: the common syntax is shared; Python's ``\\Z`` is
    PCRE's ``\\z``; backticks become ``\\x60`` so no comment delimiter appears."""
    return pattern.replace("\\Z", "\\z").replace("`", "\\x60")


# Words eval and where read as operators or literals (Search Reference, "eval", Operators:
# AND OR NOT XOR LIKE IN; true/false/null as words), in any case. A field spelled like one is
# written in single quotes, eval's quoting of field names.
EVAL_KEYWORDS = frozenset({"and", "or", "not", "xor", "like", "in", "true", "false", "null"})
# Words the search command reads as operators (Search Reference, "search": the Boolean operators
# are upper case; IN and the TERM()/CASE() directives): a comparison on a field spelled like one
# is not written in search form but in where form, where the name is quoted.
SEARCH_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "TERM", "CASE"})


def field_ref(name: str) -> str:
    """A field name inside eval/where: names that are not identifiers, or are spelled like an
    eval keyword, take single quotes (Search Reference, "eval": "If the expression references a
    field name that contains non-alphanumeric characters, ... surround it with single quotes").
    The identifier grammar of `siemc check` admits no quote, so none has to be escaped."""
    if IDENT.match(name) and name.lower() not in EVAL_KEYWORDS:
        return name
    if "'" in name:
        raise ValueError(f"field name {name!r} cannot be written in SPL (single quote)")
    return "'" + name + "'"


def search_field_ok(name: str) -> bool:
    """Whether ``name`` can stand bare before ``=`` in the search command."""
    return bool(SEARCH_FIELD.match(name)) and name.upper() not in SEARCH_KEYWORDS


def number(v: float | int) -> str:
    if isinstance(v, bool):
        raise TypeError("boolean is not a number")
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def seconds(ms: int) -> str:
    """A span in the largest of h/m/s that is exact (never days: day spans align to local
    midnight, https://docs.splunk.com/Documentation/Splunk/latest/Search/Specifytimespans)."""
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def _search_safe(v: object) -> bool:
    return (
        isinstance(v, str)
        and v != ""
        and "*" not in v
        and "`" not in v
        and all(c.isprintable() for c in v)
    )


# ---------------------------------------------------------------------- predicates
class PredicateRenderer:
    """Renders IR predicates for one stream, given how to name fields and lookup markers."""

    def __init__(
        self,
        field: FieldFn,
        lookup_marker: Callable[[ir.InLookup], str],
        multi: Callable[[str], bool] = lambda _: False,
        approximate: Callable[[str, str, ir.Span], None] | None = None,
    ):
        self.field = field
        self.lookup_marker = lookup_marker
        self.multi = multi  # ECS name -> whether the field may hold several values
        # Records an approximation in the compilation (None: standalone rendering in tests).
        self.approximate = approximate

    # --------------------------------------------------------------- search form
    def searchable(self, p: ir.Predicate) -> bool:
        if isinstance(p, ir.And | ir.Or):
            return all(self.searchable(x) for x in p.items)
        if isinstance(p, ir.Not):
            return self.searchable(p.item)
        if isinstance(p, ir.Eq | ir.StrMatch):
            ok = not p.cased and all(_search_safe(v) for v in p.values)
        else:
            ok = isinstance(p, ir.Exists)
        if not ok:
            return False
        assert isinstance(p, ir.Eq | ir.StrMatch | ir.Exists)
        try:
            name = self.field(p.field, p.span)
        except CompileError:
            return True  # rendering reports the unmapped field, in the order it always did
        return search_field_ok(name)

    def search(self, p: ir.Predicate, top: bool = True) -> str:
        if isinstance(p, ir.And):
            if not p.items:
                return ""
            inner = " ".join(self.search(x, False) for x in p.items)
            return inner if top or len(p.items) == 1 else f"({inner})"
        if isinstance(p, ir.Or):
            if not p.items:
                return "NOT _time=*"  # an empty OR is false
            inner = " OR ".join(self.search(x, False) for x in p.items)
            return inner if len(p.items) == 1 else f"({inner})"
        if isinstance(p, ir.Not):
            return f"NOT {self.search(p.item, False)}"
        if isinstance(p, ir.Exists):
            f = self.field(p.field, p.span)
            return f"{f}=*" if p.present else f"NOT {f}=*"
        if isinstance(p, ir.Eq):
            f = self.field(p.field, p.span)
            terms = [f"{f}={search_str(str(v))}" for v in p.values]
            return _join(terms, p.quantifier)
        assert isinstance(p, ir.StrMatch)
        f = self.field(p.field, p.span)
        pre, post = {"contains": ("*", "*"), "startswith": ("", "*"), "endswith": ("*", "")}[p.op]
        terms = [f"{f}={search_str(pre + v + post)}" if v else f"{f}=*" for v in p.values]
        return _join(terms, p.quantifier)

    # --------------------------------------------------------------- where form
    def where(self, p: ir.Predicate) -> str:
        return self._where(p, False)

    def _where(self, p: ir.Predicate, neg: bool) -> str:
        if isinstance(p, ir.Not):
            return self._where(p.item, not neg)
        if isinstance(p, ir.And | ir.Or):
            conj = isinstance(p, ir.And) != neg  # De Morgan: push NOT to the leaves
            if not p.items:
                return "true()" if conj else "false()"
            parts = [self._where(x, neg) for x in p.items]
            if len(parts) == 1:
                return parts[0]
            return "(" + (" AND " if conj else " OR ").join(parts) + ")"
        if neg and isinstance(p, ir.Exists):
            return self.leaf(ir.Exists(p.field, not p.present, p.span))[0]
        text, guards = self.leaf(p)
        if not neg:
            return text
        if isinstance(p, ir.InLookup):
            return f"isnull({self.lookup_marker(p)})"
        if not guards:
            return f"NOT {text}"
        nulls = " OR ".join(f"isnull({g})" for g in guards)
        return f"({nulls} OR NOT {text})"

    def leaf(self, p: ir.Predicate) -> tuple[str, list[str]]:
        """(where text, expressions whose null-ness makes the leaf false)."""
        if isinstance(p, ir.Exists):
            f = field_ref(self.field(p.field, p.span))
            return (f"isnotnull({f})" if p.present else f"isnull({f})"), []
        if isinstance(p, ir.InLookup):
            return f"isnotnull({self.lookup_marker(p)})", []
        f = field_ref(self.field(p.field, p.span))  # type: ignore[union-attr]
        if self.multi(p.field) and not (isinstance(p, ir.Eq) and None in p.values):  # type: ignore[union-attr]
            return self._some_value(p, f), []
        if isinstance(p, ir.Eq):
            if any(v is None for v in p.values):
                others = ir.Eq(p.field, tuple(v for v in p.values if v is not None), p.cased)
                if not others.values:
                    return f"isnull({f})", []
                text, _ = self.leaf(others)
                return f"(isnull({f}) OR {text})", []
            return _join([self._eq(f, v, p.cased) for v in p.values], p.quantifier), [f]
        if isinstance(p, ir.StrMatch):
            return _join([self._strmatch(f, p.op, v, p.cased) for v in p.values], p.quantifier), [f]
        if isinstance(p, ir.Regex):
            terms = [f"match({f}, {eval_str(self._pcre(x, p))})" for x in p.patterns]
            return _join(terms, p.quantifier), [f]
        if isinstance(p, ir.Compare):
            op = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[p.op]
            g = f"tonumber({f})"
            return f"{g}{op}{number(p.value)}", [g]
        if isinstance(p, ir.Cidr):
            # ::ffff:a.b.c.d is its IPv4 address; blanks around the text are ignored.
            ip = f"replace(trim({f}), {_MAPPED_V4}, {eval_str(chr(92) + '1')})"
            nets = [str(ipaddress.ip_network(n, strict=False)) for n in p.networks]
            terms = [f"cidrmatch({eval_str(n)}, {ip})" for n in nets]
            return _join(terms, p.quantifier), [f]
        raise TypeError(type(p).__name__)

    def _some_value(self, p: ir.Predicate, f: str) -> str:
        """One ``mvfilter`` per listed value: with ``|all`` each value may be matched by a
        different element (docs/semantics.md, "Multi-values")."""
        assert isinstance(p, ir.Eq | ir.StrMatch | ir.Regex | ir.Compare | ir.Cidr)
        if isinstance(p, ir.Eq):
            items: list[ir.Predicate] = [
                ir.Eq(p.field, (v,), p.cased, "any", p.span) for v in p.values
            ]
        elif isinstance(p, ir.StrMatch):
            items = [ir.StrMatch(p.field, p.op, (v,), p.cased, "any", p.span) for v in p.values]
        elif isinstance(p, ir.Regex):
            items = [ir.Regex(p.field, (x,), p.cased, "any", p.span) for x in p.patterns]
        elif isinstance(p, ir.Cidr):
            items = [ir.Cidr(p.field, (n,), "any", p.span) for n in p.networks]
        else:
            items = [p]
        multi, self.multi = self.multi, lambda _: False
        try:
            terms = [f"isnotnull(mvfilter({self.leaf(x)[0]}))" for x in items]
        finally:
            self.multi = multi
        return _join(terms, getattr(p, "quantifier", "any"))

    @staticmethod
    def _eq(f: str, v: ir.Scalar, cased: bool) -> str:
        if isinstance(v, bool):
            return f"lower({f})=={eval_str(str(v).lower())}"
        if isinstance(v, int | float):
            return f"{f}=={number(v)}"  # eval compares numeric-looking text numerically
        assert isinstance(v, str)
        if cased:
            return f"{f}=={eval_str(v)}"
        return f"lower({f})=={eval_str(v.lower())}"

    def _pcre(self, pattern: str, p: ir.Regex) -> str:
        """The pattern for PCRE: its RE2 spelling, which PCRE reads with the same meaning (the
        Unicode classes and case folding Python applies, spelled out); where RE2 has no
        spelling (look-around, back-references), the Python text, which PCRE shares, with
        ASCII classes and its own case folding declared."""
        try:
            rx = to_re2(pattern, ignorecase=not p.cased)
        except Unsupported:
            self._approx(p, PCRE_NATIVE)
            return ("" if p.cased else "(?i)") + regex_pattern(pattern)
        for note in rx.approximations:
            self._approx(p, note)
        return rx.text.replace("`", "\\x60")

    def _approx(self, p: ir.Regex, detail: str) -> None:
        if self.approximate is not None:
            self.approximate("regular expression", detail, p.span)

    @staticmethod
    def _strmatch(f: str, op: str, v: str, cased: bool) -> str:
        if not v:
            return f"isnotnull({f})"
        if not cased and not any(c in v for c in "%_\\"):
            # like() wildcards are % and _; both sides lower-cased, so like()'s own case rule
            # does not matter (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/ConditionalFunctions#like.28TEXT.2C_PATTERN.29)
            pat = {"contains": "%{}%", "startswith": "{}%", "endswith": "%{}"}[op]
            return f"like(lower({f}), {eval_str(pat.format(v.lower()))})"
        lit = regex_literal(v if cased else v.lower())
        pat = {"contains": "{}", "startswith": "^{}", "endswith": "{}$"}[op].format(lit)
        target = f if cased else f"lower({f})"
        return f"match({target}, {eval_str(pat)})"


_MAPPED_V4 = eval_str(r"(?i)^::ffff:(\d+\.\d+\.\d+\.\d+)$")


def _join(terms: list[str], quantifier: str) -> str:
    if len(terms) == 1:
        return terms[0]
    op = " AND " if quantifier == "all" else " OR "
    return "(" + op.join(terms) + ")"


# ---------------------------------------------------------------------- expressions
_BINOPS = {
    "+": "+",
    "-": "-",
    "*": "*",
    "==": "==",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "and": "AND",
    "or": "OR",
}


_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


def is_boolean(e: ir.Expr, booleans: frozenset[str] = frozenset()) -> bool:
    """Whether the evaluator gives ``e`` a boolean value: a comparison, and/or/not, a boolean
    literal, a field or measure in ``booleans`` (computed as boolean), or a coalesce of those."""
    if isinstance(e, ir.Literal_):
        return isinstance(e.value, bool)
    if isinstance(e, ir.BinOp):
        return e.op in _COMPARISONS or e.op in ("and", "or")
    if isinstance(e, ir.UnaryOp):
        return e.op == "not"
    if isinstance(e, ir.FieldRef | ir.MeasureRef):
        return e.name in booleans
    return e.func == "coalesce" and all(is_boolean(a, booleans) for a in e.args)


class NotACondition(Exception):
    """A non-boolean value read as a condition (and/or/not operand, having)."""

    def __init__(self, expr: ir.Expr):
        super().__init__(type(expr).__name__)
        self.expr = expr


class ExprRenderer:
    """eval text of IR expressions. ``name`` resolves a FieldRef/MeasureRef to a field name.

    Splunk has two kinds of expression result: values, which fields hold, and booleans, which
    only conditions take (where, if(), and/or/not): "the result of an eval expression cannot be
    a Boolean" (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eval). So a
    boolean the evaluator stores in a field (derive, compute) is held as the text "true" or
    "false" -- the text Splunk gives JSON booleans in events, which the equality filter
    ``f: true`` already compares with -- and ``booleans`` names the fields holding such text,
    read back as conditions with ``f=="true"``.
    """

    def __init__(
        self,
        name: Callable[[ir.FieldRef | ir.MeasureRef], str],
        approximate: Callable[[str, str, ir.Span], None] | None = None,
    ):
        self.name = name
        # Records an approximation in the compilation (None: standalone rendering in tests).
        self.approximate = approximate
        self.booleans: frozenset[str] = frozenset()

    def render(self, e: ir.Expr) -> str:
        """A value for a field (eval assignment, function argument): booleans as text."""
        if is_boolean(e, self.booleans) and not isinstance(e, ir.FieldRef | ir.MeasureRef):
            if isinstance(e, ir.Literal_):
                return eval_str("true" if e.value else "false")
            # if() takes its else branch on a null condition: false, as the evaluator's
            # comparisons with null are.
            return f'if({self.cond(e)}, "true", "false")'
        return self._value(e)

    def cond(self, e: ir.Expr) -> str:
        """A condition (where, if()) true exactly when the evaluator's value is truthy; it may
        be null where the evaluator says false, which where and if() treat alike."""
        if isinstance(e, ir.Literal_) and isinstance(e.value, bool):
            return "true()" if e.value else "false()"
        if isinstance(e, ir.FieldRef | ir.MeasureRef) and e.name in self.booleans:
            return f'({field_ref(self.name(e))}=="true")'
        if isinstance(e, ir.UnaryOp) and e.op == "not":
            # NOT of a null condition is null, but the evaluator's `not` is two-valued.
            return f"(if({self.cond(e.operand)}, 1, 0)==0)"
        if isinstance(e, ir.BinOp) and e.op in ("and", "or"):
            return f"({self.cond(e.left)} {_BINOPS[e.op]} {self.cond(e.right)})"
        if isinstance(e, ir.BinOp) and e.op in _COMPARISONS:
            return self._compare(e)
        if isinstance(e, ir.Call) and is_boolean(e, self.booleans):
            return f'({self.render(e)}=="true")'
        raise NotACondition(e)

    def _value(self, e: ir.Expr) -> str:
        if isinstance(e, ir.Literal_):
            v = e.value
            if v is None:
                return "null()"
            if isinstance(v, int | float):
                return number(v)
            return eval_str(str(v))
        if isinstance(e, ir.FieldRef | ir.MeasureRef):
            return field_ref(self.name(e))
        if isinstance(e, ir.UnaryOp):
            return f"(-{self._num(e.operand)})"
        if isinstance(e, ir.BinOp):
            return self._arith(e)
        assert isinstance(e, ir.Call)
        return self._call(e)

    def _num(self, e: ir.Expr) -> str:
        # eval's + concatenates strings: fields read as numbers for arithmetic.
        text = self.render(e)
        return f"tonumber({text})" if isinstance(e, ir.FieldRef) else text

    def _arith(self, e: ir.BinOp) -> str:
        if e.op == "/":
            a, b = self._num(e.left), self._num(e.right)
            r = e.right
            if isinstance(r, ir.Literal_) and _lit_kind(r) == "num" and r.value != 0:
                return f"({a}/{b})"
            return f"if({b}==0, null(), {a}/{b})"  # a / 0 is null (docs/semantics.md)
        return f"({self._num(e.left)}{_BINOPS[e.op]}{self._num(e.right)})"

    def _compare(self, e: ir.BinOp) -> str:
        # comparisons: null on either side is false; strings compare case-insensitively
        if _is_null(e.left) or _is_null(e.right):
            return "false()"
        lb, rb = is_boolean(e.left, self.booleans), is_boolean(e.right, self.booleans)
        lt, rt = _lit_kind(e.left), _lit_kind(e.right)
        op = _BINOPS[e.op]
        if (lb and rt is not None) or (rb and lt is not None):
            # a boolean never equals (nor orders with) a number or a string
            return "true()" if e.op == "!=" else "false()"
        if lb and rb:
            # both held as lower-case text; "false" < "true" as False < True
            return f"({self.render(e.left)}{op}{self.render(e.right)})"
        if lb or rb:
            # a boolean against a field that may hold one as text ("true"/"false", any case,
            # as the equality filter reads it)
            a = self.render(e.left) if lb else f"lower({self.render(e.left)})"
            b = self.render(e.right) if rb else f"lower({self.render(e.right)})"
            return f"({a}{op}{b})"
        if lt == "num" or rt == "num":
            return f"({self._num(e.left)}{op}{self._num(e.right)})"
        if lt == "str":
            return f"({eval_str(str(e.left.value).lower())}{op}lower({self.render(e.right)}))"  # type: ignore[union-attr]
        if rt == "str":
            return f"(lower({self.render(e.left)}){op}{eval_str(str(e.right.value).lower())})"  # type: ignore[union-attr]
        a, b = self.render(e.left), self.render(e.right)
        if e.op in ("==", "!=") and not (_numeric(e.left) or _numeric(e.right)):
            # Two values of unknown kind: eval compares numeric text as numbers ("443" ==
            # "443.0") but other text case-sensitively, while the evaluator compares strings
            # case-insensitively; either comparison holding means equal.
            if e.op == "==":
                return f"({a}=={b} OR lower({a})==lower({b}))"
            return f"({a}!={b} AND lower({a})!=lower({b}))"
        return f"({a}{op}{b})"

    def _call(self, e: ir.Call) -> str:
        args = [self.render(a) for a in e.args]
        if e.func in ("lower", "upper"):
            return f"{e.func}({args[0]})"
        if e.func == "basename":
            return f'replace({args[0]}, "^.*[\\\\\\\\/]", "")'
        if e.func == "registered_domain":
            if self.approximate is not None:
                self.approximate("registered_domain()", SPL_LABEL_CUT, e.span)
            x = args[0]
            low = x if x.startswith("lower(") else f"lower({x})"
            last_two = f'replace({low}, "^(?:.*\\\\.)?([^.]+\\\\.[^.]+)\\\\.?$", "\\\\1")'
            return f'if(len({x})==0, null(), if(match({x}, "^[0-9.]+$|:"), {x}, {last_two}))'
        if e.func == "coalesce":
            return f"coalesce({', '.join(args)})"
        if e.func in ("max", "min"):
            return f"{e.func}({', '.join(self._num(a) for a in e.args)})"
        if e.func == "abs":
            return f"abs({self._num(e.args[0])})"
        raise ValueError(e.func)  # extract_ips is a rex command, handled by the caller


# https://splunkbase.splunk.com/app/2734 (URL Toolbox): `ut_parse_extended(url, list)` splits a
# host with the Mozilla suffix list, but it is an app with its own list to install and keep.
SPL_LABEL_CUT = LABEL_CUT % "SPL" + (
    " (the URL Toolbox app's ut_parse_extended macro computes ut_domain with the Public Suffix "
    "List, where it is installed)"
)


def _numeric(e: ir.Expr) -> bool:
    """Known to be a number (or null): a measure, arithmetic, max/min/abs."""
    if isinstance(e, ir.MeasureRef):
        return True
    if isinstance(e, ir.BinOp):
        return e.op in ("+", "-", "*", "/")
    if isinstance(e, ir.UnaryOp):
        return e.op == "-"
    return isinstance(e, ir.Call) and e.func in ("max", "min", "abs")


def _is_null(e: ir.Expr) -> bool:
    return isinstance(e, ir.Literal_) and e.value is None


def _lit_kind(e: ir.Expr) -> str | None:
    if isinstance(e, ir.Literal_):
        if isinstance(e.value, bool):
            return None
        if isinstance(e.value, int | float):
            return "num"
        if isinstance(e.value, str):
            return "str"
    return None


__all__ = [
    "ExprRenderer",
    "NotACondition",
    "PredicateRenderer",
    "eval_str",
    "field_ref",
    "is_boolean",
    "number",
    "regex_literal",
    "search_str",
    "seconds",
]
