"""Splunk SPL backend: catalog outcomes, grammar validation, translation table, hostile values."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import get_backend
from backends.base import NODE_TYPES, Artifact, CompileError
from backends.splunk import psl
from backends.splunk.expr import ExprRenderer, NotACondition, PredicateRenderer
from backends.splunk.macros import definitions
from compiler import ir
from compiler.discover import load_catalog
from compiler.lower import load_file, load_text
from tests.oracles.spl_grammar import SplError, check, expand_macros, lex, validate
from tests.test_explain import SLIDING

ROOT = Path(__file__).resolve().parent.parent
BACKEND = get_backend("splunk")
CATALOG = {x.analytic.id: x.analytic for x in load_catalog([ROOT / "analytics"]).loaded}


def macro_defs(art: Artifact) -> dict[str, str]:
    """The macro definitions an artifact's query calls (what macros.conf ships)."""
    return definitions(art.query, art.profile, art.analytic)


# The catalog with the default cim profile: the Zeek add-on's raw fields and the process-flow
# source (AN1511) are in the profile, and a sequence keyed on (host, PID) until the process
# ends keys on process_guid (AN1190), so it needs no end events. SIEMC-0009 reads process end
# events, which the CIM has not (the sysmon profile has).
# SIEMC-0018: the CIM has no event code (its counted step compiles: counted.py, cnt_* fixtures)
CIM_REFUSED = {"SIEMC-0009": {"E210"}, "SIEMC-0018": {"E210"}}
COMPILED = set(CATALOG) - set(CIM_REFUSED)
EXACT = {
    "AN1190",
    "AN1511",
    "SIEMC-0003",
    "SIEMC-0004",
    "SIEMC-0005",
    "SIEMC-0011",
    "SIEMC-0012",
    # consuming windows and co-occurrences: sorted streamstats with reset_after (consume.py)
    "SIEMC-0006",
    "SIEMC-0007",
    "SIEMC-0008",
    "SIEMC-0010",
} | {
    # the deployable forms (docs/catalog.md)
    "SIEMC-0013",
    "SIEMC-0014",
    "SIEMC-0015",
    "SIEMC-0016",
    "SIEMC-0017",
}
APPROXIMATE = COMPILED - EXACT
# the Security log's logon fields are EventData names on sysmon, and the CIM has no event code
UNSOURCED: set[str] = {"SIEMC-0018"}


def test_support_table_is_exhaustive() -> None:
    assert set(BACKEND.SUPPORT) == set(NODE_TYPES)
    assert all(s.how for s in BACKEND.SUPPORT.values())


def test_catalog_outcomes() -> None:
    ok, errs = set(), {}
    for aid, a in CATALOG.items():
        try:
            art = BACKEND.compile(a, allow_approximate=True)
        except CompileError as exc:
            errs[aid] = {d.code for d in exc.diagnostics}
            continue
        ok.add(aid)
        assert (not art.approximations) == (aid in EXACT), aid
    assert ok == COMPILED and errs == CIM_REFUSED
    # the sysmon profile: raw Sysmon has no flows and no Zeek or TLS fields
    refused, exact = {}, set()
    for aid, a in CATALOG.items():
        try:
            art = BACKEND.compile(a, profile="sysmon", allow_approximate=True)
        except CompileError as exc:
            refused[aid] = {d.code for d in exc.diagnostics}
            continue
        if not art.approximations:
            exact.add(aid)
    assert refused == {
        "AN1511": {"E211"},
        "SIEMC-0003": {"E211"},
        "SIEMC-0007": {"E211"},
        "SIEMC-0010": {"E211"},
        "SIEMC-0011": {"E211"},
        "SIEMC-0012": {"E211"},
        "SIEMC-0013": {"E211"},
        "SIEMC-0015": {"E211"},
        "SIEMC-0018": {"E211"},  # Security events name source.ip, user.name in EventData
    }
    assert exact == {
        "AN1190",
        "SIEMC-0004",
        "SIEMC-0005",
        "SIEMC-0006",
        "SIEMC-0008",
        "SIEMC-0009",
        "SIEMC-0014",
        "SIEMC-0016",
        "SIEMC-0017",
    }


@pytest.mark.parametrize("aid", sorted(COMPILED))
def test_catalog_queries_pass_the_grammar(aid: str) -> None:
    art = BACKEND.compile(CATALOG[aid], allow_approximate=True)
    validate(expand_macros(art.query, macro_defs(art)))
    # the ``` header is a valid inline comment
    validate(expand_macros(art.text, macro_defs(art)))
    assert art.text.startswith("``` " + aid)


def _needs_permission(analytic: ir.Analytic) -> None:
    with pytest.raises(CompileError) as info:
        BACKEND.compile(analytic)
    assert {d.code for d in info.value.diagnostics} == {"E202"}
    assert "splunk can only approximate" in info.value.diagnostics[0].message


def test_approximations_need_permission() -> None:
    # no bundled analytic approximates on Splunk any more: a sliding distinct count beside an
    # event count does (tests/test_explain.py), and so does every catalog pair that would
    _needs_permission(load_text("sliding.yml", SLIDING).analytic)
    for aid in sorted(APPROXIMATE):
        _needs_permission(CATALOG[aid])


# Variants of the catalog with the fields the CIM lacks replaced by mapped ones, so every
# construct (enrich, lookup membership, joins in all directions, rarity, absence, percentile)
# reaches the grammar check.
SUBS = [
    ("tls.client.server_name", "destination.domain"),
    ("zeek.conn.orig_bytes", "source.bytes"),
    ("zeek.conn.resp_bytes", "destination.bytes"),
    ("      event.type: end\n", ""),
    ("      event.type: start\n", ""),
    ("event.type: end", "process.name: x"),
    ("      zeek.conn.conn_state|cased: [S0, REJ, RSTO, RSTR, SH, OTH]\n", ""),
    ("      zeek.conn.tunnel_parents|exists: false\n", ""),
]


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ir.Analytic]:
    d = tmp_path_factory.mktemp("spl") / "analytics"
    shutil.copytree(ROOT / "analytics", d)
    out = {}
    for f in sorted(d.glob("*.yml")):
        text = f.read_text(encoding="utf-8")
        for old, new in SUBS:
            text = text.replace(old, new)
        f.write_text(text, encoding="utf-8")
        an = load_file(f).analytic
        out[an.id] = an
    return out


def test_every_variant_compiles_and_passes(variants: dict[str, ir.Analytic]) -> None:
    assert set(variants) == set(CATALOG)
    for aid, a in variants.items():
        if aid in UNSOURCED:
            continue
        art = BACKEND.compile(a, allow_approximate=True)
        assert check(art.text, macro_defs(art)) is None, (aid, check(art.text, macro_defs(art)))
        # match + enrich + lookup + registered_domain() by the Public Suffix List lookup: exact
    exact = BACKEND.compile(variants["SIEMC-0012"])
    assert exact.approximations == ()
    assert "lookup siemc_public_suffix_list suffix AS siemc_rdc OUTPUT rank AS siemc_rdr" in (
        exact.query
    )
    assert "lookup definition siemc_public_suffix_list:" in exact.text
    assert "lookup approved role AS labels_host_role" in exact.query
    assert "where isnull(siemc_in_1)" in exact.query
    assert "case_sensitive_match = false" in exact.text


def test_join_directions_and_baselines(variants: dict[str, ir.Analytic]) -> None:
    q3 = BACKEND.compile(variants["SIEMC-0003"], allow_approximate=True).query
    # around: partners carried both ways, partners first at one time, earliest input last
    assert "sort 0 _time siemc_jr -siemc_seq" in q3 and "sort 0 -_time siemc_jr -siemc_seq" in q3
    assert "streamstats time_window=86401s last(siemc_bt) AS siemc_bt" in q3
    # a value counts only when it came from the nearest partner
    assert "if(siemc_bh0==siemc_bs, siemc_bv0, null())" in q3
    q10 = BACKEND.compile(variants["SIEMC-0010"], allow_approximate=True).query
    # rarity in one pass: the candidates judged at the start of streamstats' window, one row
    # per across value seen, each value's latest occurrence tested against the lookback
    assert "min(_time) AS siemc_ws BY labels_host_role destination_registered_domain" in q10
    assert 'siemc_ra=if(siemc_role=="h", floor(_time/86400), null())' in q10
    assert "eventstats dc(siemc_ro) AS siemc_rn BY _time siemc_h0 siemc_h1" in q10
    assert (
        'siemc_role=="c" AND siemc_ri==0 AND _time-2592000>=info_min_time AND '
        "(isnull(siemc_rn) OR siemc_rn<3)"
    ) in q10
    assert "join " not in q10
    q9 = BACKEND.compile(variants["SIEMC-0009"], allow_approximate=True).query
    assert "streamstats current=f time_window=301s last(siemc_mt) AS siemc_next" in q9
    # AN1511's measures over a source that counts bytes (Zeek conn): an exact nearest rank
    flows = load_file(ROOT / "tests/differential/splunk/s_p1_flow_upload_percentile.yml")
    q1511 = BACKEND.compile(flows.analytic, allow_approximate=True)
    assert "max(siemc_pv0) AS p90_out" in q1511.query
    assert "eval siemc_pv0=if(siemc_pr0==max(1, ceil(siemc_pc0*90/100)), siemc_pn0, null())" in (
        q1511.query
    )
    assert "bin span=1h _time" in q1511.query
    assert "eval ratio=if(bytes_in==0, null(), bytes_out/bytes_in)" in q1511.query
    assert not any(x.construct == "percentile measure" for x in q1511.approximations)


# ---------------------------------------------------------------------- translation table
def _pr() -> PredicateRenderer:
    return PredicateRenderer(lambda n, s: n.replace(".", "_"), lambda p: "siemc_in_1")


PRED_CASES: list[tuple[ir.Predicate, str, str]] = [
    # (predicate, search form or "" when not searchable, where form)
    (ir.Eq("a", ("X",)), 'a="X"', 'lower(a)=="x"'),
    (ir.Eq("a", ("X",), cased=True), "", 'a=="X"'),
    (ir.Eq("a", (443,)), "", "a==443"),
    (ir.Eq("a", ("x*y",)), "", 'lower(a)=="x*y"'),
    (ir.Eq("a", (None,)), "", "isnull(a)"),
    (ir.Not(ir.Eq("a", ("x",))), 'NOT a="x"', '(isnull(a) OR NOT lower(a)=="x")'),
    (ir.StrMatch("a", "contains", ("Ab",)), 'a="*Ab*"', 'like(lower(a), "%ab%")'),
    (ir.StrMatch("a", "startswith", ("Ab",)), 'a="Ab*"', 'like(lower(a), "ab%")'),
    (ir.StrMatch("a", "endswith", ("Ab",)), 'a="*Ab"', 'like(lower(a), "%ab")'),
    (ir.StrMatch("a", "contains", ("5%_",)), 'a="*5%_*"', 'match(lower(a), "5\\\\%\\\\_")'),
    (ir.StrMatch("a", "startswith", ("/tmp/",), cased=True), "", 'match(a, "^\\\\/tmp\\\\/")'),
    (
        ir.StrMatch("a", "contains", ("x", "y"), quantifier="all"),
        '(a="*x*" AND a="*y*")',
        '(like(lower(a), "%x%") AND like(lower(a), "%y%"))',
    ),
    # Python's \d is Unicode: PCRE's \d is ASCII-only, \p{Nd} is Python's
    (ir.Regex("a", ("^x\\d",)), "", 'match(a, "(?i)^x\\\\p{Nd}")'),
    # syntax PCRE reads otherwise is re-spelled: {,3} (PCRE2 before 10.43: literal text), \N{}
    (ir.Regex("a", ("^x.{,3}\\N{DIGIT ONE}",), True), "", 'match(a, "^x.{0,3}1")'),
    (ir.Regex("a", ("^x",), cased=True), "", 'match(a, "^x")'),
    (ir.Compare("a", "gte", 10.0), "", "tonumber(a)>=10"),
    (ir.Not(ir.Compare("a", "gt", 1.5)), "", "(isnull(tonumber(a)) OR NOT tonumber(a)>1.5)"),
    (ir.Exists("a"), "a=*", "isnotnull(a)"),
    (ir.Exists("a", present=False), "NOT a=*", "isnull(a)"),
    (ir.Not(ir.Exists("a")), "NOT a=*", "isnull(a)"),
    (ir.InLookup("l", (("c", "a"),)), "", "isnotnull(siemc_in_1)"),
    (ir.Not(ir.InLookup("l", (("c", "a"),))), "", "isnull(siemc_in_1)"),
    (
        ir.Not(ir.And((ir.Eq("a", (1,)), ir.Exists("b")))),
        "",
        "((isnull(a) OR NOT a==1) OR isnull(b))",
    ),
    (
        ir.Or((ir.Eq("a", ("x",)), ir.Eq("b", ("y",)))),
        '(a="x" OR b="y")',
        '(lower(a)=="x" OR lower(b)=="y")',
    ),
]


@pytest.mark.parametrize(("pred", "search", "where"), PRED_CASES)
def test_predicate_table(pred: ir.Predicate, search: str, where: str) -> None:
    pr = _pr()
    assert pr.searchable(pred) == bool(search)
    if search:
        assert pr.search(pred) == search
        validate("search index=* " + search)
    assert pr.where(pred) == where
    validate("search index=* | where " + where)


def test_cidr_normalises_networks() -> None:
    text = _pr().where(ir.Cidr("ip", ("10.1.2.3/8", "::1/128")))
    assert 'cidrmatch("10.0.0.0/8", replace(trim(ip), "(?i)^::ffff:' in text
    assert 'cidrmatch("::1/128"' in text
    validate("search index=* | where " + text)


EXPR_CASES: list[tuple[ir.Expr, str]] = [
    (ir.BinOp("/", ir.MeasureRef("o"), ir.MeasureRef("i")), "if(i==0, null(), o/i)"),
    (ir.BinOp("/", ir.MeasureRef("o"), ir.Literal_(1_000_000)), "(o/1000000)"),
    (ir.BinOp("+", ir.FieldRef("a"), ir.Literal_(1)), "(tonumber(a)+1)"),
    (ir.Call("coalesce", (ir.FieldRef("a"), ir.Literal_(0))), "coalesce(a, 0)"),
    (ir.Call("max", (ir.FieldRef("a"), ir.MeasureRef("b"))), "max(tonumber(a), b)"),
    (ir.Call("basename", (ir.FieldRef("p"),)), 'replace(p, "^.*[\\\\\\\\/]", "")'),
    # eval cannot assign a boolean: a boolean value is stored as the text "true"/"false"
    (ir.BinOp("==", ir.FieldRef("a"), ir.Literal_("X")), 'if((lower(a)=="x"), "true", "false")'),
    (ir.BinOp("!=", ir.FieldRef("a"), ir.Literal_(None)), 'if(false(), "true", "false")'),
    (ir.Literal_(True), '"true"'),
    (
        ir.BinOp("==", ir.FieldRef("a"), ir.FieldRef("b")),
        'if((a==b OR lower(a)==lower(b)), "true", "false")',
    ),
    (
        ir.UnaryOp("not", ir.BinOp(">", ir.FieldRef("a"), ir.Literal_(1))),
        'if((if((tonumber(a)>1), 1, 0)==0), "true", "false")',
    ),
]


@pytest.mark.parametrize(("expr", "text"), EXPR_CASES)
def test_expression_table(expr: ir.Expr, text: str) -> None:
    out = ExprRenderer(lambda r: r.name).render(expr)
    assert out == text
    validate(f"search index=* | eval x={out}")


COND_CASES: list[tuple[ir.Expr, frozenset[str], str]] = [
    (ir.BinOp("==", ir.FieldRef("a"), ir.Literal_("X")), frozenset(), '(lower(a)=="x")'),
    (ir.FieldRef("flag"), frozenset({"flag"}), '(flag=="true")'),
    (
        ir.UnaryOp("not", ir.FieldRef("flag")),
        frozenset({"flag"}),
        '(if((flag=="true"), 1, 0)==0)',
    ),
    (ir.BinOp("==", ir.FieldRef("flag"), ir.Literal_(True)), frozenset({"flag"}), '(flag=="true")'),
    (ir.BinOp("==", ir.FieldRef("f"), ir.Literal_(False)), frozenset(), '(lower(f)=="false")'),
    # a boolean never equals a string or a number
    (ir.BinOp("==", ir.FieldRef("flag"), ir.Literal_("true")), frozenset({"flag"}), "false()"),
    (ir.BinOp("!=", ir.FieldRef("flag"), ir.Literal_(1)), frozenset({"flag"}), "true()"),
    (ir.BinOp("<", ir.MeasureRef("n"), ir.MeasureRef("m")), frozenset(), "(n<m)"),
]


@pytest.mark.parametrize(("expr", "bools", "text"), COND_CASES)
def test_condition_table(expr: ir.Expr, bools: frozenset[str], text: str) -> None:
    r = ExprRenderer(lambda r: r.name)
    r.booleans = bools
    out = r.cond(expr)
    assert out == text
    validate(f"search index=* | where {out}")


def test_non_boolean_condition_is_not_implemented() -> None:
    r = ExprRenderer(lambda r: r.name)
    with pytest.raises(NotACondition):
        r.cond(ir.UnaryOp("not", ir.FieldRef("a")))


def test_registered_domain_is_valid_eval() -> None:
    out = ExprRenderer(lambda r: r.name).render(
        ir.Call("registered_domain", (ir.Call("lower", (ir.FieldRef("d"),)),))
    )
    assert out.startswith("if(len(lower(d))==0, null(), ")
    validate(f"search index=* | eval x={out}")


# ---------------------------------------------------------------------- small analytics
META = ir.Metadata("t", "", (), (), (), "low", None, (), ())


def _analytic(filter: ir.Predicate, det: ir.Detection | None = None) -> ir.Analytic:
    s = ir.Stream("s", ir.LogSource("process_creation"), None, (), (), filter)
    return ir.Analytic("T-1", "t.yml", META, (), (s,), det or ir.Match("s"), ())


def test_match_is_a_plain_search() -> None:
    a = _analytic(ir.And((ir.Eq("process.name", ("cmd.exe",)), ir.Compare("process.pid", "gt", 4))))
    art = BACKEND.compile(a)
    assert art.query == (
        'search `siemc_process_creation` process_name="cmd.exe"\n'
        "| where tonumber(process_id)>4\n"
        "| `t_1_filter`\n"
    )
    assert macro_defs(art) == {
        "siemc_process_creation": "index=* tag=process tag=report",
        "t_1_filter": "search *",
    }
    assert art.text.splitlines()[0] == "``` T-1: t ```"


def test_unmapped_field_names_profile_and_span() -> None:
    a = _analytic(ir.Eq("file.hash.sha256", ("00",), span=ir.Span("t.yml", 3, 7)))
    with pytest.raises(CompileError) as info:
        BACKEND.compile(a)
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.col) == ("E210", 3, 7)
    assert "cim profile" in d.message and "splunk" in d.message


def test_tumbling_aggregate_exact() -> None:
    agg = ir.Aggregate(
        "s",
        ir.Window("tumbling", 3_600_000),
        ("host.name",),
        (ir.Measure("n", "count", None), ir.Measure("sd", "stdev", "process.pid")),
        (),
        ir.BinOp(">=", ir.MeasureRef("n"), ir.Literal_(5)),
    )
    art = BACKEND.compile(_analytic(ir.TRUE, agg))
    assert art.approximations == ()
    assert art.query.splitlines()[1:] == [
        "| bin span=1h _time",
        "| stats count AS n stdev(process_id) AS sd BY _time dvc",
        "| where (n>=5)",
        "| table _time dvc n sd",
        "| `t_1_filter`",
    ]


# ---------------------------------------------------------------------- the grammar itself
GOOD = [
    # consuming windows (backends/splunk/consume.py)
    "search index=* | sort 0 str(k0) -str(k1) _time siemc_seq",
    'search index=* | streamstats window=3 global=false reset_after="(n>=3 AND _time-w<=60)" '
    "count AS n min(_time) AS w BY k",
    'search index=* a="x" NOT b=* (c="1" OR d>2)',
    "search index=* | where x=1",  # = and == are both equality in eval expressions
    "search index=* | where x==1 AND NOT isnull(y)",
    "search index=* | eval a=if(b==\"c\", 1, null()), 'd.e'=lower(f)",
    'search index=* | eval same=if(a==b, "true", "false") | where same=="true"',
    'search index=* | where if(isnull(a), 1, 0)==0 AND (like(b, "x%") OR cidrmatch("::1/128", c))',
    "search index=* | stats count dc(a) AS b BY c d",
    "search index=* | bin span=5m _time | stats sum(x) AS y BY _time",
    "search index=* | streamstats current=f time_window=1h avg(x) AS m BY k",
    "| multisearch [search index=a | eval s=1] [search index=b | where x>1]",
    'search index=* | rex field=a max_match=0 "(?<ip>\\\\d+)"',
    'search a ``` a comment with "quote ``` | table a',
    'search index=* | transaction k startswith=eval(s=="a") endswith=eval(s=="b") maxspan=30s',
    "search index=* | join type=left max=1 k [search index=x | stats min(_time) AS f BY k]",
]

BAD = [
    ('search index=* a="x', "unbalanced double quote"),
    ("search index=* | frobnicate x", "unknown command"),
    ("search index=* | stats avrg(x) BY y", "unknown stats function"),
    ("search index=* | stats count BY", "BY needs field names"),
    ("search index=* a==1", "'==' is not a search operator"),
    ("search index=* | where lowr(x)==1", "unknown eval function"),
    ("search index=* | where if(x, 1)", "takes 3..3 arguments"),
    ("search index=* | where x===1", "unexpected '='"),
    ("search index=* | where x==", "unexpected end"),
    ("search index=* | eval =1", "field name expected"),
    ("search index=* ``` open comment", "unterminated"),
    ("search index=* | bin span=1fortnight _time", "bad value"),
    ("| multisearch [search a | stats count] [search b]", "not a streaming command"),
    ("| multisearch [search a]", "at least two"),
    ("search index=* | where (x==1", "unexpected end"),
    ("search index=* | where x==1)", "unexpected ')'"),
    ("search index=* [search x", "unbalanced '['"),
    ('search index=* | rex field=a "(\\\\d+)"', "named capturing group"),
    ('search index=* | where match(a, "(")', "invalid regular expression"),
    ("search index=* | multisearch [search a] [search b]", "must be the first command"),
    ("search index=* | streamstats time_window=1h BY k", "no statistical function"),
    ("search index=* | sort", "sort needs a field"),
    ("search index=* | sort 0 str(k", "unexpected end"),
    ('search index=* | streamstats reset_after="n>=2" count AS n', 'takes "(<eval-expression>)"'),
    ('search index=* | streamstats reset_after="(n+1)" count AS n', "needs a boolean expression"),
    ("search index=* | streamstats reset_after=(n>=2) count AS n", "bad value"),
    # eval cannot store a Boolean (Eval reference, Usage), in any of its forms
    ("search index=* | eval x=(a==b)", "cannot be assigned a boolean"),
    ("search index=* | eval x=a!=1", "cannot be assigned a boolean"),
    ("search index=* | eval x=(a<1 AND b>2)", "cannot be assigned a boolean"),
    ("search index=* | eval x=a==1 OR b==2", "cannot be assigned a boolean"),
    ("search index=* | eval x=a==1 XOR b==2", "cannot be assigned a boolean"),
    ("search index=* | eval x=NOT a==1", "cannot be assigned a boolean"),
    ('search index=* | eval x=like(a, "b%")', "cannot be assigned a boolean"),
    ('search index=* | eval x=match(a, "b")', "cannot be assigned a boolean"),
    ('search index=* | eval x=cidrmatch("10.0.0.0/8", a)', "cannot be assigned a boolean"),
    ("search index=* | eval x=isnull(a)", "cannot be assigned a boolean"),
    ("search index=* | eval x=isnotnull(a)", "cannot be assigned a boolean"),
    ('search index=* | eval x=in(a, "b", "c")', "cannot be assigned a boolean"),
    ('search index=* | eval x=searchmatch("a=b")', "cannot be assigned a boolean"),
    ("search index=* | eval x=true()", "cannot be assigned a boolean"),
    ("search index=* | eval y=1, x=if(a==1, true(), false())", "cannot be assigned a boolean"),
    ("search index=* | eval x=coalesce(a==1, b)", "cannot be assigned a boolean"),
    # and the places that need a Boolean do not take a value
    ("search index=* | where a", "where needs a boolean expression"),
    ("search index=* | where a AND b==1", "'AND' only takes boolean arguments"),
    ("search index=* | where NOT a", "'NOT' only takes boolean arguments"),
    ("search index=* | eval x=if(a, 1, 0)", "if() condition only takes boolean"),
]


@pytest.mark.parametrize("q", GOOD)
def test_grammar_accepts(q: str) -> None:
    validate(q)


@pytest.mark.parametrize(("q", "msg"), BAD)
def test_grammar_rejects(q: str, msg: str) -> None:
    with pytest.raises(SplError, match=re.escape(msg)):
        validate(q)


# ---------------------------------------------------------------------- hostile values
HOSTILE = st.text(
    alphabet=st.sampled_from(list("ab\"\\*?|[]()`=%_\n\t '.$^{}é€ÄΣ")), min_size=1, max_size=12
)


def _unquote_search(tok: str) -> str:
    return re.sub(r"\\(.)", r"\1", tok[1:-1])


def _unquote_eval(tokens: list[str]) -> str:
    """Join a concatenation of eval string literals back into its value."""
    return "".join(re.sub(r"\\(.)", r"\1", t[1:-1]) for t in tokens)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=HOSTILE, op=st.sampled_from(["eq", "contains", "startswith", "endswith"]))
def test_hostile_values_stay_literal(value: str, op: str) -> None:
    pred: ir.Predicate
    if op == "eq":
        pred = ir.Eq("process.name", (value,))
    else:
        pred = ir.StrMatch("process.name", op, (value,))  # type: ignore[arg-type]
    for p in (pred, ir.Not(pred)):
        art = BACKEND.compile(_analytic(p))
        assert check(art.text, macro_defs(art)) is None, (
            art.query,
            check(art.text, macro_defs(art)),
        )
    pr = _pr()
    if pr.searchable(pred):
        toks = [t for t in lex(pr.search(pred), "search") if t.kind == "STR"]
        pre, post = {"eq": ("", ""), "contains": ("*", "*")}.get(op, ("", ""))
        if op == "startswith":
            post = "*"
        if op == "endswith":
            pre = "*"
        assert _unquote_search(toks[0].text) == pre + value + post
    else:
        strs = [t.text for t in lex(pr.where(pred), "eval") if t.kind == "STR"]
        if op == "eq":
            assert _unquote_eval(strs) == value.lower()
        assert "```" not in pr.where(pred)


@settings(max_examples=60, deadline=None)
@given(value=HOSTILE)
def test_hostile_values_in_lookup_and_cased_match(value: str) -> None:
    p = ir.And(
        (
            ir.Eq("user.name", (value,), cased=True),
            ir.StrMatch("process.command_line", "contains", (value,), cased=True),
            ir.Not(ir.InLookup("allow", (("col", "user.name"),))),
        )
    )
    art = BACKEND.compile(_analytic(p))
    assert check(art.text, macro_defs(art)) is None, art.query


# ---------------------------------------------------------------------- boolean values
def test_boolean_derive_is_stored_as_text_and_read_back_as_a_condition() -> None:
    # issue 7: `labels.same_host: source.ip == destination.ip` emitted eval x=(a==b), which
    # Splunk rejects ("Fields cannot be assigned a boolean result")
    a = load_file(ROOT / "tests/differential/splunk/b_d01_boolean_derive.yml").analytic
    q = BACKEND.compile(a).query
    assert (
        'eval labels_same_host=if((src_ip==dest_ip OR lower(src_ip)==lower(dest_ip)), "true", '
        '"false")' in q
    )
    assert '(if((labels_same_host=="true"), 1, 0)==0)' in q  # `not` is two-valued
    assert 'lower(labels_same_host)=="true"' in q  # the filter `labels.same_host: true`
    validate(expand_macros(q, macro_defs(BACKEND.compile(a))))
    b = load_file(ROOT / "tests/differential/splunk/b_d02_boolean_compute.yml").analytic
    q2 = BACKEND.compile(b).query
    assert 'eval busy=if((n>=2), "true", "false")' in q2
    assert 'where ((busy=="true") AND (if((mixed=="true"), 1, 0)==0))' in q2
    validate(expand_macros(q2, macro_defs(BACKEND.compile(b))))
    # a boolean never equals text, although Splunk holds it as text: `[true, "yes"]` keeps
    # true, and `not: {labels.same_host: "true"}` is always true
    c = load_file(ROOT / "tests/differential/splunk/b_d03_boolean_vs_text.yml").analytic
    q3 = BACKEND.compile(c).query
    assert q3.splitlines()[-2] == '| where lower(labels_same_host)=="true"'
    assert "yes" not in q3


def test_a_value_read_as_a_condition_is_not_implemented() -> None:
    span = ir.Span("t.yml", 4, 9)
    s = ir.Stream(
        "s",
        ir.LogSource("process_creation"),
        None,
        (),
        (("x", ir.UnaryOp("not", ir.FieldRef("process.name", span=span), span)),),
        ir.TRUE,
    )
    a = ir.Analytic("T-1", "t.yml", META, (), (s,), ir.Match("s"), ())
    with pytest.raises(CompileError) as info:
        BACKEND.compile(a)
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.col) == ("E201", 4, 9)
    assert "condition" in d.message


# ---------------------------------------------------------------------- data sources
def test_an1511_reads_flows_that_name_the_process() -> None:
    """Issue 7: AN1511 searched Sysmon/Security sourcetypes for byte counts, which they never
    carry. Its flows come from the process-flow source of the cim profile (flows that also
    name the process, e.g. an EDR's per-connection summaries), which users point at theirs."""
    art = BACKEND.compile(CATALOG["AN1511"])
    assert art.approximations == ()
    assert "[search `siemc_windows_process_flows` |" in art.query
    assert macro_defs(art)["siemc_windows_process_flows"] == (
        "index=* tag=network tag=communication process_guid=* (bytes_in=* OR bytes_out=*)"
    )


def test_windows_connections_carry_no_bytes() -> None:
    """A connection stream of the Windows sourcetypes that reads byte counts is E211, naming
    the sources that carry them."""
    s = ir.Stream(
        "s",
        ir.LogSource("network_connection", "windows"),
        None,
        (),
        (),
        ir.Compare("source.bytes", "gt", 0, span=ir.Span("t.yml", 5, 7)),
    )
    a = ir.Analytic("T-1", "t.yml", META, (), (s,), ir.Match("s"), ())
    with pytest.raises(CompileError) as info:
        BACKEND.compile(a)
    (d,) = info.value.diagnostics
    assert d.code == "E211" and "logsource 'windows'" in d.message
    assert "Sysmon EventCode 3" in d.message and (d.line, d.col) == (5, 7)
    assert (
        d.help is not None and "logsource {category: network_connection, product: zeek}" in d.help
    )


def test_connections_without_bytes_still_compile() -> None:
    """The Windows sourcetypes stay the source of connection events that read no counters."""
    s = ir.Stream(
        "s",
        ir.LogSource("network_connection", "windows"),
        None,
        (),
        (),
        ir.Eq("destination.port", (443,)),
    )
    a = ir.Analytic("T-1", "t.yml", META, (), (s,), ir.Match("s"), ())
    art = BACKEND.compile(a)
    assert art.query.startswith("search `siemc_network_connection` `siemc_windows`")
    assert 'sourcetype="WinEventLog:Security"' in macro_defs(art)["siemc_windows"]


# --------------------------------------------------------------------------- multi-valued fields
def _answers(derive: tuple[tuple[str, ir.Expr], ...], filter: ir.Predicate) -> ir.Analytic:
    ips = (
        "dns.answer_ips",
        ir.Call("extract_ips", (ir.FieldRef("winlog.event_data.QueryResults"),)),
    )
    s = ir.Stream("s", ir.LogSource("dns_query"), None, (), (ips, *derive), filter)
    return ir.Analytic("T-1", "t.yml", META, (), (s,), ir.Match("s"), ())


def test_where_leaves_on_a_multi_valued_field_use_mvfilter() -> None:
    pred = ir.Not(ir.Cidr("dns.answer_ips", ("10.0.0.0/8", "192.168.0.0/16"), "all"))
    q = BACKEND.compile(_answers((), pred), allow_approximate=True).query
    where = q.strip().splitlines()[-2]
    assert where.startswith('| where NOT (isnotnull(mvfilter(cidrmatch("10.0.0.0/8"')
    assert ' AND isnotnull(mvfilter(cidrmatch("192.168.0.0/16"' in where
    assert "isnull(dns_answer_ips) OR" not in where  # mvfilter is two-valued already


@pytest.mark.parametrize("func", ["registered_domain", "coalesce"])
def test_other_derivations_of_a_multi_valued_field_are_e201(func: str) -> None:
    derive = (("labels.x", ir.Call(func, (ir.FieldRef("dns.answer_ips"),))),)
    with pytest.raises(CompileError) as e:
        BACKEND.compile(_answers(derive, ir.TRUE), allow_approximate=True)
    (d,) = e.value.diagnostics
    assert d.code == "E201" and "computed from a multi-valued field" in d.message


# ---------------------------------------------------------------------- Public Suffix List
def test_registered_domain_by_lookup_equals_the_evaluator() -> None:
    """The SPL commands of registered_domain() (psl.commands, over the PSL lookup table) give
    the evaluator's value on every kind of name: rules, wildcards, exceptions, IDNs, IP
    addresses, blanks, trailing dots and empty labels."""
    from compiler.evaluator.values import call
    from tests.interpreters import spl_interp

    names = [
        "a.b.Example.COM", "news.bbc.co.uk", "microsoft.github.io", "a.b.example.ck", "www.ck",
        "b.www.ck", "ck", "co.uk", "github.io", "localhost", "", "  a.com. ", "a.com..",
        "a..b.com", ".a.com", "1.2.3.4", "[::1]", "::ffff:1.2.3.4", "[1.2.3.4]", "999.1.1.1",
        "01.2.3.4", "host.corp.lan", "shop.bücher.de", "shop.xn--bcher-kva.de", "x.kawasaki.jp",
        "city.kawasaki.jp", "a.city.kawasaki.jp", "d.docs.live.net", "CONTENT.DropboxAPI.com",
        "2001:db8::1", "a:b.com", "\u00a0a.com\u2003",
    ]  # fmt: skip
    for suffix, _ in psl.rows()[::400]:
        names += [suffix, "x." + suffix, "y.x." + suffix]
    events = [{"_time": i, "name": n} for i, n in enumerate(names)]
    query = "search index=* | " + " | ".join(psl.commands("rd", "name", None)) + " | table name rd"
    assert check(query) is None
    table = [dict(zip(psl.COLUMNS, r, strict=True)) for r in psl.rows()]
    lookups = {psl.LOOKUP: spl_interp.LookupDef(table, case_sensitive=True, max_matches=1000)}
    rows = spl_interp.execute(query, events, lookups, 0)
    got = {r["name"]: r.get("rd") for r in rows}
    assert len(got) == len(set(names))
    for n in names:
        assert got[n] == call("registered_domain", [n]), n


def test_a_category_no_sysmon_event_carries_is_a_missing_source_not_a_query_that_never_fires() -> (
    None
):
    # Sysmon logs no authentication: `NOT _time=*` would claim exact where siemc alerts
    an = load_file(ROOT / "tests/differential/kql/d06_authentication.yml").analytic
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(an, profile="sysmon", allow_approximate=True)
    assert {d.code for d in exc.value.diagnostics} == {"E211"}
    assert "event.category authentication" in exc.value.diagnostics[0].message


def test_a_filter_macro_starts_with_a_letter() -> None:
    """A Sigma rule's UUID as analytic id (siemc import sigma) must still give a macro name the
    SPL grammar reads: a name starts with a letter or an underscore."""
    from backends.splunk.macros import filter_macro

    assert filter_macro("AN1190") == "an1190_filter"
    assert filter_macro("5f1abf38-3f09-4cd0-9a4f-4bc4ec1e1b5c") == (
        "siemc_5f1abf38_3f09_4cd0_9a4f_4bc4ec1e1b5c_filter"
    )


# ---------------------------------------------------------------------- consuming windows
def _variant(tmp_path: Path, name: str, old: str, new: str) -> Artifact:
    text = (ROOT / "tests/differential/splunk" / name).read_text(encoding="utf-8")
    assert old in text
    f = tmp_path / name
    f.write_text(text.replace(old, new), encoding="utf-8")
    return BACKEND.compile(load_file(f).analytic, allow_approximate=True)


def test_consuming_window_only_for_an_event_count_of_at_most_10000(tmp_path: Path) -> None:
    """`count > 2` is `count >= 3`; a window of more than max_stream_window events, or a
    condition on another measure, keeps the declared superset."""
    gt = _variant(tmp_path, "s_c1_count_consume.yml", "count: {gte: 3}", "count: {gt: 2}")
    assert not gt.approximations
    assert 'window=3 global=false reset_after="(event_count>=3 AND _time-siemc_ws<=60)"' in (
        gt.query
    )
    assert "| reverse" not in gt.query  # a pure count does not depend on the order of ties
    big = _variant(tmp_path, "s_c1_count_consume.yml", "count: {gte: 3}", "count: {gte: 10001}")
    assert [a.direction for a in big.approximations] == ["superset"]
    assert "reset_after" not in big.query
    both = _variant(
        tmp_path,
        "s_c2_count_measures.yml",
        "having: starts >= 3",
        "having: starts >= 3 and users >= 2",
    )
    assert [a.construct for a in both.approximations] == ["sliding window aggregation"]


def test_consuming_cooccurrence_needs_distinct_disjoint_members(tmp_path: Path) -> None:
    exact = _variant(tmp_path, "s_c4_cooccurrence.yml", "window: 2m", "window: 2m")
    assert not exact.approximations
    assert any("10,000 events" in n for n in exact.notes)
    shared = _variant(
        tmp_path,
        "s_c4_cooccurrence.yml",
        "process.name: [whoami, id]",
        "process.name: [whoami, bash]",
    )
    assert [a.direction for a in shared.approximations] == ["superset"]
    assert "reset_after" not in shared.query
