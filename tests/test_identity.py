"""backends.identity: which correlations key on one process (docs/semantics.md)."""

from __future__ import annotations

from pathlib import Path

from backends.identity import ProcessKey, sequence_process_key
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
