"""Author, licence and references reach every export in the vendor's form (docs/export.md,
*Severity and metadata*): an imported Sigma rule's Detection Rule License requires keeping its
author and references with every rule derived from it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from compiler.discover import load_catalog
from compiler.export import elastic, sentinel, sigma, splunk
from compiler.export.common import Request
from compiler.export.sentinel_model import AnalyticRule
from tests.test_export_splunk import SAVEDSEARCHES, check

ANALYTIC = """\
id: TEST-CREDITS
title: Curl run by a web server
description: test analytic with an author and a licence
attack: {techniques: [T1059.004]}
platforms: [linux]
severity: high
owner: detection-engineering
author: Florian Roth (Nextron Systems), Jane Doe
license: DRL-1.1
references: [https://example.org/a, https://example.org/b]
streams:
  proc:
    logsource: {category: process_creation, product: linux}
    where: {process.name: curl, process.parent.name: java}
detect:
  match: proc
"""
AUTHORS = ["Florian Roth (Nextron Systems)", "Jane Doe"]


def _request(tmp_path: Path, text: str = ANALYTIC) -> Request:
    (tmp_path / "a.yml").write_text(text)
    cat = load_catalog([tmp_path])
    assert not cat.errors
    return Request(tuple(cat.loaded), False, None)


def test_every_vendor_carries_author_licence_and_references(tmp_path: Path) -> None:
    req = _request(tmp_path)
    (rule,) = [json.loads(x) for x in elastic.package(req).files["rules.ndjson"].splitlines()]
    assert rule["author"] == AUTHORS and rule["license"] == "DRL-1.1"
    assert rule["references"] == ["https://example.org/a", "https://example.org/b"]

    text = sentinel.package(req).files["AnalyticRules/TEST-CREDITS.yaml"]
    doc = yaml.safe_load(text)
    AnalyticRule.model_validate(doc)
    assert doc["metadata"]["author"] == {"name": ", ".join(AUTHORS)}
    assert doc["metadata"]["source"] == {"kind": "Community"}
    assert doc["description"].endswith(
        "\n\nAuthor: Florian Roth (Nextron Systems), Jane Doe\n\nLicense: DRL-1.1\n\n"
        "References: https://example.org/a, https://example.org/b\n"
    )
    arm = json.loads(sentinel.package(req).files["ARM/TEST-CREDITS.json"])
    assert "License: DRL-1.1" in arm["resources"][0]["properties"]["description"]

    conf = splunk.package(req).files["siemc_detections/default/savedsearches.conf"]
    (stanza,) = check(conf, SAVEDSEARCHES).values()
    assert stanza["description"] == (
        "test analytic with an author and a licence Author: Florian Roth (Nextron Systems), "
        "Jane Doe. License: DRL-1.1. References: https://example.org/a, https://example.org/b."
    )

    (out,) = yaml.safe_load_all(sigma.package(req).files["rules/TEST-CREDITS.yml"])
    assert out["author"] == ", ".join(AUTHORS) and out["license"] == "DRL-1.1"
    assert out["references"] == ["https://example.org/a", "https://example.org/b"]


def test_without_an_author_the_owner_is_credited(tmp_path: Path) -> None:
    text = ANALYTIC.replace("author: Florian Roth (Nextron Systems), Jane Doe\n", "")
    text = text.replace("license: DRL-1.1\n", "")
    req = _request(tmp_path, text)
    (rule,) = [json.loads(x) for x in elastic.package(req).files["rules.ndjson"].splitlines()]
    assert rule["author"] == ["detection-engineering"] and "license" not in rule
    doc = yaml.safe_load(sentinel.package(req).files["AnalyticRules/TEST-CREDITS.yaml"])
    assert doc["metadata"]["author"] == {"name": "detection-engineering"}
    assert "License" not in doc["description"]
