"""Policy and coverage checks over the bundled analytics; their fixtures through the evaluator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from compiler import ir
from compiler.discover import load_catalog
from compiler.filters import walk
from compiler.lower import Loaded
from compiler.testing import run_fixture

ANALYTICS = Path(__file__).resolve().parent.parent / "analytics"
CATALOG = load_catalog([ANALYTICS])


def test_every_analytic_loads() -> None:
    assert not CATALOG.errors, "\n\n".join(e.render() for e in CATALOG.errors)
    assert len(CATALOG.loaded) >= 6


def test_seed_analytics_present() -> None:
    analytics = {a for x in CATALOG.loaded for a in x.analytic.meta.attack_analytics}
    assert {"AN1190", "AN1511"} <= analytics


def test_ids_unique() -> None:
    ids = [x.analytic.id for x in CATALOG.loaded]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("loaded", CATALOG.loaded, ids=lambda x: x.analytic.id)
def test_policy(loaded: Loaded) -> None:
    a = loaded.analytic
    kinds = {f.kind for f in loaded.fixtures}
    assert kinds == {"positive", "negative"}, f"{a.id} needs positive and negative fixtures"
    assert a.meta.attack_techniques, a.id
    assert a.meta.description.strip() and a.meta.false_positives, a.id
    names = [f.name for f in loaded.fixtures]
    assert len(names) == len(set(names)), f"{a.id}: fixture names must be unique"


def test_real_data_used() -> None:
    real = [f for x in CATALOG.loaded for f in x.fixtures if f.data == "real"]
    assert {f.kind for f in real} == {"positive", "negative"}
    files = {i.file for f in real for i in f.inputs}
    for name in (
        "otrf_lsass06_zeek_conn.log",
        "otrf_psh_github_sysmon_1_3_22.jsonl",
        "otrf_excel_dcom_sysmon_1_3_22.jsonl",
        "otrf_log4shell_linux_sysmon_syslog.jsonl",
    ):
        assert f"fixtures/otrf/{name}" in files, name


CASES = [(x, f) for x in CATALOG.loaded for f in x.fixtures]


@pytest.mark.parametrize(
    ("loaded", "fixture"), CASES, ids=[f"{x.analytic.id}:{f.name[:40]}" for x, f in CASES]
)
def test_fixture(loaded: Loaded, fixture: ir.Fixture) -> None:
    r = run_fixture(loaded, fixture)
    if r.status == "skipped":
        assert os.environ.get("CI") != "true"
        pytest.skip(r.message)
    assert r.status == "passed", f"{r.message}\n{r.detail}"


# ------------------------------------------------------------------ construct coverage
def _exprs(a: ir.Analytic) -> Iterator[ir.Expr]:
    def rec(e: ir.Expr) -> Iterator[ir.Expr]:
        yield e
        if isinstance(e, ir.BinOp):
            yield from rec(e.left)
            yield from rec(e.right)
        elif isinstance(e, ir.UnaryOp):
            yield from rec(e.operand)
        elif isinstance(e, ir.Call):
            for x in e.args:
                yield from rec(x)

    for s in a.streams:
        for _, e in s.derive:
            yield from rec(e)
    d = a.detection
    if isinstance(d, ir.Aggregate):
        for _, e in d.compute:
            yield from rec(e)
        if d.having is not None:
            yield from rec(d.having)


def constructs(a: ir.Analytic) -> set[str]:
    out: set[str] = set()
    d = a.detection
    out.add(type(d).__name__)
    if isinstance(d, ir.Sequence):
        if d.until:
            out.add("until")
        if len({s.keys for s in d.steps}) > 1:
            out.add("per-step keys")
    if isinstance(d, ir.Aggregate):
        out.add(f"window:{d.window.kind}")
        out.add(f"origin:{d.origin}")
        out |= {f"measure:{m.kind}" for m in d.measures}
        if d.compute:
            out.add("compute")
        if d.having is not None:
            out.add("having")
    for b in a.baselines:
        out.add(type(b).__name__)
        if isinstance(b, ir.Rarity):
            out.add("rarity:days" if b.across == "@days" else "rarity:field")
    for s in a.streams:
        if s.join:
            out.add("join")
        if s.enrich:
            out.add("enrich")
        if s.derive:
            out.add("derive")

        def pred(p: ir.Predicate) -> None:
            out.add(f"pred:{type(p).__name__}")
            if isinstance(p, ir.StrMatch):
                out.add(f"op:{p.op}")
            if getattr(p, "cased", False):
                out.add("mod:cased")
            if getattr(p, "quantifier", "any") == "all":
                out.add("mod:all")
            if isinstance(p, ir.Compare):
                out.add(f"op:{p.op}")

        walk(s.filter, pred)
    for e in _exprs(a):
        if isinstance(e, ir.Call):
            out.add(f"fn:{e.func}")
        if isinstance(e, ir.BinOp) and e.op == "/":
            out.add("ratio")
    return out


REQUIRED = {
    "Match", "Sequence", "Cooccurrence", "Absence", "Aggregate",
    "until", "per-step keys",
    "window:tumbling", "window:sliding", "origin:event_count", "origin:value_count",
    "measure:count", "measure:distinct", "measure:sum", "measure:avg", "measure:min",
    "measure:max", "measure:stdev", "measure:percentile", "compute", "having", "ratio",
    "FirstSeen", "Deviation", "rarity:days", "rarity:field",
    "join", "enrich", "derive", "fn:extract_ips",
    "pred:Eq", "pred:StrMatch", "pred:Regex", "pred:Compare", "pred:Exists", "pred:Cidr",
    "pred:InLookup", "pred:And", "pred:Or", "pred:Not",
    "op:contains", "op:startswith", "op:endswith", "op:gt", "op:gte", "op:lt", "op:lte",
    "mod:cased", "mod:all",
}  # fmt: skip


def test_every_construct_used_by_a_bundled_analytic() -> None:
    used: set[str] = set()
    for x in CATALOG.loaded:
        used |= constructs(x.analytic)
    assert REQUIRED - used == set()


def test_semantics_doc_cites_existing_tests() -> None:
    """Every test the semantics page cites as backing an answer exists (prefix patterns allowed)."""
    import re

    root = Path(__file__).resolve().parent
    doc = (root.parent / "docs" / "semantics.md").read_text()
    cited = set(re.findall(r"`(test_[a-z0-9_]+\*?)`", doc))
    assert len(cited) >= 8
    names = set()
    for f in root.glob("test_*.py"):
        names |= set(re.findall(r"^\s*def (test_[a-z0-9_]+)", f.read_text(), re.M))
    for c in cited:
        ok = any(n.startswith(c[:-1]) for n in names) if c.endswith("*") else c in names
        assert ok, f"docs/semantics.md cites {c}, which no test defines"
