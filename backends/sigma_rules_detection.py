"""Sigma detections: per-logsource field mapping, value escaping and the predicate -> selection
translation of the Sigma backend (:mod:`backends.sigma_rules`).

A filter becomes a small boolean tree whose leaves are Sigma *field conditions*
(``Image|endswith: [...]``); :class:`DetectionRenderer` then groups the leaves into named
selections (a map is an AND, a list of maps an OR) and writes the ``condition`` string.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from backends.base import E_NO_SOURCE, E_UNMAPPED, CompileError, Context, _diag
from backends.profiles import FieldProfile, describe, ecs_array_fields, source_keys
from compiler import ir
from compiler.evaluator.values import to_number

# Sigma string values treat `*` and `?` as wildcards and `\` as their escape character
# (sigma-specification, "Escaping"): `\*`, `\?` and `\\` are the literal characters, while a
# backslash before anything else is itself (so Windows paths stay readable: `\cmd.exe`).
SIGMA_ESCAPES: dict[str, str] = {"*": "\\*", "?": "\\?"}
_ESCAPE_RE = re.compile(r"\\(?=[\\*?])|[*?]")


def sigma_string(value: str) -> str:
    """A literal string as a Sigma value (no wildcard left)."""
    return _ESCAPE_RE.sub(lambda m: SIGMA_ESCAPES.get(m.group(0), "\\\\"), value)


def scalar_text(value: ir.Scalar) -> str:
    """The text a substring operator reads from a scalar (docs/semantics.md)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# The approximation every comparison with a number records (an Eq with a numeric value, a Compare).
NUMERIC_COMPARISON = "numeric comparison on a field that may be logged as a string"


def sigma_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


# ---------------------------------------------------------------------- field mapping
@dataclass(frozen=True)
class SigmaField:
    name: str
    basename: str | None = None  # separators: the ECS field is the text after the last one
    bare: bool = False  # the Sigma field may hold the name with no separator at all
    values: dict[str, str] | None = None  # ECS value -> Sigma value


@dataclass(frozen=True)
class SourceMap:
    """One logsource's Sigma form and field names."""

    key: str
    logsource: dict[str, str]
    fields: dict[str, Any]
    prefixes: dict[str, str]
    unavailable: dict[str, str]


def source_map(profile: FieldProfile, ls: ir.LogSource, span: ir.Span) -> SourceMap:
    # product/service beats category/product: a Zeek log's field names depend on the service,
    # not on the category the analytic files it under
    for key in source_keys(ls):
        entry = profile.source(key)
        if entry is None:
            continue
        if "no_source" in entry:
            raise CompileError(
                [
                    _diag(
                        E_NO_SOURCE,
                        f"the {profile.name} profile has no Sigma log source for logsource "
                        f"{describe(ls)} (sigma)",
                        span,
                        str(entry["no_source"]),
                    )
                ]
            )
        logsource: dict[str, str] = {
            k: v for k in ("category", "product", "service") if (v := getattr(ls, k))
        }
        for k, v in (entry.get("logsource") or {}).items():
            if v is None:
                logsource.pop(k, None)
            else:
                logsource[k] = v
        return SourceMap(
            key,
            {k: logsource[k] for k in ("category", "product", "service") if k in logsource},
            dict(entry.get("fields") or {}),
            dict(entry.get("prefixes") or {}),
            dict(entry.get("unavailable") or {}),
        )
    raise CompileError(
        [
            _diag(
                E_NO_SOURCE,
                f"the {profile.name} profile has no Sigma log source for logsource "
                f"{describe(ls)} (sigma)",
                span,
                "add an entry to backends/profiles/sigma.yml `sources`, or use a logsource "
                "category (process_creation, network_connection, dns_query) or a Zeek "
                "product/service",
            )
        ]
    )


def map_field(profile: FieldProfile, src: SourceMap, name: str, span: ir.Span) -> SigmaField:
    where = f"logsource {src.key}"
    reason = src.unavailable.get(name) or profile.unavailable.get(name)
    spec: Any = src.fields.get(name)
    if spec is None and reason is None:
        for prefix, repl in src.prefixes.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                spec = repl + name[len(prefix) :]
                break
    if reason is not None and name not in src.fields:
        help = reason
    elif spec is not None:
        if isinstance(spec, str):
            return SigmaField(spec)
        return SigmaField(
            str(spec["field"]),
            spec.get("basename"),
            bool(spec.get("bare", False)),
            {str(k): str(v) for k, v in spec["values"].items()} if spec.get("values") else None,
        )
    else:
        near = sorted(k for k in src.fields if k.split(".")[0] == name.split(".")[0])[:6]
        hint = f"mapped fields near it: {', '.join(near)}" if near else "no similar fields"
        help = f"add it to backends/profiles/{profile.name}.yml under {src.key} ({hint})"
    raise CompileError(
        [
            _diag(
                E_UNMAPPED,
                f"field '{name}' has no mapping in the {profile.name} profile for {where} (sigma)",
                span,
                help,
            )
        ]
    )


# ---------------------------------------------------------------------- boolean tree
@dataclass(frozen=True)
class Cond:
    """One Sigma field condition: ``key`` is ``Field|modifier|...``."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Neg:
    item: Node


Node = Cond | All | Any_ | Neg


def conj(items: list[Node]) -> Node:
    flat: list[Node] = []
    for x in items:
        flat.extend(x.items if isinstance(x, All) else (x,))
    return flat[0] if len(flat) == 1 else All(tuple(flat))


def disj(items: list[Node]) -> Node:
    flat: list[Node] = []
    for x in items:
        flat.extend(x.items if isinstance(x, Any_) else (x,))
    # `a: [x]` or `a: [y]` is `a: [x, y]` (Sigma lists are ORs) unless the key carries |all
    merged: dict[str, int] = {}
    out: list[Node] = []
    for x in flat:
        if isinstance(x, Cond) and "|all" not in x.key:
            if x.key in merged:
                i = merged[x.key]
                prev = out[i]
                assert isinstance(prev, Cond)
                out[i] = Cond(
                    x.key, prev.values + tuple(v for v in x.values if v not in prev.values)
                )
                continue
            merged[x.key] = len(out)
        out.append(x)
    return out[0] if len(out) == 1 else Any_(tuple(out))


def neg(item: Node) -> Node:
    return item.item if isinstance(item, Neg) else Neg(item)


def quantified(key: str, values: list[Any], quantifier: str) -> Node:
    """``key: values`` with the `all` quantifier; Sigma forbids `|all` on a single value."""
    if quantifier == "all" and len(values) > 1:
        return Cond(key + "|all", tuple(values))
    return Cond(key, tuple(values))


def combine(nodes: list[Node], quantifier: str) -> Node:
    return conj(nodes) if quantifier == "all" else disj(nodes)


# ---------------------------------------------------------------------- rendering
class DetectionRenderer:
    """Named selections and the condition string for one boolean tree."""

    def __init__(self) -> None:
        self.selections: dict[str, Any] = {}

    def _name(self, base: str) -> str:
        if base not in self.selections:
            return base
        n = 2
        while f"{base}_{n}" in self.selections:
            n += 1
        return f"{base}_{n}"

    def _add(self, body: Any, negated: bool) -> str:
        name = self._name("filter" if negated else "selection")
        self.selections[name] = body
        return name

    @staticmethod
    def _value(values: tuple[Any, ...]) -> Any:
        return values[0] if len(values) == 1 else list(values)

    def _as_map(self, node: Node) -> dict[str, Any] | None:
        """A condition or an AND of conditions on distinct keys, as one selection map."""
        conds = (
            [node] if isinstance(node, Cond) else list(node.items) if isinstance(node, All) else []
        )
        if not conds or not all(isinstance(c, Cond) for c in conds):
            return None
        keys = [c.key for c in conds if isinstance(c, Cond)]
        if len(set(keys)) != len(keys):
            return None
        return {c.key: self._value(c.values) for c in conds if isinstance(c, Cond)}

    def condition(self, node: Node, negated: bool = False) -> str:
        if isinstance(node, Neg):
            return "not " + self._group(node.item, not negated)
        as_map = self._as_map(node)
        if as_map is not None:
            return self._add(as_map, negated)
        if isinstance(node, All):
            # the conditions on distinct keys share one selection, the rest stand alone
            plain: dict[str, Any] = {}
            rest: list[Node] = []
            for item in node.items:
                if isinstance(item, Cond) and item.key not in plain:
                    plain[item.key] = self._value(item.values)
                else:
                    rest.append(item)
            parts = [self._add(plain, negated)] if plain else []
            parts += [self._group(x, negated) for x in rest]
            return " and ".join(parts)
        assert isinstance(node, Any_)
        maps = [self._as_map(x) for x in node.items]
        if all(m is not None for m in maps):
            # a list of maps is an OR of ANDs (sigma-specification, "Lists of maps")
            return self._add([m for m in maps if m is not None], negated)
        return " or ".join(self._group(x, negated) for x in node.items)

    def _group(self, node: Node, negated: bool) -> str:
        text = self.condition(node, negated)
        return f"({text})" if " and " in text or " or " in text else text


MULTI_VALUED = (
    "the Sigma specification does not say how a value matches a list-valued field: "
    "Elasticsearch backends match any element, SQL backends (pySigma's SQLite backend stores a "
    "list as its JSON text) compare the whole stored value, so a test that siemc holds when "
    "some element satisfies it may miss (or, for substrings, match across elements)"
)


def multi_valued(ctx: Context, what: str, name: str, span: ir.Span) -> None:
    """Declare a test, key or measure on an ECS array field (see MULTI_VALUED)."""
    ctx.approximate(f"{what} on the multi-valued field {name}", MULTI_VALUED, span)


# ---------------------------------------------------------------------- predicates
class FilterTranslator:
    """IR predicates of one stream -> a :data:`Node` tree, with its logsource's field names."""

    def __init__(self, ctx: Context, src: SourceMap, lookup_notes: list[str]) -> None:
        self.ctx = ctx
        self.src = src
        self.notes = lookup_notes

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
            nodes.append(Cond(f"{f.name}|re" + ("" if p.cased else "|i"), (pattern,)))
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
            self.ctx.approximate(
                f"a regular expression on {p.field}",
                f"Sigma has no basename: the pattern is matched against the full {f.name}, "
                f"with a leading '^' rewritten to 'start or after a path separator'; an "
                f"unanchored pattern may also match a directory name, and '.' or a negated "
                f"class may cross a separator",
                p.span,
            )
            patterns = [f"(?:^|[{seps}])" + x[1:] if x.startswith("^") else x for x in patterns]
        # Sigma's `re` is case-sensitive unless `|i` (sigma-specification, modifiers appendix)
        return quantified(f"{f.name}|re" + ("" if p.cased else "|i"), patterns, p.quantifier)

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
        self.notes.append(
            f"placeholder %{placeholder}% = column '{column}' of lookup '{p.lookup}' "
            f"({lookup.path.rsplit('/', 1)[-1]}); bind it with a pySigma pipeline "
            "(ValueListPlaceholderTransformation / value_placeholders) to the column's values "
            "written as Sigma literals (`*`, `?` and a backslash before them escaped with a "
            "backslash)"
        )
        return Cond(f"{f.name}|expand", (f"%{placeholder}%",))


def placeholder_name(lookup: str, column: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{lookup}_{column}")
