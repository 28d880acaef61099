"""Parent -> child sequences on MDE: one query over the child's process-creation rows, whose
InitiatingProcess* columns are the parent (backends/sentinel/fold.py); the engine comparison is
tests/differential/kql/d66_*.yml in tests/test_diff_kql.py."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from backends import get_backend
from backends.sentinel.process import parent_child
from compiler import ir
from compiler.discover import load_catalog

BACKEND = get_backend("kql")
DIFF = Path(__file__).resolve().parent / "differential" / "kql"


@functools.cache
def _analytic(name: str) -> ir.Analytic:
    (loaded,) = load_catalog([DIFF / name]).loaded
    return loaded.analytic


def _seq(a: ir.Analytic) -> ir.Sequence:
    assert isinstance(a.detection, ir.Sequence)
    return a.detection


def test_pid_keyed_child_reads_the_parent_from_its_own_row_and_declares_a_subset() -> None:
    art = BACKEND.compile(
        _analytic("d66_parent_child_pid.yml"), profile="mde", allow_approximate=True
    )
    assert "join" not in art.query
    assert 'InitiatingProcessCommandLine contains " -i"' in art.query
    # one alert per parent process, not per (host, PID)
    assert (
        "by DeviceName, InitiatingProcessId, DeviceId, InitiatingProcessCreationTime" in art.query
    )
    assert [(x.construct, x.direction) for x in art.approximations] == [
        ("parent-child sequence keyed on PIDs", "subset")
    ]


def test_entity_keyed_child_is_exact_without_a_join() -> None:
    art = BACKEND.compile(_analytic("d66_parent_child_entity.yml"), profile="mde")
    assert "join" not in art.query and not art.approximations
    assert "by DeviceName, InitiatingProcessUniqueId" in art.query


def test_asim_keeps_the_joins() -> None:
    art = BACKEND.compile(
        _analytic("d66_parent_child_pid.yml"), profile="asim", allow_approximate=True
    )
    assert "join kind=inner" in art.query
    assert [x.construct for x in art.approximations] == ["ordered sequence"]


def test_parent_child_shape() -> None:
    a = _analytic("d66_parent_child_pid.yml")
    d = _seq(a)
    assert parent_child(a, d) == "process.pid"
    assert (
        parent_child(
            _analytic("d66_parent_child_entity.yml"), _seq(_analytic("d66_parent_child_entity.yml"))
        )
        == "process.entity_id"
    )
    first, second = d.steps
    # the same key on both steps is not parent and child
    same = dataclasses.replace(d, steps=(first, dataclasses.replace(second, keys=first.keys)))
    assert parent_child(a, same) is None
    # one stream for both steps: an event could fill either step
    one = dataclasses.replace(d, steps=(first, dataclasses.replace(second, stream=first.stream)))
    assert parent_child(a, one) is None
    # streams whose filters share a value may hold one event
    shell, recon = a.streams
    overlap = dataclasses.replace(recon, filter=ir.Eq("process.name", ("whoami", "bash")))
    b = dataclasses.replace(a, streams=(shell, overlap))
    assert parent_child(b, d) is None
