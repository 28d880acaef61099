"""Differential test of the DuckDB backend: the compiled SQL, run by DuckDB itself
(``compiler.engines.run_duckdb``), must raise the evaluator's alerts, in canonical form.

Every (analytic, fixture) pair of the bundled catalog and of every catalog under
``tests/differential/*/`` whose analytic compiles to DuckDB is compared. A pair may differ only
as recorded in :data:`EXPECTED` (a declared approximation, quoted from the artifact). Anything
else is a failure, in both directions: a listed difference that no longer happens fails too.
Analytics that do not compile must be refused with E200/E201 (never an approximation: the
backend declares none today, so every compiled pair is exact). Deliberately wrong backends
(monkeypatched below) must differ on some fixture: proof that the fixtures pin each rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from backends.base import Artifact
from backends.duckdb import DuckdbBackend, detections, sliding
from backends.duckdb import absence as absence_module
from backends.duckdb import backend as duck_backend
from backends.duckdb import exprs as duck_exprs
from backends.duckdb import predicates as duck_predicates
from backends.duckdb.sql import col
from compiler import canonical, ir
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_duckdb
from compiler.lower import Loaded
from tests.differential_support import evaluator_alerts, events_or_skip, find_fixture

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = [
    ROOT / "analytics",
    *sorted(p for p in (ROOT / "tests" / "differential").iterdir() if p.is_dir()),
]


@dataclass(frozen=True)
class Expected:
    source: str  # text quoted from the artifact's declared approximations
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


EXPECTED: dict[tuple[str, str], Expected] = {}


@cache
def _catalog() -> tuple[Loaded, ...]:
    out: list[Loaded] = []
    for d in CATALOGS:
        out += load_catalog([d]).loaded
    return tuple(out)


def _compiled() -> Iterator[tuple[Loaded, Artifact]]:
    for loaded in _catalog():
        res = compile_pair(loaded, "duckdb", profile=None, allow_approximate=True)
        if res.artifact is not None:
            yield loaded, res.artifact


def _pairs() -> list[tuple[str, str]]:
    return [(lo.analytic.id, fx.name) for lo, _ in _compiled() for fx in lo.fixtures]


def _artifact(loaded: Loaded) -> Artifact:
    art = compile_pair(loaded, "duckdb", profile=None, allow_approximate=True).artifact
    assert art is not None
    return art


def _compare(loaded: Loaded, fx: ir.Fixture, artifact: Artifact) -> canonical.Diff:
    events_or_skip(loaded, fx)
    return canonical.diff(evaluator_alerts(loaded, fx), run_duckdb.run(loaded, fx, artifact))


@pytest.mark.parametrize(("aid", "fixture"), _pairs(), ids=lambda v: str(v)[:60])
def test_engine_alerts_equal_the_evaluator(aid: str, fixture: str) -> None:
    loaded, fx = find_fixture(_catalog(), aid, fixture)
    artifact = _artifact(loaded)
    d = _compare(loaded, fx, artifact)
    exp = EXPECTED.get((aid, fixture))
    if exp is None:
        assert d.equal, f"{aid} / {fixture}: engine and evaluator differ\n{d.render()}"
        return
    got = (tuple(a.describe() for a in d.missing), tuple(a.describe() for a in d.extra))
    assert got == (exp.missing, exp.extra), f"{aid} / {fixture}\n{d.render()}"
    declared = [f"{a.construct}: {a.detail}" for a in artifact.approximations]
    assert any(exp.source in text for text in declared), (exp.source, declared)


def test_tables_name_existing_pairs() -> None:
    assert set(EXPECTED) <= set(_pairs())


def test_every_analytic_compiles_exactly_or_is_refused() -> None:
    """No silent approximation: a pair either compiles exactly or is refused with E200/E201."""
    for lo in _catalog():
        res = compile_pair(lo, "duckdb", profile=None, allow_approximate=True)
        if res.artifact is not None:
            assert res.artifact.approximations == (), lo.analytic.id
        else:
            assert {d.code for d in res.diagnostics} <= {"E200", "E201"}, lo.analytic.id


def test_coverage_numbers() -> None:
    """The size of the comparison, so that a change in coverage is visible."""
    pairs = _pairs()
    compiled = {aid for aid, _ in pairs}
    # the bundled join + tumbling ratio aggregate, the sliding distinct count, the absence,
    # registered_domain(), the first-seen, rarity and deviation baselines
    assert {"SIEMC-0003", "SIEMC-0007", "SIEMC-0009"} <= compiled
    assert {"SIEMC-0008", "SIEMC-0012", "AN1511", "SIEMC-0010", "SIEMC-0011"} <= compiled
    assert {"SIEMC-0015", "D-SPL-F1", "D-SPL-R63B", "D-SPL-D63A"} <= compiled
    # at least what this backend compiled when written (catalogs only grow)
    assert len(compiled) >= 118 and len(pairs) >= 158


# ------------------------------------------------------------------ deliberately wrong backends
def _differs(aid: str) -> bool:
    """Whether some fixture of ``aid`` no longer equals the evaluator."""
    lo = next(x for x in _catalog() if x.analytic.id == aid)
    art = DuckdbBackend().compile(lo.analytic)
    return any(not _compare(lo, fx, art).equal for fx in lo.fixtures)


def test_negation_that_fails_on_missing_fields_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """`not` must hold on a missing field; SQL's three-valued NOT would not."""
    assert not _differs("D-ESQL-01")
    render = duck_predicates.PredicateRenderer.render

    def three_valued(self: duck_predicates.PredicateRenderer, p: ir.Predicate) -> str:
        if isinstance(p, ir.Not) and isinstance(p.item, ir.Eq):
            f = col(p.item.field)
            return f"({f} IS NOT NULL AND NOT {render(self, p.item)})"
        return render(self, p)

    monkeypatch.setattr(duck_predicates.PredicateRenderer, "render", three_valued)
    assert _differs("D-ESQL-01")


def test_sliding_windows_that_are_not_emptied_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without consumption, a burst of N events over a threshold T alerts N - T + 1 times."""
    assert not _differs("D-SPL-K04")
    aggregate = sliding.aggregate

    def no_consumption(d: ir.Aggregate, ctx: object, bl: object) -> list[tuple[str, str]]:
        out = aggregate(d, ctx, bl)  # type: ignore[arg-type]
        return [(n, sql.replace("greatest(c._s, f._lo)", "f._lo")) for n, sql in out]

    monkeypatch.setattr(sliding, "aggregate", no_consumption)
    assert _differs("D-SPL-K04")


def test_undecided_absences_that_alert_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """An absence whose window the observation does not cover must not alert."""
    assert not _differs("SIEMC-0009")
    render = absence_module.absence

    def eager(d: ir.Absence, analytic: ir.Analytic, ctx: object) -> str:
        sql = render(d, analytic, ctx)  # type: ignore[arg-type]
        return sql.replace("coalesce(getvariable('siemc_now')", "true OR coalesce(NULL")

    monkeypatch.setattr(duck_backend, "absence", eager)
    assert _differs("SIEMC-0009")


def test_windows_aligned_to_the_first_event_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _differs("D-ESQL-04")
    aggregate = detections.aggregate

    def shifted(d: ir.Aggregate, ctx: object, bl: object) -> list[tuple[str, str]]:
        out = aggregate(d, ctx, bl)  # type: ignore[arg-type]
        size = d.window.size_ms
        old = f"_ts - (_ts % {size} + {size}) % {size}"
        return [(n, sql.replace(old, f"_ts - ((_ts - 1000) % {size})")) for n, sql in out]

    monkeypatch.setattr(detections, "aggregate", shifted)
    assert _differs("D-ESQL-04")


def _differs_when(aid: str, old: str, new: str) -> bool:
    """Whether some fixture of ``aid`` differs once ``old`` (which must occur) is replaced by
    ``new`` in the compiled query."""
    lo = next(x for x in _catalog() if x.analytic.id == aid)
    art = DuckdbBackend().compile(lo.analytic)
    assert old in art.query, (aid, old)
    bad = dataclasses.replace(art, query=art.query.replace(old, new))
    return any(not _compare(lo, fx, bad).equal for fx in lo.fixtures)


def test_history_that_includes_the_window_start_is_caught() -> None:
    """History is [start - lookback, start): an occurrence at the start is not seen."""
    assert not _differs("D-DDB-03") and not _differs("D-DDB-04")
    assert _differs_when("D-DDB-03", "h._ts < a._window", "h._ts <= a._window")
    assert _differs_when("D-DDB-04", "h._ts < c._ts", "h._ts <= c._ts")
    assert _differs_when("D-DDB-07", "c._ts > h._ts", "c._ts >= h._ts")


def test_history_open_at_the_lookback_edge_is_caught() -> None:
    """An occurrence exactly lookback before the start is seen (first_seen and rarity)."""
    assert _differs_when("D-DDB-03", "h._ts >= a._window -", "h._ts > a._window -")
    assert _differs_when("D-DDB-04", "h._ts >= c._ts -", "h._ts > c._ts -")
    assert _differs_when("D-SPL-F1", "h._ts >= c._ts -", "h._ts > c._ts -")


def test_days_not_aligned_to_utc_midnight_are_caught() -> None:
    assert not _differs("D-DDB-05")
    assert _differs_when("D-DDB-05", "(_ts - (_ts % 86400000", "(_ts - ((_ts + 1) % 86400000")


def test_multi_valued_candidates_read_as_missing_are_caught() -> None:
    """A multi-valued candidate was seen when any of its values was."""
    assert not _differs("D-DDB-07")
    keys = 'siemc_keys("destination.domain")'
    assert _differs_when(
        "D-DDB-07",
        f'unnest({keys}) AS "ckey:',
        f'unnest(CASE WHEN len({keys}) = 1 THEN {keys} END) AS "ckey:',
    )


def test_deviation_over_the_current_window_is_caught() -> None:
    """Past windows end at or before the current start: the current value is not history."""
    assert not _differs("D-DDB-06")
    assert _differs_when("D-DDB-06", "h._window + 600000 <= a._window", "h._window <= a._window")


def test_registered_domain_as_the_last_two_labels_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The common SQL shortcut for a registered domain differs from the Public Suffix List."""
    assert not _differs("D-DDB-01")
    call = duck_exprs.ExprRenderer.call

    def two_labels(self: duck_exprs.ExprRenderer, e: ir.Call) -> str:
        if e.func != "registered_domain":
            return call(self, e)
        v = self.render(e.args[0])
        return (
            f"CASE WHEN json_type({v}) = 'VARCHAR' THEN to_json(nullif(regexp_extract("
            f"lower({v} ->> '$'), '[^.]+[.][^.]+$'), '')) ELSE {v} END"
        )

    monkeypatch.setattr(duck_exprs.ExprRenderer, "call", two_labels)
    assert _differs("D-DDB-01")
