"""Helpers the differential tests (tests/test_diff_<target>.py) share."""

from __future__ import annotations

import os
from collections.abc import Iterable

import pytest

from backends.base import Artifact, overall_direction
from compiler import canonical, ir
from compiler.engines import run_spl
from compiler.evaluator import Event, evaluate
from compiler.lower import Loaded
from compiler.testing import MissingData, fixture_events
from tests.ci_support import skip_unless_ci


def events_or_skip(loaded: Loaded, fx: ir.Fixture) -> list[Event]:
    """The fixture's events; real data that is absent skips locally and fails under CI=true."""
    try:
        return fixture_events(loaded, fx)
    except MissingData as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"real data missing: {exc}")


def spl_engine_or_skip() -> None:
    """The SPL interpreter, which ships with the source tests: absent, a local run skips and
    CI=true fails."""
    try:
        run_spl.interpreter()
    except run_spl.EngineUnavailable as exc:
        skip_unless_ci(str(exc))


def evaluator_alerts(
    loaded: Loaded, fx: ir.Fixture, events: list[Event] | None = None
) -> list[canonical.CanonicalAlert]:
    """The reference evaluator's alerts for a fixture, in canonical form."""
    evs = events_or_skip(loaded, fx) if events is None else events
    return [canonical.from_evaluator(a) for a in evaluate(loaded.analytic, evs, fx.now_ms)]


def find_fixture(catalog: Iterable[Loaded], aid: str, name: str) -> tuple[Loaded, ir.Fixture]:
    for lo in catalog:
        if lo.analytic.id == aid:
            for fx in lo.fixtures:
                if fx.name == name:
                    return lo, fx
    raise KeyError((aid, name))


def assert_direction(artifact: Artifact, d: canonical.Diff, where: str) -> None:
    """An engine's difference from the evaluator agrees with the artifact's declared direction:
    exact differs in nothing, a superset misses no evaluator alert, a subset adds none (mixed
    may do both). Engine caveats (a documented difference of the engine itself from the SIEM)
    are the caller's business: call this only for differences the translation owns."""
    direction = overall_direction(artifact.approximations)
    if direction is None:
        assert d.equal, f"{where}: exact, but the engine and the evaluator differ\n{d.render()}"
    elif direction == "superset":
        assert not canonical.uncovered(d.missing, d.extra), (
            f"{where}: a declared superset misses alerts\n{d.render()}"
        )
    elif direction == "subset":
        assert not d.extra, f"{where}: a declared subset adds alerts\n{d.render()}"
