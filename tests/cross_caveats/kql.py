"""Engine caveats of the kql engine on other targets' differential catalogs."""

from __future__ import annotations

from tests.cross_caveats import Caveat

# (analytic id, fixture name) -> the caveat
CAVEATS: dict[tuple[str, str], Caveat] = {}
