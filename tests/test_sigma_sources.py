"""The sigma profile's logsources: every category of Sigma's taxonomy siemc defines and every
product/service compile with the importer's field names read backwards
(backends/sigma/taxonomy.py); the hand-written entries keep their exceptions; the rule selects
events by its logsource alone, and the engine harness routes events by it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from backends.base import CompileError
from backends.sigma.backend import SigmaBackend
from backends.sigma.taxonomy import namespaced, shadowed, table_fields
from compiler import canonical
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.lower import Loaded, load_text
from compiler.testing import fixture_events
from tests.differential_support import evaluator_alerts

pytest.importorskip("sigma.backends.sqlite")
from compiler.engines import run_sigma

ROOT = Path(__file__).resolve().parent.parent
SRC = sorted((ROOT / "tests" / "differential" / "sigma").glob("src_*.yml"))


def _analytic(logsource: str, where: str) -> Loaded:
    text = f"""id: T-SRC
title: t
description: t
severity: low
owner: t
streams:
  s:
    logsource: {logsource}
    where: {where}
detect:
  match: s
"""
    return load_text("t.yml", text, ROOT)


def _compile(logsource: str, where: str) -> dict[str, Any]:
    art = SigmaBackend().compile(_analytic(logsource, where).analytic, profile="sigma")
    assert not art.approximations, art.approximations
    doc = yaml.safe_load(art.query)
    assert isinstance(doc, dict)
    return doc


def _error(logsource: str, where: str) -> tuple[str, str, str]:
    with pytest.raises(CompileError) as info:
        SigmaBackend().compile(_analytic(logsource, where).analytic, profile="sigma")
    [d] = info.value.diagnostics
    return d.code, d.message, d.help or ""


@pytest.fixture(scope="module")
def catalog() -> list[Loaded]:
    cat = load_catalog(SRC)
    assert not cat.errors, cat.errors
    return list(cat.loaded)


def test_fixtures_cover_the_source_families(catalog: list[Loaded]) -> None:
    sources = {
        (ls.category, ls.product, ls.service)
        for lo in catalog
        for s in lo.analytic.streams
        if (ls := s.source) and not isinstance(ls, str)
    }
    assert sources == {
        ("file_event", "windows", None),
        ("file_event", "linux", None),
        ("registry_set", "windows", None),
        ("image_load", "windows", None),
        ("ps_script", "windows", None),
        ("process_access", "windows", None),
        (None, "windows", "system"),
        ("webserver", None, None),
        ("proxy", None, None),
        (None, "aws", "cloudtrail"),
    }


def test_the_rule_names_the_streams_logsource_and_no_ecs_condition(catalog: list[Loaded]) -> None:
    for lo in catalog:
        res = compile_pair(lo, "sigma", profile=None, allow_approximate=False)
        assert res.status == "exact", (lo.analytic.id, res.diagnostics)
        assert res.artifact is not None
        doc = yaml.safe_load(res.artifact.query)
        [stream] = lo.analytic.streams
        ls = stream.source
        assert not isinstance(ls, str)
        want = {k: v for k in ("category", "product", "service") if (v := getattr(ls, k))}
        assert doc["logsource"] == want
        # the logsource means the event's category, type, provider and code: no field says it
        # again, unless the analytic itself tests it (DSIG-SRC5 tests the provider and 7045)
        tests = yaml.safe_dump(doc["detection"])
        for name in ("EventID", "Channel", "Provider_Name"):
            if lo.analytic.id != "DSIG-SRC5":
                assert name + ":" not in tests and name + "|" not in tests, (lo.analytic.id, name)


def test_the_engine_routes_events_by_the_rules_logsource(catalog: list[Loaded]) -> None:
    lo = next(x for x in catalog if x.analytic.id == "DSIG-SRC1")
    [fx] = lo.fixtures
    res = compile_pair(lo, "sigma", profile=None, allow_approximate=False)
    assert res.artifact is not None
    events = fixture_events(lo, fx)
    expected = evaluator_alerts(lo, fx)
    same = run_sigma.run_events(lo.analytic, res.artifact.query, events)
    assert canonical.diff(expected, same).equal
    # the same detection over deletions (file_delete, the same Sigma fields) sees f-2 alone
    other = res.artifact.query.replace("category: file_event", "category: file_delete")
    alerts = run_sigma.run_events(lo.analytic, other, events)
    assert [a.end for a in alerts] == [events[1].ts]
    assert events[1].fields["event.type"] == "deletion"


def test_windows_event_ids_compare_as_numbers() -> None:
    doc = _compile("{product: windows, service: system}", "{event.code: '7045'}")
    assert doc["detection"]["selection"] == {"EventID": 7045}


def test_hand_written_entries_gain_the_importers_other_fields() -> None:
    doc = _compile(
        "{category: process_creation, product: windows}",
        "{process.pe.description: PsExec, winlog.provider_name: X, process.executable: a}",
    )
    assert doc["detection"]["selection"] == {
        "Description": "PsExec",
        "Provider_Name": "X",
        "Image": "a",
    }
    doc = _compile("{category: process_creation, product: linux}", "{linux.LogonId: '0x3e7'}")
    assert doc["detection"]["selection"] == {"LogonId": "0x3e7"}


def test_what_differs_in_form_stays_refused() -> None:
    # Sysmon's User is DOMAIN\name: only the hand-written basename entries map user.name
    code, message, help = _error("{category: file_event, product: windows}", "{user.name: bob}")
    assert code == "E210" and "user.name" in message and "file_event/windows" in message
    assert "DOMAIN\\name" in help and "winlog.event_data" in help
    code, _, help = _error(
        "{category: process_creation, product: windows}", "{process.hash.md5: x}"
    )
    assert code == "E210" and "Hashes" in help
    # a prefix must not turn a field into a Sigma name the importer reads as another field
    code, message, help = _error(
        "{category: process_creation, product: windows}", "{winlog.event_data.Image: x}"
    )
    assert code == "E210" and "winlog.event_data.Image" in message
    assert "process.executable" in help


def test_a_category_names_its_sigma_category_even_where_select_exists() -> None:
    doc = _compile("{category: file_event, product: linux}", "{file.path|startswith: /etc/}")
    assert doc["logsource"] == {"category": "file_event", "product": "linux"}
    assert doc["detection"]["selection"] == {"TargetFilename|startswith": "/etc/"}
    # the product-only `select` still reads the stream's own category test
    doc = _compile(
        "{product: linux}",
        "{event.category: process, event.type: start, process.executable: /bin/sh}",
    )
    assert doc["logsource"] == {"category": "process_creation", "product": "linux"}


def test_network_flow_still_has_no_sigma_source() -> None:
    code, message, _ = _error("{category: network_flow}", "{source.ip: 10.0.0.1}")
    assert code == "E211" and "network_flow" in message


def test_taxonomy_reads_the_importer_backwards() -> None:
    web = table_fields(("webserver", None, None))
    assert web["url.query"] == "cs-uri-query" and web["source.ip"] == "c-ip"
    assert web["event.code"] == "EventID"  # the importer's common fields
    assert namespaced("aws.cloudtrail.userIdentity.type", (None, "aws", "cloudtrail")) == (
        "userIdentity.type"
    )
    assert namespaced("winlog.event_data.Hashes", ("image_load", "windows", None)) == "Hashes"
    assert namespaced("okta.okta.x", (None, "aws", "cloudtrail")) is None
    # a table name is never a namespaced field: Image is process.executable there
    assert namespaced("winlog.event_data.Image", ("process_creation", "windows", None)) is None
    assert shadowed("Image", "winlog.event_data.Image", ("process_creation", "windows", None))
    assert not shadowed("Details", "winlog.event_data.Details", ("registry_set", "windows", None))
