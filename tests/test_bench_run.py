"""Smoke test of bench/run.py at a tiny size, in-process: the generated file, the peers' alerts
(eql, DuckDB by hand) against siemc's, and the summary line's keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import run as bench  # noqa: E402
from compiler.lower import load_text  # noqa: E402
from compiler.runner import alert_json, run_files  # noqa: E402
from tests.ci_support import skip_unless_ci  # noqa: E402

N = 3000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "events.jsonl"
    bench.write_events(path, N, seed=1)
    return path


def _siemc(shape: str, data: Path, tmp: Path) -> list[object]:
    analytic = load_text(f"{shape}.yml", bench.SHAPES[shape]).analytic
    out = tmp / f"{shape}.jsonl"
    alerts = run_files([analytic], [(data, "ecs")], None)
    out.write_text("".join(alert_json(a) + "\n" for a in alerts), encoding="utf-8")
    return bench.siemc_alerts(out, shape)


def _peer(kind: str, data: Path, capsys: pytest.CaptureFixture[str]) -> list[object]:
    bench.worker(kind, str(data))
    return sorted(json.loads(capsys.readouterr().out.splitlines()[-1])["alerts"])


def test_generated_file_is_deterministic_and_in_time_order(data: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.jsonl"
    bench.write_events(again, N, seed=1)
    assert again.read_bytes() == data.read_bytes()
    stamps = [json.loads(line)["@timestamp"] for line in data.read_text().splitlines()]
    assert len(stamps) == N and stamps == sorted(stamps)


@pytest.mark.parametrize("shape", ["filter", "aggregate"])
def test_duckdb_by_hand_finds_the_same_alerts(
    shape: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not bench.duckdb_available():
        skip_unless_ci("duckdb not importable (a test dependency: scripts/dev setup installs it)")
    ours = _siemc(shape, data, tmp_path)
    assert ours, "the shape must alert on the generated data"
    assert _peer(f"duckdb-{shape}", data, capsys) == ours


def test_eql_finds_the_same_sequences(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not bench.eql_available():
        skip_unless_ci("eql not importable (a test dependency: scripts/dev setup installs it)")
    ours = _siemc("sequence", data, tmp_path)
    assert ours
    assert _peer("eql", data, capsys) == ours


def test_every_shape_alerts_and_the_summary_has_its_keys(data: Path, tmp_path: Path) -> None:
    def row(rate: float, rss: float) -> dict[str, float]:
        return {"events_per_s": rate, "events_per_cpu_s": rate / 2, "peak_rss_mb": rss}

    for shape in bench.SHAPES:
        # 3000 events are 2.5 minutes: too little for 100 connections of a host in 5 minutes
        assert bool(_siemc(shape, data, tmp_path)) is (shape != "sliding"), shape
    results = {
        "shapes": {s: {10: row(100.0, 50.0), 40: row(100.0, 55.0)} for s in bench.SHAPES},
        "duckdb_engine": {"filter": {10: row(160.0, 80.0), 40: row(150.0, 96.0)}},
        "peers": {
            "orjson_parse": {10: row(1000.0, 40.0)},
            "eql": {10: row(10.0, 60.0)},
            "duckdb-filter": {10: row(200.0, 90.0)},
        },
        "checks": {"eql_10": True},
    }
    out = bench.summary(results, [10, 40])
    assert out["evaluator_events_per_s_filter"] == 100.0
    assert out["evaluator_events_per_s_aggregate"] == 100.0
    assert out["evaluator_vs_eql_sequence"] == 10.0
    assert out["rss_growth_4x_max"] == pytest.approx(1.2)  # the DuckDB engine's 96 / 80
    assert out["evaluator_vs_duckdb_hand_filter"] == 0.5
    assert out["duckdb_vs_hand_filter"] == 0.8
    assert "duckdb_vs_hand_filter_40" not in out  # no hand-written run at 40
    assert out["same_alerts"] is True
    assert out["duckdb_engine_events_per_s_filter"] == 160.0


def test_the_shapes_auto_gives_duckdb_are_those_compiling_exactly() -> None:
    # a sliding window compiles exactly but is slower on DuckDB: auto leaves it to the evaluator
    assert bench.duckdb_shapes() == ["filter", "aggregate", "first_seen"]
