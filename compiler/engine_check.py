"""``siemc test --engines``: run each compiled query in its target's engine over the fixtures
and compare the alerts with the reference evaluator's, in canonical form."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from compiler import ir
from compiler.build import compile_pair
from compiler.canonical import CanonicalAlert, diff, from_evaluator
from compiler.engines import EngineUnavailable, NotExecutable, load_engine
from compiler.evaluator import evaluate
from compiler.lower import Loaded
from compiler.testing import FixtureInputError, MissingData, fixture_events

# equal: same alerts; approximate: differs, and the artifact declares approximations (listed);
# failed: differs although the translation claims to be exact; not_executable: the engine
# cannot run this query faithfully; not_compiled: the target cannot express the analytic.
EngineStatus = Literal["equal", "approximate", "failed", "not_executable", "not_compiled"]


@dataclass
class EngineResult:
    analytic: str
    fixture: ir.Fixture
    target: str
    status: EngineStatus
    message: str = ""
    detail: str = ""
    query: str = ""
    seconds: float = 0.0
    expected: list[CanonicalAlert] = field(default_factory=list)
    actual: list[CanonicalAlert] = field(default_factory=list)


def check_fixture(
    loaded: Loaded, fx: ir.Fixture, targets: list[str], profile: str | None = None
) -> list[EngineResult]:
    """Compare every target's engine with the evaluator on one fixture. Raises
    :class:`EngineUnavailable` (naming what to install), :class:`MissingData` and
    :class:`FixtureInputError` (the fixture's data cannot be read)."""
    events = fixture_events(loaded, fx)
    expected = [from_evaluator(a) for a in evaluate(loaded.analytic, events, fx.now_ms)]
    out = []
    for target in targets:
        t0 = time.perf_counter()
        res = EngineResult(loaded.analytic.id, fx, target, "equal")
        pair = compile_pair(loaded, target, profile=profile, allow_approximate=True)
        if pair.artifact is None:
            res.status = "not_compiled"
            res.message = pair.diagnostics[0].message if pair.diagnostics else ""
            out.append(res)
            continue
        art = pair.artifact
        res.query = art.query
        engine = load_engine(target)
        try:
            actual = engine.run(loaded, fx, art)
        except NotExecutable as exc:
            res.status, res.message = "not_executable", str(exc)
            out.append(res)
            continue
        res.expected, res.actual = expected, actual
        d = diff(expected, actual)
        if not d.equal:
            declared = "; ".join(f"{a.construct}: {a.detail}" for a in art.approximations)
            res.status = "approximate" if art.approximations else "failed"
            res.message = f"{len(d.missing)} evaluator alert(s) missing, {len(d.extra)} extra" + (
                " (the target declared approximations)" if art.approximations else ""
            )
            res.detail = d.render() + (f"\n  declared: {declared}" if declared else "")
        else:
            res.message = f"{len(actual)} alert(s), equal"
        res.seconds = time.perf_counter() - t0
        out.append(res)
    return out


__all__ = [
    "EngineResult",
    "EngineUnavailable",
    "FixtureInputError",
    "MissingData",
    "check_fixture",
]
