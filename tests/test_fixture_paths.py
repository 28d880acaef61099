"""Fixture input paths: a file that is not there is an error at its `file:`; only a data root
that is absent may skip, and only outside CI=true."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import EXIT_INVALID, EXIT_OK, main

from .test_cli import ANALYTIC

EVENT = '{"@timestamp": "2024-01-01T00:00:00Z", "event.category": "process"}\n'


def _with_input(tmp: Path, file: str) -> Path:
    text = ANALYTIC.replace(
        '    events:\n      - {"@timestamp": "2024-01-01T00:00:00Z", event.category',
        f"    data: real\n    inputs: [{{file: {file}}}]\n"
        '    events:\n      - {"@timestamp": "2024-01-01T00:00:00Z", event.category',
    )
    p = tmp / "a.yml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def otrf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "otrf"
    root.mkdir()
    (root / "real.jsonl").write_text(EVENT)
    monkeypatch.setenv("SIEMC_OTRF_DIR", str(root))
    monkeypatch.delenv("CI", raising=False)
    return root


def test_a_typo_under_a_present_data_root_is_a_positioned_error(tmp_path: Path, otrf: Path) -> None:
    a = _with_input(tmp_path, "$OTRF/reall.jsonl")
    for cmd in ("check", "test"):
        res = CliRunner().invoke(main, [cmd, str(a)])
        assert res.exit_code == EXIT_INVALID, res.output
        assert f"{a}:27:21: error[E160]: fixture file not found: {otrf}/reall.jsonl" in res.output
        assert "help: files in $OTRF: real.jsonl" in res.output
        assert "SKIP" not in res.output


def test_the_right_name_under_the_data_root_loads(tmp_path: Path, otrf: Path) -> None:
    res = CliRunner().invoke(main, ["test", str(_with_input(tmp_path, "$OTRF/real.jsonl"))])
    assert res.exit_code == EXIT_OK, res.output
    assert "2 passed" in res.output


def test_an_unknown_data_root_is_a_positioned_error(tmp_path: Path, otrf: Path) -> None:
    a = _with_input(tmp_path, "$OTFR/real.jsonl")
    res = CliRunner().invoke(main, ["check", str(a)])
    assert res.exit_code == EXIT_INVALID
    assert f"{a}:27:21: error[E160]: unknown data root '$OTFR'" in res.output
    assert "help: known data roots: $OTRF" in res.output


def test_a_missing_file_beside_the_analytic_is_a_positioned_error(tmp_path: Path) -> None:
    a = _with_input(tmp_path, "fixtures/nope.jsonl")
    res = CliRunner().invoke(main, ["test", str(a)])
    assert res.exit_code == EXIT_INVALID
    assert f"{a}:27:21: error[E160]: fixture file not found: {tmp_path}/fixtures/nope.jsonl" in (
        res.output
    )


def test_an_absent_data_root_skips_outside_ci_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _with_input(tmp_path, "$OTRF/real.jsonl")
    monkeypatch.setenv("SIEMC_OTRF_DIR", str(tmp_path / "absent"))
    monkeypatch.delenv("CI", raising=False)
    res = CliRunner().invoke(main, ["test", str(a)])
    assert res.exit_code == EXIT_OK and "SKIP" in res.output, res.output
    assert f"data root $OTRF not found: SIEMC_OTRF_DIR={tmp_path}/absent is not a folder" in (
        res.output
    )
    monkeypatch.delenv("SIEMC_OTRF_DIR")
    res = CliRunner().invoke(main, ["test", str(a)])
    assert res.exit_code == EXIT_OK and "SKIP" in res.output, res.output
    assert "data root $OTRF not found (set SIEMC_OTRF_DIR, or place shared/data/otrf" in res.output
    monkeypatch.setenv("SIEMC_OTRF_DIR", str(tmp_path / "absent"))
    monkeypatch.setenv("CI", "true")
    res = CliRunner().invoke(main, ["test", str(a)])
    assert res.exit_code == EXIT_INVALID, res.output
    assert (
        f"ERR   negative/real       word spawns powershell  (real data missing under CI: {a}:27:14:"
        in (res.output)
    )


def test_a_file_that_vanishes_after_loading_is_an_error_not_a_skip(
    tmp_path: Path, otrf: Path
) -> None:
    from compiler.lower import load_file
    from compiler.testing import run_fixture

    loaded = load_file(_with_input(tmp_path, "$OTRF/real.jsonl"))
    (otrf / "real.jsonl").unlink()
    r = run_fixture(loaded, loaded.fixtures[1])
    assert r.status == "error" and "fixture file not found" in r.message
