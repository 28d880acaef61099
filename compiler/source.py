"""YAML loading that keeps the position of every node.

PyYAML's composer gives each node a start mark; we build plain Python data from the nodes
ourselves and remember, for each path (tuple of keys and indexes), where its value and its key
start. Validation errors (pydantic ``loc``) and lowering errors are then mapped back to
``file:line:col``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from compiler.diagnostics import Diagnostic, DiagnosticError

Path = tuple[str | int, ...]

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

    def _d(self, code: str, msg: str, node: yaml.Node, help: str | None = None) -> Diagnostic:
        p = self.pos(node)
        return Diagnostic(code, msg, self.doc.path, p.line, p.col, p.length, help)


def load_yaml(path: str, text: str) -> SourceDoc:
    """Parse ``text``; raise :class:`DiagnosticError` on YAML errors or duplicate keys."""
    doc = SourceDoc(path, text, None)
    try:
        try:
            node = yaml.compose(text, Loader=_LOADER)
        except yaml.YAMLError:
            # The pure-Python parser words its errors better (it names tabs, for one): re-parse
            # with it to report the problem.
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = exc.problem or "invalid YAML"
        help_ = None
        if "'\\t'" in msg or "tab" in msg:
            help_ = "YAML indentation must use spaces, not tabs"
        raise DiagnosticError(
            [Diagnostic("E001", f"YAML syntax error: {msg}", path, line, col, 1, help_)],
            {path: text},
        ) from None
    except yaml.YAMLError as exc:
        raise DiagnosticError(
            [Diagnostic("E001", f"YAML syntax error: {exc}", path, 1, 1)], {path: text}
        ) from None
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
