"""Golden files: every analytic x target output (or its .err), reviewed on every change.

Regenerate after an intended change with ``pytest tests/test_golden.py --force-regen``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backends import TARGETS
from compiler.build import compile_pair, render_err
from compiler.discover import load_catalog
from compiler.lower import Loaded

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def _catalog() -> list[Loaded]:
    # Relative paths, so that positions in .err files and artifact headers do not depend on
    # where the checkout lives.
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return load_catalog(["analytics"]).loaded
    finally:
        os.chdir(cwd)


CATALOG = _catalog()
CASES = [(x, t) for x in CATALOG for t in TARGETS]


@pytest.mark.parametrize(
    ("loaded", "target"), CASES, ids=[f"{t}:{x.analytic.id}" for x, t in CASES]
)
def test_golden(loaded: Loaded, target: str, file_regression) -> None:  # type: ignore[no-untyped-def]
    r = compile_pair(loaded, target, profile=None, allow_approximate=True)
    if r.artifact is not None:
        text, ext = r.artifact.text, r.artifact.extension
        stale = GOLDEN / target / f"{loaded.analytic.id}.err"
    else:
        text, ext = render_err(r), ".err"
        stale = None
    assert stale is None or not stale.exists(), f"remove the stale golden {stale}"
    file_regression.check(text, fullpath=GOLDEN / target / f"{loaded.analytic.id}{ext}")
