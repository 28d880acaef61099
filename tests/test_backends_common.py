"""Checks every backend must pass: exhaustive SUPPORT tables, published matrix, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from backends import TARGETS, get_backend
from backends.base import NODE_TYPES
from compiler.cli import main
from compiler.discover import load_catalog

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("target", list(TARGETS))
def test_support_table_is_exhaustive(target: str) -> None:
    backend = get_backend(target)
    missing = [t.__name__ for t in NODE_TYPES if t not in backend.SUPPORT]
    assert not missing, f"{target} does not account for: {missing}"
    for t, sup in backend.SUPPORT.items():
        assert t in NODE_TYPES, f"{target}: {t.__name__} is not an IR node type"
        assert sup.level in ("exact", "approximate", "unsupported", "not_implemented")
        assert len(sup.how.strip()) > 10, f"{target}: explain how/why for {t.__name__}"


def test_published_matrix_is_current() -> None:
    from backends.matrix import markdown

    published = (ROOT / "docs" / "targets.md").read_text()
    assert published == markdown(), "regenerate: siemc fidelity > docs/targets.md"


def test_compile_output_is_deterministic_and_complete(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["compile", str(ROOT / "analytics"), "--target", "all", "--allow-approximate"]
    a, b = tmp_path / "a", tmp_path / "b"
    r1 = runner.invoke(main, [*args, "--out", str(a)])
    r2 = runner.invoke(main, [*args, "--out", str(b)])
    # exit 1: some pairs are refused (EQL has no aggregation), each with its .err
    assert r1.exit_code == 1, r1.output
    assert r2.exit_code == 1, r2.output
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    ids = {x.analytic.id for x in load_catalog([ROOT / "analytics"]).loaded}
    for target in TARGETS:
        produced = {p.stem for p in (a / target).iterdir()}
        assert produced == ids, f"{target}: every analytic has an artifact or an .err"
    for err in a.rglob("*.err"):
        text = err.read_text()
        target = err.parent.name
        assert "error[E2" in text and target in text, err
        assert "help:" in text, err


def test_failed_compile_leaves_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    bad = tmp_path / "bad.yml"
    bad.write_text("id: X\n")
    res = CliRunner().invoke(main, ["compile", str(bad), "--out", str(out)])
    assert res.exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
