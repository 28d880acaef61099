"""Lowering of ``where`` filters (Sigma-style ``field|modifier`` mappings) to IR predicates."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from compiler import ir
from compiler.diagnostics import Diagnostic
from compiler.source import Path, SourceDoc
from compiler.surface import field_name_problem, plain_name_problem
from compiler.timeutil import parse_duration, parse_size

STRING_OPS = ("contains", "startswith", "endswith")
COMPARE_OPS = ("gt", "gte", "lt", "lte")
OPERATORS = (*STRING_OPS, "re", "cidr", *COMPARE_OPS, "exists")
FLAGS = ("all", "cased")
MODIFIERS = OPERATORS + FLAGS
COMBINATORS = ("any", "all", "not", "lookup")


def number_with_unit(value: Any) -> float | int:
    """``10MB`` -> 10_000_000, ``5m`` -> 300_000 (ms), ``42`` -> 42; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    m = re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", text)
    if m:
        return float(text) if "." in text else int(text)
    unit = re.sub(r"^[0-9.]+", "", text)
    if unit in ("ms", "s", "m", "h", "d", "w"):
        return parse_duration(text)
    return parse_size(text)


# Every consumer of a predicate (evaluator, five backends, their parsers) recurses over it; a
# bound far above what any real rule nests (SigmaHQ's deepest condition is under 10 levels)
# keeps a hostile filter from reaching Python's recursion limit anywhere downstream.
MAX_FILTER_DEPTH = 32


class FilterLowering:
    def __init__(
        self,
        doc: SourceDoc,
        lookups: Mapping[str, Sequence[str]],
        errors: list[Diagnostic],
        broken: frozenset[str] = frozenset(),
    ):
        self.doc = doc
        self.lookups = lookups  # name -> csv columns
        self.errors = errors
        self.broken = broken  # declared lookups whose file failed to load (already reported)
        self.depth = 0

    def span(self, path: Path, *, key: bool = False) -> ir.Span:
        p = self.doc.pos(path, key=key)
        return ir.Span(self.doc.path, p.line, p.col)

    def err(
        self, code: str, msg: str, path: Path, *, key: bool = False, help: str | None = None
    ) -> None:
        self.errors.append(self.doc.diag(code, msg, path, key=key, help=help))

    def lower(self, value: Any, path: Path) -> ir.Predicate:
        self.depth += 1
        try:
            if self.depth > MAX_FILTER_DEPTH:
                self.err(
                    "E127",
                    f"filter nested more than {MAX_FILTER_DEPTH} levels deep",
                    path,
                    help="flatten it: `not` of `not` cancels, and nested `any`/`all` of one "
                    "kind merge into one list",
                )
                return ir.TRUE
            return self._lower(value, path)
        finally:
            self.depth -= 1

    def _lower(self, value: Any, path: Path) -> ir.Predicate:
        if value is None:
            return ir.TRUE
        if isinstance(value, list):
            if not value:
                self.err("E126", "an OR-list of filters cannot be empty", path)
                return ir.TRUE
            alts = tuple(self.lower(v, (*path, i)) for i, v in enumerate(value))
            return alts[0] if len(alts) == 1 else ir.Or(alts, self.span(path))
        if not isinstance(value, dict):
            self.err(
                "E102",
                "a filter is a mapping of 'field|modifier: value' (or a list of them)",
                path,
                help="for example: `process.name|endswith: .exe`",
            )
            return ir.TRUE
        if not value:
            self.err("E126", "a filter mapping cannot be empty", path)
            return ir.TRUE
        items: list[ir.Predicate] = []
        for k, v in value.items():
            kp = (*path, k)
            if k in ("any", "all"):
                if not isinstance(v, list) or not v:
                    self.err("E102", f"'{k}:' takes a non-empty list of filters", kp)
                    continue
                subs = tuple(self.lower(x, (*kp, i)) for i, x in enumerate(v))
                items.append(
                    ir.Or(subs, self.span(kp, key=True))
                    if k == "any"
                    else ir.And(subs, self.span(kp, key=True))
                )
            elif k == "not":
                items.append(ir.Not(self.lower(v, kp), self.span(kp, key=True)))
            elif k == "lookup":
                items.append(self.lookup(v, kp))
            else:
                items.append(self.entry(k, v, kp))
        return items[0] if len(items) == 1 else ir.And(tuple(items), self.span(path))

    def lookup(self, v: Any, path: Path) -> ir.Predicate:
        if not isinstance(v, dict) or set(v) - {"name", "match"} or "name" not in v:
            self.err(
                "E102",
                "'lookup:' takes {name: <lookup>, match: {<column>: <field>, ...}}",
                path,
            )
            return ir.TRUE
        name, match = v["name"], v.get("match")
        if name in self.broken:
            return ir.TRUE
        if name not in self.lookups:
            self.err(
                "E121",
                f"unknown lookup '{name}'",
                (*path, "name"),
                help=known("lookups", self.lookups),
            )
            return ir.TRUE
        if not isinstance(match, dict) or not match:
            self.err("E102", "'match:' maps lookup columns to event fields", (*path, "match"))
            return ir.TRUE
        cols = self.lookups[name]
        pairs: list[tuple[str, str]] = []
        for col, fld in match.items():
            col_problem = plain_name_problem(str(col), "lookup column")
            if col_problem is not None:
                self.err("E128", col_problem, (*path, "match", col), key=True)
            elif col not in cols:
                self.err(
                    "E121",
                    f"lookup '{name}' has no column '{col}'",
                    (*path, "match", col),
                    key=True,
                    help=f"its columns are: {', '.join(cols)}",
                )
            elif not isinstance(fld, str):
                self.err("E102", "expected a field name", (*path, "match", col))
            elif (problem := field_name_problem(fld)) is not None:
                self.err("E128", problem, (*path, "match", col))
            else:
                pairs.append((col, fld))
        return ir.InLookup(name, tuple(pairs), self.span(path, key=True))

    def entry(self, key: str, value: Any, path: Path) -> ir.Predicate:
        field, *mods = key.split("|")
        span = self.span(path, key=True)
        if not field:
            self.err("E123", "missing field name before '|'", path, key=True)
            return ir.TRUE
        if (problem := field_name_problem(field)) is not None:
            self.err("E128", problem, path, key=True)
            return ir.TRUE
        ops = [m for m in mods if m in OPERATORS]
        for m in mods:
            if m not in MODIFIERS:
                self.err(
                    "E123",
                    f"unknown modifier '{m}'",
                    path,
                    key=True,
                    help="modifiers: " + ", ".join(MODIFIERS),
                )
                return ir.TRUE
        if len(ops) > 1 or len(set(mods)) != len(mods):
            self.err("E123", f"conflicting modifiers in '{key}'", path, key=True)
            return ir.TRUE
        op = ops[0] if ops else "eq"
        cased = "cased" in mods
        quant: Any = "all" if "all" in mods else "any"
        values = value if isinstance(value, list) else [value]
        if op not in (*COMPARE_OPS, "exists"):
            # Filter values are read as written (`0777`, `1e3`): a number spelled otherwise
            # than its canonical form stays text, which equality still reads as a number.
            values = [
                self.doc.as_written((*path, i) if isinstance(value, list) else path, v)
                for i, v in enumerate(values)
            ]
        if not values:
            self.err("E126", "empty list of values", path)
            return ir.TRUE
        if cased and op not in ("eq", "re", *STRING_OPS):
            self.err("E123", f"'cased' does not apply to '{op}'", path, key=True)
        if quant == "all" and op in (*COMPARE_OPS, "exists"):
            self.err("E123", f"'all' does not apply to '{op}'", path, key=True)
        if op == "exists":
            if not isinstance(value, bool):
                self.err("E126", "'exists' takes true or false", path)
                return ir.TRUE
            return ir.Exists(field, value, span)
        if op in COMPARE_OPS:
            if isinstance(value, list):
                self.err("E126", f"'{op}' takes one value", path)
                return ir.TRUE
            try:
                num = number_with_unit(value)
            except ValueError as exc:
                self.err("E111", f"'{op}' needs a number: {exc}", path)
                return ir.TRUE
            return ir.Compare(field, op, float(num), span)  # type: ignore[arg-type]
        if any(isinstance(v, dict | list) for v in values):
            self.err("E126", "filter values are strings, numbers, booleans or null", path)
            return ir.TRUE
        if op == "eq":
            return ir.Eq(field, tuple(values), cased, quant, span)
        strs = self._strings(values, path, op)
        if strs is None:
            return ir.TRUE
        if op == "re":
            for i, pat in enumerate(strs):
                try:
                    re.compile(pat)
                except re.error as exc:
                    vp = (*path, i) if isinstance(value, list) else path
                    self.err("E124", f"invalid regular expression: {exc}", vp)
                    return ir.TRUE
            return ir.Regex(field, strs, cased, quant, span)
        if op == "cidr":
            for i, net in enumerate(strs):
                try:
                    ipaddress.ip_network(net, strict=False)
                except ValueError as exc:
                    vp = (*path, i) if isinstance(value, list) else path
                    self.err("E125", f"invalid CIDR network: {exc}", vp)
                    return ir.TRUE
            return ir.Cidr(field, strs, quant, span)
        return ir.StrMatch(field, op, strs, cased, quant, span)  # type: ignore[arg-type]

    def _strings(self, values: list[Any], path: Path, op: str) -> tuple[str, ...] | None:
        out = []
        for v in values:
            if v is None or isinstance(v, bool):
                self.err("E126", f"'{op}' takes strings", path)
                return None
            out.append(str(v))
        if op in STRING_OPS and any(s == "" for s in out):
            self.err("E126", f"'{op}' with an empty string matches everything", path)
            return None
        return tuple(out)


def known(what: str, names: Iterable[str]) -> str:
    listed = sorted(names)
    return f"known {what}: " + (", ".join(listed) if listed else "(none)")


def walk(pred: ir.Predicate, fn: Callable[[ir.Predicate], None]) -> None:
    fn(pred)
    if isinstance(pred, ir.And | ir.Or):
        for p in pred.items:
            walk(p, fn)
    elif isinstance(pred, ir.Not):
        walk(pred.item, fn)
