"""The shared inliner (backends/inline.py) and the PSL-proven registered-domain test
(backends/psl_names.py)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from backends import get_backend
from backends.inline import filter_only_streams
from backends.psl_names import BLANKS, domain_test, suffixes_below
from compiler import ir
from compiler.discover import load_catalog
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.values import call

ROOT = Path(__file__).resolve().parent.parent
SPAN = ir.Span("t.yml", 1, 1)
# registered domains: plain, with PSL rules below (fastly.net), under a wildcard with an
# exception (www.ck), under a multi-label suffix, under a private-section suffix
DOMAINS = ["live.net", "fastly.net", "www.ck", "bbc.co.uk", "microsoft.github.io"]


def _catalog() -> dict[str, ir.Analytic]:
    return {x.analytic.id: x.analytic for x in load_catalog([ROOT / "analytics"]).loaded}


def test_blanks_are_the_characters_strip_removes() -> None:
    import re

    cls = re.compile(f"[{BLANKS}]")
    chars = map(chr, range(sys.maxunicode + 1))
    assert [c for c in chars if cls.fullmatch(c)] == [
        c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()
    ]


def test_domains_are_registered_domains_and_some_have_rules_below() -> None:
    assert all(call("registered_domain", [d]) == d for d in DOMAINS)
    assert "a.prod.fastly.net" in suffixes_below("fastly.net")
    assert suffixes_below("live.net") == []


LABEL = st.sampled_from(["a", "X", "map", "prod", "www", "co", "uk", "github", "a b", "", "ck"])
BLANK = st.sampled_from(["", " ", "\t", "\u3000", "\x85", "\n", "\u2028"])


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(DOMAINS),
    st.lists(LABEL, max_size=3),
    st.sampled_from(["", "d", "below", "upper"]),
    BLANK,
    st.sampled_from(["", ".", ".."]),
    BLANK,
)
def test_domain_test_is_the_evaluators_registered_domain(
    domain: str, labels: list[str], base: str, before: str, dots: str, after: str
) -> None:
    """On names built from the domain, the suffixes below it, blanks, dots, case and empty
    labels, the inlined test answers as ``registered_domain(name) == domain``."""
    tail = {
        "": "",
        "d": domain,
        "below": (suffixes_below(domain) or [domain])[0],
        "upper": domain.upper(),
    }[base]
    name = before + ".".join([*labels, tail] if tail else labels) + dots + after
    test, kept = domain_test("f", [domain], SPAN)
    assert kept == {}
    got = compile_predicate(test, {})({"f": name})
    assert got == (call("registered_domain", [name]) == domain), (name, test)


def test_too_many_suffixes_below_is_a_superset() -> None:
    test, kept = domain_test("f", ["amazonaws.com"], SPAN)
    assert len(kept["amazonaws.com"]) > 100
    holds = compile_predicate(test, {})
    assert holds({"f": "console.amazonaws.com"})
    assert holds({"f": "bucket.s3.amazonaws.com"})  # registered domain bucket.s3...: extra
    assert not holds({"f": "amazonaws.com.example"})


def test_filter_only_streams() -> None:
    catalog = _catalog()
    assert filter_only_streams(catalog["SIEMC-0012"]) == ["storage_sni"]
    # SIEMC-0010 groups by the enriched role: its lookup stays a join
    assert filter_only_streams(catalog["SIEMC-0010"]) == []


def test_a_lookup_read_as_a_key_stays_a_join() -> None:
    """The enriched role is an aggregate key in SIEMC-0010: ES|QL keeps the LOOKUP JOIN, while
    SIEMC-0012 (filters only) needs none."""
    esql = get_backend("esql")
    catalog = _catalog()
    assert "LOOKUP JOIN" in esql.compile(catalog["SIEMC-0010"], allow_approximate=True).query
    art = esql.compile(catalog["SIEMC-0012"])
    assert "LOOKUP JOIN" not in art.query and art.approximations == ()


def test_kql_inlines_a_lookup_and_a_registered_domain_only_filters_read() -> None:
    """On MDE, a one-row watchlist and registered_domain() read only by the filter become a
    filter: no watchlist, no extend."""
    hosts = ir.Lookup("hosts", "/x/hosts.csv", ("host", "role"), (("ws-a", "workstation"),))
    enrich = ir.Enrich("hosts", (("host", "host.name"),), (("role", "labels.role"),), SPAN)
    rd = ir.Call("registered_domain", (ir.FieldRef("destination.domain"),))
    where = ir.And((ir.Eq("labels.role", ("workstation",)), ir.Eq("labels.d", ("live.net",))))
    s = ir.Stream(
        "s", ir.LogSource("network_connection"), None, (enrich,), (("labels.d", rd),), where
    )
    meta = _catalog()["SIEMC-0012"].meta
    a = ir.Analytic("T-1", "t.yml", meta, (hosts,), (s,), ir.Match("s"), ())
    art = get_backend("kql").compile(a, profile="mde")
    assert "_GetWatchlist" not in art.query and "extend labels" not in art.query
    assert 'DeviceName =~ "ws-a"' in art.query and "matches regex" in art.query
    assert art.approximations == ()
    # the same role read by a group key keeps the watchlist
    agg = ir.Aggregate("s", ir.Window("tumbling", 60_000), ("labels.role",), (), (), None)
    keyed = dataclasses.replace(a, detection=agg)
    art = get_backend("kql").compile(keyed, profile="mde", allow_approximate=True)
    assert '_GetWatchlist("hosts")' in art.query
