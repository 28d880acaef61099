"""The kql backend (Microsoft Sentinel): catalogue outcomes, the real validator
(Kusto.Language, tests/oracles/kql_oracle.py), translation tables and hostile values."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import random
import re

import pytest
import re2  # type: ignore[import-untyped]
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backends import get_backend
from backends.base import NODE_TYPES, Artifact, CompileError
from backends.regex_re2 import Unsupported, to_re2
from backends.sentinel import psl
from backends.sentinel.domains import cut_is_exact
from compiler import ir
from compiler.discover import load_catalog
from tests.oracles.kql_oracle import require_oracle, validate

BACKEND = get_backend("kql")


@pytest.fixture
def as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile every stream as written: no lookup or derived field inlined into its filter
    (which backends.inline does when only the filter reads them)."""
    monkeypatch.setattr("backends.inline.filter_only_streams", lambda analytic: [])


@functools.cache
def catalogue() -> tuple[ir.Analytic, ...]:
    return tuple(x.analytic for x in load_catalog(["analytics"]).loaded)


def outcomes(profile: str) -> dict[str, Artifact | CompileError]:
    out: dict[str, Artifact | CompileError] = {}
    for a in catalogue():
        try:
            out[a.id] = BACKEND.compile(a, profile=profile, allow_approximate=True)
        except CompileError as e:
            out[a.id] = e
    return out


# --------------------------------------------------------------------------- (a) catalogue
EXPECTED = {
    "mde": {
        # AN1190 keys its sequence on MDE's process identity: no process end events needed
        "ok": {"AN1190", "SIEMC-0004", "SIEMC-0005", "SIEMC-0006", "SIEMC-0008", "SIEMC-0014",
               "SIEMC-0016", "SIEMC-0017"},
        "E211": {"AN1511", "SIEMC-0003", "SIEMC-0007", "SIEMC-0009", "SIEMC-0010",
                 "SIEMC-0011", "SIEMC-0012", "SIEMC-0013",
                 "SIEMC-0015",  # no MDE source: process end, Zeek, byte flows
                 "SIEMC-0018"},  # and the Windows Security log
    },
    # Zeek conn/ssl through the Corelight solution's parsers (corelight_conn, corelight_ssl)
    "asim": {
        "ok": {"AN1190", "AN1511", "SIEMC-0003", "SIEMC-0004", "SIEMC-0005", "SIEMC-0006",
               "SIEMC-0007", "SIEMC-0008", "SIEMC-0009", "SIEMC-0010", "SIEMC-0011",
               "SIEMC-0012", "SIEMC-0013", "SIEMC-0014", "SIEMC-0015",
               "SIEMC-0016", "SIEMC-0017", "SIEMC-0018"},
    },
}  # fmt: skip


@pytest.mark.parametrize("profile", ["mde", "asim"])
def test_catalogue_outcomes(profile: str) -> None:
    got: dict[str, set[str]] = {"ok": set(), "E200": set(), "E201": set(), "E210": set(),
                                "E211": set()}  # fmt: skip
    for aid, res in outcomes(profile).items():
        if isinstance(res, Artifact):
            got["ok"].add(aid)
            continue
        codes = {d.code for d in res.diagnostics}
        assert len(codes) == 1 and codes <= {"E200", "E201", "E210", "E211"}, (aid, codes)
        for d in res.diagnostics:
            # E201 is about the backend, whatever the profile
            assert "kql" in d.message and (profile in d.message or d.code == "E201"), d.message
            assert d.line > 0 and d.help
        got[codes.pop()].add(aid)
    assert {k: v for k, v in got.items() if v} == EXPECTED[profile]


def test_byte_fields_on_mde_name_the_data_source_that_has_them() -> None:
    res = outcomes("mde")["SIEMC-0011"]
    assert isinstance(res, CompileError)
    # a flow stream (events with byte counts) has no MDE source at all: the error says which
    # data sources carry bytes
    (d,) = res.diagnostics
    assert d.code == "E211" and "DeviceNetworkEvents carries no byte columns" in d.message
    assert "asim" in d.message and "SrcBytes" in d.message and "VMConnection" in d.message


def test_support_table_is_exhaustive() -> None:
    assert set(BACKEND.SUPPORT) == set(NODE_TYPES)
    for sup in BACKEND.SUPPORT.values():
        assert sup.level in ("exact", "approximate", "unsupported", "not_implemented")
        assert len(sup.how) > 10


def test_output_is_deterministic() -> None:
    a = outcomes("asim")
    b = outcomes("asim")
    for k, v in a.items():
        if isinstance(v, Artifact):
            w = b[k]
            assert isinstance(w, Artifact) and w.text == v.text


# --------------------------------------------------------------------------- (b) validator
def test_every_emitted_query_passes_kusto_language() -> None:
    require_oracle()
    arts = [r for p in ("mde", "asim") for r in outcomes(p).values() if isinstance(r, Artifact)]
    assert len(arts) == 26
    results = validate([a.query for a in arts])
    bad = {
        f"{a.analytic}/{a.profile}": [e.show(a.query) for e in errs]
        for a, errs in zip(arts, results, strict=True)
        if errs
    }
    assert bad == {}


def test_validator_rejects_what_kusto_rejects() -> None:
    require_oracle()
    bad = validate(
        [
            "DeviceProcessEvents | where FileName = 'x'",
            "DeviceProcessEvents | where Nope == 1",
            "DeviceProcessEvents | summarize count() by DeviceName | project FileName",
        ]
    )
    assert all(bad)


# --------------------------------------------------------------------------- helpers
SPAN = ir.Span("t.yml", 3, 5)
META = ir.Metadata("t", "", (), (), ("windows",), "low", None, (), ())
INVENTORY = ir.Lookup("inventory", "/x/inventory.csv", ("host", "role"), (("web01", "web"),))


def analytic(
    pred: ir.Predicate,
    category: str = "process_creation",
    *,
    derive: tuple[tuple[str, ir.Expr], ...] = (),
    detection: ir.Detection | None = None,
    baselines: tuple[ir.Baseline, ...] = (),
    lookups: tuple[ir.Lookup, ...] = (INVENTORY,),
    enrich: tuple[ir.Enrich, ...] = (),
) -> ir.Analytic:
    s = ir.Stream("s", ir.LogSource(category=category), None, enrich, derive, pred, SPAN)
    return ir.Analytic(
        "T-1", "t.yml", META, lookups, (s,), detection or ir.Match("s", SPAN), baselines, SPAN
    )


def where_of(pred: ir.Predicate, category: str = "process_creation", profile: str = "mde") -> str:
    q = BACKEND.compile(analytic(pred, category), profile=profile).query
    return q.split(";\n")[0].split("\n")[-1].removeprefix("| where ")


# --------------------------------------------------------------------------- (c) translations
CASES: list[tuple[ir.Predicate, str]] = [
    (ir.Eq("process.name", ("cmd.exe",)), 'FileName =~ "cmd.exe"'),
    (ir.Eq("process.name", ("cmd.exe",), cased=True), 'FileName == "cmd.exe"'),
    (ir.Eq("process.name", ("a", "b")), 'FileName in~ ("a", "b")'),
    (ir.Eq("process.name", ("a", "b"), cased=True), 'FileName in ("a", "b")'),
    (ir.Eq("process.name", ("a", "b"), quantifier="all"), '(FileName =~ "a" and FileName =~ "b")'),
    (ir.Eq("process.name", (None,)), "isempty(FileName)"),
    (ir.Eq("process.pid", (4,)), "ProcessId == 4"),
    (ir.Eq("process.pid", ("4",)), "ProcessId == 4"),
    (ir.Eq("process.pid", (4, 8)), "ProcessId in (4, 8)"),
    (ir.Eq("process.pid", ("x",)), "false"),
    (ir.Eq("process.name", (443,)),
     "(isnotnull(todouble(FileName)) and todouble(FileName) == 443)"),
    (ir.Eq("process.name", ("443",)), '(FileName =~ "443" or todouble(FileName) == 443)'),
    (ir.StrMatch("process.command_line", "contains", ("-enc",)),
     'ProcessCommandLine contains "-enc"'),
    (ir.StrMatch("process.command_line", "contains", ("X",), cased=True),
     'ProcessCommandLine contains_cs "X"'),
    (ir.StrMatch("process.name", "startswith", ("a",)), 'FileName startswith "a"'),
    (ir.StrMatch("process.name", "startswith", ("a",), cased=True), 'FileName startswith_cs "a"'),
    (ir.StrMatch("process.name", "endswith", ("a", "b")),
     '(FileName endswith "a" or FileName endswith "b")'),
    (ir.StrMatch("process.name", "endswith", ("a",), cased=True), 'FileName endswith_cs "a"'),
    (ir.StrMatch("process.command_line", "contains", ("a", "b"), quantifier="all"),
     '(ProcessCommandLine contains "a" and ProcessCommandLine contains "b")'),
    (ir.StrMatch("process.pid", "startswith", ("4",)), 'tostring(ProcessId) startswith "4"'),
    (ir.Regex("process.name", (r"^a\.exe$",)),
     'FileName matches regex "(?i)^a\\\\.exe\\\\n?\\\\z"'),
    (ir.Regex("process.name", ("^a$",), cased=True), 'FileName matches regex "^a\\\\n?\\\\z"'),
    (ir.Compare("process.pid", "gte", 10), "ProcessId >= 10"),
    (ir.Compare("process.name", "lt", 1.5), "todouble(FileName) < 1.5"),
    (ir.Exists("process.name"), "isnotempty(FileName)"),
    (ir.Exists("process.name", present=False), "isempty(FileName)"),
    (ir.Exists("process.pid"), "isnotnull(ProcessId)"),
    (ir.Exists("process.pid", present=False), "isnull(ProcessId)"),
    (ir.Not(ir.Eq("process.pid", (4,))), "not((isnotnull(ProcessId) and ProcessId == 4))"),
    (ir.Not(ir.Eq("process.name", ("a",))), 'not(FileName =~ "a")'),
    (ir.Not(ir.Compare("process.pid", "gt", 1)), "not((isnotnull(ProcessId) and ProcessId > 1))"),
    (ir.Or((ir.Eq("process.name", ("a",)), ir.Exists("process.pid"))),
     '(FileName =~ "a" or isnotnull(ProcessId))'),
    # a one-row lookup only a filter reads is inlined (no watchlist)
    (ir.InLookup("inventory", (("host", "host.name"),)), 'DeviceName =~ "web01"'),
]  # fmt: skip

NET_CASES: list[tuple[ir.Predicate, str]] = [
    (ir.Cidr("destination.ip", ("10.0.0.0/8",)),
     # an IPv4-mapped address (::ffff:10.1.2.3) is read as its IPv4 address
     "coalesce(ipv4_is_in_any_range(replace_regex(trim(@'\\s', RemoteIP), @'^(?i)::ffff:', ''), "
     "dynamic([\"10.0.0.0/8\"])), false)"),
    (ir.Eq("destination.port", (443,)), "RemotePort == 443"),
    (ir.Eq("network.direction", ("egress",)), 'NetworkDirection =~ "egress"'),
]  # fmt: skip


@pytest.mark.parametrize(("pred", "expected"), CASES)
def test_predicate_translation(pred: ir.Predicate, expected: str) -> None:
    assert where_of(pred) == expected


@pytest.mark.parametrize(("pred", "expected"), NET_CASES)
def test_network_predicate_translation(pred: ir.Predicate, expected: str) -> None:
    assert where_of(pred, "network_connection") == expected


def test_translation_table_queries_are_valid() -> None:
    require_oracle()
    qs = [BACKEND.compile(analytic(p)).query for p, _ in CASES]
    qs += [BACKEND.compile(analytic(p, "network_connection")).query for p, _ in NET_CASES]
    assert [e for e in validate(qs) if e] == []


def test_regex_without_re2_equivalent_is_unsupported() -> None:
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(analytic(ir.Regex("process.name", ("a(?=b)",), span=SPAN)))
    (d,) = ei.value.diagnostics
    assert d.code == "E200" and "kql" in d.message and "look-ahead" in d.message


def test_unmapped_field_is_an_error_naming_the_profile() -> None:
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(analytic(ir.Eq("no.such.field", ("x",), span=SPAN)), profile="asim")
    (d,) = ei.value.diagnostics
    assert d.code == "E210" and "asim" in d.message and (d.line, d.col) == (3, 5)


def test_tumbling_aggregate_bins_ratio_and_having() -> None:
    agg = ir.Aggregate(
        "s",
        ir.Window("tumbling", 3_600_000),
        ("host.name",),
        (ir.Measure("out", "sum", "source.bytes"), ir.Measure("inb", "sum", "destination.bytes"),
         ir.Measure("n", "distinct", "destination.ip")),
        (("ratio", ir.BinOp("/", ir.MeasureRef("out"), ir.MeasureRef("inb"))),),
        ir.BinOp(">=", ir.MeasureRef("ratio"), ir.Literal_(10)),
    )  # fmt: skip
    q = BACKEND.compile(analytic(ir.TRUE, "network_flow", detection=agg), profile="asim").query
    assert "by __start = bin(TimeGenerated, 1h), SrcHostname" in q
    assert "ratio = iff(inb == 0, real(null), todouble(out) / inb)" in q
    assert "out = iff(__n_out < 1, long(null), out)" in q
    assert "n = count_distinctif(DstIpAddr, isnotempty(DstIpAddr))" in q
    assert q.endswith("| where (ratio >= 10)")
    odd = ir.Aggregate("s", ir.Window("tumbling", 7 * 60_000), ("host.name",),
                       (ir.Measure("c", "count", None),), (), None)  # fmt: skip
    q2 = BACKEND.compile(analytic(ir.TRUE, detection=odd)).query
    assert "bin_at(Timestamp, 7m, datetime(1970-01-01))" in q2
    require_oracle()
    assert validate([q, q2]) == [[], []]


def test_derive_and_enrich(as_written: None) -> None:
    a = analytic(
        ir.Exists("labels.host_role"),
        derive=(("process.name", ir.Call("lower", (ir.FieldRef("process.name"),))),),
        enrich=(ir.Enrich("inventory", (("host", "host.name"),), (("role", "labels.host_role"),)),),
    )
    q = BACKEND.compile(a).query
    assert "| extend FileName = tolower(FileName)" in q
    assert '| lookup kind=leftouter (_GetWatchlist("inventory")' in q
    assert "| extend labels_host_role = __e_role" in q
    require_oracle()
    assert validate([q]) == [[]]


# --------------------------------------------------------------------------- (e) approximations
@pytest.mark.parametrize("aid", ["SIEMC-0004", "SIEMC-0006"])
def test_approximations_need_permission(aid: str) -> None:
    a = next(x for x in catalogue() if x.id == aid)
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(a, profile="mde")
    assert {d.code for d in ei.value.diagnostics} == {"E202"}
    art = BACKEND.compile(a, profile="mde", allow_approximate=True)
    assert art.approximations and "// APPROXIMATION" in art.text


@pytest.mark.parametrize("profile", ["mde", "asim"])
def test_registered_domain_by_the_watchlist_needs_no_permission(profile: str) -> None:
    # SIEMC-0008 groups by the registered domain: exact with the Public Suffix List watchlist
    a = next(x for x in catalogue() if x.id == "SIEMC-0008")
    art = BACKEND.compile(a, profile=profile)
    assert art.approximations == () and "| invoke siemc_registered_domain()" in art.query


def test_exact_analytic_compiles_without_permission() -> None:
    a = next(x for x in catalogue() if x.id == "SIEMC-0011")
    art = BACKEND.compile(a, profile="asim")
    assert art.approximations == ()


# --------------------------------------------------------------------------- (d) hostile values
HOSTILE = st.text(
    alphabet=st.sampled_from(list("ab\"'\\*?|;\n\r\t`$%{}()[]@/.é漢\u200b\x00\x1f💥 ")),
    min_size=0,
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=HOSTILE, op=st.sampled_from(["eq", "contains", "startswith", "endswith", "lookup"]))
def test_hostile_values_still_validate(value: str, op: str) -> None:
    require_oracle()
    pred: ir.Predicate
    if op == "eq":
        pred = ir.Eq("process.name", (value, "x"))
    elif op == "lookup":
        lk = ir.Lookup(value or "w", "/x.csv", ("host",), ((value,),))
        a = analytic(ir.Not(ir.InLookup(lk.name, (("host", "host.name"),))), lookups=(lk,))
        assert validate([BACKEND.compile(a).query]) == [[]]
        return
    else:
        pred = ir.StrMatch("process.command_line", op, (value,))  # type: ignore[arg-type]
    # an empty value is a declared approximation (a missing string reads as "")
    q = BACKEND.compile(analytic(pred), allow_approximate=True).query
    assert "\n" not in q.split(";\n")[0].split("| where ")[-1]
    assert validate([q]) == [[]], q


# --------------------------------------------------------------------------- baseline identity
@pytest.mark.parametrize("profile", ["mde", "asim"])
@pytest.mark.parametrize("kind", ["rarity", "first_seen"])
def test_match_baselines_key_history_on_the_candidate_keys_not_only_its_time(
    profile: str, kind: str
) -> None:
    # detect: {match: proc}; baseline: [{rarity|first_seen: {stream: proc, keys:
    # [process.parent.name, process.name], across: host.name, max: 3, lookback: 13d}}]
    keys = ("process.parent.name", "process.name")
    b: ir.Baseline
    if kind == "rarity":
        b = ir.Rarity("s", keys, keys, "host.name", 3, 13 * 86_400_000, SPAN)
    else:
        b = ir.FirstSeen("s", keys, keys, 13 * 86_400_000, SPAN)
    q = BACKEND.compile(analytic(ir.TRUE, baselines=(b,)), profile=profile).query
    parent, name = {
        "mde": ("InitiatingProcessFileName", "FileName"),
        "asim": ("ActingProcessFilename", "TargetProcessFilename"),
    }[profile]
    ident = f"__start, {parent}, {name}"
    # Two candidates at the same timestamp must not share one history.
    assert "by __start;" not in q and "on __start\n" not in q and not q.endswith("on __start")
    if kind == "rarity":
        assert f"| summarize __rare0 = count_distinct(__ha) by {ident};" in q
        assert f"| lookup kind=leftouter __rarity0 on {ident}\n" in q
    else:
        assert f"| distinct {ident}) on {ident}" in q
    require_oracle()
    assert validate([q]) == [[]], q


def test_asim_network_flow_keeps_only_sessions_with_byte_counts() -> None:
    # The evaluator's network_flow is event.category network AND (source.bytes or
    # destination.bytes exists): a count over the stream must not count sessions without bytes.
    count = ir.Aggregate("s", ir.Window("tumbling", 3_600_000), ("host.name",),
                         (ir.Measure("n", "count", None),), (), None)  # fmt: skip
    flow = BACKEND.compile(analytic(ir.TRUE, "network_flow", detection=count), profile="asim").query
    assert flow.startswith(
        "let s = _Im_NetworkSession\n| where isnotnull(SrcBytes) or isnotnull(DstBytes);"
    ), flow
    conn = BACKEND.compile(analytic(ir.TRUE, "network_connection"), profile="asim").query
    assert "SrcBytes" not in conn
    require_oracle()
    assert validate([flow]) == [[]], flow


def _windows_logons(pred: ir.Predicate) -> ir.Analytic:
    s = ir.Stream("s", ir.LogSource(product="windows"), None, (), (), pred, SPAN)
    return ir.Analytic("T-1", "t.yml", META, (), (s,), ir.Match("s", SPAN), (), SPAN)


@pytest.mark.parametrize(
    ("profile", "table", "cols"),
    [
        ("mde", "DeviceLogonEvents", ("AccountName", "DeviceName", "RemoteIP", "ActionType")),
        (
            "asim",
            "_Im_Authentication",
            ("TargetUsername", "DvcHostname", "SrcIpAddr", "EventResult"),
        ),
    ],
)
def test_windows_authentication_events_have_a_source_in_both_profiles(
    profile: str, table: str, cols: tuple[str, ...]
) -> None:
    # logsource {product: windows} + event.category: authentication used to fail on each profile
    # with "compile with another profile", naming the other one, which failed the same way.
    pred = ir.And((
        ir.Eq("event.category", ("authentication",)), ir.Eq("event.outcome", ("failure",)),
        ir.Eq("user.name", ("bob",)), ir.Exists("host.name"), ir.Cidr("source.ip", ("10.0.0.0/8",)),
    ))  # fmt: skip
    q = BACKEND.compile(_windows_logons(pred), profile=profile).query
    assert q.startswith(f"let s = {table}\n")
    for c in cols:
        assert c in q
    assert '"success"' in q and '"failure"' in q
    require_oracle()
    assert validate([q]) == [[]], q


def test_no_source_help_names_only_profiles_that_have_one() -> None:
    for profile in ("mde", "asim"):  # neither maps event.category: file on Windows
        with pytest.raises(CompileError) as ei:
            BACKEND.compile(_windows_logons(ir.Eq("event.category", ("file",))), profile=profile)
        (d,) = ei.value.diagnostics
        assert d.code == "E211" and d.help
        assert "another profile" not in d.help and "no kql profile has a source" in d.help
    # zeek: asim has it, mde does not, so mde's help points at asim
    zeek = ir.LogSource(category="network_connection", product="zeek")
    z = ir.Stream("s", zeek, None, (), (), ir.TRUE, SPAN)
    a = ir.Analytic("T-1", "t.yml", META, (), (z,), ir.Match("s", SPAN), (), SPAN)
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(a, profile="mde")
    assert "another profile (asim)" in (ei.value.diagnostics[0].help or "")


def _zeek(category: str | None, service: str, pred: ir.Predicate) -> ir.Analytic:
    ls = ir.LogSource(category=category, product="zeek", service=service)
    z = ir.Stream("s", ls, None, (), (), pred, SPAN)
    return ir.Analytic("T-1", "t.yml", META, (), (z,), ir.Match("s", SPAN), (), SPAN)


@pytest.mark.parametrize(
    ("category", "service", "pred", "head", "where"),
    [
        (
            "network_flow",
            "conn",
            ir.Eq("zeek.conn.conn_state", ("S0",), cased=True),
            "corelight_conn\n| where isnotnull(orig_ip_bytes) or isnotnull(resp_ip_bytes)",
            'conn_state == "S0"',
        ),
        (
            "network_connection",
            "conn",
            ir.Compare("zeek.conn.orig_bytes", "gt", 0),
            "corelight_conn",
            "orig_bytes > 0",
        ),
        (
            None,
            "ssl",
            ir.StrMatch("tls.client.server_name", "endswith", (".example.com",)),
            "corelight_ssl",
            'server_name endswith ".example.com"',
        ),
        (
            "dns_query",
            "dns",
            ir.Eq("dns.question.name", ("a.example",)),
            "corelight_dns\n| where isnotempty(query)",
            'query =~ "a.example"',
        ),
    ],
)
def test_zeek_services_read_the_corelight_parsers(
    category: str | None, service: str, pred: ir.Predicate, head: str, where: str
) -> None:
    """A Zeek log with a service is read from the Corelight solution's parser for it, in
    Zeek's column names; the category adds its condition and nothing of the ASIM entries (no
    NetworkSession columns, no EventProduct filter)."""
    # (corelight_dns declares the queries it drops: test_corelight_dns_declares_...)
    a = _zeek(category, service, pred)
    q = BACKEND.compile(a, profile="asim", allow_approximate=service == "dns").query
    assert q.startswith(f"let s = {head}\n| where {where};"), q
    assert "EventProduct" not in q and "SrcBytes" not in q
    require_oracle()
    assert validate([q]) == [[]], q


def test_zeek_service_without_the_category_has_no_source() -> None:
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(_zeek("process_creation", "conn", ir.TRUE), profile="asim")
    (d,) = ei.value.diagnostics
    assert d.code == "E211"
    assert "'zeek/conn' (corelight_conn) has no process_creation events" in d.message
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(_zeek("network_connection", "ssl", ir.TRUE), profile="asim")
    assert "categories: none, use the logsource without one" in ei.value.diagnostics[0].message


def test_corelight_dns_declares_the_queries_it_drops() -> None:
    q = ir.Eq("dns.question.name", ("a.example",))
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(_zeek(None, "dns", q), profile="asim")
    assert "one row per Zeek uid" in ei.value.diagnostics[0].message
    art = BACKEND.compile(_zeek(None, "dns", q), profile="asim", allow_approximate=True)
    assert [a.direction for a in art.approximations] == ["mixed"]


# --------------------------------------------------------------------------- 14-day queryPeriod
DAY = 86_400_000
_KEYS = ("process.name",)


def _period_case(kind: str, lookback_ms: int, detection: ir.Detection | None = None) -> ir.Analytic:
    b: ir.Baseline
    if kind == "first_seen":
        b = ir.FirstSeen("s", _KEYS, _KEYS, lookback_ms, SPAN)
    elif kind == "rarity":
        b = ir.Rarity("s", _KEYS, _KEYS, "host.name", 3, lookback_ms, SPAN)
    else:
        b = ir.Deviation("n", lookback_ms, 3.0, None, 2, SPAN)
    return analytic(ir.TRUE, baselines=(b,), detection=detection)


_HOURLY = ir.Aggregate("s", ir.Window("tumbling", 3_600_000), ("process.name",),
                       (ir.Measure("n", "count", None),), (), None)  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "lookback_ms", "detection", "exact"),
    [
        ("first_seen", 13 * DAY, None, True),
        # a rule runs at least every 5 minutes: a candidate needs 14d + 5m of data
        ("first_seen", 14 * DAY, None, False),
        ("first_seen", 14 * DAY - 300_000, None, True),
        ("first_seen", 14 * DAY - 300_000, ir.Sequence(
            (ir.Step("a", "s", ("process.name",)), ir.Step("b", "s", ("process.name",))),
            600_000), False),
        ("rarity", 13 * DAY, None, True),
        ("rarity", 30 * DAY, None, False),
        ("deviation", 13 * DAY, _HOURLY, True),
        ("deviation", 14 * DAY - 3_600_000, _HOURLY, True),
        ("deviation", 14 * DAY, _HOURLY, False),
    ],
)  # fmt: skip
def test_baselines_past_the_14_day_query_period_are_declared(
    kind: str, lookback_ms: int, detection: ir.Detection | None, exact: bool
) -> None:
    # The query means the analytic over the data it reads; only a scheduled rule's 14-day
    # queryPeriod cuts the history. The artifact says so in a NOTE (the query stays exact) and
    # siemc export declares the cut (tests/test_export_sentinel.py).
    a = _period_case(kind, lookback_ms, detection)
    # the sequence detection is itself approximate on KQL; the baseline never is
    art = BACKEND.compile(a, allow_approximate=isinstance(detection, ir.Sequence))
    assert not [x for x in art.approximations if "queryPeriod" in x.detail]
    notes = [n for n in art.notes if "queryPeriod" in n]
    assert not notes if exact else len(notes) == 1, notes
    if exact:
        return
    (n,) = notes
    construct = {"first_seen": "first-seen baseline", "rarity": "rarity baseline",
                 "deviation": "deviation baseline"}[kind]  # fmt: skip
    assert n.startswith(f"{construct} (t.yml:3:5)")
    assert "watchlist" in n and "summary" in n
    kept = {"first_seen": "first-seen keys", "rarity": "(key, across value) pairs",
            "deviation": "past window values"}[kind]  # fmt: skip
    assert kept in n
    assert ("superset" if kind != "deviation" else "mixed") in n
    assert f"// NOTE {construct} (t.yml:3:5)" in art.text


def test_history_join_reach_counts_toward_the_query_period() -> None:
    # AN1190: a 14d first-seen over a history stream joined to process starts within 1d before
    src = ir.Stream("p", ir.LogSource(category="process_creation"), None, (), (), ir.TRUE, SPAN)
    join = ir.Join("p", ("host.name",), DAY, "before", (), SPAN)
    hist = ir.Stream("s", "p", join, (), (), ir.TRUE, SPAN)
    for lookback, exact in ((12 * DAY, True), (13 * DAY, False)):
        b = ir.FirstSeen("s", _KEYS, _KEYS, lookback, SPAN)
        a = ir.Analytic("T-1", "t.yml", META, (), (src, hist), ir.Match("p", SPAN), (b,), SPAN)
        art = BACKEND.compile(a)
        notes = [n for n in art.notes if "queryPeriod" in n]
        assert (notes == []) == exact, notes
        if not exact:
            assert "1d of history join reach" in notes[0]


def test_an1190_is_exact_on_kql_and_notes_the_query_period() -> None:
    for profile in ("mde", "asim"):
        res = outcomes(profile)["AN1190"]
        assert isinstance(res, Artifact)
        assert res.approximations == ()
        (n,) = [n for n in res.notes if n.startswith("first-seen baseline")]
        assert "14d lookback" in n and "superset" in n


# --------------------------------------------------------------------------- regex: RE2 decides
def _re2_search(text: str, s: str) -> bool:
    return re2.compile(text, _RE2_OPTS).search(s) is not None


_RE2_OPTS = re2.Options()
_RE2_OPTS.log_errors = False


@pytest.mark.parametrize(
    ("pattern", "cased", "re2_text"),
    [
        # RE2 rejects these spellings, whose meaning is plain: re-spelled
        ("(?x) a b  # spaced", True, "ab"),
        ("(?#note)ab", True, "ab"),
        (r"\N{DIGIT ONE}x", True, "1x"),
        (r"a\Z", True, r"a\z"),
        (r"(?a)\w+\s", True, "[[:word:]]+[[:space:]]"),  # RE2's \s lacks \v: POSIX space
        # RE2 reads `{,3}` as literal text, Python as 0 to 3 repetitions
        (r"x.{,3}y", True, "x.{0,3}y"),
        # `$` at the end: Python's also matches before a final newline
        ("ab$", True, r"ab\n?\z"),
        ("(?m)^ab$", True, "(?m:^)ab(?m:$)"),
        # Python folds i with dotless ı and dotted İ, RE2 does not
        ("whoami", False, "(?i)whoam(?-i:[Iiİı])"),
        # (?a) makes Python's folding ASCII-only; RE2's (?i) would add the Kelvin sign
        ("(?a)k", False, "(?i)(?-i:[Kk])"),
        # a one-range class whose first bound is escaped keeps its brackets
        (r"a[\x00-\x20]+", True, r"a[\x{0}- ]+"),
        # a negated ASCII class under (?i): RE2 folds the long s to s and rejects it
        (r"(?a)a\Wa", False, "(?i)a(?-i:[[:^word:]])a"),
    ],
)
def test_regex_is_respelled_for_re2_with_the_same_meaning(
    pattern: str, cased: bool, re2_text: str
) -> None:
    rx = to_re2(pattern, ignorecase=not cased)
    assert (rx.text, rx.approximations) == (re2_text, ())
    flags = 0 if cased else re.IGNORECASE
    for s in ["ab", "a b", "1x", "a", "a\n", "ab\n", "abc", "x..y", "xy", "x....y", "whoamİ",
              "WHOAMı", "\u212a", "k", "K", "word\v", "word ", "ab\nc", "a\u017fa",
              "asa"]:  # fmt: skip
        assert (re.search(pattern, s, flags) is not None) == _re2_search(rx.text, s), s


def test_python_syntax_re2_rejects_used_to_compile_as_exact() -> None:
    for pat in ["(?x) a", "(?#c)a", r"(?a)\w", r"\N{DIGIT ONE}", "ba{,3}"]:
        q = BACKEND.compile(analytic(ir.Regex("process.name", (pat,), span=SPAN))).query
        text = q.split('matches regex "')[1].split('"')[0].encode().decode("unicode_escape")
        re2.compile(text, _RE2_OPTS)  # RE2 accepts what is emitted
        assert "{," not in text and "(?x" not in text and "(?#" not in text


@pytest.mark.parametrize(
    ("pattern", "note"),
    [
        (r"\bcmd\b", "word boundary"),
        (r"\w+", "word characters"),
        (r"a$b?", "final newline"),
        (r"a\Bb", "empty text"),
        (r"(?i)[\x00-\uffff]x", "too large"),
    ],
)
def test_regex_meaning_re2_cannot_match_is_a_declared_approximation(
    pattern: str, note: str
) -> None:
    a = analytic(ir.Regex("process.name", (pattern,), span=SPAN))
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(a)
    assert [d.code for d in ei.value.diagnostics] == ["E202"]
    art = BACKEND.compile(a, allow_approximate=True)
    assert any(note in x.detail and x.span == SPAN for x in art.approximations), art.approximations


@pytest.mark.parametrize(
    ("pattern", "what"),
    [("a(?<=b)", "look-behind"), (r"(a)\1", "back-reference"), ("a{2,1001}", "RE2 rejects"),
     ("(?>ab)", "atomic"), ("a*+", "possessive"), ("(a)?(?(1)b|c)", "conditional")],
)  # fmt: skip
def test_regex_re2_cannot_express_is_e200(pattern: str, what: str) -> None:
    with pytest.raises(CompileError) as ei:
        BACKEND.compile(analytic(ir.Regex("process.name", (pattern,), span=SPAN)))
    (d,) = ei.value.diagnostics
    assert d.code == "E200" and what in d.message and (d.line, d.col) == (3, 5)


_CHARS = ["a", "b", "i", "I", "k", "K", "s", "ı", "İ", "\u212a", "ſ", "ß", "ẞ", "é", "É", "1",
          "٣", "_", " ", "\n", "\v", "\x85", ".", "-", "{", ",", "}"]  # fmt: skip
_ATOMS = ["a", "b", "i", "I", "k", "s", "ı", "İ", "ß", "é", "1", r"\.", r"\-", " ", r"\n",
          ".", r"\d", r"\D", r"\s", r"\S", r"\w", r"\W", r"\b", r"\B", "^", "$", r"\A", r"\Z",
          "[a-k]", "[^i]", r"[\d_]", r"[^\sa]", "[ı-İ]", "[A-Z]", r"[\w.]",
          r"\N{LATIN SMALL LETTER I}", "{", "}", ",", r"[\x00-\x20]", "[.-/]",
          r"[\x85]"]  # fmt: skip
_VARIANTS = {"i": ["i", "I", "ı", "İ"], "I": ["I", "i", "ı", "İ"], "k": ["k", "K", "\u212a"],
             "s": ["s", "S", "ſ"], "ß": ["ß", "ẞ"], "é": ["é", "É"], "1": ["1", "٣"],
             "a": ["a", "A"], "b": ["b", "B"], "d": ["1", "٣", "d"],
             "w": ["é", "_", "w"]}  # fmt: skip
_QUANTS = ["", "", "", "*", "+", "?", "{,2}", "{1,2}", "{2}", "{2,}", "*?", "{,}"]


def _patterns() -> st.SearchStrategy[str]:
    atom = st.sampled_from(_ATOMS)
    leaf = st.builds(lambda a, q: a + q, atom, st.sampled_from(_QUANTS))

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        seq = st.lists(inner, min_size=1, max_size=4).map("".join)
        group = st.builds(
            lambda o, body, q: f"{o}{body}){q}",
            st.sampled_from(["(", "(?:", "(?i:", "(?-i:", "(?s:", "(?m:", "(?a:"]),
            seq,
            st.sampled_from(_QUANTS),
        )
        alt = st.lists(seq, min_size=2, max_size=3).map("|".join)
        return st.one_of(seq, group, alt)

    body = st.recursive(leaf, extend, max_leaves=8)
    return st.builds(
        lambda f, b, end: f + b + end,
        st.sampled_from(["", "", "(?a)", "(?s)", "(?m)", "(?x)"]),
        body,
        st.sampled_from(["", "", "$", r"\Z", "a$|b"]),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(pattern=_patterns(), cased=st.booleans(), data=st.data())
def test_exact_regex_means_the_same_in_python_re_and_re2(
    pattern: str, cased: bool, data: st.DataObject
) -> None:
    """Whenever the backend calls a pattern exact, Python re (the evaluator) and RE2 (KQL)
    agree on match / no match."""
    flags = 0 if cased else re.IGNORECASE
    try:
        py = re.compile(pattern, flags)
    except re.error:
        assume(False)
        return
    try:
        rx = to_re2(pattern, ignorecase=not cased)
    except Unsupported:
        assume(False)
        return
    assume(not rx.approximations)
    texts = data.draw(st.lists(st.lists(st.sampled_from(_CHARS), max_size=6).map("".join),
                               min_size=1, max_size=8))  # fmt: skip
    # the pattern's own letters, each replaced by a case variant either engine may fold to it,
    # with an optional trailing newline: texts that come close to matching
    # (at most 10: a generated `(?:.*)*` backtracks exponentially in Python re on long texts)
    letters = [c for c in pattern if c.isalnum() or c in " ._-"][:10]
    for _ in range(4):
        v = "".join(data.draw(st.sampled_from(_VARIANTS.get(c, [c]))) for c in letters)
        texts.append(v + data.draw(st.sampled_from(["", "\n", "\n\n", "x"])))
    for s in texts:
        assert (py.search(s) is not None) == _re2_search(rx.text, s), (pattern, rx.text, s)


# --------------------------------------------------------------------------- multi-valued columns
_IPS = (
    (
        "dns.answer_ips",
        ir.Call("extract_ips", (ir.FieldRef("winlog.event_data.QueryResults"),)),
    ),
)


def _on_answers(pred: ir.Predicate, **kw: object) -> ir.Analytic:
    return analytic(pred, "dns_query", derive=_IPS, **kw)  # type: ignore[arg-type]


def test_multi_valued_string_leaves_test_each_element() -> None:
    """Equality and substrings on a dynamic array hold when some element matches: the elements
    joined by newlines, matched per line (multi-line RE2), never `=~` on the whole array."""
    pred = ir.And(
        (
            ir.Eq("dns.answer_ips", ("10.0.0.5", "8.8.8.8"), quantifier="all"),
            ir.Not(ir.StrMatch("dns.answer_ips", "endswith", (".9",), cased=True)),
        )
    )
    q = BACKEND.compile(_on_answers(pred), allow_approximate=True).query
    joined = 'strcat_array(dns_answer_ips, "\\n") matches regex'
    assert f'{joined} "(?im)^10\\\\.0\\\\.0\\\\.5$" and {joined} "(?im)^8\\\\.8\\\\.8\\\\.8$"' in q
    assert f'not((coalesce(array_length(dns_answer_ips), 0) > 0 and {joined} "(?m)\\\\.9$"))' in q
    assert "=~" not in q.split("extract_all")[1]
    require_oracle()
    assert validate([q]) == [[]]


@pytest.mark.parametrize(
    ("pred", "what"),
    [
        (ir.Regex("dns.answer_ips", ("^10\\.",)), "a regular expression"),
        (ir.Cidr("dns.answer_ips", ("10.0.0.0/8",)), "a cidr test"),
        (ir.Compare("dns.answer_ips", "gt", 5), "a numeric comparison"),
        (ir.Eq("dns.answer_ips", (443,)), "equality with a number"),
        (ir.InLookup("inventory", (("host", "dns.answer_ips"),)), "a lookup"),
    ],
)
def test_multi_valued_leaves_without_an_element_form_are_e201(
    pred: ir.Predicate, what: str
) -> None:
    with pytest.raises(CompileError) as e:
        BACKEND.compile(_on_answers(pred), allow_approximate=True)
    (d,) = e.value.diagnostics
    assert d.code == "E201" and what in d.message and "dynamic" in d.message


def test_multi_valued_derivations_and_measures_are_e201(as_written: None) -> None:
    lowered = (*_IPS, ("x.low", ir.Call("lower", (ir.FieldRef("dns.answer_ips"),))))
    with pytest.raises(CompileError, match="function lower\\(\\) of a multi-valued"):
        BACKEND.compile(analytic(ir.TRUE, "dns_query", derive=lowered), allow_approximate=True)
    agg = ir.Aggregate(
        "s",
        ir.Window("tumbling", 600_000),
        ("host.name",),
        (ir.Measure("n", "distinct", "dns.answer_ips"),),
        (),
        None,
        span=SPAN,
    )
    with pytest.raises(CompileError, match="distinct measure 'n' of the multi-valued"):
        BACKEND.compile(_on_answers(ir.TRUE, detection=agg), allow_approximate=True)


def test_multi_valued_group_key_is_expanded() -> None:
    agg = ir.Aggregate(
        "s",
        ir.Window("tumbling", 600_000),
        ("dns.answer_ips",),
        (ir.Measure("n", "count", None),),
        (),
        None,
        span=SPAN,
    )
    q = BACKEND.compile(_on_answers(ir.TRUE, detection=agg), allow_approximate=True).query
    assert (
        "s\n| mv-expand dns_answer_ips to typeof(string)\n| where isnotempty(dns_answer_ips)" in q
    )


def test_multi_valued_cooccurrence_key_is_e201() -> None:
    co = ir.Cooccurrence(
        (
            ir.Step("a", "s", ("dns.answer_ips",), SPAN),
            ir.Step("b", "s", ("dns.answer_ips",), SPAN),
        ),
        60_000,
        SPAN,
    )
    with pytest.raises(CompileError, match="a co-occurrence key on the multi-valued"):
        BACKEND.compile(_on_answers(ir.TRUE, detection=co), allow_approximate=True)


def test_multi_valued_join_key_is_e201() -> None:
    peer = ir.Call("extract_ips", (ir.FieldRef("winlog.event_data.QueryResults"),))
    streams = (
        ir.Stream("dns", ir.LogSource("dns_query"), None, (), (("labels.peer", peer),), ir.TRUE),
        ir.Stream(
            "conn",
            ir.LogSource("network_connection"),
            None,
            (),
            (("labels.peer", ir.FieldRef("destination.ip")),),
            ir.TRUE,
        ),
        ir.Stream(
            "paired", "dns", ir.Join("conn", ("labels.peer",), 60_000, "after", ()), (), (), ir.TRUE
        ),
    )
    a = ir.Analytic("T-1", "t.yml", META, (), streams, ir.Match("paired", SPAN), (), SPAN)
    with pytest.raises(CompileError, match="a join key on the multi-valued"):
        BACKEND.compile(a, allow_approximate=True)


def test_text_fields_compare_case_insensitively_or_as_numbers(as_written: None) -> None:
    """`source.ip == destination.ip` is the evaluator's equality: case-insensitive text
    ("FE80::1" == "fe80::1"), or numbers when both spell one; KQL's == is case-sensitive."""
    same = ir.BinOp("==", ir.FieldRef("source.ip"), ir.FieldRef("destination.ip"))
    stream = ir.Stream(
        "s", ir.LogSource("network_connection"), None, (), (("labels.same", same),), ir.TRUE
    )
    a = ir.Analytic("T-1", "t.yml", META, (), (stream,), ir.Match("s"), ())
    q = BACKEND.compile(a).query
    assert "(LocalIP =~ RemoteIP or coalesce(todouble(LocalIP) == todouble(RemoteIP), false))" in q


def test_unicode_digit_class_is_nd_in_re2_as_in_python() -> None:
    """Python's str \\d is spelled \\p{Nd}: RE2's table must hold exactly Python's digits (a
    Unicode version between them would show here)."""
    assert to_re2(r"x\d\D", ignorecase=False).text == r"x\p{Nd}\P{Nd}"
    nd, py = re2.compile(r"\p{Nd}", _RE2_OPTS), re.compile(r"\d")
    differ = [
        c
        for c in range(0x110000)
        if not 0xD800 <= c <= 0xDFFF
        and (nd.fullmatch(chr(c)) is not None) != (py.fullmatch(chr(c)) is not None)
    ]
    assert differ == []


# --------------------------------------------------------------------------- registered domains
def _rd_stream(where: ir.Predicate) -> ir.Stream:
    rd = ir.Call("registered_domain", (ir.Call("lower", (ir.FieldRef("destination.domain"),)),))
    return ir.Stream("s", ir.LogSource("network_connection"), None, (), (("rd", rd),), where)


@pytest.mark.parametrize(
    ("where", "exact"),
    [
        (ir.StrMatch("destination.domain", "endswith", (".dropbox.com", "drive.google.com")), True),
        (ir.Eq("destination.domain", ("dropbox.com", "slack.com")), True),
        # a suffix-list rule below the last two labels: the cut would give github.io
        (ir.StrMatch("destination.domain", "endswith", (".github.io",)), False),
        (ir.Eq("destination.domain", ("news.bbc.co.uk",)), False),
        # a two-label suffix does not fix the name's last two labels (xbox.com ends with box.com)
        (ir.StrMatch("destination.domain", "endswith", ("box.com",)), False),
        (ir.StrMatch("destination.domain", "contains", (".dropbox.com",)), False),
        (ir.Or((ir.Eq("destination.domain", ("dropbox.com",)), ir.Exists("x", True))), False),
        (ir.And((ir.Exists("x", True), ir.Eq("destination.domain", ("dropbox.com",)))), True),
    ],
)
def test_registered_domain_cut_is_exact_only_where_the_filter_pins_safe_names(
    where: ir.Predicate, exact: bool
) -> None:
    s = _rd_stream(where)
    rd = s.derive[0][1]
    assert isinstance(rd, ir.Call)
    assert cut_is_exact(s, rd.args[0]) is exact


def _ip_candidates() -> list[str]:
    """Addresses, near-addresses and bracketed or scoped forms (deterministic)."""
    rnd = random.Random(9)
    out = [
        "::",
        ":::",
        "1::",
        "::1",
        "1:2:3:4:5:6:7::",
        "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "::1.2.3.4",
        "1:2:3:4:5:6:1.2.3.4",
        "1::1.2.3.4.5",
        "1:2:3:4:5:6:7:1.2.3.4",
        "fe80::1%eth0",
        "fe80::1%",
        "fe80::1%a%b",
        "fe80::1%a/1",
        "fe80::1%]",
        "fe80::1%a]]",
        "[::1]",
        "][::1][",
        "[1.2.3.4]",
        "[1.2.3.4",
        "1.2.3.4]",
        "01.2.3.4",
        "::ffff:01.2.3.4",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4/24",
        "12345::",
        "",
    ]
    for _ in range(20000):
        a = ipaddress.IPv6Address(rnd.getrandbits(16) << rnd.choice([0, 16, 48, 96, 112]))
        s = rnd.choice(
            [str(a), a.exploded, "::ffff:" + str(ipaddress.IPv4Address(rnd.getrandbits(32)))]
        )
        if rnd.random() < 0.4:
            i = rnd.randrange(len(s) + 1)
            s = s[:i] + rnd.choice("0f:.%[]/g") + s[i + rnd.randrange(2) :]
        if rnd.random() < 0.1:
            s = "[" + s + "]"
        if rnd.random() < 0.1:
            s += "%" + rnd.choice(["eth0", "", "]", "a]", "1/2"])
        out.append(s)
    for _ in range(5000):
        octets = [
            rnd.choice([str(rnd.randint(0, 300)), f"0{rnd.randint(0, 9)}", ""]) for _ in range(4)
        ]
        out.append(rnd.choice(["", "["]) + ".".join(octets[: rnd.choice([3, 4, 4, 5])]))
    return out


def test_the_ip_address_pattern_accepts_what_the_evaluator_does() -> None:
    """registered_domain() returns an address as it is (compiler/evaluator/values.py): the
    watchlist function's RE2 pattern decides it as Python's ipaddress after the bracket strip."""

    def evaluator(d: str) -> bool:
        if not d or not (":" in d or d[-1].isdigit()):
            return False
        try:
            ipaddress.ip_address(d.strip("[]"))
        except ValueError:
            return False
        return True

    pattern = re2.compile(psl.IP_ADDRESS)
    cands = _ip_candidates()
    differ = [d for d in cands if evaluator(d) != (pattern.search(d) is not None)]
    assert differ == []
    assert 5000 < sum(map(evaluator, cands)) < len(cands) - 5000


def test_registered_domain_reads_the_suffix_list_watchlist() -> None:
    (lo,) = load_catalog(["tests/differential/kql/k_psl_registered_domain.yml"]).loaded
    a = lo.analytic
    art = BACKEND.compile(a, profile="mde")
    assert not art.approximations
    assert art.query.startswith("let siemc_registered_domain = (events:(__rd:string)) {")
    assert "_GetWatchlist('siemc_public_suffix_list')" in art.query
    assert "| invoke siemc_registered_domain()" in art.query
    assert any("watchlist siemc_public_suffix_list" in n for n in art.notes)
    # where the filter pins the names, the cut is exact and needs no watchlist
    pinned = ir.Eq("destination.domain", ("dropbox.com",))
    b = dataclasses.replace(a, streams=(dataclasses.replace(a.streams[0], filter=pinned),))
    cut = BACKEND.compile(b, profile="mde")
    assert "siemc_registered_domain" not in cut.query and not cut.approximations


# --------------------------------------------------------------------------- absent = ""
@pytest.mark.parametrize(
    ("pred", "direction"),
    [
        (ir.Eq("process.command_line", ("",)), "superset"),
        (ir.StrMatch("process.command_line", "contains", ("",)), "superset"),
        (ir.Regex("process.command_line", ("^x?$",)), "superset"),
        (ir.Not(ir.Eq("process.command_line", ("",))), "subset"),
        (ir.Eq("process.command_line", ("x",)), None),
        (ir.Regex("process.command_line", ("^x$",)), None),
        (ir.Eq("process.pid", ("",)), None),  # a nullable (long) column tells missing apart
    ],
)
def test_leaves_holding_on_empty_text_are_declared(
    pred: ir.Predicate, direction: str | None
) -> None:
    art = BACKEND.compile(analytic(pred), profile="mde", allow_approximate=True)
    got = [a.direction for a in art.approximations if "missing string" in a.construct]
    assert got == ([direction] if direction else [])


def test_a_boolean_column_equals_booleans_only() -> None:
    # docs/semantics.md: a boolean never equals text; `[true, "yes"]` keeps only `true`, and
    # `not: {b: "true"}` holds everywhere (Kusto would also reject `=~` on a bool)
    (lo,) = load_catalog(["tests/differential/splunk/b_d03_boolean_vs_text.yml"]).loaded
    art = BACKEND.compile(lo.analytic, profile="mde")
    assert "| where labels_same_host == true;" in art.query
    assert '=~ "yes"' not in art.query and "not(" not in art.query
