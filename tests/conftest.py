from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.ci_support import skip_unless_ci

# CI runs the property tests on the same examples every time (a red CI must mean a change broke
# something, not that the search wandered somewhere new); developers' runs keep exploring and
# keep their failures in .hypothesis/ to replay.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent


def otrf_dir() -> Path:
    """The OTRF extracts: those bundled with the analytics, unless SIEMC_OTRF_DIR names others."""
    return Path(os.environ.get("SIEMC_OTRF_DIR", ROOT / "analytics" / "fixtures" / "otrf"))


@pytest.fixture
def otrf() -> Path:
    d = otrf_dir()
    if not d.is_dir():
        skip_unless_ci(f"OTRF data folder not found: {d}")
    return d
