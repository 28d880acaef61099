"""--format json / sarif: one deterministic document on stdout, the SARIF valid against the
official SARIF 2.1.0 schema (tests/data/sarif/) and within GitHub code scanning's subset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from compiler.cli import main
from compiler.diagnostics import CODES, Diagnostic
from compiler.engines import load_engine
from compiler.sarif import MAX_RESULTS, sarif_log

from .test_cli import ANALYTIC, write
from .test_cli_exit_codes import COUNTING

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif" / "sarif-schema-2.1.0.json").read_text()
)
BROKEN = ANALYTIC.replace("match: proc", "match: procs")  # E120 at detect.match
FAILING = ANALYTIC.replace("evidence: [e1]", "evidence: [e2]")


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def sarif_ok(text: str) -> dict[str, Any]:
    """Valid SARIF 2.1.0 within GitHub's documented subset."""
    doc: dict[str, Any] = json.loads(text)
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    assert doc["version"] == "2.1.0" and len(doc["runs"]) <= 20
    for run in doc["runs"]:
        rules = run["tool"]["driver"]["rules"]
        assert len(run["results"]) <= MAX_RESULTS and len(rules) <= 25_000
        ids = [r["id"] for r in rules]
        for r in rules:
            assert r["shortDescription"]["text"] == CODES[r["id"]]
        for res in run["results"]:
            assert ids[res["ruleIndex"]] == res["ruleId"]
            assert res["partialFingerprints"]["primaryLocationLineHash"]
            assert 1 <= len(res["locations"]) <= 1000
            loc = res["locations"][0]["physicalLocation"]
            assert not loc["artifactLocation"]["uri"].startswith("/")
    return doc


def test_check_sarif_is_valid_and_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.yml", BROKEN)
    write(tmp_path, "good.yml", ANALYTIC.replace("CLI-1", "CLI-9"))
    res = invoke("check", ".", "--format", "sarif")
    assert res.exit_code == 2
    doc = sarif_ok(res.stdout)
    (result,) = doc["runs"][0]["results"]
    assert result["ruleId"] == "E120" and result["level"] == "error"
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "bad.yml", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == line_of(BROKEN, "match: procs")
    assert loc["region"]["startColumn"] == 10
    assert invoke("check", ".", "--format", "sarif").stdout == res.stdout  # deterministic


def test_fingerprint_survives_a_line_move(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.yml", BROKEN)
    first = json.loads(invoke("check", ".", "--format", "sarif").stdout)
    write(tmp_path, "bad.yml", BROKEN.replace("description: test analytic\n", "description: x\n\n"))
    moved = json.loads(invoke("check", ".", "--format", "sarif").stdout)
    a, b = first["runs"][0]["results"][0], moved["runs"][0]["results"][0]
    region = "locations", 0, "physicalLocation", "region", "startLine"
    assert _get(a, region) + 1 == _get(b, region)
    assert a["partialFingerprints"] == b["partialFingerprints"]


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def test_check_json(tmp_path: Path) -> None:
    write(tmp_path, "bad.yml", BROKEN)
    write(tmp_path, "good.yml", ANALYTIC.replace("CLI-1", "CLI-9"))
    res = invoke("check", str(tmp_path), "--format", "json")
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["analytics"] == ["CLI-9"]
    (d,) = doc["diagnostics"]
    at = (d["code"], d["line"], d["col"], d["severity"])
    assert at == ("E120", line_of(BROKEN, "match: procs"), 10, "error")
    assert d["description"] == CODES["E120"]


def test_check_json_on_valid_catalog_is_exit_0(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    res = invoke("check", str(tmp_path), "--format", "json")
    assert res.exit_code == 0 and json.loads(res.stdout)["diagnostics"] == []


def test_test_json_and_sarif_report_failures_at_the_fixture(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", FAILING)
    res = invoke("test", str(tmp_path), "--format", "json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)  # nothing but the document on stdout
    statuses = {f["fixture"]: f["status"] for f in doc["fixtures"]}
    assert statuses == {"excel spawns powershell": "failed", "word spawns powershell": "passed"}
    assert doc["summary"]["failed"] == 1
    (d,) = doc["diagnostics"]
    assert d["code"] == "E620" and d["line"] == line_of(FAILING, "excel spawns powershell")
    sarif = sarif_ok(invoke("test", str(tmp_path), "--format", "sarif").stdout)
    (r,) = sarif["runs"][0]["results"]
    assert r["ruleId"] == "E620" and "missing" in r["message"]["text"]


def test_compile_json_lists_every_pair_with_its_fidelity(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", COUNTING)
    res = invoke("compile", str(tmp_path / "a.yml"), "--format", "json")
    assert res.exit_code == 1  # eql refuses the aggregation
    pairs = {p["target"]: p for p in json.loads(res.stdout)["pairs"]}
    assert pairs["kql"]["fidelity"] == "exact" and "| summarize" in pairs["kql"]["query"]
    assert pairs["eql"]["fidelity"] == "refused"
    assert pairs["eql"]["diagnostics"][0]["code"] == "E200"


def test_compile_sarif_has_refusals_and_approximation_warnings(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", COUNTING)
    res = invoke("compile", str(tmp_path), "--allow-approximate", "--format", "sarif")
    doc = sarif_ok(res.stdout)
    levels = {(r["ruleId"], r["level"]) for r in doc["runs"][0]["results"]}
    assert ("E200", "error") in levels and ("W300", "warning") in levels


def test_export_json_and_sarif(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    res = invoke("export", str(tmp_path / "a.yml"), "-o", str(tmp_path / "o"), "--format", "json")
    assert res.exit_code == 0, res.output
    vendors = {p["vendor"]: p for p in json.loads(res.stdout)["packages"]}
    assert vendors["splunk"]["exported"] == ["CLI-1"]
    res = invoke("export", str(tmp_path / "a.yml"), "-o", str(tmp_path / "s"), "--format", "sarif")
    assert res.exit_code == 0 and sarif_ok(res.stdout)["runs"][0]["results"] == []


def test_fidelity_format_json_equals_json_flag(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", COUNTING)
    a = invoke("fidelity", "--catalog", str(tmp_path), "--format", "json")
    b = invoke("fidelity", "--catalog", str(tmp_path), "--json")
    assert a.exit_code == 0 and a.stdout == b.stdout
    assert json.loads(a.stdout)["pairs"]["CLI-2"]["kql"]["fidelity"] == "exact"
    assert invoke("fidelity", "--format", "json").exit_code == 64


def test_run_json_and_the_deprecated_input_format_spelling(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps(
            {
                "@timestamp": "2024-01-01T00:00:00Z",
                "event": {"id": "e1", "category": "process", "type": "start"},
                "host": {"name": "h1", "os": {"type": "windows"}},
                "process": {"name": "cmd.exe", "parent": {"name": "excel.exe"}},
            }
        )
        + "\n"
    )
    res = invoke("run", str(tmp_path / "a.yml"), "-i", str(log), "--format", "json")
    assert res.exit_code == 0, res.output
    (alert,) = json.loads(res.stdout)["alerts"]
    assert alert["analytic"] == "CLI-1" and alert["evidence"] == ["e1"]
    old = invoke("run", str(tmp_path / "a.yml"), "-i", str(log), "--format", "ecs")
    new = invoke("run", str(tmp_path / "a.yml"), "-i", str(log), "--input-format", "ecs")
    assert old.exit_code == new.exit_code == 0 and old.stdout == new.stdout
    assert "is now --input-format" in old.stderr


def test_build_writes_sarif_of_failing_fixtures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "an").mkdir()
    write(tmp_path / "an", "a.yml", FAILING)
    res = invoke("build", "an", "-o", "out", "--sarif", "siemc.sarif")
    assert res.exit_code == 1
    doc = sarif_ok((tmp_path / "siemc.sarif").read_text())
    (r,) = doc["runs"][0]["results"]
    assert r["ruleId"] == "E620"
    assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "an/a.yml"


def test_sarif_keeps_githubs_result_limit_errors_first(tmp_path: Path) -> None:
    warnings = [
        Diagnostic("W300", f"w{i}", "a.yml", i + 1, 1, severity="warning")
        for i in range(MAX_RESULTS)
    ]
    error = Diagnostic("E120", "unknown stream", "z.yml", 3, 4)
    doc = sarif_log([*warnings, error], cwd=tmp_path)
    run = doc["runs"][0]
    assert len(run["results"]) == MAX_RESULTS
    assert run["properties"] == {"siemcResultsLeftOut": 1}
    assert any(r["ruleId"] == "E120" for r in run["results"])
    outside = sarif_log([Diagnostic("E120", "m", "/elsewhere/x.yml", 1, 1)], cwd=tmp_path)
    loc = outside["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "file:///elsewhere/x.yml"}


def test_an_engine_error_is_e623_at_the_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(loaded: Any, fixture: Any, artifact: Any) -> Any:
        raise KeyError("x")

    monkeypatch.setattr(load_engine("eql"), "run", run)
    path = write(tmp_path, "a.yml", ANALYTIC)
    res = invoke("test", str(path), "--engines", "eql", "--format", "json")
    assert res.exit_code == 70
    doc = json.loads(res.stdout)
    assert {e["status"] for e in doc["engines"]} == {"error"}
    assert {d["code"] for d in doc["diagnostics"]} == {"E623"}
    sarif = sarif_ok(invoke("test", str(path), "--engines", "eql", "--format", "sarif").stdout)
    lines = {
        r["locations"][0]["physicalLocation"]["region"]["startLine"]
        for r in sarif["runs"][0]["results"]
    }
    assert lines == {line_of(ANALYTIC, "excel spawns"), line_of(ANALYTIC, "word spawns")}
