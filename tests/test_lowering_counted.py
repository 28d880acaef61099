"""Counted sequence steps in the language: `count:` lowers to ir.Step.count, with positioned
errors where it does not apply (E715) or is out of range (E716); each target says what it does
with one (a translation, a declared approximation or a positioned refusal)."""

from __future__ import annotations

import textwrap

import pytest

from backends import ENGINE_TARGETS, TARGETS, get_backend
from backends.base import CompileError
from compiler import ir
from compiler.build import compile_pair
from compiler.diagnostics import DiagnosticError
from compiler.lower import Loaded, load_text

HEAD = """\
id: L-C
title: t
description: d
attack: {techniques: [T1110]}
platforms: [windows]
severity: high
streams:
  failed:
    logsource: {product: windows, service: security}
    where: {winlog.event_data.Status: '0xc000006d'}
  success:
    logsource: {product: windows, service: security}
    where: {winlog.event_data.Status: '0x0'}
"""


def loaded(detect: str) -> Loaded:
    return load_text("c.yml", HEAD + textwrap.dedent(detect))


def errors(detect: str) -> list[tuple[str, int, int]]:
    with pytest.raises(DiagnosticError) as info:
        loaded(detect)
    return [(d.code, d.line, d.col) for d in info.value.diagnostics]


SEQUENCE = """\
detect:
  sequence:
    by: [user.name]
    maxspan: 10m
    steps:
      - {stream: failed, as: failures, count: %s}
      - {stream: success, as: logon}
"""


def test_count_lowers_to_the_number_of_events_the_step_takes() -> None:
    for written, n in (("{gte: 10}", 10), ("{gt: 9}", 10), ("{gte: 2}", 2)):
        d = loaded(SEQUENCE % written).analytic.detection
        assert isinstance(d, ir.Sequence)
        assert [s.count for s in d.steps] == [n, 1]
        assert d.steps[0] != ir.Step("failures", "failed", ("user.name",))  # count compares


def test_count_out_of_range_is_e716_at_the_count() -> None:
    # line 19: the first step (HEAD has 13 lines, then detect, sequence, by, maxspan, steps)
    assert errors(SEQUENCE % "{gte: 1}") == [("E716", 19, 47)]
    assert errors(SEQUENCE % "{gt: 0}") == [("E716", 19, 47)]
    assert errors(SEQUENCE % "{gte: 1001}") == [("E716", 19, 47)]


def test_count_needs_exactly_one_bound() -> None:
    ((code, line, _),) = errors(SEQUENCE % "{gte: 3, gt: 2}")
    assert code in ("E102", "E104") and line == 19


@pytest.mark.parametrize(
    "detect",
    [
        """\
        detect:
          sequence:
            by: [user.name]
            maxspan: 10m
            steps: [{stream: failed}, {stream: success}]
            until: {stream: failed, as: stop, count: {gte: 3}}
        """,
        """\
        detect:
          cooccurrence:
            by: [user.name]
            window: 10m
            streams: [{stream: failed, count: {gte: 3}}, success]
        """,
        """\
        detect:
          absence:
            by: [user.name]
            first: {stream: failed, count: {gte: 3}}
            missing: success
            within: 10m
        """,
    ],
    ids=["until", "cooccurrence", "absence"],
)
def test_count_outside_sequence_steps_is_e715_at_the_key(detect: str) -> None:
    found = errors(detect)
    assert [c for c, _, _ in found] == ["E715"]
    text = (HEAD + textwrap.dedent(detect)).splitlines()
    _, line, col = found[0]
    assert text[line - 1][col - 1 :].startswith("count")


def test_every_target_translates_declares_or_refuses_a_counted_step() -> None:
    lo = loaded(SEQUENCE % "{gte: 10}")
    verdicts = {}
    for target in sorted(TARGETS | ENGINE_TARGETS):
        res = compile_pair(lo, target, profile=None, allow_approximate=True)
        if res.artifact is not None:
            notes = [a.construct for a in res.artifact.approximations]
            verdicts[target] = "exact" if not notes else "counted" in " ".join(notes)
        else:
            assert res.diagnostics, target
            codes = {d.code for d in res.diagnostics}
            messages = " ".join(d.message for d in res.diagnostics)
            assert codes <= {"E200", "E201", "E210", "E211"}, (target, messages)
            if "E201" in codes:
                assert "counted sequence step (count)" in messages, target
                assert any(d.line == 19 for d in res.diagnostics), target
            verdicts[target] = "refused"
    assert verdicts["eql"] == "exact"
    assert verdicts["sigma"] is True  # a declared approximation names the construct
    assert verdicts["kql"] is True  # the scan form, its ties of one millisecond declared
    for target in ("splunk", "esql", "duckdb"):
        assert verdicts.get(target) == "refused", (target, verdicts)


def test_eql_refuses_more_than_a_hundred_runs_at_the_step() -> None:
    lo = loaded(SEQUENCE % "{gte: 101}")
    with pytest.raises(CompileError) as info:
        get_backend("eql").compile(lo.analytic)
    (d,) = info.value.diagnostics
    assert d.code == "E200" and "runs" in d.message and (d.line, d.col) == (19, 9)
    art = get_backend("eql").compile(loaded(SEQUENCE % "{gte: 100}").analytic)
    assert "with runs=100" in art.query
