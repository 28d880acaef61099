"""The Elasticsearch EQL backend: catalog outcomes, the real parser (eql 1.0.1, Elasticsearch
dialect), a table of IR -> query cases, and hostile literal values executed by eql's
PythonEngine.

Engine caveat: ``eql.PythonEngine`` compares every string and every ``by`` key
case-insensitively (Elasticsearch does not), so the executed checks here test literal matching
and null handling, never case sensitivity; the case rules are pinned by the expected texts.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import get_backend
from backends.base import NODE_TYPES, Approximation, Artifact, CompileError, overall_direction
from backends.elastic_eql import EqlBackend, relaxation
from backends.elastic_eql.text import duration, lucene_regex, quote
from compiler import ir
from compiler.discover import load_catalog
from tests.oracles.elastic_eql_oracle import OracleRefused, run, validate

ROOT = Path(__file__).resolve().parent.parent
BACKEND = EqlBackend()
SPAN = ir.Span("t.yml", 3, 5)

# ---------------------------------------------------------------------------- catalog
# sample / missing-event sequence
# AN1190: the first-seen baseline (and the join only it reads) dropped, a declared superset
# SIEMC-0017: a DNS query step and a connection step that one ECS event could both match
# SIEMC-0018: event.code, a keyword, compared as the text "4625" (a subset: "4625.0" is missed)
COMPILED_APPROXIMATE = {"AN1190", "SIEMC-0006", "SIEMC-0009", "SIEMC-0017", "SIEMC-0018"}
SUPERSETS = {"AN1190", "SIEMC-0009", "SIEMC-0017"}
# SIEMC-0012: registered_domain() and both lookups inlined, PSL-proven; 0016: the deployable
# form that is an EQL sequence as written, its steps disjoint by process.name (docs/catalog.md);
COMPILED_EXACT = {"SIEMC-0012", "SIEMC-0016"}
UNSUPPORTED = {
    "AN1511",  # aggregate, join (first_seen dropped)
    "SIEMC-0003",  # aggregate, join
    "SIEMC-0004",  # a key computed by extract_ips() (first_seen dropped)
    "SIEMC-0005",  # join
    "SIEMC-0007",  # threshold
    "SIEMC-0008",  # threshold
    "SIEMC-0010",  # aggregate, rarity
    "SIEMC-0011",  # aggregate, deviation
    "SIEMC-0013",  # tumbling aggregate (the threshold rule is named)
    "SIEMC-0014",  # tumbling aggregate (the threshold rule is named)
    "SIEMC-0015",  # tumbling aggregate, first_seen
}


def _catalog() -> list[ir.Analytic]:
    return [x.analytic for x in load_catalog([ROOT / "analytics"]).loaded]


def test_backend_is_registered() -> None:
    assert isinstance(get_backend("eql"), EqlBackend)
    assert set(EqlBackend.SUPPORT) == set(NODE_TYPES)


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
                assert "eql" in d.message, d.message
                assert d.help, d.headline()
            continue
        compiled.add(a.id)
        assert bool(art.approximations) == (a.id in COMPILED_APPROXIMATE)
        assert (overall_direction(art.approximations) == "superset") == (a.id in SUPERSETS)
    assert compiled == COMPILED_APPROXIMATE | COMPILED_EXACT
    assert failed == UNSUPPORTED


def test_catalog_queries_pass_the_parser() -> None:
    for a in _catalog():
        try:
            art = BACKEND.compile(a, allow_approximate=True)
        except CompileError:
            continue
        assert validate(art.query) is None, (a.id, validate(art.query))
        assert validate(art.text) is None, (a.id, "header comments")


def test_approximations_need_permission() -> None:
    for a in _catalog():
        if a.id not in COMPILED_APPROXIMATE:
            continue
        with pytest.raises(CompileError) as err:
            BACKEND.compile(a)
        assert [d.code for d in err.value.diagnostics] == ["E202"]
        art = BACKEND.compile(a, allow_approximate=True)
        assert "// APPROXIMATION" in art.text
        if a.id in SUPERSETS:
            assert BACKEND.compile(a, allow_superset=True).text == art.text
        else:
            with pytest.raises(CompileError):
                BACKEND.compile(a, allow_superset=True)


def test_unsupported_errors_name_the_construct_and_alternative() -> None:
    by_id = {a.id: a for a in _catalog()}
    with pytest.raises(CompileError) as err:
        BACKEND.compile(by_id["SIEMC-0007"], allow_approximate=True)
    first = err.value.diagnostics[0]
    assert first.code == "E200" and "sliding window aggregation" in first.message
    assert first.help is not None and "esql" in first.help
    with pytest.raises(CompileError) as err:
        BACKEND.compile(by_id["SIEMC-0004"], allow_approximate=True)
    (d,) = err.value.diagnostics
    assert d.code == "E200" and "extract_ips()" in d.message and "dns.answer_ips" in d.message
    assert (d.line, d.col) != (0, 0)
    with pytest.raises(CompileError) as err:
        BACKEND.compile(by_id["SIEMC-0007"], allow_approximate=True)
    assert "threshold rule" in err.value.diagnostics[0].message


# ---------------------------------------------------------------------------- IR builders
NO_SOURCE = ir.LogSource()
META = ir.Metadata("t", "", (), (), (), "low", None, (), ())


def stream(
    name: str,
    filt: ir.Predicate = ir.TRUE,
    source: ir.LogSource | str = NO_SOURCE,
    derive: tuple[tuple[str, ir.Expr], ...] = (),
    enrich: tuple[ir.Enrich, ...] = (),
) -> ir.Stream:
    return ir.Stream(name, source, None, enrich, derive, filt, SPAN)


def analytic(
    detection: ir.Detection, *streams: ir.Stream, lookups: tuple[ir.Lookup, ...] = ()
) -> ir.Analytic:
    return ir.Analytic("T-1", "t.yml", META, lookups, streams, detection, (), SPAN)


def match(filt: ir.Predicate, **kw: Any) -> ir.Analytic:
    return analytic(ir.Match("s", SPAN), stream("s", filt, **kw))


def compile_(a: ir.Analytic, approx: bool = False) -> Artifact:
    art = BACKEND.compile(a, allow_approximate=approx)
    assert validate(art.query) is None, (art.query, validate(art.query))
    return art


ROLES = ir.Lookup(
    "roles",
    "/x/roles.csv",
    ("host", "role"),
    (("web01", "web"), ("WEB01", "db"), ("db01", "db"), ("x*y", "web")),
)
APPROVED = ir.Lookup(
    "approved",
    "/x/ok.csv",
    ("role", "domain"),
    (("web", "a.com"), ("web", "b.com"), ("db", "c.com")),
)
pn = "process.name"
ANY = "any where "

# (id, filter, expected query) for `any where` matches, one per construct and case/null rule.
FILTERS: list[tuple[str, ir.Predicate, str]] = [
    ("eq-ci", ir.Eq(pn, ("cmd.exe",)), 'process.name : "cmd.exe"'),
    ("eq-ci-list", ir.Eq(pn, ("a", "b")), 'process.name in~ ("a", "b")'),
    ("eq-wildcard-literal", ir.Eq(pn, ("a*b?",)), 'process.name in~ ("a*b?")'),
    ("eq-cased", ir.Eq(pn, ("Cmd.exe",), cased=True), 'process.name == "Cmd.exe"'),
    ("eq-cased-list", ir.Eq(pn, ("A", "b"), cased=True), 'process.name in ("A", "b")'),
    ("eq-number", ir.Eq("destination.port", (443,)), "destination.port == 443"),
    ("eq-numbers", ir.Eq("destination.port", (80, 443.0)), "destination.port in (80, 443)"),
    ("eq-bool", ir.Eq("x.flag", (True,)), "x.flag == true"),
    ("eq-null", ir.Eq(pn, (None,)), "process.name == null"),
    ("eq-null-or", ir.Eq(pn, (None, "a")), '(process.name == null or process.name : "a")'),
    ("eq-all", ir.Eq("tags", ("a", "b"), quantifier="all"), '(tags : "a" and tags : "b")'),
    (
        "not-eq-keeps-missing",
        ir.Not(ir.Eq(pn, ("a",))),
        '(process.name == null or not process.name : "a")',
    ),
    (
        "not-eq-null",
        ir.Not(ir.Eq(pn, (None, "a"))),
        '(process.name != null and not process.name : "a")',
    ),
    ("escape", ir.Eq(pn, ('a"b\\c\nd',)), 'process.name : "a\\"b\\\\c\\nd"'),
    ("odd-field", ir.Eq("my-field", ("v",)), '`my-field` : "v"'),
    ("contains", ir.StrMatch(pn, "contains", ("who",)), 'process.name : "*who*"'),
    (
        "startswith-list",
        ir.StrMatch(pn, "startswith", ("/tmp/", "/dev/shm/")),
        'process.name : ("/tmp/*", "/dev/shm/*")',
    ),
    (
        "endswith-cased",
        ir.StrMatch(pn, "endswith", (".EXE",), cased=True),
        'process.name like "*.EXE"',
    ),
    (
        "contains-literal-star",
        ir.StrMatch(pn, "contains", ("a*", "b")),
        '(process.name : "*b*" or stringContains~(process.name, "a*"))',
    ),
    (
        "startswith-literal-qmark-cased",
        ir.StrMatch(pn, "startswith", ("?x",), cased=True),
        'startsWith(process.name, "?x")',
    ),
    (
        "contains-all",
        ir.StrMatch("c", "contains", ("bash", " -i"), quantifier="all"),
        '(c : "*bash*" and c : "* -i*")',
    ),
    (
        "not-contains",
        ir.Not(ir.StrMatch(pn, "endswith", (".exe",))),
        '(process.name == null or not process.name : "*.exe")',
    ),
    ("regex-ci", ir.Regex(pn, ("^cmd\\.exe$",)), 'process.name regex~ "cmd\\\\.exe\\n?"'),
    ("regex-cased", ir.Regex(pn, ("ab|c",), cased=True), 'process.name regex "((.*ab.*)|(.*c.*))"'),
    ("regex-dot", ir.Regex(pn, ("^a.b",)), 'process.name regex~ "a[^\\n]b.*"'),
    ("gt", ir.Compare("source.bytes", "gt", 10.0), "source.bytes > 10"),
    ("lte-float", ir.Compare("source.bytes", "lte", 1.5), "source.bytes <= 1.5"),
    (
        "not-lt",
        ir.Not(ir.Compare("source.bytes", "lt", 5.0)),
        "(source.bytes == null or not source.bytes < 5)",
    ),
    ("exists", ir.Exists(pn), "process.name != null"),
    ("exists-false", ir.Exists(pn, False), "process.name == null"),
    ("not-exists", ir.Not(ir.Exists(pn)), "process.name == null"),
    (
        "cidr",
        ir.Cidr("destination.ip", ("10.1.2.3/8", "fc00::/7")),
        'cidrMatch(destination.ip, "10.0.0.0/8", "fc00::/7")',
    ),
    (
        "not-cidr",
        ir.Not(ir.Cidr("destination.ip", ("10.0.0.0/8",))),
        '(destination.ip == null or not cidrMatch(destination.ip, "10.0.0.0/8"))',
    ),
    (
        "or-and-nesting",
        ir.Or((ir.Eq("a", ("1",)), ir.And((ir.Eq("b", ("2",)), ir.Or((ir.Eq("c", ("3",)),)))))),
        '(a == "1" or (b == "2" and c == "3"))',
    ),
    (
        "de-morgan",
        ir.Not(ir.And((ir.Eq("a", ("1",)), ir.Exists("b")))),
        '((a == null or not a == "1") or b == null)',
    ),
    ("empty-and", ir.TRUE, "true"),
    ("empty-or", ir.Or(()), "false"),
    ("eq-caseless", ir.Eq("source.ip", ("10.0.0.1",)), 'source.ip == "10.0.0.1"'),
    ("eq-caseless-list", ir.Eq("p", ("1", "2*")), 'p in ("1", "2*")'),
    (
        "lookup-one-column",
        ir.InLookup("roles", (("host", "host.name"),)),
        'host.name in~ ("web01", "db01", "x*y")',
    ),
    (
        "lookup-two-columns",
        ir.InLookup("approved", (("role", "labels.role"), ("domain", "d"))),
        '((labels.role : "web" and d in~ ("a.com", "b.com"))'
        ' or (labels.role : "db" and d : "c.com"))',
    ),
    (
        "not-lookup",
        ir.Not(ir.InLookup("roles", (("host", "host.name"),))),
        '(host.name == null or not host.name in~ ("web01", "db01", "x*y"))',
    ),
]


@pytest.mark.parametrize(("case", "filt", "expected"), FILTERS, ids=[c[0] for c in FILTERS])
def test_filter_table(case: str, filt: ir.Predicate, expected: str) -> None:
    a = analytic(ir.Match("s", SPAN), stream("s", filt), lookups=(ROLES, APPROVED))
    art = compile_(a, approx=True)
    assert art.query == ANY + expected + "\n"


def test_regex_shorthand_is_an_approximation() -> None:
    a = match(ir.Regex(pn, ("^[a-z]+\\s\\w$",), span=SPAN))
    with pytest.raises(CompileError) as err:
        compile_(a)
    assert err.value.diagnostics[0].code == "E202"
    assert "ASCII blanks" in err.value.diagnostics[0].message
    art = compile_(a, approx=True)
    # form feed and vertical tab stay raw: EQL strings have no escape for them
    assert art.query == ANY + 'process.name regex~ "[a-z]+[ \\t\\n\\r\f\v][A-Za-z0-9_]\\n?"\n'


def test_regex_digits_are_the_unicode_digits_python_matches() -> None:
    """Python's \\d is every Unicode decimal digit; Lucene's is [0-9], so the class is spelled
    out and the translation is exact, inside a class too."""
    import re
    import sys

    art = compile_(match(ir.Regex(pn, ("^(python|pypy)[23](\\.\\d+)?$",), span=SPAN)))
    assert art.approximations == ()
    head = 'process.name regex~ "(python|pypy)[23](\\\\.[0-9\u0660-\u0669'
    assert art.query.startswith(ANY + head)
    # str.isdecimal is Python's \\d on text (category Nd); every digit and each range's
    # neighbours are checked
    digits = [cp for cp in range(sys.maxunicode + 1) if chr(cp).isdecimal()]
    assert len(digits) > 600
    probes = {chr(c) for cp in digits for c in (cp - 1, cp, cp + 1)} | {"a", "\u00b2", "\u2460"}
    for pattern in ("^\\d+$", "^[x\\d]+$"):
        lucene = lucene_regex(pattern, cased=True)
        assert lucene.approximations == ()
        python, translated = re.compile(pattern), re.compile(lucene.pattern)
        for ch in sorted(probes):
            assert bool(python.search(ch)) == bool(translated.fullmatch(ch)), repr(ch)


@pytest.mark.parametrize("pattern", ["(?=a)b", "\\bword", "(a)\\1", "a$b", "(?i)a", "x*+"])
def test_regex_outside_the_common_subset_is_unsupported(pattern: str) -> None:
    with pytest.raises(CompileError) as err:
        compile_(match(ir.Regex(pn, (pattern,), span=SPAN)))
    assert err.value.diagnostics[0].code == "E200"


@pytest.mark.parametrize(
    ("pattern", "hits", "misses"),
    [
        ("^ab?c$", ["ac", "abc", "abc\n"], ["abbc", "xac", "ac\nx"]),
        ("a.c", ["xxabc", "a c"], ["a\nc", "ac"]),
        ("[^/]+\\.sh$", ["run.sh", "/x/y.sh"], ["run.shx", "/"]),
        ("^x{2,3}$", ["xx", "xxx"], ["x", "xxxx"]),
        ("a|^b", ["za", "bz"], ["zb"]),
        ("[a\\-z]", ["-"], ["b"]),
    ],
)
def test_regex_translation_agrees_with_python_search(
    pattern: str, hits: list[str], misses: list[str]
) -> None:
    """Lucene regexes match whole values; Python's `re.fullmatch` on the translation stands in."""
    import re

    lucene = lucene_regex(pattern, cased=True).pattern
    for text in hits + misses:
        assert bool(re.search(pattern, text)) == bool(re.fullmatch(lucene, text, re.S)), text
    for text in hits:
        assert re.search(pattern, text)


def test_derived_fields_are_inlined() -> None:
    low = (("process.name", ir.Call("lower", (ir.FieldRef("process.name"),))),)
    art = compile_(match(ir.Eq(pn, ("cmd.exe",)), derive=low))
    assert art.query == ANY + 'process.name : "cmd.exe"\n'
    with pytest.raises(CompileError) as err:
        compile_(match(ir.Eq(pn, ("cmd.exe",), cased=True, span=SPAN), derive=low))
    assert err.value.diagnostics[0].code == "E200"
    assert "case-sensitive" in err.value.diagnostics[0].message
    co = (("x", ir.Call("coalesce", (ir.FieldRef("a"), ir.FieldRef("b")))),)
    art = compile_(match(ir.Eq("x", ("v",)), derive=co))
    assert art.query == ANY + '(a : "v" or (a == null and b : "v"))\n'
    art = compile_(match(ir.Not(ir.Eq("x", ("v",))), derive=co))
    assert art.query == ANY + (
        '(a == null or not a : "v") and (a != null or (b == null or not b : "v"))\n'
    )
    base = (("d", ir.Call("basename", (ir.FieldRef("p"),))),)
    with pytest.raises(CompileError) as err:
        compile_(match(ir.Eq("d", ("x",), span=SPAN), derive=base))
    assert "basename()" in err.value.diagnostics[0].message


def test_enriched_fields_are_rewritten_over_lookup_rows() -> None:
    enrich = (ir.Enrich("roles", (("host", "host.name"),), (("role", "labels.role"),), SPAN),)
    a = analytic(
        ir.Match("s", SPAN),
        stream("s", ir.Eq("labels.role", ("web",)), enrich=enrich),
        lookups=(ROLES,),
    )
    # WEB01 duplicates web01 (case-insensitive match): the first row (web) wins.
    assert compile_(a).query == ANY + 'host.name in~ ("web01", "x*y")\n'
    a = analytic(
        ir.Match("s", SPAN),
        stream("s", ir.Not(ir.Eq("labels.role", ("web",))), enrich=enrich),
        lookups=(ROLES,),
    )
    assert compile_(a).query == ANY + '(host.name == null or not host.name in~ ("web01", "x*y"))\n'
    a = analytic(
        ir.Match("s", SPAN),
        stream("s", ir.Exists("labels.role", False), enrich=enrich),
        lookups=(ROLES,),
    )
    assert compile_(a).query == ANY + (
        '(host.name == null or not host.name in~ ("web01", "db01", "x*y"))\n'
    )


def test_registered_domain_is_inlined_exactly() -> None:
    """By the Public Suffix List: bbc.co.uk and microsoft.github.io are registered domains;
    a.b.com (a subdomain), com, co.uk and github.io (public suffixes) never are. The test is
    one case-insensitive regular expression over the names under the domains, with the blanks
    and trailing dots registered_domain() removes."""
    rd = ir.Call("registered_domain", (ir.Call("lower", (ir.FieldRef("d"),)),))
    derive = (("r", rd),)
    values = ("Slack.com", "a.b.com", "com", "bbc.co.uk", "co.uk", "microsoft.github.io")
    filt = ir.Eq("r", (*values, "github.io"), span=SPAN)
    art = compile_(match(ir.Not(filt), derive=derive))
    assert art.approximations == ()
    [pattern] = re.findall(r'regex~ "([^"]*)"', art.query)
    assert "(slack\\\\.com|bbc\\\\.co\\\\.uk|microsoft\\\\.github\\\\.io)" in pattern
    assert art.query.startswith(ANY + "(d == null or not d regex~ ")
    with pytest.raises(CompileError) as err:
        compile_(match(ir.Eq("r", ("10.0.0.1",), span=SPAN), derive=derive), approx=True)
    assert err.value.diagnostics[0].code == "E200"


def test_registered_domain_of_an_ecs_name_reads_the_ingest_filled_field() -> None:
    rd = ir.Call("registered_domain", (ir.Call("lower", (ir.FieldRef("destination.domain"),)),))
    filt = ir.Eq("r", ("bbc.co.uk", "microsoft.github.io"), span=SPAN)
    art = compile_(match(filt, derive=(("r", rd),)))  # exact: no approximation needed
    assert art.query == ANY + (
        'destination.registered_domain in~ ("bbc.co.uk", "microsoft.github.io")\n'
    )
    assert art.approximations == ()
    assert "requires destination.registered_domain filled at ingest" in art.text


def test_logsource_category_and_stream_chain() -> None:
    proc = stream("p", ir.Eq(pn, ("bash",)), ir.LogSource("process_creation", "linux"))
    child = stream("c", ir.Eq("user.name", ("root",)), "p")
    art = compile_(analytic(ir.Match("c", SPAN), proc, child))
    assert art.query == (
        'process where event.type : "start" and host.os.type : "linux" and '
        'process.name : "bash" and user.name : "root"\n'
    )
    lifted = match(ir.And((ir.Eq("event.category", ("file",)), ir.Eq(pn, ("x",)))))
    assert compile_(lifted).query == 'file where process.name : "x"\n'
    kept = match(ir.Eq("event.category", ("File",), cased=True))
    assert compile_(kept).query == 'any where event.category == "File"\n'
    dns = stream("d", ir.TRUE, ir.LogSource("dns_query", "zeek", "dns"))
    assert compile_(analytic(ir.Match("d", SPAN), dns)).query == (
        'network where dns.question.name != null and event.module : "zeek" and '
        'event.dataset : "zeek.dns"\n'
    )


def test_sequence_shared_and_per_step_keys_and_until() -> None:
    p = stream("p", ir.Eq(pn, ("curl",)), ir.LogSource("process_creation"))
    n = stream("n", ir.TRUE, ir.LogSource("network_connection"))
    e = stream("e", ir.Eq("event.type", ("end",)), ir.LogSource(product="linux"))
    seq = ir.Sequence(
        (
            ir.Step("a", "p", ("host.name", "process.entity_id"), SPAN),
            ir.Step("b", "n", ("host.name", "process.parent.entity_id"), SPAN),
        ),
        90_000,
        ir.Step("u", "e", ("host.name", "process.entity_id"), SPAN),
        SPAN,
    )
    art = compile_(analytic(seq, p, n, e), approx=True)
    # event.category and event.type are arrays in ECS: one event may be a start and a connection
    assert [(x.construct, x.direction) for x in art.approximations] == [
        ("ordered sequence", "superset")
    ]
    assert art.query == (
        "sequence by host.name with maxspan=90s\n"
        '  [process where event.type : "start" and process.name : "curl"] by process.entity_id\n'
        '  [network where event.type : "connection"] by process.parent.entity_id\n'
        'until [any where host.os.type : "linux" and event.type : "end"] by process.entity_id\n'
    )


def test_absence_and_cooccurrence_shapes() -> None:
    a = stream("a", ir.Eq(pn, ("x",)), ir.LogSource("process_creation"))
    b = stream("b", ir.TRUE, ir.LogSource("network_connection"))
    absence = ir.Absence(
        ir.Step("a", "a", ("host.name",), SPAN), ir.Step("b", "b", ("host.name",), SPAN), 300_000
    )
    art = compile_(analytic(absence, a, b), approx=True)
    assert art.query.startswith("sequence by host.name with maxspan=5m\n")
    assert "\n  ![network where" in art.query
    co = ir.Cooccurrence(
        (ir.Step("a", "a", ("host.name",), SPAN), ir.Step("b", "b", ("host.hostname",), SPAN)),
        120_000,
    )
    art = compile_(analytic(co, a, b), approx=True)
    assert art.query.startswith("sample\n  [process where")
    assert art.query.endswith('[network where event.type : "connection"] by host.hostname\n')


def test_derived_key_is_unsupported() -> None:
    a = stream("a", derive=(("k", ir.Call("lower", (ir.FieldRef("host.name"),))),))
    seq = ir.Sequence((ir.Step("a", "a", ("k",), SPAN), ir.Step("b", "a", ("k",), SPAN)), 1000)
    with pytest.raises(CompileError) as err:
        compile_(analytic(seq, a))
    assert err.value.diagnostics[0].code == "E200"
    assert "derived key 'k'" in err.value.diagnostics[0].message


def test_executed_null_and_literal_semantics() -> None:
    q = compile_(match(ir.Not(ir.Eq(pn, ("a*",))))).query
    events = [
        (1, {"event.id": "missing"}),
        (2, {"event.id": "literal", pn: "a*"}),
        (3, {"event.id": "wild", pn: "abc"}),
    ]
    assert [r[0] for r in run(q, events)] == ["missing", "wild"]


def test_sequence_executes_with_maxspan_inclusive() -> None:
    p = stream("p", ir.Eq(pn, ("a",)), ir.LogSource("process_creation"))
    q = stream("q", ir.Eq(pn, ("b",)), ir.LogSource("process_creation"))
    seq = ir.Sequence(
        (ir.Step("x", "p", ("host.name",), SPAN), ir.Step("y", "q", ("host.name",), SPAN)), 1000
    )
    query = compile_(analytic(seq, p, q)).query
    base = {"event.category": "process", "event.type": "start", "host.name": "h"}
    events = [
        (0, {**base, "event.id": "1", pn: "a"}),
        (1000, {**base, "event.id": "2", pn: "b"}),  # exactly maxspan later: matches
        (5000, {**base, "event.id": "3", pn: "a"}),
        (6001, {**base, "event.id": "4", pn: "b"}),  # 1 ms too late
    ]
    assert run(query, events) == [["1", "2"]]
    with pytest.raises(OracleRefused):
        run("sequence with maxspan=1s [any where true] ![any where true]", events)


def test_text_helpers() -> None:
    assert duration(300_000) == "5m" and duration(1500) == "1500ms" and duration(86_400_000) == "1d"
    assert quote('\x00"\t\u200f') == '"\x00\\"\\t\u200f"'
    assert validate(f"any where a : {quote(chr(0) + chr(8) + chr(0x200F))}") is None


# ---------------------------------------------------------------------------- hostile values
HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from([*"\"\\*?|\n\r\t'`()[]{}~:;,.$^ ", "é", "ß", "Σ", "\u200f", "😀"]),
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
    ),
    min_size=1,
    max_size=12,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _hits(query: str, value: str) -> bool:
    return bool(run(query, [(1, {"event.id": "e", "f": value})]))


@SETTINGS
@given(value=HOSTILE, cased=st.booleans())
def test_hostile_eq(value: str, cased: bool) -> None:
    q = compile_(match(ir.Eq("f", (value,), cased=cased))).query
    assert _hits(q, value)
    assert not _hits(q, value + "x")
    assert not _hits(q, value[:-1])


@SETTINGS
@given(
    value=HOSTILE, op=st.sampled_from(["contains", "startswith", "endswith"]), cased=st.booleans()
)
def test_hostile_string_match(value: str, op: str, cased: bool) -> None:
    q = compile_(match(ir.StrMatch("f", op, (value, value + "|"), cased=cased))).query  # type: ignore[arg-type]
    assert _hits(
        q,
        "<" + value + ">"
        if op == "contains"
        else value + ">"
        if op == "startswith"
        else "<" + value,
    )
    assert not _hits(q, value[:-1])


@SETTINGS
@given(values=st.lists(HOSTILE, min_size=1, max_size=4))
def test_hostile_lookup(values: list[str]) -> None:
    lk = ir.Lookup("l", "/x.csv", ("v",), tuple((v,) for v in values))
    a = analytic(ir.Match("s", SPAN), stream("s", ir.InLookup("l", (("v", "f"),))), lookups=(lk,))
    q = compile_(a).query
    for v in values:
        assert _hits(q, v)
    miss = "\u0001" + "".join(values)
    assert not _hits(q, miss)


def _flip(s: str) -> str:
    return s.swapcase()


def test_python_engine_is_case_insensitive_caveat() -> None:
    """Documents the engine caveat: a cased query still matches another case in PythonEngine."""
    q = compile_(match(ir.Eq("f", ("Ab",), cased=True))).query
    assert q == ANY + 'f == "Ab"\n'
    assert _hits(q, _flip("Ab"))


def test_unsupported_aggregate_is_one_error_not_one_per_nested_expression() -> None:
    # A threshold lowers to an Aggregate with a synthetic `having` (measure >= n): the file has
    # no derive/compute, so only the aggregation error may be reported.
    by_id = {a.id: a for a in _catalog()}
    for aid in ("SIEMC-0007", "SIEMC-0008"):
        with pytest.raises(CompileError) as err:
            BACKEND.compile(by_id[aid], allow_approximate=True)
        (d,) = err.value.diagnostics
        assert d.code == "E200" and "sliding window aggregation" in d.message, d.message
    # An explicit compute/having on an unsupported aggregate: still one error, but a derive in a
    # stream is a construct of its own and is still reported.
    agg = ir.Aggregate(
        "s", ir.Window("tumbling", 3_600_000), ("host.name",),
        (ir.Measure("out", "sum", "source.bytes"), ir.Measure("inb", "sum", "destination.bytes")),
        (("ratio", ir.BinOp("/", ir.MeasureRef("out"), ir.MeasureRef("inb"))),),
        ir.BinOp(">=", ir.MeasureRef("ratio"), ir.Literal_(10)), span=SPAN,
    )  # fmt: skip
    derive = (("x", ir.BinOp("+", ir.FieldRef("source.bytes"), ir.Literal_(1))),)
    with pytest.raises(CompileError) as err:
        BACKEND.compile(analytic(agg, stream("s", derive=derive)), allow_approximate=True)
    msgs = [d.message for d in err.value.diagnostics]
    assert len(msgs) == 2, msgs
    assert "arithmetic/comparison" in msgs[0] and "window aggregation" in msgs[1], msgs


# ---------------------------------------------------------------------------- multi-valued fields
def test_filters_on_array_fields_stay_exact() -> None:
    """Elasticsearch runs each test as a query over the field's values (some value passes; a
    negated test: none does), which is siemc's rule (docs/semantics.md *Multi-valued fields*)."""
    args = ir.Eq("process.args", ("-enc", "-nop"), quantifier="all")
    art = compile_(match(ir.And((args, ir.Not(ir.Eq("dns.resolved_ip", ("10.0.0.1",)))))))
    assert art.approximations == ()
    assert art.query == ANY + (
        '(process.args : "-enc" and process.args : "-nop") and '
        '(dns.resolved_ip == null or not dns.resolved_ip == "10.0.0.1")\n'
    )


def _keyed_sequence(key_a: str, key_b: str) -> ir.Analytic:
    # steps disjoint by a field both require, so that only the key is approximate
    p = stream("p", ir.Eq("network.protocol", ("dns",)), ir.LogSource("dns_query"))
    n = stream("n", ir.Eq("network.protocol", ("tls",)), ir.LogSource("network_connection"))
    seq = ir.Sequence(
        (
            ir.Step("a", "p", ("host.name", key_a), SPAN),
            ir.Step("b", "n", ("host.name", key_b), SPAN),
        ),
        60_000,
    )
    return analytic(seq, p, n)


def test_sequence_key_on_an_array_field_is_an_approximation() -> None:
    a = _keyed_sequence("dns.resolved_ip", "destination.ip")
    with pytest.raises(CompileError) as err:
        compile_(a)
    assert err.value.diagnostics[0].code == "E202"
    art = compile_(a, approx=True)
    assert [x.construct for x in art.approximations] == ["multi-valued correlation key"]
    assert "one sequence state machine per value" in art.approximations[0].detail
    assert "by dns.resolved_ip" in art.query
    assert compile_(_keyed_sequence("source.ip", "destination.ip")).approximations == ()


def test_enrichment_keyed_on_an_array_field_is_an_approximation() -> None:
    enrich = (ir.Enrich("roles", (("host", "related.hosts"),), (("role", "labels.role"),), SPAN),)
    a = analytic(
        ir.Match("s", SPAN),
        stream("s", ir.Eq("labels.role", ("web",)), enrich=enrich),
        lookups=(ROLES,),
    )
    art = compile_(a, approx=True)
    assert [x.construct for x in art.approximations] == ["lookup enrichment"]
    assert "first row in CSV order" in art.approximations[0].detail


# ---------------------------------------------------------------------------- baselines dropped
def _with_baseline(detection: ir.Detection, baseline: ir.Baseline) -> ir.Analytic:
    s = stream("s", ir.Eq(pn, ("curl",)))
    a = analytic(detection, s)
    return dataclasses.replace(a, baselines=(baseline,))


def _dropped(a: ir.Analytic) -> Approximation:
    with pytest.raises(CompileError) as err:
        BACKEND.compile(a)
    assert [d.code for d in err.value.diagnostics] == ["E202"]
    art = BACKEND.compile(a, allow_superset=True)
    assert art.query == 'any where process.name : "curl"\n'
    (approx,) = art.approximations
    assert approx.direction == "superset"
    return approx


def test_first_seen_names_new_terms_or_a_chain() -> None:
    fs = ir.FirstSeen("s", ("host.name", pn), ("host.name", pn), 86_400_000, SPAN)
    approx = _dropped(_with_baseline(ir.Match("s", SPAN), fs))
    assert "a new_terms rule on host.name, process.name with a 1d history window" in approx.detail
    assert "its query this query's filter written in KQL" in approx.detail
    wide = dataclasses.replace(fs, keys=("a", "b", "c", "d"), current=("a", "b", "c", "d"))
    approx = _dropped(_with_baseline(ir.Match("s", SPAN), wide))
    assert "building-block chain" in approx.detail and "at most 3 fields" in approx.detail


def test_rarity_and_deviation_name_their_elastic_answer() -> None:
    rare = ir.Rarity("s", ("host.name",), ("host.name",), "@days", 3, 7 * 86_400_000, SPAN)
    approx = _dropped(_with_baseline(ir.Match("s", SPAN), rare))
    assert "3 or more days" in approx.detail and "building-block chain" in approx.detail
    a = analytic(ir.Match("s", SPAN), stream("s"))
    dev = ir.Deviation("m", 86_400_000, 3.0, None, 3, SPAN)
    assert "ES|QL" in relaxation.elastic_answer(a, dev)


def test_a_baseline_over_an_aggregate_leaves_only_the_aggregate_refused() -> None:
    by_id = {a.id: a for a in _catalog()}
    with pytest.raises(CompileError) as err:
        BACKEND.compile(by_id["SIEMC-0010"], allow_approximate=True)
    assert [d.line for d in err.value.diagnostics] == [40]
    assert "aggregation" in err.value.diagnostics[0].message


def test_count_thresholds_name_the_elastic_threshold_rule() -> None:
    by_id = {a.id: a for a in _catalog()}
    with pytest.raises(CompileError) as err:
        BACKEND.compile(by_id["SIEMC-0007"], allow_approximate=True)
    (d,) = err.value.diagnostics
    assert d.help is not None and d.help.startswith(
        "the Elastic answer is a threshold rule (group by source.ip, destination.ip; "
        "threshold.value 1; cardinality of destination.port >= 20;"
    )
    with pytest.raises(CompileError) as err:
        BACKEND.compile(by_id["SIEMC-0008"], allow_approximate=True)
    assert "threshold.value 30;" in (err.value.diagnostics[0].help or "")
    # sums and ratios are no threshold rule
    with pytest.raises(CompileError) as err:
        BACKEND.compile(by_id["SIEMC-0003"], allow_approximate=True)
    assert all("threshold rule (" not in (x.help or "") for x in err.value.diagnostics)


# ---------------------------------------------------------------------------- mapping types
def test_numeric_strings_on_numeric_fields_are_numbers() -> None:
    """A numeric string is its number (docs/semantics.md); a long field indexes numbers, which
    `== "443"` would not name: the value is written as the number. Keywords keep the text."""
    port = ir.Eq("destination.port", ("443", 8080), span=SPAN)
    art = compile_(match(port))
    assert art.query == ANY + "destination.port in (443, 8080)\n"
    # a keyword holding numbers (ECS user.id) is compared as text, which misses other spellings
    # of the number ("1000.0"): a declared subset
    art = compile_(match(ir.Eq("user.id", ("1000", 7))), approx=True)
    assert art.query == ANY + 'user.id in ("1000", "7")\n'
    assert [(x.construct, x.direction) for x in art.approximations] == [
        ("numeric equality on a keyword field", "subset")
    ]
    assert "'1000.0'" not in art.approximations[0].detail  # the examples name the last number
    assert "'7.0', '07', ' 7'" in art.approximations[0].detail


def test_numeric_comparison_on_a_keyword_field_is_an_approximation() -> None:
    """A range query on a keyword orders text ('22' > '1000'), siemc orders numbers."""
    assert compile_(match(ir.Compare("destination.port", "gt", 1000, SPAN))).approximations == ()
    a = match(ir.Compare("process.args", "gt", 1000, SPAN))
    with pytest.raises(CompileError) as err:
        compile_(a)
    assert err.value.diagnostics[0].code == "E202"
    art = compile_(a, approx=True)
    assert art.query == ANY + "process.args > 1000\n"
    (x,) = art.approximations
    assert x.construct == "numeric comparison on a keyword field"
    assert x.direction == "mixed" and "'22' > '1000'" in x.detail


def test_steps_one_event_could_match_are_a_superset_for_two_steps_and_mixed_beyond() -> None:
    """Elasticsearch offers an event to every step it matches (tests/differential/eql/
    d68_overlapping_steps.yml shows the extra alert on the engine); steps disjoint by a field
    both require, numbers included, stay exact."""
    a = stream("a", ir.Eq("event.code", (4625,)), ir.LogSource(product="windows"))
    b = stream("b", ir.Eq("event.code", (4624,)), ir.LogSource(product="windows"))
    c = stream("c", ir.Eq("event.code", ("4624",)), ir.LogSource(product="windows"))

    def seq(*names: str) -> ir.Sequence:
        steps = tuple(ir.Step(f"s{i}", n, ("host.name",), SPAN) for i, n in enumerate(names))
        return ir.Sequence(steps, 60_000, None, SPAN)

    def sequence_notes(*names: str) -> list[tuple[str, str]]:
        art = compile_(analytic(seq(*names), a, b, c), approx=True)
        return [(x.construct, x.direction) for x in art.approximations if "sequence" in x.construct]

    assert sequence_notes("a", "b") == []
    assert sequence_notes("b", "c") == [("ordered sequence", "superset")]
    assert sequence_notes("a", "b", "c") == [("ordered sequence", "mixed")]
