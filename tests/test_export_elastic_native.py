"""Native Elastic threshold and new_terms rules (compiler/export/elastic_native.py), simulated
as Kibana runs them with the query interpreter of tests/interpreters/kuery_interp.py:

* threshold: runs every interval at any phase, the range ``[now - from, now]``, the query with
  its frame, groups by ``threshold.field``, count and cardinality, the signal-history filter:
  the evaluator's alerts on every fixture.
* new_terms: a term is new when it is absent from ``[history_window_start, run start)``: a
  superset of the evaluator's alerts, and not exact.
Mutations (no frame, ``>`` for ``>=``, a case-sensitive logsource, a history reaching the run's
end) make these comparisons fail. Filters themselves: tests/test_elastic_kuery.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from compiler.discover import load_catalog
from compiler.evaluator import Event, evaluate
from compiler.export import elastic, elastic_native
from compiler.export import schedule as sch
from compiler.export.common import Request
from compiler.lower import Loaded
from tests.differential_support import events_or_skip
from tests.export_support import vendor_schemas
from tests.interpreters import kuery_interp
from tests.test_elastic_kuery import LOADED, TYPES, documents


# ------------------------------------------------------------------------------ threshold
def _rules(los: list[Loaded], allow: bool = True) -> list[dict[str, Any]]:
    pkg = elastic.package(Request(tuple(los), allow, None))
    return [json.loads(x) for x in pkg.files["rules.ndjson"].split("\n") if x]


def _ago(date_math: str) -> int:
    """How far back Kibana date math such as ``now-2m`` reaches, in ms."""
    return -kuery_interp.date_math(date_math, 0, "gte")


def _key_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def threshold_runs(
    rule: dict[str, Any], events: list[Event], phase_ms: int, *, frame: bool = True
) -> set[tuple[Any, ...]]:
    """Kibana's threshold rule run every ``interval`` (starting ``phase_ms`` after the epoch
    clock), as kibana's rule_types/threshold does: each run reads ``[now - from, now]`` with the
    query (``now`` the run's time) and without the events of a group at or before its last
    alert's latest event (``get_threshold_bucket_filters``), groups by ``threshold.field`` in a
    composite terms aggregation (a document missing a field is in no group, a multi-valued
    field puts it in a group per value), and alerts on each group with ``doc_count >= value``
    and ``cardinality >= cardinality.value`` (``build_threshold_aggregation``). The alert's
    window is the framed one (or the run's range, for a rule without the frame)."""
    iv = sch.parse_every(rule["interval"])
    back = _ago(rule["from"])
    spec = rule["threshold"]
    card = (spec.get("cardinality") or [None])[0]
    match = kuery_interp.parse(rule["language"], rule["query"], TYPES)
    docs = [
        (e, d) for ix, e, d in documents(events) if kuery_interp.index_matches(ix, rule["index"])
    ]
    if not docs:
        return set()
    first, last = min(e.ts for e, _ in docs), max(e.ts for e, _ in docs)
    history: dict[tuple[str, ...], int] = {}  # group -> latest event of its last alert
    out: set[tuple[Any, ...]] = set()
    t = (first // iv) * iv + phase_ms
    while t <= last + 3 * iv:
        groups: dict[tuple[str, ...], list[tuple[Event, dict[str, Any]]]] = {}
        for e, d in docs:
            if not (t - back <= e.ts <= t and match(d, t)):
                continue
            combos: list[tuple[str, ...]] = [()]
            for f in spec["field"]:
                combos = [(*c, _key_text(v)) for c in combos for v in kuery_interp.values(d, f)]
            for c in set(combos):
                if e.ts > history.get(c, -1):
                    groups.setdefault(c, []).append((e, d))
        for key, members in groups.items():
            if len(members) < spec["value"]:
                continue
            if card is not None:
                seen = {
                    _key_text(v) for _, d in members for v in kuery_interp.values(d, card["field"])
                }
                if len(seen) < card["value"]:
                    continue
            history[key] = max(e.ts for e, _ in members)
            end = (t // iv) * iv if frame else t
            out.add(
                (tuple(zip(spec["field"], key, strict=True)), end - (iv if frame else back), end)
            )
        t += iv
    return out


def evaluator_windows(lo: Loaded, events: list[Event], now: int | None) -> set[tuple[Any, ...]]:
    return {
        (tuple((k, _key_text(v)) for k, v in al.key), al.start, al.end)
        for al in evaluate(lo.analytic, events, now)
    }


THRESHOLD_TEST = """\
id: TEST-THRESHOLD
title: Many failed logons of one user on one host in a minute
description: native threshold rule test (KQL)
severity: medium
streams:
  failed:
    logsource: {product: zeek, service: auth}
    where:
      event.outcome|cased: failure
      user.name|cased|startswith: adm
detect:
  aggregate:
    stream: failed
    window: {kind: tumbling, size: 1m}
    by: [host.name, user.name]
    measures:
      attempts: {count: true}
    having: attempts >= 3
tests:
  - name: bursts on both sides of a minute boundary, case variants, a second user
    kind: positive
    data: synthetic
    events:
%s
    expect:
      - key: {host.name: h1, user.name: admin}
      - key: {host.name: h1, user.name: admin}
      - key: {host.name: h1, user.name: adm1}
      - key: {host.name: h1, user.name: adm2}
"""


def _threshold_events() -> str:
    rows = []
    n = 0

    def ev(t: str, user: Any, outcome: str = "failure", module: str = "zeek") -> None:
        nonlocal n
        n += 1
        rows.append(
            f"      - {{'@timestamp': '2024-01-01T10:{t}', event.id: e{n}, event.module: "
            f"{module}, event.dataset: {module}.auth, host.name: h1, "
            f"user.name: {json.dumps(user)}, event.outcome: {outcome}}}"
        )

    for t in ("00:10Z", "00:20Z", "00:59.999Z"):  # three in minute 10:00: alert
        ev(t, "admin")
    for t in ("01:00Z", "01:30Z"):  # two in 10:01 (the boundary event belongs here): none
        ev(t, "admin")
    for t in ("02:00Z", "02:01Z", "02:02Z"):  # mixed case: two groups of 2 and 1: none
        ev(t, "administrator" if t != "02:01Z" else "Administrator")
    ev("02:03Z", "administrator", "Failure")  # cased filter: not counted
    for t in ("03:00Z", "03:01Z", "03:02Z"):  # a multi-valued user in both groups: alerts
        ev(t, ["adm1", "adm2"])
    for t in ("04:00Z", "04:01Z", "04:02Z"):  # ZEEK module in any case: the logsource holds
        ev(t, "admin", module="ZEEK")
    return "\n".join(rows)


@pytest.fixture(scope="module")
def threshold_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Loaded, dict[str, Any]]:
    d = tmp_path_factory.mktemp("threshold")
    (d / "t.yml").write_text(THRESHOLD_TEST % _threshold_events())
    cat = load_catalog([d])
    assert not cat.errors, cat.errors
    (lo,) = cat.loaded
    (rule,) = _rules([lo])
    return lo, rule


def _native(lo: Loaded, kind: str) -> dict[str, Any] | None:
    """The native rule export would write for the analytic, whether or not it is chosen."""
    s = sch.derive(lo.analytic)
    build = elastic_native.threshold if kind == "threshold" else elastic_native.new_terms
    native = build(lo.analytic, s, [])
    return None if native is None else elastic._native_rule(lo, s, native)


NATIVE_THRESHOLD = [(lo, r) for lo in LOADED if (r := _native(lo, "threshold"))]


def test_bundled_threshold_rules() -> None:
    """SIEMC-0013's distinct count is Kibana's cardinality, a HyperLogLog++ estimate: the
    native rule is declared mixed, so the exact ES|QL rule ships, and says why."""
    assert {lo.analytic.id for lo, _ in NATIVE_THRESHOLD} >= {"SIEMC-0013"}
    lo, rule = next((lo, r) for lo, r in NATIVE_THRESHOLD if lo.analytic.id == "SIEMC-0013")
    assert rule["threshold"] == {
        "field": ["source.ip", "destination.ip"],
        "value": 1,
        "cardinality": [{"field": "destination.port", "value": 20}],
    }
    assert (rule["interval"], rule["from"], rule["language"]) == ("1m", "now-2m", "lucene")
    assert "network.transport:/[tT][cC][pP]/" in rule["query"]
    assert rule["query"].endswith('@timestamp:["now-1m/m" TO *] AND @timestamp:[* TO "now/m"}')
    assert rule["meta"]["siemc"]["form"] == "native threshold (mixed)"
    assert "HyperLogLog++" in rule["note"]
    (shipped,) = _rules([lo])
    assert shipped["type"] == "esql"
    assert "not a native threshold rule, which is approximate" in shipped["note"]


@pytest.mark.parametrize("phase", [0, 17_000, 59_999])
def test_threshold_runs_give_the_evaluators_alerts(
    phase: int, threshold_case: tuple[Loaded, dict[str, Any]]
) -> None:
    for lo, rule in [*NATIVE_THRESHOLD, threshold_case]:
        for fx in lo.fixtures:
            events = events_or_skip(lo, fx)
            want = evaluator_windows(lo, events, fx.now_ms)
            assert threshold_runs(rule, events, phase) == want, (lo.analytic.id, fx.name)


def test_threshold_case_is_not_vacuous(threshold_case: tuple[Loaded, dict[str, Any]]) -> None:
    lo, rule = threshold_case
    # the logsource's module test is case-insensitive: Lucene; the cased filters are terms
    assert rule["language"] == "lucene"
    assert rule["query"].startswith("event.module:/[zZ][eE][eE][kK]/ AND ")
    assert 'event.outcome:"failure" AND user.name:/adm.*/' in rule["query"]
    events = events_or_skip(lo, lo.fixtures[0])
    keys = sorted(k for k, _, _ in evaluator_windows(lo, events, None))
    assert keys == [
        (("host.name", "h1"), ("user.name", "adm1")),
        (("host.name", "h1"), ("user.name", "adm2")),
        (("host.name", "h1"), ("user.name", "admin")),
        (("host.name", "h1"), ("user.name", "admin")),
    ]


@pytest.mark.parametrize(("having", "exists"), [("attempts >= 3", True), ("attempts >= 0", False)])
def test_count_of_a_field_counts_the_events_that_have_it(
    tmp_path: Path, having: str, exists: bool
) -> None:
    text = (THRESHOLD_TEST % _threshold_events()).replace(
        "attempts: {count: true}", "attempts: {count: source.ip}"
    )
    (tmp_path / "t.yml").write_text(text.replace("having: attempts >= 3", f"having: {having}"))
    (lo,) = load_catalog([tmp_path]).loaded
    rule = _native(lo, "threshold")
    assert rule is not None and rule["meta"]["siemc"]["form"] == "native threshold (exact)"
    assert ("_exists_:source.ip" in rule["query"]) == exists
    assert rule["threshold"]["value"] == (3 if exists else 1)


def test_threshold_mutations_are_caught(threshold_case: tuple[Loaded, dict[str, Any]]) -> None:
    """Without the frame, with `>` for `>=`, or with a case-sensitive logsource, the simulated
    rule no longer gives the evaluator's alerts."""
    lo, rule = threshold_case
    events = events_or_skip(lo, lo.fixtures[0])
    want = evaluator_windows(lo, events, None)
    assert threshold_runs(rule, events, 17_000) == want
    unframed = {**rule, "query": rule["query"].split(" AND @timestamp")[0]}
    assert unframed["query"] != rule["query"]
    assert threshold_runs(unframed, events, 17_000, frame=False) != want
    stricter = {**rule, "threshold": {**rule["threshold"], "value": rule["threshold"]["value"] + 1}}
    assert threshold_runs(stricter, events, 0) != want
    cased = {**rule, "query": rule["query"].replace("/[zZ][eE][eE][kK]/", '"zeek"')}
    assert cased["query"] != rule["query"]
    assert threshold_runs(cased, events, 0) != want


@pytest.mark.parametrize("version", ["8.19", "master"])
def test_native_rules_validate(version: str, threshold_case: tuple[Loaded, dict[str, Any]]) -> None:
    from tests.test_export_elastic import schema_view

    folder = vendor_schemas() / "elastic"
    rules = [r for _, r in NATIVE_THRESHOLD + NEW_TERMS] + [threshold_case[1]]
    for rule in rules:
        schema = json.loads((folder / f"{version}.{rule['type']}.json").read_text())
        jsonschema.validate(schema_view(rule), schema)


# ------------------------------------------------------------------------------ new_terms
NEW_TERMS_TEST = """\
id: TEST-NEW-TERMS
title: A user logs on to a host for the first time in a day
description: native new_terms rule test
severity: low
streams:
  logon:
    logsource: {product: zeek, service: auth}
    where:
      event.outcome|cased: success
      user.name|exists: true
      host.name|exists: true
detect:
  match: logon
baseline:
  - first_seen:
      stream: logon
      keys: [host.name, user.name]
      lookback: 1d
tests:
  - name: history, repeats, a new pair
    kind: positive
    data: synthetic
    events:
%s
    expect:
      - evidence: [h1]
      - evidence: [e2]
      - evidence: [e5]
"""


def _logons() -> str:
    rows = [
        ("2024-01-01T09:00:00Z", "h1", "h1", "alice"),
        ("2024-01-02T08:00:00Z", "e1", "h1", "alice"),
        ("2024-01-02T08:01:00Z", "e2", "h1", "bob"),
        ("2024-01-02T08:02:00Z", "e3", "h1", "bob"),
        ("2024-01-02T08:57:00Z", "e4", "h1", "alice"),
        ("2024-01-02T09:03:00Z", "e5", "h2", "[carol, dave]"),
    ]
    return "\n".join(
        f"      - {{'@timestamp': '{ts}', event.id: {i}, event.module: zeek, "
        f"event.dataset: zeek.auth, host.name: {h}, user.name: {u}, event.outcome: success}}"
        for ts, i, h, u in rows
    )


def new_terms_runs(
    rule: dict[str, Any], events: list[Event], phase_ms: int, *, history_to_run_end: bool = False
) -> set[str]:
    """Kibana's new_terms rule (Elastic docs, "New terms rule": a term is new when it does not
    appear in the history window, from ``history_window_start`` to the rule's ``from``; one
    alert per new term, on the term's first document in the run; each combination of array
    values is a term; a document missing a field has no term): the ids of alerting events."""
    iv = sch.parse_every(rule["interval"])
    back = _ago(rule["from"])
    hist_ms = _ago(rule["history_window_start"])
    match = kuery_interp.parse(rule["language"], rule["query"], TYPES)
    docs = [
        (e, d)
        for ix, e, d in documents(events)
        if kuery_interp.index_matches(ix, rule["index"]) and match(d, 0)
    ]
    if not docs:
        return set()

    def terms(d: dict[str, Any]) -> set[tuple[str, ...]]:
        combos: list[tuple[str, ...]] = [()]
        for f in rule["new_terms_fields"]:
            combos = [(*c, _key_text(v)) for c in combos for v in kuery_interp.values(d, f)]
        return set(combos)

    out: set[str] = set()
    t = (min(e.ts for e, _ in docs) // iv) * iv + phase_ms
    while t <= max(e.ts for e, _ in docs) + 2 * iv:
        start = t - back
        hist_end = t if history_to_run_end else start
        seen = {x for e, d in docs if t - hist_ms <= e.ts < hist_end for x in terms(d)}
        fired: set[tuple[str, ...]] = set()
        for e, d in sorted(((e, d) for e, d in docs if start <= e.ts <= t), key=lambda x: x[0].ts):
            new = terms(d) - seen - fired
            if new:
                out.add(e.id)
                fired |= new
        t += iv
    return out


NEW_TERMS = [(lo, r) for lo in LOADED if (r := _native(lo, "new_terms"))]


@pytest.fixture(scope="module")
def new_terms_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Loaded, dict[str, Any]]:
    d = tmp_path_factory.mktemp("new_terms")
    (d / "t.yml").write_text(NEW_TERMS_TEST % _logons())
    (lo,) = load_catalog([d]).loaded
    rule = _native(lo, "new_terms")
    assert rule is not None
    return lo, rule


def test_new_terms_rule_shape(new_terms_case: tuple[Loaded, dict[str, Any]]) -> None:
    lo, rule = new_terms_case
    assert rule["type"] == "new_terms" and rule["language"] == "lucene"
    assert rule["new_terms_fields"] == ["host.name", "user.name"]
    assert (rule["history_window_start"], rule["interval"], rule["from"]) == (
        "now-1d",
        "5m",
        "now-5m",
    )
    assert rule["meta"]["siemc"]["form"] == "native new_terms (superset)"
    assert "Approximations" in rule["note"]
    # The package prefers an exact rule: ES|QL decides this first_seen exactly.
    assert [r["type"] for r in _rules([lo], allow=False)] == ["esql"]


@pytest.mark.parametrize("phase", [0, 60_000, 299_999])
def test_new_terms_runs_are_a_superset(
    phase: int, new_terms_case: tuple[Loaded, dict[str, Any]]
) -> None:
    for lo, rule in [new_terms_case, *NEW_TERMS]:
        for fx in lo.fixtures:
            events = events_or_skip(lo, fx)
            want = {al.evidence[0] for al in evaluate(lo.analytic, events, fx.now_ms)}
            got = new_terms_runs(rule, events, phase)
            if rule["meta"]["siemc"]["form"].endswith("(superset)"):
                assert want <= got, (lo.analytic.id, fx.name, want - got)
    # the differential catalogs' candidates whose fields the filter does not require
    assert {lo.analytic.id: r["meta"]["siemc"]["form"] for lo, r in NEW_TERMS} == {
        "D-EQL-17": "native new_terms (mixed)",
        "D-SPL-F1": "native new_terms (mixed)",
    }


def test_new_terms_case_and_its_inexactness(new_terms_case: tuple[Loaded, dict[str, Any]]) -> None:
    """The rule is a superset, not exact: with alice's earlier logon at 08:02 the day before,
    siemc's history of e1 (08:00) holds it, but the run that reads e1 at the start of its
    range (08:00-08:05) looks back from 08:05 the day before, and raises e1 again."""
    lo, rule = new_terms_case
    events = events_or_skip(lo, lo.fixtures[0])
    want = {al.evidence[0] for al in evaluate(lo.analytic, events, None)}
    assert want == {"h1", "e2", "e5"}
    assert new_terms_runs(rule, events, 0) == want
    # The mutation: a history that reaches the run's end sees each run's own terms: misses.
    assert not want <= new_terms_runs(rule, events, 0, history_to_run_end=True)
    shifted = [
        e if e.id != "h1" else Event(e.ts - 58 * sch.MINUTE, e.seq, e.id, e.fields) for e in events
    ]
    siemc = {al.evidence[0] for al in evaluate(lo.analytic, shifted, None)}
    kibana = new_terms_runs(rule, shifted, 0)
    assert siemc == want and kibana - siemc == {"e1"}
