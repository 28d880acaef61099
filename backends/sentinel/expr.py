"""Predicates and expressions of the kql backend: ``visit_<Node>`` methods for filter and
expression nodes, rendered against a :class:`Scope` (the columns of the stream being built).

Kusto strings are never null: an absent string is the empty string (Kusto docs, "The string data
type" / "Null values"), so on string columns "missing" is ``isempty``. Other types are nullable,
and a comparison with null is null, which ``where`` drops; under ``not`` that would drop the rows
the evaluator keeps (``not: {port: 443}`` holds when the port is missing), so negated leaves on
nullable columns are made two-valued with ``isnotnull(c) and ...``.

Multi-valued columns are ``dynamic`` arrays (the query makes them: ``extract_all`` for
``extract_ips``). A leaf holds when some element satisfies it. String equality and substrings
read the elements joined by newlines (``strcat_array``, "Converts dynamic array to string
concatenated with a delimiter") with a multi-line RE2 pattern whose ``^``/``$`` are element
bounds; that is exact while the elements are ASCII without line breaks (RE2's ``(?i)`` then
folds case as ``lower()`` does), which extract_all's IPv4 addresses always are. The profiles map
no ECS array field to a dynamic column: MDE and ASIM carry lists only in bags such as
AdditionalFields, which the profiles read as scalar text. Leaves the backend cannot yet test per
element (regex, cidr, comparisons, lookups, numeric equality) are E201: KQL has ``mv-apply`` for
them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, ClassVar

from backends.base import Context
from backends.regex_re2 import Unsupported, to_re2
from backends.registered_domain import LABEL_CUT
from backends.sentinel import text as t
from backends.sentinel.domains import cut_expr, cut_is_exact, normalised
from backends.sentinel.empty import DETAIL, holds_on_empty
from compiler import ir

NUMERIC = {"int", "long", "real", "decimal"}
_V4 = "@'^\\d+\\.\\d+\\.\\d+\\.\\d+$'"


@dataclass
class Source:
    """A logsource resolved in the profile: where a stream's events come from."""

    table: str
    where: list[str]
    fields: dict[str, str]
    computed: dict[str, str]
    types: dict[str, str]
    # how the source's rows differ from the events (profile entry `approximate`: the rows the
    # parser drops or merges), declared as an approximation by every stream reading it
    approximate: str | None = None
    # profile entry `event_data`: the dynamic column holding the event's EventData by name
    # (WindowsEvent's EventData); every winlog.event_data.<Name> the analytic reads is
    # tostring(<column>.<Name>), as a column named <Name> (`table_columns` are taken)
    event_data: str | None = None
    table_columns: tuple[str, ...] = ()


@dataclass
class Scope:
    """Columns visible while building one stream (or a detection over it)."""

    source: Source
    cols: dict[str, str] = field(default_factory=dict)  # ECS name -> column the query made
    types: dict[str, str] = field(default_factory=dict)  # column -> type, for those
    neg: bool = False  # rendering under an odd number of `not`
    write_prefix: str | None = None  # query-made columns get this prefix (a folded view)

    def clone(self) -> Scope:
        return copy.deepcopy(self)


def _re2_literal(text: str) -> str:
    """RE2 text matching ``text`` literally (every ASCII punctuation character escaped)."""
    return "".join(
        "\\" + ch if ch.isascii() and not ch.isalnum() and ch != " " else ch for ch in text
    )


def _num(v: ir.Scalar) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v.strip()) if v.strip() and v.strip().lower() not in ("nan", "inf") else None
    except ValueError:
        return None


class KqlExprMixin:
    scope: Scope
    deriving_in: ir.Stream | None = None  # the stream whose derived fields are being rendered
    pre_lines: list[str]  # helper columns a derived field's expression needs first

    # ------------------------------------------------------------------ fields
    def col(self, name: str, span: ir.Span, ctx: Context) -> str:
        s = self.scope
        if name in s.cols:
            return s.cols[name]
        if name in s.source.fields:
            return s.source.fields[name]
        return ctx.field(name, span)

    def target_col(self, name: str, ctx: Context) -> str:
        """The column a query-made field (derive, enrich, join add) is written to: the data
        model's column when the profile maps the name, else a query-local name."""
        s = self.scope
        if s.write_prefix is not None:
            # a view over another stream's rows: never overwrite the rows' own columns
            made = s.cols.get(name)
            if made is not None and made.startswith(s.write_prefix):
                return made
            return s.write_prefix + "".join(ch if ch.isalnum() else "_" for ch in name)
        if name in s.cols:
            return s.cols[name]
        if name in s.source.fields:
            return s.source.fields[name]
        if name in ctx.profile.fields:
            return ctx.profile.fields[name]
        return ctx.profile.local(name)

    def ctype(self, column: str) -> str:
        s = self.scope
        return s.types.get(column) or s.source.types.get(column) or "string"

    def _nullable(self, c: str, text: str) -> str:
        """Two-valued under negation (see module docstring)."""
        if self.scope.neg and self.ctype(c) != "string" and text != "false":
            return f"(isnotnull({t.ident(c)}) and {text})"
        return text

    @staticmethod
    def _join(parts: list[str], op: str) -> str:
        if len(parts) == 1:
            return parts[0]
        return "(" + f" {op} ".join(parts) + ")"

    def _empty_hazard(
        self,
        node: ir.Eq | ir.StrMatch | ir.Regex,
        field: str,
        effect: str,
        superset: bool,
        ctx: Context,
    ) -> None:
        """Declare a string leaf that reads a missing field as "" (:mod:`.empty`); ``superset``
        is its direction outside `not`."""
        if self.scope.neg:
            superset = not superset
        ctx.approximate(
            "missing string versus empty string",
            DETAIL.format(field=field, effect=effect),
            node.span,
            direction="superset" if superset else "subset",
        )

    # ------------------------------------------------------------------ predicates
    def visit_And(self, node: ir.And, ctx: Context) -> str:
        if not node.items:
            return "true"
        parts = [x for x in (self.pred(p, ctx) for p in node.items) if x != "true"]
        return "false" if "false" in parts else self._join(parts, "and") if parts else "true"

    def visit_Or(self, node: ir.Or, ctx: Context) -> str:
        if not node.items:
            return "false"
        parts = [x for x in (self.pred(p, ctx) for p in node.items) if x != "false"]
        return "true" if "true" in parts else self._join(parts, "or") if parts else "false"

    def visit_Not(self, node: ir.Not, ctx: Context) -> str:
        self.scope.neg = not self.scope.neg
        try:
            inner = self.pred(node.item, ctx)
        finally:
            self.scope.neg = not self.scope.neg
        return {"true": "false", "false": "true"}.get(inner, f"not({inner})")

    def pred(self, p: ir.Predicate, ctx: Context) -> str:
        return self.dispatch(p, ctx)  # type: ignore[attr-defined,no-any-return]

    def _eq_one(self, c: str, v: ir.Scalar, cased: bool) -> str:
        ty, q = self.ctype(c), t.ident(c)
        if v is None:
            return f"isempty({q})" if ty == "string" else f"isnull({q})"
        if isinstance(v, bool):
            return f"{q} == {t.scalar(v)}" if ty == "bool" else "false"
        if ty == "bool":
            # a boolean equals booleans only, never a number or text (docs/semantics.md)
            return "false"
        n = _num(v)
        if ty in NUMERIC:
            return f"{q} == {t.number(n)}" if n is not None else "false"
        if ty == "string" and isinstance(v, int | float):
            # numeric strings equal numbers (docs/semantics.md, "Numeric strings")
            return f"(isnotnull(todouble({q})) and todouble({q}) == {t.number(n or 0)})"
        op = "==" if cased else "=~"
        text = f"{q} {op} {t.string(str(v))}"
        if ty == "string" and n is not None:
            text = f"({text} or todouble({q}) == {t.number(n)})"
        return text

    # ------------------------------------------------------------------ multi-valued columns
    def _dynamic(self, c: str, what: str, span: ir.Span, ctx: Context) -> None:
        """E201 for a leaf on a dynamic (multi-valued) column that has no per-element form."""
        if self.ctype(c) == "dynamic":
            raise ctx.not_implemented(
                f"{what} on the multi-valued (dynamic) column '{c}' (KQL tests each element "
                "with mv-apply, which siemc does not emit yet)",
                span,
            )

    def _some_element(self, c: str, patterns: list[str], cased: bool, quantifier: str) -> str:
        """Some element of the dynamic column matches each (``all``) or any of the RE2
        ``patterns``, anchored per element (see module docstring)."""
        joined = f'strcat_array({t.ident(c)}, "\\n")'
        flags = "(?m)" if cased else "(?im)"
        parts = [f"{joined} matches regex {t.string(flags + pat)}" for pat in patterns]
        # array_length of a null (no array) is null: coalesce keeps the leaf two-valued for not
        present = f"coalesce(array_length({t.ident(c)}), 0) > 0"
        return f"({present} and {self._join(parts, 'or' if quantifier == 'any' else 'and')})"

    def _element_text(self, values: list[str], span: ir.Span, ctx: Context) -> list[str]:
        for v in values:
            if "\n" in v or "\r" in v:
                raise ctx.not_implemented(
                    "a value holding a line break on a multi-valued (dynamic) column", span
                )
        return [_re2_literal(v) for v in values]

    def visit_Eq(self, node: ir.Eq, ctx: Context) -> str:
        c = self.col(node.field, node.span, ctx)
        q, ty = t.ident(c), self.ctype(c)
        if ty == "dynamic":
            if any(v is None for v in node.values):
                raise ctx.not_implemented("`field: null` on a multi-valued column", node.span)
            texts = [v for v in node.values if isinstance(v, str) and v and _num(v) is None]
            if len(texts) != len(node.values):
                self._dynamic(c, "equality with a number, boolean or empty text", node.span, ctx)
            lits = self._element_text(texts, node.span, ctx)
            return self._some_element(c, [f"^{x}$" for x in lits], node.cased, node.quantifier)
        if ty == "string" and holds_on_empty(node):
            self._empty_hazard(node, node.field, "also holds on events without it", True, ctx)
        strs = [v for v in node.values if isinstance(v, str) and _num(v) is None]
        if node.quantifier == "any" and ty == "string" and len(strs) == len(node.values) > 1:
            op = "in" if node.cased else "in~"
            return f"{q} {op} ({', '.join(t.string(s) for s in strs)})"
        nums = [_num(v) for v in node.values]
        if node.quantifier == "any" and ty in NUMERIC and len(nums) > 1 and None not in nums:
            vals = ", ".join(t.number(x) for x in nums if x is not None)
            return self._nullable(c, f"{q} in ({vals})")
        parts = [self._nullable(c, self._eq_one(c, v, node.cased)) for v in node.values]
        if node.quantifier == "any" and "false" in parts:
            # a value of the wrong type never equals (e.g. text against a boolean column)
            parts = [p for p in parts if p != "false"] or ["false"]
        return self._join(parts, "or" if node.quantifier == "any" else "and")

    _STROPS: ClassVar[dict[tuple[str, bool], str]] = {
        ("contains", False): "contains",
        ("contains", True): "contains_cs",
        ("startswith", False): "startswith",
        ("startswith", True): "startswith_cs",
        ("endswith", False): "endswith",
        ("endswith", True): "endswith_cs",
    }

    def _text(self, c: str) -> str:
        q = t.ident(c)
        return q if self.ctype(c) == "string" else f"tostring({q})"

    def visit_StrMatch(self, node: ir.StrMatch, ctx: Context) -> str:
        c = self.col(node.field, node.span, ctx)
        if self.ctype(c) == "dynamic":
            lits = self._element_text(list(node.values), node.span, ctx)
            shape = {"contains": "{}", "startswith": "^{}", "endswith": "{}$"}[node.op]
            # an empty value is in every element: "^" matches once there is one
            pats = [shape.format(x) if x else "^" for x in lits]
            return self._some_element(c, pats, node.cased, node.quantifier)
        if self.ctype(c) == "string" and holds_on_empty(node):
            self._empty_hazard(node, node.field, "also holds on events without it", True, ctx)
        op = self._STROPS[(node.op, node.cased)]
        parts = [self._nullable(c, f"{self._text(c)} {op} {t.string(v)}") for v in node.values]
        return self._join(parts, "or" if node.quantifier == "any" else "and")

    def visit_Regex(self, node: ir.Regex, ctx: Context) -> str:
        c = self.col(node.field, node.span, ctx)
        self._dynamic(c, "a regular expression", node.span, ctx)
        parts = []
        for pat in node.patterns:
            try:
                rx = to_re2(pat, ignorecase=not node.cased)
            except Unsupported as exc:
                raise ctx.unsupported(
                    "this regular expression",
                    f"KQL regular expressions are RE2: {exc}",
                    node.span,
                    "rewrite the pattern without it, or compile to splunk or eql (PCRE-like)",
                ) from None
            for note in rx.approximations:
                ctx.approximate("regular expression", f"pattern {pat!r}: {note}", node.span)
            parts.append(self._nullable(c, f"{self._text(c)} matches regex {t.string(rx.text)}"))
        if self.ctype(c) == "string" and holds_on_empty(node):
            self._empty_hazard(node, node.field, "also holds on events without it", True, ctx)
        return self._join(parts, "or" if node.quantifier == "any" else "and")

    _CMP: ClassVar[dict[str, str]] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

    def visit_Compare(self, node: ir.Compare, ctx: Context) -> str:
        c = self.col(node.field, node.span, ctx)
        self._dynamic(c, "a numeric comparison", node.span, ctx)
        q = t.ident(c) if self.ctype(c) in NUMERIC else f"todouble({t.ident(c)})"
        text = f"{q} {self._CMP[node.op]} {t.number(node.value)}"
        if self.scope.neg:
            return f"(isnotnull({q}) and {text})"
        return text

    def visit_Exists(self, node: ir.Exists, ctx: Context) -> str:
        c = self.col(node.field, node.span, ctx)
        ty, q = self.ctype(c), t.ident(c)
        if ty == "string":
            test = f"isnotempty({q})"
        elif ty == "dynamic":
            test = f"coalesce(array_length({q}), 0) > 0"
        else:
            test = f"isnotnull({q})"
        if node.present:
            return test
        if ty == "dynamic":
            return f"not(coalesce(array_length({q}), 0) > 0)"
        return {"string": f"isempty({q})"}.get(ty, f"isnull({q})")

    def visit_Cidr(self, node: ir.Cidr, ctx: Context) -> str:
        c = self.col(node.field, node.span, ctx)
        self._dynamic(c, "a cidr test", node.span, ctx)
        q = f"trim(@'\\s', {self._text(c)})"
        # an IPv4-mapped IPv6 address (::ffff:10.0.0.1) is its IPv4 address (docs/semantics.md,
        # cidr), which ipv4_is_in_any_range reads only without the prefix
        q4 = f"replace_regex({q}, @'^(?i)::ffff:', '')"
        v4 = [n for n in node.networks if ":" not in n]
        v6 = [n for n in node.networks if ":" in n]

        def call(fn: str, nets: list[str]) -> str:
            # the ipv*_is_in_any_range functions return null for text that is no address;
            # coalesce keeps the predicate two-valued for `not`
            subject = q4 if fn == "ipv4_is_in_any_range" else q
            listed = ", ".join(t.string(n) for n in nets)
            return f"coalesce({fn}({subject}, dynamic([{listed}])), false)"

        if node.quantifier == "all":
            parts = [
                call("ipv6_is_in_any_range" if ":" in n else "ipv4_is_in_any_range", [n])
                for n in node.networks
            ]
            return self._join(parts, "and")
        parts = []
        if v4:
            parts.append(call("ipv4_is_in_any_range", v4))
        if v6:
            # an IPv4 address is never in an IPv6 network (docs/semantics.md, cidr)
            parts.append(f"(not({q} matches regex {_V4}) and {call('ipv6_is_in_any_range', v6)})")
        return self._join(parts, "or")

    def visit_InLookup(self, node: ir.InLookup, ctx: Context) -> str:
        cols = [self.col(f, node.span, ctx) for _, f in node.match]
        for c in cols:
            self._dynamic(c, "a lookup", node.span, ctx)
        present = [
            f"isnotempty({t.ident(c)})" if self.ctype(c) == "string" else f"isnotnull({t.ident(c)})"
            for c in cols
        ]
        wl = f"_GetWatchlist({t.string(node.lookup)})"
        if len(cols) == 1:
            left = f"tolower(tostring({t.ident(cols[0])}))"
            right = f"tolower(tostring({t.ident(node.match[0][0])}))"
        else:
            left = (
                "tostring(pack_array("
                + ", ".join(f"tolower(tostring({t.ident(c)}))" for c in cols)
                + "))"
            )
            right = (
                "tostring(pack_array("
                + ", ".join(f"tolower(tostring({t.ident(k)}))" for k, _ in node.match)
                + "))"
            )
        return "(" + " and ".join([*present, f"{left} in (({wl} | project {right}))"]) + ")"

    # ------------------------------------------------------------------ expressions
    def expr(self, e: ir.Expr, ctx: Context) -> str:
        return self.dispatch(e, ctx)  # type: ignore[attr-defined,no-any-return]

    def visit_Literal_(self, node: ir.Literal_, ctx: Context) -> str:
        if node.value is None:
            return "real(null)"
        return t.scalar(node.value)

    def visit_FieldRef(self, node: ir.FieldRef, ctx: Context) -> str:
        name = f"{node.step}.{node.name}" if node.step else node.name
        return t.ident(self.col(name, node.span, ctx))

    def visit_MeasureRef(self, node: ir.MeasureRef, ctx: Context) -> str:
        return t.ident(self.scope.cols.get(node.name, node.name))

    _ARITH: ClassVar[dict[str, str]] = {
        "+": "+",
        "-": "-",
        "*": "*",
        "<": "<",
        "<=": "<=",
        ">": ">",
        ">=": ">=",
    }

    def _is_str(self, e: ir.Expr) -> bool:
        return isinstance(e, ir.Literal_) and isinstance(e.value, str)

    def _scalar_args(self, args: tuple[ir.Expr, ...], what: str, ctx: Context) -> None:
        for a in args:
            if self.expr_type(a) == "dynamic":
                raise ctx.not_implemented(
                    f"{what} of a multi-valued (dynamic) value (KQL would need mv-apply or "
                    "array functions per element)",
                    a.span,
                )

    def visit_BinOp(self, node: ir.BinOp, ctx: Context) -> str:
        self._scalar_args((node.left, node.right), f"operator {node.op}", ctx)
        a, b = self.expr(node.left, ctx), self.expr(node.right, ctx)
        if node.op == "/" and isinstance(node.right, ir.Literal_) and _num(node.right.value):
            return f"(todouble({a}) / {b})"
        if node.op == "/":
            # null when the denominator is 0 or null (docs/semantics.md, "Ratio")
            return f"iff({b} == 0, real(null), todouble({a}) / {b})"
        if node.op in ("and", "or"):
            return f"({a} {node.op} {b})"
        strs = self._is_str(node.left) or self._is_str(node.right)
        if node.op in ("==", "!=") and not strs and self._text_pair(node):
            # Two text values (source.ip == destination.ip) are equal case-insensitively, or as
            # numbers when both spell one ("443" == "443.0"): docs/semantics.md, Equality.
            # todouble() is null for other text, hence the coalesce.
            same = f"({a} =~ {b} or coalesce(todouble({a}) == todouble({b}), false))"
            if node.op == "==":
                return same
            return f"(isnotnull({a}) and isnotnull({b}) and not{same})"
        if node.op in ("==", "!="):
            op = {"==": "=~", "!=": "!~"}[node.op] if strs else node.op
            return f"({a} {op} {b})"
        if strs:
            a, b = f"tolower({a})", f"tolower({b})"
        return f"({a} {self._ARITH[node.op]} {b})"

    def _text_pair(self, node: ir.BinOp) -> bool:
        return self.expr_type(node.left) == "string" and self.expr_type(node.right) == "string"

    def visit_UnaryOp(self, node: ir.UnaryOp, ctx: Context) -> str:
        x = self.expr(node.operand, ctx)
        return f"(-{x})" if node.op == "-" else f"not({x})"

    def visit_Call(self, node: ir.Call, ctx: Context) -> str:
        self._scalar_args(node.args, f"function {node.func}()", ctx)
        args = [self.expr(a, ctx) for a in node.args]
        f = node.func
        if f == "lower":
            return f"tolower({args[0]})"
        if f == "upper":
            return f"toupper({args[0]})"
        if f == "abs":
            return f"abs({args[0]})"
        if f == "coalesce":
            # fields the data model keeps in one column (Zeek's server_name is both the SNI and
            # the destination name) are one argument
            args = list(dict.fromkeys(args))
            return f"coalesce({', '.join(args)})" if len(args) > 1 else args[0]
        if f in ("max", "min"):
            return f"{f}_of({', '.join(args)})"
        if f == "basename":
            return f"extract(@'[^\\\\/]*$', 0, tostring({args[0]}))"
        if f == "registered_domain":
            # KQL has no Public Suffix List (parse_url() knows none either:
            # https://learn.microsoft.com/kusto/query/parse-url-function); the cut is exact where
            # the stream's filter pins the name to suffixes no list rule reaches below
            if self.deriving_in is None or not cut_is_exact(self.deriving_in, node.args[0]):
                ctx.approximate("registered_domain()", LABEL_CUT % "KQL", node.span)
            inner = node.args[0]
            while isinstance(inner, ir.Call) and inner.func == "lower" and len(inner.args) == 1:
                inner = inner.args[0]  # registered_domain lower-cases anyway
            text = self.expr(inner, ctx)
            if self.expr_type(inner) != "string":
                text = f"tostring({text})"
            name = normalised(f"tolower({text})")
            if self.deriving_in is not None:
                # a helper column keeps the normalised name readable (dropped after the derive)
                col = f"__rd{len(self.pre_lines)}"
                self.pre_lines.append(f"| extend {col} = {name}")
                name = col
            return cut_expr(name)
        if f == "extract_ips":
            ctx.approximate(
                "function extract_ips()",
                "KQL extract_all with an RE2 pattern finds dotted IPv4 addresses only (IPv6 "
                "answers are not extracted) and keeps duplicates; the evaluator also extracts "
                "IPv6 and de-duplicates",
                node.span,
            )
            octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
            pat = rf"\b({octet}(?:\.{octet}){{3}})\b"
            return f"extract_all(@'{pat}', tostring({args[0]}))"
        raise ctx.not_implemented(f"function {f}()", node.span)

    def expr_type(self, e: ir.Expr) -> str:
        if isinstance(e, ir.Call):
            if e.func == "extract_ips":
                return "dynamic"
            if e.func in ("coalesce", "abs", "max", "min") and e.args:
                return self.expr_type(e.args[0]) if e.func != "abs" else "real"
            return "string"
        if isinstance(e, ir.FieldRef):
            c = self.scope.cols.get(e.name) or self.scope.source.fields.get(e.name) or e.name
            return self.ctype(c)
        if isinstance(e, ir.Literal_):
            v: Any = e.value
            return "string" if isinstance(v, str) else "bool" if isinstance(v, bool) else "real"
        if isinstance(e, ir.BinOp):
            return "bool" if e.op not in ("+", "-", "*", "/") else "real"
        return "real"
