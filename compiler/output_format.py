"""Machine-readable results: ``--format json`` documents and ``--format sarif`` logs for the
commands that report problems (check, test, compile, export, fidelity, run).

Every document is printed with sorted keys and a fixed indentation, and every list is in a fixed
order, so that the same inputs give byte-identical output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from compiler.build import PairResult, by_file_name
from compiler.canonical import CanonicalAlert
from compiler.diagnostics import CODES, Diagnostic, sort_key
from compiler.engine_check import EngineResult
from compiler.ir import Fixture
from compiler.testing import FixtureResult

F = TypeVar("F", bound=Callable[..., Any])

TEXT, JSON, SARIF = "text", "json", "sarif"

# Codes of the results `siemc test` reports, so that failures annotate the fixture in SARIF
# like any other diagnostic (docs/diagnostics.md lists them).
E_FIXTURE_FAILED = "E620"
E_FIXTURE_ERROR = "E621"
E_ENGINE_FAILED = "E622"
E_ENGINE_ERROR = "E623"


def format_option(*choices: str) -> Callable[[F], F]:
    """``--format`` with the output formats that make sense for one command."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(choices),
        default=TEXT,
        show_default=True,
        help="output: text for people"
        + (", json (one document)" if JSON in choices else "")
        + (", sarif (SARIF 2.1.0 diagnostics for code scanning)" if SARIF in choices else ""),
    )


def dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def diagnostic(d: Diagnostic) -> dict[str, Any]:
    return {
        "code": d.code,
        "description": CODES.get(d.code, ""),
        "severity": d.severity,
        "message": d.message,
        "path": d.path,
        "line": d.line,
        "col": d.col,
        "length": d.length,
        "help": d.help,
    }


def diagnostics(ds: Sequence[Diagnostic]) -> list[dict[str, Any]]:
    return [diagnostic(d) for d in sorted(set(ds), key=lambda d: (*sort_key(d), d.message))]


def pair(r: PairResult, *, query: bool) -> dict[str, Any]:
    """One (analytic, target) pair: its fidelity, profile, approximations (with their direction
    and position) or the diagnostics of its refusal, and with ``query`` the emitted text."""
    doc: dict[str, Any] = {
        "analytic": r.analytic,
        "target": r.target,
        "status": r.status,
        "fidelity": (r.direction or "exact") if r.artifact is not None else "refused",
    }
    if r.artifact is not None:
        doc["profile"] = r.artifact.profile
        doc["approximations"] = [
            {
                "construct": a.construct,
                "detail": a.detail,
                "direction": a.direction,
                "at": a.span.at(),
            }
            for a in r.artifact.approximations
        ]
        doc["notes"] = list(r.artifact.notes)
        if query:
            doc["query"] = r.artifact.query
    else:
        doc["diagnostics"] = diagnostics(by_file_name(r.diagnostics))
    return doc


def _canonical(a: CanonicalAlert) -> str:
    return a.describe()


def fixture_result(
    r: FixtureResult, alerts: Callable[[FixtureResult], list[Any]]
) -> dict[str, Any]:
    fx = r.fixture
    return {
        "analytic": r.analytic,
        "fixture": fx.name,
        "kind": fx.kind,
        "data": fx.data,
        "at": fx.span.at(),
        "status": r.status,
        "message": r.message,
        "detail": r.detail,
        "alerts": alerts(r),
    }


def engine_result(r: EngineResult) -> dict[str, Any]:
    return {
        "analytic": r.analytic,
        "fixture": r.fixture.name,
        "target": r.target,
        "status": r.status,
        "message": r.message,
        "detail": r.detail,
        "expected": sorted(_canonical(a) for a in r.expected),
        "actual": sorted(_canonical(a) for a in r.actual),
    }


def _fixture_diag(fx: Fixture, code: str, message: str, detail: str) -> Diagnostic:
    s = fx.span
    return Diagnostic(code, message, s.path, s.line, s.col, 1, detail or None)


def failure_diagnostics(
    results: Sequence[FixtureResult], engine_results: Sequence[EngineResult]
) -> list[Diagnostic]:
    """The failures of a ``siemc test`` run as diagnostics at their fixture (for SARIF)."""
    out = []
    for r in results:
        if r.status in ("failed", "error"):
            code = E_FIXTURE_FAILED if r.status == "failed" else E_FIXTURE_ERROR
            what = f"fixture '{r.fixture.name}' of {r.analytic}: {r.message}"
            out.append(_fixture_diag(r.fixture, code, what, r.detail))
    for e in engine_results:
        if e.status in ("failed", "error"):
            code = E_ENGINE_FAILED if e.status == "failed" else E_ENGINE_ERROR
            what = f"{e.target} on fixture '{e.fixture.name}' of {e.analytic}: {e.message}"
            out.append(_fixture_diag(e.fixture, code, what, e.detail))
    return out
