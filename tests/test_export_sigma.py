"""Sigma export: every rule file loads in pySigma, passes pySigma's core validators (the ATT&CK
tag validator against ATT&CK data built from siemc's offline table, not downloaded) and converts
with pySigma's SQLite backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sigma.backends.sqlite import sqliteBackend  # type: ignore[attr-defined]
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.data import mitre_attack
from sigma.validation import SigmaValidator
from sigma.validators.core import validators

from compiler.export import sigma
from tests.export_support import ROOT, request

PKG = sigma.package(request())
FILES = sorted(k for k in PKG.files if k.startswith("rules/"))
# D3FEND tags would need MITRE's D3FEND data, which pySigma downloads: siemc writes none.
OFFLINE = {k: v for k, v in validators.items() if k != "d3_fendtag"}


@pytest.fixture(scope="module")
def attack_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """pySigma's ATT&CK data as a STIX bundle made from compiler/data/attack_enterprise.json."""
    d = tmp_path_factory.mktemp("attack")
    tab = json.loads((ROOT / "compiler" / "data" / "attack_enterprise.json").read_text())
    objs: list[dict[str, object]] = [
        {"type": "x-mitre-collection", "x_mitre_version": tab["attack_version"]}
    ]
    for short, t in tab["tactics"].items():
        ref = [{"source_name": "mitre-attack", "external_id": t["id"]}]
        objs.append(
            {"type": "x-mitre-tactic", "x_mitre_shortname": short, "external_references": ref}
        )
    for tid, t in tab["techniques"].items():
        phases = [{"kill_chain_name": "mitre-attack", "phase_name": p} for p in t["tactics"]]
        objs.append(
            {
                "type": "attack-pattern",
                "name": t["name"],
                "x_mitre_deprecated": t["deprecated"],
                "external_references": [{"source_name": "mitre-attack", "external_id": tid}],
                "kill_chain_phases": phases,
            }
        )
    (d / "stix.json").write_text(json.dumps({"type": "bundle", "objects": objs}))
    mitre_attack.set_cache_dir(str(d / "cache"))
    mitre_attack.set_url(str(d / "stix.json"))
    yield
    mitre_attack.clear_cache()


def _load(path: str) -> SigmaCollection:
    col = SigmaCollection.from_yaml(PKG.files[path], collect_errors=True)
    assert not col.errors
    for rule in col.rules:
        assert not rule.errors, rule.errors
    col.resolve_rule_references()
    return col


@pytest.mark.parametrize("path", FILES)
def test_rules_pass_pysigma_validators(path: str, attack_data: None) -> None:
    col = _load(path)
    issues = SigmaValidator(set(OFFLINE.values())).validate_rules(iter(col.rules))  # type: ignore[arg-type]
    assert issues == []


@pytest.mark.parametrize("path", FILES)
def test_rules_convert_with_sqlite_backend(path: str) -> None:
    queries = sqliteBackend(collate_nocase=True).convert(_load(path))  # type: ignore[no-untyped-call]
    assert queries and all("SELECT" in q for q in queries)


def test_validators_catch_a_bad_tag(attack_data: None) -> None:
    text = PKG.files["rules/SIEMC-0007.yml"].replace("attack.t1046", "attack.t9999")
    col = SigmaCollection.from_yaml(text)
    issues = SigmaValidator(set(OFFLINE.values())).validate_rules(iter(col.rules))  # type: ignore[arg-type]
    assert any("t9999" in str(i) for i in issues)


def test_tactic_tags_and_level() -> None:
    col = _load("rules/SIEMC-0006.yml")
    corr = next(r for r in col.rules if isinstance(r, SigmaCorrelationRule))
    tags = [str(t) for t in corr.tags]
    assert tags[-2:] == ["attack.execution", "attack.discovery"]
    assert corr.level is not None and corr.level.name == "HIGH"
    assert PKG.files["rules/SIEMC-0006.yml"].startswith("# SIEMC-0006: ")
    assert "# APPROXIMATION unordered co-occurrence (" in PKG.files["rules/SIEMC-0006.yml"]


def test_skips_say_why() -> None:
    reasons = {s.analytic: s.reason for s in PKG.skipped}
    assert "sigma cannot express stream join" in reasons["SIEMC-0003"]
    assert "SIEMC-0003: sigma: " in PKG.files["README.md"]
    assert [Path(f).stem for f in FILES] == PKG.exported
    assert PKG.exported == [
        "AN1190",
        "AN1511",
        "SIEMC-0005",
        "SIEMC-0006",
        "SIEMC-0007",
        "SIEMC-0009",
        "SIEMC-0012",
        "SIEMC-0013",
        "SIEMC-0014",
        "SIEMC-0015",
        "SIEMC-0016",
        "SIEMC-0017",
        "SIEMC-0018",
    ]


def test_absence_rule_says_its_condition_is_a_pysigma_extension() -> None:
    text = PKG.files["rules/SIEMC-0009.yml"]
    assert "is a pySigma extension" in text and "condition: siemc_0009_agent_stop and not" in text
