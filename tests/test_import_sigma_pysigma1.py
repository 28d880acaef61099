"""`siemc import sigma` gives the same analytics with pySigma 1.5 (.venv-pysigma1) as with the
suite's 2.x: siemc accepts pysigma>=1.5,<3 and both ends are in the field."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from tests.ci_support import skip_unless_ci
from tests.import_support import rule
from tests.test_import_sigma_correlation import FAIL, OK, corr

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "import_sigma_check.py"
OLD_PYTHON = ROOT / ".venv-pysigma1" / "bin" / "python"

DETECTIONS = [
    "sel: {CommandLine|windash|contains|all: [' -enc ', ' -nop ']}\ncondition: sel",
    "sel: {CommandLine|base64offset|contains: 'http://'}\ncondition: sel",
    "sel: {CommandLine|wide|base64offset|contains: 'iex'}\ncondition: sel",
    "sel: {CommandLine|re|i|m|s: '^a.b$', Image: 'C:\\\\w*d?r'}\ncondition: sel",
    "sel: {User|expand: '%admins%', ParentImage|fieldref: Image}\ncondition: sel",
    "sel: {ProcessId|gte: 4, ProcessId|lt: 9, Company|exists: false, Product: null}\n"
    "condition: sel",
    "keywords: [evil]\ncondition: keywords",
]


def _run(python: str, folder: Path) -> dict[str, Any]:
    site = sysconfig.get_paths()["purelib"]
    proc = subprocess.run(
        [python, str(SCRIPT), site, str(ROOT), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_same_analytics_with_pysigma_1_5(tmp_path: Path) -> None:
    if not OLD_PYTHON.exists():
        skip_unless_ci(f"{OLD_PYTHON} is missing: run scripts/dev setup")
    docs = [rule(d).replace("000000000001", f"0000000001{i:02d}") for i, d in enumerate(DETECTIONS)]
    docs += [
        FAIL,
        OK,
        corr("event_count", "failed_logon", "condition: {gte: 3}"),
        corr("temporal_ordered", "failed_logon, ok_logon").replace("c1", "c2"),
        corr("value_sum", "failed_logon", "condition: {field: Bytes, gt: 9}").replace("c1", "c3"),
    ]
    (tmp_path / "rules.yml").write_text("\n---\n".join(d.strip() for d in docs) + "\n")
    new = _run(sys.executable, tmp_path)
    old = _run(str(OLD_PYTHON), tmp_path)
    assert new["pysigma"].startswith("2.") and old["pysigma"].startswith("1.5")
    assert not new["invalid"] and not old["invalid"]
    assert len(new["files"]) >= 10
    assert old["files"] == new["files"]
    assert old["refused"] == new["refused"] == [["keyword", 68, 3]]
