"""YAML loading that keeps the position of every node.

PyYAML's composer gives each node a start mark; we build plain Python data from the nodes
ourselves and remember, for each path (tuple of keys and indexes), where its value and its key
start. Validation errors (pydantic ``loc``) and lowering errors are then mapped back to
``file:line:col``.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from compiler.diagnostics import Diagnostic, DiagnosticError

Path = tuple[str | int, ...]

# Limits on an analytic file (docs/language.md, "Limits"). Each is far above what a real
# analytic needs and keeps a hostile file of a few bytes or megabytes from stalling or crashing
# the check of the whole catalog.
# - The file is read at most this far: a bigger one is refused before it is parsed (a 40 MB
#   value list took 51 s to check). Indicator lists belong in a lookup CSV.
MAX_FILE_BYTES = 1024 * 1024
# - Nodes built from the YAML, every alias counted as a copy of what it names: a 949-byte
#   "billion laughs" file expands to gigabytes otherwise.
MAX_NODES = 100_000
# - Nesting of mappings and lists, aliases expanded: building the data recurses once per level
#   and must stay clear of Python's recursion limit (1000) with its callers. A filter nests at
#   most 32 levels (E127), which is well inside.
MAX_DEPTH = 400
# - Items in one list (a filter's values, say).
MAX_LIST_ITEMS = 10_000

E_TOO_LARGE = "E005"  # the file is larger than MAX_FILE_BYTES
E_TOO_MANY_NODES = "E009"  # more than MAX_NODES nodes, aliases expanded
E_TOO_DEEP = "E006"  # nested more than MAX_DEPTH levels
E_BAD_CHAR = "E007"  # a NUL or a lone surrogate in a scalar
E_LONG_LIST = "E008"  # a list of more than MAX_LIST_ITEMS items

# No SIEM stores a NUL in a field, and UTF-8 (every output siemc writes) cannot hold a lone
# surrogate: a double-quoted "\0" or "\ud800" is refused where it is written.
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")

# Plain scalars resolve by the YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution),
# not PyYAML's YAML 1.1 rules: those read `0777` as octal 511, `4:20` as sexagesimal 260 and
# `on`/`yes`/`no`/`off` as booleans (in an analytic `on:` is a join key list, `no` a country code).
_BOOL_WORDS = {"true": True, "false": False}
_CORE_NULL = re.compile(r"(?:null|Null|NULL|~)?")
_CORE_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_OCT = re.compile(r"0o[0-7]+")
_CORE_HEX = re.compile(r"0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_CORE_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_CORE_NAN = re.compile(r"\.(?:nan|NaN|NAN)")


def core_scalar(text: str) -> Any:
    """The value of a plain (unquoted, untagged) scalar under the YAML 1.2 core schema."""
    if _CORE_NULL.fullmatch(text):
        return None
    if _CORE_BOOL.fullmatch(text):
        return text.lower() == "true"
    if _CORE_INT.fullmatch(text):
        return int(text)
    if _CORE_OCT.fullmatch(text):
        return int(text[2:], 8)
    if _CORE_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _CORE_FLOAT.fullmatch(text):
        return float(text)
    if _CORE_INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _CORE_NAN.fullmatch(text):
        return math.nan
    return text


def canonical_text(value: int | float) -> str:
    """How Python (and so every consumer that prints a number) spells ``value``."""
    return repr(value)


# libyaml's parser is an order of magnitude faster than the pure-Python one and reports the same
# marks; fall back where PyYAML was built without it.
_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Pos:
    line: int  # 1-based
    col: int  # 1-based
    length: int = 1
    quoted: bool = False  # the scalar was quoted: text inside starts one column later


@dataclass
class SourceDoc:
    path: str
    text: str
    data: Any
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)
    # The source text of plain scalars that resolved to a number spelled otherwise than Python
    # spells it (`0777`, `1e3`, `0x1F`, `+5`, `1.50`): where a value is used as text, the text
    # is what the author wrote (see ``as_written``).
    written: dict[Path, str] = field(default_factory=dict)

    def as_written(self, path: Path, value: Any) -> Any:
        """``value`` (the data at ``path``), or its source text when it is a number written
        otherwise than its canonical spelling: `0777` stays "0777", which still equals 777
        numerically (a numeric string, docs/semantics.md) but contains "0777", not "777"."""
        return self.written.get(tuple(path), value)

    def as_written_tree(self, path: Path, value: Any) -> Any:
        """``as_written`` applied to every scalar under ``path`` (inline fixture events)."""
        if isinstance(value, dict):
            return {k: self.as_written_tree((*path, k), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.as_written_tree((*path, i), v) for i, v in enumerate(value)]
        return self.as_written(path, value)

    def pos(self, path: Path, *, key: bool = False) -> Pos:
        """Position of the value (or key) at ``path``, or of the closest ancestor known."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if key and p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), Pos(1, 1))

    def diag(
        self,
        code: str,
        message: str,
        path: Path,
        *,
        key: bool = False,
        help: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> Diagnostic:
        pos = self.pos(path, key=key)
        col = pos.col + offset + (1 if offset and pos.quoted else 0)
        return Diagnostic(
            code,
            message,
            self.path,
            pos.line,
            col,
            length if length is not None else pos.length,
            help,
        )


def _scalar_length(node: yaml.ScalarNode) -> int:
    if node.start_mark.line == node.end_mark.line:
        return max(1, node.end_mark.column - node.start_mark.column)
    return 1


class _Builder:
    def __init__(self, doc: SourceDoc):
        self.doc = doc
        self.constructor = yaml.SafeLoader("")
        self.errors: list[Diagnostic] = []
        self.bad_chars: set[int] = set()  # scalars already reported (an alias repeats them)

    def pos(self, node: yaml.Node) -> Pos:
        length = _scalar_length(node) if isinstance(node, yaml.ScalarNode) else 1
        quoted = isinstance(node, yaml.ScalarNode) and node.style in ("'", '"')
        return Pos(node.start_mark.line + 1, node.start_mark.column + 1, length, quoted)

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.doc.values[path] = self.pos(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    self.errors.append(self._d("E102", "mapping keys must be plain strings", knode))
                    continue
                k = str(knode.value)
                if self._bad_char(knode):
                    continue
                if k == "<<":
                    self.errors.append(self._d("E102", "YAML merge keys are not supported", knode))
                    continue
                if k in out:
                    self.errors.append(
                        self._d("E002", f"duplicate key '{k}'", knode, "remove one of the two")
                    )
                    continue
                self.doc.keys[(*path, k)] = self.pos(knode)
                out[k] = self.build(vnode, (*path, k))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        if self._bad_char(node):
            return None
        tag = node.tag
        plain = node.style in (None, "")
        implicit = self.constructor.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, node.value, (True, False)
        )
        if plain and tag == implicit:
            # An untagged plain scalar (an explicit tag makes the 1.1 tag differ).
            value = core_scalar(node.value)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and canonical_text(value) != node.value
            ):
                self.doc.written[path] = node.value
            return value
        if tag == "tag:yaml.org,2002:bool":
            return _BOOL_WORDS.get(node.value.lower(), node.value)
        if tag == "tag:yaml.org,2002:timestamp":
            # Keep timestamps as written; the evaluator parses them with its own rules.
            return node.value
        if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:null"):
            return self.constructor.construct_object(node, deep=True)
        return node.value

    def _bad_char(self, node: yaml.ScalarNode) -> bool:
        m = _BAD_CHAR.search(node.value)
        if m is None:
            return False
        if id(node) in self.bad_chars:
            return True
        self.bad_chars.add(id(node))
        c = m.group()
        what = "a NUL character" if c == "\x00" else f"a lone surrogate (U+{ord(c):04X})"
        self.errors.append(
            self._d(
                E_BAD_CHAR,
                f"{what} in a string: no SIEM stores it and UTF-8 output cannot hold it",
                node,
                "remove the escape sequence (\\0, \\uD800..\\uDFFF) from the quoted string",
            )
        )
        return True

    def _d(self, code: str, msg: str, node: yaml.Node, help: str | None = None) -> Diagnostic:
        p = self.pos(node)
        return Diagnostic(code, msg, self.doc.path, p.line, p.col, p.length, help)


class _Limit(Exception):
    def __init__(self, code: str, message: str, mark: Any, help: str | None = None):
        super().__init__(message)
        self.code, self.message, self.mark, self.help = code, message, mark, help


class _Open:
    """A mapping or list whose end event has not come yet."""

    __slots__ = ("anchor", "height", "is_list", "items", "nodes")

    def __init__(self, anchor: str | None, is_list: bool):
        self.nodes = 1  # itself and everything inside, aliases expanded
        self.height = 1  # levels of collections from it down, aliases expanded
        self.items = 0
        self.anchor = anchor
        self.is_list = is_list


_LONG_LIST_HELP = (
    "match a long list of values (indicators) with a lookup: "
    "`lookup: {name: ..., match: {column: field}}` (docs/language.md)"
)


def check_shape(events: Iterator[yaml.Event]) -> None:
    """Walk the event stream (flat: no recursion, nothing built) and raise :class:`_Limit` at
    the first event past a limit. An anchored node's size and height are recorded when it
    closes and an alias adds them where it stands, so a file that multiplies a node by nesting
    aliases is stopped after reading it once, long before its expansion is built."""
    stack: list[_Open] = []
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, height) of its closed node
    total = 0

    def child(nodes: int, height: int, mark: Any) -> None:
        nonlocal total
        total += nodes
        if total > MAX_NODES:
            raise _Limit(
                E_TOO_MANY_NODES,
                f"more than {MAX_NODES:,} YAML nodes (an alias counts as a copy of its anchor)",
                mark,
                "an analytic does not need this many values: move them to a lookup",
            )
        if len(stack) + height > MAX_DEPTH:
            raise _Limit(
                E_TOO_DEEP, f"YAML nested more than {MAX_DEPTH} levels (aliases expanded)", mark
            )
        if not stack:
            return
        top = stack[-1]
        top.items += 1
        if top.is_list and top.items > MAX_LIST_ITEMS:
            raise _Limit(
                E_LONG_LIST,
                f"more than {MAX_LIST_ITEMS:,} items in one list",
                mark,
                _LONG_LIST_HELP,
            )

    for ev in events:
        if isinstance(ev, yaml.AliasEvent):
            if any(o.anchor == ev.anchor for o in stack):
                raise _Limit(
                    E_TOO_DEEP, f"alias *{ev.anchor} is inside the node it names", ev.start_mark
                )
            nodes, height = sizes.get(ev.anchor or "", (1, 0))
            child(nodes, height, ev.start_mark)
            if stack:
                stack[-1].nodes += nodes
                stack[-1].height = max(stack[-1].height, height + 1)
        elif isinstance(ev, yaml.ScalarEvent):
            child(1, 0, ev.start_mark)
            if stack:
                stack[-1].nodes += 1
            if ev.anchor:
                sizes[ev.anchor] = (1, 0)
        elif isinstance(ev, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            child(1, 1, ev.start_mark)
            stack.append(_Open(ev.anchor, isinstance(ev, yaml.SequenceStartEvent)))
        elif isinstance(ev, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            done = stack.pop()
            if stack:
                stack[-1].nodes += done.nodes
                stack[-1].height = max(stack[-1].height, done.height + 1)
            if done.anchor:
                sizes[done.anchor] = (done.nodes, done.height)


def read_source(path: str) -> str:
    """The text of the analytic file ``path``, read no further than :data:`MAX_FILE_BYTES`
    (a bigger file is refused without reading the rest)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise DiagnosticError(
            [Diagnostic("E003", f"cannot read file: {exc.strerror or exc}", path, 1, 1)]
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise DiagnosticError([_too_large(path)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiagnosticError(
            [Diagnostic("E003", f"cannot read file: not UTF-8 ({exc.reason})", path, 1, 1)]
        ) from None


def _too_large(path: str) -> Diagnostic:
    return Diagnostic(
        E_TOO_LARGE,
        f"the file is larger than {MAX_FILE_BYTES // 1024} KiB, the limit for an analytic",
        path,
        1,
        1,
        help="long lists of values (indicators) belong in a lookup CSV (docs/language.md)",
    )


def _syntax_error(path: str, text: str, exc: yaml.YAMLError) -> DiagnosticError:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return DiagnosticError(
            [Diagnostic("E001", f"YAML syntax error: {exc}", path, 1, 1)], {path: text}
        )
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    msg = exc.problem or "invalid YAML"
    help_ = None
    if "'\\t'" in msg or "tab" in msg:
        help_ = "YAML indentation must use spaces, not tabs"
    return DiagnosticError(
        [Diagnostic("E001", f"YAML syntax error: {msg}", path, line, col, 1, help_)],
        {path: text},
    )


def _compose_python(text: str) -> yaml.Node | None:
    """Compose with the pure-Python composer, which takes two Python frames per level: the
    recursion limit is raised for the call so that MAX_DEPTH levels fit however deep the caller
    is (since Python 3.12 pure-Python calls do not consume the C stack)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 3 * MAX_DEPTH)
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    finally:
        sys.setrecursionlimit(limit)


def load_yaml(path: str, text: str) -> SourceDoc:
    """Parse ``text``; raise :class:`DiagnosticError` on YAML errors, duplicate keys or a file
    past one of the limits above."""
    doc = SourceDoc(path, text, None)
    if len(text) > MAX_FILE_BYTES:  # counted in characters here: never fewer than the bytes
        raise DiagnosticError([_too_large(path)], {path: text})
    try:
        # The limits are checked on the event stream before anything is composed: the composer
        # and the builder below recurse once per level and build every alias in full.
        try:
            check_shape(yaml.parse(text, Loader=_LOADER))
            node = (
                _compose_python(text)
                if _LOADER is yaml.SafeLoader
                else yaml.compose(text, Loader=_LOADER)
            )
        except yaml.YAMLError as c_exc:
            if isinstance(c_exc, yaml.MarkedYAMLError) and "nesting depth" in str(c_exc.problem):
                # libyaml scans ahead and stops at its own limit (1000 levels) before it hands
                # over the event past ours; the pure-Python scanner would take quadratic time
                # to get there.
                raise _Limit(
                    E_TOO_DEEP, f"YAML nested more than {MAX_DEPTH} levels", c_exc.problem_mark
                ) from None
            # The pure-Python parser words its errors better (it names tabs, for one): re-parse
            # with it to report the problem (its parser is a state machine, safe at any depth).
            # libyaml also refuses text the pure-Python parser reads, such as a "\ud800"
            # escape: that text is composed here and refused as E007 by the builder.
            check_shape(yaml.parse(text, Loader=yaml.SafeLoader))
            node = _compose_python(text)
    except _Limit as lim:
        line, col = (lim.mark.line + 1, lim.mark.column + 1) if lim.mark else (1, 1)
        raise DiagnosticError(
            [Diagnostic(lim.code, lim.message, path, line, col, 1, lim.help)], {path: text}
        ) from None
    except yaml.YAMLError as exc:
        raise _syntax_error(path, text, exc) from None
    if node is None:
        raise DiagnosticError(
            [Diagnostic("E101", "empty file: an analytic is a YAML mapping", path, 1, 1)],
            {path: text},
        )
    builder = _Builder(doc)
    doc.data = builder.build(node, ())
    if builder.errors:
        raise DiagnosticError(builder.errors, {path: text})
    return doc
