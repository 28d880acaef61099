"""Conditional measures on each target: compiled where the backend renders them (the engines
compare them in tests/differential/*/d65_*), refused with a positioned reason elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import get_backend
from backends.base import CompileError
from compiler.lower import load_file

ROOT = Path(__file__).resolve().parent.parent
D65 = ROOT / "tests" / "differential" / "splunk" / "d65_conditional_measures.yml"


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [
        ("esql", "E201", "the esql backend does not implement conditional measure (where) yet"),
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
    ],
)
def test_targets_with_conditional_measures_compile_exactly(target: str, needles: list[str]) -> None:
    profile = "asim" if target == "kql" else None
    art = get_backend(target).compile(load_file(D65).analytic, profile=profile)
    assert not art.approximations
    for n in needles:
        assert n in art.query, art.query
