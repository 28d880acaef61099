"""``siemc test --engines``: run each compiled query in its target's engine over the fixtures
and compare the alerts with the reference evaluator's, in canonical form."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from compiler import ir
from compiler.build import compile_pair
from compiler.canonical import CanonicalAlert, diff, from_evaluator, uncovered
from compiler.engines import EngineUnavailable, NotExecutable, load_engine
from compiler.evaluator import evaluate
from compiler.lower import Loaded
from compiler.testing import FixtureInputError, MissingData, fixture_events

# equal: same alerts; approximate: differs, and the artifact declares approximations (listed);
# failed: differs although the translation claims to be exact; not_executable: the engine
# cannot run this query faithfully; not_compiled: the target cannot express the analytic;
# error: compiling or running the case raised (a defect of siemc, its adapter or the engine).
EngineStatus = Literal["equal", "approximate", "failed", "not_executable", "not_compiled", "error"]


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
    loaded: Loaded,
    fx: ir.Fixture,
    targets: list[str],
    profile: str | None = None,
    options: Mapping[str, str] | None = None,
) -> list[EngineResult]:
    """Compare every target's engine with the evaluator on one fixture. Raises
    :class:`EngineUnavailable` (naming what to install), :class:`MissingData` and
    :class:`FixtureInputError` (the fixture's data cannot be read, or the evaluator rejects it:
    the evaluator's own run reports that). Any other exception while one target's case is
    compiled or run becomes that case's ``error`` result: the other cases still run."""
    # Every event, history included, on both sides: the engine cannot say which events an
    # alert rests on, so history alerts are compared like any other (which is stricter than
    # dropping them on both sides; only the fixture's expectations leave them out).
    events = fixture_events(loaded, fx)
    try:
        alerts = evaluate(loaded.analytic, events, fx.now_ms)
    except ValueError as exc:
        raise FixtureInputError(str(exc)) from None
    expected = [from_evaluator(a) for a in alerts]
    out = []
    for target in targets:
        res = EngineResult(loaded.analytic.id, fx, target, "equal")
        t0 = time.perf_counter()
        try:
            _check_target(res, loaded, fx, expected, profile, options)
        except EngineUnavailable:
            raise
        except Exception as exc:
            res.status, res.message = "error", describe_exception(exc)
        res.seconds = time.perf_counter() - t0
        out.append(res)
    return out


def describe_exception(exc: BaseException) -> str:
    """The exception's type and message on one line (engines' messages span lines)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_target(
    res: EngineResult,
    loaded: Loaded,
    fx: ir.Fixture,
    expected: list[CanonicalAlert],
    profile: str | None,
    options: Mapping[str, str] | None = None,
) -> None:
    pair = compile_pair(
        loaded, res.target, profile=profile, allow_approximate=True, options=options
    )
    if pair.artifact is None:
        res.status = "not_compiled"
        res.message = pair.diagnostics[0].message if pair.diagnostics else ""
        return
    art = pair.artifact
    res.query = art.query
    engine = load_engine(res.target)
    try:
        # the engine runs the file as written, header included: a comment that could end early
        # (a line break in a title) must show up here, not only in the file
        actual = engine.run(loaded, fx, dataclasses.replace(art, query=art.text))
    except NotExecutable as exc:
        res.status, res.message = "not_executable", str(exc)
        return
    res.expected, res.actual = expected, actual
    d = diff(expected, actual)
    if d.equal:
        res.message = f"{len(actual)} alert(s), equal"
        return
    declared = "; ".join(f"{a.construct} ({a.direction}): {a.detail}" for a in art.approximations)
    direction = pair.direction
    res.detail = d.render() + (f"\n  declared: {declared}" if declared else "")
    counts = f"{len(d.missing)} evaluator alert(s) missing, {len(d.extra)} extra"
    if direction is None:
        res.status, res.message = "failed", counts
    elif direction == "superset" and uncovered(d.missing, actual):
        # a declared superset promises that nothing is missed: each evaluator alert is an
        # engine alert, or inside one that groups by fewer of its keys
        res.status, res.message = "failed", f"{counts}, although declared a superset"
    elif direction == "subset" and d.extra:
        res.status, res.message = "failed", f"{counts}, although declared a subset"
    else:
        res.status = "approximate"
        res.message = f"{counts} (the target declared a {direction} approximation)"


__all__ = [
    "EngineResult",
    "EngineUnavailable",
    "FixtureInputError",
    "MissingData",
    "check_fixture",
    "describe_exception",
]
