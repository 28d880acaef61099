"""backends.identity: which correlations key on one process (docs/semantics.md)."""

from __future__ import annotations

from pathlib import Path

from backends.identity import ProcessKey, disjoint_streams, sequence_process_key
from compiler import ir
from compiler.lower import load_file, load_text

ROOT = Path(__file__).resolve().parent.parent

BASE = """
id: T-1
title: t
description: d
attack: {{analytics: [AN0000], techniques: [T1059]}}
platforms: [linux]
severity: low
streams:
  start:
    logsource: {{category: process_creation, product: linux}}
  stop:
    logsource: {{product: linux}}
    where: {stop_where}
detect:
  sequence:
    by: {by}
    maxspan: 5m
    steps:
      - {{stream: start, as: a}}
      - {{stream: start, as: b}}
    until: {{stream: stop}}
"""


def _key(stop_where: str, by: str = "[host.name, process.pid]") -> ProcessKey | None:
    a = load_text("t.yml", BASE.format(stop_where=stop_where, by=by)).analytic
    assert isinstance(a.detection, ir.Sequence)
    return sequence_process_key(a, a.detection)


def test_an1190_keys_on_one_process() -> None:
    a = load_file(ROOT / "analytics" / "an1190_linux_cli_web_service.yml").analytic
    assert isinstance(a.detection, ir.Sequence)
    assert sequence_process_key(a, a.detection) == ProcessKey(("host.name",), "process.pid", ())


def test_process_end_filter_is_recognised() -> None:
    assert _key("{event.category: process, event.type: end}") is not None


def test_other_until_events_are_not_process_ends() -> None:
    assert _key("{event.category: process, event.type: start}") is None
    assert _key("{event.type: end}") is None  # could be a session or connection end
    assert _key("{any: [{event.category: process}, {event.type: end}]}") is None


def test_keys_without_pid_are_not_a_process() -> None:
    assert _key("{event.category: process, event.type: end}", by="[host.name, user.name]") is None


def test_extra_keys_are_kept() -> None:
    k = _key("{event.category: process, event.type: end}", by="[host.name, process.pid, user.name]")
    assert k == ProcessKey(("host.name",), "process.pid", ("user.name",))


def _two(a_where: str, b_where: str) -> ir.Analytic:
    text = f"""
id: T-DISJ
title: t
description: t
attack: {{techniques: [T1110]}}
platforms: [windows]
severity: low
streams:
  a:
    logsource: {{product: windows}}
    where: {a_where}
  b:
    logsource: {{product: windows}}
    where: {b_where}
detect:
  sequence:
    by: [host.name]
    maxspan: 1m
    steps:
      - {{stream: a}}
      - {{stream: b}}
"""
    return load_text("t.yml", text).analytic


def test_disjoint_streams_compare_values_as_filter_equality_does() -> None:
    """Numbers and numeric strings by value ("4625" == 4625.0), other text case-insensitively,
    through `any:` alternatives that all pin the field; arrays never prove anything."""

    def disjoint(a: str, b: str, arrays: frozenset[str] = frozenset()) -> bool:
        return disjoint_streams(_two(a, b), "a", "b", arrays)

    assert disjoint("{event.code: 4625}", "{event.code: 4624}")
    assert not disjoint("{event.code: 4625}", "{event.code: '4625.0'}")
    assert not disjoint("{event.code: '7'}", "{event.code: '7.0'}")
    assert not disjoint("{user.name: Alice}", "{user.name: ALICE}")
    assert disjoint("{user.name: alice}", "{user.name: bob}")
    assert not disjoint("{user.name|cased: alice}", "{user.name: bob}")
    assert disjoint("{any: [{event.code: 4625}, {event.code: 4771}]}", "{event.code: [4624, 4768]}")
    assert not disjoint("{any: [{event.code: 4625}, {user.name: x}]}", "{event.code: 4624}")
    assert not disjoint("{event.code: 4625}", "{event.code: 4624}", frozenset({"event.code"}))
