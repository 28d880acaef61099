"""The emitted Sigma rules load and convert at both ends of the pySigma range siemc accepts:
2.x (the suite's venv) and 1.5.x (.venv-pysigma1, which scripts/dev setup makes), because
sigma-cli and the released Splunk, Elasticsearch and Kusto backends still need pySigma < 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compiler.build import compile_all
from compiler.discover import load_catalog
from tests.ci_support import skip_unless_ci

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "pysigma_check.py"
OLD_PYTHON = ROOT / ".venv-pysigma1" / "bin" / "python"
# the bundled catalog compiles to few Sigma rules: the Sigma differential catalog adds every
# correlation type the backend emits (value_sum, value_avg, value_percentile, temporal, ...)
CATALOGS = [ROOT / "analytics", ROOT / "tests" / "differential" / "sigma"]
# the files whose correlation is an absence (pySigma's extended temporal condition)
ABSENCES = ["SIEMC-0009.yml", "DSIG-60.yml", "DSIG-N1.yml"]


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("sigma")
    cat = load_catalog(CATALOGS)
    assert not cat.errors
    paths = []
    for r in compile_all(cat.loaded, ["sigma"], allow_approximate=True):
        if r.artifact is not None:
            p = out / f"{r.analytic}{r.artifact.extension}"
            p.write_text(r.artifact.text, encoding="utf-8")
            paths.append(p)
    assert len(paths) >= 12
    return paths


def _python(end: str) -> str:
    if end == "2.x":
        return sys.executable
    if not OLD_PYTHON.exists():
        msg = f"{OLD_PYTHON} is missing: run scripts/dev setup"
        skip_unless_ci(msg)
    return str(OLD_PYTHON)


def _check(python: str, paths: list[Path]) -> dict[str, Any]:
    proc = subprocess.run(
        [python, str(SCRIPT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.parametrize(("end", "prefix"), [("2.x", "2."), ("1.5.x", "1.5.")])
def test_emitted_sigma_loads_and_converts(end: str, prefix: str, rules: list[Path]) -> None:
    result = _check(_python(end), rules)
    assert result["pysigma"].startswith(prefix), result["pysigma"]
    bad = {name: f["problems"] for name, f in result["files"].items() if f["problems"]}
    assert not bad, json.dumps(bad, indent=1)
    # pySigma 1.5 parses the extended `not` condition of absences (since pySigma 1.1), but
    # pysigma-backend-sqlite 1.2.4 has no conversion for it: only absences may stay unconverted
    unconverted = {
        name: f["unconverted"] for name, f in result["files"].items() if f["unconverted"]
    }
    if end == "1.5.x":
        assert set(unconverted) == set(ABSENCES), unconverted
        assert all("temporal_extended" in m for ms in unconverted.values() for m in ms)
    else:
        assert not unconverted, unconverted
    assert all(f["queries"] >= 1 for n, f in result["files"].items() if n not in unconverted)


@pytest.mark.parametrize("end", ["2.x", "1.5.x"])
def test_the_check_rejects_a_broken_rule(end: str, rules: list[Path], tmp_path: Path) -> None:
    """The check can fail: a correlation of an unknown type is reported by either pySigma."""
    text = next(p for p in rules if "correlation:" in p.read_text()).read_text()
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("type: ", "type: no_such_", 1), encoding="utf-8")
    result = _check(_python(end), [broken])
    assert result["files"]["broken.yml"]["problems"]


def test_the_runtime_requirement_admits_both_ends() -> None:
    """siemc's own requirement on pySigma (export uses its object model) must not exclude the
    1.x that sigma-cli 3.1 and the released backends pin, nor 2.x."""
    import tomllib

    from packaging.requirements import Requirement

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (req,) = [
        Requirement(r) for r in meta["project"]["dependencies"] if r.lower().startswith("pysigma")
    ]
    for version in ("1.5.1", "1.9.0", "2.0.1", "2.3.0"):
        assert req.specifier.contains(version), (str(req), version)
    assert not req.specifier.contains("1.4.0")
