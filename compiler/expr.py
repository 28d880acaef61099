"""Parser for the small expression language of ``derive``, ``compute`` and ``having``.

Precedence, lowest first: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``, unary ``-``.
Names are resolved by the caller (:mod:`compiler.lower`): the parser only builds syntax, with the
offset of every node inside the source string so errors point at the right column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from compiler import ir
from compiler.surface import field_name_problem
from compiler.timeutil import parse_duration, parse_size

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?:[A-Za-z]+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<bq>`[^`]+`)
  | (?P<name>[A-Za-z_@][A-Za-z0-9_@.]*)
  | (?P<op>==|!=|<=|>=|<|>|\+|-|\*|/|\(|\)|,)
""",
    re.VERBOSE,
)

_KEYWORDS = {"and", "or", "not", "null", "true", "false"}

# Expressions nest at most this deep, counting both the parser's nesting (parentheses, call
# arguments, `not`, unary `-`: about eight Python frames each) and the height of the tree it
# builds (`a + a + ... + a` is a chain as deep as it is long). Every consumer (name resolution,
# the evaluator, five backends) recurses over the tree; the bound keeps a hostile expression an
# E130 here instead of a RecursionError anywhere downstream, and is far above real analytics.
MAX_EXPR_DEPTH = 64
_CMP = {"==", "!=", "<", "<=", ">", ">="}


class ExprError(Exception):
    def __init__(
        self,
        message: str,
        offset: int,
        length: int = 1,
        help: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length
        self.help = help
        self.code = code  # None: E130/E131, chosen by the caller


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # num, str, name, op, kw, end
    text: str
    offset: int


@dataclass(frozen=True, slots=True)
class Name:
    """A bare name in an expression, before resolution to a field or measure."""

    text: str
    offset: int


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m:
            hint = {"=": "compare with '=='", "&": "use 'and'", "|": "use 'or'", "!": "use 'not'"}
            raise ExprError(f"unexpected character {text[i]!r}", i, 1, hint.get(text[i]))
        kind = m.lastgroup or ""
        val = m.group()
        if kind == "name" and val in _KEYWORDS:
            kind = "kw"
        if kind == "bq":
            kind, val = "name", val[1:-1]
        if kind == "name":
            # A name reaches every target's query as a field or measure name: it must fit the
            # identifier grammar (compiler.surface), also when written in backticks.
            problem = field_name_problem(val)
            if problem is not None:
                raise ExprError(problem, i, len(m.group()), code="E128")
        if kind != "ws":
            toks.append(Tok(kind, val, i))
        i = m.end()
    toks.append(Tok("end", "", len(text)))
    return toks


def _number(tok: Tok) -> float | int:
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)", tok.text)
    assert m
    digits, unit = m.groups()
    if not unit:
        return float(digits) if any(c in digits for c in ".eE") else int(digits)
    try:
        if unit in ("ms", "s", "m", "h", "d", "w"):
            return parse_duration(tok.text)
        return parse_size(tok.text)
    except ValueError as exc:
        raise ExprError(str(exc), tok.offset, len(tok.text)) from None


class _Parser:
    def __init__(self, text: str, span_of: SpanFn):
        self.toks = tokenize(text)
        self.i = 0
        self.span_of = span_of
        self.nesting = 0  # parentheses, call arguments, `not` and unary `-` open now
        self.heights: dict[int, int] = {}  # id(node) -> height, for every node built

    def _too_deep(self, offset: int) -> ExprError:
        return ExprError(
            f"expression nested more than {MAX_EXPR_DEPTH} levels deep",
            offset,
            1,
            "split it: derive an intermediate field, or compute an intermediate measure",
        )

    def _enter(self, tok: Tok) -> None:
        self.nesting += 1
        if self.nesting > MAX_EXPR_DEPTH:
            raise self._too_deep(tok.offset)

    def _node(self, e: ir.Expr, offset: int) -> ir.Expr:
        """Record the height of ``e`` (built at ``offset``); refuse it past the limit."""
        kids: tuple[ir.Expr, ...] = ()
        if isinstance(e, ir.BinOp):
            kids = (e.left, e.right)
        elif isinstance(e, ir.UnaryOp):
            kids = (e.operand,)
        elif isinstance(e, ir.Call):
            kids = e.args
        height = 1 + max((self.heights.get(id(k), 1) for k in kids), default=0)
        if height > MAX_EXPR_DEPTH:
            raise self._too_deep(offset)
        self.heights[id(e)] = height
        return e

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> Tok:
        if self.tok.text != text or self.tok.kind not in ("op", "kw"):
            raise ExprError(f"expected '{text}', found {self._desc(self.tok)}", self.tok.offset)
        return self.take()

    @staticmethod
    def _desc(t: Tok) -> str:
        return "end of expression" if t.kind == "end" else repr(t.text)

    def parse(self) -> ir.Expr:
        e = self.or_()
        if self.tok.kind != "end":
            prev = self.toks[self.i - 1] if self.i else None
            if self.tok.kind == "name" and prev is not None and prev.kind == "num":
                raise ExprError(
                    f"unexpected {self._desc(self.tok)} after a number",
                    self.tok.offset,
                    len(self.tok.text),
                    f"write the unit next to the number: {prev.text}{self.tok.text}",
                )
            raise ExprError(
                f"unexpected {self._desc(self.tok)}",
                self.tok.offset,
                len(self.tok.text) or 1,
                "combine conditions with 'and' / 'or'",
            )
        return e

    def or_(self) -> ir.Expr:
        left = self.and_()
        while self.tok.kind == "kw" and self.tok.text == "or":
            t = self.take()
            left = self._node(ir.BinOp("or", left, self.and_(), self.span_of(t.offset)), t.offset)
        return left

    def and_(self) -> ir.Expr:
        left = self.not_()
        while self.tok.kind == "kw" and self.tok.text == "and":
            t = self.take()
            left = self._node(ir.BinOp("and", left, self.not_(), self.span_of(t.offset)), t.offset)
        return left

    def not_(self) -> ir.Expr:
        if self.tok.kind == "kw" and self.tok.text == "not":
            t = self.take()
            self._enter(t)
            operand = self.not_()
            self.nesting -= 1
            return self._node(ir.UnaryOp("not", operand, self.span_of(t.offset)), t.offset)
        return self.cmp()

    def cmp(self) -> ir.Expr:
        left = self.add()
        if self.tok.kind == "op" and self.tok.text in _CMP:
            t = self.take()
            right = self.add()
            left = self._node(
                ir.BinOp(t.text, left, right, self.span_of(t.offset)),  # type: ignore[arg-type]
                t.offset,
            )
            if self.tok.kind == "op" and self.tok.text in _CMP:
                raise ExprError(
                    "comparisons cannot be chained",
                    self.tok.offset,
                    len(self.tok.text),
                    "write 'a < b and b < c'",
                )
        return left

    def add(self) -> ir.Expr:
        left = self.mul()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            t = self.take()
            right = self.mul()
            left = self._node(
                ir.BinOp(t.text, left, right, self.span_of(t.offset)),  # type: ignore[arg-type]
                t.offset,
            )
        return left

    def mul(self) -> ir.Expr:
        left = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            t = self.take()
            right = self.unary()
            left = self._node(
                ir.BinOp(t.text, left, right, self.span_of(t.offset)),  # type: ignore[arg-type]
                t.offset,
            )
        return left

    def unary(self) -> ir.Expr:
        if self.tok.kind == "op" and self.tok.text == "-":
            t = self.take()
            self._enter(t)
            operand = self.unary()
            self.nesting -= 1
            return self._node(ir.UnaryOp("-", operand, self.span_of(t.offset)), t.offset)
        return self.atom()

    def atom(self) -> ir.Expr:
        t = self.tok
        if t.kind == "num":
            self.take()
            return ir.Literal_(_number(t), self.span_of(t.offset))
        if t.kind == "str":
            self.take()
            body = re.sub(r"\\(.)", r"\1", t.text[1:-1])
            return ir.Literal_(body, self.span_of(t.offset))
        if t.kind == "kw" and t.text in ("null", "true", "false"):
            self.take()
            value = {"null": None, "true": True, "false": False}[t.text]
            return ir.Literal_(value, self.span_of(t.offset))
        if t.kind == "op" and t.text == "(":
            self.take()
            self._enter(t)
            e = self.or_()
            self.nesting -= 1
            self.expect(")")
            return e
        if t.kind == "name":
            self.take()
            if self.tok.kind == "op" and self.tok.text == "(":
                return self.call(t)
            # Resolved later to a field or a measure; MeasureRef is the neutral placeholder.
            return ir.MeasureRef(t.text, self.span_of(t.offset))
        raise ExprError(f"expected a value, found {self._desc(t)}", t.offset, len(t.text) or 1)

    def call(self, name: Tok) -> ir.Expr:
        self._enter(self.expect("("))
        args: list[ir.Expr] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            args.append(self.or_())
            while self.tok.kind == "op" and self.tok.text == ",":
                self.take()
                args.append(self.or_())
        self.nesting -= 1
        self.expect(")")
        arity = ir.FUNCTIONS.get(name.text)
        if arity is None:
            raise ExprError(
                f"unknown function '{name.text}'",
                name.offset,
                len(name.text),
                "functions: " + ", ".join(sorted(ir.FUNCTIONS)),
            )
        lo, hi = arity
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = str(lo) if hi == lo else f"at least {lo}" if hi is None else f"{lo}-{hi}"
            raise ExprError(
                f"{name.text}() takes {want} argument(s), got {len(args)}",
                name.offset,
                len(name.text),
            )
        return self._node(ir.Call(name.text, tuple(args), self.span_of(name.offset)), name.offset)


class SpanFn:
    """Maps an offset inside the expression string to a source span."""

    def __init__(self, path: str, line: int, col: int):
        self.path, self.line, self.col = path, line, col

    def __call__(self, offset: int) -> ir.Span:
        return ir.Span(self.path, self.line, self.col + offset)


def parse_expr(text: str, span_of: SpanFn) -> ir.Expr:
    """Parse ``text``; names come back as :class:`ir.MeasureRef` for the caller to resolve."""
    if not text.strip():
        raise ExprError("empty expression", 0)
    return _Parser(text, span_of).parse()
