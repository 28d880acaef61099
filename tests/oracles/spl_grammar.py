"""A grammar check for the subset of Splunk SPL that siemc emits.

No SPL parser exists offline (docs/.../oracles.md), so this module is the validator: a lexer
plus per-command argument rules written from the Splunk Search Reference, for exactly the
commands and eval functions the splunk backend emits. It rejects what Splunk would reject in
that subset: unbalanced quotes, brackets or parentheses, unterminated ``` comments, unknown
commands, unknown eval/stats functions or wrong arities, ``BY`` without fields, bad spans,
``==`` in a search expression, options a command does not take, invalid regexes in rex, and
Boolean/value confusion in eval expressions (an eval assigning a Boolean, a where or if()
condition or an AND/OR/NOT operand that is not a Boolean).

``validate(query)`` raises :class:`SplError`; ``check(query)`` returns the error text or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DOCS = "https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/"


class SplError(ValueError):
    pass


@dataclass
class Tok:
    kind: str  # STR (double-quoted), QF ('field'), SUB ([...]), WORD, NUM, OP, LP, RP, COMMA
    text: str


# ---------------------------------------------------------------------- comments and pipes
def strip_comments(q: str) -> str:
    """``` ... ``` are removed before parsing, even inside quoted strings
    (https://docs.splunk.com/Documentation/Splunk/latest/Search/Addcommentstosearches)."""
    out = []
    i = 0
    while True:
        j = q.find("```", i)
        if j < 0:
            out.append(q[i:])
            return "".join(out)
        k = q.find("```", j + 3)
        if k < 0:
            raise SplError("unterminated ``` comment")
        out.append(q[i:j])
        i = k + 3


def _scan_string(s: str, i: int) -> int:
    """Index after the double-quoted string starting at s[i]; backslash escapes the next char."""
    j = i + 1
    while j < len(s):
        if s[j] == "\\":
            j += 2
            continue
        if s[j] == '"':
            return j + 1
        j += 1
    raise SplError(f"unbalanced double quote at offset {i}")


def split_pipes(q: str) -> list[str]:
    parts, depth, start, i = [], 0, 0, 0
    while i < len(q):
        c = q[i]
        if c == '"':
            i = _scan_string(q, i)
            continue
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth < 0:
                raise SplError("unbalanced ']'")
        elif c == "|" and depth == 0:
            parts.append(q[start:i])
            start = i + 1
        i += 1
    if depth:
        raise SplError("unbalanced '['")
    parts.append(q[start:])
    return parts


# ---------------------------------------------------------------------- lexer
_EVAL_OPS = ("==", "!=", "<=", ">=", "<", ">", "=", "+", "-", "*", "/", "%", ".")
_SEARCH_OPS = ("!=", "<=", ">=", "==", "<", ">", "=")


def lex(s: str, mode: str) -> list[Tok]:
    toks: list[Tok] = []
    ops = _EVAL_OPS if mode == "eval" else _SEARCH_OPS
    i = 0
    while i < len(s):
        c = s[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j = _scan_string(s, i)
            toks.append(Tok("STR", s[i:j]))
            i = j
        elif c == "'" and mode == "eval":
            j = s.find("'", i + 1)
            if j < 0:
                raise SplError("unbalanced single quote")
            toks.append(Tok("QF", s[i : j + 1]))
            i = j + 1
        elif c == "[":
            depth, j = 0, i
            while j < len(s):
                if s[j] == '"':
                    j = _scan_string(s, j)
                    continue
                depth += {"[": 1, "]": -1}.get(s[j], 0)
                j += 1
                if depth == 0:
                    break
            if depth:
                raise SplError("unbalanced '['")
            toks.append(Tok("SUB", s[i + 1 : j - 1]))
            i = j
        elif c in "()":
            toks.append(Tok("LP" if c == "(" else "RP", c))
            i += 1
        elif c == ",":
            toks.append(Tok("COMMA", c))
            i += 1
        elif c == "]":
            raise SplError("unbalanced ']'")
        else:
            op = next((o for o in ops if s.startswith(o, i)), None)
            if op == "=" and mode == "eval" and s.startswith("===", i):
                raise SplError("'===' is not an operator")
            if op is not None and (mode == "eval" or op != "*"):
                toks.append(Tok("OP", op))
                i += len(op)
                continue
            j = i
            stop = ' \t\r\n"()[],=<>!' + ("+-*/%.'" if mode == "eval" else "")
            while j < len(s) and s[j] not in stop:
                j += 1
            if j == i:
                raise SplError(f"unexpected character {s[i]!r}")
            word = s[i:j]
            kind = "NUM" if re.fullmatch(r"\d+(\.\d+)?([eE][+-]?\d+)?", word) else "WORD"
            toks.append(Tok(kind, word))
            i = j
    return toks


class Cursor:
    def __init__(self, toks: list[Tok], where: str):
        self.toks, self.i, self.where = toks, 0, where

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> Tok:
        t = self.peek()
        if t is None:
            raise SplError(f"{self.where}: unexpected end")
        self.i += 1
        return t

    def expect(self, kind: str, text: str | None = None) -> Tok:
        t = self.next()
        if t.kind != kind or (text is not None and t.text != text):
            raise SplError(f"{self.where}: expected {text or kind}, found {t.text!r}")
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.peek()
        return t is not None and t.kind == kind and (text is None or t.text == text)

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def end(self) -> None:
        if not self.done():
            raise SplError(f"{self.where}: unexpected {self.toks[self.i].text!r}")


# ---------------------------------------------------------------------- eval expressions
# Evaluation functions: https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/CommonEvalFunctions
# (name: (min args, max args or None)). Comparison and Conditional, Conversion, Mathematical,
# Multivalue, Text, Date and Time function pages.
EVAL_FUNCS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "case": (2, None),  # ConditionalFunctions#case: pairs of condition, value
    "ceil": (1, 1),  # MathematicalFunctions#ceiling(X)_or_ceil(X)
    "cidrmatch": (2, 2),
    "coalesce": (1, None),
    "false": (0, 0),
    "floor": (1, 1),
    "if": (3, 3),
    "in": (2, None),  # ConditionalFunctions#in: a field and one or more values
    "isbool": (1, 1),
    "isint": (1, 1),
    "isnum": (1, 1),
    "isstr": (1, 1),
    "isnotnull": (1, 1),
    "isnull": (1, 1),
    "len": (1, 1),
    "like": (2, 2),
    "lower": (1, 1),
    "match": (2, 2),
    "max": (1, None),
    "min": (1, None),
    "mvappend": (1, None),  # MultivalueEvalFunctions#mvappend(X,...)
    "mvcount": (1, 1),
    "mvdedup": (1, 1),
    "mvfilter": (1, 1),  # MultivalueEvalFunctions#mvfilter: one predicate over one field
    "mvfind": (2, 2),
    "mvmap": (2, 2),  # MultivalueEvalFunctions#mvmap: the field, an expression of its value
    "mvindex": (2, 3),
    "mvjoin": (2, 2),  # MultivalueEvalFunctions#mvjoin(MV,STR)
    "mvrange": (2, 3),  # MultivalueEvalFunctions#mvrange(X,Y,Z)
    "mvsort": (1, 1),  # MultivalueEvalFunctions#mvsort(X): lexicographic
    "split": (2, 2),  # MultivalueEvalFunctions#split(X,"Y")
    "substr": (2, 3),  # TextFunctions#substr(X,Y,Z): 1-based
    "now": (0, 0),
    "null": (0, 0),
    "relative_time": (2, 2),
    "replace": (3, 3),
    "round": (1, 2),
    "searchmatch": (1, 1),
    "strftime": (2, 2),
    "tonumber": (1, 2),
    "trim": (1, 2),
    "true": (0, 0),
    "upper": (1, 1),
}
_REGEX_ARG = {"match": 1, "replace": 1, "mvfind": 1}  # argument index that is a regex


def _string_value(lit: str) -> str:
    body = lit[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


# Functions whose result is a Boolean (ConditionalFunctions: cidrmatch, in, like, match,
# searchmatch, true, false; InformationalFunctions: isnull, isnotnull, isbool, isint, isnum,
# isstr). The eval command cannot store a Boolean in a field ("Fields cannot be assigned a
# boolean result. Instead, try if([bool expr], [expr], [expr])", DOCS + "Eval", Usage: "the
# result of an eval expression cannot be a Boolean"), and where, if() and case() conditions and
# the operands of AND/OR/XOR/NOT must be Booleans.
BOOL_FUNCS = {
    "cidrmatch", "false", "in", "isbool", "isint", "isnotnull", "isnull", "isnum", "isstr",
    "like", "match", "searchmatch", "true",
}  # fmt: skip
BOOL, VALUE = "boolean", "value"


class EvalParser:
    """Eval expression grammar (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eval,
    "Operators"): OR/XOR < AND < NOT < comparison (= and == are both equality) < + - . <
    * / % < unary - < primary. Each method returns the kind of its result: Boolean or value."""

    def __init__(self, cur: Cursor):
        self.c = cur

    def _need_bool(self, kind: str, what: str) -> None:
        if kind != BOOL:
            raise SplError(f"{self.c.where}: {what} only takes boolean arguments")

    def expr(self) -> str:
        kind = self._and()
        while self.c.at("WORD", "OR") or self.c.at("WORD", "XOR"):
            op = self.c.next().text
            self._need_bool(kind, f"'{op}'")
            self._need_bool(self._and(), f"'{op}'")
        return kind

    def _and(self) -> str:
        kind = self._not()
        while self.c.at("WORD", "AND"):
            self.c.next()
            self._need_bool(kind, "'AND'")
            self._need_bool(self._not(), "'AND'")
        return kind

    def _not(self) -> str:
        if self.c.at("WORD", "NOT"):
            self.c.next()
            self._need_bool(self._not(), "'NOT'")
            return BOOL
        return self._cmp()

    def _cmp(self) -> str:
        kind = self._add()
        t = self.c.peek()
        if t is not None and t.kind == "OP" and t.text in ("=", "==", "!=", "<", "<=", ">", ">="):
            self.c.next()
            self._add()
            t = self.c.peek()
            if t is not None and t.kind == "OP" and t.text in ("=", "==", "!=", "<", ">"):
                raise SplError(f"{self.c.where}: chained comparison")
            return BOOL
        return kind

    def _add(self) -> str:
        kind = self._mul()
        while self.c.peek() is not None and self.c.at("OP") and self.c.peek().text in "+-.":  # type: ignore[union-attr]
            self.c.next()
            self._mul()
            kind = VALUE
        return kind

    def _mul(self) -> str:
        kind = self._unary()
        while self.c.peek() is not None and self.c.at("OP") and self.c.peek().text in "*/%":  # type: ignore[union-attr]
            self.c.next()
            self._unary()
            kind = VALUE
        return kind

    def _unary(self) -> str:
        if self.c.at("OP", "-"):
            self.c.next()
            self._primary()
            return VALUE
        return self._primary()

    def _primary(self) -> str:
        t = self.c.next()
        if t.kind in ("NUM", "STR", "QF"):
            return VALUE
        if t.kind == "LP":
            kind = self.expr()
            self.c.expect("RP")
            return kind
        if t.kind == "WORD":
            if t.text in ("AND", "OR", "NOT", "XOR"):
                raise SplError(f"{self.c.where}: operand expected before {t.text}")
            if self.c.at("LP"):
                return self._call(t.text)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t.text):
                raise SplError(f"{self.c.where}: bad field name {t.text!r} (quote it with '')")
            return VALUE  # a field: it can only hold values
        raise SplError(f"{self.c.where}: unexpected {t.text!r}")

    def _call(self, name: str) -> str:
        if name not in EVAL_FUNCS:
            raise SplError(f"{self.c.where}: unknown eval function {name}()")
        self.c.expect("LP")
        args: list[list[Tok]] = []
        kinds: list[str] = []
        if not self.c.at("RP"):
            while True:
                start = self.c.i
                kinds.append(self.expr())
                args.append(self.c.toks[start : self.c.i])
                if self.c.at("COMMA"):
                    self.c.next()
                    continue
                break
        self.c.expect("RP")
        lo, hi = EVAL_FUNCS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            raise SplError(f"{self.c.where}: {name}() takes {lo}..{hi} arguments, got {len(args)}")
        if name == "case" and len(args) % 2:
            raise SplError(f"{self.c.where}: case() takes condition/value pairs")
        k = _REGEX_ARG.get(name)
        if k is not None and len(args[k]) == 1 and args[k][0].kind == "STR":
            _check_regex(_string_value(args[k][0].text), self.c.where)
        if name in BOOL_FUNCS:
            return BOOL
        if name == "if":
            self._need_bool(kinds[0], "if() condition")
            return BOOL if BOOL in kinds[1:] else VALUE
        if name == "case":
            for cond in kinds[0::2]:
                self._need_bool(cond, "case() condition")
            return BOOL if BOOL in kinds[1::2] else VALUE
        return BOOL if name == "coalesce" and BOOL in kinds else VALUE


def _check_regex(pattern: str, where: str) -> None:
    """PCRE syntax, checked with Python's re after mapping the PCRE-only spellings used (named
    groups, \\z, \\x{h}, POSIX classes, \\p{Nd}: the interpreter's mapping)."""
    from tests.interpreters.spl_interp_values import SplRuntimeError, pcre

    try:
        pcre(pattern)
    except SplRuntimeError as exc:
        raise SplError(f"{where}: {exc}") from None


def parse_eval_expr(text: str, where: str) -> str:
    """Check an eval expression; returns the kind of its result (BOOL or VALUE)."""
    c = Cursor(lex(text, "eval"), where)
    if c.done():
        raise SplError(f"{where}: empty expression")
    kind = EvalParser(c).expr()
    c.end()
    return kind


# ---------------------------------------------------------------------- search expressions
def parse_search_expr(toks: list[Tok], where: str) -> None:
    """https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Search: terms,
    field=value / != < <= > >= comparisons (a single =), NOT, AND, OR (upper case) and
    parentheses; juxtaposition is AND."""
    c = Cursor(toks, where)

    def or_expr() -> None:
        and_expr()
        while c.at("WORD", "OR"):
            c.next()
            and_expr()

    def and_expr() -> None:
        unary()
        while not c.done() and not c.at("RP") and not c.at("WORD", "OR"):
            if c.at("WORD", "AND"):
                c.next()
            unary()

    def unary() -> None:
        if c.at("WORD", "NOT"):
            c.next()
            unary()
            return
        t = c.next()
        if t.kind == "LP":
            or_expr()
            c.expect("RP")
            return
        if t.kind == "STR":
            return
        if t.kind not in ("WORD", "NUM") or t.text in ("AND", "OR"):
            raise SplError(f"{where}: unexpected {t.text!r}")
        if c.at("OP"):
            op = c.next().text
            if op == "==":
                raise SplError(f"{where}: '==' is not a search operator (use '=')")
            v = c.next()
            if v.kind not in ("WORD", "NUM", "STR"):
                raise SplError(f"{where}: value expected after {t.text}{op}")

    if c.done():
        return
    or_expr()
    c.end()


# ---------------------------------------------------------------------- commands
SPAN = re.compile(r"^-?\d+(\.\d+)?(ms|s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w|mon)?$")
# Stats functions: https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/CommonStatsFunctions
STATS_FUNCS = {
    "avg", "count", "dc", "distinct_count", "earliest", "estdc", "first", "last", "latest",
    "list", "max", "median", "min", "mode", "range", "stdev", "stdevp", "sum", "values", "var",
}  # fmt: skip
_PERC = re.compile(r"^(exactperc|perc|upperperc|p)(\d+(\.\d+)?)$")
FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*\*?$")


def _field(t: Tok, where: str, wildcard: bool = False) -> None:
    ok = t.kind == "WORD" and (
        FIELD.match(t.text) or (wildcard and re.fullmatch(r"[\w.*]+", t.text))
    )
    if not ok:
        raise SplError(f"{where}: field name expected, found {t.text!r}")


def _options(c: Cursor, allowed: Mapping[str, Callable[[Tok], bool]], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    while c.at("WORD") and c.peek(1) == Tok("OP", "="):
        name = c.next().text
        c.next()
        if name not in allowed:
            raise SplError(f"{where}: unknown option {name}=")
        v = c.next()
        if v.kind == "OP" and v.text == "-":  # earliest=-14d and similar
            v = Tok(c.peek().kind if c.peek() else "WORD", "-" + c.next().text)  # type: ignore[union-attr]
        if not allowed[name](v):
            raise SplError(f"{where}: bad value {v.text!r} for {name}=")
        out[name] = v.text
    return out


def _is_span(t: Tok) -> bool:
    return bool(SPAN.match(t.text))


def _is_int(t: Tok) -> bool:
    return t.kind == "NUM" and t.text.isdigit()


def _is_bool(t: Tok) -> bool:
    return t.text.lower() in ("t", "f", "true", "false", "1", "0")


def _stats_body(c: Cursor, where: str) -> None:
    """<stats-func>(<field>) [AS <name>] ... [BY <field-list>]"""
    n = 0
    while not c.done() and not c.at("WORD", "BY") and not c.at("WORD", "by"):
        t = c.expect("WORD")
        fn = t.text
        if not (fn in STATS_FUNCS or _PERC.match(fn)):
            raise SplError(f"{where}: unknown stats function {fn}")
        if c.at("LP"):
            c.next()
            arg = c.next()
            if arg.kind == "WORD" and arg.text == "eval" and c.at("LP"):
                raise SplError(f"{where}: eval() arguments are not emitted by siemc")
            _field(arg, where)
            c.expect("RP")
        elif fn != "count":
            raise SplError(f"{where}: {fn} needs a field argument")
        if c.at("WORD", "AS") or c.at("WORD", "as"):
            c.next()
            _field(c.expect("WORD"), where)
        if c.at("COMMA"):
            c.next()
        n += 1
    if n == 0:
        raise SplError(f"{where}: no statistical function")
    if not c.done():
        c.next()
        if c.done():
            raise SplError(f"{where}: BY needs field names")
        while not c.done():
            _field(c.next(), where)
            if c.at("COMMA"):
                c.next()


def cmd_search(text: str, where: str) -> None:
    parse_search_expr(lex(text, "search"), where)


def cmd_where(text: str, where: str) -> None:
    """where <predicate-expression>: "an eval expression that evaluates to a Boolean value"
    (DOCS + "Where")."""
    if parse_eval_expr(text, where) != BOOL:
        raise SplError(f"{where}: where needs a boolean expression")


def cmd_eval(text: str, where: str) -> None:
    """eval <field>=<expression>[, <field>=<expression>]* (DOCS + "Eval")"""
    c = Cursor(lex(text, "eval"), where)
    while True:
        t = c.next()
        if t.kind not in ("WORD", "QF"):
            raise SplError(f"{where}: field name expected, found {t.text!r}")
        c.expect("OP", "=")
        start = c.i
        depth = 0
        while not c.done() and not (depth == 0 and c.at("COMMA")):
            k = c.next().kind
            depth += {"LP": 1, "RP": -1}.get(k, 0)
        sub = Cursor(c.toks[start : c.i], where)
        if sub.done():
            raise SplError(f"{where}: empty expression for {t.text}")
        if EvalParser(sub).expr() == BOOL:
            raise SplError(
                f"{where}: fields cannot be assigned a boolean result ({t.text}); "
                "use if(<bool expr>, <expr>, <expr>)"
            )
        sub.end()
        if c.done():
            return
        c.expect("COMMA")


def cmd_bin(text: str, where: str) -> None:
    """bin [span=<span>] [aligntime=<time>] [bins=<int>] <field> [AS <newfield>] (DOCS + "Bin")"""
    c = Cursor(lex(text, "search"), where)
    _options(c, {"span": _is_span, "bins": _is_int, "aligntime": lambda t: True}, where)
    _field(c.expect("WORD"), where)
    if c.at("WORD", "AS"):
        c.next()
        _field(c.expect("WORD"), where)
    c.end()


def cmd_stats(text: str, where: str) -> None:
    """stats <stats-agg-term>... [BY <field-list>] (DOCS + "Stats")"""
    _stats_body(Cursor(lex(text, "search"), where), where)


def cmd_streamstats(text: str, where: str) -> None:
    """streamstats [reset_before="(<eval-expression>)"] [reset_after="(<eval-expression>)"]
    [current=<bool>] [window=<int>] [time_window=<span>] [global=<bool>] [allnum=<bool>]
    [reset_on_change=<bool>] <stats-agg-term>... [BY ...] (DOCS + "Streamstats"): a reset
    expression is a boolean eval expression in parentheses, quoted."""
    c = Cursor(lex(text, "search"), where)
    opts = {
        "current": _is_bool,
        "window": _is_int,
        "time_window": _is_span,
        "global": _is_bool,
        "allnum": _is_bool,
        "reset_on_change": _is_bool,
        "reset_before": lambda t: t.kind == "STR",
        "reset_after": lambda t: t.kind == "STR",
    }
    for name, value in _options(c, opts, where).items():
        if name in ("reset_before", "reset_after"):
            inner = _string_value(value).strip()
            if not (inner.startswith("(") and inner.endswith(")")):
                raise SplError(f'{where}: {name}= takes "(<eval-expression>)"')
            if parse_eval_expr(inner, f"{where} {name}") != BOOL:
                raise SplError(f"{where}: {name}= needs a boolean expression")
    _stats_body(c, where)


def cmd_eventstats(text: str, where: str) -> None:
    _stats_body(Cursor(lex(text, "search"), where), where)


def cmd_lookup(text: str, where: str) -> None:
    """lookup <lookup-name> (<field> [AS <field>])... [OUTPUT|OUTPUTNEW (<field> [AS <field>])...]
    (DOCS + "Lookup")"""
    c = Cursor(lex(text, "search"), where)
    _field(c.expect("WORD"), where)
    n = 0
    while not c.done() and not c.at("WORD", "OUTPUT") and not c.at("WORD", "OUTPUTNEW"):
        _field(c.expect("WORD"), where)
        if c.at("WORD", "AS"):
            c.next()
            _field(c.expect("WORD"), where)
        if c.at("COMMA"):
            c.next()
        n += 1
    if n == 0:
        raise SplError(f"{where}: lookup needs input fields")
    if c.done():
        return
    c.next()
    m = 0
    while not c.done():
        _field(c.expect("WORD"), where)
        if c.at("WORD", "AS"):
            c.next()
            _field(c.expect("WORD"), where)
        if c.at("COMMA"):
            c.next()
        m += 1
    if m == 0:
        raise SplError(f"{where}: OUTPUT needs fields")


def _field_list(c: Cursor, where: str, wildcard: bool) -> int:
    n = 0
    while not c.done():
        _field(c.next(), where, wildcard)
        if c.at("COMMA"):
            c.next()
        n += 1
    return n


def cmd_table(text: str, where: str) -> None:
    if _field_list(Cursor(lex(text, "search"), where), where, True) == 0:
        raise SplError(f"{where}: table needs fields")


def cmd_fields(text: str, where: str) -> None:
    """fields [+|-] <wc-field-list> (DOCS + "Fields")"""
    c = Cursor(lex(text, "search"), where)
    if c.at("OP") or c.at("WORD", "-") or c.at("WORD", "+"):
        c.next()
    if _field_list(c, where, True) == 0:
        raise SplError(f"{where}: fields needs fields")


def cmd_rename(text: str, where: str) -> None:
    """rename <wc-field> AS <wc-field> [, ...] (DOCS + "Rename")"""
    c = Cursor(lex(text, "search"), where)
    while True:
        _field(c.next(), where, True)
        c.expect("WORD", "AS")
        _field(c.next(), where, True)
        if c.done():
            return
        c.expect("COMMA")


def cmd_sort(text: str, where: str) -> None:
    """sort [<count>] [+|-]<sort-field>..., a sort field being <field>, auto(<field>),
    str(<field>), ip(<field>) or num(<field>) (DOCS + "Sort")"""
    c = Cursor(lex(text, "search"), where)
    if c.at("NUM"):
        c.next()
    n = 0
    while not c.done():
        t = c.next()
        name = t.text.lstrip("+-")
        if t.kind == "WORD" and name in ("auto", "str", "ip", "num") and c.at("LP"):
            c.next()
            name = c.expect("WORD").text
            c.expect("RP")
        if t.kind != "WORD" or not FIELD.match(name):
            raise SplError(f"{where}: sort field expected, found {t.text!r}")
        if c.at("COMMA"):
            c.next()
        n += 1
    if n == 0:
        raise SplError(f"{where}: sort needs a field")


def cmd_mvexpand(text: str, where: str) -> None:
    c = Cursor(lex(text, "search"), where)
    _field(c.expect("WORD"), where)
    _options(c, {"limit": _is_int}, where)
    c.end()


def cmd_rex(text: str, where: str) -> None:
    """rex [field=<field>] [max_match=<int>] "<regex>" with a named group (DOCS + "Rex")"""
    c = Cursor(lex(text, "search"), where)
    _options(c, {"field": lambda t: bool(FIELD.match(t.text)), "max_match": _is_int}, where)
    pat = _string_value(c.expect("STR").text)
    c.end()
    if not re.search(r"\(\?<[A-Za-z_]\w*>", pat):
        raise SplError(f"{where}: rex needs a named capturing group (?<name>...)")
    _check_regex(pat, where)


def cmd_transaction(text: str, where: str) -> None:
    """transaction <field-list> [startswith=<filter>] [endswith=<filter>] [maxspan=<span>]
    [maxpause=<span>] [keepevicted=<bool>] (DOCS + "Transaction"); a filter is a quoted
    search or eval(<expression>)."""
    rest = text
    for opt in ("startswith", "endswith"):
        m = re.search(rf"\b{opt}=eval\(", rest)
        if m:
            depth, j = 1, m.end()
            while j < len(rest) and depth:
                if rest[j] == '"':
                    j = _scan_string(rest, j)
                    continue
                depth += {"(": 1, ")": -1}.get(rest[j], 0)
                j += 1
            if depth:
                raise SplError(f"{where}: unbalanced {opt}=eval(")
            if parse_eval_expr(rest[m.end() : j - 1], where) != BOOL:
                raise SplError(f"{where}: {opt}=eval() needs a boolean expression")
            rest = rest[: m.start()] + rest[j:]
    c = Cursor(lex(rest, "search"), where)
    n = 0
    while not c.done() and not (c.peek(1) is not None and c.peek(1).text == "="):  # type: ignore[union-attr]
        _field(c.next(), where)
        n += 1
    if n == 0:
        raise SplError(f"{where}: transaction needs fields")
    _options(
        c,
        {
            "maxspan": _is_span,
            "maxpause": _is_span,
            "keepevicted": _is_bool,
            "mvlist": _is_bool,
            "startswith": lambda t: t.kind == "STR",
            "endswith": lambda t: t.kind == "STR",
        },
        where,
    )
    c.end()


def cmd_join(text: str, where: str) -> None:
    """join [type=inner|outer|left] [max=<int>] [overwrite=<bool>] <field-list> [subsearch]
    (DOCS + "Join")"""
    c = Cursor(lex(text, "search"), where)
    _options(
        c,
        {
            "type": lambda t: t.text in ("inner", "outer", "left"),
            "max": _is_int,
            "overwrite": _is_bool,
        },
        where,
    )
    n = 0
    while not c.done() and not c.at("SUB"):
        _field(c.next(), where)
        if c.at("COMMA"):
            c.next()
        n += 1
    if n == 0:
        raise SplError(f"{where}: join needs fields")
    validate(c.expect("SUB").text, subsearch=True)
    c.end()


def cmd_addinfo(text: str, where: str) -> None:
    """addinfo: no arguments (DOCS + "Addinfo")"""
    if text.strip():
        raise SplError(f"{where}: addinfo takes no arguments")


def cmd_reverse(text: str, where: str) -> None:
    """reverse: no arguments (DOCS + "Reverse")"""
    if text.strip():
        raise SplError(f"{where}: reverse takes no arguments")


STREAMING = {"search", "where", "eval", "rex", "lookup", "fields", "rename", "mvexpand", "addinfo"}


def cmd_multisearch(text: str, where: str) -> None:
    """| multisearch [<subsearch>] [<subsearch>] ...: at least two, each purely streaming
    (DOCS + "Multisearch")."""
    c = Cursor(lex(text, "search"), where)
    n = 0
    while not c.done():
        sub = c.expect("SUB").text
        validate(sub, subsearch=True)
        for seg in split_pipes(strip_comments(sub)):
            name = seg.split(None, 1)[0] if seg.strip() else ""
            if name not in STREAMING:
                raise SplError(f"{where}: {name} is not a streaming command")
        n += 1
    if n < 2:
        raise SplError(f"{where}: multisearch needs at least two subsearches")


COMMANDS: dict[str, Callable[[str, str], None]] = {
    "search": cmd_search,
    "where": cmd_where,
    "eval": cmd_eval,
    "bin": cmd_bin,
    "stats": cmd_stats,
    "streamstats": cmd_streamstats,
    "eventstats": cmd_eventstats,
    "lookup": cmd_lookup,
    "table": cmd_table,
    "fields": cmd_fields,
    "rename": cmd_rename,
    "sort": cmd_sort,
    "mvexpand": cmd_mvexpand,
    "rex": cmd_rex,
    "transaction": cmd_transaction,
    "join": cmd_join,
    "multisearch": cmd_multisearch,
    "reverse": cmd_reverse,
    "addinfo": cmd_addinfo,
}
GENERATING = {"multisearch"}


def validate(query: str, subsearch: bool = False) -> None:
    q = strip_comments(query)
    segs = split_pipes(q)
    if not q.strip():
        raise SplError("empty search")
    generating = not segs[0].strip()
    if generating:
        segs = segs[1:]
        if not segs:
            raise SplError("'|' without a command")
    for n, seg in enumerate(segs):
        seg = seg.strip()
        if not seg:
            raise SplError(f"empty command after pipe {n}")
        name, _, rest = seg.partition(" ")
        where = f"command {n + 1} ({name})"
        if name not in COMMANDS:
            if n == 0 and not generating:
                cmd_search(seg, where)  # the leading search command is implicit
                continue
            raise SplError(f"{where}: unknown command {name!r}")
        if name in GENERATING and not (n == 0 and generating):
            raise SplError(f"{where}: {name} must be the first command, after '|'")
        if n == 0 and generating and name not in GENERATING:
            raise SplError(f"{where}: {name} is not a generating command")
        COMMANDS[name](rest, where)


_MACRO = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def expand_macros(query: str, definitions: dict[str, str] | None = None) -> str:
    """Search macros (a name between backticks) replaced by their definitions, as Splunk does
    before it parses the search; a macro without a definition is an error ("The search
    specifies a macro ... that cannot be found"). Comments are removed first, so a backtick in
    a comment is not a macro call
    (https://docs.splunk.com/Documentation/Splunk/latest/Knowledge/Usesearchmacros)."""
    defs = definitions or {}
    text = strip_comments(query)

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in defs:
            raise SplError(f"the search specifies a macro '{m.group(1)}' that cannot be found")
        return defs[m.group(1)]

    return _MACRO.sub(sub, text)


def check(query: str, macros: dict[str, str] | None = None) -> str | None:
    try:
        validate(expand_macros(query, macros))
    except SplError as exc:
        return str(exc)
    return None
