"""Smoke test of bench/compile.py on a small catalog (in-process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402

from backends import TARGETS  # noqa: E402
from bench import compile as bench  # noqa: E402
from compiler.lower import load_text  # noqa: E402

N = 24


def test_catalog_is_deterministic_and_covers_every_shape() -> None:
    a = bench.generate_catalog(N, seed=3)
    assert a == bench.generate_catalog(N, seed=3)
    assert a != bench.generate_catalog(N, seed=4)
    assert len(a) == N
    assert len({path for path, _, _ in a}) == N
    assert {shape for _, shape, _ in a} == {name for name, _ in bench.SHAPES}


def test_every_generated_analytic_loads() -> None:
    for path, _, text in bench.generate_catalog(2 * N, seed=5):
        assert load_text(path, text).analytic.id


def test_siemc_and_pysigma_runs() -> None:
    catalog = bench.generate_catalog(N, seed=1)
    ours = bench.run_siemc(catalog, tuple(TARGETS))
    assert ours.load_errors == []
    for t in TARGETS:
        assert len(ours.artifacts[t]) + ours.unsupported[t] == N
    sigma = [a.text for a in ours.artifacts["sigma"]]
    assert len(sigma) >= N // 2  # most shapes have a Sigma form
    theirs = bench.run_pysigma(sigma)
    assert theirs.errors == []
    assert theirs.queries == len(sigma)  # one SQLite query per analytic (correlations embed)
    assert theirs.rules > len(sigma)  # base rules + correlation rules


def test_main_prints_the_summary_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--analytics", str(N), "--repeat", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    for key in ("analytics", "targets", "siemc_s", "pysigma_s", "ratio", "siemc_compile_only_s"):
        assert key in summary, key
    assert summary["analytics"] == N
    assert summary["targets"] == len(TARGETS) == 5
    assert summary["siemc_s"] > 0 and summary["pysigma_s"] > 0 and summary["ratio"] > 0
    assert summary["pysigma_errors"] == 0 and summary["load_errors"] == 0
    assert sum(summary["per_target"]["sigma"].values()) == N
