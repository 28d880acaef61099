"""Every kind of problem in an analytic is reported at its exact line and column."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.diagnostics import CODES, DiagnosticError
from compiler.lower import load_text

HEAD = """\
id: T-1
title: t
description: d
attack: {analytics: [AN1511], techniques: [T1567.002]}
platforms: [windows]
severity: high
"""

STREAMS = """\
streams:
  proc:
    logsource: {category: process_creation, product: windows}
  net:
    logsource: {category: network_connection}
"""

SEQ = """\
detect:
  sequence:
    by: [host.name]
    maxspan: 5m
    steps: [{stream: proc}, {stream: net}]
"""


def diags(text: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", textwrap.dedent(text))
    return [(d.line, d.col, d.code, d.message) for d in info.value.diagnostics]


def only(text: str) -> tuple[int, int, str, str]:
    ds = diags(text)
    assert len(ds) == 1, ds
    return ds[0]


def test_valid_minimal_loads() -> None:
    loaded = load_text("a.yml", HEAD + STREAMS + SEQ)
    assert loaded.analytic.id == "T-1"


def test_yaml_syntax_error_position() -> None:
    line, _col, code, _ = only(HEAD + "streams:\n  proc: [a, b\n")
    assert (code, line) == ("E001", 9)


def test_tab_indentation_has_help() -> None:
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", HEAD + "streams:\n\tproc: {}\n")
    d = info.value.diagnostics[0]
    assert d.code == "E001" and d.line == 8 and "tabs" in (d.help or "")


def test_duplicate_key() -> None:
    assert only(HEAD + "severity: low\n" + STREAMS + SEQ)[:3] == (7, 1, "E002")


def test_unknown_key_points_at_key_with_suggestion() -> None:
    text = HEAD + STREAMS.replace("logsource: {category: network", "logsourc: {category: network")
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", text + SEQ)
    d = info.value.diagnostics[0]
    assert (d.line, d.col, d.code) == (11, 5, "E100")
    assert d.help == "did you mean 'logsource'?"


def test_wrong_type() -> None:
    line, col, code, msg = only(
        HEAD.replace("platforms: [windows]", "platforms: windows") + STREAMS + SEQ
    )
    assert (line, col, code) == (5, 12, "E102")
    assert "list" in msg


def test_invalid_choice() -> None:
    line, col, code, msg = only(HEAD.replace("severity: high", "severity: urgent") + STREAMS + SEQ)
    assert (line, col, code) == (6, 11, "E103")
    assert "'high'" in msg


def test_bad_duration() -> None:
    line, col, code, _msg = only(HEAD + STREAMS + SEQ.replace("maxspan: 5m", "maxspan: 5 minutes"))
    assert (line, col, code) == (15, 14, "E110")


def test_missing_key() -> None:
    line, _col, code, msg = only(HEAD + STREAMS + SEQ.replace("    maxspan: 5m\n", ""))
    assert code == "E101" and "maxspan" in msg and line == 13


def test_unknown_stream_reference() -> None:
    line, col, code, msg = only(HEAD + STREAMS + SEQ.replace("{stream: net}", "{stream: nett}"))
    assert (line, col, code) == (16, 38, "E120")
    assert msg == "unknown stream 'nett'"


def test_impossible_window_lookback_shorter_than_span() -> None:
    text = (
        HEAD
        + STREAMS
        + SEQ.replace("5m", "2h")
        + textwrap.dedent(
            """\
        baseline:
          - first_seen: {stream: net, keys: [host.name], lookback: 1h}
        """
        )
    )
    line, col, code, msg = only(text)
    assert (line, col, code) == (18, 60, "E140")
    assert "not longer than the sequence window (2h)" in msg


def test_unknown_modifier_and_bad_regex_collected_together() -> None:
    streams = STREAMS.replace(
        "    logsource: {category: process_creation, product: windows}\n",
        "    logsource: {category: process_creation, product: windows}\n"
        "    where:\n"
        "      process.name|endwith: x.exe\n"
        "      process.command_line|re: '(unclosed'\n",
    )
    ds = diags(HEAD + streams + SEQ)
    assert [(d[0], d[1], d[2]) for d in ds] == [(11, 7, "E123"), (12, 32, "E124")]


def test_expression_error_column_inside_string() -> None:
    text = (
        HEAD
        + STREAMS
        + textwrap.dedent(
            """\
        detect:
          aggregate:
            stream: net
            window: {kind: tumbling, size: 1h}
            by: [host.name]
            measures: {out: {sum: source.bytes}}
            having: out >> 5
        """
        )
    )
    line, col, code, _ = only(text)
    assert (line, col, code) == (18, 18, "E130")


def test_unknown_measure_in_having() -> None:
    text = (
        HEAD
        + STREAMS
        + textwrap.dedent(
            """\
        detect:
          aggregate:
            stream: net
            window: {kind: tumbling, size: 1h}
            measures: {bytes_out: {sum: source.bytes}}
            having: "bytes_otu > 10MB"
        """
        )
    )
    ds = diags(text)
    assert ds[0][:3] == (17, 14, "E132")


def test_deviation_needs_tumbling_window() -> None:
    text = (
        HEAD
        + STREAMS
        + textwrap.dedent(
            """\
        detect:
          aggregate:
            stream: net
            window: {kind: sliding, size: 1h}
            measures: {n: {count: true}}
        baseline:
          - deviation: {measure: n, lookback: 7d, k: 3}
        """
        )
    )
    assert only(text)[:3] == (18, 5, "E142")


def test_unknown_lookup_column(tmp_path: Path) -> None:
    (tmp_path / "roles.csv").write_text("host,role\na,web\n")
    text = HEAD + textwrap.dedent(
        """\
        lookups:
          roles: {file: roles.csv}
        streams:
          net:
            logsource: {category: network_connection}
            enrich:
              - {lookup: roles, match: {hostname: host.name}, add: {role: labels.role}}
        detect:
          match: net
        """
    )
    f = tmp_path / "a.yml"
    with pytest.raises(DiagnosticError) as info:
        load_text(str(f), text)
    d = info.value.diagnostics[0]
    assert (d.line, d.col, d.code) == (13, 33, "E121")
    assert d.help == "its columns are: host, role"


def test_render_has_caret_and_help() -> None:
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", HEAD + STREAMS + SEQ.replace("{stream: net}", "{stream: nett}"))
    text = info.value.render()
    assert text.splitlines()[0] == "a.yml:16:38: error[E120]: unknown stream 'nett'"
    assert "^^^^" in text and "help: did you mean 'net'?" in text


def test_codes_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "diagnostics.md").read_text()
    for code in CODES:
        assert f"`{code}`" in doc, code


def test_duration_without_unit_says_so() -> None:
    line, col, code, msg = only(HEAD + STREAMS + SEQ.replace("maxspan: 5m", "maxspan: 120"))
    assert (line, col, code) == (15, 14, "E110")
    assert "needs a unit: write 120s" in msg


def test_typo_suggestion_is_never_the_typo_itself() -> None:
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", HEAD + STREAMS.replace("streams:", "stream:") + SEQ)
    d = next(d for d in info.value.diagnostics if d.code == "E100")
    assert d.help == "did you mean 'streams'?"


@pytest.mark.parametrize(
    ("having", "col", "help_"),
    [
        ("out >= 1 MB", 22, "write the unit next to the number: 1MB"),
        ("out = 1MB", 17, "compare with '=='"),
    ],
)
def test_expression_hints(having: str, col: int, help_: str) -> None:
    text = (
        HEAD
        + STREAMS
        + textwrap.dedent(
            f"""\
        detect:
          aggregate:
            stream: net
            window: {{kind: tumbling, size: 1h}}
            measures: {{out: {{sum: source.bytes}}}}
            having: {having}
        """
        )
    )
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", text)
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.col, d.help) == ("E130", 17, col, help_)
