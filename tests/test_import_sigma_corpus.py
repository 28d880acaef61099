"""The SigmaHQ corpus (../shared/data/sigmahq, DRL 1.1) imports at >= 95%, every imported
analytic passes `siemc check`, and every refusal has a reason. A deterministic quarter of the
corpus keeps the test fast; bench/import_sigma.py imports all of it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from compiler.importers.sigma import Result, import_sigma, rule_files
from compiler.lower import load_text
from tests.ci_support import skip_unless_ci

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent.parent / "shared" / "data" / "sigmahq"
if not CORPUS.is_dir():
    CORPUS = ROOT.parent / "shared" / "data" / "sigmahq"
STRIDE = 4  # every 4th rule file, sorted by path


@pytest.fixture(scope="module")
def result() -> Result:
    if not CORPUS.is_dir():
        skip_unless_ci(f"the SigmaHQ corpus is missing: {CORPUS}")
    files = rule_files([CORPUS])[::STRIDE]
    assert len(files) > 800
    return import_sigma(files)


def test_share_imported(result: Result) -> None:
    total = len(result.imported) + len(result.refused) + len(result.invalid)
    share = len(result.imported) / total
    reasons = Counter(r.construct for r in result.refused)
    print(f"imported {len(result.imported)}/{total} = {share:.1%}; refused: {dict(reasons)}")
    assert share >= 0.95, reasons
    # every refusal says what and where, in the rule's own file
    for r in result.refused:
        d = r.diagnostic
        assert r.construct and d.code == "E500" and d.line >= 1 and d.col >= 1
        assert Path(d.path).is_file() and d.message.startswith("cannot import: ")


def test_every_imported_analytic_passes_check(result: Result, tmp_path: Path) -> None:
    for rel, text in result.lookups.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    ids = set()
    for imp in result.imported:
        a = load_text(str(tmp_path / imp.file), imp.text, tmp_path).analytic
        ids.add(a.id)
        assert a.meta.author, imp.file  # the DRL requires the author be kept
    assert len(ids) == len(result.imported)
