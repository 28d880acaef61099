"""Smoke test of bench/evaluator.py at a tiny N (in-process, no subprocesses)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from bench import evaluator as bench  # noqa: E402

N = 2000


def test_generation_is_deterministic_and_ordered() -> None:
    a = list(bench.generate(300, seed=7))
    b = list(bench.generate(300, seed=7))
    assert a == b
    assert [ts for ts, _ in a] == sorted(ts for ts, _ in a)
    cats = {f["event.category"] for _, f in a}
    assert cats == {"process", "network"}
    assert len(list(bench.generate(300, seed=8))) == 300
    assert list(bench.generate(300, seed=8)) != a


def test_keys_option() -> None:
    card = bench.Cardinalities.parse("hosts=5,domains=10")
    assert (card.hosts, card.domains, card.users) == (5, 10, 400)
    hosts = {f["host.name"] for _, f in bench.generate(500, keys=card)}
    assert len(hosts) <= 5


def test_siemc_and_eql_find_the_same_sequences() -> None:
    ours, theirs, diff = bench.cross_check(N, 1, bench.Cardinalities(), 20.0)
    assert ours > 0
    assert ours == theirs
    assert diff == []


def test_workers_report_the_summary_keys() -> None:
    base = {"events": N, "seed": 1, "rate": 20.0, "keys": {}}
    rate = bench.worker({**base, "kind": "siemc_rate", "analytics": ["sequence", "tumbling"]})
    assert set(rate["analytics"]) == {"sequence", "tumbling"}
    assert rate["analytics"]["sequence"]["events_per_s"] > 0
    mem = bench.worker({**base, "kind": "siemc_mem", "analytic": "tumbling"})
    assert mem["peak_rss_mb"] > 0
    assert mem["max_state_items"] > 0
    eql = bench.worker({**base, "kind": "eql_rate"})
    assert eql["alerts"] == rate["analytics"]["sequence"]["alerts"]


def test_run_summary_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    # run() measures in subprocesses; here measure() is replaced by the in-process worker.
    monkeypatch.setattr(bench, "measure", bench.worker)
    opts = bench.Options(events=N // 2, memory_check=True, bundled=False, check_events=N // 2)
    summary = bench.run(opts, log=lambda _msg: None)
    for key in (
        "events",
        "events_per_s",
        "peak_rss_mb",
        "eql_events_per_s",
        "ratio_vs_eql",
        "mem_growth_4x",
        "analytics",
    ):
        assert key in summary, key
    assert summary["check_same"] is True
    assert summary["eql_alerts"] == summary["alerts"]
