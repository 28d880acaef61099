"""IR predicates of one stream as a Sigma detection tree (:mod:`backends.sigma.tree`), with the
logsource's field names (:mod:`backends.sigma.fields`)."""

from __future__ import annotations

import ipaddress
import re

from backends.base import E_UNMAPPED, CompileError, Context, _diag
from backends.profiles import ecs_array_fields
from backends.sigma.fields import (
    NUMERIC_COMPARISON,
    SigmaField,
    SourceMap,
    map_field,
    multi_valued,
    placeholder_name,
    scalar_text,
    sigma_number,
    sigma_string,
)
from backends.sigma.regex import RegexNotPortable, basename_exact, sigma_regex
from backends.sigma.tree import Cond, Node, combine, conj, disj, neg, quantified
from compiler import ir
from compiler.evaluator.values import to_number


# ---------------------------------------------------------------------- predicates
class FilterTranslator:
    """IR predicates of one stream -> a :data:`Node` tree, with its logsource's field names."""

    def __init__(self, ctx: Context, src: SourceMap) -> None:
        self.ctx = ctx
        self.src = src

    def field(self, name: str, span: ir.Span) -> SigmaField:
        return map_field(self.ctx.profile, self.src, name, span)

    def translate(self, p: ir.Predicate) -> Node:
        names = [f for _, f in p.match] if isinstance(p, ir.InLookup) else [getattr(p, "field", "")]
        for name in names:
            if name in ecs_array_fields() and not isinstance(p, ir.Exists):
                multi_valued(self.ctx, "filter", name, p.span)
        method = getattr(self, f"visit_{type(p).__name__}")
        node: Node = method(p)
        return node

    def visit_And(self, p: ir.And) -> Node:
        return conj([self.translate(x) for x in p.items])

    def visit_Or(self, p: ir.Or) -> Node:
        if not p.items:
            raise self.ctx.not_implemented("an empty `any:` (always false)", p.span)
        return disj([self.translate(x) for x in p.items])

    def visit_Not(self, p: ir.Not) -> Node:
        # Sigma's `not` is plain negation, as siemc's: pySigma backends emit NOT (...), which
        # holds on a missing field in Splunk, Lucene and the sqlite backend (COALESCE(.., 0)).
        return neg(self.translate(p.item))

    def _values_map(
        self, f: SigmaField, values: tuple[ir.Scalar, ...], cased: bool, name: str, span: ir.Span
    ) -> list[str]:
        assert f.values is not None
        out = []
        table = f.values if cased else {k.lower(): v for k, v in f.values.items()}
        for v in values:
            text = scalar_text(v)
            mapped = table.get(text if cased else text.lower())
            if mapped is None:
                raise CompileError(
                    [
                        _diag(
                            E_UNMAPPED,
                            f"value {text!r} of field '{name}' has no equivalent in the Sigma "
                            f"field {f.name} (sigma profile, logsource {self.src.key})",
                            span,
                            "known values: " + ", ".join(sorted(f.values)),
                        )
                    ]
                )
            out.append(mapped)
        return out

    def visit_Eq(self, p: ir.Eq) -> Node:
        f = self.field(p.field, p.span)
        nodes: list[Node] = []
        values = [v for v in p.values if v is not None]
        if len(values) < len(p.values):
            nodes.append(Cond(f.name, (None,)))  # `Field: null` is "missing or null"
        if f.values is not None:
            mapped = [
                sigma_string(v)
                for v in self._values_map(f, tuple(values), p.cased, p.field, p.span)
            ]
            if mapped:
                nodes.append(quantified(f.name, mapped, p.quantifier))
            return combine(nodes, p.quantifier)
        if f.basename is not None:
            for v in values:
                nodes.append(self._basename_eq(f, scalar_text(v), p.cased, p.field, p.span))
            return combine(nodes, p.quantifier)
        nums = [v for v in values if to_number(v) is not None]
        if nums:
            self._numeric(p.field, f.name, f"equality with {scalar_text(nums[0])!r}", p.span)
        if f.name in self.src.numeric:
            # the field is logged as a number, and siemc reads a numeric string (a lookup's
            # "443") as its number: written as a string, Sigma would compare text with a number
            values = [_as_number(v) for v in values]
        strings = [sigma_string(v) for v in values if isinstance(v, str)]
        others = [v for v in values if not isinstance(v, str)]
        cased = "|cased" if p.cased else ""
        if strings and others and (p.cased or p.quantifier == "all"):
            nodes.append(quantified(f.name + cased, strings, p.quantifier))
            nodes.append(quantified(f.name, others, p.quantifier))
        elif strings or others:
            key = f.name + (cased if strings and not others else "")
            nodes.append(quantified(key, strings + others, p.quantifier))
        return combine(nodes, p.quantifier)

    def _basename_eq(self, f: SigmaField, text: str, cased: bool, name: str, span: ir.Span) -> Node:
        assert f.basename is not None
        if any(sep in text for sep in f.basename):
            self.ctx.approximate(
                f"equality on {name}",
                f"{name} is the part of {f.name} after the last path separator, so it never "
                f"contains one; the value {text!r} is matched as a suffix of {f.name}",
                span,
            )
        mod = "|cased" if cased else ""
        ends = Cond(f"{f.name}|endswith{mod}", tuple(sigma_string(s + text) for s in f.basename))
        if f.bare:
            return disj([ends, Cond(f.name + mod, (sigma_string(text),))])
        return ends

    def visit_StrMatch(self, p: ir.StrMatch) -> Node:
        f = self.field(p.field, p.span)
        if f.values is not None:
            raise self.ctx.unsupported(
                f"'{p.op}' on {p.field}",
                f"{p.field} is translated value by value into {f.name}",
                p.span,
                f"compare {p.field} for equality ({', '.join(sorted(f.values))})",
            )
        mod = "|cased" if p.cased else ""
        if f.basename is None:
            return quantified(
                f"{f.name}|{p.op}{mod}", [sigma_string(v) for v in p.values], p.quantifier
            )
        nodes: list[Node] = []
        seps = re.escape(f.basename)
        start = f"(?:^|[{seps}])" if f.bare else f"[{seps}]"
        for v in p.values:
            if p.op == "endswith" and not any(s in v for s in f.basename):
                nodes.append(Cond(f"{f.name}|endswith{mod}", (sigma_string(v),)))
                continue
            if any(s in v for s in f.basename):
                self.ctx.approximate(
                    f"'{p.op}' on {p.field}",
                    f"{p.field} never contains a path separator; the value {v!r} is matched "
                    f"against the full {f.name}",
                    p.span,
                )
            # the basename is what follows the last separator: anchor the match there
            inner = re.escape(v)
            pattern = {
                "startswith": f"{start}{inner}[^{seps}]*$",
                "contains": f"{start}[^{seps}]*{inner}[^{seps}]*$",
                "endswith": f"{inner}$",
            }[p.op]
            nodes.append(self._regex_cond(f.name, [pattern], p.cased, "any", p.span))
        return combine(nodes, p.quantifier)

    def visit_Regex(self, p: ir.Regex) -> Node:
        f = self.field(p.field, p.span)
        if f.values is not None:
            raise self.ctx.unsupported(
                f"a regular expression on {p.field}",
                f"{p.field} is translated value by value into {f.name}",
                p.span,
                f"compare {p.field} for equality ({', '.join(sorted(f.values))})",
            )
        patterns = list(p.patterns)
        if f.basename is not None:
            seps = re.escape(f.basename)
            if not all(basename_exact(x, f.basename) for x in patterns):
                self.ctx.approximate(
                    f"a regular expression on {p.field}",
                    f"Sigma has no basename: the pattern is matched against the full {f.name}, "
                    f"with a leading '^' rewritten to 'start or after a path separator'; an "
                    f"unanchored pattern may also match a directory name, and '.' or a negated "
                    f"class may cross a separator",
                    p.span,
                )
            patterns = [f"(?:^|[{seps}])" + x[1:] if x.startswith("^") else x for x in patterns]
        return self._regex_cond(f.name, patterns, p.cased, p.quantifier, p.span)

    def _regex_cond(
        self, name: str, patterns: list[str], cased: bool, quantifier: str, span: ir.Span
    ) -> Node:
        texts: list[str] = []
        for x in patterns:
            try:
                r = sigma_regex(x, cased)
            except RegexNotPortable as exc:
                raise self.ctx.unsupported(
                    "regular expression",
                    f"pattern {x!r} cannot be spelled for both Python's re and RE2 ({exc})",
                    span,
                    "rewrite the pattern in the common subset, or compile to splunk",
                ) from None
            for note in r.notes:
                self.ctx.approximate("regular expression", f"{x!r}: {note}", span)
            texts.append(r.text)
        # Sigma's `re` is case-sensitive unless `|i` (sigma-specification, modifiers appendix)
        return quantified(f"{name}|re" + ("" if cased else "|i"), texts, quantifier)

    def _plain(self, name: str, span: ir.Span, what: str) -> SigmaField:
        f = self.field(name, span)
        if f.basename is not None or f.values is not None:
            raise self.ctx.unsupported(
                f"{what} on {name}",
                f"{name} is derived from {f.name} (a path or an enumeration), which Sigma "
                "cannot transform before comparing",
                span,
                "compile to splunk, kql or esql",
            )
        return f

    def _numeric(self, name: str, sigma_field: str, what: str, span: ir.Span) -> None:
        if sigma_field in self.src.numeric:
            return  # logged as a number: Sigma compares numbers, as siemc
        self.ctx.approximate(
            NUMERIC_COMPARISON,
            f"{what} on {name} ({sigma_field}): Sigma backends compare the type the field is "
            "stored with (pySigma's SQLite backend: a string '1050' is not >= 1024, '4444' is "
            "not 4444), while siemc reads a numeric string as its number",
            span,
        )

    def visit_Compare(self, p: ir.Compare) -> Node:
        f = self._plain(p.field, p.span, "a numeric comparison")
        self._numeric(p.field, f.name, f"'{p.op} {scalar_text(p.value)}'", p.span)
        return Cond(f"{f.name}|{p.op}", (sigma_number(p.value),))

    def visit_Exists(self, p: ir.Exists) -> Node:
        # the Inliner declares a test on a Sigma field other ECS fields share (polarity known)
        f = self.field(p.field, p.span)
        return Cond(f"{f.name}|exists", (p.present,))

    def visit_Cidr(self, p: ir.Cidr) -> Node:
        f = self._plain(p.field, p.span, "a CIDR match")
        # siemc reads 10.1.2.3/24 as its network; some Sigma backends reject host bits
        nets = [str(ipaddress.ip_network(n.strip(), strict=False)) for n in p.networks]
        return quantified(f"{f.name}|cidr", nets, p.quantifier)

    def visit_InLookup(self, p: ir.InLookup) -> Node:
        # multi-column lookups are rejected by SigmaBackend.check_support
        column, field_name = p.match[0]
        f = self._plain(field_name, p.span, "a lookup")
        lookup = self.ctx.analytic.lookup(p.lookup)
        placeholder = placeholder_name(p.lookup, column)
        self.ctx.note(
            f"placeholder %{placeholder}% = column '{column}' of lookup '{p.lookup}' "
            f"({lookup.path.rsplit('/', 1)[-1]}); bind it with a pySigma pipeline "
            "(ValueListPlaceholderTransformation / value_placeholders) to the column's values "
            "written as Sigma literals (`*`, `?` and a backslash before them escaped with a "
            "backslash)"
        )
        return Cond(f"{f.name}|expand", (f"%{placeholder}%",))


def _as_number(v: str | int | float) -> str | int | float:
    """A numeric string as its number (an integer where it is one), anything else unchanged."""
    if not isinstance(v, str) or (n := to_number(v)) is None:
        return v
    return int(n) if float(n).is_integer() else n
