"""eval/where expressions: parsed with the grammar oracle's lexer into an AST, then evaluated.

Semantics (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eval and the
function pages under .../CommonEvalFunctions):

* ``=`` and ``==`` are equality; comparisons are numeric when both sides are numbers (numeric
  text included), else case-sensitive string comparisons (Where reference: "where ... is
  case-sensitive", unlike the search command);
* a null operand makes a comparison or arithmetic null, and a null condition is not true (so
  ``where`` drops the row and ``if()`` takes its else branch); AND/OR/NOT use three-valued logic;
* ``+`` adds numbers and concatenates strings, ``.`` always concatenates; ``x/0`` is null;
* a comparison with a multivalue field is true when any value satisfies it (as the search
  command matches multivalue fields); text functions apply to each value.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.interpreters.spl_interp_values import (
    NotExecutable,
    SplRuntimeError,
    mv,
    norm,
    num,
    number_out,
    pcre,
    pcre_replacement,
    relative,
    text,
)
from tests.oracles.spl_grammar import BOOL_FUNCS, Cursor, Tok, _string_value, lex


# ---------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Bin:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str  # NOT or -
    operand: Node


Node = Lit | Field | Call | Bin | Unary


def tokens(text_: str) -> list[Tok]:
    """The grammar oracle's eval tokens, with ``1.5`` (lexed as NUM . NUM) made one number."""
    toks = lex(text_, "eval")
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if (
            t.kind == "NUM"
            and i + 2 < len(toks)
            and toks[i + 1] == Tok("OP", ".")
            and toks[i + 2].kind == "NUM"
        ):
            out.append(Tok("NUM", f"{t.text}.{toks[i + 2].text}"))
            i += 3
            continue
        out.append(t)
        i += 1
    return out


class Parser:
    """OR/XOR < AND < NOT < comparison < + - . < * / % < unary - < primary (Eval reference,
    "Operators")."""

    def __init__(self, cur: Cursor) -> None:
        self.c = cur

    def expr(self) -> Node:
        left = self._and()
        while self.c.at("WORD", "OR") or self.c.at("WORD", "XOR"):
            op = self.c.next().text
            left = Bin(op, left, self._and())
        return left

    def _and(self) -> Node:
        left = self._not()
        while self.c.at("WORD", "AND"):
            self.c.next()
            left = Bin("AND", left, self._not())
        return left

    def _not(self) -> Node:
        if self.c.at("WORD", "NOT"):
            self.c.next()
            return Unary("NOT", self._not())
        return self._cmp()

    def _cmp(self) -> Node:
        left = self._add()
        t = self.c.peek()
        if t is not None and t.kind == "OP" and t.text in ("=", "==", "!=", "<", "<=", ">", ">="):
            self.c.next()
            return Bin("==" if t.text == "=" else t.text, left, self._add())
        return left

    def _add(self) -> Node:
        left = self._mul()
        while (t := self.c.peek()) is not None and t.kind == "OP" and t.text in ("+", "-", "."):
            self.c.next()
            left = Bin(t.text, left, self._mul())
        return left

    def _mul(self) -> Node:
        left = self._unary()
        while (t := self.c.peek()) is not None and t.kind == "OP" and t.text in ("*", "/", "%"):
            self.c.next()
            left = Bin(t.text, left, self._unary())
        return left

    def _unary(self) -> Node:
        if self.c.at("OP", "-"):
            self.c.next()
            return Unary("-", self._primary())
        return self._primary()

    def _primary(self) -> Node:
        t = self.c.next()
        if t.kind == "NUM":
            return Lit(num(t.text))
        if t.kind == "STR":
            return Lit(_string_value(t.text))
        if t.kind == "QF":
            return Field(t.text[1:-1])
        if t.kind == "LP":
            e = self.expr()
            self.c.expect("RP")
            return e
        if t.kind == "WORD":
            if self.c.at("LP"):
                self.c.next()
                args: list[Node] = []
                if not self.c.at("RP"):
                    args.append(self.expr())
                    while self.c.at("COMMA"):
                        self.c.next()
                        args.append(self.expr())
                self.c.expect("RP")
                return Call(t.text, tuple(args))
            return Field(t.text)
        raise SplRuntimeError(f"{self.c.where}: unexpected {t.text!r}")


def parse(text_: str, where: str = "eval") -> Node:
    cur = Cursor(tokens(text_), where)
    node = Parser(cur).expr()
    cur.end()
    return node


def parse_assignments(text_: str) -> list[tuple[str, Node]]:
    """``f=expr, g=expr``: evaluated left to right, each seeing the ones before (Eval reference,
    "Multiple expressions")."""
    cur = Cursor(tokens(text_), "eval")
    out: list[tuple[str, Node]] = []
    while True:
        t = cur.next()
        name = t.text[1:-1] if t.kind == "QF" else t.text
        cur.expect("OP", "=")
        out.append((name, Parser(cur).expr()))
        if cur.done():
            return out
        cur.expect("COMMA")


# ---------------------------------------------------------------------- kinds
# Functions with a Boolean result (the grammar oracle's list, from the Search Reference).
_BOOL_FUNCS = BOOL_FUNCS


def is_boolean(node: Node) -> bool:
    """Whether ``node``'s result is a Boolean, which Splunk decides from the expression alone:
    "Fields cannot be assigned a boolean result" is a parse-time error of eval, whatever the
    data (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eval, Usage)."""
    if isinstance(node, Lit):
        return isinstance(node.value, bool)
    if isinstance(node, Unary):
        return node.op == "NOT"
    if isinstance(node, Bin):
        return node.op in ("AND", "OR", "XOR", "==", "!=", "<", "<=", ">", ">=")
    if isinstance(node, Call):
        if node.name in _BOOL_FUNCS:
            return True
        if node.name == "if":
            return any(is_boolean(a) for a in node.args[1:])
        if node.name == "case":
            return any(is_boolean(a) for a in node.args[1::2])
        if node.name == "coalesce":
            return any(is_boolean(a) for a in node.args)
    return False


# ---------------------------------------------------------------------- evaluation
Row = dict[str, Any]


class Env:
    def __init__(self, now: float) -> None:
        self.now = now


def truth(v: Any) -> bool:
    return v is True


def evaluate(node: Node, row: Row, env: Env) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Field):
        return row.get(node.name)
    if isinstance(node, Unary):
        v = evaluate(node.operand, row, env)
        if node.op == "NOT":
            return None if v is None else not truth(v)
        n = num(v) if not isinstance(v, list) else None
        return None if n is None else -n
    if isinstance(node, Bin):
        return _binary(node, row, env)
    return _call(node, row, env)


def _logic(op: str, a: Any, b: Any) -> Any:
    if op == "AND":
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if op == "OR":
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    return None if a is None or b is None else truth(a) != truth(b)  # XOR


def _single(v: Any, what: str) -> Any:
    """The value an eval operator or function reads, refusing a multivalue: the Search Reference
    documents per-value evaluation only for the multivalue functions (mvfilter, mvfind, mvmap,
    mvcount, ..., "Multivalue eval functions") and for the search command's ``field=value``
    ("Multivalue fields" in Search), never for ``==``, ``like()``, ``match()``, ``lower()`` or
    ``cidrmatch()`` on a multivalue field, so a query relying on that is not executable here
    rather than given a guessed meaning."""
    if isinstance(v, list):
        raise NotExecutable(f"{what} on a multivalue field (per-value meaning undocumented)")
    return v


def compare(op: str, a: Any, b: Any) -> bool | None:
    """A comparison of two single values; null when either side is null."""
    if a is None or b is None:
        return None
    _single(a, f"eval {op}")
    _single(b, f"eval {op}")
    if isinstance(a, bool) or isinstance(b, bool):
        x_, y_ = truth(a), truth(b)
        return {"==": x_ == y_, "!=": x_ != y_}.get(op, False)
    x, y = num(a), num(b)
    if x is not None and y is not None:
        pair: tuple[Any, Any] = (x, y)
    else:
        pair = (text(a), text(b))
    p, q = pair
    result: bool = {
        "==": p == q, "!=": p != q, "<": p < q, "<=": p <= q, ">": p > q, ">=": p >= q,
    }[op]  # fmt: skip
    return result


def _binary(node: Bin, row: Row, env: Env) -> Any:
    op = node.op
    a = evaluate(node.left, row, env)
    if op in ("AND", "OR", "XOR"):
        if op == "AND" and a is False:
            return False
        if op == "OR" and a is True:
            return True
        return _logic(op, a, evaluate(node.right, row, env))
    b = evaluate(node.right, row, env)
    if op in ("==", "!=", "<", "<=", ">", ">="):
        return compare(op, a, b)
    if a is None or b is None or isinstance(a, list) or isinstance(b, list):
        return None
    if op == ".":
        return text(a) + text(b)
    x, y = num(a), num(b)
    if op == "+" and (x is None or y is None):
        return text(a) + text(b) if isinstance(a, str) and isinstance(b, str) else None
    if x is None or y is None:
        return None
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if y == 0:
        return None  # division or modulo by zero is null
    if op == "/":
        return number_out(x / y)
    return math.fmod(x, y)


# ---------------------------------------------------------------------- functions
def _each(v: Any, fn: Callable[[Any], Any]) -> Any:
    return norm([fn(x) for x in mv(_single(v, "a text function"))])


def _cidrmatch(cidr: Any, ip: Any) -> bool | None:
    if cidr is None or ip is None:
        return None
    try:
        net = ipaddress.ip_network(text(cidr), strict=False)
    except ValueError:
        return False
    for value in mv(_single(ip, "cidrmatch()")):
        try:
            if ipaddress.ip_address(text(value)) in net:
                return True
        except ValueError:
            continue
    return False


def _like(s: Any, pattern: Any) -> bool | None:
    if s is None or pattern is None:
        return None
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in text(pattern))
    return any(re.fullmatch(rx, text(v), re.DOTALL) is not None for v in mv(_single(s, "like()")))


def _extreme(values: list[Any], biggest: bool) -> Any:
    """max()/min(): numbers compare numerically and sort below strings (Comparison and
    Conditional functions: max(1, 3, 6, 7, "foo") is "foo")."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    nums = [num(v) for v in vals]
    strs = [text(v) for v, n in zip(vals, nums, strict=True) if n is None]
    numbers = [n for n in nums if n is not None]
    if biggest:
        return max(strs) if strs else max(numbers)
    return min(numbers) if numbers else min(strs)


def _mvfind(values: Any, regex: Any) -> int | None:
    rx = pcre(text(regex))
    for i, v in enumerate(mv(values)):
        if rx.search(text(v)):
            return i
    return None


def _mvdedup(values: Any) -> Any:
    seen: list[Any] = []
    for v in mv(values):
        if v not in seen:
            seen.append(v)
    return norm(seen)


def _round(x: Any, digits: Any = 0) -> Any:
    n = num(x)
    if n is None:
        return None
    d = int(num(digits) or 0)
    r = math.floor(abs(n) * 10**d + 0.5) / 10**d * (1 if n >= 0 else -1)
    return number_out(r) if d == 0 else r


def _tonumber(v: Any, base: Any = None) -> Any:
    if _single(v, "tonumber()") is None:
        return None
    if base is not None and num(base) != 10:
        try:
            return int(text(v), int(num(base) or 10))
        except ValueError:
            return None
    return num(v)


def _case(row: Row, env: Env, args: tuple[Node, ...]) -> Any:
    if len(args) % 2:
        raise SplRuntimeError("case() takes condition/value pairs")
    for i in range(0, len(args), 2):
        if truth(evaluate(args[i], row, env)):
            return evaluate(args[i + 1], row, env)
    return None


def _if(row: Row, env: Env, args: tuple[Node, ...]) -> Any:
    cond = evaluate(args[0], row, env)
    return evaluate(args[1] if truth(cond) else args[2], row, env)


def _fields(node: Node) -> set[str]:
    if isinstance(node, Field):
        return {node.name}
    if isinstance(node, Bin):
        return _fields(node.left) | _fields(node.right)
    if isinstance(node, Unary):
        return _fields(node.operand)
    if isinstance(node, Call):
        return set().union(*(_fields(a) for a in node.args)) if node.args else set()
    return set()


def _mvfilter(row: Row, env: Env, args: tuple[Node, ...]) -> Any:
    """``mvfilter(<predicate>)``: the values of the one field the predicate references for which
    it is true, null when none is (Multivalue eval functions, mvfilter: "can reference only one
    field")."""
    if len(args) != 1:
        raise SplRuntimeError("mvfilter() takes one predicate")
    names = _fields(args[0])
    if len(names) != 1:
        raise SplRuntimeError("mvfilter() must reference exactly one field")
    (name,) = names
    kept = [v for v in mv(row.get(name)) if truth(evaluate(args[0], {**row, name: v}, env))]
    return norm(kept)


def _mvmap(row: Row, env: Env, args: tuple[Node, ...]) -> Any:
    """``mvmap(<mv>, <expression>)``: the expression evaluated once per value of the field, the
    field's name standing for that value (Multivalue eval functions, mvmap)."""
    if len(args) != 2 or not isinstance(args[0], Field):
        raise SplRuntimeError("mvmap() takes a field and an expression")
    name = args[0].name
    return norm([evaluate(args[1], {**row, name: v}, env) for v in mv(row.get(name))])


_LAZY: dict[str, Callable[[Row, Env, tuple[Node, ...]], Any]] = {
    "case": _case,
    "if": _if,
    "mvfilter": _mvfilter,
    "mvmap": _mvmap,
}

# name -> (arity check, implementation over evaluated arguments)
_FUNCS: dict[str, Callable[..., Any]] = {
    "abs": lambda x: None if num(x) is None else abs(num(x)),  # type: ignore[arg-type]
    "cidrmatch": _cidrmatch,
    "coalesce": lambda *a: next((v for v in a if v is not None), None),
    "false": lambda: False,
    "floor": lambda x: None if num(x) is None else math.floor(num(x)),  # type: ignore[arg-type]
    # MathematicalFunctions: ceiling(X) / ceil(X) rounds a number up to the next integer
    "ceil": lambda x: None if num(x) is None else math.ceil(num(x)),  # type: ignore[arg-type]
    "isnotnull": lambda x: x is not None,
    "isnull": lambda x: x is None,
    "len": lambda s: None if s is None else len(text(mv(s)[0])),
    "like": _like,
    "lower": lambda s: _each(s, lambda v: text(v).lower()),
    "upper": lambda s: _each(s, lambda v: text(v).upper()),
    "match": lambda s, rx: (
        None
        if s is None
        else any(pcre(text(rx)).search(text(v)) for v in mv(_single(s, "match()")))
    ),
    "max": lambda *a: _extreme(list(a), True),
    "min": lambda *a: _extreme(list(a), False),
    "mvcount": lambda v: None if v is None else len(mv(v)),
    "mvdedup": _mvdedup,
    "mvfind": _mvfind,
    "mvindex": lambda v, i, j=None: _mvindex(v, i, j),
    # mvappend(X,...): every value of every argument, in order, as one multivalue
    "mvappend": lambda *a: norm([x for v in a for x in mv(v)]),
    "mvjoin": lambda v, sep: None if v is None else text(sep).join(text(x) for x in mv(v)),
    "mvrange": lambda *a: _mvrange(*a),
    "mvsort": lambda v: None if v is None else norm(sorted(text(x) for x in mv(v))),
    "split": lambda s, sep: _split(s, sep),
    "substr": lambda *a: _substr(*a),
    "null": lambda: None,
    "replace": lambda s, rx, repl: _each(
        s, lambda v: pcre(text(rx)).sub(pcre_replacement(text(repl)), text(v))
    ),
    "round": _round,
    "tonumber": _tonumber,
    "trim": lambda s, chars=None: _each(
        s, lambda v: text(v).strip(" \t" if chars is None else text(chars))
    ),
    "true": lambda: True,
}


def _mvrange(start: Any, end: Any, step: Any = 1) -> Any:
    """``mvrange(X,Y[,Z])``: the numbers from X up to, not including, Y, by Z (Multivalue eval
    functions, mvrange)."""
    a, b, c = num(start), num(end), num(step)
    if a is None or b is None or not c:
        return None
    out = []
    x = a
    while (x < b) if c > 0 else (x > b):
        out.append(number_out(x))
        x += c
    return norm(out)


def _split(s: Any, sep: Any) -> Any:
    """``split(X,"Y")``: the text of X cut at every Y, as a multivalue (Multivalue eval
    functions, split)."""
    if s is None or sep is None:
        return None
    return norm(text(_single(s, "split()")).split(text(sep)))


def _substr(s: Any, start: Any, length: Any = None) -> Any:
    """``substr(X,Y[,Z])``: Z characters of X from the 1-based position Y; a negative Y counts
    from the end (Text functions, substr)."""
    if s is None or num(start) is None:
        return None
    t = text(_single(s, "substr()"))
    i = int(num(start) or 0)
    i = i - 1 if i > 0 else (len(t) + i if i < 0 else 0)
    if length is None:
        return t[i:]
    return t[i : i + int(num(length) or 0)]


def _mvindex(v: Any, i: Any, j: Any) -> Any:
    vals = mv(v)
    a = int(num(i) or 0)
    if j is None:
        return vals[a] if -len(vals) <= a < len(vals) else None
    b = int(num(j) or 0)
    b = b if b >= 0 else len(vals) + b
    return norm(vals[a : b + 1])


def _call(node: Call, row: Row, env: Env) -> Any:
    name = node.name
    if name in _LAZY:
        return _LAZY[name](row, env, node.args)
    args = [evaluate(a, row, env) for a in node.args]
    if name == "now":
        return env.now
    if name == "relative_time":
        t = num(args[0])
        return None if t is None or args[1] is None else relative(float(t), text(args[1]))
    if name not in _FUNCS:
        raise NotExecutable(f"eval function {name}()")
    if name in ("isnull", "isnotnull", "coalesce", "null", "true", "false", "mvcount"):
        return _FUNCS[name](*args)
    if name not in ("max", "min", "cidrmatch") and args and args[0] is None:
        return None
    return _FUNCS[name](*args)
