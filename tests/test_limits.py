"""Documented limits on analytic size and shape: each is a positioned error, never a
RecursionError or a stall downstream."""

from __future__ import annotations

import pytest

from backends import TARGETS
from compiler.build import compile_pair
from compiler.diagnostics import DiagnosticError
from compiler.filters import MAX_FILTER_DEPTH
from compiler.lower import load_text

HEAD = """\
id: T-LIM-1
title: t
description: d
attack: {techniques: [T1059]}
platforms: [windows]
severity: low
streams:
  s:
    logsource: {category: process_creation, product: windows}
    where:
"""


def nested_nots(depth: int) -> str:
    lines, indent = [], "      "
    for _ in range(depth):
        lines.append(f"{indent}not:")
        indent += "  "
    lines.append(f"{indent}process.name: x")
    return HEAD + "\n".join(lines) + "\ndetect:\n  match: s\n"


def test_filter_nested_past_the_limit_is_e127_at_its_line() -> None:
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", nested_nots(328))
    (d,) = info.value.diagnostics
    assert d.code == "E127"
    # The `where` mapping is level 1 and `not:` number n (on line 10 + n) opens level n + 1:
    # the error points at the first mapping past the limit.
    assert d.line == 11 + MAX_FILTER_DEPTH


def test_filter_at_the_limit_is_accepted() -> None:
    load_text("a.yml", nested_nots(MAX_FILTER_DEPTH - 1))
    with pytest.raises(DiagnosticError):
        load_text("a.yml", nested_nots(MAX_FILTER_DEPTH))


@pytest.mark.parametrize("target", list(TARGETS))
def test_filter_at_the_limit_compiles_on_every_target(target: str) -> None:
    loaded = load_text("a.yml", nested_nots(MAX_FILTER_DEPTH - 1))
    pair = compile_pair(loaded, target, profile=None, allow_approximate=True)
    assert pair.artifact is not None, pair.diagnostics
