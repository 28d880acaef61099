"""Engine caveats of the cross-target differential test (tests/test_diff_cross.py), one module
per target: a documented difference of that target's *engine* from the SIEM it stands for,
with the exact alerts it changes. A translation defect is never listed here: it is fixed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caveat:
    why: str
    missing: tuple[str, ...] = ()  # CanonicalAlert.describe() of evaluator-only alerts
    extra: tuple[str, ...] = ()  # of engine-only alerts
