"""Conditional measures on each target: compiled where the backend renders them (the engines
compare them in tests/differential/*/d65_*), refused with a positioned reason elsewhere."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from backends import get_backend
from backends.base import CompileError
from compiler import canonical
from compiler.engines import run_esql
from compiler.lower import load_file
from tests.differential_support import evaluator_alerts

ROOT = Path(__file__).resolve().parent.parent
D65 = ROOT / "tests" / "differential" / "splunk" / "d65_conditional_measures.yml"


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [
        ("sigma", "E200", "sigma cannot express conditional measure (where)"),
    ],
)
def test_targets_without_conditional_measures_refuse_at_the_measure(
    target: str, code: str, words: str
) -> None:
    analytic = load_file(D65).analytic
    with pytest.raises(CompileError) as exc:
        get_backend(target).compile(analytic, allow_approximate=True)
    diags = [d for d in exc.value.diagnostics if d.code == code and words in d.message]
    assert diags, [d.message for d in exc.value.diagnostics]
    # at the measures' own lines (the first conditional one, low_flows, is on line 23)
    assert min(d.line for d in diags) == 23


def test_eql_refuses_the_aggregate_once() -> None:
    analytic = load_file(D65).analytic
    with pytest.raises(CompileError) as exc:
        get_backend("eql").compile(analytic, allow_approximate=True)
    assert [d.code for d in exc.value.diagnostics] == ["E200"]
    assert "aggregation" in exc.value.diagnostics[0].message


@pytest.mark.parametrize(
    ("target", "needles"),
    [
        ("splunk", ["siemc_w1=if(tonumber(dest_port)<1024, 1, null())", "count(siemc_w1) AS"]),
        ("kql", ["__if_low_flows = ", "countif(__if_low_flows)", "maxif(SrcBytes, __if_high_max)"]),
        ("duckdb", ['count(*) FILTER (WHERE "cond:low_flows")']),
        (
            "esql",
            [
                "low_flows = COUNT(*) WHERE destination.port < 1024,",
                "high_max = MAX(source.bytes) WHERE (destination.port IS NULL OR "
                "destination.port >= 1024)",
                "siemc_hit_low_peers = COUNT(*) WHERE destination.port < 1024,",
                "low_peers = COUNT(destination.ip) WHERE siemc_hit_low_peers > 0,",
            ],
        ),
    ],
)
def test_targets_with_conditional_measures_compile_exactly(target: str, needles: list[str]) -> None:
    profile = "asim" if target == "kql" else None
    art = get_backend(target).compile(load_file(D65).analytic, profile=profile)
    assert not art.approximations
    for n in needles:
        assert n in art.query, art.query


D65N = ROOT / "tests" / "differential" / "kql" / "d65_conditional_numeric.yml"


@pytest.mark.parametrize("path", [D65, D65N], ids=["counts", "numeric"])
def test_esql_conditional_measures_equal_the_evaluator_and_need_their_filter(path: Path) -> None:
    """The engine agrees with the evaluator; the same query without its measure filters does not
    (the fixtures tell filtered from unfiltered measures apart)."""
    loaded = load_file(path)
    fx = loaded.fixtures[0]
    art = get_backend("esql").compile(loaded.analytic)
    assert not art.approximations
    want = evaluator_alerts(loaded, fx)
    assert want
    assert canonical.diff(want, run_esql.run(loaded, fx, art)).equal
    stripped = re.sub(r" WHERE \(?destination\.port[^,\n]*", "", art.query)
    assert stripped != art.query
    broken = dataclasses.replace(art, query=stripped)
    assert not canonical.diff(want, run_esql.run(loaded, fx, broken)).equal
