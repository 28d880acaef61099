"""Sigma package: one rule file per analytic (``rules/<id>.yml``), the backend's rules loaded
into pySigma's object model (``SigmaRule``, ``SigmaCorrelationRule``) and written back with the
export metadata: ATT&CK tactic tags next to the technique tags, the level of the severity table.

Sigma rules carry no schedule: the correlation's ``timespan`` is the window, and the SIEM a rule
is converted for schedules it (docs/export.md)."""

from __future__ import annotations

from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaLevel, SigmaRule, SigmaRuleTag

from backends.comment import one_line
from compiler import ir
from compiler.export import attack
from compiler.export.common import (
    Package,
    Request,
    approximations_text,
    authors,
    compile_target,
    why_not,
)
from compiler.export.render import readme
from compiler.export.severity import severity

Rule = SigmaRule | SigmaCorrelationRule


def _tags(rule: Rule, techniques: tuple[str, ...], tactics: tuple[str, ...]) -> None:
    """Technique tags as the backend wrote them, plus each tactic (``attack.discovery``) the
    analytic is filed under (attack.filing)."""
    have = {(t.namespace, t.name) for t in rule.tags}
    for tac, _ in attack.filing(techniques, tactics):
        if ("attack", tac.shortname) not in have:
            rule.tags.append(SigmaRuleTag("attack", tac.shortname))
    for tid in techniques:
        if ("attack", tid.lower()) not in have:
            rule.tags.append(SigmaRuleTag("attack", tid.lower()))


def _is_output(rule: Rule, col: SigmaCollection) -> bool:
    """The rule that raises the alert: the correlation, or the only rule."""
    return isinstance(rule, SigmaCorrelationRule) or len(col.rules) == 1


def build(
    text: str,
    techniques: tuple[str, ...],
    level: str,
    tactics: tuple[str, ...] = (),
    meta: ir.Metadata | None = None,
) -> list[dict[str, Any]]:
    col = SigmaCollection.from_yaml(text)
    col.resolve_rule_references()  # the correlation must name rules of this file
    out: list[dict[str, Any]] = []
    for rule in col.rules:
        if _is_output(rule, col):
            _tags(rule, techniques, tactics)
            rule.level = SigmaLevel[level.upper()]
        if meta is not None:
            _credit(rule, meta)
        d = rule.to_dict()
        if rule.license and "license" not in d:
            # SigmaRuleBase.to_dict (pySigma 2.0) leaves the parsed license out
            d = {**dict(list(d.items())[:1]), "license": rule.license, **d}
        out.append(d)
    return out


def _credit(rule: Rule, m: ir.Metadata) -> None:
    """Every rule of the file carries the analytic's authors, licence and references (the
    Detection Rule License of imported Sigma rules requires keeping them with derived rules)."""
    names = authors(m)
    if names:
        rule.author = ", ".join(names)
    if m.license:
        rule.license = m.license
    for ref in m.references:
        if ref not in rule.references:
            rule.references.append(ref)


def rule_file(docs: list[dict[str, Any]], header: list[str]) -> str:
    body = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=1000)
    return "".join(f"# {one_line(line)}\n" for line in header) + body


def package(req: Request) -> Package:
    pkg = Package("sigma")
    exported: list[str] = []
    for lo in req.catalog:
        a = lo.analytic
        res = compile_target(lo, "sigma", req)
        if res.artifact is None:
            pkg.skip(a.id, f"sigma: {why_not(res)}")
            continue
        approx = approximations_text(res.artifact)
        m = a.meta
        docs = build(
            res.artifact.query, m.attack_techniques, severity(m.severity).sigma, m.attack_tactics, m
        )
        header = [f"{a.id}: {a.meta.title}", "exported by siemc export (sigma)"]
        header += [f"APPROXIMATION {x}" for x in approx]
        # the backend's notes (placeholders to bind, pySigma extensions) stay with the rules
        header += [f"NOTE {n}" for n in res.artifact.notes]
        pkg.files[f"rules/{a.id}.yml"] = rule_file(docs, header)
        pkg.exported.append(a.id)
        exported.append(a.id + "".join(f"; APPROXIMATION {x}" for x in approx))
    pkg.files["README.md"] = readme(
        pkg,
        "siemc Sigma rules",
        "rules/ holds one file per analytic: its base rules and, for correlations, the "
        "correlation rule that references them.",
        exported,
    )
    return pkg
