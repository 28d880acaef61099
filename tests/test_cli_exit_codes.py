"""One exit-code table for every command (docs/diagnostics.md): 0 ok, 1 a check did not pass
(failing fixtures or engines, refused pairs), 2 invalid input, 64 usage error, 69 an engine is
not installed, 70 an engine raised on a case. No option ever falls back silently."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler.cli import EXIT_INVALID, EXIT_OK, EXIT_TESTS, EXIT_UNAVAILABLE, EXIT_USAGE, main

from .test_cli import ANALYTIC

# a windowed count: EQL cannot express it (E200), Sigma only approximates it (E202 unless
# --allow-approximate), KQL compiles it exactly
COUNTING = """\
id: CLI-2
title: Many shells from one host
description: test analytic
attack: {techniques: [T1059.001]}
platforms: [windows]
severity: medium
false_positives: [none]
streams:
  proc:
    logsource: {category: process_creation, product: windows}
    where:
      process.name: powershell.exe
detect:
  aggregate:
    stream: proc
    window: {kind: tumbling, size: 5m}
    by: [host.name]
    measures:
      n: {count: true}
    having: n >= 3
"""


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _analytic(tmp: Path, text: str = ANALYTIC, name: str = "a.yml") -> Path:
    p = tmp / name
    p.write_text(textwrap.dedent(text))
    return p


def test_exit_codes_are_distinct() -> None:
    codes = [EXIT_OK, EXIT_TESTS, EXIT_INVALID, EXIT_USAGE, EXIT_UNAVAILABLE]
    assert len(set(codes)) == len(codes) and EXIT_USAGE == 64


# ------------------------------------------------------------------ compile
def test_compile_all_compiled_is_0(tmp_path: Path) -> None:
    res = _invoke("compile", str(_analytic(tmp_path)), "-t", "kql", "-o", str(tmp_path / "o"))
    assert res.exit_code == EXIT_OK, res.output
    assert (tmp_path / "o" / "kql" / "CLI-1.kql").is_file()


def test_compile_some_pairs_refused_is_1_with_every_file_written(tmp_path: Path) -> None:
    a = _analytic(tmp_path, COUNTING)
    res = _invoke("compile", str(a), "-t", "all", "-o", str(tmp_path / "o"))
    assert res.exit_code == EXIT_TESTS, res.output
    assert "approximation not allowed" in res.output and "unsupported" in res.output
    assert (tmp_path / "o" / "eql" / "CLI-2.err").is_file()
    assert (tmp_path / "o" / "kql" / "CLI-2.kql").is_file()


def test_compile_approximation_not_allowed_counts_as_refused(tmp_path: Path) -> None:
    a = _analytic(tmp_path, COUNTING)
    refused = _invoke("compile", str(a), "-t", "sigma", "-o", str(tmp_path / "o"))
    assert refused.exit_code == EXIT_TESTS, refused.output
    assert "error[E202]" in (tmp_path / "o" / "sigma" / "CLI-2.err").read_text()
    allowed = _invoke(
        "compile", str(a), "-t", "sigma", "-o", str(tmp_path / "o"), "--allow-approximate"
    )
    assert allowed.exit_code == EXIT_OK, allowed.output


def test_compile_to_stdout_refused_is_1(tmp_path: Path) -> None:
    res = _invoke("compile", str(_analytic(tmp_path, COUNTING)), "-t", "eql")
    assert res.exit_code == EXIT_TESTS and "error[E200]" in res.output


def test_compile_invalid_input_is_2(tmp_path: Path) -> None:
    a = _analytic(tmp_path, ANALYTIC.replace("match: proc", "match: procs"))
    res = _invoke("compile", str(a), "-o", str(tmp_path / "o"))
    assert res.exit_code == EXIT_INVALID and "error[E120]" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "qradar"], "Invalid value for '-t'"),
        (["--bogus"], "No such option '--bogus'"),
        (["-t", "kql", "--profile", "bogus"], "unknown profile 'bogus'"),
        (["-t", "kql", "--profile", "backends/profiles/asim.yml"], "unknown profile"),
        (["-t", "splunk", "--profile", "asim"], "profile 'asim' does not apply to splunk"),
        (["-t", "all", "--profile", "asim"], "does not apply to splunk, eql, esql, sigma"),
    ],
)
def test_compile_usage_errors_are_64(tmp_path: Path, args: list[str], message: str) -> None:
    res = _invoke("compile", str(_analytic(tmp_path)), "-o", str(tmp_path / "o"), *args)
    assert res.exit_code == EXIT_USAGE, res.output
    assert message in res.output
    assert not (tmp_path / "o").exists()  # nothing was compiled with another profile


def test_unknown_profile_lists_every_profile(tmp_path: Path) -> None:
    res = _invoke("compile", str(_analytic(tmp_path)), "-t", "kql", "--profile", "ASIM")
    assert res.exit_code == EXIT_USAGE
    assert "splunk: cim, sysmon; eql: ecs; esql: ecs; kql: mde, asim; sigma: sigma" in res.output


def test_compile_a_profile_that_fits_is_used(tmp_path: Path) -> None:
    res = _invoke("compile", str(_analytic(tmp_path)), "-t", "kql", "--profile", "asim")
    assert res.exit_code == EXIT_OK, res.output
    assert "DeviceProcessEvents" not in res.output  # ASIM tables, not MDE's


def test_several_analytics_without_out_is_64(tmp_path: Path) -> None:
    _analytic(tmp_path)
    _analytic(tmp_path, ANALYTIC.replace("id: CLI-1", "id: CLI-9"), "b.yml")
    res = _invoke("compile", str(tmp_path))
    assert res.exit_code == EXIT_USAGE and "give --out DIR" in res.output


# ------------------------------------------------------------------ test, check, build, run
def test_test_profile_errors_are_64(tmp_path: Path) -> None:
    a = str(_analytic(tmp_path))
    res = _invoke("test", a, "--engines", "eql", "--profile", "asim")
    assert res.exit_code == EXIT_USAGE and "does not apply to eql" in res.output
    res = _invoke("test", a, "--engines", "kql", "--profile", "nope")
    assert res.exit_code == EXIT_USAGE and "unknown profile 'nope'" in res.output
    res = _invoke("test", a, "--profile", "asim")
    assert res.exit_code == EXIT_USAGE and "--engines" in res.output


def test_missing_engine_is_69(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler import engine_check
    from compiler.engines import EngineUnavailable

    def unavailable(target: str) -> None:
        raise EngineUnavailable(f"the {target} engine needs pip install 'siemc[engines]'")

    monkeypatch.setattr(engine_check, "load_engine", unavailable)
    res = _invoke("test", str(_analytic(tmp_path)), "--engines", "eql")
    assert res.exit_code == EXIT_UNAVAILABLE and "pip install 'siemc[engines]'" in res.output


def test_check_codes(tmp_path: Path) -> None:
    assert _invoke("check", str(_analytic(tmp_path))).exit_code == EXIT_OK
    assert _invoke("check").exit_code == EXIT_USAGE  # click's own: missing argument
    assert _invoke("check", str(tmp_path / "nope")).exit_code == EXIT_USAGE
    (tmp_path / "empty").mkdir()
    res = _invoke("check", str(tmp_path / "empty"))
    assert res.exit_code == EXIT_USAGE and "no analytic files" in res.output
    bad = _analytic(tmp_path, "id: [", "b.yml")
    assert _invoke("check", str(bad)).exit_code == EXIT_INVALID


def test_build_codes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _analytic(src)
    out = tmp_path / "out"
    # a catalog compiled to every target always has pairs some target cannot express: they
    # are recorded (.err, fidelity.json), and the exit code is about the analytics' tests
    res = _invoke("build", str(src), "--out", str(out))
    assert res.exit_code == EXIT_OK, res.output
    _analytic(src, ANALYTIC.replace("evidence: [e1]", "evidence: [e2]"))
    assert _invoke("build", str(src), "--out", str(out)).exit_code == EXIT_TESTS
    assert _invoke("build", str(src), "--strict", "--bogus").exit_code == EXIT_USAGE


def test_fidelity_and_help_codes() -> None:
    assert _invoke("fidelity").exit_code == EXIT_OK
    assert _invoke("fidelity", "extra").exit_code == EXIT_USAGE
    assert _invoke("--help").exit_code == EXIT_OK
    assert _invoke("--version").exit_code == EXIT_OK
    assert _invoke("nosuchcommand").exit_code == EXIT_USAGE


def test_interrupt_is_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compiler import cli

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_catalog", interrupted)
    res = _invoke("check", str(_analytic(tmp_path)))
    assert res.exit_code == cli.EXIT_INTERRUPTED == 130 and "Aborted!" in res.output


def test_run_codes(tmp_path: Path) -> None:
    a = str(_analytic(tmp_path))
    logs = tmp_path / "logs.jsonl"
    logs.write_text('{"@timestamp": "2024-01-01T00:00:01Z", "event.id": "a"}\n')
    assert _invoke("run", a, "-i", str(logs)).exit_code == EXIT_OK
    assert _invoke("run", a).exit_code == EXIT_USAGE  # -i is required
    assert _invoke("run", a, "-i", str(logs), "--now", "yesterday").exit_code == EXIT_USAGE
    logs.write_text("not json\n")
    assert _invoke("run", a, "-i", str(logs)).exit_code == EXIT_INVALID


def test_installed_command_exits_64_on_usage() -> None:
    """The real entry point (not only CliRunner) maps click's usage errors to 64."""
    import subprocess
    import sys

    siemc = Path(sys.executable).with_name("siemc")  # installed beside the venv's python
    proc = subprocess.run(
        [str(siemc), "compile", "--bogus"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "No such option '--bogus'" in proc.stderr


def test_every_exit_code_is_documented() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "diagnostics.md").read_text()
    from compiler import cli

    codes = {v for k, v in vars(cli).items() if k.startswith("EXIT_")}
    assert codes == {0, 1, 2, 64, 69, 70, 73, 130}
    for code in codes:
        assert f"| `{code}` |" in doc, code
