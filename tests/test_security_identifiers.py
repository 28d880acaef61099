"""Query injection through names (issue 8, item 1): every name an analytic introduces or
references follows one identifier grammar (docs/language.md, "Names"), checked at `check` time
with a positioned E128; and every backend writes names through its target's quoting, so that a
name that passes the check can never change a query's structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.diagnostics import DiagnosticError
from compiler.lower import load_file

BASE = """\
id: T0001
title: t
description: d
attack: {techniques: [T1059]}
platforms: [windows]
severity: low
lookups:
  LOOKUP: {file: lk.csv}
streams:
  STREAM:
    logsource: {category: process_creation, product: windows}
    enrich:
      - lookup: LOOKUP
        match: {COLUMN: process.name}
        add: {role: FIELD}
    where:
      FIELD: admin
detect:
  aggregate:
    stream: STREAM
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures:
      MEASURE: {count: true}
    having: MEASURE >= 1
tests:
  - name: one
    kind: positive
    events:
      - {"@timestamp": "2024-01-01T00:00:00Z", event.category: process, event.type: start,
         host.os.type: windows, host.name: h1, process.name: a.exe}
    expect:
      - key: {host.name: h1}
"""

DEFAULTS = {
    "LOOKUP": "allow",
    "STREAM": "proc",
    "COLUMN": "cmd",
    "FIELD": "labels.role",
    "MEASURE": "hits",
}


def write(tmp: Path, header: str | None = None, text: str | None = None, **names: str) -> Path:
    """The analytic BASE with the given names (YAML text, inserted as written), and its CSV."""
    values = {**DEFAULTS, **names}
    body = text if text is not None else BASE
    for placeholder, value in values.items():
        body = body.replace(placeholder, value)
    column = names.get("COLUMN", DEFAULTS["COLUMN"]).strip('"')
    csv_header = header if header is not None else f"{column},role"
    (tmp / "lk.csv").write_text(f"{csv_header}\na.exe,admin\n", newline="")
    path = tmp / "an.yml"
    path.write_text(body)
    return path


def errors(path: Path) -> list[tuple[str, int, int, str]]:
    with pytest.raises(DiagnosticError) as info:
        load_file(path)
    return [(d.code, d.line, d.col, d.message) for d in info.value.diagnostics]


def test_the_base_analytic_loads(tmp_path: Path) -> None:
    load_file(write(tmp_path))


# --------------------------------------------------------------------------- check time
def test_lookup_column_that_would_write_an_outputlookup_is_e128_at_the_file(
    tmp_path: Path,
) -> None:
    hostile = "cmd OUTPUT x | outputlookup exfil.csv | fields - x"
    path = write(tmp_path, header=f'"{hostile}",role')
    got = errors(path)
    assert len(got) == 1
    code, line, col, msg = got[0]
    assert (code, line, col) == ("E128", 8, 17)  # `lk.csv` in `LOOKUP: {file: lk.csv}`
    assert hostile in msg and "ASCII letters, digits and '_'" in msg


@pytest.mark.parametrize(
    "column",
    ["*", "host.*", "a\nb", "a`b", "a b", "a\x00b", "a|b", "a'b", 'a"b', "a-b", "1a", "é"],
)
def test_lookup_columns_outside_the_grammar_are_e128(tmp_path: Path, column: str) -> None:
    quoted = '"' + column.replace('"', '""') + '"'
    got = errors(write(tmp_path, header=f"{quoted},role"))
    assert [g[0] for g in got] == ["E128"]
    assert (got[0][1], got[0][2]) == (8, 17)


@pytest.mark.parametrize(
    ("placeholder", "value", "where"),
    [
        ("FIELD", '"proc`ess.name"', (15, 21)),  # a backtick (schema errors come first)
        ("FIELD", '"labels.*"', (15, 21)),  # an enrich `add` target (first use)
        ("FIELD", '"labels.role\\nx"', (15, 21)),
        ("FIELD", '"labels..role"', (15, 21)),
        ("FIELD", '"labels.1st"', (15, 21)),
        ("FIELD", '"a@b"', (15, 21)),
        ("FIELD", '"a-b"', (15, 21)),
        ("FIELD", '"a b"', (15, 21)),
        ("FIELD", '"@"', (15, 21)),
        ("MEASURE", '"q*"', (24, 7)),
        ("MEASURE", '"q`"', (24, 7)),
        ("STREAM", '"p roc"', (10, 3)),
        ("STREAM", '"p|roc"', (10, 3)),
        ("LOOKUP", '"al low"', (8, 3)),
        ("COLUMN", '"c md"', (14, 17)),
    ],
)
def test_names_outside_the_grammar_are_e128_at_the_name(
    tmp_path: Path, placeholder: str, value: str, where: tuple[int, int]
) -> None:
    text = BASE.replace("    having: MEASURE >= 1\n", "")
    got = errors(write(tmp_path, text=text, **{placeholder: value}))
    assert ("E128", *where) in [(c, ln, col) for c, ln, col, _ in got], got
    assert all(c in ("E128", "E120", "E121", "E132") for c, *_ in got), got


def test_step_alias_outside_the_grammar_is_e128(tmp_path: Path) -> None:
    text = BASE.replace(
        """  aggregate:
    stream: STREAM
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures:
      MEASURE: {count: true}
    having: MEASURE >= 1
""",
        """  sequence:
    by: [host.name]
    maxspan: 5m
    steps:
      - {stream: STREAM, as: "a b"}
      - {stream: STREAM, as: b}
""",
    )
    got = errors(write(tmp_path, text=text))
    assert ("E128", 23, 28) in [(c, ln, col) for c, ln, col, _ in got], got


@pytest.mark.parametrize(
    ("having", "col"),
    [("`a b` >= 1", 14), ("`x|y` >= 1", 14), ("`q*` >= 1", 14), ("hits.. >= 1", 14)],
)
def test_names_in_expressions_are_e128_at_the_name(tmp_path: Path, having: str, col: int) -> None:
    text = BASE.replace("having: MEASURE >= 1", f'having: "{having}"')
    got = errors(write(tmp_path, text=text))
    assert [(c, ln, cl) for c, ln, cl, _ in got] == [("E128", 25, col)]


def test_lookup_predicate_column_and_field_are_checked(tmp_path: Path) -> None:
    text = BASE.replace(
        "      FIELD: admin\n",
        '      lookup: {name: LOOKUP, match: {"c md": process.name, cmd: "a`b"}}\n',
    )
    got = errors(write(tmp_path, text=text))
    assert [(c, ln, cl) for c, ln, cl, _ in got] == [("E128", 17, 37), ("E128", 17, 64)]


def test_a_backtick_field_passes_neither_check_nor_compile(tmp_path: Path) -> None:
    """The reported crash: a backtick in a field name passed `check`, then `compile` raised."""
    from click.testing import CliRunner

    from compiler.cli import main

    path = write(tmp_path, FIELD='"labels.ro`le"')
    for args in (["check", str(path)], ["compile", str(path), "-t", "eql"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, res.output
        assert "error[E128]" in res.output and "Traceback" not in res.output
