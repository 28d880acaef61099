"""One Sigma rule -> the parts of a siemc analytic: metadata and an event stream."""

from __future__ import annotations

import re
from typing import Any

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from compiler.evaluator.streams import LOGSOURCE_CATEGORIES
from compiler.importers.detection import Converter, Filter
from compiler.importers.fields import map_field
from compiler.importers.refusal import DocPath, Refusal
from compiler.importers.sigma_source import RuleDoc

_TECHNIQUE = re.compile(r"^t\d{4}(\.\d{3})?$")
_OS = ("windows", "linux", "macos")
# the ATT&CK Enterprise tactics, by the short names Sigma's attack.* tags use
TACTICS = frozenset(
    {
        "reconnaissance",
        "resource-development",
        "initial-access",
        "execution",
        "persistence",
        "privilege-escalation",
        "defense-evasion",
        "credential-access",
        "discovery",
        "lateral-movement",
        "collection",
        "command-and-control",
        "exfiltration",
        "impact",
    }
)


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return s[:80].rstrip("_") or "rule"


def analytic_id(rule: SigmaRule | SigmaCorrelationRule) -> str:
    return str(rule.id) if rule.id is not None else slug(str(rule.title))


def metadata(doc: RuleDoc, platforms: list[str]) -> dict[str, Any]:
    """The analytic's metadata keys: what the rule says about itself, every word kept."""
    r = doc.rule
    if r.level is None:
        raise Refusal("no-level", "the rule has no level: an analytic needs a severity", ())
    techniques: list[str] = []
    tactics: list[str] = []
    tags: list[str] = []
    for t in r.tags or []:
        ns, name = str(t.namespace), str(t.name)
        tactic = name.lower().replace("_", "-")  # older rules write defense_evasion
        if ns.lower() == "attack" and _TECHNIQUE.match(name.lower()):
            techniques.append(name.upper())
        elif ns.lower() == "attack" and tactic in TACTICS:
            tactics.append(tactic)
        else:
            tags.append(f"{ns}.{name}")
    meta: dict[str, Any] = {
        "id": analytic_id(r),
        "title": str(r.title),
        "description": str(r.description or r.title).strip(),
    }
    if r.author:
        meta["author"] = str(r.author)
    if r.license:
        meta["license"] = str(r.license)
    attack: dict[str, list[str]] = {}
    if techniques:
        attack["techniques"] = sorted(set(techniques), key=techniques.index)
    if tactics:
        attack["tactics"] = sorted(set(tactics), key=tactics.index)
    if attack:
        meta["attack"] = attack
    if tags:
        meta["tags"] = tags
    if platforms:
        meta["platforms"] = platforms
    meta["severity"] = r.level.name.lower()
    if r.references:
        meta["references"] = [str(x) for x in r.references]
    if r.falsepositives:
        meta["false_positives"] = [str(x) for x in r.falsepositives]
    return meta


def platforms_of(rule: SigmaRule) -> list[str]:
    product = (rule.logsource.product or "").lower()
    return [product] if product in _OS else []


def logsource(doc: RuleDoc) -> dict[str, str]:
    assert isinstance(doc.rule, SigmaRule)
    ls = doc.rule.logsource
    out = {
        k: str(v)
        for k, v in (("category", ls.category), ("product", ls.product), ("service", ls.service))
        if v
    }
    if not out:
        raise Refusal(
            "logsource-empty",
            "the rule's logsource names no category, product or service",
            ("logsource",),
        )
    if ls.category and ls.category not in LOGSOURCE_CATEGORIES:
        raise Refusal(
            f"logsource-category:{ls.category}",
            f"logsource category '{ls.category}' has no ECS definition in the language "
            "(docs/language.md, Logsources)",
            ("logsource", "category"),
        )
    return out


def field_mapper(doc: RuleDoc) -> Any:
    assert isinstance(doc.rule, SigmaRule)
    ls = doc.rule.logsource

    def mapper(name: str, where: DocPath) -> str:
        m = map_field(name, ls.category, ls.product, ls.service)
        if m.ecs is None:
            raise Refusal("field-name", m.problem or f"cannot map field {name!r}", where)
        return m.ecs

    return mapper


def detection_filter(doc: RuleDoc, conv: Converter) -> Filter:
    """The rule's condition as one filter (several conditions are alternatives)."""
    assert isinstance(doc.rule, SigmaRule)
    conditions = doc.rule.detection.parsed_condition
    filters = [conv.convert(c.parsed) for c in conditions]
    return filters[0] if len(filters) == 1 else {"any": filters}


def stream(doc: RuleDoc, conv: Converter) -> dict[str, Any]:
    """The rule's events as a stream: its logsource, filtered by its detection."""
    out: dict[str, Any] = {"logsource": logsource(doc)}
    before = dict(conv.derive)
    where = detection_filter(doc, conv)
    new = {k: v for k, v in conv.derive.items() if k not in before}
    if new:
        out["derive"] = new
    out["where"] = where
    return out


def converter_for(doc: RuleDoc, shared: Converter | None = None) -> Converter:
    """A converter reading ``doc``'s fields and positions; ``shared`` keeps the derived names
    and lookups of the rules of one correlation apart."""
    conv = Converter(field_mapper(doc), doc.locate)
    if shared is not None:
        conv.derive, conv.lookups = shared.derive, shared.lookups
    return conv
