"""Smoke test of bench/duckdb_engine.py at a tiny N (no timing is asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import duckdb_engine as bench  # noqa: E402


def test_siemc_and_hand_written_sql_find_the_same_alerts(tmp_path: Path) -> None:
    res = bench.measure(3000, seed=3, workdir=tmp_path)
    assert res["events"] == 3000 and res["filter_alerts"] > 0
    for shape in ("filter", "aggregate"):
        assert res[f"duckdb_vs_hand_{shape}"] > 0


def test_events_are_nested_ecs_with_iso_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    bench.write_events(path, 5, seed=1)
    import json

    docs = [json.loads(x) for x in path.read_text("utf-8").splitlines()]
    assert len(docs) == 5
    assert all(d["@timestamp"].endswith("Z") and isinstance(d["event"], dict) for d in docs)
