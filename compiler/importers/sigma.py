"""``siemc import sigma``: Sigma rules and correlation rules -> siemc analytic files.

Every rule becomes one analytic file, or one positioned refusal (``file:line:col``, the
construct and why). A rule a correlation reads (and does not ``generate`` alerts for itself)
becomes part of that correlation's analytic. Every analytic written has passed the same check
as ``siemc check``. docs/import.md.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import yaml
from sigma.correlations import SigmaCorrelationRule

from compiler.diagnostics import Diagnostic, DiagnosticError
from compiler.importers import rules as R
from compiler.importers.correlation import chained_step, correlation
from compiler.importers.refusal import Refusal
from compiler.importers.sigma_source import RuleDoc, read_rules
from compiler.lower import load_text

E_REFUSED = "E500"
# the pure-Python dumper: libyaml's folds long strings elsewhere, and the output must be the
# same bytes on every machine
_DUMPER: Any = yaml.SafeDumper
LOOKUP_HEADER = "value\n"


@dataclass(frozen=True)
class Imported:
    rule: str  # the Sigma file
    id: str
    file: str  # the analytic file, relative to the output folder
    text: str


@dataclass(frozen=True)
class Refused:
    rule: str
    id: str
    construct: str
    diagnostic: Diagnostic


@dataclass
class Result:
    imported: list[Imported] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    invalid: list[Diagnostic] = field(default_factory=list)
    # base rules read by a correlation: (rule file, rule id, correlation id)
    consumed: list[tuple[str, str, str]] = field(default_factory=list)
    lookups: dict[str, str] = field(default_factory=dict)  # relative path -> CSV text
    sources: dict[str, str] = field(default_factory=dict)

    def files(self) -> dict[str, str]:
        out = {i.file: i.text for i in self.imported}
        out.update(self.lookups)
        return out


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    out: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            out.update(x for x in p.rglob("*") if x.suffix in (".yml", ".yaml") and x.is_file())
        else:
            out.add(p)
    return sorted(out)


class _Index:
    def __init__(self, docs: list[RuleDoc]):
        self.by: dict[str, RuleDoc] = {}
        for d in docs:
            for k in (d.rule.id, d.rule.name):
                if k is not None:
                    self.by.setdefault(str(k), d)

    def get(self, ref: str) -> RuleDoc | None:
        return self.by.get(ref)


def import_sigma(paths: Iterable[str | Path]) -> Result:
    loaded = read_rules(rule_files(paths))
    res = Result(invalid=list(loaded.invalid), sources=dict(loaded.sources))
    index = _Index(loaded.docs)
    silent: dict[int, str] = {}  # id(base doc) -> correlation id
    for d in loaded.docs:
        c = d.rule
        if isinstance(c, SigmaCorrelationRule) and not c.generate:
            for ref in c.rules or []:
                base = index.get(str(ref.reference))
                if base is not None and not isinstance(base.rule, SigmaCorrelationRule):
                    silent.setdefault(id(base), R.analytic_id(c))
                elif base is not None and chained_step(c, base.rule):
                    # the counted step of the chain: Sigma raises no alert for it either
                    silent.setdefault(id(base), R.analytic_id(c))
    names: set[str] = set()
    ids: dict[str, RuleDoc] = {}
    for d in loaded.docs:
        rid = R.analytic_id(d.rule)
        if id(d) in silent:
            res.consumed.append((d.path, rid, silent[id(d)]))
            continue
        try:
            first = ids.setdefault(rid, d)
            if first is not d:
                raise Refusal(
                    "duplicate-id",
                    f"id {rid} is also the id of a rule of {PurePath(first.path).name}: analytic "
                    "ids are unique in a catalog",
                    ("id",),
                    key=False,
                )
            analytic, lookups = _convert(d, index)
            fname = _file_name(d, names)
            text = _emit(d, analytic)
            _check(fname, text, lookups)
        except Refusal as exc:
            at = exc.doc if isinstance(exc.doc, RuleDoc) else d
            diag = at.diag(E_REFUSED, f"cannot import: {exc.message}", exc.where, key=exc.key)
            res.refused.append(Refused(d.path, rid, exc.construct, diag))
            continue
        res.imported.append(Imported(d.path, rid, fname, text))
        for name in lookups:
            res.lookups[f"lookups/{name}.csv"] = LOOKUP_HEADER
    return res


def _convert(d: RuleDoc, index: _Index) -> tuple[dict[str, Any], list[str]]:
    if isinstance(d.rule, SigmaCorrelationRule):
        analytic, lookups, _ = correlation(d, index.get)
    else:
        conv = R.converter_for(d)
        stream = R.stream(d, conv)
        analytic = {**R.metadata(d, R.platforms_of(d.rule)), "streams": {"events": stream}}
        analytic["detect"] = {"match": "events"}
        lookups = conv.lookups
    if lookups:
        analytic = {
            **{k: v for k, v in analytic.items() if k not in ("streams", "detect")},
            "lookups": {n: {"file": f"lookups/{n}.csv"} for n in lookups},
            "streams": analytic["streams"],
            "detect": analytic["detect"],
        }
    return analytic, lookups


def _file_name(d: RuleDoc, taken: set[str]) -> str:
    rid = str(d.rule.id or "")
    base = R.slug(str(d.rule.title)) + (f"-{rid[:8]}" if rid else "")
    name, n = f"{base}.yml", 2
    while name in taken:
        name, n = f"{base}-{n}.yml", n + 1
    taken.add(name)
    return name


def _emit(d: RuleDoc, analytic: dict[str, Any]) -> str:
    head = (
        f"# Imported by `siemc import sigma` from {PurePath(d.path).name}"
        + (f" (document {d.index + 1})" if d.index else "")
        + ".\n# The rule's author, license and references are kept as its license requires.\n"
    )
    body = yaml.dump(
        analytic,
        Dumper=_DUMPER,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return head + body


def _check(fname: str, text: str, lookups: list[str]) -> None:
    """The analytic passes `siemc check` (loaded and lowered), or the rule is refused."""
    try:
        if lookups:
            with tempfile.TemporaryDirectory(prefix="siemc-import-") as tmp:
                root = Path(tmp)
                (root / "lookups").mkdir()
                for name in lookups:
                    (root / "lookups" / f"{name}.csv").write_text(LOOKUP_HEADER, encoding="utf-8")
                load_text(str(root / fname), text, root)
        else:
            # nothing to read beside the file: no folder is needed
            load_text(fname, text, Path(fname).parent)
    except DiagnosticError as exc:
        first = exc.diagnostics[0]
        raise Refusal(
            f"check-{first.code}",
            f"the analytic would not pass siemc check: {first.message}",
            ("detection",),
        ) from None
