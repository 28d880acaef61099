"""ES|QL backend: every bundled analytic, the real validator, a table of constructs, hostile
values."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends import get_backend
from backends.base import Artifact, CompileError, Context
from backends.elastic_esql import EsqlBackend
from backends.elastic_esql.expr import Renderer, profile_arrays, profile_types
from backends.elastic_esql.regex import lucene_regex
from backends.elastic_esql.stack import DEFAULT_STACK, STACKS
from backends.profiles import load_profile
from compiler import ir
from compiler.discover import load_catalog
from tests.oracles.esql_oracle import ecs_types, lookups_of, validate

CATALOG = {x.analytic.id: x.analytic for x in load_catalog(["analytics"]).loaded}
BACKEND = get_backend("esql")

COMPILED = {
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
    "SIEMC-0016",
}
UNSUPPORTED = {
    "SIEMC-0004",
    "SIEMC-0017",  # a DNS query then a connection: the first step is no process start
    "SIEMC-0018",  # a counted sequence step: no row order or per-row look back (E200)
}
# exact without --allow-approximate
EXACT = {
    "AN1190",
    "AN1511",
    "SIEMC-0003",
    "SIEMC-0005",
    "SIEMC-0009",
    "SIEMC-0011",
    "SIEMC-0012",
    "SIEMC-0013",
    "SIEMC-0014",
    "SIEMC-0015",
    "SIEMC-0016",
}


@pytest.fixture
def as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile every stream as written: no lookup or derived field inlined into its filter
    (which backends.inline does when only the filter reads them)."""
    monkeypatch.setattr("backends.inline.filter_only_streams", lambda analytic: [])


def test_catalog_categories() -> None:
    compiled, errors = set(), {}
    for aid, a in CATALOG.items():
        try:
            BACKEND.compile(a, allow_approximate=True)
            compiled.add(aid)
        except CompileError as exc:
            errors[aid] = {d.code for d in exc.diagnostics}
            for d in exc.diagnostics:
                assert "esql" in d.message and d.help
    assert compiled == COMPILED
    assert set(errors) == UNSUPPORTED
    assert all(codes == {"E200"} for codes in errors.values()), errors


@pytest.mark.parametrize("aid", sorted(COMPILED))
def test_bundled_queries_pass_the_validator(aid: str) -> None:
    art = BACKEND.compile(CATALOG[aid], allow_approximate=True)
    validate(art.query, lookups_of(CATALOG[aid]))
    validate(art.text, lookups_of(CATALOG[aid]))  # `//` header comments are ES|QL comments
    assert art.text.count("APPROXIMATION") == len(art.approximations)


@pytest.mark.parametrize("aid", sorted(COMPILED))
def test_approximations_need_permission(aid: str) -> None:
    if aid in EXACT:
        assert not BACKEND.compile(CATALOG[aid]).approximations
        return
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(CATALOG[aid])
    assert {d.code for d in exc.value.diagnostics} == {"E202"}


def test_support_levels_match_behaviour() -> None:
    assert isinstance(BACKEND, EsqlBackend)
    assert BACKEND.SUPPORT[ir.Join].level == "exact"
    assert BACKEND.SUPPORT[ir.Sequence].level == "exact"
    assert BACKEND.SUPPORT[ir.Cooccurrence].level == "approximate"


def test_profile_types_agree_with_the_oracle_schema() -> None:
    schema = ecs_types()
    for name, kind in profile_types("ecs").items():
        if name in schema:
            assert schema[name] == kind, name


# ---------------------------------------------------------------------- construct table
# ruff: noqa: E501
SPAN = ir.Span("t.yml", 1, 1)


def _analytic(
    filt: ir.Predicate,
    *,
    derive: tuple[tuple[str, ir.Expr], ...] = (),
    lookups: tuple[ir.Lookup, ...] = (),
    enrich: tuple[ir.Enrich, ...] = (),
    detection: ir.Detection | None = None,
) -> ir.Analytic:
    meta = ir.Metadata("t", "", (), (), (), "low", None, (), ())
    s = ir.Stream("s", ir.LogSource(product="windows"), None, enrich, derive, filt, span=SPAN)
    return ir.Analytic(
        "T-1", "t.yml", meta, lookups, (s,), detection or ir.Match("s", span=SPAN), (), span=SPAN
    )


def _renderer(a: ir.Analytic, allow: bool = True) -> Renderer:
    ctx = Context("esql", a, load_profile("ecs"), allow)
    return Renderer(ctx, profile_types("ecs"), profile_arrays("ecs"))


def _where(p: ir.Predicate) -> str:
    return _renderer(_analytic(p)).pred(p)


EQ, SM, RX = ir.Eq, ir.StrMatch, ir.Regex
CASES: list[tuple[ir.Predicate, str]] = [
    (EQ("process.name", ("CMD.exe",)), 'TO_LOWER(process.name) == "cmd.exe"'),
    (EQ("process.name", ("CMD.exe",), cased=True), 'process.name == "CMD.exe"'),
    (EQ("process.name", ("a", "B")), 'TO_LOWER(process.name) IN ("a", "b")'),
    (
        EQ("process.name", ("a", "b"), quantifier="all"),
        '(TO_LOWER(process.name) == "a" AND TO_LOWER(process.name) == "b")',
    ),
    (EQ("destination.port", (443,)), "destination.port == 443"),
    (EQ("destination.port", ("443",)), "destination.port == 443"),
    (EQ("destination.port", ("https",)), "false"),
    (EQ("destination.ip", ("10.0.0.1",)), 'destination.ip == TO_IP("10.0.0.1")'),
    (EQ("event.category", ("Process",)), 'MV_CONTAINS(TO_LOWER(event.category), "process")'),
    (EQ("process.name", (None,)), "process.name IS NULL"),
    (EQ("process.name", (None, "a")), '(process.name IS NULL OR TO_LOWER(process.name) == "a")'),
    (
        ir.Not(EQ("destination.port", (443,))),
        "(destination.port IS NULL OR destination.port != 443)",
    ),
    (
        ir.Not(EQ("process.name", ("a", "b"))),
        '(process.name IS NULL OR TO_LOWER(process.name) NOT IN ("a", "b"))',
    ),
    (ir.Not(EQ("process.name", (None,))), "process.name IS NOT NULL"),
    (
        ir.Not(ir.Or((EQ("process.name", ("a",)), ir.Exists("user.name")))),
        '((process.name IS NULL OR TO_LOWER(process.name) != "a") AND user.name IS NULL)',
    ),
    (ir.Not(ir.Not(EQ("process.name", ("a",)))), 'TO_LOWER(process.name) == "a"'),
    (
        SM("process.command_line", "contains", ("A*b?",)),
        'TO_LOWER(process.command_line) LIKE "*a\\\\*b\\\\?*"',
    ),
    (SM("process.name", "startswith", ("Ab",)), 'TO_LOWER(process.name) LIKE "ab*"'),
    (
        SM("process.name", "endswith", (".EXE", ".dll")),
        'TO_LOWER(process.name) LIKE ("*.exe", "*.dll")',
    ),
    (
        SM("process.name", "startswith", ("/tmp/",), cased=True),
        'STARTS_WITH(process.name, "/tmp/")',
    ),
    (SM("process.name", "endswith", ("X",), cased=True), 'ENDS_WITH(process.name, "X")'),
    (SM("process.name", "contains", ("X",), cased=True), 'process.name LIKE "*X*"'),
    (
        SM("process.name", "contains", ("a", "b"), quantifier="all"),
        '(TO_LOWER(process.name) LIKE "*a*" AND TO_LOWER(process.name) LIKE "*b*")',
    ),
    (
        SM("destination.port", "startswith", ("44",)),
        'TO_LOWER(TO_STRING(destination.port)) LIKE "44*"',
    ),
    (
        ir.Not(SM("process.name", "contains", ('"',))),
        '(process.name IS NULL OR NOT TO_LOWER(process.name) LIKE "*\\"*")',
    ),
    (
        RX("process.name", (r"^py[23]\.\d+$",)),
        'TO_LOWER(process.name) RLIKE "py[23]\\\\.[0-9]+\\n?"',
    ),
    (RX("process.name", ("Ab",), cased=True), 'process.name RLIKE ".*Ab.*"'),
    (RX("process.name", ("^[A-C]x",)), 'TO_LOWER(process.name) RLIKE "[A-Ca-c]x.*"'),
    (ir.Compare("source.bytes", "gte", 10e6), "source.bytes >= 10000000"),
    (ir.Not(ir.Compare("source.bytes", "gt", 5)), "(source.bytes IS NULL OR source.bytes <= 5)"),
    (ir.Exists("user.name"), "user.name IS NOT NULL"),
    (ir.Exists("user.name", present=False), "user.name IS NULL"),
    (
        ir.Cidr("source.ip", ("10.1.2.3/8", "::1/128")),
        'CIDR_MATCH(source.ip, "10.0.0.0/8", "::1/128")',
    ),
    (
        ir.Not(ir.Cidr("source.ip", ("10.0.0.0/8",))),
        '(source.ip IS NULL OR NOT CIDR_MATCH(source.ip, "10.0.0.0/8"))',
    ),
    (ir.And(()), "true"),
    (ir.Not(ir.And(())), "false"),
]


@pytest.mark.parametrize(("pred", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_construct_table(pred: ir.Predicate, expected: str) -> None:
    assert _where(pred) == expected
    if expected not in ("true", "false"):
        validate(
            f"FROM logs-* METADATA _id, _index, _version | WHERE {expected} | KEEP _id, _index, _version"
        )


def test_unconvertible_regex_is_e200() -> None:
    p = RX("process.name", (r"(?<=a)b",), span=SPAN)
    with pytest.raises(CompileError) as exc:
        _where(p)
    assert exc.value.diagnostics[0].code == "E200"
    assert "Lucene" in exc.value.diagnostics[0].message


def test_keyword_numeric_equality_is_an_approximation() -> None:
    p = EQ("process.name", (5,), span=SPAN)
    with pytest.raises(CompileError) as exc:
        _renderer(_analytic(p), allow=False).pred(p)
    assert exc.value.diagnostics[0].code == "E202"
    assert _where(p) == "TO_DOUBLE(process.name) == 5"


EXPRS: list[tuple[ir.Expr, str]] = [
    (ir.Call("lower", (ir.FieldRef("process.name"),)), "TO_LOWER(process.name)"),
    (
        ir.Call("basename", (ir.FieldRef("process.executable"),)),
        'REPLACE(process.executable, "(?s)^.*[/\\\\\\\\]", "")',
    ),
    (
        ir.Call("coalesce", (ir.FieldRef("zeek.conn.orig_bytes"), ir.FieldRef("source.bytes"))),
        "COALESCE(zeek.conn.orig_bytes, source.bytes)",
    ),
    (
        ir.Call("max", (ir.FieldRef("source.bytes"), ir.FieldRef("destination.bytes"))),
        "GREATEST(COALESCE(source.bytes, destination.bytes), COALESCE(destination.bytes, source.bytes))",
    ),
    (ir.Call("abs", (ir.FieldRef("source.bytes"),)), "ABS(source.bytes)"),
    (
        ir.BinOp("/", ir.FieldRef("source.bytes"), ir.FieldRef("destination.bytes")),
        "CASE(destination.bytes == 0, null, TO_DOUBLE(source.bytes) / destination.bytes)",
    ),
    (ir.BinOp("/", ir.FieldRef("source.bytes"), ir.Literal_(0)), "null"),
    (
        ir.BinOp("==", ir.FieldRef("process.name"), ir.Literal_("A")),
        'TO_LOWER(process.name) == "a"',
    ),
    (ir.BinOp("==", ir.FieldRef("process.name"), ir.Literal_(None)), "false"),
    (
        ir.UnaryOp("not", ir.BinOp(">", ir.FieldRef("source.bytes"), ir.Literal_(1))),
        "NOT COALESCE(source.bytes > 1, false)",
    ),
]


@pytest.mark.parametrize(("e", "expected"), EXPRS, ids=[str(i) for i in range(len(EXPRS))])
def test_expression_table(e: ir.Expr, expected: str) -> None:
    text, _ = _renderer(_analytic(ir.TRUE)).expr(e)
    assert text == expected
    if text != "null":
        validate(
            f"FROM logs-* METADATA _id, _index, _version | EVAL x = {text} | KEEP _id, _index, _version, x"
        )


def test_registered_domain_reads_the_ingest_field_of_ecs_names_else_cuts_labels() -> None:
    rd = ir.Call(
        "registered_domain", (ir.Call("lower", (ir.FieldRef("dns.question.name"),)),), span=SPAN
    )
    r = _renderer(_analytic(ir.TRUE), allow=False)
    assert r.expr(rd) == ("dns.question.registered_domain", "keyword")  # exact: no permission
    assert r.ctx.approximations == []
    cut = ir.Call("registered_domain", (ir.FieldRef("tls.client.server_name"),), span=SPAN)
    with pytest.raises(CompileError) as exc:
        r.expr(cut)
    assert exc.value.diagnostics[0].code == "E202"
    r = _renderer(_analytic(ir.TRUE))
    text, _ = r.expr(cut)
    assert "REPLACE(" in text
    (appx,) = r.ctx.approximations
    assert "last two labels" in appx.detail and "Direction: mixed" in appx.detail


def test_registered_domain_ingest_requirement_is_in_the_artifact() -> None:
    rd = ir.Call("registered_domain", (ir.FieldRef("destination.domain"),), span=SPAN)
    a = _analytic(ir.Eq("d", ("bbc.co.uk",)), derive=(("d", rd),))
    art = BACKEND.compile(a)
    assert art.approximations == ()
    assert (
        "// requires destination.registered_domain filled at ingest from destination.domain"
        in art.text
    )
    validate(art.text)


def test_extract_ips_is_e200() -> None:
    e = ir.Call("extract_ips", (ir.FieldRef("winlog.event_data.QueryResults"),), span=SPAN)
    with pytest.raises(CompileError) as exc:
        _renderer(_analytic(ir.TRUE)).expr(e)
    assert exc.value.diagnostics[0].code == "E200"


def test_aggregate_skeleton() -> None:
    agg = ir.Aggregate(
        "s",
        ir.Window("tumbling", 3_600_000),
        ("host.name",),
        (
            ir.Measure("out", "sum", "source.bytes"),
            ir.Measure("inb", "sum", "destination.bytes"),
            ir.Measure("sd", "stdev", "source.bytes"),
        ),
        (("ratio", ir.BinOp("/", ir.MeasureRef("out"), ir.MeasureRef("inb"))),),
        ir.BinOp(">=", ir.MeasureRef("ratio"), ir.Literal_(10)),
        span=SPAN,
    )
    art = BACKEND.compile(_analytic(ir.TRUE, detection=agg))
    q = art.query
    assert "BY window = BUCKET(@timestamp, 1 hour), host.name" in q
    assert "CASE(inb == 0, null, TO_DOUBLE(out) / inb)" in q
    assert (
        "sd = CASE(siemc_n_sd >= 2, siemc_sd_sd * SQRT(TO_DOUBLE(siemc_n_sd) / (siemc_n_sd - 1)), null)"
        in q
    )
    assert q.rstrip().endswith("KEEP window, host.name, out, inb, sd, ratio")
    validate(q)


def test_lookup_membership_and_enrichment(as_written: None) -> None:
    lk = ir.Lookup("Approved", "/x/approved.csv", ("role", "domain"), (("ws", "a.com"),))
    inv = ir.Lookup("inv", "/x/inv.csv", ("host", "role2"), (("h1", "r"),))
    en = ir.Enrich("inv", (("host", "host.name"),), (("role2", "labels.host_role"),), span=SPAN)
    p = ir.Not(
        ir.InLookup("Approved", (("role", "labels.host_role"), ("domain", "destination.domain")))
    )
    a = _analytic(p, lookups=(lk, inv), enrich=(en,))
    art = BACKEND.compile(a)
    assert "LOOKUP JOIN siemc-lookup-inv ON siemc_lc_host" in art.query
    assert "LOOKUP JOIN siemc-lookup-approved ON siemc_lc_role, siemc_lc_domain" in art.query
    assert "NOT siemc_in_Approved_1" in art.query
    validate(art.query, lookups_of(a))


# ---------------------------------------------------------------------- hostile values
def _decode(lit: str) -> str:
    """An ES|QL string literal -> its value (the grammar's escapes)."""
    assert lit[0] == lit[-1] == '"'
    return re.sub(
        r'\\([\\"nrt])', lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), lit[1:-1]
    )


HOSTILE = st.text(
    alphabet=st.sampled_from([*"ab\"'\\*?|\n\r\t`$%.^[]{}()+-/ éΣ\u2028", "\x00"]),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    value=HOSTILE,
    op=st.sampled_from(["eq", "contains", "startswith", "endswith"]),
    cased=st.booleans(),
)
def test_hostile_values_stay_literal(value: str, op: str, cased: bool) -> None:
    p: ir.Predicate
    if op == "eq":
        p = EQ("process.name", (value,), cased=cased)
    else:
        p = SM("process.name", op, (value,), cased=cased)  # type: ignore[arg-type]
    text = _where(p)
    if text == "false":
        return
    validate(
        f"FROM logs-* METADATA _id, _index, _version | WHERE {text} | KEEP _id, _index, _version"
    )
    lit = re.search(r'"(?:[^"\\]|\\.)*"', text)
    assert lit is not None
    decoded = _decode(lit[0])
    want = value if cased else value.lower()
    if op == "eq" or (cased and op in ("startswith", "endswith")):
        assert decoded == want
    else:
        core = decoded[
            1 if op != "startswith" else 0 : len(decoded) - (1 if op != "endswith" else 0)
        ]
        assert re.sub(r"\\(.)", r"\1", core) == want


@settings(max_examples=40, deadline=None)
@given(value=HOSTILE.filter(lambda v: v != ""))
def test_hostile_regex_literals(value: str) -> None:
    pat = lucene_regex(re.escape(value), lower=False)
    text = _where(RX("process.name", (re.escape(value),), cased=True))
    validate(
        f"FROM logs-* METADATA _id, _index, _version | WHERE {text} | KEEP _id, _index, _version"
    )
    assert pat.startswith(".*") and pat.endswith(".*")


@settings(max_examples=30, deadline=None)
@given(cells=st.lists(HOSTILE, min_size=1, max_size=4))
def test_hostile_lookup_cells(cells: list[str]) -> None:
    lk = ir.Lookup("allow", "/x/allow.csv", ("name",), tuple((c,) for c in cells))
    a = _analytic(ir.Not(ir.InLookup("allow", (("name", "process.name"),))), lookups=(lk,))
    art = BACKEND.compile(a, allow_approximate=True)
    validate(art.query, lookups_of(a))


# ---------------------------------------------------------------- multi-valued fields
def test_comparison_on_an_array_field_reads_its_extreme_value() -> None:
    """A comparison with a multi-valued column is null in ES|QL: some value passes the bound
    exactly when MV_MAX (> >=) or MV_MIN (< <=) does; negated, MV_MAX of no value is null."""
    gt = ir.Compare("process.args", "gt", 5, span=SPAN)
    assert _where(gt) == "MV_MAX(TO_DOUBLE(process.args)) > 5"
    assert _where(ir.Not(gt)) == "NOT COALESCE(MV_MAX(TO_DOUBLE(process.args)) > 5, false)"
    lte = ir.Compare("related.user", "lte", 1.5, span=SPAN)
    assert _where(lte) == "MV_MIN(TO_DOUBLE(related.user)) <= 1.5"
    for text in (_where(gt), _where(ir.Not(lte))):
        validate(
            f"FROM logs-* METADATA _id, _index, _version | WHERE {text} "
            "| KEEP _id, _index, _version",
            extra_fields={"process.args": "keyword", "related.user": "keyword"},
        )


def _compiled(a: ir.Analytic) -> Artifact:
    return BACKEND.compile(a, allow_approximate=True)


def test_a_column_derived_from_an_array_field_is_tested_as_an_array(as_written: None) -> None:
    derive = (("labels.arg", ir.Call("lower", (ir.FieldRef("process.args"),))),)
    art = _compiled(_analytic(EQ("labels.arg", ("-EncodedCommand",), span=SPAN), derive=derive))
    assert 'MV_CONTAINS(TO_LOWER(labels.arg), "-encodedcommand")' in art.query
    assert art.approximations == ()
    art = _compiled(_analytic(SM("labels.arg", "contains", ("enc",), span=SPAN), derive=derive))
    assert [a.construct for a in art.approximations] == ["'contains' match"]


def test_functions_and_operators_over_array_fields_are_approximations() -> None:
    for e in (
        ir.Call("basename", (ir.FieldRef("process.args"),), SPAN),
        ir.BinOp("==", ir.FieldRef("related.user"), ir.Literal_("root"), SPAN),
        ir.Call("max", (ir.FieldRef("process.args"), ir.Literal_(1)), SPAN),
    ):
        art = _compiled(_analytic(EQ("labels.x", ("a",), span=SPAN), derive=(("labels.x", e),)))
        assert len(art.approximations) == 1, e
        assert "multi-valued in ECS" in art.approximations[0].detail
    scalar = ir.Call("basename", (ir.FieldRef("process.executable"),), SPAN)
    art = _compiled(_analytic(EQ("labels.x", ("a",), span=SPAN), derive=(("labels.x", scalar),)))
    assert art.approximations == ()


def test_baseline_keyed_on_an_array_field_declares_it() -> None:
    count = (ir.Measure("n", "count", None),)
    agg = ir.Aggregate("s", ir.Window("tumbling", 3_600_000), ("related.user",), count, (), None)
    fs = ir.FirstSeen("s", ("related.user",), ("related.user",), 86_400_000, SPAN)
    a = _analytic(ir.TRUE, detection=agg)
    a = dataclasses.replace(a, baselines=(fs,))
    art = _compiled(a)
    assert any("INLINE STATS result" in x.detail for x in art.approximations)


# ------------------------------------------------------------------ target stack (--stack)
DIFF = {x.analytic.id: x.analytic for x in load_catalog(["tests/differential/esql"]).loaded}


def _on(stack: str) -> EsqlBackend:
    backend = EsqlBackend().configure({"stack": stack})
    assert isinstance(backend, EsqlBackend)
    return backend


def _codes(a: ir.Analytic, stack: str) -> set[str]:
    with pytest.raises(CompileError) as exc:
        _on(stack).compile(a, allow_approximate=True)
    return {d.code for d in exc.value.diagnostics}


def test_unknown_stack_is_a_positioned_error() -> None:
    assert _codes(CATALOG["AN1190"], "7.17") == {"E231"}
    art = _on("9.3.0").compile(CATALOG["AN1190"])
    assert "// requires Elasticsearch >= 9.3.0" in art.text


def test_correlations_need_inline_stats_before_9_3() -> None:
    for stack in ("8.19", "9.0", "9.1", "9.2"):
        assert _codes(CATALOG["AN1190"], stack) == {"E230"}  # sequence with a baseline
        assert _codes(CATALOG["AN1511"], stack) == {"E230"}  # aggregate over a stream join


def test_multi_field_lookup_join_needs_9_3(as_written: None) -> None:
    assert _codes(CATALOG["SIEMC-0012"], "9.2") == {"E232"}


def test_inlined_lookups_need_no_lookup_join_on_any_stack() -> None:
    """SIEMC-0012's lookups and registered_domain() only filter: inlined, the query has no
    LOOKUP JOIN (so it runs before 9.3) and no approximation."""
    art = _on("9.2").compile(CATALOG["SIEMC-0012"])
    assert "LOOKUP JOIN" not in art.query and "siemc-lookup" not in art.text
    assert art.approximations == ()


@pytest.mark.parametrize("stack", ["8.19", "9.0", "9.1", "9.2", "9.3"])
def test_a_process_sequence_compiles_for_every_stack_and_passes_its_validator(stack: str) -> None:
    a = DIFF["D-ESQL-11"]
    art = _on(stack).compile(a, allow_approximate=True)
    validate(art.query, lookups_of(a), stack=stack)
    assert ("INLINE STATS" in art.query) == (stack == "9.3")
    _header_names_the_oldest_stack(art, lookups_of(a), stack)
    # before 9.2 ECS array equality has no MV_CONTAINS: declared, never silently exact
    arrays = [x for x in art.approximations if x.construct == "equality on an array field"]
    assert bool(arrays) == (stack in ("8.19", "9.0", "9.1"))


def test_other_backends_ignore_the_stack_option() -> None:
    kql = get_backend("kql").configure({"stack": "bogus"})
    assert kql.options == {}
    a = CATALOG["SIEMC-0011"]
    art = kql.compile(a, profile="asim", allow_approximate=True)
    assert art.query == get_backend("kql").compile(a, profile="asim", allow_approximate=True).query


# ------------------------------------------------------------------ correlations
def test_a_sequence_not_keyed_on_one_process_is_refused() -> None:
    a = CATALOG["AN1190"]
    seq = a.detection
    assert isinstance(seq, ir.Sequence)
    no_until = dataclasses.replace(a, detection=dataclasses.replace(seq, until=None))
    assert _codes(no_until, "9.3") == {"E200"}


def test_a_join_off_the_process_identity_keeps_the_nearest_partner() -> None:
    art = BACKEND.compile(CATALOG["SIEMC-0003"])
    assert art.approximations == ()
    assert "MV_EXPAND siemc_flow_proc_partner_ts" in art.query
    assert "BY source.ip, source.port, destination.ip, destination.port, @timestamp" in art.query
    assert any("nearest" in n and "input order" in n for n in art.notes)


def test_the_process_sequence_is_one_read_grouped_by_the_identity() -> None:
    art = BACKEND.compile(CATALOG["AN1190"])
    q = art.query
    assert q.count("FROM ") == 1
    assert "INLINE STATS siemc_seq_start = MIN(@timestamp) WHERE siemc_step_1" in q
    assert "BY host.name, process.entity_id" in q
    assert "proc_end" not in q  # the identity needs no end events
    assert art.approximations == ()


# ------------------------------------------------------------------ esql2: sequences to children,
# hopping buckets, exact distinct counts
def test_a_sequence_to_the_children_is_two_inline_stats_and_needs_9_3() -> None:
    art = BACKEND.compile(CATALOG["SIEMC-0005"])
    q = art.query
    assert art.approximations == () and q.count("FROM ") == 1
    assert q.count("INLINE STATS") == 2  # the join to the child's start, then the pairing
    assert "siemc_seq_key_2 = CASE(siemc_step_1, process.entity_id, siemc_step_2, " in q
    assert "BY host.name, process.entity_id = siemc_seq_key_2" in q
    assert any("child" in n and "input order" in n for n in art.notes)
    assert _codes(CATALOG["SIEMC-0005"], "9.2") == {"E230"}


def test_a_sequence_linked_by_another_field_than_the_parent_declares_the_tie() -> None:
    a = DIFF["D-ESQL-64"]
    seq = a.detection
    assert isinstance(seq, ir.Sequence)
    net = dataclasses.replace(seq.steps[1], keys=("host.name", "process.group_leader.entity_id"))
    other = dataclasses.replace(a, detection=dataclasses.replace(seq, steps=(seq.steps[0], net)))
    art = BACKEND.compile(other, allow_approximate=True)
    assert [x.direction for x in art.approximations] == ["mixed"]
    assert "input order" in art.approximations[0].detail


def test_a_first_step_that_is_not_a_process_start_is_refused_with_the_nearest_form() -> None:
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(CATALOG["SIEMC-0004"], allow_approximate=True)
    (d,) = exc.value.diagnostics
    assert d.code == "E200" and "process start" in d.message
    assert "[host.name, process.entity_id]" in (d.help or "")


def test_a_growing_sliding_condition_is_a_superset_over_hopping_buckets() -> None:
    for aid in ("SIEMC-0007", "SIEMC-0008"):
        art = BACKEND.compile(CATALOG[aid], allow_superset=True)
        assert [x.direction for x in art.approximations] == ["superset"]
        assert "MV_EXPAND window" in art.query and "window_end = window + " in art.query
    a = CATALOG["SIEMC-0008"]
    agg = a.detection
    assert isinstance(agg, ir.Aggregate)
    few = dataclasses.replace(
        agg, having=ir.BinOp("<", ir.MeasureRef("event_count"), ir.Literal_(30))
    )
    art = BACKEND.compile(dataclasses.replace(a, detection=few), allow_approximate=True)
    assert [x.direction for x in art.approximations] == ["mixed"]
    assert "MV_EXPAND" not in art.query


def test_a_distinct_count_is_exact_by_grouping_on_the_value() -> None:
    art = BACKEND.compile(CATALOG["SIEMC-0007"], allow_superset=True)
    assert "COUNT_DISTINCT" not in art.query
    assert "| STATS BY window, source.ip, destination.ip, destination.port\n" in art.query
    assert "| STATS value_count = COUNT(destination.port)\n    BY window, " in art.query
    assert not any(x.construct == "distinct count" for x in art.approximations)


def test_a_cooccurrence_is_a_superset_over_hopping_buckets() -> None:
    art = BACKEND.compile(CATALOG["SIEMC-0006"], allow_superset=True)
    assert [(x.construct, x.direction) for x in art.approximations] == [
        ("unordered co-occurrence", "superset")
    ]
    q = art.query
    assert "| MV_EXPAND window\n" in q and "BY window, host.name\n" in q
    assert "events_discovery = COUNT(*) WHERE siemc_in_discovery" in q
    assert "WHERE events_interactive_shell >= 1 AND events_discovery >= 1 AND " in q


def _header_names_the_oldest_stack(art: Artifact, lookups: Any, target: str) -> None:
    """The header's stack runs the query (the validator accepts it there) and the stack before
    it does not, unless it is the oldest known; it is never newer than the target."""
    m = re.search(r"^// requires Elasticsearch >= (\d+\.\d+)\.0$", art.text, re.M)
    assert m is not None, art.text
    named = m.group(1)
    assert STACKS.index(named) <= STACKS.index(target)
    validate(art.query, lookups, stack=named, rule_shape=False)
    # MV_CONTAINS exists from 9.2 (its function page: preview 9.2.0); the validator does not
    # check functions' versions, so only the commands' stacks are proven minimal here
    if named != STACKS[0] and "MV_CONTAINS(" not in art.query:
        with pytest.raises(Exception):  # noqa: B017 - the validator's syntax or feature error
            validate(art.query, lookups, stack=STACKS[STACKS.index(named) - 1], rule_shape=False)


def test_every_catalog_query_names_the_oldest_stack_it_runs_on() -> None:
    compiled = 0
    for aid, a in sorted(CATALOG.items()):
        try:
            art = EsqlBackend().compile(a, allow_approximate=True)
        except CompileError as exc:
            # a refusal is a positioned diagnostic, never a header to check
            assert exc.diagnostics and all(d.line > 0 for d in exc.diagnostics), aid
            continue
        _header_names_the_oldest_stack(art, lookups_of(a), DEFAULT_STACK)
        compiled += 1
    # at least every analytic the catalog table says ES|QL compiles (docs/catalog.md)
    assert compiled >= 15
