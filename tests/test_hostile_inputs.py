"""Tiny hostile log files end in one error naming path:line, never a traceback or a stall."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.inputs import read_events
from compiler.inputs._common import MAX_NESTING


def _nested(depth: int) -> dict[str, object]:
    doc: dict[str, object] = {"leaf": 1}
    for _ in range(depth - 1):
        doc = {"x": doc}
    return doc


@pytest.mark.parametrize("as_array", [False, True], ids=["jsonl", "array"])
def test_json_nested_beyond_the_decoder_is_an_error_with_line(
    tmp_path: Path, as_array: bool
) -> None:
    deep = '{"a":' * 100_000 + "1" + "}" * 100_000
    ok = json.dumps({"@timestamp": "2024-01-01T00:00:00Z", "event.id": "e1"})
    body = f"[\n{ok},\n{deep}\n]" if as_array else f"{ok}\n{deep}\n"
    path = tmp_path / "deep.json"
    path.write_text(body)
    with pytest.raises(ValueError, match=rf"deep\.json:{3 if as_array else 2}: .*nested"):
        list(read_events(path, "ecs"))


def test_objects_nested_past_the_limit_are_an_error_with_line(tmp_path: Path) -> None:
    doc = {"@timestamp": "2024-01-01T00:00:00Z", "deep": _nested(MAX_NESTING + 1)}
    ok = {"@timestamp": "2024-01-01T00:00:00Z", "deep": _nested(MAX_NESTING - 1)}
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(ok) + "\n" + json.dumps(doc) + "\n")
    with pytest.raises(ValueError, match=r"deep\.jsonl:2: objects nested more than 64"):
        list(read_events(path, "ecs"))


@pytest.mark.parametrize("stamp", ["1e999999", "9e99999999", 1e308])
def test_absurd_epoch_is_an_error_with_line(tmp_path: Path, stamp: object) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"@timestamp": stamp}) + "\n")
    with pytest.raises(ValueError, match=r"t\.jsonl:1: .*timestamp"):
        list(read_events(path, "ecs"))
