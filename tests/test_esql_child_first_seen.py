"""ES|QL: sequences from a process to its children paired by the latest first step, and
first-seen baselines on a single-event match (D-ESQL-67 and D-ESQL-67S prove them equal on the
engine; these check when each form applies)."""

from __future__ import annotations

import dataclasses

import pytest

from backends import get_backend
from backends.base import CompileError
from compiler import ir
from compiler.discover import load_catalog

EXTRA = {
    x.analytic.id: x.analytic
    for x in load_catalog(["tests/differential/esql"]).loaded
    if x.analytic.id in {"D-ESQL-64", "D-ESQL-67", "D-ESQL-67S"}
}
BACKEND = get_backend("esql")


def _with_child_filter(a: ir.Analytic, names: tuple[str, ...]) -> ir.Analytic:
    streams = tuple(
        dataclasses.replace(s, filter=ir.Eq("process.name", names)) if s.name == "child" else s
        for s in a.streams
    )
    return dataclasses.replace(a, streams=streams)


def test_children_pair_with_the_latest_start_on_every_stack() -> None:
    a = EXTRA["D-ESQL-67S"]
    for stack in ("9.0", "9.3"):
        # before 9.2 the logsource's array tests are declared (no MV_CONTAINS)
        art = get_backend("esql").configure({"stack": stack}).compile(a, allow_approximate=True)
        assert "STATS start = MAX(siemc_starts)" in art.query
        assert "INLINE STATS" not in art.query
        assert "NOTE exact when an event of 'child'" in art.text


def test_streams_that_may_share_an_event_are_not_paired_by_the_latest_start() -> None:
    # a bash start may be both a shell and a child: one event, one step decides its role
    a = _with_child_filter(EXTRA["D-ESQL-67S"], ("id", "bash"))
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(a, allow_approximate=True)
    assert {d.code for d in exc.value.diagnostics} == {"E200"}


def test_an_entity_keyed_sequence_over_two_categories_keeps_its_inline_stats_form() -> None:
    art = BACKEND.compile(EXTRA["D-ESQL-64"])
    assert "INLINE STATS siemc_seq_start" in art.query
    assert "siemc_starts" not in art.query


def test_first_seen_on_a_match_keeps_one_row_per_event() -> None:
    art = BACKEND.compile(EXTRA["D-ESQL-67"])
    assert "BY _index, _id" in art.query
    assert "siemc_hist_1 == siemc_first_1" in art.query
    with pytest.raises(CompileError) as exc:
        get_backend("esql").configure({"stack": "9.2"}).compile(EXTRA["D-ESQL-67"])
    assert {d.code for d in exc.value.diagnostics} == {"E230"}


def test_rarity_on_a_match_is_still_declared_not_implemented() -> None:
    a = EXTRA["D-ESQL-67"]
    fs = a.baselines[0]
    assert isinstance(fs, ir.FirstSeen)
    rarity = ir.Rarity(fs.stream, fs.keys, fs.current, "process.pid", 2, fs.lookback_ms, fs.span)
    with pytest.raises(CompileError) as exc:
        BACKEND.compile(dataclasses.replace(a, baselines=(rarity,)), allow_approximate=True)
    assert {d.code for d in exc.value.diagnostics} == {"E201"}
