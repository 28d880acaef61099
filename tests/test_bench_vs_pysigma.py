"""bench/vs_pysigma.py on a few rules (two hand-written correlations, one corpus rule), so the
side-by-side comparison with pySigma's backends cannot rot."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import vs_pysigma as bench  # noqa: E402
from bench.import_sigma import default_corpus  # noqa: E402
from tests.ci_support import skip_unless_ci  # noqa: E402


def test_bench_compares_siemc_and_pysigma(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.CORRELATIONS.is_dir(), "the bench's correlation rules are missing"
    if not bench.PYSIGMA_PYTHON.exists():
        skip_unless_ci(f"{bench.PYSIGMA_PYTHON} is missing: scripts/dev setup builds it")
    corpus = default_corpus()
    if not corpus.is_dir():
        skip_unless_ci(f"the SigmaHQ corpus is missing: {corpus}")
    for name in ("event_count.yml", "temporal.yml"):
        shutil.copy(bench.CORRELATIONS / name, tmp_path / name)
    out = bench.main(["--correlations", str(tmp_path), "--sample", "1"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(out, sort_keys=True))
    assert out["corpus"]["rules"] == 1
    for t in out["corpus"]["targets"].values():
        assert 0 <= t["siemc_equal"] <= t["siemc_converted"] <= 1
        assert 0 <= t["pysigma_equal"] <= t["pysigma_converted"] <= 1
    corr = out["correlations"]["targets"]
    assert out["correlations"]["rules"] == 2
    # siemc's Splunk keeps Sigma's sliding windows; pySigma's `bin _time` buckets miss the
    # bursts that straddle a bucket boundary (bench/README.md)
    assert corr["splunk"]["siemc_equal"] == 2
    assert corr["splunk"]["pysigma_converted"] == 2 and corr["splunk"]["pysigma_equal"] == 0
    assert corr["kql"]["siemc_equal"] == 2
    # the Kusto backend converts no correlation rule
    assert corr["kql"]["pysigma_converted"] == 0
    assert "NotImplementedError" in corr["kql"]["pysigma_why_not"]
