"""The KQL profiles' log sources for Sigma's categories and Windows channels (backends/profiles/
mde.yml, asim.yml): which table each logsource reads, what a source refuses and why, and the
Sentinel export of rules over the new tables. Engine equality of each family is checked by the
differential fixtures tests/differential/kql/src_*.yml (tests/test_diff_kql.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.export import sentinel
from compiler.export.common import Request
from compiler.export.sentinel_model import AnalyticRule, ArmTemplate
from compiler.lower import Loaded

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tests" / "differential" / "kql"


def _analytic(tmp_path: Path, logsource: str, where: str) -> Loaded:
    text = f"""id: T-SRC
title: t
description: t
attack: {{techniques: [T1059]}}
platforms: [windows]
severity: low
streams:
  events:
    logsource: {logsource}
    where:
{where}
detect:
  match: events
"""
    path = tmp_path / "t.yml"
    path.write_text(text, encoding="utf-8")
    cat = load_catalog([path])
    assert not [d for d in cat.diagnostics if d.severity == "error"], cat.diagnostics
    return cat.loaded[0]


def _compile(lo: Loaded, profile: str) -> tuple[str | None, list[str]]:
    res = compile_pair(lo, "kql", profile=profile, allow_approximate=True)
    query = res.artifact.query if res.artifact is not None else None
    return query, [f"{d.code}: {d.message}" for d in res.diagnostics]


@pytest.mark.parametrize(
    ("category", "where"),
    [
        ("file_event", 'ActionType == "FileCreated"'),
        ("file_delete", 'ActionType == "FileDeleted"'),
        ("file_rename", 'ActionType == "FileRenamed"'),
        ("file_change", 'ActionType in ("FileModified", "FileRenamed")'),
        ("registry_add", 'ActionType == "RegistryKeyCreated"'),
        ("registry_set", 'ActionType in ("RegistryValueSet", "RegistryKeyRenamed")'),
        ("registry_delete", 'ActionType in ("RegistryKeyDeleted", "RegistryValueDeleted")'),
        ("registry_rename", 'ActionType == "RegistryKeyRenamed"'),
    ],
)
def test_each_category_reads_its_action_types(tmp_path: Path, category: str, where: str) -> None:
    field = "file.path" if category.startswith("file") else "registry.path"
    lo = _analytic(tmp_path, f"{{category: {category}, product: windows}}", f"      {field}: x")
    query, diags = _compile(lo, "mde")
    assert query is not None, diags
    table = "DeviceFileEvents" if category.startswith("file") else "DeviceRegistryEvents"
    assert f"let events = {table}\n| where {where}\n" in query


def test_registry_event_reads_every_action_and_declares_the_spellings(tmp_path: Path) -> None:
    lo = _analytic(
        tmp_path, "{category: registry_event, product: windows}", "      registry.path: x"
    )
    res = compile_pair(lo, "kql", profile="mde", allow_approximate=True)
    assert res.artifact is not None
    assert "| where ActionType" not in res.artifact.query
    assert "RegistryPath = strcat(case(" in res.artifact.query
    (ap,) = res.artifact.approximations
    assert "HKEY_CURRENT_USER" in ap.detail and "DWORD" in ap.detail
    # without --allow-approximate the pair is refused, never claimed exact
    strict = compile_pair(lo, "kql", profile="mde", allow_approximate=False)
    assert strict.artifact is None


@pytest.mark.parametrize("category", ["ps_script", "ps_module", "ps_classic_start"])
def test_powershell_logs_are_refused_with_the_table_that_has_them(
    tmp_path: Path, category: str
) -> None:
    lo = _analytic(
        tmp_path,
        f"{{category: {category}, product: windows}}",
        "      powershell.file.script_block_text|contains: x",
    )
    query, diags = _compile(lo, "mde")
    assert query is None
    assert any("E211" in d and "PowerShellCommand" in d and "WindowsEvent" in d for d in diags)


def test_image_load_refuses_the_loaded_image_signature(tmp_path: Path) -> None:
    lo = _analytic(
        tmp_path,
        "{category: image_load, product: windows}",
        "      dll.path|endswith: x.dll\n      winlog.event_data.Signed: 'false'",
    )
    query, diags = _compile(lo, "mde")
    assert query is None
    assert any("E211" in d and "DeviceFileCertificateInfo" in d for d in diags), diags


def test_file_access_has_no_mde_source(tmp_path: Path) -> None:
    lo = _analytic(tmp_path, "{category: file_access, product: windows}", "      file.path: x")
    query, diags = _compile(lo, "mde")
    assert query is None and any("not reads" in d for d in diags), diags


def test_security_log_reads_security_event_columns(tmp_path: Path) -> None:
    lo = _analytic(
        tmp_path,
        "{product: windows, service: security}",
        "      event.code: 4624\n      winlog.event_data.LogonType: 10\n"
        "      winlog.event_data.SubjectUserName|endswith: $",
    )
    query, diags = _compile(lo, "asim")
    assert query is not None, diags
    assert "let events = SecurityEvent\n| where (EventID == 4624 and LogonType == 10 and " in query
    # an EventData field SecurityEvent has no column for is refused with the reason
    lo = _analytic(
        tmp_path,
        "{product: windows, service: security}",
        "      event.code: 5136\n      winlog.event_data.AttributeLDAPDisplayName: x",
    )
    query, diags = _compile(lo, "asim")
    assert query is None and any("EventData XML" in d for d in diags), diags


def test_sentinel_export_of_the_new_sources_validates() -> None:
    catalog = tuple(
        sorted(
            (lo for lo in load_catalog([SRC / "src_file.yml", SRC / "src_security.yml"]).loaded),
            key=lambda x: x.analytic.id,
        )
    )
    pkg = sentinel.package(Request(catalog, True, None))
    connectors = {}
    for lo in catalog:
        aid = lo.analytic.id
        doc = yaml.safe_load(pkg.files[f"AnalyticRules/{aid}.yaml"])
        rule = AnalyticRule.model_validate(doc)
        ArmTemplate.model_validate(json.loads(pkg.files[f"ARM/{aid}.json"]))
        connectors[aid] = [(c.connectorId, c.dataTypes) for c in rule.requiredDataConnectors]
    assert connectors == {
        "D-KQL-SRC-F1": [("MicrosoftThreatProtection", ["DeviceFileEvents", "DeviceInfo"])],
        "D-KQL-SRC-S1": [("WindowsSecurityEvents", ["SecurityEvent"])],
    }


def test_windows_event_reads_event_data_members_by_name(tmp_path: Path) -> None:
    lo = _analytic(
        tmp_path,
        "{product: windows, service: taskscheduler}",
        "      event.code: 106\n      winlog.event_data.TaskName|contains: x\n"
        "      winlog.event_data.Task: '1'",
    )
    query, diags = _compile(lo, "asim")
    assert query is not None, diags
    assert (
        'let events = WindowsEvent\n| where Channel == "Microsoft-Windows-TaskScheduler/Op' in query
    )
    # a member named like a WindowsEvent column (Task) gets a column of its own
    assert "Task_data = tostring(EventData.Task)" in query
    assert "TaskName = tostring(EventData.TaskName)" in query
    assert 'Task_data =~ "1"' in query
    assert "| where (EventID == 106 and TaskName contains" in query


def test_a_category_product_entry_describes_the_whole_logsource(tmp_path: Path) -> None:
    lo = _analytic(
        tmp_path,
        "{category: ps_script, product: windows}",
        "      powershell.file.script_block_text|contains: x",
    )
    query, diags = _compile(lo, "asim")
    assert query is not None, diags
    # the windows entry's DvcOs filter (ASIM parsers) does not apply to WindowsEvent
    assert "DvcOs" not in query
    assert 'where Provider == "Microsoft-Windows-PowerShell"\n| where EventID == 4104' in query


def test_sentinel_export_names_the_forwarded_events_connector() -> None:
    catalog = tuple(load_catalog([SRC / "src_system.yml"]).loaded)
    pkg = sentinel.package(Request(catalog, True, None))
    rule = AnalyticRule.model_validate(yaml.safe_load(pkg.files["AnalyticRules/D-KQL-SRC-W1.yaml"]))
    assert [(c.connectorId, c.dataTypes) for c in rule.requiredDataConnectors] == [
        ("WindowsForwardedEvents", ["WindowsEvent"])
    ]
