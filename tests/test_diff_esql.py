"""Differential test of the ES|QL backend: compiled queries, first checked by Elastic's ES|QL
analyzer (``tests/oracles/esql_oracle.py``), are executed by the ES|QL interpreter of the tests
(``tests/interpreters/esql_interp.py`` through ``compiler.engines.run_esql``) over the fixtures
and must raise the evaluator's alerts, in canonical form.

Every (analytic, fixture) pair of the bundled catalog and of ``tests/differential/esql`` whose
analytic compiles to ES|QL is compared. A pair may differ only as recorded in :data:`EXPECTED`,
each entry quoting the approximation the artifact declares (or naming a backend defect); a
recorded difference that no longer happens fails too.

Sliding windows whose condition only grows with more events are compiled as hopping buckets of
twice the size (a declared superset): every evaluator alert must lie inside an engine bucket of
its group, and every bucket must be epoch-aligned and twice the size long. Other sliding windows
are tumbling buckets (declared mixed): alert times are not compared (an evaluator window
``[first, last event]`` never equals a bucket), and every engine alert must be a whole,
epoch-aligned bucket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest

from backends.base import Artifact
from backends.elastic_esql import EsqlBackend, child_sequence, match
from backends.elastic_esql.aggregate import AggregateBuilder
from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.expr import Renderer
from compiler import canonical, ir
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_esql
from compiler.lower import Loaded
from compiler.testing import fixture_events, run_fixture
from tests.differential_support import evaluator_alerts, find_fixture
from tests.oracles.esql_oracle import ecs_types, lookups_of, validate

ROOT = Path(__file__).resolve().parent.parent
EXTRA_DIR = ROOT / "tests" / "differential" / "esql"
T0 = 1704067200000  # 2024-01-01T00:00:00Z, the differential fixtures' epoch
SLIDING = "sliding window aggregation"


@dataclass(frozen=True)
class Expected:
    """A recorded difference: ``missing`` (evaluator only) and ``extra`` (engine only) alerts,
    as ``CanonicalAlert.describe()`` strings, and where the difference comes from."""

    kind: Literal["approximation", "defect"]
    source: str  # approximation: the construct named in the artifact header; defect: what is wrong
    reason: str
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


_STRADDLE = (
    "a burst that straddles a bucket boundary is missed (artifact: 'evaluated over "
    "epoch-aligned tumbling buckets')"
)

EXPECTED: dict[tuple[str, str], Expected] = {
    (
        "D61-RD3",
        "a name whose registered domain is amazonaws.com, and one under s3.amazonaws.com",
    ): Expected(
        "approximation",
        "registered_domain() test",
        "the names under amazonaws.com are matched also below its PSL suffixes, a declared "
        "superset: bucket.s3.amazonaws.com (registered domain bucket.s3.amazonaws.com)",
        extra=(f"D61-RD3 {{(no key)}} [{T0 + 2000}..{T0 + 2000}]",),
    ),
    (
        "SIEMC-0010",
        "three Dropbox sessions from two finance hosts, the third exactly 10m after the first",
    ): Expected(
        "approximation",
        SLIDING,
        _STRADDLE + ": the third session opens the next 10-minute bucket",
        missing=(
            "SIEMC-0010 {destination.registered_domain='dropboxapi.com', "
            "labels.host_role='finance-workstation'} [1726135200000..1726135800000] "
            "{sessions=3.0, sources=2.0}",
        ),
    ),
    (
        "D-ESQL-08",
        "a passing value among several, a single value, and no passing value",
    ): Expected(
        "approximation",
        "'contains' match",
        "LIKE, RLIKE and CIDR_MATCH are null on a multi-valued column (artifact: 'is "
        "multi-valued in ECS', also for 'startswith' match, regular expression and CIDR "
        "match); a single value (w2, w6, w10), MV_MAX (w7) and the inlined lookup (w9: "
        "MV_CONTAINS instead of a LOOKUP JOIN on a multi-valued key) agree",
        missing=tuple(
            f"D-ESQL-08 {{(no key)}} [{T0 + s * 1000}..{T0 + s * 1000}]" for s in (1, 3, 4, 5)
        ),
    ),
    ("D-ESQL-09", "values of several events and lists, one event in two groups"): Expected(
        "approximation",
        "sum of a multi-valued field",
        "g2's process.args [4, 4, 8] is the doc values [4, 8] (artifact: 'a value repeated "
        "within one event counts once'; also avg and stdev); min, max, distinct and the counts "
        "agree",
        missing=(
            f"D-ESQL-09 {{related.user='alice'}} [{T0}..{T0 + 3600000}] {{events=3.0, high=8.0, "
            "kinds=4.0, low=1.0, mean=3.8, spread=2.6832815729997477, total=19.0, "
            "with_args=2.0}",
        ),
        extra=(
            f"D-ESQL-09 {{related.user='alice'}} [{T0}..{T0 + 3600000}] {{events=3.0, high=8.0, "
            "kinds=4.0, low=1.0, mean=3.75, spread=3.0956959368344514, total=15.0, "
            "with_args=2.0}",
        ),
    ),
}


@cache
def _catalog() -> tuple[Loaded, ...]:
    bundled = load_catalog([ROOT / "analytics"]).loaded
    extra = load_catalog([EXTRA_DIR]).loaded
    return tuple(bundled) + tuple(extra)


@cache
def _artifact(aid: str) -> Artifact | None:
    lo = next(x for x in _catalog() if x.analytic.id == aid)
    return compile_pair(lo, "esql", profile=None, allow_approximate=True).artifact


def _compiled() -> Iterator[tuple[Loaded, Artifact]]:
    for lo in _catalog():
        art = _artifact(lo.analytic.id)
        if art is not None:
            yield lo, art


def _pairs() -> list[tuple[str, str]]:
    return [(lo.analytic.id, fx.name) for lo, _ in _compiled() for fx in lo.fixtures]


def _lookup(aid: str, name: str) -> tuple[Loaded, ir.Fixture]:
    return find_fixture(_catalog(), aid, name)


def _declares(artifact: Artifact, construct: str) -> bool:
    return any(a.construct == construct for a in artifact.approximations)


def _hopping(artifact: Artifact) -> bool:
    """Sliding windows and co-occurrences over hopping buckets (declared supersets)."""
    return "EVAL window_end = window + " in artifact.query


def _compare(loaded: Loaded, fx: ir.Fixture, artifact: Artifact) -> canonical.Diff:
    want = evaluator_alerts(loaded, fx)
    got = run_esql.run(loaded, fx, artifact)
    if _hopping(artifact):
        # a declared superset: every evaluator alert lies inside an engine bucket of its group
        # (the bucket's measures are those of the whole bucket, not compared)
        return canonical.Diff(_outside_buckets(loaded, fx, artifact, want), [])
    sliding = _declares(artifact, SLIDING)
    if sliding:
        size = loaded.analytic.detection.window.size_ms  # type: ignore[union-attr]
        for a in got:
            assert a.start is not None and a.start % size == 0 and a.end == a.start + size, a
    return canonical.diff(want, got, compare_times=not sliding)


def _outside_buckets(
    loaded: Loaded, fx: ir.Fixture, artifact: Artifact, want: list[canonical.CanonicalAlert]
) -> list[canonical.CanonicalAlert]:
    """The evaluator alerts no hopping bucket [window, window_end) of their group contains;
    every bucket must be 2 * size long and start on a multiple of size."""
    d = loaded.analytic.detection
    if isinstance(d, ir.Aggregate):
        size, keys = d.window.size_ms, d.keys
    else:
        assert isinstance(d, ir.Cooccurrence)
        size, keys = d.window_ms, d.members[0].keys
    events = fixture_events(loaded, fx)
    now = fx.now_ms if fx.now_ms is not None else max(e.ts for e in events)
    rows = run_esql.execute_rows(
        artifact.query,
        run_esql.indices(events, artifact.profile),
        run_esql.lookup_indices(loaded.analytic),
        now,
    )
    buckets = []
    for r in rows:
        start, end = run_esql.plain(r["window"]), run_esql.plain(r["window_end"])
        assert start % size == 0 and end == start + 2 * size, r
        key = [(k, run_esql.plain(r.get(k))) for k in keys]
        buckets.append((canonical.make(loaded.analytic.id, key, None, None).key, start, end))
    return [
        a
        for a in want
        if a.start is None
        or a.end is None
        or not any(k == a.key and s <= a.start and a.end < e for k, s, e in buckets)
    ]


def _outcome(d: canonical.Diff) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(a.describe() for a in d.missing), tuple(a.describe() for a in d.extra)


def _extra_fields(loaded: Loaded) -> dict[str, str]:
    """Fields of the differential fixtures that the bundled analytics' schema does not list."""
    known = ecs_types()
    types = run_esql.field_types()
    names = {k for fx in loaded.fixtures for e in fx.events for k in e if k not in known}
    return {n: types.get(n, "keyword") for n in names}


@pytest.mark.parametrize(("aid", "fixture"), _pairs(), ids=lambda v: str(v)[:60])
def test_engine_alerts_equal_the_evaluator(aid: str, fixture: str) -> None:
    loaded, fx = _lookup(aid, fixture)
    artifact = _artifact(aid)
    assert artifact is not None
    validate(artifact.query, lookups_of(loaded.analytic), extra_fields=_extra_fields(loaded))
    d = _compare(loaded, fx, artifact)
    exp = EXPECTED.get((aid, fixture))
    if exp is None:
        assert d.equal, f"{aid} / {fixture}: engine and evaluator differ\n{d.render()}"
        return
    assert _outcome(d) == (exp.missing, exp.extra), f"{aid} / {fixture}\n{d.render()}"
    if exp.kind == "approximation":
        assert _declares(artifact, exp.source), (exp.source, artifact.approximations)


def test_tables_name_existing_pairs() -> None:
    pairs = set(_pairs())
    assert set(EXPECTED) <= pairs


def test_coverage_numbers() -> None:
    """The size of the comparison, so that a change in coverage is visible."""
    pairs = _pairs()
    assert {aid for aid, _ in pairs} == {
        "AN1190",
        "AN1511",
        "SIEMC-0003",
        "SIEMC-0005",
        "SIEMC-0006",
        "SIEMC-0007",
        "SIEMC-0008",
        "SIEMC-0009",
        "SIEMC-0010",
        "SIEMC-0011",
        "SIEMC-0012",
        "SIEMC-0013",
        "SIEMC-0014",
        "SIEMC-0015",
        "D61-RD3",
        "SIEMC-0016",
        "D-ESQL-67S",
        "D-DV-INCLUDE",
        "D-DV-LOOKBACKS",
    } | {f"D-ESQL-{i:02d}" for i in (*range(1, 16), 60, 64, 65, 66, 67, 70)}
    assert (len(pairs), len(EXPECTED)) == (81, 4)
    assert [k for k, e in EXPECTED.items() if e.kind == "defect"] == []


def test_differential_fixtures_pass_the_evaluator() -> None:
    """The extra fixtures' expectations document what they separate: keep them true."""
    for lo in load_catalog([EXTRA_DIR]).loaded:
        for fx in lo.fixtures:
            res = run_fixture(lo, fx)
            assert res.status == "passed", (lo.analytic.id, fx.name, res.detail)


def test_engine_unavailable_names_the_extra_and_the_source_tests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_esql, "INTERPRETER", "tests.interpreters.no_such_module")
    with pytest.raises(run_esql.EngineUnavailable) as err:
        run_esql.interpreter()
    text = str(err.value)
    assert "siemc[test]" in text and "source" in text and "detection-rules-esql-py" in text


# ------------------------------------------------------------------ deliberately wrong backends
def _differs(aid: str) -> bool:
    """Whether some fixture of ``aid`` no longer gives the recorded outcome."""
    lo = next(x for x in _catalog() if x.analytic.id == aid)
    art = EsqlBackend().compile(lo.analytic, allow_approximate=True)
    for fx in lo.fixtures:
        exp = EXPECTED.get((aid, fx.name))
        if _outcome(_compare(lo, fx, art)) != ((exp.missing, exp.extra) if exp else ((), ())):
            return True
    return False


def test_wrong_comparison_operator_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _differs("D-ESQL-02")
    compare = Renderer.p_Compare

    def strict(self: Renderer, p: ir.Compare, neg: bool) -> str:
        return compare(self, p, neg).replace(" >= ", " > ")

    monkeypatch.setattr(Renderer, "p_Compare", strict)
    assert _differs("D-ESQL-02")


def test_pairing_children_with_the_oldest_start_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _differs("D-ESQL-67S")
    commands = child_sequence.commands

    def oldest(b: QueryBuild, seq: ir.Sequence, pos: int) -> list[str]:
        return [c.replace("MAX(siemc_starts)", "MIN(siemc_starts)") for c in commands(b, seq, pos)]

    monkeypatch.setattr(child_sequence, "commands", oldest)
    assert _differs("D-ESQL-67S")


def test_first_seen_on_a_match_without_one_row_per_event_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not _differs("D-ESQL-67")
    build = match.match_first_seen

    def every_row(b: QueryBuild, d: ir.Match) -> list[str]:
        return [c.split("\n    AND siemc_hist_1 == ")[0] for c in build(b, d)]

    monkeypatch.setattr("backends.elastic_esql.backend.match_first_seen", every_row)
    assert _differs("D-ESQL-67")


def test_dropped_group_key_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _differs("D-ESQL-04")
    init = AggregateBuilder.__init__

    def drop_last(self: AggregateBuilder, build: Any, agg: ir.Aggregate) -> None:
        init(self, build, dataclasses.replace(agg, keys=agg.keys[:-1]))

    monkeypatch.setattr(AggregateBuilder, "__init__", drop_last)
    assert _differs("D-ESQL-04")


def test_negation_without_the_null_guard_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """ES|QL's NOT null is null: a negation written without `f IS NULL OR` loses events whose
    field is missing (D-ESQL-01's f3 has no user.name)."""
    assert not _differs("D-ESQL-01")

    def unguarded(self: Renderer, text: str, fld: str | None) -> str:
        return f"NOT {text}"

    monkeypatch.setattr(Renderer, "_negate", unguarded)
    monkeypatch.setattr(Renderer, "p_Eq", _without_null_guard(Renderer.p_Eq), raising=True)
    assert _differs("D-ESQL-01")


def _without_null_guard(p_eq: Any) -> Any:
    def run(self: Renderer, p: ir.Eq, neg: bool) -> str:
        text: str = p_eq(self, p, neg)
        col = self.col(p.field, p.span)
        return text.replace(f"({col} IS NULL OR ", "(", 1) if neg else text

    return run


def test_comparison_on_an_array_without_mv_max_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bound written straight on a multi-valued column is null in ES|QL: D-ESQL-08's w7
    (process.args ["22", "8080"] > 1000) would be lost."""
    assert not _differs("D-ESQL-08")

    def plain(self: Renderer, p: ir.Compare, c: str, op: str, kind: str, neg: bool) -> str:
        return f"TO_DOUBLE({c}) {op} {p.value:g}"

    monkeypatch.setattr(Renderer, "_compare_values", plain)
    assert _differs("D-ESQL-08")


def _replace_in_query(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """Make every compiled query say ``new`` where it said ``old``."""
    render = EsqlBackend.render

    def wrong(self: EsqlBackend, analytic: ir.Analytic, ctx: Any) -> str:
        text: str = render(self, analytic, ctx)
        assert old in text, old
        return text.replace(old, new)

    monkeypatch.setattr(EsqlBackend, "render", wrong)


def test_exclusive_maxspan_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """D-ESQL-11's p2 connects exactly at maxspan, p1 at the start's own millisecond."""
    assert not _differs("D-ESQL-11")
    _replace_in_query(
        monkeypatch, "@timestamp <= siemc_seq_start +", "@timestamp < siemc_seq_start +"
    )
    assert _differs("D-ESQL-11")


def test_strict_order_at_equal_timestamps_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _differs("D-ESQL-11")
    _replace_in_query(monkeypatch, "@timestamp >= siemc_seq_start", "@timestamp > siemc_seq_start")
    assert _differs("D-ESQL-11")


def test_history_interval_edges_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """[start - lookback, start): D-ESQL-14 has history at exactly the lower edge and 1 ms
    below it; D-ESQL-13 a connection at the candidate's own start."""
    assert not _differs("D-ESQL-14") and not _differs("D-ESQL-13")
    _replace_in_query(monkeypatch, "siemc_hist_1 >= window", "siemc_hist_1 > window")
    assert _differs("D-ESQL-14")
    monkeypatch.undo()
    _replace_in_query(monkeypatch, "siemc_hist_1 < @timestamp", "siemc_hist_1 <= @timestamp")
    assert _differs("D-ESQL-13")


def test_join_time_bound_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """D-ESQL-12 joins a flow at its start's own timestamp and one exactly an hour later."""
    assert not _differs("D-ESQL-12")
    _replace_in_query(
        monkeypatch,
        "@timestamp <= siemc_flow_proc_partner_ts + 1 hour",
        "@timestamp < siemc_flow_proc_partner_ts + 1 hour",
    )
    assert _differs("D-ESQL-12")


def test_percentile_rank_off_by_one_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nearest rank is the ceiling of P/100 * n: D-ESQL-12's values 10, 30, 30, 40, 20 (and a
    flow without bytes: n = 5) have the median 30 (the 3rd), not 20 (the 2nd)."""
    assert not _differs("D-ESQL-12")
    _replace_in_query(monkeypatch, "_n * 50 + 99) / 100", "_n * 50) / 100")
    assert _differs("D-ESQL-12")


def test_absences_are_exact_and_equal_the_evaluator() -> None:
    """A missing event must be strictly later (docs/semantics.md "Absence"), which ES|QL
    computes: no approximation is declared and every fixture, ties included, is equal."""
    for aid in ("SIEMC-0009", "D-ESQL-15", "D-ESQL-60"):
        lo = next(x for x in _catalog() if x.analytic.id == aid)
        art = _artifact(aid)
        assert art is not None and art.approximations == ()
        for fx in lo.fixtures:
            diff = _compare(lo, fx, art)
            assert not diff.missing and not diff.extra


def test_absence_tie_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """D-ESQL-60's starts at their stop's own millisecond do not suppress it."""
    assert not _differs("D-ESQL-60")
    _replace_in_query(monkeypatch, "siemc_next > @timestamp AND", "siemc_next >= @timestamp AND")
    assert _differs("D-ESQL-60")


def test_absence_window_end_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """D-ESQL-15's f2 restarts exactly 5 minutes after f1's stop: inside the window."""
    assert not _differs("D-ESQL-15")
    _replace_in_query(
        monkeypatch, "siemc_next <= @timestamp + 5 minutes", "siemc_next < @timestamp + 5 minutes"
    )
    assert _differs("D-ESQL-15")


def test_deviation_history_excluding_the_window_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every window is decided against its past only: SIEMC-0011's 50 MB hour counted in its
    own history would no longer stand out."""
    assert not _differs("SIEMC-0011")
    _replace_in_query(monkeypatch, "window < siemc_window AND", "window <= siemc_window AND")
    assert _differs("SIEMC-0011")


def test_a_derived_array_column_tested_as_a_scalar_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """lower(process.args) keeps every value: testing it with == (null on several values)
    loses D-ESQL-07's v7 (compiled as written: inlined, the test reads process.args)."""
    monkeypatch.setattr("backends.inline.filter_only_streams", lambda analytic: [])
    assert not _differs("D-ESQL-07")
    monkeypatch.setattr(Renderer, "mv_expr", lambda self, e: False)
    assert _differs("D-ESQL-07")


def test_one_bucket_per_event_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hopping buckets put each event in two buckets: with one (tumbling), D-ESQL-05's burst
    at 00:01:50, 00:01:59 and 00:02:05 straddles a boundary and is missed."""
    assert not _differs("D-ESQL-05")
    start = "DATE_TRUNC(1 minute, @timestamp)"
    _replace_in_query(monkeypatch, f"MV_APPEND({start} - 1 minute, {start})", start)
    assert _differs("D-ESQL-05")


def test_the_later_partner_at_equal_distance_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """D-ESQL-65's f2 has partners 7.5 minutes before and after: siemc takes the earlier."""
    assert not _differs("D-ESQL-65")
    later = "CASE(siemc_flow_proc_partner_ts > @timestamp, 1, 0)"
    _replace_in_query(monkeypatch, later, "CASE(siemc_flow_proc_partner_ts > @timestamp, 0, 1)")
    assert _differs("D-ESQL-65")
