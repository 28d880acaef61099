"""Sentinel export: every rule (repository YAML and ARM template) satisfies the model of
Sentinel's constraints, the model rejects what Sentinel rejects, and lookups become watchlists."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from backends.psl_table import rows
from compiler.discover import load_catalog
from compiler.export import schedule as sch
from compiler.export import sentinel
from compiler.export.common import Request, stable_uuid
from compiler.export.sentinel_model import AnalyticRule, ArmTemplate
from tests.export_support import CATALOG, request
from tests.oracles.kql_oracle import require_oracle, validate
from tests.test_export_splunk import LOOKUP_ANALYTIC

PKG = sentinel.package(request())
RULES = sorted(k for k in PKG.files if k.startswith("AnalyticRules/"))


@pytest.mark.parametrize("path", RULES)
def test_rule_and_arm_satisfy_the_model(path: str) -> None:
    doc = yaml.safe_load(PKG.files[path])
    rule = AnalyticRule.model_validate(doc)
    aid = Path(path).stem
    assert rule.id == stable_uuid(aid, "sentinel")
    arm = ArmTemplate.model_validate(json.loads(PKG.files[f"ARM/{aid}.json"]))
    props = arm.resources[0].properties
    assert props.query == rule.query and props.severity == rule.severity
    assert rule.id in arm.resources[0].name


def _valid() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(PKG.files["AnalyticRules/SIEMC-0006.yaml"])
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"severity": "Critical"}, "severity"),
        ({"queryPeriod": "15d"}, "outside 5m..14d"),
        ({"queryFrequency": "1h", "queryPeriod": "30m"}, "at least queryFrequency"),
        ({"triggerThreshold": 10001}, "triggerThreshold"),
        ({"tactics": ["Exfiltration"]}, "belongs to none of the tactics"),
        ({"tactics": ["Command and Control"]}, "not an ATT&CK tactic name"),
        ({"id": "SIEMC-0006"}, "id"),
        (
            {
                "entityMappings": [
                    {
                        "entityType": "Host",
                        "fieldMappings": [{"identifier": "Address", "columnName": "x"}],
                    }
                ]
            },
            "not an identifier of Host",
        ),
        ({"entityMappings": []}, "entityMappings"),
        ({"query": "x" * 10_001}, "query"),
        ({"extra": 1}, "extra"),
    ],
)
def test_model_rejects(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AnalyticRule.model_validate({**_valid(), **change})


def test_schedule_tactics_and_entities() -> None:
    doc = _valid()
    assert (doc["queryFrequency"], doc["queryPeriod"]) == ("5m", "7m")
    assert doc["tactics"] == ["Execution", "Discovery"]
    assert doc["requiredDataConnectors"][0]["dataTypes"] == [
        "DeviceInfo",
        "DeviceNetworkEvents",
        "DeviceProcessEvents",
    ]
    assert doc["entityMappings"] == [
        {
            "entityType": "Host",
            "fieldMappings": [{"identifier": "HostName", "columnName": "__k_DeviceName"}],
        }
    ]
    assert "__k_DeviceName" in doc["query"].split(";")[-1]
    arm = json.loads(PKG.files["ARM/SIEMC-0006.json"])["resources"][0]["properties"]
    assert (arm["queryFrequency"], arm["queryPeriod"]) == ("PT5M", "PT7M")
    assert arm["techniques"] == ["T1016", "T1033", "T1059", "T1082"]
    assert arm["subTechniques"] == ["T1059.004"]


def test_history_past_14_days_is_cut_and_declared() -> None:
    # 14d first_seen + the 5m run frequency: the rule reads 14d and declares the cut history;
    # without --allow-approximate it is skipped with the reason
    readme = PKG.files["README.md"]
    line = next(x for x in readme.splitlines() if x.startswith("- AN1190:"))
    assert "every 5m over 14d" in line
    assert "APPROXIMATION first-seen baseline history (superset)" in line
    assert "watchlist or a summary rule's table" in line
    strict = sentinel.package(request(allow_approximate=False))
    reasons = {s.analytic: s.reason for s in strict.skipped}
    assert "Sentinel allows at most 14d" in reasons["AN1190"]
    assert "--allow-approximate" in reasons["AN1190"]
    critical = yaml.safe_load(PKG.files["AnalyticRules/SIEMC-0005.yaml"])
    assert critical["severity"] == "High"  # no Critical in Sentinel


def test_watchlists(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(
        LOOKUP_ANALYTIC.replace(
            "category: process_creation", "category: process_creation, product: windows"
        )
    )
    # more rows than KQL inlines into a filter (backends/inline.py): the query reads the watchlist
    csv = "host,role\n" + "".join(f"web{i:03d},web-server\n" for i in range(120))
    (tmp_path / "inventory.csv").write_text(csv)
    cat = load_catalog([tmp_path])
    pkg = sentinel.package(Request(tuple(cat.loaded), False, None))
    assert pkg.exported == ["TEST-LOOKUP"], pkg.skipped
    # the CSV row number beside the CSV's columns (an enrichment takes the first row of a key)
    numbered = "host,role,siemc_row\n" + "".join(
        f"web{i:03d},web-server,{i + 1}\n" for i in range(120)
    )
    assert pkg.files["Watchlists/inventory/inventory.csv"] == numbered
    wl = json.loads(pkg.files["Watchlists/inventory/watchlist.json"])["resources"][0]["properties"]
    assert (wl["watchlistAlias"], wl["itemsSearchKey"]) == ("inventory", "host")
    assert (
        '_GetWatchlist("inventory")'
        in yaml.safe_load(pkg.files["AnalyticRules/TEST-LOOKUP.yaml"])["query"]
    )


@pytest.mark.parametrize("path", RULES)
def test_queries_with_decision_filter_pass_kusto_language(path: str) -> None:
    """The exported query (the backend's plus the decision filter) resolves in Microsoft's
    Kusto.Language against the Sentinel schemas, and the filter is its last line."""
    require_oracle()
    doc = yaml.safe_load(PKG.files[path])
    query = doc["query"]
    assert query.rstrip().splitlines()[-1].startswith("| where ")
    every = doc["queryFrequency"]
    assert f", {every}, datetime(1970-01-01))" in query.splitlines()[-1]
    assert validate([query]) == [[]]


def test_decision_filter_per_detection() -> None:
    lo = next(x for x in CATALOG if x.analytic.id == "SIEMC-0005")
    s = sch.derive(lo.analytic)
    assert sentinel.decision_filter(lo.analytic, s) == (
        "| where __end >= bin_at(now(), 5m, datetime(1970-01-01)) - 5m"
        " and __end < bin_at(now(), 5m, datetime(1970-01-01))"
    )
    hourly = next(x for x in CATALOG if x.analytic.id == "SIEMC-0011")
    f = sentinel.decision_filter(hourly.analytic, sch.derive(hourly.analytic))
    assert f.startswith("| where __end > bin_at(now(), 1h, datetime(1970-01-01)) - 1h")
    joined = next(x for x in CATALOG if x.analytic.id == "SIEMC-0003")  # around join, 1d
    f = sentinel.decision_filter(joined.analytic, sch.derive(joined.analytic))
    assert "bin_at(now() - 1d, 1h, datetime(1970-01-01))" in f
    absent = next(x for x in CATALOG if x.analytic.id == "SIEMC-0009")
    f = sentinel.decision_filter(absent.analytic, sch.derive(absent.analytic))
    assert f.startswith("| where (__start + 5m) >= ")


def test_the_public_suffix_list_ships_as_a_watchlist() -> None:
    """registered_domain() reads the Public Suffix List watchlist (backends/sentinel/psl.py):
    the rows of Splunk's lookup, searched by suffix, written once beside the rules."""
    root = "Watchlists/siemc_public_suffix_list/"
    table = list(csv.reader(io.StringIO(PKG.files[root + "siemc_public_suffix_list.csv"])))
    assert table[0] == ["suffix", "rank"]
    assert [tuple(r) for r in table[1:]] == list(rows())
    props = json.loads(PKG.files[root + "watchlist.json"])["resources"][0]["properties"]
    assert (props["watchlistAlias"], props["itemsSearchKey"]) == (
        "siemc_public_suffix_list",
        "suffix",
    )
    readers = [
        p
        for p, text in PKG.files.items()
        if p.startswith("AnalyticRules/") and "_GetWatchlist('siemc_public_suffix_list')" in text
    ]
    assert "AnalyticRules/SIEMC-0008.yaml" in readers
