from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def otrf_dir() -> Path:
    """The OTRF extracts: those bundled with the analytics, unless SIEMC_OTRF_DIR names others."""
    return Path(os.environ.get("SIEMC_OTRF_DIR", ROOT / "analytics" / "fixtures" / "otrf"))


@pytest.fixture
def otrf() -> Path:
    d = otrf_dir()
    if not d.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"OTRF data folder missing under CI: {d}")
        pytest.skip(f"OTRF data folder not found: {d}")
    return d
