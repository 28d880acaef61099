"""Property tests for untrusted analytics (issue 8; docs/security.md): header text, referenced
paths and input sizes drawn by hypothesis. Whatever is drawn, siemc either compiles with the
hostile text inert, or refuses with a positioned diagnostic: never a traceback, a hang, or a
file's contents in a message. (Identifiers: tests/test_security_identifiers.py.)"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import TARGETS
from compiler.build import compile_pair
from compiler.diagnostics import DiagnosticError
from compiler.lower import load_file

SECRET = "SECRET-TOKEN-4f1c"

ANALYTIC = """\
id: T-FUZZ-01
title: {title}
description: {description}
attack: {{techniques: [T1059]}}
platforms: [windows]
severity: low
lookups:
  allow: {{file: {lookup}}}
streams:
  proc:
    logsource: {{category: process_creation, product: windows}}
    where:
      {where}
detect:
  match: proc
tests:
  - name: one
    kind: negative
    inputs:
      - {{file: {fixture}}}
"""


def _text(
    tmp: Path,
    *,
    title: str = "t",
    description: str = "d",
    lookup: str = "lk.csv",
    fixture: str = "events.jsonl",
    where: str = "process.name: cmd.exe",
) -> Path:
    body = ANALYTIC.format(
        title=_quoted(title),
        description=_quoted(description),
        lookup=_quoted(lookup),
        fixture=_quoted(fixture),
        where=where,
    )
    path = tmp / "an.yml"
    path.write_text(body, encoding="utf-8")
    return path


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar holding ``text``: escapes for quotes, backslashes, controls
    and line separators, every other character raw (a non-BMP letter escaped as JSON does would
    be a surrogate pair, which YAML reads as two lone surrogates)."""
    out = []
    for c in text:
        if c in '"\\' or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\ufeff":
            out.append(json.dumps(c)[1:-1] if c in '"\\' else f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An analytics root with good files, and around it every kind of path trick."""
    base = tmp_path_factory.mktemp("fuzz")
    (base / "outside.csv").write_text(f"cmd\n{SECRET}\n")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    for folder in (root, root / "sub"):
        (folder / "lk.csv").write_text("cmd\ncmd.exe\n")
        (folder / "events.jsonl").write_text('{"@timestamp": "2024-01-01T00:00:00Z"}\n')
    (root / "link_out.csv").symlink_to(base / "outside.csv")
    (root / "link_in.csv").symlink_to(root / "lk.csv")
    (root / "loop.csv").symlink_to(root / "loop.csv")
    os.mkfifo(root / "fifo.csv")
    yield root


SEGMENTS = st.sampled_from(
    [
        "..",
        ".",
        "sub",
        "lk.csv",
        "events.jsonl",
        "link_out.csv",
        "link_in.csv",
        "loop.csv",
        "fifo.csv",
        "outside.csv",
        "missing.csv",
        "",
        "%2e%2e",
        "~",
        "sub\\..\\..",
    ]
)
PATHS = st.one_of(
    st.lists(SEGMENTS, min_size=1, max_size=5).map("/".join),
    st.sampled_from(["/etc/passwd", "/proc/self/environ", "/dev/zero", "/dev/stdin", "/"]),
    st.builds(lambda p: "/" + p, st.lists(SEGMENTS, min_size=1, max_size=3).map("/".join)),
    st.text(min_size=1, max_size=12),
)
CODES = {"E004", "E005", "E007", "E100", "E101", "E102", "E150", "E151", "E160"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lookup=PATHS, fixture=PATHS)
def test_any_referenced_path_loads_inside_the_root_or_is_refused_at_its_line(
    tree: Path, lookup: str, fixture: str
) -> None:
    path = _text(tree, lookup=lookup, fixture=fixture)
    try:
        loaded = load_file(path, root=tree)
    except DiagnosticError as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert d.line > 0 and d.col > 0, d
            assert SECRET not in d.message and SECRET not in (d.help or "")
        return
    # loaded: the lookup really is inside the root, and none of its rows came from outside
    for lk in loaded.analytic.lookups:
        assert Path(lk.path).resolve().is_relative_to(tree.resolve())
        assert all(SECRET not in cell for row in lk.rows for cell in row)


HEADER_TEXT = st.lists(
    st.one_of(
        st.sampled_from(
            ["\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "*/", "/*", "//", "#", "`", "'''"]
        ),
        st.sampled_from(["---", "| where false", "let X = 1;", "index=* | delete", '"']),
        st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"),
    ),
    max_size=12,
).map("".join)


def _artifacts(path: Path) -> dict[str, object]:
    """Each target's query; for Sigma, whose rule carries the metadata, the rule documents
    without their title and description."""
    loaded = load_file(path)
    out: dict[str, object] = {}
    for target in TARGETS:
        pair = compile_pair(loaded, target, profile=None, allow_approximate=True)
        assert pair.artifact is not None, (target, pair.diagnostics)
        out[target] = pair.artifact.query
    docs = list(yaml.safe_load_all(str(out["sigma"])))
    for doc in docs:
        doc.pop("title", None)
        doc.pop("description", None)
    out["sigma"] = docs
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=HEADER_TEXT, description=HEADER_TEXT)
def test_header_text_never_changes_the_query(
    tmp_path_factory: pytest.TempPathFactory, title: str, description: str
) -> None:
    tmp = tmp_path_factory.mktemp("hdr")
    (tmp / "lk.csv").write_text("cmd\ncmd.exe\n")
    (tmp / "events.jsonl").write_text('{"@timestamp": "2024-01-01T00:00:00Z"}\n')
    benign = _artifacts(_text(tmp))
    hostile = _artifacts(_text(tmp, title=title or "t", description=description or "d"))
    # the query a SIEM runs is the same whatever the metadata says; the header lines carrying
    # it are checked line by line in tests/test_header_safety.py
    assert hostile == benign


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(min_value=9_990, max_value=10_010))
def test_value_lists_at_the_limit_load_and_past_it_are_e008(
    tmp_path_factory: pytest.TempPathFactory, n: int
) -> None:
    tmp = tmp_path_factory.mktemp("list")
    (tmp / "lk.csv").write_text("cmd\ncmd.exe\n")
    (tmp / "events.jsonl").write_text('{"@timestamp": "2024-01-01T00:00:00Z"}\n')
    values = "[" + ", ".join(f"p{i}.exe" for i in range(n)) + "]"
    path = _text(tmp, where=f"process.name: {values}")
    if n <= 10_000:
        load_file(path)
        return
    with pytest.raises(DiagnosticError) as exc:
        load_file(path)
    assert {d.code for d in exc.value.diagnostics} == {"E008"}
    assert all(d.line == 13 for d in exc.value.diagnostics)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.integers(min_value=28, max_value=36))
def test_filter_nesting_at_the_limit_loads_and_past_it_is_e127(
    tmp_path_factory: pytest.TempPathFactory, depth: int
) -> None:
    tmp = tmp_path_factory.mktemp("nest")
    (tmp / "lk.csv").write_text("cmd\ncmd.exe\n")
    (tmp / "events.jsonl").write_text('{"@timestamp": "2024-01-01T00:00:00Z"}\n')
    where = "{not: " * depth + "{process.name: cmd.exe}" + "}" * depth
    path = _text(tmp, where=where)
    if depth <= 31:
        load_file(path)
        return
    with pytest.raises(DiagnosticError) as exc:
        load_file(path)
    assert "E127" in {d.code for d in exc.value.diagnostics}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.integers(min_value=0, max_value=60), limit=st.integers(min_value=200, max_value=3000)
)
def test_fixture_files_over_the_size_limit_are_e005_at_their_input(
    tmp_path_factory: pytest.TempPathFactory, lines: int, limit: int
) -> None:
    tmp = tmp_path_factory.mktemp("size")
    (tmp / "lk.csv").write_text("cmd\ncmd.exe\n")
    line = '{"@timestamp": "2024-01-01T00:00:00Z", "process.name": "a.exe"}\n'
    (tmp / "events.jsonl").write_text(line * lines)
    path = _text(tmp)
    with mock.patch("compiler.lower_fixtures.FIXTURE_MAX_BYTES", limit):
        if len(line) * lines <= limit:
            load_file(path)
            return
        with pytest.raises(DiagnosticError) as exc:
            load_file(path)
    d = exc.value.diagnostics[0]
    assert d.code == "E005" and d.line == 20
