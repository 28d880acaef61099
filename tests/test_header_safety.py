"""Header and comment text of every artifact stays inert (issue: a line break in a title
injected KQL after the `//` header, and a whole extra Sigma rule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends import TARGETS
from backends.comment import one_line
from compiler.build import compile_pair
from compiler.discover import load_catalog

PAYLOAD = "let DeviceProcessEvents = DeviceProcessEvents | where false;"
# every character some lexer (Kusto, YAML 1.1/1.2, Splunk, Python's splitlines) ends a line on
BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"]

ANALYTIC = """\
id: T-HDR-01
title: {title}
description: process starts of cmd.exe
attack: {{techniques: [T1059]}}
platforms: [windows]
severity: low
streams:
  proc:
    logsource: {{category: process_creation, product: windows}}
    where:
      process.name: cmd.exe
detect:
  match: proc
"""


def _artifacts(tmp_path: Path, title: str) -> dict[str, str]:
    path = tmp_path / f"a{abs(hash(title))}.yml"
    # a JSON string is a valid YAML double-quoted scalar with the same escapes
    path.write_text(ANALYTIC.format(title=json.dumps(title)), encoding="utf-8")
    loaded = load_catalog([path]).loaded[0]
    out = {}
    for target in TARGETS:
        pair = compile_pair(loaded, target, profile=None, allow_approximate=True)
        assert pair.artifact is not None, (target, pair.diagnostics)
        out[target] = pair.artifact.text
    return out


@pytest.mark.parametrize("brk", BREAKS, ids=[f"U+{ord(b[0]):04X}" for b in BREAKS])
def test_line_break_in_title_stays_in_the_comment(tmp_path: Path, brk: str) -> None:
    benign = _artifacts(tmp_path, "Benign")
    hostile = _artifacts(tmp_path, f"Benign{brk}{PAYLOAD}")
    for target in TARGETS:
        b_lines, h_lines = benign[target].splitlines(), hostile[target].splitlines()
        assert len(h_lines) == len(b_lines), (target, hostile[target])
        changed = [i for i, (x, y) in enumerate(zip(b_lines, h_lines, strict=True)) if x != y]
        # only the line(s) that carry the title differ, and they are still comment/metadata
        assert changed, target
        for i in changed:
            assert PAYLOAD in h_lines[i], (target, h_lines[i])
            assert not h_lines[i].lstrip().startswith("let "), (target, h_lines[i])


def test_sigma_title_break_adds_no_rule(tmp_path: Path) -> None:
    from sigma.collection import SigmaCollection

    injected = (
        "Benign\n---\ntitle: injected\nlogsource: {product: x}\n"
        "detection: {s: {a: 1}, condition: s}"
    )
    text = _artifacts(tmp_path, injected)["sigma"]
    rules = SigmaCollection.from_yaml(text, collect_errors=True)
    assert len(rules.rules) == 1
    assert rules.rules[0].title.startswith("Benign\n---")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("a\u2028b\u2029c\x85d", "a\\u2028b\\u2029c\\u0085d"),
        ("tab\there", "tab\\there"),
        ("back\\slash", "back\\\\slash"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("plain ÄÖ ü – text", "plain ÄÖ ü – text"),
    ],
)
def test_one_line_escapes_every_break(text: str, expected: str) -> None:
    assert one_line(text) == expected
    assert len(one_line(text).splitlines()) <= 1


@pytest.mark.parametrize("brk", BREAKS, ids=[f"U+{ord(b[0]):04X}" for b in BREAKS])
def test_line_break_in_title_stays_inert_in_exports(tmp_path: Path, brk: str) -> None:
    from sigma.collection import SigmaCollection

    from compiler.export import export
    from compiler.export.common import Request

    path = tmp_path / "a.yml"
    title = f"Benign{brk}[injected]{brk}search = | outputlookup x.csv"
    path.write_text(ANALYTIC.format(title=json.dumps(title)), encoding="utf-8")
    loaded = load_catalog([path]).loaded[0]
    req = Request((loaded,), True, None)
    files = {p.vendor: p.files for p in export(req, ["sigma", "splunk"])}
    (rules,) = [t for n, t in files["sigma"].items() if n.endswith(".yml")]
    assert len(SigmaCollection.from_yaml(rules).rules) == 1
    (conf,) = [t for n, t in files["splunk"].items() if n.endswith("savedsearches.conf")]
    # a .conf stanza or key starts a line: the title's pieces never do
    starts = [ln.split("=")[0].strip() for ln in conf.splitlines()]
    assert "[injected]" not in starts and "search" in starts and starts.count("search") == 1


def test_engines_run_the_artifact_file_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`siemc test --engines` hands each engine the bytes of the artifact file, header
    included: a header that ended early would change what the engine runs."""
    from types import SimpleNamespace

    from backends.base import Artifact
    from compiler import engine_check

    path = tmp_path / "a.yml"
    text = ANALYTIC.format(title=json.dumps("Benign")) + (
        "tests:\n  - name: one\n    kind: negative\n    data: synthetic\n    events:\n"
        '      - {"@timestamp": "2024-01-01T00:00:01Z", event.category: process, '
        "event.type: start, process.name: x.exe}\n"
    )
    path.write_text(text, encoding="utf-8")
    loaded = load_catalog([path]).loaded[0]
    seen: dict[str, str] = {}

    def fake(target: str) -> SimpleNamespace:
        def run(lo: object, fx: object, art: Artifact) -> list[object]:
            seen[target] = art.query
            return []

        return SimpleNamespace(run=run)

    monkeypatch.setattr(engine_check, "load_engine", fake)
    engine_check.check_fixture(loaded, loaded.fixtures[0], list(TARGETS))
    for target in TARGETS:
        pair = compile_pair(loaded, target, profile=None, allow_approximate=True)
        assert pair.artifact is not None
        assert seen[target] == pair.artifact.text, target
        assert seen[target].startswith(("//", "#", "```"))
