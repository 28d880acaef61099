"""The Sigma backend: catalog outcomes, pySigma 2.0.1's loader and pySigma-backend-sqlite 2.1.1
on every emitted file, a table of IR -> Sigma text cases, and hostile literal values executed
by the sqlite backend's SQL on an in-memory table.

Engine caveat: SQLite's LIKE folds ASCII case only, so the executed checks test literal
matching (wildcards, escapes, quotes), never case folding; the case rules are pinned by the
expected texts (`|cased`, `|re|i`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path
from typing import Any, Literal

import pytest
import re2  # type: ignore[import-untyped]
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import get_backend
from backends.base import NODE_TYPES, Artifact, CompileError, overall_direction
from backends.sigma import SigmaBackend
from backends.sigma.fields import NUMERIC_COMPARISON, placeholder_name, sigma_string
from backends.sigma.inline import LOOKUP_ROW_LIMIT
from backends.sigma.regex import basename_exact, sigma_regex
from compiler import ir
from compiler.discover import load_catalog
from compiler.evaluator.values import call
from compiler.lower import load_file
from tests.oracles.sigma_oracle import load, run, to_sqlite, validate

ROOT = Path(__file__).resolve().parent.parent
BACKEND = SigmaBackend()
SPAN = ir.Span("t.yml", 3, 5)

# ---------------------------------------------------------------------------- catalog
# analytic -> the direction of its Sigma translation (None: exact)
COMPILED = {
    # lookups, enrichment and registered_domain() inlined; baseline and until dropped; the
    # sequence as temporal: a superset
    "AN1190": "superset",
    # the join as a temporal pair the detection's correlation references (chained)
    "SIEMC-0005": "superset",
    "SIEMC-0006": "superset",  # co-occurrence -> temporal
    "SIEMC-0007": "mixed",  # distinct-count threshold -> value_count
    "SIEMC-0009": "mixed",  # absence -> temporal with pySigma's `not`; keyed by path
    "SIEMC-0012": None,  # enrichment and the two-column lookup inlined: exact
    # Sysmon network connections for the flows, without bytes: byte measures dropped, the join
    # as the start's filter on the flow's own Image, grouped by host and ProcessGuid
    "AN1511": "superset",
    # the deployable forms (docs/catalog.md): tumbling windows as sliding timespans, the
    # first-seen baseline dropped, sequences as temporal
    "SIEMC-0013": "mixed",  # value_count leaves value comparison to the backend
    "SIEMC-0014": "superset",
    "SIEMC-0015": "superset",
    "SIEMC-0016": "superset",
    "SIEMC-0017": "superset",
    # a counted step as an event_count the sequence's temporal correlation reads (chained)
    "SIEMC-0018": "superset",
}
COMPILED_APPROXIMATE = {k for k, v in COMPILED.items() if v is not None}
UNSUPPORTED = {
    "SIEMC-0003",  # join, coalesce derive, min/max/stdev, ratio
    "SIEMC-0004",  # extract_ips derive
    # a key Sigma cannot compute, over a sliding window: it consumes its events per group, so
    # a coarser group fires in other windows than the finer one (backends.relax.coarser_keys)
    "SIEMC-0008",  # registered_domain key
    "SIEMC-0010",  # enriched and registered_domain keys
}
UNMAPPED = {"SIEMC-0011"}  # a generic flow logsource: Sigma has no source with byte counts


def _catalog() -> list[ir.Analytic]:
    return [x.analytic for x in load_catalog([ROOT / "analytics"]).loaded]


def test_backend_is_registered() -> None:
    assert isinstance(get_backend("sigma"), SigmaBackend)
    assert set(SigmaBackend.SUPPORT) == set(NODE_TYPES)


def test_catalog_outcomes() -> None:
    compiled: set[str] = set()
    failed: set[str] = set()
    for a in _catalog():
        try:
            art = BACKEND.compile(a, allow_approximate=True)
        except CompileError as exc:
            failed.add(a.id)
            for d in exc.diagnostics:
                assert d.code in {"E200", "E201", "E210", "E211"}, d.headline()
                assert "sigma" in d.message, d.headline()
                assert d.help, d.headline()
            if a.id in UNSUPPORTED:
                assert all(d.code == "E200" for d in exc.diagnostics), exc
            continue
        compiled.add(a.id)
        assert overall_direction(art.approximations) == COMPILED[a.id], a.id
    assert compiled == set(COMPILED)
    assert failed == UNSUPPORTED | UNMAPPED


@pytest.mark.parametrize(
    "analytic",
    [a for a in _catalog() if a.id in COMPILED_APPROXIMATE],
    ids=lambda a: a.id,
)
def test_catalog_passes_pysigma_and_sqlite(analytic: ir.Analytic) -> None:
    art = BACKEND.compile(analytic, allow_approximate=True)
    assert validate(art.text) == []
    assert validate(art.query) == []
    assert to_sqlite(art.text)


def test_without_allow_approximate_correlations_raise_e202() -> None:
    by_id = {a.id: a for a in _catalog()}
    for aid in COMPILED_APPROXIMATE:
        with pytest.raises(CompileError) as exc:
            BACKEND.compile(by_id[aid])
        assert [d.code for d in exc.value.diagnostics] == ["E202"]


def test_errors_name_the_construct_span_and_alternative() -> None:
    by_id = {a.id: a for a in _catalog()}
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(by_id["SIEMC-0003"], allow_approximate=True)
    join = [d for d in exc.value.diagnostics if "stream join" in d.message]
    assert join and join[0].line == 45
    assert "only a sequence or co-occurrence step over a join" in join[0].message
    assert "kql" in (join[0].help or "")


def test_supersets_compile_with_allow_superset_only() -> None:
    by_id = {a.id: a for a in _catalog()}
    art = BACKEND.compile(by_id["AN1190"], allow_superset=True)
    assert {a.direction for a in art.approximations} == {"superset"}
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(by_id["SIEMC-0007"], allow_superset=True)
    assert {d.code for d in exc.value.diagnostics} == {"E202"}


# ---------------------------------------------------------------------------- IR helpers
META = ir.Metadata(
    "Test rule", "A test.", ("AN0001",), ("T1059.001",), ("windows",), "high", "me", (), ()
)


PROC = ir.LogSource("process_creation", "windows")


def stream(
    name: str,
    where: ir.Predicate = ir.TRUE,
    ls: ir.LogSource | str = PROC,
    derive: tuple[tuple[str, ir.Expr], ...] = (),
) -> ir.Stream:
    return ir.Stream(name, ls, None, (), derive, where, SPAN)


LOOKUP = ir.Lookup("approved", "/x/lookups/approved.csv", ("domain",), (("a*b.com",),))


def analytic(
    streams: list[ir.Stream], det: ir.Detection | None = None, *, aid: str = "T-1"
) -> ir.Analytic:
    return ir.Analytic(
        aid,
        "t.yml",
        META,
        (LOOKUP,),
        tuple(streams),
        det or ir.Match(streams[0].name, SPAN),
        (),
        SPAN,
    )


def compile_(a: ir.Analytic, approx: bool = True) -> Artifact:
    art = BACKEND.compile(a, allow_approximate=approx)
    assert validate(art.text) == [], art.text
    return art


def detection_of(where: ir.Predicate, ls: ir.LogSource | None = None) -> dict[str, Any]:
    s = stream("s", where, ls or ir.LogSource("process_creation", "windows"))
    art = compile_(analytic([s]))
    doc = next(yaml.safe_load_all(art.text))
    det: dict[str, Any] = doc["detection"]
    return det


def errors(a: ir.Analytic, approx: bool = True) -> list[tuple[str, str]]:
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(a, allow_approximate=approx)
    return [(d.code, d.message + " | " + (d.help or "")) for d in exc.value.diagnostics]


# ---------------------------------------------------------------------------- the table
NET = ir.LogSource("network_connection", "windows")
ZEEK = ir.LogSource("network_flow", "zeek", "conn")
CASES: list[tuple[str, ir.Predicate, ir.LogSource | None, dict[str, Any]]] = [
    (
        "name in a path field: endswith the separator + name, or the bare name (a source that "
        "logs no path), case-insensitive",
        ir.Eq("process.name", ("powershell.exe", "pwsh.exe")),
        None,
        {
            "selection": [
                {"Image|endswith": ["\\powershell.exe", "\\pwsh.exe"]},
                {"Image": ["powershell.exe", "pwsh.exe"]},
            ],
            "condition": "selection",
        },
    ),
    (
        "cased equality keeps |cased",
        ir.Eq("process.command_line", ("A",), cased=True),
        None,
        {"selection": {"CommandLine|cased": "A"}, "condition": "selection"},
    ),
    (
        "wildcards and backslashes are escaped",
        ir.Eq("process.command_line", ("a*b?c\\*",)),
        None,
        {"selection": {"CommandLine": "a\\*b\\?c\\\\\\*"}, "condition": "selection"},
    ),
    (
        "contains|all",
        ir.StrMatch("process.command_line", "contains", ("a", "b"), quantifier="all"),
        None,
        {"selection": {"CommandLine|contains|all": ["a", "b"]}, "condition": "selection"},
    ),
    (
        "|all on one value is plain (the spec forbids single-value |all)",
        ir.StrMatch("process.command_line", "contains", ("a",), quantifier="all"),
        None,
        {"selection": {"CommandLine|contains": "a"}, "condition": "selection"},
    ),
    (
        "startswith on a name in a path: an anchored case-insensitive regex",
        ir.StrMatch("process.name", "startswith", ("py",)),
        None,
        {"selection": {"Image|re|i": "(?:^|[\\\\])py[^\\\\]*$"}, "condition": "selection"},
    ),
    (
        "regex: |re|i by default (Sigma re is case-sensitive), |re when cased",
        ir.Or(
            (
                ir.Regex("process.command_line", ("^a.b$",)),
                ir.Regex("user.name", ("x",), cased=True),
            )
        ),
        None,
        {"selection": [{"CommandLine|re|i": "^a.b$"}, {"User|re": "x"}], "condition": "selection"},
    ),
    (
        "numeric comparison, existence and null",
        ir.And(
            (
                ir.Compare("destination.port", "gte", 1024.0),
                ir.Exists("destination.domain", False),
                ir.Eq("source.port", (None,)),
            )
        ),
        NET,
        {
            "selection": {
                "DestinationPort|gte": 1024,
                "DestinationHostname|exists": False,
                "SourcePort": None,
            },
            "condition": "selection",
        },
    ),
    (
        "cidr with host bits means its network",
        ir.Cidr("destination.ip", ("10.1.2.3/8", "fc00::/7")),
        NET,
        {"selection": {"DestinationIp|cidr": ["10.0.0.0/8", "fc00::/7"]}, "condition": "selection"},
    ),
    (
        "not: a filter selection (plain negation, holds on a missing field)",
        ir.And(
            (
                ir.Eq("network.direction", ("egress",)),
                ir.Not(ir.Cidr("destination.ip", ("10.0.0.0/8",))),
            )
        ),
        NET,
        {
            "selection": {"Initiated": "true"},
            "filter": {"DestinationIp|cidr": "10.0.0.0/8"},
            "condition": "selection and not filter",
        },
    ),
    (
        "or of ands: a list of maps",
        ir.Or(
            (
                ir.And(
                    (
                        ir.Eq("process.executable", ("/bin/cat",)),
                        ir.StrMatch("process.command_line", "endswith", ("/etc/passwd",)),
                    )
                ),
                ir.Eq("process.executable", ("/usr/bin/id",)),
            )
        ),
        ir.LogSource("process_creation", "linux"),
        {
            "selection": [
                {"Image": "/bin/cat", "CommandLine|endswith": "/etc/passwd"},
                {"Image": "/usr/bin/id"},
            ],
            "condition": "selection",
        },
    ),
    (
        "nested not/or: parenthesised selections",
        ir.Not(
            ir.Or(
                (
                    ir.Eq("process.command_line", ("a",)),
                    ir.And(
                        (
                            ir.Eq("user.name", ("b",), cased=True),
                            ir.Not(ir.Exists("process.parent.executable")),
                        )
                    ),
                )
            )
        ),
        ir.LogSource("process_creation", "linux"),
        {
            "filter": {"CommandLine": "a"},
            "filter_2": {"User|cased": "b"},
            "selection": {"ParentImage|exists": True},
            "condition": "not (filter or (filter_2 and not selection))",
        },
    ),
    (
        "one-column lookup: its rows inlined as values, wildcards escaped",
        ir.InLookup("approved", (("domain", "destination.domain"),)),
        NET,
        {"selection": {"DestinationHostname": "a\\*b.com"}, "condition": "selection"},
    ),
    (
        "zeek field names and a zeek.conn.* prefix",
        ir.And(
            (
                ir.Eq("zeek.conn.conn_state", ("S0",), cased=True),
                ir.Compare("source.bytes", "gt", 1e6),
            )
        ),
        ZEEK,
        {
            "selection": {"conn_state|cased": "S0", "orig_ip_bytes|gt": 1000000},
            "condition": "selection",
        },
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_translation_table(case: tuple[str, ir.Predicate, ir.LogSource | None, Any]) -> None:
    _, where, ls, expected = case
    assert detection_of(where, ls) == expected


def test_logsource_and_metadata() -> None:
    art = compile_(analytic([stream("s", ir.Eq("process.name", ("a",)))]))
    doc = next(yaml.safe_load_all(art.text))
    assert doc["logsource"] == {"category": "process_creation", "product": "windows"}
    assert doc["tags"] == ["attack.t1059.001"]
    assert doc["level"] == "high" and doc["status"] == "experimental"
    assert doc["name"] == "t_1_s"
    zeek = compile_(analytic([stream("z", ir.Eq("network.transport", ("tcp",)), ZEEK)]))
    assert next(yaml.safe_load_all(zeek.text))["logsource"] == {
        "product": "zeek",
        "service": "conn",
    }
    # deterministic: same text twice, ids are uuid5 of analytic id + stream
    assert compile_(analytic([stream("s", ir.Eq("process.name", ("a",)))])).text == art.text


def test_big_lookup_is_a_placeholder_with_note_and_sqlite_binding() -> None:
    where = ir.InLookup("approved", (("domain", "destination.domain"),))
    cells = (("a*b.com",), *((f"d{i}.example",) for i in range(LOOKUP_ROW_LIMIT)))
    big = ir.Lookup("approved", "/x/lookups/approved.csv", ("domain",), cells)
    art = compile_(dataclasses.replace(analytic([stream("s", where, NET)]), lookups=(big,)))
    assert "# NOTE placeholder %approved_domain%" in art.text
    rows = [
        {"DestinationHostname": "A*B.com", "timestamp": "2024-01-01T00:00:00Z"},
        {"DestinationHostname": "axxb.com", "timestamp": "2024-01-01T00:00:00Z"},
    ]
    res = run(art.text, rows, {placeholder_name("approved", "domain"): [sigma_string("a*b.com")]})
    assert [r["DestinationHostname"] for r in res[0]] == ["A*B.com"]


def test_field_errors() -> None:
    bytes_on_sysmon = analytic([stream("s", ir.Compare("source.bytes", "gt", 1.0, SPAN), NET)])
    [(code, msg)] = errors(bytes_on_sysmon)
    assert code == "E211" and "zeek" in msg.lower() and "no byte" in msg  # no byte counts in Sysmon
    flow = analytic(
        [
            stream(
                "s", ir.Compare("source.bytes", "gt", 1.0), ir.LogSource("network_flow", "windows")
            )
        ]
    )
    [(code, msg)] = errors(flow)
    assert code == "E211" and "zeek" in msg
    direction = analytic([stream("s", ir.Eq("network.direction", ("sideways",)), NET)])
    [(code, msg)] = errors(direction)
    assert code == "E210" and "egress" in msg
    unknown = analytic([stream("s", ir.Eq("foo.bar", ("x",)))])
    [(code, msg)] = errors(unknown)
    assert code == "E210" and "foo.bar" in msg and "sigma" in msg


def test_derive_case_only_is_dropped_else_unsupported() -> None:
    lower = (("process.name", ir.Call("lower", (ir.FieldRef("process.name"),))),)
    ok = analytic([stream("s", ir.Eq("process.name", ("a.exe",)), derive=lower)])
    assert "Image|endswith" in compile_(ok).text
    cased = analytic([stream("s", ir.Eq("process.name", ("a.exe",), cased=True), derive=lower)])
    [(code, msg)] = errors(cased)
    assert code == "E200" and "derived field 'process.name'" in msg


# ---------------------------------------------------------------------------- correlations
def _corr(art: Artifact) -> dict[str, Any]:
    docs = list(yaml.safe_load_all(art.text))
    corr: dict[str, Any] = docs[-1]["correlation"]
    return corr


def test_sequence_with_per_step_keys_uses_aliases() -> None:
    a = stream("a", ir.Eq("process.name", ("bash",)), ir.LogSource("process_creation", "linux"))
    b = stream("b", ir.Eq("network.direction", ("egress",)), NET)
    seq = ir.Sequence(
        (
            ir.Step("x", "a", ("host.name", "process.entity_id"), SPAN),
            ir.Step("y", "b", ("host.name", "process.pid"), SPAN),
        ),
        300_000,
        None,
        SPAN,
    )
    art = compile_(analytic([a, b], seq))
    assert _corr(art) == {
        "type": "temporal",
        "rules": ["t_1_a", "t_1_b"],
        "group-by": ["Computer", "process_entity_id"],
        "aliases": {"process_entity_id": {"t_1_a": "ProcessGuid", "t_1_b": "ProcessId"}},
        "timespan": "5m",
    }
    assert "APPROXIMATION, superset" in art.text and "temporal_ordered leaves" in art.text
    load(art.text)
    assert to_sqlite(art.text)


def test_repeated_stream_gets_one_rule_per_step() -> None:
    a = stream("a", ir.Eq("process.name", ("bash",)))
    seq = ir.Sequence(
        (ir.Step("p", "a", ("host.name",), SPAN), ir.Step("q", "a", ("host.name",), SPAN)),
        30_000,
        None,
        SPAN,
    )
    art = compile_(analytic([a], seq))
    assert _corr(art)["rules"] == ["t_1_a_p", "t_1_a_q"]
    assert to_sqlite(art.text)


def test_until_is_dropped_as_a_superset() -> None:
    a = stream("a", ir.Eq("process.name", ("bash",)))
    b = stream("b", ir.Eq("process.name", ("sh",)))
    until = ir.Sequence(
        (ir.Step("p", "a", ("host.name",), SPAN), ir.Step("q", "a", ("host.name",), SPAN)),
        1000,
        ir.Step("u", "b", ("host.name",), SPAN),
        SPAN,
    )
    with pytest.raises(CompileError):
        BACKEND.compile(analytic([a, b], until))  # a superset needs --allow-superset
    art = BACKEND.compile(analytic([a, b], until), allow_superset=True)
    assert [x.construct for x in art.approximations][:1] == ["sequence `until`"]
    assert "t_1_b" not in art.text  # the cancelling stream is not read any more


def test_absence_uses_the_extended_condition_and_says_so() -> None:
    a = stream("a", ir.Eq("process.name", ("bash",)))
    b = stream("b", ir.Eq("process.name", ("sh",)))
    absence = ir.Absence(
        ir.Step("p", "a", ("host.name",), SPAN),
        ir.Step("q", "b", ("host.name",), SPAN),
        60_000,
        SPAN,
    )
    art = compile_(analytic([a, b], absence))
    corr = _corr(art)
    assert corr["type"] == "temporal" and corr["condition"] == "t_1_a and not t_1_b"
    assert "# NOTE the correlation condition 't_1_a and not t_1_b' is a pySigma extension" in (
        art.text
    )
    assert "not part of the Sigma correlation specification v2.1.0" in art.text
    assert to_sqlite(art.text)


def test_subsecond_windows_are_unsupported() -> None:
    a = stream("a", ir.Eq("process.name", ("bash",)))
    co = ir.Cooccurrence((ir.Step("p", "a", ("host.name",), SPAN),), 1500, SPAN)
    [(code, msg)] = errors(analytic([a], co))
    assert code == "E200" and "whole number of seconds" in msg


def _agg(
    measures: tuple[ir.Measure, ...],
    having: ir.Expr | None,
    kind: str = "sliding",
    compute: tuple[tuple[str, ir.Expr], ...] = (),
) -> ir.Analytic:
    z = stream("z", ir.Eq("network.transport", ("tcp",)), ZEEK)
    det = ir.Aggregate(
        "z",
        ir.Window(kind, 3_600_000, SPAN),  # type: ignore[arg-type]
        ("source.ip",),
        measures,
        compute,
        having,
        span=SPAN,
    )
    return analytic([z], det)


def _ge(m: str, v: float) -> ir.Expr:
    return ir.BinOp(">=", ir.MeasureRef(m), ir.Literal_(v))


@pytest.mark.parametrize(
    ("measure", "expected"),
    [
        (ir.Measure("n", "count", None), {"type": "event_count", "condition": {"gte": 5}}),
        (
            ir.Measure("n", "distinct", "destination.port"),
            {"type": "value_count", "condition": {"field": "id.resp_p", "gte": 5}},
        ),
        (
            ir.Measure("n", "sum", "source.bytes"),
            {"type": "value_sum", "condition": {"field": "orig_ip_bytes", "gte": 5}},
        ),
        (
            ir.Measure("n", "avg", "source.bytes"),
            {"type": "value_avg", "condition": {"field": "orig_ip_bytes", "gte": 5}},
        ),
        (
            ir.Measure("n", "percentile", "source.bytes", 95.0),
            {
                "type": "value_percentile",
                "condition": {"field": "orig_ip_bytes", "gte": 5, "percentile": 95},
            },
        ),
    ],
    ids=lambda x: x.kind if isinstance(x, ir.Measure) else "",
)
def test_aggregate_types(measure: ir.Measure, expected: dict[str, Any]) -> None:
    art = compile_(_agg((measure,), _ge("n", 5)))
    corr = _corr(art)
    assert {k: corr[k] for k in ("type", "condition")} == expected
    assert corr["group-by"] == ["id.orig_h"] and corr["timespan"] == "1h"
    assert to_sqlite(art.text)


def test_aggregate_mirrored_having_tumbling_note_and_count_field() -> None:
    having = ir.BinOp("<", ir.Literal_(10), ir.MeasureRef("n"))
    art = compile_(_agg((ir.Measure("n", "count", "source.bytes"),), having, "tumbling"))
    assert _corr(art)["condition"] == {"gt": 10}
    assert "orig_ip_bytes|exists: true" in art.text
    assert "tumbling buckets aligned to the Unix epoch" in art.text


def test_aggregate_unsupported_shapes() -> None:
    two = (ir.Measure("a", "sum", "source.bytes"), ir.Measure("b", "sum", "destination.bytes"))
    ratio = (("r", ir.BinOp("/", ir.MeasureRef("a"), ir.MeasureRef("b"))),)
    msgs = errors(_agg(two, _ge("r", 10), compute=ratio))
    assert {c for c, _ in msgs} == {"E200"}
    assert any("a `having` that is a conjunction with a `>=`/`>` threshold" in m for _, m in msgs)
    [(_, msg)] = errors(_agg((ir.Measure("m", "max", "source.bytes"),), _ge("m", 1)))
    assert "no min, max or stdev" in msg
    band = ir.BinOp("<", ir.MeasureRef("n"), ir.Literal_(5))
    [(_, msg)] = errors(_agg((ir.Measure("n", "count", None),), ir.BinOp("and", band, band)))
    assert "one comparison" in msg


def test_ratio_and_extra_measures_relax_to_the_one_threshold() -> None:
    """AN1511's shape: `ratio >= 6 and out >= 6MB` keeps value_sum(out) >= 6MB, a superset."""
    two = (ir.Measure("a", "sum", "source.bytes"), ir.Measure("b", "sum", "destination.bytes"))
    ratio = (("r", ir.BinOp("/", ir.MeasureRef("a"), ir.MeasureRef("b"))),)
    having = ir.BinOp("and", _ge("r", 6), _ge("a", 6_000_000))
    art = compile_(_agg(two, having, "tumbling", compute=ratio))
    assert _corr(art)["type"] == "value_sum"
    assert _corr(art)["condition"] == {"field": "orig_ip_bytes", "gte": 6000000}
    assert overall_direction(art.approximations) == "superset"
    dropped = {a.construct for a in art.approximations}
    assert {"having condition", "measures", "tumbling window aggregation"} <= dropped


# ---------------------------------------------------------------------------- hostile values
HOSTILE = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=12,
) | st.sampled_from(["*", "?", "\\", "\\*", "a\\", "'", '"', "%", "_", "|", "\n", "ü", "\\\\?"])


def _run_one(where: ir.Predicate, values: list[str]) -> list[str]:
    art = compile_(analytic([stream("s", where)]))
    rows = [{"CommandLine": v, "timestamp": "2024-01-01T00:00:00Z"} for v in values]
    [result] = run(art.text, rows)
    return [r["CommandLine"] for r in result]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE)
def test_hostile_equality_matches_exactly_the_literal(value: str) -> None:
    decoy = "x" + value
    got = _run_one(ir.Eq("process.command_line", (value,)), [value, decoy])
    assert got == [value]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE, st.sampled_from(["contains", "startswith", "endswith"]))
def test_hostile_substrings_match_exactly_the_literal(value: str, op: str) -> None:
    inside = {"contains": f"<{value}>", "startswith": f"{value}>", "endswith": f"<{value}"}[op]
    # a decoy where every character of the value is replaced (by one the value does not
    # hold, else '#' would match a value of '#'s): wildcards must not match it
    fill = next(c for c in "#~@%&=ABCDEFGH" if c not in value)  # more than 12 candidates
    decoy = {"contains": "<", "startswith": "", "endswith": "<"}[op] + fill * len(value)
    got = _run_one(ir.StrMatch("process.command_line", op, (value,)), [inside, decoy])  # type: ignore[arg-type]
    assert got == [inside]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(HOSTILE, st.sampled_from(["eq", "startswith", "contains", "endswith", "lookup"]))
def test_hostile_values_pass_the_validator(value: str, op: str) -> None:
    where: ir.Predicate
    if op == "eq":
        where = ir.Eq("process.name", (value,))
    elif op == "lookup":
        where = ir.InLookup("approved", (("domain", "process.command_line"),))
    else:
        where = ir.StrMatch("process.name", op, (value,))  # type: ignore[arg-type]
    art = compile_(analytic([stream("s", where)]))
    assert to_sqlite(art.text, {"approved_domain": [sigma_string(value)]})


SECURITY = ir.LogSource(None, "windows", "security")


@pytest.mark.parametrize(
    "where",
    [
        ir.Compare("winlog.event_data.LogonType", "gte", 1024.0, SPAN),
        ir.Eq("winlog.event_data.LogonType", (4444,), span=SPAN),
        # a numeric string is a number in siemc
        ir.Eq("winlog.event_data.LogonType", ("4444",), span=SPAN),
    ],
    ids=["compare", "eq-number", "eq-numeric-string"],
)
def test_comparisons_with_numbers_declare_the_stored_type_approximation(
    where: ir.Predicate,
) -> None:
    # Sigma backends (pySigma's SQLite) compare stored types: a port logged as the string "1050"
    # is not >= 1024 and "4444" != 4444, while siemc reads numeric strings as numbers.
    a = analytic([stream("s", where, SECURITY)])
    assert errors(a, approx=False)[0][0] == "E202"
    art = compile_(a)
    (ap,) = art.approximations
    assert ap.construct == NUMERIC_COMPARISON
    assert "LogonType (LogonType)" in ap.detail and "'1050'" in ap.detail
    assert f"# APPROXIMATION, mixed (t.yml:3:5) {NUMERIC_COMPARISON}: " in art.text


def test_numbers_on_fields_the_source_logs_as_numbers_are_exact() -> None:
    """Sysmon's schema types ports as integers, the Security log EventID too."""
    port = ir.And(
        (ir.Compare("destination.port", "gte", 1024.0), ir.Eq("destination.port", (443,)))
    )
    assert compile_(analytic([stream("s", port, NET)]), approx=False).approximations == ()
    logon = ir.Eq("event.code", ("4624",))
    art = compile_(analytic([stream("s", logon, SECURITY)]), approx=False)
    assert next(yaml.safe_load_all(art.text))["logsource"] == {
        "product": "windows",
        "service": "security",
    }
    assert "EventID: '4624'" in art.text or "EventID: 4624" in art.text


def test_equality_with_strings_only_stays_exact() -> None:
    art = compile_(analytic([stream("s", ir.Eq("destination.domain", ("a.example", "b1")), NET)]))
    assert art.approximations == ()


# --------------------------------------------------------------------------- multi-valued fields
ZEEK_DNS = ir.LogSource(None, "zeek", "dns")


def test_tests_keys_and_measures_on_array_fields_are_declared() -> None:
    """Sigma leaves list matching to the backend: every filter, key and measure on an ECS array
    field is a declared approximation; exists is not (an empty list is missing everywhere)."""
    s = stream("s", ir.Eq("dns.resolved_ip", ("10.0.0.5",)), ZEEK_DNS)
    with pytest.raises(CompileError, match="approximat"):
        BACKEND.compile(analytic([s]), allow_approximate=False)
    constructs = {a.construct for a in compile_(analytic([s])).approximations}
    assert constructs == {"filter on the multi-valued field dns.resolved_ip"}
    listed = stream("s", ir.InLookup("approved", (("domain", "dns.resolved_ip"),)), ZEEK_DNS)
    constructs = {a.construct for a in compile_(analytic([listed])).approximations}
    assert constructs == {"filter on the multi-valued field dns.resolved_ip"}
    present = stream("s", ir.Exists("dns.resolved_ip"), ZEEK_DNS)
    assert compile_(analytic([present]), approx=False).approximations == ()
    agg = ir.Aggregate(
        "s",
        ir.Window("sliding", 60_000),
        ("dns.resolved_ip",),
        (ir.Measure("n", "distinct", "dns.resolved_ip"),),
        (),
        ir.BinOp(">=", ir.MeasureRef("n"), ir.Literal_(2)),
        origin="value_count",
        span=SPAN,
    )
    got = {a.construct for a in compile_(analytic([stream("s", ls=ZEEK_DNS)], agg)).approximations}
    assert {
        "group-by key on the multi-valued field dns.resolved_ip",
        "distinct measure on the multi-valued field dns.resolved_ip",
    } <= got


# --------------------------------------------------------------------------- joins (chained)
def _joined(direction: str = "before", where: ir.Predicate = ir.TRUE) -> ir.Analytic:
    linux = ir.LogSource("process_creation", "linux")
    shell = stream("shell", ir.Eq("process.name", ("bash",)), linux)
    proc = stream("proc", ls=linux)
    conn = stream("conn", ls=ir.LogSource("network_connection", "linux"))
    join = ir.Join(
        "proc",
        ("host.name", "process.entity_id"),
        3_600_000,
        direction,  # type: ignore[arg-type]
        ("process.parent.entity_id",),
        SPAN,
    )
    child = ir.Stream("child", "conn", join, (), (), where, SPAN)
    seq = ir.Sequence(
        (
            ir.Step("s", "shell", ("host.name", "process.entity_id"), SPAN),
            ir.Step("c", "child", ("host.name", "process.parent.entity_id"), SPAN),
        ),
        60_000,
        None,
        SPAN,
    )
    return analytic([shell, proc, conn, child], seq)


def test_a_step_over_a_join_is_a_chained_correlation() -> None:
    art = compile_(_joined())
    docs = list(yaml.safe_load_all(art.text))
    inner = next(d for d in docs if d.get("name") == "t_1_child")
    assert inner["correlation"]["type"] == "temporal"
    assert inner["correlation"]["rules"] == ["t_1_child_event", "t_1_child_proc"]
    assert inner["correlation"]["timespan"] == "1h"
    outer = docs[-1]["correlation"]
    assert outer["rules"] == ["t_1_shell", "t_1_child"]
    # the joined key is read from the partner's rule (ParentProcessGuid of the process start)
    assert outer["aliases"] == {
        "process_entity_id": {"t_1_shell": "ProcessGuid", "t_1_child": "ParentProcessGuid"}
    }
    assert "stream join" in {a.construct for a in art.approximations}
    assert overall_direction(art.approximations) == "superset"
    assert to_sqlite(art.text)


def test_joins_the_chain_cannot_say_are_refused() -> None:
    [(code, msg)] = errors(_joined("after"))
    assert code == "E200" and "direction after" in msg
    on_added = ir.Eq("process.parent.entity_id", ("x",))
    [(code, msg)] = errors(_joined(where=on_added))
    assert code == "E200" and "a test on a joined field (process.parent.entity_id)" in msg


# --------------------------------------------------------------------------- inlining
DOMAIN_TEXT = st.text(st.sampled_from(list("ab.- \t\nLIVEcom")), max_size=6)


@functools.cache
def _live_com_pattern() -> str:
    """registered_domain(lower(x)) == 'live.com', as the backend inlines it."""
    where = ir.Eq("destination.registered_domain", ("live.com",))
    derive = (
        (
            "destination.registered_domain",
            ir.Call("registered_domain", (ir.Call("lower", (ir.FieldRef("destination.domain"),)),)),
        ),
    )
    art = compile_(analytic([stream("s", where, NET, derive)]), approx=False)
    [pattern] = next(yaml.safe_load_all(art.text))["detection"]["selection"].values()
    return str(pattern)


@settings(max_examples=300, deadline=None)
@given(
    DOMAIN_TEXT,
    st.sampled_from(["live.com", "LIVE.com", "x.live.com", "live.net", ""]),
    DOMAIN_TEXT,
)
def test_inlined_registered_domain_test_agrees_with_the_evaluator(
    before: str, name: str, after: str
) -> None:
    """The inlined regular expression gives the evaluator's Public Suffix List answer on
    blanks, dots, case and empty labels."""
    value = before + name + after
    want = call("registered_domain", [value]) == "live.com"
    got = re.search(_live_com_pattern(), value, re.IGNORECASE) is not None
    assert got == want, (value, _live_com_pattern())


def test_registered_domain_with_public_suffixes_below_excludes_them() -> None:
    """fastly.net has PSL suffixes below it (a.prod.fastly.net ...): the names under them are
    excluded, so the test stays exact; amazonaws.com has hundreds, which stay a declared
    superset (flipped under a negation)."""
    derive = (
        (
            "destination.registered_domain",
            ir.Call("registered_domain", (ir.FieldRef("destination.domain"),)),
        ),
    )
    where = ir.Eq("destination.registered_domain", ("fastly.net",))
    art = compile_(analytic([stream("s", where, NET, derive)]), approx=False)
    assert not art.approximations and "a\\\\.prod\\\\.fastly\\\\.net" in art.text
    big = ir.Eq("destination.registered_domain", ("amazonaws.com",))
    [ap] = compile_(analytic([stream("s", big, NET, derive)])).approximations
    assert ap.direction == "superset" and "amazonaws.com" in ap.detail
    negated = compile_(analytic([stream("s", ir.Not(big), NET, derive)]))
    assert [a.direction for a in negated.approximations] == ["subset"]


def test_enriched_field_is_inlined_over_the_rows_first_row_wins() -> None:
    roles = ir.Lookup(
        "roles", "/x/roles.csv", ("host", "role"), (("h1", "db"), ("H1", "web"), ("h2", "web"))
    )
    enrich = ir.Enrich("roles", (("host", "host.name"),), (("role", "labels.role"),), SPAN)
    s = ir.Stream("s", PROC, None, (enrich,), (), ir.Eq("labels.role", ("web",)), SPAN)
    a = dataclasses.replace(analytic([s]), lookups=(roles,))
    art = compile_(a, approx=False)
    assert next(yaml.safe_load_all(art.text))["detection"] == {
        "selection": {"Computer": "h2"},
        "condition": "selection",
    }


@pytest.mark.parametrize(
    ("pattern", "exact"),
    [
        (r"^(python|pypy)[23](\.\d+)?$", True),
        (r"^py.*$", False),  # `.` crosses a separator
        (r"^a[^x]$", False),
        (r"^a|b$", False),  # the anchors bind to one alternative each
        (r"^ab", False),  # unanchored at the end: a directory may match
    ],
)
def test_basename_regex_exactness(pattern: str, exact: bool) -> None:
    assert basename_exact(pattern, "/") is exact


def test_regexes_re2_rejects_are_respelled_for_both_engines() -> None:
    r = sigma_regex(r"(?x) ^ a b \d+ $", cased=False)
    assert r.text == r"^ab(?:\d)+$"
    assert re.compile(r.text) and re2.compile(r.text)
    assert any("\\d is ASCII" in n for n in r.notes)
    kept = sigma_regex(r"^(python|pypy)[23](\.\d+)?$", cased=False)
    assert kept.text == r"^(python|pypy)[23](\.\d+)?$" and kept.notes == ()
    art = compile_(analytic([stream("s", ir.Regex("process.command_line", (r"(?x) a  b",)))]))
    assert "CommandLine|re|i: ab" in art.text


def test_a_null_test_of_registered_domain_is_refused() -> None:
    """registered_domain() is also null for a public suffix or a single label: no Sigma test."""
    derive = (
        (
            "destination.registered_domain",
            ir.Call("registered_domain", (ir.FieldRef("destination.domain"),)),
        ),
    )
    where = ir.Eq("destination.registered_domain", (None,), span=SPAN)
    [(code, msg)] = errors(analytic([stream("s", where, NET, derive)]))
    assert code == "E200" and "public suffix" in msg


# ---------------------------------------------------------------------------- AN1511's relaxation
def test_an1511_counts_storage_flows_per_process_on_sysmon_connections() -> None:
    """No Windows flow source with bytes in the Sigma taxonomy: the flows are Sysmon network
    connections (declared), the byte measures go, the join is the start's Image test on the
    flow, and the group is host and ProcessGuid: every dropped part a declared superset."""
    by_id = {a.id: a for a in _catalog()}
    art = BACKEND.compile(by_id["AN1511"], allow_superset=True)
    assert {a.direction for a in art.approximations} == {"superset"}
    constructs = [a.construct for a in art.approximations]
    assert constructs.count("group-by keys") == 2
    assert {
        "first-seen baseline",
        "measures",
        "having condition",
        "stream join",
        "tumbling window aggregation",
        "logsource {category: network_flow, product: windows}",
    } <= set(constructs)
    docs = list(yaml.safe_load_all(art.text))
    assert [d.get("logsource") for d in docs[:-1]] == [
        {"category": "network_connection", "product": "windows"}
    ]
    assert {"Image|endswith", "Image"} == {
        k for branch in docs[0]["detection"]["selection_3"] for k in branch
    }
    corr = _corr(art)
    assert corr["type"] == "event_count" and corr["condition"] == {"gte": 1}
    assert corr["group-by"] == ["Computer", "ProcessGuid"]
    assert corr["timespan"] == "1h"


def _flows(
    keys: tuple[str, ...],
    having: ir.Expr | None,
    kind: Literal["tumbling", "sliding"] = "tumbling",
) -> ir.Analytic:
    s = stream(
        "s",
        ir.Eq("destination.port", (443,)),
        ir.LogSource("network_flow", "windows"),
        derive=(
            (
                "destination.registered_domain",
                ir.Call("registered_domain", (ir.FieldRef("destination.domain"),)),
            ),
        ),
    )
    measures = (ir.Measure("n", "count", None), ir.Measure("out", "sum", "source.bytes"))
    det = ir.Aggregate(
        "s",
        ir.Window(kind, 3_600_000, SPAN),
        keys,
        measures,
        (),
        having,
        span=SPAN,
    )
    return analytic([s], det)


def test_computed_keys_give_way_only_to_a_growing_threshold_on_tumbling_windows() -> None:
    keys = ("host.name", "destination.registered_domain")
    art = compile_(_flows(keys, _ge("n", 3)))
    assert _corr(art)["group-by"] == ["Computer"]
    assert _corr(art)["condition"] == {"gte": 3}
    # the byte sum is gone with the source's bytes; the count stays
    assert "measures" in {a.construct for a in art.approximations}
    # an upper bound does not hold for a coarser group
    below = ir.BinOp("<", ir.MeasureRef("n"), ir.Literal_(3))
    assert any("computed key" in m for _, m in errors(_flows(keys, below)))
    # a sliding window consumes its events per group: a coarser group fires in other windows
    assert any("computed key" in m for _, m in errors(_flows(keys, _ge("n", 3), "sliding")))


def test_bytes_on_a_windows_flow_stay_refused_where_read_outside_measures() -> None:
    s = stream(
        "s", ir.Compare("source.bytes", "gt", 1.0, SPAN), ir.LogSource("network_flow", "windows")
    )
    [(code, msg)] = errors(analytic([s]))
    assert code == "E211" and "Sysmon" in msg and "zeek" in msg


def test_a_numeric_string_on_a_field_logged_as_a_number_is_written_as_the_number() -> None:
    # the allowed-ports lookup holds "443"; DestinationPort is logged as a number
    an = load_file(ROOT / "tests/differential/kql/d02_network.yml").analytic
    art = get_backend("sigma").compile(an, allow_approximate=True)
    assert "DestinationPort: 443\n" in art.query and "DestinationPort: '443'" not in art.query
