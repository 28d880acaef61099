"""The bundled analytics and their tests need nothing outside the repository: their real-data
fixtures ship in analytics/fixtures/otrf with their provenance and licence."""

from __future__ import annotations

from pathlib import Path

from compiler.discover import load_catalog
from compiler.testing import resolve_input

ROOT = Path(__file__).resolve().parent.parent
OTRF = ROOT / "analytics" / "fixtures" / "otrf"
CATALOG = load_catalog([ROOT / "analytics"])


def test_every_fixture_input_lies_inside_the_repository() -> None:
    inputs = [(lo, i) for lo in CATALOG.loaded for fx in lo.fixtures for i in fx.inputs]
    assert inputs
    for lo, inp in inputs:
        assert not inp.file.startswith("$"), f"{lo.analytic.id}: {inp.file}"
        path = resolve_input(inp.file, lo.analytic.path).resolve()
        assert path.is_relative_to(ROOT), path


def test_the_otrf_extracts_carry_their_licence_and_provenance() -> None:
    licence = (OTRF / "LICENSE").read_text()
    assert licence.startswith("MIT License\n")
    assert "Copyright (c) 2021 Open Threat Research Forge" in licence
    readme = (OTRF / "README.md").read_text()
    assert "d9d40ef123d2c87d5d3df28c96bcab4f0faccc87" in readme
    data = sorted(p.name for p in OTRF.iterdir() if p.name not in ("LICENSE", "README.md"))
    assert data
    for name in data:
        listed = name in readme or (
            name.startswith("UTICA-ONE-DRIVE_") and "UTICA-ONE-DRIVE_{conn,dns,ssl,files}" in readme
        )
        assert listed, f"{name} is not described in {OTRF / 'README.md'}"


def test_every_bundled_otrf_file_is_used() -> None:
    """Only data the analytics or the input tests read is shipped."""
    used = {Path(i.file).name for lo in CATALOG.loaded for fx in lo.fixtures for i in fx.inputs}
    tests = (ROOT / "tests" / "test_inputs.py").read_text()
    for p in OTRF.iterdir():
        if p.name not in ("LICENSE", "README.md"):
            assert p.name in used or f'"{p.name}"' in tests, p.name
