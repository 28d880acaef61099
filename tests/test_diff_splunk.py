"""Differential test of the splunk backend: compiled SPL run by the SPL interpreter of the tests
(``tests/interpreters/spl_interp.py``, through ``compiler.engines.run_spl``) over the fixtures,
loaded as CIM events, must raise the evaluator's alerts, in canonical form.

Every (analytic, fixture) pair of the bundled catalog and of ``tests/differential/splunk`` whose
analytic compiles to SPL (profile cim) is compared, after the query passed the SPL grammar oracle.
A pair may differ only as recorded in :data:`EXPECTED` (a declared approximation, quoted from the
artifact, or a backend defect); a pair whose query uses a command the interpreter lacks must be
listed in :data:`NOT_EXECUTABLE`. Anything else fails, in both directions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import pytest

from backends.base import Artifact
from backends.splunk.expr import PredicateRenderer
from backends.splunk.macros import definitions
from compiler import canonical, ir
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_spl
from compiler.lower import Loaded
from tests.differential_support import evaluator_alerts, find_fixture, spl_engine_or_skip
from tests.oracles.spl_grammar import check

ROOT = Path(__file__).resolve().parent.parent
EXTRA_DIR = ROOT / "tests" / "differential" / "splunk"
T0 = 1704067200000  # 2024-01-01T00:00:00Z, the differential fixtures' epoch


def macro_defs(art: Artifact) -> dict[str, str]:
    """The macro definitions an artifact's query calls (what macros.conf ships)."""
    return definitions(art.query, art.profile, art.analytic)


@dataclass(frozen=True)
class Expected:
    """A recorded difference: ``missing`` (evaluator only) and ``extra`` (interpreter only)
    alerts, as ``CanonicalAlert.describe()`` strings, and the text it comes from."""

    kind: Literal["approximation", "defect"]
    source: str  # approximation: text quoted from the artifact's header; defect: what is wrong
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


# (analytic, fixture) -> the one difference allowed
EXPECTED: dict[tuple[str, str], Expected] = {
    # q1 answered 10.0.0.5 and 8.8.8.8; the connection to 8.8.8.8 suppresses only that row
    ("D-SPL-MV07", "a connection to one of two answers, to none, and to the only answer"):
        Expected(
            "approximation", "an event alerts once for each value that has no `missing` event",
            extra=(f"D-SPL-MV07 {{labels.peer='10.0.0.5'}} [{T0 + 1000}..{T0 + 1000}]",),
        ),
}  # fmt: skip

# (analytic, fixture) -> command the interpreter does not implement (none at present)
NOT_EXECUTABLE: dict[tuple[str, str], str] = {}


@cache
def _catalog() -> tuple[Loaded, ...]:
    bundled = load_catalog([ROOT / "analytics"]).loaded
    extra = load_catalog([EXTRA_DIR]).loaded
    return tuple(bundled) + tuple(extra)


PROFILES = ("cim", "sysmon")


@cache
def _artifact(aid: str, profile: str = "cim") -> Artifact | None:
    loaded = next(lo for lo in _catalog() if lo.analytic.id == aid)
    return compile_pair(loaded, "splunk", profile=profile, allow_approximate=True).artifact


def _compiled() -> Iterator[tuple[str, Loaded, Artifact]]:
    for profile in PROFILES:
        for loaded in _catalog():
            art = _artifact(loaded.analytic.id, profile)
            if art is not None:
                yield profile, loaded, art


def _pairs() -> list[tuple[str, str, str]]:
    return [(p, lo.analytic.id, fx.name) for p, lo, _ in _compiled() for fx in lo.fixtures]


def _lookup(aid: str, name: str) -> tuple[Loaded, ir.Fixture]:
    return find_fixture(_catalog(), aid, name)


def _compare(loaded: Loaded, fx: ir.Fixture, artifact: Artifact) -> canonical.Diff:
    want = evaluator_alerts(loaded, fx)
    return canonical.diff(want, run_spl.run(loaded, fx, artifact))


@pytest.mark.parametrize(("profile", "aid", "fixture"), _pairs(), ids=lambda v: str(v)[:50])
def test_interpreter_alerts_equal_the_evaluator(profile: str, aid: str, fixture: str) -> None:
    spl_engine_or_skip()
    artifact = _artifact(aid, profile)
    assert artifact is not None
    assert check(artifact.query, macro_defs(artifact)) is None, check(
        artifact.query, macro_defs(artifact)
    )
    loaded, fx = _lookup(aid, fixture)
    if (aid, fixture) in NOT_EXECUTABLE:
        with pytest.raises(run_spl.NotExecutable, match=NOT_EXECUTABLE[(aid, fixture)]):
            _compare(loaded, fx, artifact)
        return
    d = _compare(loaded, fx, artifact)
    exp = EXPECTED.get((aid, fixture))
    if exp is None:
        assert d.equal, f"{aid} / {fixture}: interpreter and evaluator differ\n{d.render()}"
        return
    got = (sorted(a.describe() for a in d.missing), sorted(a.describe() for a in d.extra))
    assert got == (sorted(exp.missing), sorted(exp.extra)), f"{aid}/{fixture}\n{d.render()}"
    if exp.kind == "approximation":
        declared = [f"{a.construct}: {a.detail}" for a in artifact.approximations]
        assert any(exp.source in text for text in declared), (exp.source, declared)


def test_tables_name_existing_pairs() -> None:
    assert set(EXPECTED) | set(NOT_EXECUTABLE) <= {(a, f) for _, a, f in _pairs()}


def test_coverage_numbers() -> None:
    """The size of the comparison, so that a change in coverage is visible."""
    pairs = _pairs()
    by_profile = {p: len([x for x in pairs if x[0] == p]) for p in PROFILES}
    assert by_profile == {"cim": 140, "sysmon": 105}
    assert len({a for _, a, _ in pairs}) == 81
    assert sum(e.kind == "approximation" for e in EXPECTED.values()) == 1
    assert sum(e.kind == "defect" for e in EXPECTED.values()) == 0
    assert not NOT_EXECUTABLE


# --------------------------------------------------------------------------- mutations
def test_wrong_operator_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that writes `>` for `gte` loses the event exactly on the pid boundary."""
    spl_engine_or_skip()
    loaded, fx = _lookup("D-SPL-K01", "case, the pid boundary, a missing user and a cased parent")
    orig = PredicateRenderer.leaf

    def wrong(self: PredicateRenderer, p: ir.Predicate) -> tuple[str, list[str]]:
        text, guards = orig(self, p)
        return text.replace(">=", ">"), guards

    monkeypatch.setattr(PredicateRenderer, "leaf", wrong)
    art = compile_pair(loaded, "splunk", profile="cim", allow_approximate=True).artifact
    assert art is not None and "tonumber(process_id)>100" in art.query
    d = _compare(loaded, fx, art)
    assert not d.equal and [a.start for a in d.missing] == [T0 + 1000] and not d.extra


def test_dropped_group_key_is_caught() -> None:
    spl_engine_or_skip()
    loaded, fx = _lookup(
        "D-SPL-K03",
        "boundary at the window end, case-distinct hosts, no bytes back, a missing port",
    )
    art = _artifact("D-SPL-K03")
    assert art is not None
    assert _compare(loaded, fx, art).equal
    by = "BY _time dvc dest_port"
    assert by in art.query
    wrong = Artifact(**{**art.__dict__, "query": art.query.replace(by, "BY _time dvc")})
    d = _compare(loaded, fx, wrong)
    assert not d.equal and d.missing and d.extra


def test_absence_tie_is_caught() -> None:
    """A start at a run's own millisecond, in both streams or not, does not suppress it
    (docs/semantics.md "Absence"): taking the nearest later-or-equal missing time loses the
    D-SPL-60 alerts of ws1 and ws2."""
    spl_engine_or_skip()
    loaded, fx = _lookup(
        "D-SPL-60", "a start at a stop's millisecond, a start alone, a start 1m + 1 ms late"
    )
    art = _artifact("D-SPL-60")
    assert art is not None and not art.approximations
    assert _compare(loaded, fx, art).equal
    strict = "eval siemc_next=if(siemc_next>_time, siemc_next, null())"
    assert strict in art.query
    wrong = Artifact(**{**art.__dict__, "query": art.query.replace(strict, "eval siemc_x=0")})
    d = _compare(loaded, fx, wrong)
    assert not d.equal and len(d.missing) == 3 and not d.extra


_MV = "answers with one, two and three addresses, and none"


def test_scalar_forms_on_a_multivalue_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the mvfilter() forms the where leaves compare a multivalue field with `==`,
    `like()` or `cidrmatch()`, whose per-value meaning Splunk does not document: the
    interpreter refuses them instead of agreeing by accident."""
    spl_engine_or_skip()
    for aid in ("D-SPL-MV01", "D-SPL-MV02", "D-SPL-MV03"):
        loaded, fx = _lookup(aid, _MV)
        monkeypatch.setattr("backends.splunk.streams.multi_valued", lambda a: frozenset[str]())
        art = compile_pair(loaded, "splunk", profile="cim", allow_approximate=True).artifact
        monkeypatch.undo()
        assert art is not None and "mvfilter" not in art.query
        with pytest.raises(run_spl.NotExecutable, match="on a multivalue field"):
            _compare(loaded, fx, art)


def test_elementwise_derivation_is_needed() -> None:
    """lower() of a multivalue field has no documented per-value meaning: mvmap() is needed."""
    spl_engine_or_skip()
    loaded, fx = _lookup("D-SPL-MV08", "the value is not the first element")
    art = _artifact("D-SPL-MV08")
    assert art is not None and _compare(loaded, fx, art).equal
    q = art.query.replace("mvmap(tag, lower(tag))", "lower(tag)")
    assert q != art.query
    with pytest.raises(run_spl.NotExecutable, match="on a multivalue field"):
        _compare(loaded, fx, Artifact(**{**art.__dict__, "query": q}))


def test_multivalue_key_forms_are_needed() -> None:
    """count(X) counts the values of a multivalue field and streamstats groups by its whole
    value: dropping the helper count or the mvexpand changes the alerts."""
    spl_engine_or_skip()
    loaded, fx = _lookup("D-SPL-MV04", _MV)
    art = _artifact("D-SPL-MV04")
    assert art is not None and _compare(loaded, fx, art).equal
    q = art.query.replace("count(siemc_has_1)", "count(dns_answer_ips)")
    assert q != art.query
    assert not _compare(loaded, fx, Artifact(**{**art.__dict__, "query": q})).equal
    loaded, fx = _lookup("D-SPL-MV05", _MV)
    art = _artifact("D-SPL-MV05")
    assert art is not None and _compare(loaded, fx, art).equal
    q = art.query.replace("| mvexpand dns_answer_ips\n", "")
    assert q != art.query
    assert not _compare(loaded, fx, Artifact(**{**art.__dict__, "query": q})).equal


def _mutated(aid: str, fixture: str, old: str, new: str) -> canonical.Diff:
    """The comparison with ``old`` replaced by ``new`` in the compiled query (which must be
    equal to the evaluator as compiled)."""
    loaded, fx = _lookup(aid, fixture)
    art = _artifact(aid)
    assert art is not None and _compare(loaded, fx, art).equal
    assert old in art.query
    return _compare(loaded, fx, Artifact(**{**art.__dict__, "query": art.query.replace(old, new)}))


def test_sequence_consumption_and_identity_are_needed() -> None:
    """Without the "no second step since the first" test, a second connection of a process
    re-completes a consumed sequence; keyed on the PID instead of the process identity, a
    connection of a reused PID completes the start of the ended process."""
    spl_engine_or_skip()
    fx = "maxspan edges, ties both orders, consumption, PID reuse, a missing PID"
    d = _mutated("D-SPL-Q1", fx, " AND (isnull(siemc_pb) OR siemc_pb<siemc_as)", "")
    assert [a.end for a in d.extra] == [T0 + 422_000] and not d.missing
    d = _mutated("D-SPL-Q1", fx, "siemc_g1=process_guid", "siemc_g1=process_id")
    assert d.extra and not d.missing


def test_join_takes_values_from_the_nearest_partner_only() -> None:
    """Carrying each field with last() alone takes a value from an older partner when the
    nearest one lacks it; without the partners-first order a partner at the same time is
    missed."""
    spl_engine_or_skip()
    fx = "edges, equal distances, ties, partners lacking or overwriting the user"
    d = _mutated("D-SPL-J2", fx, "if(siemc_bh1==siemc_bs, siemc_bv1, null())", "siemc_bv1")
    assert [a.end for a in d.extra] == [T0 + 303_000] and not d.missing
    d = _mutated("D-SPL-J2", fx, "sort 0 _time siemc_jr -siemc_seq", "sort 0 _time -siemc_jr")
    assert not d.equal


def test_first_seen_candidates_come_first_at_one_time() -> None:
    """History strictly before the candidate: sorted after the history at one time, the second
    of two equal-time events would look seen."""
    spl_engine_or_skip()
    d = _mutated("D-SPL-F1", "lookback edges, equal times, null keys", "sort 0 _time siemc_role",
                 "sort 0 _time -siemc_role")  # fmt: skip
    assert d.missing and not d.extra


def test_unknown_command_is_reported() -> None:
    spl_engine_or_skip()
    loaded, fx = _lookup("D-SPL-K03", "boundary at the window end, case-distinct hosts, "
                         "no bytes back, a missing port")  # fmt: skip
    art = _artifact("D-SPL-K03")
    assert art is not None
    wrong = Artifact(**{**art.__dict__, "query": art.query + "| dedup dvc\n"})
    with pytest.raises(run_spl.NotExecutable, match="not executable by the interpreter: dedup"):
        run_spl.run(loaded, fx, wrong)


_SC1 = "s_c1 bursts of 2T, edges at W and W + 1 ms, ties, interleaved and look-alike hosts"
_SC4 = "s_c4 two sets in a row, edges at W and W + 1 ms, ties, interleaved hosts, latest events"


def test_consuming_window_needs_the_reset_and_the_group_order() -> None:
    """Without reset_after the window of the last T events re-fires on every further event of a
    burst; sorted by time alone, a host's alert resets the host in the middle of its window
    (reset_after resets every group) and the look-alike hosts "7" and "7.0" interleave; sorted
    by the keys as numbers, "7" and "7.0" still interleave."""
    spl_engine_or_skip()
    reset = 'reset_after="(event_count>=3 AND _time-siemc_ws<=60)" '
    d = _mutated("D-SPL-SC01", _SC1, reset, "")
    ends = sorted((a.key[0][1], (a.end or 0) - T0) for a in d.extra)
    assert ends == [("h1", 15_000), ("h1", 20_000), ("h4", 120_000), ("h4", 120_000)]
    assert not d.missing
    d = _mutated("D-SPL-SC01", _SC1, "sort 0 str(dvc) _time", "sort 0 _time")
    assert sorted(a.key[0][1] for a in d.missing) == ["7", "H5", "h2", "h6"]
    d = _mutated("D-SPL-SC01", _SC1, "sort 0 str(dvc) _time", "sort 0 dvc _time")
    assert [a.key for a in d.missing] == [(("host.name", "7"),)]


def test_consumed_window_measures_need_the_input_order() -> None:
    """Two starts of one millisecond straddle the firing point: taken newest-indexed first (the
    search's own order), the window consumes the other one and reports other measures."""
    spl_engine_or_skip()
    fx = (
        "s_c2 a tie across the firing point, a start without user, a second host spanning "
        "exactly 1m"
    )
    d = _mutated("D-SPL-SC02", fx, "| reverse\n| streamstats count AS siemc_seq\n", "")
    assert d.missing and d.extra


def test_cooccurrence_needs_the_reset() -> None:
    """Without reset_after a complete set stays complete and re-alerts on each further event."""
    spl_engine_or_skip()
    latest = " AND ".join(f"_time-siemc_l{i}<=120" for i in range(3))
    reset = f'reset_after="({latest})" '
    d = _mutated("D-SPL-SC04", _SC4, reset, "")
    assert d.extra and not d.missing
