"""Differential test of the EQL backend: compiled queries executed by Elastic's ``eql`` Python
engine (``compiler.engines.run_eql``) must raise the evaluator's alerts, in canonical form.

Every (analytic, fixture) pair of the bundled catalog and of ``tests/differential/eql`` whose
analytic compiles to EQL is compared. A pair may differ only as recorded in :data:`EXPECTED`
(a declared approximation of the backend, quoted from the artifact; or a documented difference
of the ``eql`` engine from Elasticsearch) or be listed in :data:`NOT_EXECUTED` (constructs the
engine cannot execute faithfully, reason in ``run_eql.NOT_EXECUTABLE``). Anything else is a
failure, in both directions: a listed difference that no longer happens fails too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import pytest

from backends.base import Artifact
from backends.elastic_eql import EqlBackend, process
from backends.elastic_eql.predicates import PredicateRenderer
from compiler import canonical, ir
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_eql
from compiler.lower import Loaded
from compiler.testing import run_fixture
from tests.differential_support import assert_direction, evaluator_alerts, find_fixture

ROOT = Path(__file__).resolve().parent.parent
EXTRA_DIR = ROOT / "tests" / "differential" / "eql"

T0 = 1704067200000  # 2024-01-01T00:00:00Z, the differential fixtures' epoch


@dataclass(frozen=True)
class Expected:
    """A recorded difference: ``missing`` (evaluator only) and ``extra`` (engine only) alerts,
    as ``CanonicalAlert.describe()`` strings, and where the difference comes from."""

    kind: Literal["approximation", "engine"]
    source: str  # approximation: text quoted from the artifact's header; engine: the caveat
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


_CASE = (
    "eql engine caveat: the Python engine compares every string and `by` key "
    "case-insensitively; Elasticsearch compares ==, like and keyword keys exactly"
)

EXPECTED: dict[tuple[str, str], Expected] = {
    ("D-EQL-68", "a lookup, an event that is both, a connection"): Expected(
        "approximation",
        "Elasticsearch offers such an event to every step independently",
        extra=("D-EQL-68 {host.name='h1'} [1704067210000..1704067220000]",),
    ),
    (
        "SIEMC-0006",
        "1 ms beyond the window, behaviours spread over hosts, non-interactive shell",
    ): Expected(
        "approximation",
        "compiled as an EQL `sample`, which has no time window",
        extra=("SIEMC-0006 {host.name='web01'} [None..None]",),
    ),
    ("D-EQL-02", "values differing from the pattern by case only"): Expected(
        "engine",
        _CASE,
        extra=(
            f"D-EQL-02 {{(no key)}} [{T0 + 1000}..{T0 + 1000}]",
            f"D-EQL-02 {{(no key)}} [{T0 + 2000}..{T0 + 2000}]",
        ),
    ),
    ("D-EQL-06", "text after an end-anchored match"): Expected(
        "engine",
        "eql engine caveat: `regex` is Python re.match (anchored at the start only), while "
        "Lucene regular expressions match the whole value: `/admin/[0-9]+\\n?` accepts "
        "'/admin/42/edit' in the engine only",
        extra=(f"D-EQL-06 {{(no key)}} [{T0 + 1000}..{T0 + 1000}]",),
    ),
    (
        "D61-RD1",
        "approved names with blanks, dots and case; unapproved names below public suffixes",
    ): Expected(
        "engine",
        "eql engine caveat: `regex` is Python re.match (anchored at the start only), while "
        "Lucene regular expressions match the whole value: the approved-names pattern accepts "
        "the prefix 'live.net ' of 'live.net .' (registered domain 'live.net ') in the engine "
        "only",
        missing=(f"D61-RD1 {{(no key)}} [{T0 + 6000}..{T0 + 6000}]",),
    ),
    ("D-EQL-08", "keys that differ by case only"): Expected(
        "engine",
        _CASE,
        extra=(f"D-EQL-08 {{host.name='WEB01'}} [{T0}..{T0 + 1000}]",),
    ),
    ("D-EQL-09", "keys per position, a different user, within 1.2 s"): Expected(
        "engine",
        "eql engine caveat: maxspan is converted to whole seconds (1500ms acts as 1s), so "
        "the 1.2 s sequence on h2 expires in the engine; Elasticsearch keeps milliseconds",
        missing=(f"D-EQL-09 {{host.name='h2', user.name='carol'}} [{T0 + 60000}..{T0 + 61200}]",),
    ),
    ("D-EQL-10", "members farther apart than the window"): Expected(
        "approximation",
        "compiled as an EQL `sample`, which has no time window",
        extra=("D-EQL-10 {host.name='h1'} [None..None]",),
    ),
    ("D-EQL-13", "two events sharing two addresses"): Expected(
        "approximation",
        "Elasticsearch keeps one sequence state machine per value of a multi-valued `by` key",
        extra=(f"D-EQL-13 {{host.name='h1', related.ip='2.2.2.2'}} [{T0}..{T0 + 5000}]",),
    ),
    ("D-EQL-14", "first matching row decides, some value passes the derived test"): Expected(
        "approximation",
        "the inlined test holds when some value matches a row whose column passes it",
        extra=(f"D-EQL-14 {{(no key)}} [{T0 + 3000}..{T0 + 3000}]",),
    ),
    (
        "AN1190",
        "allowlisted role, baseline-absorbed client, PID reuse after exit, beyond maxspan, "
        "missing domain, look-alike domain",
    ): Expected(
        "approximation",
        "first-seen baseline: dropped, EQL has no history",
        extra=(
            "AN1190 {host.name='web02', process.pid='331'} [1710057600000..1710057601000]",
            "AN1190 {host.name='web02', process.pid='300'} [1710061200000..1710061202000]",
        ),
    ),
    (
        "D-EQL-17",
        "seen exactly at the lookback edge, 1 ms older, at the same instant, on another host",
    ): Expected(
        "approximation",
        "first-seen baseline: dropped, EQL has no history",
        extra=(f"D-EQL-17 {{(no key)}} [{T0 + 86400000}..{T0 + 86400000}]",),
    ),
    (
        "D-EQL-18",
        "a host used on two days, one day, no day; a logoff between; a tie; the maxspan edge",
    ): Expected(
        "approximation",
        "rarity baseline: dropped, EQL has no history",
        extra=(
            f"D-EQL-18 {{host.name='web1', user.name='bob'}} "
            f"[{T0 + 4 * 86400000 + 36000000}..{T0 + 4 * 86400000 + 36060000}]",
        ),
    ),
    ("D-EQL-10", "two sets on one host"): Expected(
        "approximation",
        "each key yields at most max_samples_per_key samples rather than one alert per set",
        missing=(f"D-EQL-10 {{host.name='h1'}} [{T0 + 600000}..{T0 + 601000}]",),
    ),
}

# (analytic, fixture) -> the construct of run_eql.NOT_EXECUTABLE that stops the engine.
NOT_EXECUTED: dict[tuple[str, str], str] = {
    (
        "SIEMC-0009",
        "stays down, another agent restarts, restart 1 ms late, AUDITD, start at the stop's "
        "millisecond",
    ): "missing-event sequence",
    (
        "SIEMC-0009",
        "restart exactly at 5m, restart 1 ms after the stop, window open at now, not an agent",
    ): "missing-event sequence",
    (
        "D-EQL-60",
        "two runs at one millisecond, a run 1m + 1 ms after another",
    ): "missing-event sequence",
    (
        "D-EQL-60",
        "runs 1 ms apart, exactly 1m apart, the last one undecided at now",
    ): "missing-event sequence",
}


@cache
def _catalog() -> tuple[Loaded, ...]:
    bundled = load_catalog([ROOT / "analytics"]).loaded
    extra = load_catalog([EXTRA_DIR]).loaded
    return tuple(bundled) + tuple(extra)


def _compiled() -> Iterator[tuple[Loaded, Artifact]]:
    for loaded in _catalog():
        res = compile_pair(loaded, "eql", profile=None, allow_approximate=True)
        if res.artifact is not None:
            yield loaded, res.artifact


def _pairs() -> list[tuple[str, str]]:
    return [(lo.analytic.id, fx.name) for lo, _ in _compiled() for fx in lo.fixtures]


def _lookup(aid: str, name: str) -> tuple[Loaded, ir.Fixture]:
    return find_fixture(_catalog(), aid, name)


def _compare(loaded: Loaded, fx: ir.Fixture, artifact: Artifact) -> canonical.Diff:
    want = evaluator_alerts(loaded, fx)
    return canonical.diff(want, run_eql.run(loaded, fx, artifact))


def _artifact(loaded: Loaded) -> Artifact:
    art = compile_pair(loaded, "eql", profile=None, allow_approximate=True).artifact
    assert art is not None
    return art


@pytest.mark.parametrize(("aid", "fixture"), _pairs(), ids=lambda v: str(v)[:60])
def test_engine_alerts_equal_the_evaluator(aid: str, fixture: str) -> None:
    loaded, fx = _lookup(aid, fixture)
    artifact = _artifact(loaded)
    if (aid, fixture) in NOT_EXECUTED:
        with pytest.raises(run_eql.NotExecutable) as err:
            run_eql.run(loaded, fx, artifact)
        assert err.value.construct == NOT_EXECUTED[(aid, fixture)]
        return
    d = _compare(loaded, fx, artifact)
    exp = EXPECTED.get((aid, fixture))
    if exp is None or exp.kind == "approximation":
        # the translation's own differences agree with its declared direction (a superset
        # finds every evaluator alert, with its keys and times)
        assert_direction(artifact, d, f"{aid} / {fixture}")
    if exp is None:
        assert d.equal, f"{aid} / {fixture}: engine and evaluator differ\n{d.render()}"
        return
    got = (tuple(a.describe() for a in d.missing), tuple(a.describe() for a in d.extra))
    assert got == (exp.missing, exp.extra), f"{aid} / {fixture}\n{d.render()}"
    if exp.kind == "approximation":
        declared = [f"{a.construct}: {a.detail}" for a in artifact.approximations]
        assert any(exp.source in text for text in declared), (exp.source, declared)


def test_tables_name_existing_pairs() -> None:
    pairs = set(_pairs())
    assert set(EXPECTED) <= pairs
    assert set(NOT_EXECUTED) <= pairs
    assert not set(EXPECTED) & set(NOT_EXECUTED)
    assert set(NOT_EXECUTED.values()) <= set(run_eql.NOT_EXECUTABLE)


def test_coverage_numbers() -> None:
    """The size of the comparison, so that a change in coverage is visible."""
    pairs = _pairs()
    compiled = {aid for aid, _ in pairs}
    assert compiled == {
        "AN1190",
        "SIEMC-0006",
        "SIEMC-0009",
        "SIEMC-0012",
        "SIEMC-0016",
        "SIEMC-0017",
        "SIEMC-0018",
        "D61-RD1",
        "CH-EQL-01",
    } | {f"D-EQL-{i:02d}" for i in [*range(1, 19), 60, 68]}
    assert len(pairs) == 66
    executed = len(pairs) - len(NOT_EXECUTED)
    assert (executed, len(EXPECTED), len(NOT_EXECUTED)) == (62, 14, 4)


def test_differential_fixtures_pass_the_evaluator() -> None:
    """The extra fixtures' expectations document what they separate: keep them true."""
    for lo in load_catalog([EXTRA_DIR]).loaded:
        for fx in lo.fixtures:
            res = run_fixture(lo, fx)
            assert res.status == "passed", (lo.analytic.id, fx.name, res.detail)


def test_engine_unavailable_names_the_extra() -> None:
    exc = run_eql.EngineUnavailable()
    assert "siemc[test]" in str(exc) and "eql==1.0.1" in str(exc)


# ------------------------------------------------------------------ deliberately wrong backends
def _differs(aid: str) -> bool:
    """Whether some fixture of ``aid`` no longer gives the recorded outcome."""
    lo = next(x for x in _catalog() if x.analytic.id == aid)
    art = EqlBackend().compile(lo.analytic, allow_approximate=True)
    for fx in lo.fixtures:
        d = _compare(lo, fx, art)
        exp = EXPECTED.get((aid, fx.name), Expected("engine", ""))
        got = (tuple(a.describe() for a in d.missing), tuple(a.describe() for a in d.extra))
        if got != (exp.missing, exp.extra):
            return True
    return False


def test_wrong_comparison_operator_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _differs("D-EQL-04")
    monkeypatch.setitem(PredicateRenderer.CMP, "gte", ">")
    assert _differs("D-EQL-04")


def test_dropped_correlation_key_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _differs("D-EQL-08")
    split = EqlBackend.split_keys

    def drop_last(
        self: EqlBackend, steps: list[ir.Step], ctx: object
    ) -> tuple[list[str], list[list[str]]]:
        shared, per_step = split(self, steps, ctx)  # type: ignore[arg-type]
        return shared[:-1], per_step

    monkeypatch.setattr(EqlBackend, "split_keys", drop_last)
    assert _differs("D-EQL-08")


def test_wrong_sequence_order_of_steps_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps emitted in the wrong order must be visible too."""
    assert not _differs("D-EQL-09")
    visit = EqlBackend.visit_Sequence

    def reversed_steps(self: EqlBackend, node: ir.Sequence, ctx: object) -> str:
        flipped = ir.Sequence(node.steps[::-1], node.maxspan_ms, node.until, node.span)
        return visit(self, flipped, ctx)  # type: ignore[arg-type]

    monkeypatch.setattr(EqlBackend, "visit_Sequence", reversed_steps)
    assert _differs("D-EQL-09")


def test_pid_keys_without_the_until_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keying on (host, PID) and dropping the until, instead of keying on the entity id,
    blames a reused PID for another program's connection."""
    assert not _differs("D-EQL-16")

    def pid_keyed(analytic: ir.Analytic, seq: ir.Sequence) -> ir.Sequence:
        return dataclasses.replace(seq, until=None)

    monkeypatch.setattr(process, "entity_keyed", pid_keyed)
    assert _differs("D-EQL-16")


def test_process_identity_note_states_the_conditions() -> None:
    lo = next(x for x in _catalog() if x.analytic.id == "D-EQL-16")
    art = _artifact(lo)
    assert art.query.startswith("sequence by host.name, process.entity_id with maxspan=1m")
    assert "until" not in art.query
    # a process start and a connection: one ECS event could be both (declared, superset)
    assert [(x.construct, x.direction) for x in art.approximations] == [
        ("ordered sequence", "superset")
    ]
    # a step event without a PID never joins in the analytic (a null key): each step says so
    assert art.query.count(" and process.pid != null]") == 2
    assert "every step event carries process.entity_id and process.pid" in art.text
    assert "only after an end event of the previous one" in art.text


# ------------------------------------------------------------------ the engine on arrays
def _hits(query: str, docs: list[dict[str, object]], keys: tuple[str, ...] = ()) -> list[list[int]]:
    from compiler.evaluator.model import Event

    events = [Event(i, i, f"e{i}", {"event.category": "process", **d}) for i, d in enumerate(docs)]
    return run_eql._Runner(events, keys).run(run_eql.parse(query))


MV = {
    "f": ["b", None, "a"],
    "ip": ["1.1.1.1", "10.1.1.1"],
    "n": [1, 9],
    "bad": "not an ip",
    "mixed": ["localhost", "10.1.1.1"],
}


@pytest.mark.parametrize(
    ("cond", "hit"),
    [
        ('f : "a"', True),
        ('f == "b"', True),
        ('f in ("a", "z")', True),  # the engine used to crash hashing the list
        ('f in~ ("A", "z")', True),
        ('f : ("x*", "A*")', True),
        ('f like "a*"', True),
        ('f regex~ "A"', True),
        ('f regex "a|b"', True),
        ('stringContains~(f, "A")', True),
        ('startsWith~(f, "b")', True),
        ('endsWith(f, "c")', False),
        ('cidrMatch(ip, "10.0.0.0/8")', True),
        ('cidrMatch(ip, "192.168.0.0/16")', False),
        ("n > 5", True),
        ("n > 9", False),
        ("f != null", True),
        ("f == null", False),
        ('not f : "a"', False),  # must_not: no value matches
        ('f != "a"', False),
        ('f != "c"', True),
        ('not f in~ ("z", "A")', False),
        ('not cidrMatch(ip, "10.0.0.0/8")', False),
        # an ip field holds no value that is not an address: no range matches (eql raised)
        ('cidrMatch(bad, "10.0.0.0/8")', False),
        ('not cidrMatch(bad, "10.0.0.0/8")', True),
        ('cidrMatch(mixed, "10.0.0.0/8")', True),
        ('not cidrMatch(mixed, "0.0.0.0/0", "::/0")', False),
        ("e == null", True),  # [] and [null] have no value
        ("en == null", True),
        ("en != null", False),
        ('(en == null or not en : "a")', True),  # as the backend guards negations
    ],
)
def test_engine_models_elasticsearch_arrays(cond: str, hit: bool) -> None:
    docs: list[dict[str, object]] = [{**MV, "e": [], "en": [None]}]
    assert bool(_hits(f"process where {cond}", docs)) is hit


def test_engine_category_matches_any_value_of_a_multi_valued_category() -> None:
    docs: list[dict[str, object]] = [{"event.category": ["network", "file"]}, {}]
    assert _hits("file where true", docs) == [[0]]
    assert _hits("network where true", docs) == [[0]]
    assert _hits("process where true", docs) == [[1]]


def test_engine_sequence_keys_run_one_machine_per_value() -> None:
    """elastic/elasticsearch#89965: each value of a multi-valued `by` key is a join key of its
    own, so the same two events make one sequence per shared value."""
    q = 'sequence by k [process where x == "a"] [process where x == "b"]'
    docs: list[dict[str, object]] = [
        {"x": "a", "k": ["1", "2", None]},
        {"x": "b", "k": ["2", "1"]},
        {"x": "b", "k": "3"},
    ]
    assert _hits(q, docs, ("k",)) == [[0, 1], [0, 1]]
    assert _hits(q, [{"x": "a", "k": [None]}, {"x": "b", "k": [None]}], ("k",)) == [[0, 1]]


def test_an_engine_blind_to_arrays_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the array model the engine misses (or crashes on) list-valued fields."""
    assert not _differs("D-EQL-11")

    def plain() -> object:
        import eql

        return eql.PythonEngine({"print": False, "time_unit": 1000})

    monkeypatch.setattr(run_eql, "_array_aware_engine", plain)
    with pytest.raises(TypeError, match="unhashable"):
        _differs("D-EQL-11")
    assert _differs("D-EQL-12")


def test_engine_indexes_fields_by_their_ecs_mapping() -> None:
    """Elasticsearch filters and keys read indexed values: a long field coerces numeric strings
    (and truncates fractions), an ip field stores an IPv4-mapped address as IPv4, a keyword
    holds a number's text, and a value the type cannot hold is skipped (ignore_malformed)."""
    got = run_eql.indexed(
        {
            "destination.port": "1050",
            "source.port": 1099.5,
            "process.pid": ["7", "x", None],
            "destination.ip": "::ffff:10.0.0.7",
            "source.ip": "not an ip",
            "user.id": 1000,
            "winlog.event_data.LogonType": [3, True],
            "custom.count": 1000,
        }
    )
    assert got == {
        "destination.port": 1050,
        "source.port": 1099,
        "process.pid": [7],
        "destination.ip": "10.0.0.7",
        "source.ip": None,
        "user.id": "1000",  # a keyword indexes a JSON number as its text
        "winlog.event_data.LogonType": ["3", "true"],
        "custom.count": 1000,  # a field the profile does not type: dynamic mapping, a long
    }
    docs: list[dict[str, object]] = [
        {"destination.port": "1050", "destination.ip": "::ffff:10.1.1.1"}
    ]
    assert _hits("process where destination.port >= 1024", docs) == [[0]]
    assert _hits('process where cidrMatch(destination.ip, "10.0.0.0/8")', docs) == [[0]]
