"""Smoke test of bench/import_sigma.py on a sample of the SigmaHQ corpus (in-process)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import import_sigma as bench  # noqa: E402
from tests.ci_support import skip_unless_ci  # noqa: E402


def test_bench_reports_import_and_compile_shares() -> None:
    corpus = bench.default_corpus()
    if not corpus.is_dir():
        skip_unless_ci(f"the SigmaHQ corpus is missing: {corpus}")
    out = bench.main([str(corpus), "--stride", "150", "--targets", "eql,kql"])
    assert isinstance(out["share_imported"], float) and out["share_imported"] >= 0.9
    targets = out["targets"]
    assert isinstance(targets, dict) and set(targets) == {"eql", "kql"}
    for t in targets.values():
        assert 0 <= t["compiled"] <= out["imported"]
