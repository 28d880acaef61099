"""`siemc test --engines` never crashes: a case that an engine (or the compiler) cannot run is one
ERROR line with the exception's type and message, a JUnit error and exit 70, and every other
case still runs."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from backends import get_backend
from compiler.cli import EXIT_ENGINE_ERROR, EXIT_TESTS, main
from compiler.engines import ENGINES, load_engine

from .test_cli import ANALYTIC

TARGETS = list(ENGINES)
FIXTURES = ("excel spawns powershell", "word spawns powershell")

# A real input the eql engine chokes on: eql 1.0.1's `in` hashes the field's value and raises on
# an object. Elasticsearch has no answer to compare with (a long field rejects an object at
# indexing), so the honest outcome is an engine error, not a verdict.
AN_OBJECT = """\
id: CLI-OBJ
title: Connection to a web port
description: test analytic
attack: {techniques: [T1071]}
platforms: [windows]
severity: low
false_positives: [none]
streams:
  conn:
    logsource: {category: network_connection, product: windows}
    where:
      destination.port: [443, 8443]
detect:
  match: conn
tests:
  - name: a port that is an object
    kind: negative
    events:
      - {"@timestamp": "2024-01-01T00:00:00Z", event.id: e1, event.category: network,
         event.type: connection, host.os.type: windows, destination.port: {number: 443}}
  - name: a connection to 443
    kind: positive
    events:
      - {"@timestamp": "2024-01-01T00:00:00Z", event.id: e2, event.category: network,
         event.type: connection, host.os.type: windows, destination.port: 443}
    expect:
      - evidence: [e2]
"""


def _write(tmp: Path, text: str) -> Path:
    (tmp / "a.yml").write_text(textwrap.dedent(text))
    return tmp


def _lines(output: str, mark: str) -> list[str]:
    return [x for x in output.splitlines() if x.startswith(f"  {mark}")]


def test_every_engine_that_raises_is_one_error_line_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(target: str) -> Any:
        def run(loaded: Any, fixture: Any, artifact: Any) -> Any:
            raise RuntimeError(f"{target} cannot\n  run this")

        return run

    for t in TARGETS:
        monkeypatch.setattr(load_engine(t), "run", boom(t))
    junit = tmp_path / "j.xml"
    res = CliRunner().invoke(
        main, ["test", str(_write(tmp_path, ANALYTIC)), "--engines", "all", "--junit", str(junit)]
    )
    assert res.exit_code == EXIT_ENGINE_ERROR, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    errors = _lines(res.output, "ERROR")
    # every (target, fixture) case ran and failed on its own line, in order
    assert errors == [
        f"  ERROR {t:<7} CLI-1: {fx}  (RuntimeError: {t} cannot run this)"
        for fx in FIXTURES
        for t in TARGETS
    ]
    for t in TARGETS:
        assert f"{t}: 2 error" in res.output
    # the evaluator's own run is unaffected
    assert "2 fixture(s): 2 passed, 0 failed" in res.output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == str(2 * len(TARGETS))
    err = ET.parse(junit).getroot().find(".//testcase/error")
    assert err is not None and err.get("type") == "RuntimeError"
    assert "query:" in (err.text or "")


def test_verbose_error_shows_the_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(loaded: Any, fixture: Any, artifact: Any) -> Any:
        raise KeyError("x")

    monkeypatch.setattr(load_engine("eql"), "run", run)
    args = ["test", str(_write(tmp_path, ANALYTIC)), "--engines", "eql"]
    quiet = CliRunner().invoke(main, args)
    assert "  ERROR eql     CLI-1: excel spawns powershell  (KeyError: 'x')" in quiet.output
    assert "query:" not in quiet.output
    loud = CliRunner().invoke(main, [*args, "-v"])
    assert loud.exit_code == EXIT_ENGINE_ERROR
    assert "        query:\n          process where" in loud.output


def test_a_compiler_that_raises_is_an_error_of_that_target_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def compile(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("backend defect")

    monkeypatch.setattr(type(get_backend("kql")), "compile", compile)
    res = CliRunner().invoke(
        main, ["test", str(_write(tmp_path, ANALYTIC)), "--engines", "kql,eql"]
    )
    assert res.exit_code == EXIT_ENGINE_ERROR, res.output
    assert len(_lines(res.output, "ERROR kql")) == 2
    assert "(AssertionError: backend defect)" in res.output
    assert len(_lines(res.output, "PASS  eql")) == 2


def test_a_real_input_the_eql_engine_chokes_on(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["test", str(_write(tmp_path, AN_OBJECT)), "--engines", "all"])
    assert res.exit_code == EXIT_ENGINE_ERROR, res.output
    assert _lines(res.output, "ERROR") == [
        "  ERROR eql     CLI-OBJ: a port that is an object  (TypeError: unhashable type: 'dict')"
    ]
    # the same fixture on the other engines, and the next fixture on eql, still ran
    engine_passes = [x for x in _lines(res.output, "PASS") if " CLI-OBJ: " in x]
    assert len(engine_passes) == 2 * len(TARGETS) - 1
    assert "eql: 1 equal, 1 error" in res.output


def test_an_engine_error_outranks_a_failing_fixture(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(loaded: Any, fixture: Any, artifact: Any) -> Any:
        raise RuntimeError("down")

    monkeypatch.setattr(load_engine("esql"), "run", run)
    text = ANALYTIC.replace("evidence: [e1]", "evidence: [e2]")
    res = CliRunner().invoke(main, ["test", str(_write(tmp_path, text)), "--engines", "esql"])
    assert "FAIL  positive/synthetic" in res.output and "ERROR esql" in res.output
    assert res.exit_code == EXIT_ENGINE_ERROR


def test_an_engine_error_outranks_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failed comparisons exit 1, but results that are missing because an engine broke are
    worse news for CI: 70 wins."""
    from compiler.engines import run_eql

    real = run_eql.run
    calls: list[str] = []

    def flaky(loaded: Any, fixture: Any, artifact: Any) -> Any:
        calls.append(fixture.name)
        if len(calls) == 1:
            return []  # the positive fixture's alert is missing: a FAIL
        raise OSError("engine went away")

    monkeypatch.setattr(run_eql, "run", flaky)
    res = CliRunner().invoke(main, ["test", str(_write(tmp_path, ANALYTIC)), "--engines", "eql"])
    assert real is not flaky
    assert "FAIL  eql" in res.output and "ERROR eql" in res.output
    assert res.exit_code == EXIT_ENGINE_ERROR != EXIT_TESTS
