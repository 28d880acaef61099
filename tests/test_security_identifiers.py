"""Query injection through names (issue 8, item 1): every name an analytic introduces or
references follows one identifier grammar (docs/language.md, "Names"), checked at `check` time
with a positioned E128; and every backend writes names through its target's quoting, so that a
name that passes the check can never change a query's structure."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backends import TARGETS, get_backend
from backends.base import Artifact, CompileError
from backends.splunk.macros import definitions
from compiler import ir
from compiler.diagnostics import DiagnosticError
from compiler.lower import load_file
from compiler.surface import SPL_CLAUSE_WORDS
from tests.oracles.elastic_eql_oracle import run as eql_run
from tests.oracles.elastic_eql_oracle import validate as eql_validate
from tests.oracles.esql_oracle import lookups_of as esql_lookups_of
from tests.oracles.esql_oracle import validate as esql_validate
from tests.oracles.kql_oracle import require_oracle as require_kql
from tests.oracles.kql_oracle import validate as kql_validate
from tests.oracles.sigma_oracle import validate as sigma_validate
from tests.oracles.spl_grammar import check as spl_check

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
    body = re.sub("|".join(values), lambda m: values[m.group()], text if text is not None else BASE)
    column = names.get("COLUMN", DEFAULTS["COLUMN"]).strip('"')
    csv_header = header if header is not None else f"{column},role"
    width = len(next(csv.reader(io.StringIO(csv_header))))
    row = ",".join(["a.exe", "admin", *[""] * (width - 2)][:width])
    (tmp / "lk.csv").write_text(f"{csv_header}\n{row}\n", newline="")
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


# --------------------------------------------------------------------------- every target
# Names from the grammar's whole alphabet, weighted towards the words some target reads as
# syntax: Kusto keywords (a measure named `queries` broke Kusto.Language), ES|QL and EQL keywords,
# SPL command words, and the names siemc gives its own columns.
KEYWORDS = sorted(
    {"queries", "where", "by", "on", "and", "or", "not", "as", "in", "like", "true", "false",
     "null", "count", "project", "summarize", "let", "extend", "title", "id", "time", "window",
     "sequence", "until", "with", "maxspan", "keep", "drop", "stats", "eval", "from", "sort",
     "limit", "lookup", "metadata", "rlike", "is", "first", "last", "output", "outputnew", "over",
     "xor", "search", "table", "fields", "rename", "join", "any", "of", "runs", "sample"}
)  # fmt: skip
_SEGMENT = st.one_of(
    st.sampled_from(KEYWORDS),
    st.sampled_from(KEYWORDS).map(str.upper),
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,8}\Z"),
)
_SEGMENT = _SEGMENT.filter(
    lambda s: not s.lower().startswith(("siemc_", "__")) and s.lower() not in SPL_CLAUSE_WORDS
)  # reserved
PLAIN = _SEGMENT
COLUMN = PLAIN.filter(lambda s: not s.startswith("_"))  # Elasticsearch metadata names
MEASURE = PLAIN.filter(lambda s: s != "window" and not s.startswith("_"))  # reserved
FIELD = st.builds(
    lambda at, head, rest: ("@" if at else "") + ".".join([head, *rest]),
    st.booleans(),
    _SEGMENT,
    st.lists(_SEGMENT, max_size=2),
)

AGGREGATE = """\
id: T0001
title: t
description: d
attack: {techniques: [T1059]}
platforms: [windows]
severity: low
lookups:
  "LOOKUP": {file: lk.csv}
streams:
  "STREAM":
    logsource: {category: process_creation, product: windows}
    enrich:
      - lookup: "LOOKUP"
        match: {"COLUMN": process.name}
        add: {role: "FIELD"}
    where:
      "FIELD": admin
detect:
  aggregate:
    stream: "STREAM"
    window: {kind: tumbling, size: 1h}
    by: [host.name, "FIELD"]
    measures:
      "MEASURE": {count: true}
    having: "`MEASURE` >= 1"
"""

COUNT = """\
id: T0003
title: t
description: d
attack: {techniques: [T1059]}
platforms: [windows]
severity: low
lookups:
  "LOOKUP": {file: lk.csv}
streams:
  "STREAM":
    logsource: {category: process_creation, product: windows}
    where:
      process.name: a.exe
      not: {lookup: {name: "LOOKUP", match: {"COLUMN": process.command_line}}}
detect:
  aggregate:
    stream: "STREAM"
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures:
      "MEASURE": {count: true}
    having: "`MEASURE` >= 1"
"""

SEQUENCE = """\
id: T0002
title: t
description: d
attack: {techniques: [T1059]}
platforms: [windows]
severity: low
lookups:
  "LOOKUP": {file: lk.csv}
streams:
  "STREAM":
    logsource: {category: process_creation, product: windows}
    derive:
      "FIELD": lower(process.name)
    where:
      "FIELD": a.exe
      not: {lookup: {name: "LOOKUP", match: {"COLUMN": process.command_line}}}
  other:
    logsource: {category: process_creation, product: windows}
detect:
  sequence:
    by: [host.name]
    maxspan: 5m
    steps:
      - {stream: "STREAM", as: "MEASURE"}
      - {stream: other, as: b}
"""


def _compile_all(analytic: ir.Analytic) -> dict[str, Artifact | CompileError]:
    out: dict[str, Artifact | CompileError] = {}
    for target in TARGETS:
        try:
            out[target] = get_backend(target).compile(analytic, allow_approximate=True)
        except CompileError as exc:
            out[target] = exc
    return out


def _oracle_problem(target: str, art: Artifact, analytic: ir.Analytic) -> str | None:
    if target == "splunk":
        return spl_check(art.text, definitions(art.query, art.profile, art.analytic))
    if target == "eql":
        return eql_validate(art.query)
    if target == "sigma":
        return "; ".join(sigma_validate(art.text)) or None
    if target == "esql":
        try:
            esql_validate(art.query, esql_lookups_of(analytic))
        except Exception as exc:  # the parser, feature check or analyzer refused it
            return f"{type(exc).__name__}: {exc}"
        return None
    columns = tuple(c for lk in analytic.lookups for c in lk.columns)
    errs = kql_validate([art.query], columns)[0]
    return "; ".join(str(e) for e in errs) or None


def _check_every_target(path: Path, must_compile: set[str]) -> None:
    analytic = load_file(path).analytic
    compiled = _compile_all(analytic)
    for target, res in compiled.items():
        if isinstance(res, CompileError):
            assert target not in must_compile, (target, res)
            continue
        problem = _oracle_problem(target, res, analytic)
        assert problem is None, (target, problem, res.query)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=PLAIN, lookup=PLAIN, column=COLUMN, measure=MEASURE, field=FIELD)
def test_names_from_the_whole_grammar_compile_to_queries_every_parser_accepts(
    tmp_path: Path, stream: str, lookup: str, column: str, measure: str, field: str
) -> None:
    require_kql()
    # `role` is the CSV's second column; an enrichment column named like an event field the
    # analytic reads is a refusal of ES|QL (LOOKUP JOIN would overwrite the field), not a bug.
    assume(stream != "other" and column not in ("role", field))
    assume(field not in ("any", "all", "not", "lookup"))  # filter combinators, not field names
    assume(measure != field)  # E128: a measure named like a `by` key (tested below)
    names = {"STREAM": stream, "LOOKUP": lookup, "COLUMN": column, "MEASURE": measure,
             "FIELD": field}  # fmt: skip
    aggregate = write(tmp_path, text=AGGREGATE, **names)
    _check_every_target(aggregate, {"splunk", "esql", "kql"})
    _check_every_target(write(tmp_path, text=COUNT, **names), {"splunk", "esql", "kql", "sigma"})
    assume(measure.lower() != "b")
    _check_every_target(write(tmp_path, text=SEQUENCE, **names), {"eql"})


# --------------------------------------------------------------------------- reserved names
@pytest.mark.parametrize(
    ("placeholder", "value", "where"),
    [
        ("COLUMN", "OUTPUT", (14, 17)),  # `lookup allow OUTPUT AS ... OUTPUT ...`
        ("COLUMN", "as", (14, 17)),
        ("COLUMN", "_hidden", (14, 17)),  # LOOKUP JOIN does not add `_` columns
        ("COLUMN", "siemc_row", (14, 17)),  # ES|QL's own column of the lookup index
        ("MEASURE", "window", (24, 7)),  # ES|QL's window column
        ("MEASURE", "_time", (24, 7)),  # SPL's window column
        ("MEASURE", "by", (24, 7)),  # `stats count AS by BY ...`
        ("STREAM", "__alerts", (10, 3)),  # KQL's own let
        ("FIELD", "siemc_tmp_0", (15, 21)),
        ("FIELD", "__lk0", (15, 21)),
    ],
)
def test_names_siemc_or_a_target_reserves_are_e128(
    tmp_path: Path, placeholder: str, value: str, where: tuple[int, int]
) -> None:
    text = BASE.replace("    having: MEASURE >= 1\n", "")
    got = errors(write(tmp_path, text=text, **{placeholder: value}))
    assert ("E128", *where) in [(c, ln, col) for c, ln, col, _ in got], got


@pytest.mark.parametrize("column", ["OUTPUT", "outputnew", "_hidden", "siemc_row", "__lk0"])
def test_reserved_csv_columns_are_e128_at_the_file(tmp_path: Path, column: str) -> None:
    got = errors(write(tmp_path, header=f"cmd,role,{column}"))
    assert [(c, ln, col) for c, ln, col, _ in got] == [("E128", 8, 17)]


def test_a_measure_named_like_a_by_key_is_e128(tmp_path: Path) -> None:
    text = BASE.replace("by: [host.name]", "by: [host.name, hits]")
    got = errors(write(tmp_path, text=text))
    assert [(c, ln, col) for c, ln, col, _ in got] == [("E128", 20, 5)], got
    assert "'hits' has the name of a 'by' key" in got[0][3]


def test_lookups_differing_only_in_case_are_e128(tmp_path: Path) -> None:
    text = BASE.replace(
        "  LOOKUP: {file: lk.csv}\n", "  LOOKUP: {file: lk.csv}\n  Allow: {file: lk.csv}\n"
    )
    got = errors(write(tmp_path, text=text))
    assert [(c, ln, col) for c, ln, col, _ in got] == [("E128", 8, 3)], got


# --------------------------------------------------------------------------- quoting
def _compiled(tmp_path: Path, target: str, text: str = AGGREGATE, **names: str) -> Artifact:
    analytic = load_file(write(tmp_path, text=text, **names)).analytic
    art = get_backend(target).compile(analytic, allow_approximate=True)
    assert _oracle_problem(target, art, analytic) is None, art.query
    return art


def test_kql_brackets_a_measure_named_like_a_kusto_keyword(tmp_path: Path) -> None:
    require_kql()
    q = _compiled(tmp_path, "kql", MEASURE="queries", STREAM="where", COLUMN="project").query
    assert "summarize ['queries'] = count()" in q
    assert "let ['where'] = " in q and "tostring(['project'])" in q
    assert "['TRUE']" in _compiled(tmp_path, "kql", MEASURE="TRUE").query


def test_esql_backquotes_keyword_segments(tmp_path: Path) -> None:
    q = _compiled(tmp_path, "esql", MEASURE="on", FIELD="labels.on", COLUMN="where").query
    assert "STATS `on` = COUNT(*)" in q
    assert "`labels.on` = role" in q and "ON siemc_lc_where" in q and "DROP `where`" in q


def test_eql_backquotes_keyword_segments(tmp_path: Path) -> None:
    text = SEQUENCE.replace('    derive:\n      "FIELD": lower(process.name)\n', "")
    text = text.replace("by: [host.name]", 'by: ["FIELD"]')
    q = _compiled(tmp_path, "eql", text=text, FIELD="labels.sequence").query
    assert "sequence by labels.`sequence`" in q and "labels.`sequence` : " in q


def test_spl_quotes_eval_keywords_and_keeps_them_out_of_search(tmp_path: Path) -> None:
    q = _compiled(tmp_path, "splunk", MEASURE="AND", FIELD="NOT").query
    assert "'AND'>=1" in q
    assert "search NOT=" not in q and "'NOT'" in q


def test_eql_engine_finds_the_event_through_a_keyword_field(tmp_path: Path) -> None:
    """The quoted name still names the field: eql's engine pairs the two events by it."""
    text = SEQUENCE.replace('    derive:\n      "FIELD": lower(process.name)\n', "")
    text = text.replace("by: [host.name]", 'by: ["FIELD"]')
    q = _compiled(tmp_path, "eql", text=text, FIELD="labels.sequence").query
    base = {"event.category": "process", "event.type": "start", "host.os.type": "windows",
            "process.command_line": "x", "labels.sequence": "a.exe"}  # fmt: skip
    events = [
        (1000, {**base, "event.id": "e1", "process.name": "a.exe"}),
        (2000, {**base, "event.id": "e2", "process.name": "b.exe"}),
        (3000, {**base, "event.id": "e3", "labels.sequence": "other"}),
    ]
    assert eql_run(q, events) == [["e1", "e2"]]
