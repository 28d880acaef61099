"""The siemc command as a user runs it: exit codes, output, JUnit, schema."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from compiler.cli import main

ANALYTIC = """\
id: CLI-1
title: Excel starts a shell
description: test analytic
attack: {techniques: [T1059.001]}
platforms: [windows]
severity: medium
false_positives: [none]
streams:
  proc:
    logsource: {category: process_creation, product: windows}
    where:
      process.parent.name: excel.exe
detect:
  match: proc
tests:
  - name: excel spawns powershell
    kind: positive
    events:
      - {"@timestamp": "2024-01-01T00:00:00Z", event.id: e1, event.category: process,
         event.type: start, host.os.type: windows, host.name: h1,
         process.name: powershell.exe, process.parent.name: EXCEL.EXE}
    expect:
      - evidence: [e1]
  - name: word spawns powershell
    kind: negative
    events:
      - {"@timestamp": "2024-01-01T00:00:00Z", event.category: process, event.type: start,
         host.os.type: windows, process.parent.name: winword.exe}
"""


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(text))
    return p


def test_test_passes_and_writes_junit(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    junit = tmp_path / "out" / "junit.xml"
    res = CliRunner().invoke(main, ["test", str(tmp_path), "--junit", str(junit)])
    assert res.exit_code == 0, res.output
    assert "PASS  positive/synthetic" in res.output
    assert "2 fixture(s): 2 passed, 0 failed" in res.output
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("classname") for c in cases] == ["CLI-1", "CLI-1"]
    assert cases[0].get("name") == "positive/synthetic: excel spawns powershell"
    assert root.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]


def test_failing_fixture_exit_1_with_diff(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC.replace("evidence: [e1]", "evidence: [e2]"))
    junit = tmp_path / "j.xml"
    res = CliRunner().invoke(main, ["test", str(tmp_path), "--junit", str(junit)])
    assert res.exit_code == 1
    assert "FAIL" in res.output
    assert "- missing:    key {(any key)} evidence [e2]" in res.output
    assert "+ unexpected: key {(no key)}" in res.output and "evidence [e1]" in res.output
    failure = ET.parse(junit).getroot().find(".//failure")
    assert failure is not None and "missing" in (failure.text or "")


def test_invalid_analytic_exit_2_with_position(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC.replace("match: proc", "match: procs"))
    res = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert res.exit_code == 2
    assert f"{tmp_path}/a.yml:14:10: error[E120]: unknown stream 'procs'" in res.output
    assert "help: did you mean 'proc'?" in res.output


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    write(tmp_path, "b.yml", ANALYTIC)
    res = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert res.exit_code == 2
    assert "error[E150]: analytic id 'CLI-1' is also used by" in res.output


def test_missing_path_is_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["test", str(tmp_path / "nope")])
    assert res.exit_code == 64
    assert "no such file or folder" in res.output


def test_missing_real_data_skips_locally_fails_in_ci(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = ANALYTIC.replace(
        '    events:\n      - {"@timestamp": "2024-01-01T00:00:00Z", event.category',
        "    data: real\n    inputs: [{file: $OTRF/x.jsonl}]\n"
        '    events:\n      - {"@timestamp": "2024-01-01T00:00:00Z", event.category',
    )
    write(tmp_path, "a.yml", text)
    monkeypatch.setenv("SIEMC_OTRF_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv("CI", raising=False)
    res = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert res.exit_code == 0 and "SKIP" in res.output, res.output
    monkeypatch.setenv("CI", "true")
    res = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert res.exit_code == 2 and "ERR" in res.output


def test_schema_is_json_schema(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["schema"])
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"id", "streams", "detect"} <= set(schema["required"])
    assert schema["additionalProperties"] is False
    stream = schema["$defs"]["StreamM"]["properties"]
    assert "from" in stream and "where" in stream


def test_published_schema_is_current() -> None:
    published = Path(__file__).resolve().parent.parent / "docs" / "analytic.schema.json"
    res = CliRunner().invoke(main, ["schema"])
    assert published.read_text() == res.output, "run: siemc schema -o docs/analytic.schema.json"


def test_run_over_user_logs(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    logs = tmp_path / "logs.jsonl"
    logs.write_text(
        '{"@timestamp": "2024-01-01T00:00:05Z", "event": {"id": "b", "category": "process",'
        ' "type": "start"}, "host": {"os": {"type": "windows"}}, "process": {"parent":'
        ' {"name": "Excel.exe"}}}\n'
        '{"@timestamp": "2024-01-01T00:00:01Z", "event.id": "a", "event.category": "process",'
        ' "event.type": "start", "host.os.type": "windows", "process.parent.name": "excel.exe"}\n'
    )
    out = tmp_path / "alerts.jsonl"
    res = CliRunner().invoke(
        main, ["run", str(tmp_path / "a.yml"), "-i", str(logs), "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["evidence"] for a in alerts] == [["a"], ["b"]]
    assert alerts[0]["analytic"] == "CLI-1" and alerts[0]["start"] == "2024-01-01T00:00:01.000Z"
    # --presorted streams without sorting, so out-of-order input is an error, not a wrong answer
    res = CliRunner().invoke(main, ["run", str(tmp_path), "-i", f"ecs:{logs}", "--presorted"])
    assert res.exit_code == 2 and "out of order" in res.output


def test_run_rejects_missing_input(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    res = CliRunner().invoke(main, ["run", str(tmp_path), "-i", "sysmon:/nonexistent.jsonl"])
    assert res.exit_code == 64 and "no such input file: /nonexistent.jsonl" in res.output


def test_fixture_that_does_not_load_exits_2(tmp_path: Path) -> None:
    text = ANALYTIC.replace(
        '{"@timestamp": "2024-01-01T00:00:00Z", event.id: e1,', "{event.id: e1,"
    )
    write(tmp_path, "a.yml", text)
    res = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "ERR" in res.output and "has no @timestamp" in res.output


def test_failure_header_when_counts_match(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC.replace("evidence: [e1]", "evidence: [e9]"))
    res = CliRunner().invoke(main, ["test", str(tmp_path)])
    assert res.exit_code == 1
    assert "(alerts differ: 1 expected not produced, 1 unexpected)" in res.output


def test_run_unknown_input_format(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    res = CliRunner().invoke(main, ["run", str(tmp_path), "-i", "foo:conn.log"])
    assert res.exit_code == 64 and "unknown input format 'foo'" in res.output


def test_engines_compare_compiled_queries_with_the_evaluator(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    junit = tmp_path / "j.xml"
    res = CliRunner().invoke(
        main, ["test", str(tmp_path), "--engines", "eql,sigma", "--junit", str(junit)]
    )
    assert res.exit_code == 0, res.output
    assert "PASS  eql     CLI-1: excel spawns powershell  (1 alert(s), equal)" in res.output
    assert "eql: 2 equal" in res.output and "sigma: 2 equal" in res.output
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert "engine:eql positive/synthetic: excel spawns powershell" in names


def test_engines_catch_a_wrong_translation(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from compiler.engines import run_eql

    write(tmp_path, "a.yml", ANALYTIC)
    real = run_eql.run

    def wrong(loaded, fixture, artifact):  # type: ignore[no-untyped-def]
        # the engine sees a query that matches nothing: as if the translation were wrong
        bad = type(artifact)(
            **{**artifact.__dict__, "query": artifact.query.replace("excel", "xl")}
        )
        return real(loaded, fixture, bad)

    monkeypatch.setattr(run_eql, "run", wrong)
    res = CliRunner().invoke(main, ["test", str(tmp_path), "--engines", "eql"])
    assert res.exit_code == 1, res.output
    assert "FAIL  eql" in res.output and "missing (evaluator only)" in res.output


def test_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    res = CliRunner().invoke(main, ["test", str(tmp_path), "--engines", "qradar"])
    assert res.exit_code == 64 and "unknown engine(s): qradar" in res.output


def test_bundled_analytics_pass_every_engine(tmp_path: Path) -> None:
    """The issue's bar: `siemc test analytics/ --engines all` passes on every bundled analytic."""
    root = Path(__file__).resolve().parent.parent
    junit = tmp_path / "j.xml"
    res = CliRunner().invoke(
        main, ["test", str(root / "analytics"), "--engines", "all", "--junit", str(junit)]
    )
    assert res.exit_code == 0, res.output
    assert "FAIL" not in res.output
    for target in ("eql", "sigma", "kql", "esql", "splunk"):
        line = next(x for x in res.output.splitlines() if x.startswith(f"{target}: "))
        assert " equal" in line, line  # every engine really ran something
    cases = [c.get("name") or "" for c in ET.parse(junit).getroot().iter("testcase")]
    # the five SIEM engines and the local duckdb engine
    assert sum(n.startswith("engine:") for n in cases) == 6 * 61


def test_fidelity_catalog_counts_every_pair_per_target() -> None:
    import json as _json

    from click.testing import CliRunner

    from compiler.cli import main

    r = CliRunner().invoke(main, ["fidelity", "--catalog", "analytics", "--json"])
    assert r.exit_code == 0, r.output
    doc = _json.loads(r.output)
    assert set(doc["targets"]) == {"splunk", "eql", "esql", "kql", "sigma"}
    for per in doc["targets"].values():
        assert sum(per.values()) == len(doc["pairs"]) == 18
    kinds = {e["fidelity"] for p in doc["pairs"].values() for e in p.values()}
    assert kinds <= {"exact", "superset", "subset", "mixed", "refused"}
    md = CliRunner().invoke(main, ["fidelity", "--catalog", "analytics"])
    assert md.exit_code == 0 and "| **all** |" in md.output and "| AN1190 |" in md.output
    bad = CliRunner().invoke(main, ["fidelity", "--json"])
    assert bad.exit_code == 64 and "--json needs --catalog" in bad.output


def test_schema_output_creates_its_folder_and_reports_what_it_cannot_write(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["schema", "-o", str(tmp_path / "a" / "b.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a" / "b.json").read_text())["title"]
    (tmp_path / "file").write_text("x")
    res = CliRunner().invoke(main, ["schema", "-o", str(tmp_path / "file" / "x.json")])
    assert res.exit_code == 73
    assert "cannot write" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
