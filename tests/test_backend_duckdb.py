"""The DuckDB backend: registration, SQL text, the value macros against the evaluator's rules,
and ``run_analytic`` over ECS files read by DuckDB itself."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from backends import ENGINE_TARGETS, TARGETS, get_backend
from backends.base import NODE_TYPES, CompileError
from backends.duckdb import DuckdbBackend, columns, macros
from compiler.build import ALL_TARGETS
from compiler.engines import ENGINES, run_duckdb
from compiler.evaluator import evaluate
from compiler.evaluator.keys import normalise
from compiler.evaluator.model import Event
from compiler.evaluator.predicates import parse_ip, text
from compiler.evaluator.values import to_number
from compiler.lower import load_text

T0 = 1704067200000

HEAD = """\
id: T-DUCK
title: t
description: t
attack: {techniques: [T1059]}
platforms: [windows]
severity: low
"""


def _analytic(body: str) -> Any:
    return load_text("t.yml", HEAD + body).analytic


def _compile(body: str) -> str:
    return DuckdbBackend().compile(_analytic(body)).query


MATCH = """\
streams:
  s:
    logsource: {category: process_creation}
    where:
      process.name: [cmd.exe, "443"]
      not: {user.name: SYSTEM}
detect:
  match: s
"""


def test_registered_as_an_engine_target_not_a_siem() -> None:
    assert "duckdb" not in TARGETS and "duckdb" in ENGINE_TARGETS
    assert len(ALL_TARGETS) == 5 and "duckdb" not in ALL_TARGETS
    assert isinstance(get_backend("duckdb"), DuckdbBackend)
    assert ENGINES["duckdb"] == "compiler.engines.run_duckdb"


def test_support_table_is_exhaustive() -> None:
    sup = DuckdbBackend.SUPPORT
    assert set(sup) == set(NODE_TYPES)
    assert all(len(s.how) > 10 for s in sup.values())


def test_filter_sql_reads_json_columns_with_the_value_macros() -> None:
    q = _compile(MATCH)
    assert "list_has_any(siemc_istrs(\"process.name\"), ['cmd.exe'])" in q
    assert 'list_has_any(siemc_nums("process.name"), [443.0])' in q
    # a plain string (no escapes) is read on the JSON text, other values by the general rule
    assert (
        'NOT (CASE WHEN siemc_plain("user.name") THEN lower(siemc_str("user.name")) IN '
        "('system') ELSE list_has_any(siemc_istrs(\"user.name\"), ['system']) END)"
    ) in q
    assert q.index("CREATE OR REPLACE TEMP MACRO siemc_elems") < q.index("siemc_istrs(v)")
    assert "siemc_ip" not in q  # only the macros the query calls


def test_artifact_names_the_columns_it_reads_and_is_deterministic() -> None:
    a = _analytic(MATCH)
    art = DuckdbBackend().compile(a)
    assert columns(a) == ("event.category", "event.type", "process.name", "user.name")
    assert '-- reads events(_ts, _seq, _id, "event.category"' in art.text
    assert art.text == DuckdbBackend().compile(a).text


def test_tumbling_windows_align_to_the_epoch_with_floor_division() -> None:
    q = _compile(
        """\
streams:
  f:
    logsource: {category: network_flow}
detect:
  aggregate:
    stream: f
    window: {kind: tumbling, size: 1h}
    by: [host.name]
    measures:
      out: {sum: source.bytes}
      p: {percentile: source.bytes, p: 99.9}
    having: out > 10
"""
    )
    assert "_ts - (_ts % 3600000 + 3600000) % 3600000 AS _window" in q
    assert 'SELECT *, unnest(siemc_keys("host.name")) AS "key:0"' in q
    assert 'siemc_nearest_rank(flatten(list(siemc_nums("source.bytes"))), 999, 1000)' in q


def test_sliding_windows_restart_after_each_alert_in_a_recursive_query() -> None:
    q = _compile(
        """\
streams:
  s:
    logsource: {category: process_creation}
detect:
  aggregate:
    stream: s
    window: {kind: sliding, size: 5m}
    by: [host.name]
    measures: {n: {count: true}}
    having: n >= 3
"""
    )
    assert q.split("\n")[-1] == "" and "WITH RECURSIVE" in q
    assert "RANGE BETWEEN 300000 PRECEDING AND CURRENT ROW) AS _lo" in q
    assert "AND f._a = greatest(c._s, f._lo) ORDER BY f._i LIMIT 1" in q


def test_absence_is_an_anti_join_decided_at_the_watermark_or_now() -> None:
    q = _compile(
        """\
streams:
  stop:
    logsource: {category: process_creation}
    where: {process.name: systemctl}
  start:
    logsource: {category: process_creation}
    where: {process.name: auditd}
detect:
  absence:
    by: [host.name]
    first: stop
    missing: start
    within: 5m
"""
    )
    assert "AND NOT EXISTS (" in q
    assert "WHERE m._ts > f._ts AND m._ts <= f._ts + 300000" in q  # strictly later
    assert "_seq >" not in q  # input order at one timestamp does not count
    assert "coalesce(getvariable('siemc_now') >= f._ts + 300000, false)" in q


def test_refusals_are_positioned() -> None:
    with pytest.raises(CompileError) as err:
        DuckdbBackend().compile(
            _analytic(
                """\
streams:
  s:
    logsource: {category: process_creation}
  n:
    logsource: {category: network_connection}
detect:
  sequence:
    by: [host.name]
    maxspan: 5m
    steps:
      - {as: start, stream: s}
      - {as: conn, stream: n}
"""
            )
        )
    d = err.value.diagnostics[0]
    assert d.code == "E201" and d.path == "t.yml" and d.line > 0
    with pytest.raises(CompileError) as err:
        DuckdbBackend().compile(
            _analytic(
                """\
streams:
  stop:
    logsource: {category: process_creation}
  start:
    logsource: {category: process_creation}
detect:
  absence:
    by: [host.name]
    first: stop
    missing: start
    within: 5m
baseline:
  - first_seen:
      stream: stop
      keys: [host.name]
      lookback: 1d
"""
            )
        )
    d = err.value.diagnostics[0]
    assert d.code == "E201" and "baseline of an absence" in d.message and d.line == 19


# ------------------------------------------------------------------ the macros, value by value
VALUES: list[Any] = [
    "443",
    443,
    443.0,
    " 1.5 ",
    "1e3",
    "0x10",
    "1_000",
    "nan",
    "inf",
    True,
    False,
    "true",
    "Admin",
    "ADMIN",
    1.5,
    -2,
    0.1,
    1e20,
    "",
    "\u00a0 7 \u2003",
    12345678901,
    [],
    [None],
]


def _con(*names: str) -> Any:
    con = run_duckdb.connect()
    for stmt in run_duckdb._statements(macros.prelude(" ".join(f"{n}(" for n in names))):
        if stmt.strip():
            con.execute(stmt)
    return con


def _eval(con: Any, sql: str, values: list[Any]) -> list[Any]:
    con.execute("CREATE OR REPLACE TABLE v(i INTEGER, x JSON)")
    con.executemany(
        "INSERT INTO v VALUES (?, ?)", [[i, json.dumps(x)] for i, x in enumerate(values)]
    )
    return [r[0] for r in con.execute(f"SELECT {sql} FROM v ORDER BY i").fetchall()]


def test_numbers_text_and_keys_follow_the_evaluator() -> None:
    con = _con("siemc_num", "siemc_text", "siemc_key")
    scalars = [v for v in VALUES if not isinstance(v, list)]
    nums = _eval(con, "siemc_num(x)", scalars)
    assert nums == [None if to_number(v) is None else float(to_number(v)) for v in scalars]  # type: ignore[arg-type]
    assert _eval(con, "siemc_text(x)", scalars) == [text(v) for v in scalars]
    keys = _eval(con, "siemc_key(x)", scalars)
    for i, a in enumerate(scalars):
        for j, b in enumerate(scalars):
            same = normalise(a) is not None and normalise(a) == normalise(b)
            assert (keys[i] is not None and keys[i] == keys[j]) is same, (a, b)


def test_missing_and_multi_values() -> None:
    con = _con("siemc_missing", "siemc_truthy")
    vals: list[Any] = [None, [], [None], [None, "a"], "", 0, "0", [0], False]
    assert _eval(con, "siemc_missing(x)", vals) == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
    ]
    assert _eval(con, "siemc_truthy(x)", vals) == [
        False,
        False,
        False,
        True,
        False,
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    "addr",
    [
        "10.0.0.1",
        " 10.0.0.1\t",
        "::ffff:10.0.0.1",
        "::FFFF:a00:1",
        "0:0:0:0:0:ffff:10.0.0.1",
        "01.2.3.4",
        "256.1.1.1",
        "fe80::1",
        "1::2:3:4:5:6:7:8",
        "1:2:3:4:5:6:7::",
        "::",
        "::1",
        "1.2.3.4:80",
        "2001:DB8::",
        "1:2:3:4:5:6:1.2.3.4",
        "::1.2.3.4",
        "1.2.3",
        ":::1",
        "x",
    ],
)
def test_addresses_parse_as_python_ipaddress(addr: str) -> None:
    con = _con("siemc_ip")
    con.execute("CREATE TABLE a(s VARCHAR)")
    con.execute("INSERT INTO a VALUES (?)", [addr])
    got = con.execute("SELECT siemc_ip(s) FROM a").fetchone()[0]
    want = parse_ip(addr)
    assert (None if got is None else (got["v"], int(got["n"]))) == (
        None if want is None else (want.version, int(ipaddress.ip_address(want)))
    )


# ------------------------------------------------------------------ run_analytic over files
AGG = """\
streams:
  f:
    logsource: {category: network_flow}
detect:
  aggregate:
    stream: f
    window: {kind: tumbling, size: 1m}
    by: [host.name]
    measures:
      out: {sum: source.bytes}
      n: {count: true}
    having: out >= 100
"""

DOCS: list[dict[str, Any]] = [
    {
        "@timestamp": "2024-01-01T00:00:59.999Z",
        "event": {"category": "network", "id": "a"},
        "host": {"name": "h1"},
        "source": {"bytes": 60},
    },
    {
        "@timestamp": "2024-01-01T00:00:30Z",
        "event.category": ["network", "file"],
        "host.name": "h1",
        "source.bytes": "40",
    },
    {
        "@timestamp": 1704067260,
        "event": {"category": "network"},
        "host": {"name": "h1"},
        "source": {"bytes": 500},
    },
    {
        "@timestamp": "2024-01-01T00:00:10+00:00",
        "event": {"category": "network"},
        "host": {"name": ["h2", "h1"]},
        "source.bytes": 1,
        "destination": {"bytes": 2},
    },
]


def _events(docs: list[dict[str, Any]]) -> list[Event]:
    from compiler.evaluator.engine import make_events, merge_events

    return merge_events([make_events(iter(docs), "events")])


@pytest.mark.parametrize("fmt", ["ecs-jsonl", "ecs-json", "parquet"])
def test_run_analytic_reads_files_as_the_evaluator_reads_events(tmp_path: Path, fmt: str) -> None:
    a = _analytic(AGG)
    path = tmp_path / "events"
    if fmt == "ecs-jsonl":
        path.write_text("".join(json.dumps(d) + "\n" for d in DOCS), "utf-8")
    elif fmt == "ecs-json":
        path.write_text(json.dumps(DOCS), "utf-8")
    else:
        con = run_duckdb.connect()
        # parquet holds one type per column: nested structs, timestamps as text
        rows = [
            {"@timestamp": "2024-01-01T00:00:59.999Z", "host": {"name": "h1"}, "bytes": 60},
            {"@timestamp": "2024-01-01T00:00:30Z", "host": {"name": "h1"}, "bytes": 40},
            {"@timestamp": "2024-01-01T00:01:00Z", "host": {"name": "h1"}, "bytes": 500},
        ]
        src = tmp_path / "rows.json"
        src.write_text(json.dumps(rows), "utf-8")
        con.execute(
            f"COPY (SELECT \"@timestamp\", {{'category': 'network'}} AS event, host, "
            f"{{'bytes': bytes}} AS source FROM read_json('{src}')) TO '{path}' (FORMAT parquet)"
        )
        con.close()
    got = run_duckdb.run_analytic(a, [(path, fmt)])
    first = 100.0 if fmt == "parquet" else 101.0  # the parquet file has no fourth document
    want = [(T0, "h1", first), (T0 + 60000, "h1", 500.0)]
    assert [(x.start, x.key[0][1], float(x.measures[0][1])) for x in got] == want  # type: ignore[arg-type]
    if fmt != "parquet":
        ev = evaluate(a, _events(DOCS))
        assert [(x.start, x.end, x.key, x.evidence[:1]) for x in ev] == [
            (x.start, x.end, x.key, x.evidence[:1]) for x in got
        ]


def test_run_analytic_refuses_what_does_not_compile_exactly(tmp_path: Path) -> None:
    a = _analytic(
        """\
streams:
  s:
    logsource: {category: process_creation}
  n:
    logsource: {category: network_connection}
detect:
  sequence:
    by: [host.name]
    maxspan: 5m
    steps:
      - {as: start, stream: s}
      - {as: conn, stream: n}
"""
    )
    with pytest.raises(CompileError):
        run_duckdb.run_analytic(a, [(tmp_path / "none.jsonl", "ecs-jsonl")])


def test_unreadable_timestamps_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"@timestamp": "yesterday", "event": {"category": "network"}}\n', "utf-8")
    with pytest.raises(ValueError, match=r"@timestamp .* not read here: e\.jsonl#1"):
        run_duckdb.run_analytic(_analytic(AGG), [(path, "ecs-jsonl")])


def test_control_characters_are_spelled_with_chr() -> None:
    from backends.duckdb.sql import strlit

    # a raw \r in the artifact would come back as \n when the file is read as text
    assert strlit("run\rnow") == "('run' || chr(13) || 'now')"
    assert strlit("\x01it's\u2028") == "(chr(1) || 'it''s' || chr(8232))"
    assert strlit("plain") == "'plain'"


# ------------------------------------------------------------------ the evaluator's functions
@pytest.mark.parametrize(
    "value",
    [
        "www.BBC.co.uk.",
        "co.uk",
        "x.github.io",
        "github.io",
        " 10.1.2.3 ",
        "[2001:DB8::1]",
        "localhost",
        "a..b.com",
        "",
        443,
        True,
        None,
        ["a.example.org", None, "co.uk", 7],
        [],
        "peer ::ffff:10.0.0.5 and 2001:db8::7, bad 999.1.1.1",
    ],
    ids=repr,
)
def test_registered_functions_are_the_evaluators(value: Any) -> None:
    """registered_domain() and extract_ips() in DuckDB give what values.call gives, for every
    kind of value a field holds (the JSON round trip included)."""
    from backends.duckdb.functions import CALLS
    from compiler.evaluator.values import call

    con = run_duckdb.connect()
    try:
        for func, sql in CALLS.items():
            arg = "NULL::JSON" if value is None else "?::JSON"
            params = [] if value is None else [json.dumps(value)]
            (got,) = con.execute(f"SELECT {sql}({arg}::VARCHAR)", params).fetchone()
            want = call(func, [value])
            assert (None if got is None else json.loads(got)) == want, (func, value)
    finally:
        con.close()
