"""Sigma rule files: read with pySigma, plus the YAML positions pySigma does not keep.

Positions come from PyYAML's composed nodes of the same text (line and column of each key and
value), looked up by a path of keys, so a refusal can say ``file:line:col``. The parsing and the
meaning of the rule are pySigma's alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaRuleLocation
from sigma.rule import SigmaRule

from compiler.diagnostics import Diagnostic, DiagnosticError
from compiler.importers.refusal import DocPath
from compiler.source import read_source

# libyaml when PyYAML has it (as pySigma's own safe_load would): the corpus is 3,600 files
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class RuleDoc:
    """One rule (a YAML document of a Sigma file) and where it came from."""

    path: str
    index: int  # the document's position in its file
    rule: SigmaRule | SigmaCorrelationRule
    node: yaml.Node | None
    data: Any

    def pos(self, where: DocPath, *, key: bool = True) -> tuple[int, int]:
        """(line, column), 1-based, of the key (or value) at ``where``, or of the closest
        ancestor found."""
        node, best = self.node, self.node
        best_key: yaml.Node | None = None
        for step in where:
            if isinstance(node, yaml.MappingNode):
                hit = next(((k, v) for k, v in node.value if k.value == step), None)
                if hit is None:
                    break
                best_key, node = hit
                best = node
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if not 0 <= step < len(node.value):
                    break
                best_key, node = None, node.value[step]
                best = node
            else:
                break
        mark = (best_key if key and best_key is not None else best) if best else None
        if mark is None:
            return 1, 1
        return mark.start_mark.line + 1, mark.start_mark.column + 1

    def diag(self, code: str, message: str, where: DocPath, *, key: bool = True) -> Diagnostic:
        line, col = self.pos(where, key=key)
        return Diagnostic(code, message, self.path, line, col)

    def locate(self, ident: str | None, sigma_field: str | None, word: str | None) -> DocPath:
        """The path of the detection item for ``sigma_field`` (in detection ``ident`` when
        known), preferring a key that carries the modifier ``word``."""
        det = self.data.get("detection") if isinstance(self.data, dict) else None
        if not isinstance(det, dict):
            return ("detection",)
        names = [ident] if ident in det else [n for n in det if n != "condition"]
        if sigma_field is None:
            return ("detection", names[0]) if names else ("detection",)
        found: list[DocPath] = []
        for name in names:
            body = det[name]
            maps: list[tuple[tuple[Any, ...], Any]] = []
            if isinstance(body, dict):
                maps = [((name,), body)]
            if isinstance(body, list):
                maps = [((name, i), m) for i, m in enumerate(body) if isinstance(m, dict)]
            for prefix, m in maps:
                for k in m:
                    f, *mods = str(k).split("|")
                    if f == sigma_field:
                        if word is not None and word in mods:
                            return ("detection", *prefix, k)
                        found.append(("detection", *prefix, k))
        return found[0] if found else ("detection", *names[:1])


@dataclass
class Loaded:
    docs: list[RuleDoc] = field(default_factory=list)
    invalid: list[Diagnostic] = field(default_factory=list)  # YAML or Sigma errors
    sources: dict[str, str] = field(default_factory=dict)


def read_rules(files: list[Path]) -> Loaded:
    out = Loaded()
    for f in files:
        p = str(f)
        try:
            # at most 1 MiB, as an analytic file: a Sigma rule is a few KiB
            text = read_source(p)
        except DiagnosticError as exc:
            out.invalid.extend(exc.diagnostics)
            continue
        out.sources[p] = text
        try:
            nodes = list(yaml.compose_all(text, Loader=_LOADER))
            datas = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
            # pySigma reads the same YAML (safe_load_all); its own copy, since it may keep
            # and change what it is given
            given = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            out.invalid.append(Diagnostic("E001", f"YAML syntax error: {exc}", p, line, col))
            continue
        pairs = list(zip([n for n in nodes if n is not None], datas, strict=False))
        try:
            coll = SigmaCollection.from_dicts(
                given, collect_errors=True, source=SigmaRuleLocation(f), resolve_references=False
            )
        except Exception as exc:  # pySigma raises before any rule exists (not a rule file)
            out.invalid.append(Diagnostic("E501", f"not a Sigma rule file: {exc}", p, 1, 1))
            continue
        for e in coll.errors:
            out.invalid.append(Diagnostic("E501", f"invalid Sigma rule: {e}", p, 1, 1))
        rules = [r for r in coll.rules if isinstance(r, SigmaRule | SigmaCorrelationRule)]
        for i, rule in enumerate(rules):
            node, data = pairs[i] if len(pairs) == len(rules) else (None, {})
            doc = RuleDoc(p, i, rule, node, data)
            if rule.errors:
                for e in rule.errors:
                    out.invalid.append(doc.diag("E501", f"invalid Sigma rule: {e}", ()))
                continue
            out.docs.append(doc)
    return out
