"""Differential test of the KQL backend: compiled queries executed by ``duckdb-kql``
(``compiler.engines.run_kql``) over the fixtures, loaded as the MDE / ASIM tables of each
profile, must raise the evaluator's alerts, in canonical form.

Every (analytic, profile, fixture) triple of the bundled catalog and of
``tests/differential/kql`` whose analytic compiles to KQL is compared, after the query passed
Microsoft's Kusto.Language analyzer (duckdb-kql runs some invalid KQL, e.g. ``where X = 1``). A
triple may differ only as recorded in :data:`EXPECTED`: a declared approximation of the backend
(quoted from the artifact), or a backend defect (a translation that is wrong in Kusto itself, as
the engine reproduces it). Anything else fails, in both directions: a recorded difference that no
longer happens fails too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import pytest

from backends.base import Artifact
from backends.profiles import load_profile
from backends.sentinel import backend as sentinel_backend
from backends.sentinel.expr import KqlExprMixin
from compiler import canonical, ir
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_kql
from compiler.lower import Loaded
from compiler.testing import fixture_events
from tests.ci_support import skip_unless_ci
from tests.differential_support import evaluator_alerts, find_fixture
from tests.oracles.kql_oracle import require_oracle, validate

ROOT = Path(__file__).resolve().parent.parent
EXTRA_DIR = ROOT / "tests" / "differential" / "kql"
PROFILES = ("mde", "asim")
T0 = 1704067200000  # 2024-01-01T00:00:00Z, the differential fixtures' epoch


@dataclass(frozen=True)
class Expected:
    """A recorded difference: ``missing`` (evaluator only) and ``extra`` (engine only) alerts,
    as ``CanonicalAlert.describe()`` strings, and where the difference comes from."""

    kind: Literal["approximation", "defect"]
    source: str  # approximation: text quoted from the artifact's header; defect: what is wrong
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


_IPS = "finds dotted IPv4 addresses only (IPv6 answers are not extracted)"
_F4_EQUAL = "equal timestamps (query first in file), connection exactly at maxspan, IPv6 answer"
_IPV6_ALERT = (
    "SIEMC-0004 {dns.answer_ips='2606:50c0:8000::154', host.name='WS-CAROL', "
    "process.entity_id='g-ps2'} [1719828000000..1719828030000]"
)
_MV = "answers with one, two and three addresses, and none"
_MV04 = (
    f"D-KQL-MV04 {{dns.answer_ips='8.8.4.4'}} [{T0}..{T0 + 600000}] "
    "{answered=%s, hosts=1.0, n_queries=%s}"
)
_EMPTY = "cannot tell a missing process.command_line from an empty one"
_EMPTY_FIXTURE = "empty, missing and non-empty command lines"
_EMPTY_EXTRA = (f"D-KQL-11 {{(no key)}} [{T0 + 2000}..{T0 + 2000}]",)
_F66 = (
    "children, maxspan edges, old and missing parents, disagreeing parent fields, PID reuse, ties"
)
_F66_REUSED = (
    f"D-KQL-66P {{host.name='h7', process.pid='700'}} [{T0 + 7 * 60000}..{T0 + 7 * 60000 + 20000}]",
)
_TIE = "a connection logged before a start of the same millisecond"
_TIE_DIFF = Expected(
    "approximation",
    "pair here whatever their order",
    missing=(f"D-KQL-66S {{host.name='h1'}} [{T0}..{T0 + 10000}]",),
    extra=(f"D-KQL-66S {{host.name='h1'}} [{T0}..{T0}]",),
)
EXPECTED: dict[tuple[str, str, str], Expected] = {
    ("D-KQL-66S", "mde", _TIE): _TIE_DIFF,
    ("D-KQL-66S", "asim", _TIE): _TIE_DIFF,
    # the shell (pid 700) ended and sleep reused its PID: whoami is sleep's child on MDE
    ("D-KQL-66P", "mde", _F66): Expected(
        "approximation", "a child of another process that reused its PID", missing=_F66_REUSED
    ),
    ("D-KQL-11", "mde", _EMPTY_FIXTURE): Expected("approximation", _EMPTY, extra=_EMPTY_EXTRA),
    ("D-KQL-11", "asim", _EMPTY_FIXTURE): Expected("approximation", _EMPTY, extra=_EMPTY_EXTRA),
    ("SIEMC-0004", "mde", _F4_EQUAL): Expected("approximation", _IPS, missing=(_IPV6_ALERT,)),
    ("SIEMC-0004", "asim", _F4_EQUAL): Expected("approximation", _IPS, missing=(_IPV6_ALERT,)),
    # the harness orders tied rows against the engine's order: the other order than the
    # fixture's, so the declared tie caveats of the scan forms show
    **{
        ("D-KQL-KC04", p, "a repeated and a new port at the firing millisecond"): Expected(
            "approximation", "which of them the alert consumes",
            extra=(f"D-KQL-KC04 {{source.ip='10.0.0.1'}} [{T0 + 1000}..{T0 + 2000}] "
                   "{value_count=2.0}",),
        )
        for p in ("mde", "asim")
    },
    **{
        ("D-KQL-KC06", p, "the completing event shares its millisecond with a member event"):
            Expected("approximation", "whether they belong to that set or start the next one",
                     extra=(f"D-KQL-KC06 {{host.name='r1'}} [{T0 + 1000}..{T0 + 2000}]",))
        for p in ("mde", "asim")
    },
    # q6 answered 8.8.4.4 twice: extract_all keeps both, so the mv-expanded group counts it twice
    **{
        ("D-KQL-MV04", p, _MV): Expected(
            "approximation", "keeps duplicates", missing=(_MV04 % ("2.0", "2.0"),),
            extra=(_MV04 % ("3.0", "3.0"),),
        )
        for p in ("mde", "asim")
    },
    # q1 answered 10.0.0.5 and 8.8.8.8; the connection to 8.8.8.8 suppresses only that row
    **{
        ("D-KQL-MV07", p, "a connection to one of two answers, to none, and to the only answer"):
            Expected(
                "approximation", "each row is judged alone",
                extra=(f"D-KQL-MV07 {{labels.peer='10.0.0.5'}} [{T0 + 1000}..{T0 + 1000}]",),
            )
        for p in ("mde", "asim")
    },
    # rows of one key at one millisecond: run events first, then the next step, then until
    **{
        ("D-KQL-CNT3", p, name): Expected(
            "approximation", text,
            extra=(f"D-KQL-CNT3 {{host.name='ws4', user.name='{user}'}} [{T0 + a}..{T0 + b}]",),
        )
        for p in ("mde", "asim")
        for name, text, user, a, b in (
            ("a logon listed before a failure of its millisecond",
             "alerts here with that run event", "eve", 0, 1000),
            ("an unlock listed before a logon of its millisecond",
             "does not stop it here", "fay", 10000, 12000),
        )
    },
    # corelight_dns keeps the latest row of each Zeek uid: Cd1's first query is not in Sentinel
    ("D-KQL-62D", "asim", "two queries on one connection, a query without uid, another domain"):
        Expected("approximation", "keeps one row per Zeek uid",
                 missing=(f"D-KQL-62D {{(no key)}} [{T0 + 1000}..{T0 + 1000}]",)),
}  # fmt: skip


def _engine() -> None:
    try:
        run_kql._require()
    except run_kql.EngineUnavailable as exc:
        skip_unless_ci(str(exc))


@cache
def _catalog() -> tuple[Loaded, ...]:
    bundled = load_catalog([ROOT / "analytics"]).loaded
    extra = load_catalog([EXTRA_DIR]).loaded
    return tuple(bundled) + tuple(extra)


@cache
def _artifact(aid: str, profile: str) -> Artifact | None:
    loaded = next(lo for lo in _catalog() if lo.analytic.id == aid)
    return compile_pair(loaded, "kql", profile=profile, allow_approximate=True).artifact


def _compiled() -> Iterator[tuple[Loaded, str, Artifact]]:
    for loaded in _catalog():
        for profile in PROFILES:
            art = _artifact(loaded.analytic.id, profile)
            if art is not None:
                yield loaded, profile, art


def _triples() -> list[tuple[str, str, str]]:
    return [(lo.analytic.id, p, fx.name) for lo, p, _ in _compiled() for fx in lo.fixtures]


def _lookup(aid: str, name: str) -> tuple[Loaded, ir.Fixture]:
    return find_fixture(_catalog(), aid, name)


@cache
def _invalid() -> dict[tuple[str, str], str]:
    """Kusto.Language errors of every compiled query (empty: all valid)."""
    arts = [(lo.analytic.id, p, a) for lo, p, a in _compiled()]
    columns = {c for lo in _catalog() for lk in lo.analytic.lookups for c in lk.columns}
    results = validate([a.query for _, _, a in arts], watchlist_columns=tuple(sorted(columns)))
    return {
        (aid, p): "\n".join(e.show(a.query) for e in errs)
        for (aid, p, a), errs in zip(arts, results, strict=True)
        if errs
    }


def _compare(loaded: Loaded, fx: ir.Fixture, artifact: Artifact) -> canonical.Diff:
    want = evaluator_alerts(loaded, fx)
    return canonical.diff(want, run_kql.run(loaded, fx, artifact))


@pytest.mark.parametrize(("aid", "profile", "fixture"), _triples(), ids=lambda v: str(v)[:50])
def test_engine_alerts_equal_the_evaluator(aid: str, profile: str, fixture: str) -> None:
    require_oracle()
    _engine()
    assert (aid, profile) not in _invalid(), _invalid()[(aid, profile)]
    loaded, fx = _lookup(aid, fixture)
    artifact = _artifact(aid, profile)
    assert artifact is not None
    d = _compare(loaded, fx, artifact)
    exp = EXPECTED.get((aid, profile, fixture))
    if exp is None:
        assert d.equal, f"{aid} / {profile} / {fixture}: engine and evaluator differ\n{d.render()}"
        return
    got = (sorted(a.describe() for a in d.missing), sorted(a.describe() for a in d.extra))
    assert got == (sorted(exp.missing), sorted(exp.extra)), (
        f"{aid}/{profile}/{fixture}\n{d.render()}"
    )
    if exp.kind == "approximation":
        declared = [f"{a.construct}: {a.detail}" for a in artifact.approximations]
        assert any(exp.source in text for text in declared), (exp.source, declared)


def test_tables_name_existing_triples() -> None:
    assert set(EXPECTED) <= set(_triples())


def test_coverage_numbers() -> None:
    """The size of the comparison, so that a change in coverage is visible."""
    triples = _triples()
    assert len(triples) == 192
    assert len({(a, p) for a, p, _ in triples}) == 114
    assert sum(e.kind == "defect" for e in EXPECTED.values()) == 0
    assert sum(e.kind == "approximation" for e in EXPECTED.values()) == 20


# --------------------------------------------------------------------------- mutations
def _d01() -> tuple[Loaded, ir.Fixture]:
    return _lookup("D-KQL-01", "case, the pid boundary, a missing user and a cased parent")


def test_wrong_operator_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that writes `>` for `gte` loses the event exactly on the boundary."""
    _engine()
    loaded, fx = _d01()
    monkeypatch.setattr(KqlExprMixin, "_CMP", {**KqlExprMixin._CMP, "gte": ">"})
    for profile in PROFILES:
        art = compile_pair(loaded, "kql", profile=profile, allow_approximate=True).artifact
        assert art is not None and "> 100" in art.query
        d = _compare(loaded, fx, art)
        assert not d.equal and [a.start for a in d.missing] == [T0 + 1000] and not d.extra


@pytest.mark.parametrize("profile", PROFILES)
def test_label_cut_instead_of_the_watchlist_is_caught(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last two labels (the cut KQL used before the watchlist) differ from the Public
    Suffix List on D-KQL-PSL1's names: co.uk, github.io, ck, kobe.jp answers and kept bare
    suffixes."""
    _engine()
    loaded, fx = _lookup("D-KQL-PSL1", "public suffix list edge cases")
    art = _artifact("D-KQL-PSL1", profile)
    assert art is not None and not art.approximations
    assert "invoke siemc_registered_domain()" in art.query
    assert _compare(loaded, fx, art).equal
    monkeypatch.setattr(sentinel_backend, "_psl_derive", lambda stream, e: False)
    cut = compile_pair(loaded, "kql", profile=profile, allow_approximate=True).artifact
    assert cut is not None and "siemc_registered_domain" not in cut.query
    d = _compare(loaded, fx, cut)
    missing = {a.describe().split("destination.registered_domain=")[1][:30] for a in d.missing}
    assert any(m.startswith("'bbc.co.uk'") for m in missing), d.render()
    assert any(m.startswith("'b.example.ck'") for m in missing), d.render()
    assert d.extra, d.render()


def test_dropped_group_key_is_caught() -> None:
    _engine()
    loaded, fx = _lookup(
        "D-KQL-03",
        "boundary at the window end, case-distinct hosts, no bytes back, a missing port",
    )
    art = _artifact("D-KQL-03", "asim")
    assert art is not None
    assert _compare(loaded, fx, art).equal
    by = "by __start = bin(TimeGenerated, 10m), SrcHostname, DstPortNumber"
    assert by in art.query
    wrong = Artifact(
        **{**art.__dict__, "query": art.query.replace(by, by[: -len(", DstPortNumber")])}
    )
    d = _compare(loaded, fx, wrong)
    assert not d.equal and d.missing and d.extra


def test_absence_tie_is_caught() -> None:
    """A start at its stop's own millisecond does not suppress it (docs/semantics.md
    "Absence"): an inclusive lower bound loses D-KQL-60's two h1 alerts."""
    _engine()
    loaded, fx = _lookup(
        "D-KQL-60", "two stops and a start at one millisecond, a start of another case"
    )
    art = _artifact("D-KQL-60", "asim")
    assert art is not None and not art.approximations
    assert _compare(loaded, fx, art).equal
    strict = "| where start__t > stop__t and start__t <= stop__t + 2m"
    assert strict in art.query
    wrong = Artifact(
        **{**art.__dict__, "query": art.query.replace(strict, strict.replace(" > ", " >= "))}
    )
    d = _compare(loaded, fx, wrong)
    assert not d.equal and [a.start for a in d.missing] == [T0, T0] and not d.extra


@pytest.mark.parametrize("profile", PROFILES)
def test_around_join_runs_and_a_narrower_tolerance_is_caught(profile: str) -> None:
    """duckdb-kql could not run the `abs(timespan)` an around join used to emit; the join now
    runs, and the partners exactly one minute before and after are what it must keep."""
    _engine()
    loaded, fx = _lookup(
        "D-KQL-05",
        "partner before and after at the tolerance, one just past it, an equal-distance tie",
    )
    art = _artifact("D-KQL-05", profile)
    assert art is not None
    assert _compare(loaded, fx, art).equal
    # MDE rows carry their process' creation time: the join with the start is that bound
    other = "InitiatingProcessCreationTime" if profile == "mde" else "__jt"
    t = "Timestamp" if profile == "mde" else "TimeGenerated"
    bound = f"{other} between (({t} - 1m) .. ({t} + 1m))"
    assert bound in art.query
    narrow = bound.replace("1m", "59s")
    wrong = Artifact(**{**art.__dict__, "query": art.query.replace(bound, narrow)})
    d = _compare(loaded, fx, wrong)
    assert sorted(a.start or 0 for a in d.missing) == [T0 + 60_000, T0 + 120_000]
    assert not d.extra


@pytest.mark.parametrize(
    ("profile", "table", "column", "values"),
    [
        (
            "mde",
            "DeviceLogonEvents",
            "ActionType",
            ["LogonFailed", "LogonSuccess", "LogonAttempted"],
        ),
        ("asim", "_Im_Authentication", "EventResult", ["Failure", "Success", "NA"]),
    ],
)
def test_authentication_events_fill_the_logon_tables(
    profile: str, table: str, column: str, values: list[str]
) -> None:
    loaded, fx = _lookup(
        "D-KQL-06",
        "failures, a success, an unknown outcome, an internal source, a service account, "
        "a process start",
    )
    events = fixture_events(loaded, fx)
    tables = run_kql.Tables(load_profile(profile), events, loaded.analytic)
    rows = tables.rows[table]
    assert len(rows) == 7  # every authentication event, not the process start
    assert [r[column] for r in rows[:3]] == values


def test_zeek_events_fill_the_corelight_parsers_one_row_per_uid() -> None:
    """Zeek events are the rows of Corelight's parser functions, in Zeek's column names and
    types, only there (not in the ASIM NetworkSession rows of another module), and a uid
    shared by two records is the latest one, as the parsers' arg_max by uid keeps."""
    loaded, fx = _lookup(
        "D-KQL-62D", "two queries on one connection, a query without uid, another domain"
    )
    tables = run_kql.Tables(load_profile("asim"), fixture_events(loaded, fx), loaded.analytic)
    rows = tables.rows["corelight_dns"]
    assert [(r.get("uid"), r["query"]) for r in rows] == [
        ("Cd1", "b.bad.example"),
        ("Cd2", "c.good.example"),
        (None, "D.Bad.Example"),
    ]
    loaded, fx = _lookup(
        "D-KQL-62A",
        "states in both cases, empty and set tunnel parents, no byte counts, high port, other logs",
    )
    tables = run_kql.Tables(load_profile("asim"), fixture_events(loaded, fx), loaded.analytic)
    conn = {r["uid"]: r for r in tables.rows["corelight_conn"]}
    assert sorted(conn) == sorted(f"c{i}" for i in range(1, 12) if i != 9)  # c9 is Sysmon's
    assert (conn["c1"]["conn_state"], conn["c1"]["orig_ip_bytes"], conn["c1"]["id_resp_p"]) == (
        "S0",
        44,
        22,
    )
    assert conn["c4"]["tunnel_parents"] == ["CHhAvVGS1DHFjwGM9"]
    assert "orig_ip_bytes" not in conn["c5"]


def test_engine_gaps_are_bridged_with_kusto_semantics() -> None:
    _engine()
    assert run_kql._ip4("10.1.2.3", '["10.0.0.0/8"]') is True
    assert run_kql._ip4("::ffff:10.1.2.3", '["10.0.0.0/8"]') is None  # not an IPv4 text
    assert run_kql._ip6("fd00::1", '["fc00::/7"]') is True
    assert run_kql._ip6("192.168.1.1", '["fc00::/7"]') is False
    assert run_kql._ip6("host.example", '["fc00::/7"]') is None
    q = "let a = T\n| extend __x1 = 1, __x2 = 2, y = 3\n| project-away __x*;\na"
    out = run_kql.expand_wildcards(q, lambda text: ["c", "__x1", "__x2", "y"])
    assert "| project-away __x1, __x2;" in out


def test_element_anchors_are_caught() -> None:
    """Without the multi-line flag `$` anchors at the end of the joined elements only: an
    answer other than the last one no longer ends a value, and the engine misses q5."""
    _engine()
    loaded, fx = _lookup("D-KQL-MV02", _MV)
    for profile in PROFILES:
        art = _artifact("D-KQL-MV02", profile)
        assert art is not None and _compare(loaded, fx, art).equal
        wrong = art.query.replace('"(?m)', '"')
        assert wrong != art.query
        d = _compare(loaded, fx, Artifact(**{**art.__dict__, "query": wrong}))
        assert [a.start for a in d.missing] == [T0 + 5000] and not d.extra


_RESETS = {
    # the window is not emptied when it fires: every event can count in the next window
    "D-KQL-KC01": (r"iff\(array_length\(s\.__w\) >= 3,", "iff(false,"),
    # a completed set is not consumed: its members complete the next set too
    "D-KQL-KC03": (r"not\((isnotnull\(s\.__l\d\)( and )?)+\)", "true"),
}


@pytest.mark.parametrize("aid", sorted(_RESETS))
def test_a_scan_that_does_not_consume_is_caught(aid: str) -> None:
    """Mutation test: the same query with the scan's reset broken must differ from the
    evaluator on its fixture, so the differential test would catch it."""
    _engine()
    pattern, repl = _RESETS[aid]
    art = _artifact(aid, "mde")
    assert art is not None
    broken, n = re.subn(pattern, repl, art.query)
    assert n >= 1, "the mutation must apply"
    loaded = next(lo for lo in _catalog() if lo.analytic.id == aid)
    fx = loaded.fixtures[0]
    assert _compare(loaded, fx, art).equal
    assert not _compare(loaded, fx, dataclasses.replace(art, query=broken)).equal


def _scanned_exact() -> list[tuple[str, str, str]]:
    """Fixtures of the pairs whose query uses scan and declares nothing about tied rows."""
    return [
        (lo.analytic.id, p, fx.name)
        for lo, p, art in _compiled()
        if "| scan " in art.query and "equal timestamps" not in art.text
        for fx in lo.fixtures
    ]


@pytest.mark.parametrize(("aid", "profile", "fixture"), _scanned_exact(), ids=str)
def test_scan_forms_without_a_tie_caveat_do_not_depend_on_the_order_of_ties(
    aid: str, profile: str, fixture: str
) -> None:
    """The scan's rows of one millisecond in the engine's order and against it give the same
    alerts where the backend claims the order of tied rows does not matter (event counts)."""
    _engine()
    loaded, fx = _lookup(aid, fixture)
    art = _artifact(aid, profile)
    assert art is not None
    forward = run_kql.run(loaded, fx, art, reverse_ties=False)
    assert canonical.diff(forward, run_kql.run(loaded, fx, art)).equal


@pytest.mark.parametrize(
    ("aid", "swap"),
    [("D-KQL-KC04", (1, 2)), ("D-KQL-KC06", (2, 3))],
)
def test_the_declared_tie_caveats_cannot_be_avoided(aid: str, swap: tuple[int, int]) -> None:
    """The evaluator's own alerts change when two events of one millisecond swap places in the
    input, so no query over rows without an input order (KQL) can equal it on both: the tie
    caveats of the distinct threshold and of the co-occurrence are a property of the input,
    not of the scan form."""
    loaded = next(lo for lo in _catalog() if lo.analytic.id == aid)
    fx = loaded.fixtures[0]
    i, j = swap
    evs = list(fx.events)
    assert evs[i]["@timestamp"] == evs[j]["@timestamp"]
    evs[i], evs[j] = evs[j], evs[i]
    swapped = dataclasses.replace(fx, events=tuple(evs))
    assert not canonical.diff(evaluator_alerts(loaded, fx), evaluator_alerts(loaded, swapped)).equal
