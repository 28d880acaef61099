"""`siemc run --engine`: DuckDB where an analytic compiles exactly to it over ECS inputs, the
evaluator otherwise, and the same alert lines from both."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.base import CompileError
from backends.duckdb import DuckdbBackend
from compiler import run_engine
from compiler.cli import main
from compiler.discover import load_catalog
from compiler.engines import run_duckdb
from compiler.lower import Loaded
from compiler.runner import alert_lines
from compiler.testing import fixture_events
from compiler.timeutil import parse_timestamp

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = [ROOT / "analytics", *sorted(p for p in (ROOT / "tests" / "differential").iterdir())]


@cache
def _exact() -> tuple[Loaded, ...]:
    out = []
    for folder in FOLDERS:
        for lo in load_catalog([folder]).loaded:
            try:
                DuckdbBackend().compile(lo.analytic)
            except CompileError:
                continue
            out.append(lo)
    return tuple(out)


def _cases() -> list[tuple[int, str]]:
    return [(i, fx.name) for i, lo in enumerate(_exact()) for fx in lo.fixtures]


def test_some_bundled_and_differential_analytics_run_on_duckdb() -> None:
    ids = {lo.analytic.id for lo in _exact()}
    assert {"SIEMC-0003", "SIEMC-0007", "SIEMC-0009"} <= ids
    assert len(_cases()) >= 20


@pytest.mark.parametrize(("index", "fixture"), _cases())
def test_duckdb_prints_the_evaluators_lines(index: int, fixture: str, tmp_path: Path) -> None:
    """Each fixture's events, written as one ECS JSON Lines file (with their ids), give
    byte-identical lines on both engines."""
    lo = _exact()[index]
    fx = next(f for f in lo.fixtures if f.name == fixture)
    path = tmp_path / "events.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for e in fixture_events(lo, fx):
            doc = {**e.fields, "event.id": e.id}
            fh.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    specs = [(path, "ecs")]
    ours = run_engine.duckdb_lines(lo.analytic, specs, fx.now_ms)
    ref = list(alert_lines([lo.analytic], specs, fx.now_ms))
    assert ours == ref


def _write(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


_PORTS = [
    json.loads(line)
    for line in (ROOT / "analytics/fixtures/SIEMC-0007/positive.jsonl").read_text().splitlines()
]


def _run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, args)
    return res.exit_code, res.stdout, res.stderr


def test_auto_runs_duckdb_where_exact_and_says_which_engine_ran(tmp_path: Path) -> None:
    path = _write(tmp_path, _PORTS)
    code, out, err = _run(["run", str(ROOT / "analytics"), "-i", str(path)])
    assert code == 0, err
    assert "SIEMC-0013: engine duckdb\n" in err
    assert "AN1190: engine evaluator (does not compile exactly to DuckDB:" in err
    # exact on DuckDB, but its consuming sliding window is quadratic there: auto keeps it
    assert "SIEMC-0007: engine evaluator (a sliding window runs faster on the evaluator" in err
    code2, out2, _ = _run(
        ["run", str(ROOT / "analytics"), "-i", str(path), "--engine", "evaluator"]
    )
    assert code2 == 0
    assert out == out2
    assert '"analytic": "SIEMC-0007"' in out
    a7 = next((ROOT / "analytics").glob("siemc0007_*.yml"))
    code3, out3, err3 = _run(["run", str(a7), "-i", str(path), "--engine", "duckdb"])
    assert code3 == 0, err3
    assert "SIEMC-0007: engine duckdb\n" in err3
    assert out3 and out3 in out2


def test_engine_duckdb_refuses_an_analytic_it_cannot_run_exactly(tmp_path: Path) -> None:
    path = _write(tmp_path, _PORTS)
    a1190 = next((ROOT / "analytics").glob("an1190_*.yml"))
    code, out, err = _run(["run", str(a1190), "-i", str(path), "--engine", "duckdb"])
    assert code == 2
    assert out == ""
    assert "AN1190: --engine duckdb: does not compile exactly to DuckDB" in err


def test_non_ecs_inputs_go_to_the_evaluator(tmp_path: Path) -> None:
    a7 = next((ROOT / "analytics").glob("siemc0007_*.yml"))
    zeek = ROOT / "analytics" / "fixtures" / "otrf" / "UTICA-ONE-DRIVE_conn.log"
    code, _, err = _run(["run", str(a7), "-i", f"zeek:{zeek}"])
    assert code == 0, err
    assert "SIEMC-0007: engine evaluator (inputs in format zeek" in err


def test_a_time_layout_duckdb_does_not_read_falls_back_to_the_evaluator(tmp_path: Path) -> None:
    rows = [
        dict(r, **{"@timestamp": f"2024-09-01T12:00:{i:02d} +02:00"}) for i, r in enumerate(_PORTS)
    ]
    path = _write(tmp_path, rows)
    # the tumbling form of SIEMC-0007 (auto leaves 0007's sliding window to the evaluator)
    a13 = next((ROOT / "analytics").glob("siemc0013_*.yml"))
    code, out, err = _run(["run", str(a13), "-i", str(path)])
    assert code == 0, err
    assert "SIEMC-0013: engine evaluator (DuckDB could not read the inputs:" in err
    assert '"start": "2024-09-01T10:00:00.000Z"' in out
    code, out, err = _run(["run", str(a13), "-i", str(path), "--engine", "duckdb"])
    assert code == 2
    assert "in.jsonl#1" in err


def test_duckdb_leaves_no_spill_folder_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / ".." / tmp_path.name, _PORTS)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    a7 = next((ROOT / "analytics").glob("siemc0007_*.yml"))
    code, _, err = _run(["run", str(a7), "-i", str(path), "--engine", "duckdb"])
    assert code == 0, err
    assert list(work.iterdir()) == []


_DIGITS = st.integers(0, 99).map(lambda n: f"{n:02d}")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    year=st.integers(0, 10000).map(lambda n: f"{n:04d}"),
    month=_DIGITS,
    day=_DIGITS,
    sep=st.sampled_from(["T", "t", " ", "_"]),
    hour=_DIGITS,
    minute=_DIGITS,
    second=_DIGITS,
    frac=st.sampled_from(["", ".5", ",123", ".123456789", "."]),
    zone=st.sampled_from(["", "Z", "z", "+02:00", "-23:59", "+24:00", "+0200", " Z", "+02"]),
)
def test_duckdb_reads_a_time_as_the_evaluator_or_not_at_all(
    year: str,
    month: str,
    day: str,
    sep: str,
    hour: str,
    minute: str,
    second: str,
    frac: str,
    zone: str,
) -> None:
    text = f"{year}-{month}-{day}{sep}{hour}:{minute}:{second}{frac}{zone}"
    assert _agrees(text)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.one_of(st.integers(-(10**12), 2**64 - 1), st.floats(allow_nan=False), st.text()))
def test_duckdb_reads_any_value_as_the_evaluator_or_not_at_all(value: object) -> None:
    assert _agrees(value)


def _agrees(value: object) -> bool:
    con = run_duckdb.connect()
    for macro in run_duckdb._TIME_MACROS:
        con.execute(macro)
    got = con.execute("SELECT siemc_ts(?::JSON)", [json.dumps(value)]).fetchone()[0]
    if got is None:
        return True
    try:
        return bool(got == parse_timestamp(value))
    except ValueError:
        return False


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    digits=st.integers(0, 9),
)
def test_the_layout_ecs_shippers_write_is_read_exactly(when: datetime, digits: int) -> None:
    """`2024-01-01T13:45:06.143Z` (any number of fraction digits) takes the fast path, which
    slices the JSON text: it must read every such time, to the evaluator's millisecond."""
    frac = f"{when.microsecond:06d}{when.microsecond % 1000:03d}"[:digits]
    text = when.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + (f".{frac}" if digits else "") + "Z"
    con = run_duckdb.connect()
    for macro in run_duckdb._TIME_MACROS:
        con.execute(macro)
    got = con.execute("SELECT siemc_ts(?::JSON)", [json.dumps(text)]).fetchone()[0]
    assert got == parse_timestamp(text)
