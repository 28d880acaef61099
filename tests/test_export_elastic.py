"""Elastic export: every rule object validates against Kibana's rule schemas (8.19 and master),
lookup indices carry the fields the ES|QL backend joins on, and the chain form of a sequence
with a first-seen baseline is a building block plus a new_terms rule over its alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from compiler.discover import load_catalog
from compiler.engines import run_esql
from compiler.export import elastic, schedule
from compiler.export.common import Package, Request, stable_uuid
from tests.export_support import CATALOG, request, vendor_schemas
from tests.interpreters import kuery_interp
from tests.oracles import elastic_eql_oracle, esql_oracle

PKG = elastic.package(request())
# NDJSON lines end at "\n" only (a query may hold U+2028 or U+0085 in a string)
RULES = [json.loads(line) for line in PKG.files["rules.ndjson"].split("\n") if line]


def schema_view(rule: dict[str, Any]) -> dict[str, Any]:
    """The rule as elastic/detection-rules' API schemas spell it: they hold new_terms in one
    object (``field``/``value``) where Kibana's import API has ``new_terms_fields`` and
    ``history_window_start``; the schema's history item has no value key, so only its field
    name can be checked."""
    r = dict(rule)
    if r["type"] == "new_terms":
        r["new_terms"] = {
            "field": "new_terms_fields",
            "value": r.pop("new_terms_fields"),
            "history_window_start": [{"field": "history_window_start"}],
        }
        assert r.pop("history_window_start").startswith("now-")
    return r


@pytest.mark.parametrize("version", ["8.19", "master"])
@pytest.mark.parametrize(
    "rule", RULES, ids=[f"{r['meta']['siemc']['analytic']}-{r['type']}" for r in RULES]
)
def test_rule_validates_against_kibana_schema(rule: dict[str, Any], version: str) -> None:
    folder = vendor_schemas() / "elastic"
    schema = json.loads((folder / f"{version}.{rule['type']}.json").read_text())
    jsonschema.validate(schema_view(rule), schema)


def test_schema_rejects_a_broken_rule() -> None:
    """The validation above is not vacuous: Critical-cased severity or a bad interval fail."""
    folder = vendor_schemas() / "elastic"
    schema = json.loads((folder / "8.19.eql.json").read_text())
    rule = next(r for r in RULES if r["type"] == "eql")
    for key, bad in (("severity", "Critical"), ("interval", "5 minutes"), ("risk_score", 0)):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**rule, key: bad}, schema)


def test_rule_types_ids_and_schedule() -> None:
    by = {(r["meta"]["siemc"]["analytic"], r["type"]): r for r in RULES}
    assert by[("SIEMC-0006", "eql")]["query"].startswith("sample by host.name")
    hourly = by[("SIEMC-0011", "esql")]
    assert (hourly["interval"], hourly["from"]) == ("1h", "now-170h")  # 1h + 1h window + 7d
    assert hourly["rule_id"] == stable_uuid("SIEMC-0011", "elastic", "rule")
    assert hourly["severity"] == "medium" or hourly["severity"] in {"low", "high", "critical"}
    # A tumbling aggregate without baseline is framed on the windows of the run's last interval.
    scan = by[("SIEMC-0008", "esql")]["query"]
    assert "| WHERE @timestamp >= DATE_TRUNC(" in scan.splitlines()[1]
    assert len({r["rule_id"] for r in RULES}) == len(RULES)


def test_threat_lists_tactics_from_techniques() -> None:
    r = next(r for r in RULES if r["meta"]["siemc"]["analytic"] == "SIEMC-0006")
    tactics = [t["tactic"]["name"] for t in r["threat"]]
    assert tactics == ["Execution", "Discovery"]
    execution = r["threat"][0]["technique"][0]
    assert execution["id"] == "T1059"
    assert execution["subtechnique"][0]["id"] == "T1059.004"


def test_sequence_with_first_seen_is_one_esql_rule() -> None:
    """The ES|QL backend decides AN1190's sequence and baseline exactly in one query."""
    (rule,) = [r for r in RULES if r["meta"]["siemc"]["analytic"] == "AN1190"]
    assert rule["type"] == "esql" and "INLINE STATS" in rule["query"]
    assert "Approximations" not in rule["note"]


CHAIN = """\
id: TEST-CHAIN
title: A new client of a web service
description: test analytic for the Elastic rule chain
attack: {techniques: [T1102]}
platforms: [linux]
severity: medium
streams:
  tool:
    logsource: {category: process_creation, product: linux}
    where: {process.name: [curl, wget]}
  https:
    logsource: {category: network_connection, product: linux}
    where: {destination.port: 443}
detect:
%s
baseline:
  - first_seen:
      stream: tool
      keys: [process.name, process.parent.name]
%s
      lookback: 14d
"""
SEQUENCE = """\
  sequence:
    by: [host.name, process.pid]
    maxspan: 5m
    steps:
      - {stream: tool, as: start}
      - {stream: https, as: net}"""


def _chain_of(tmp_path: Path, detect: str, current: str) -> tuple[list[dict[str, Any]], list[str]]:
    (tmp_path / "a.yml").write_text(CHAIN % (detect, current))
    cat = load_catalog([tmp_path])
    assert not cat.errors, cat.errors
    (lo,) = cat.loaded
    reasons: list[str] = []
    req = Request((lo,), True, None)
    chain = elastic._chain(Package("elastic"), lo, req, schedule.derive(lo.analytic), reasons)
    assert chain is not None, reasons
    for rule in chain:
        for version in ("8.19", "master"):
            folder = vendor_schemas() / "elastic"
            schema = json.loads((folder / f"{version}.{rule['type']}.json").read_text())
            jsonschema.validate(schema_view(rule), schema)
    return chain, reasons


def test_sequence_with_first_seen_chain(tmp_path: Path) -> None:
    """Where one query cannot say it, a sequence with a first-seen baseline on one step's
    event fields is a building block and a new_terms rule over that step's event alerts."""
    (bb, nt), _ = _chain_of(
        tmp_path, SEQUENCE, "      as: [start.process.name, start.process.parent.name]"
    )
    assert bb["building_block_type"] == "default" and bb["type"] == "eql"
    assert bb["query"].startswith("sequence by host.name, process.pid with maxspan=5m")
    assert nt["type"] == "new_terms" and nt["index"] == [elastic.ALERTS_INDEX]
    assert nt["query"] == (
        f'kibana.alert.rule.rule_id: "{bb["rule_id"]}" and kibana.alert.group.index: 0'
    )
    assert nt["new_terms_fields"] == ["process.name", "process.parent.name"]
    assert nt["history_window_start"] == "now-14d"
    assert "(mixed)" in nt["note"] and "of sequence step 0 only" in nt["note"]


def test_match_with_first_seen_chain_is_a_superset(tmp_path: Path) -> None:
    """A match whose history is its own stream: the building block's alerts are that stream's
    events, so only the history's reach (from the deployment, anchored at the run) differs."""
    (bb, nt), _ = _chain_of(tmp_path, "  match: tool", "")
    assert bb["type"] == "eql" and bb["query"].startswith("process where")
    assert nt["query"] == f'kibana.alert.rule.rule_id: "{bb["rule_id"]}"'
    assert "(superset)" in nt["note"]
    lo = load_catalog([tmp_path]).loaded[0]
    reasons: list[str] = []
    strict = Request((lo,), False, None)
    assert (
        elastic._chain(Package("elastic"), lo, strict, schedule.derive(lo.analytic), reasons)
        is None
    )
    assert "elastic chain needs --allow-approximate" in reasons[-1]


def test_chain_refuses_fields_the_alerts_do_not_carry() -> None:
    """AN1190's candidate reads the host role (a lookup enrichment) and a derived parent name:
    the building block's alerts copy the source events, so a new_terms rule over them would
    never see those fields. AN1190 ships as one exact ES|QL rule instead."""
    lo = next(x for x in CATALOG if x.analytic.id == "AN1190")
    reasons: list[str] = []
    s = schedule.derive(lo.analytic, None)
    assert elastic._chain(Package("elastic"), lo, request(), s, reasons) is None
    assert "labels.host_role, process.parent.name is computed by the analytic" in reasons[-1]


def test_lookup_index_files() -> None:
    pkg = elastic.package(request())
    mapping = json.loads(pkg.files["lookups/siemc-lookup-inventory.mapping.json"])
    assert mapping["settings"]["index"]["mode"] == "lookup"
    assert mapping["mappings"]["properties"]["siemc_lc_host"] == {"type": "keyword"}
    lines = pkg.files["lookups/siemc-lookup-inventory.bulk.ndjson"].splitlines()
    action, doc = json.loads(lines[0]), json.loads(lines[1])
    assert action == {"index": {"_id": "1", "_index": "siemc-lookup-inventory"}}
    assert doc["host"] == "web01" and doc["siemc_row"] == 1 and doc["siemc_lc_host"] == "web01"
    assert len(lines) == 2 * 15


def test_skipped_pairs_say_why() -> None:
    reasons = {s.analytic: s.reason for s in PKG.skipped}
    assert "sequence" in reasons["SIEMC-0004"]
    assert set(PKG.exported).isdisjoint(reasons)


@pytest.mark.parametrize(
    "rule", RULES, ids=[f"{r['meta']['siemc']['analytic']}-{r['type']}" for r in RULES]
)
def test_queries_pass_elastics_parsers(rule: dict[str, Any]) -> None:
    """The exported query (with the window frame export adds to ES|QL aggregates) still passes
    Elastic's ES|QL parser, feature check and analyzer, or the eql parser; a native rule's KQL
    or Lucene query parses (tests/interpreters/kuery_interp.py, Kibana's grammar)."""
    lo = next(x for x in CATALOG if x.analytic.id == rule["meta"]["siemc"]["analytic"])
    if rule["type"] == "esql":
        esql_oracle.validate(rule["query"], esql_oracle.lookups_of(lo.analytic))
    elif rule["type"] == "eql":
        assert elastic_eql_oracle.validate(rule["query"]) is None
    elif rule["index"] == [elastic.ALERTS_INDEX]:
        assert rule["query"].startswith("kibana.alert.rule.rule_id: ")
    else:  # a native threshold or new_terms rule: KQL or Lucene the interpreter parses
        kuery_interp.parse(rule["language"], rule["query"], run_esql.field_types())
