"""Helpers the export tests share: the catalog, a request, and the vendor schemas folder."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.discover import load_catalog
from compiler.export.common import Request
from tests.ci_support import skip_unless_ci

ROOT = Path(__file__).resolve().parent.parent


def _find_schemas() -> Path:
    """``../shared/reference/vendor-schemas`` beside the repository, or beside the nearest
    ancestor that has one (a git worktree sits deeper than the checkout)."""
    if os.environ.get("SIEMC_VENDOR_SCHEMAS"):
        return Path(os.environ["SIEMC_VENDOR_SCHEMAS"])
    for d in ROOT.parents:
        cand = d / "shared" / "reference" / "vendor-schemas"
        if cand.is_dir():
            return cand
    return ROOT.parent / "shared" / "reference" / "vendor-schemas"


VENDOR_SCHEMAS = _find_schemas()
CATALOG = tuple(sorted(load_catalog([ROOT / "analytics"]).loaded, key=lambda x: x.analytic.id))


def request(allow_approximate: bool = True, every_ms: int | None = None) -> Request:
    return Request(CATALOG, allow_approximate, every_ms)


def vendor_schemas() -> Path:
    """The vendor-schemas folder: skipped with a message when absent, a failure under CI=true."""
    if not VENDOR_SCHEMAS.is_dir():
        msg = f"vendor schemas not found at {VENDOR_SCHEMAS} (shared/reference/vendor-schemas)"
        skip_unless_ci(msg)
    return VENDOR_SCHEMAS
