"""Stream filters as KQL and Lucene (backends/elastic_kuery), proven on the fixtures with the
query interpreter of tests/interpreters/kuery_interp.py, since no Elasticsearch runs offline:
for every logsource stream of the bundled and differential analytics whose filter renders, the
documents the query matches are exactly the events the evaluator's predicate accepts, on every
fixture (in Lucene, and with the string tests made case-sensitive, in KQL). Mutations of each
semantic (case, ``not`` on missing fields, a substring's wildcard, a bare ``NOT`` under ``OR``)
make the comparison fail; hostile values round-trip through both languages' escaping.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.elastic_kuery import Declined, lower_predicate, render
from backends.elastic_kuery import nodes as kuery_nodes
from compiler import ir
from compiler.discover import load_catalog
from compiler.engines import run_esql
from compiler.evaluator import Event
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import logsource_predicate
from compiler.export import elastic_native
from compiler.lower import Loaded
from tests.differential_support import events_or_skip
from tests.interpreters import kuery_interp

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = [ROOT / "analytics", *sorted((ROOT / "tests" / "differential").glob("*/"))]
LOADED = [lo for c in CATALOGS if c.is_dir() for lo in load_catalog([c]).loaded]
TYPES = run_esql.field_types()


def documents(events: list[Event]) -> list[tuple[str, Event, dict[str, Any]]]:
    """(index, event, document) of every event, as run_esql stores them."""
    vals = run_esql._values()
    return [(run_esql.data_stream(e), e, run_esql.document(e, vals)) for e in events]


def _filter_cases() -> Iterator[tuple[Loaded, str]]:
    for lo in LOADED:
        for st in lo.analytic.streams:
            if not isinstance(st.source, ir.LogSource) or st.join or st.enrich or st.derive:
                continue
            try:
                elastic_native.stream_node(lo.analytic, st.name)
            except Declined:
                continue
            yield lo, st.name


FILTERS = list(_filter_cases())


def _stream_pred(lo: Loaded, stream: str) -> ir.Predicate:
    st = lo.analytic.stream(stream)
    assert isinstance(st.source, ir.LogSource)
    return ir.And((logsource_predicate(st.source), st.filter))


def _cased(p: ir.Predicate) -> ir.Predicate:
    """The filter with every string test case-sensitive: KQL says all of it."""
    if isinstance(p, ir.And | ir.Or):
        return type(p)(tuple(_cased(x) for x in p.items))
    if isinstance(p, ir.Not):
        return ir.Not(_cased(p.item))
    if isinstance(p, ir.Eq | ir.StrMatch):
        return dataclasses.replace(p, cased=True)
    return p


def _mismatches(
    lo: Loaded, stream: str, query: tuple[str, str], ir_pred: ir.Predicate | None = None
) -> list[str]:
    pred = compile_predicate(ir_pred or _stream_pred(lo, stream), {})
    match = kuery_interp.parse(query[0], query[1], TYPES)
    out = []
    for fx in lo.fixtures:
        for _, e, doc in documents(events_or_skip(lo, fx)):
            if pred(e.fields) != match(doc, e.ts):
                out.append(f"{fx.name}: {e.id} evaluator={pred(e.fields)}")
    return out


@pytest.mark.parametrize(
    ("loaded", "stream"), FILTERS, ids=[f"{lo.analytic.id}:{s}" for lo, s in FILTERS]
)
def test_filter_query_selects_the_evaluators_events(loaded: Loaded, stream: str) -> None:
    q = render(elastic_native.stream_node(loaded.analytic, stream))
    assert _mismatches(loaded, stream, (q.language, q.text)) == []


@pytest.mark.parametrize(
    ("loaded", "stream"), FILTERS, ids=[f"{lo.analytic.id}:{s}" for lo, s in FILTERS]
)
def test_cased_filter_as_kql_selects_the_evaluators_events(loaded: Loaded, stream: str) -> None:
    """The same streams with case-sensitive string tests: KQL terms and wildcards (Lucene
    for a substring with whitespace)."""
    p = _cased(_stream_pred(loaded, stream))
    q = render(lower_predicate(p))
    assert _mismatches(loaded, stream, (q.language, q.text), p) == []


def test_filters_cover_both_languages_and_every_operator() -> None:
    """The proof above is not vacuous: it runs KQL and Lucene queries over streams with case
    variants, substrings, ranges, CIDR, exists and negation."""
    kql = [render(lower_predicate(_cased(_stream_pred(lo, s)))) for lo, s in FILTERS]
    assert sum(q.language == "kuery" for q in kql) > len(FILTERS) * 3 // 4
    texts = " ".join(render(elastic_native.stream_node(lo.analytic, s)).text for lo, s in FILTERS)
    texts += " ".join(
        render(lower_predicate(_cased(_stream_pred(lo, s)))).text for lo, s in FILTERS
    )
    for piece in ("NOT ", "_exists_:", "/.*", "TO *]", '"10.0.0.0/8"', "not ", ": *"):
        assert piece in texts, piece
    assert len(FILTERS) >= 40


def _case_blind(c: str) -> list[str]:
    return [c]


@pytest.mark.parametrize(
    "mutation",
    ["case-sensitive", "not-needs-field", "wildcard-anchor", "bare-not-under-or"],
)
def test_filter_mutations_are_caught(mutation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Renderers that get a semantic wrong disagree with the evaluator on some fixture."""
    render_mod = importlib.import_module("backends.elastic_kuery.render")

    if mutation == "case-sensitive":  # case-insensitive equality spelled case-sensitively
        monkeypatch.setattr(render_mod, "variants", _case_blind)
        monkeypatch.setattr(render_mod, "needs_lucene", lambda n: True)
    elif mutation == "not-needs-field":  # `not` only on documents that have the field

        def node(self: Any, n: Any, top: bool = False, _orig: Any = render_mod.Lucene.node) -> str:
            if isinstance(n, kuery_nodes.Not) and not isinstance(n.item, kuery_nodes.Exists):
                leaf: kuery_nodes.Node = n.item
                while isinstance(leaf, kuery_nodes.And | kuery_nodes.Or | kuery_nodes.Not):
                    leaf = leaf.items[0] if not isinstance(leaf, kuery_nodes.Not) else leaf.item
                return f"(_exists_:{leaf.field} AND NOT {_orig(self, n.item)})"
            return str(_orig(self, n, top))

        monkeypatch.setattr(render_mod, "needs_lucene", lambda n: True)
        monkeypatch.setattr(render_mod.Lucene, "node", node)
    elif mutation == "bare-not-under-or":  # `a OR NOT b`, which Lucene reads as a AND NOT b
        monkeypatch.setattr(render_mod, "needs_lucene", lambda n: True)
        monkeypatch.setattr(
            render_mod.Lucene, "item", lambda self, n, under_and: self.node(n, True)
        )
    else:  # an ends-with test that forgets the leading wildcard
        monkeypatch.setattr(render_mod, "needs_lucene", lambda n: True)
        orig = render_mod.Lucene.node

        def node2(self: Any, n: Any, top: bool = False) -> str:
            text = str(orig(self, n, top))
            return text.replace(":/.*", ":/") if isinstance(n, kuery_nodes.Text) else text

        monkeypatch.setattr(render_mod.Lucene, "node", node2)
    bad = 0
    for lo, s in FILTERS:
        q = render_mod.render(elastic_native.stream_node(lo.analytic, s))
        bad += bool(_mismatches(lo, s, (q.language, q.text)))
    assert bad > 0


def test_kuery_semantics_pinned() -> None:
    """The interpreter's KQL: keyword terms are case-sensitive, wildcards too, ``not`` holds
    without the field, a multi-valued field matches on any value and ``not`` negates that."""
    p = kuery_interp.parse_kuery
    assert p('a: "x"', TYPES)({"a": "x"}, 0) and not p('a: "x"', TYPES)({"a": "X"}, 0)
    assert p("a: x*", TYPES)({"a": "xy"}, 0) and not p("a: x*", TYPES)({"a": "Xy"}, 0)
    assert p('not a: "x"', TYPES)({}, 0)
    assert p('a: "x"', TYPES)({"a": ["y", "x"]}, 0)
    assert not p('not a: "x"', TYPES)({"a": ["y", "x"]}, 0)
    assert p("a: *", TYPES)({"a": ""}, 0) and not p("a: *", TYPES)({}, 0)
    assert p("a: (x or y) and b: z", TYPES)({"a": "y", "b": "z"}, 0)
    # `a: x or b: y` binds as (a: x) or (b: y); `not` binds tighter than `and`
    assert p("a: x or b: y", TYPES)({"b": "y"}, 0)
    assert p("not a: x and b: y", TYPES)({"b": "y"}, 0)
    # escaped whitespace keeps a keyword out of a wildcard value
    assert p("a: *can\\u0020not\\u0020run*", TYPES)({"a": "I can not run"}, 0)
    with pytest.raises(kuery_interp.QueryError):
        p("a: (x or y", TYPES)


def test_lucene_semantics_pinned() -> None:
    """Lucene's classic parser: ``NOT`` prohibits a clause of its group, a negative group
    matches everything else; the renderer parenthesises a negation under OR for that reason."""
    p = kuery_interp.parse_lucene
    d_ab: dict[str, Any] = {"a": "x", "b": "y"}
    d_a: dict[str, Any] = {"a": "x"}
    d_none: dict[str, Any] = {}
    q = p('a:"x" OR NOT b:"y"', TYPES)  # a and not b
    assert q(d_a, 0) and not q(d_ab, 0) and not q(d_none, 0)
    q = p('a:"x" OR (NOT b:"y")', TYPES)  # a or not b
    assert q(d_a, 0) and q(d_ab, 0) and q(d_none, 0) and not q({"b": "y"}, 0)
    q = p('NOT a:"x" AND NOT b:"y"', TYPES)
    assert q(d_none, 0) and not q(d_a, 0)
    assert p("a:/[xX]/", TYPES)({"a": "X"}, 0) and not p("a:/x/", TYPES)({"a": "xx"}, 0)
    tree = kuery_nodes.Or(
        (kuery_nodes.Text("a", "eq", "x", False), kuery_nodes.Not(kuery_nodes.Exists("b")))
    )
    q = p(render(tree).text, TYPES)
    assert render(tree).text == "a:/[xX]/ OR (NOT _exists_:b)"
    assert q(d_a, 0) and q(d_none, 0) and not q({"b": "y"}, 0)


def test_declined_predicates_keep_the_esql_rule() -> None:
    a = next(lo for lo in LOADED if lo.analytic.id == "SIEMC-0014").analytic
    with pytest.raises(Declined, match=r"\|re"):
        elastic_native.stream_node(a, "long_label_query")
    with pytest.raises(Declined, match="numeric values as numbers"):
        lower_predicate(ir.Eq("process.name", ("443",)))
    with pytest.raises(Declined, match="not ip"):
        lower_predicate(ir.Cidr("host.name", ("10.0.0.0/8",)))


NASTY = [
    'a"b',
    "back\\slash",
    "\\n not a newline",
    "x or y",
    "cannot run",
    "not this",
    "*?",
    "(paren)",
    "{brace}",
    "<angle>",
    "a:b",
    "/slash/",
    "tab\there",
    "line\u2028sep",
    "ctl\x01",
    "émoji 😀",
    "[class]",
    "dot.star.*",
    "#@&~",
    "AND OR NOT",
]


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("op", ["eq", "contains", "startswith", "endswith"])
@pytest.mark.parametrize("cased", [True, False])
def test_values_round_trip_through_kql_and_lucene(value: str, op: str, cased: bool) -> None:
    """Quoting and escaping: each rendered test matches what siemc's operator holds for, and
    nothing else, whatever the value holds (quotes, backslashes, keywords, wildcards, regexp
    and query_string operators, whitespace, control characters, non-BMP letters)."""
    field = "process.command_line"
    q = render(kuery_nodes.Text(field, op, value, cased))  # type: ignore[arg-type]
    match = kuery_interp.parse(q.language, q.text, TYPES)
    sample = {
        "eq": value,
        "contains": f"-{value}-",
        "startswith": f"{value}-",
        "endswith": f"-{value}",
    }[op]
    assert match({field: sample}, 0), q.text
    assert match({field: ["zzz", sample]}, 0), q.text
    if value.swapcase() != value:
        other = sample.replace(value, value.swapcase())
        assert bool(match({field: other}, 0)) == (not cased), q.text
    assert not match({field: sample.replace(value, value[:-1] + "\x02")}, 0), q.text
    assert not match({}, 0)
