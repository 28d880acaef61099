"""Execute compiled DuckDB SQL: over a fixture's events, or directly over ECS files.

DuckDB is embedded (a Python package, nothing to start), so this engine runs what the backend
compiled, unchanged: the differential tests compare it with the evaluator like every target's
engine, and ``siemc run`` can use it to backtest at columnar speed.

**The events relation** (the contract of ``backends/duckdb``): ``events(_ts, _seq, _id, <one
JSON column per field the analytic names>)``. Fixture events are already flattened and in
``(ts, seq)`` order; each becomes one row with its flat fields as a JSON document. Files are
read by DuckDB itself (:func:`run_analytic`): each document is one JSON value, nested ECS
objects and dotted keys both resolve to the dotted field, and the rows are sorted stably by
time, files in the order given, documents in file order, as the evaluator merges its inputs.

**Results.** One row per alert (backends/duckdb/detections.py): ``_start``, ``_end``, the key
fields, ``measure:<name>`` columns and ``_evidence``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backends.base import Artifact
from backends.duckdb import DuckdbBackend, columns, functions
from compiler import canonical, engines, ir
from compiler.canonical import CanonicalAlert
from compiler.evaluator.model import Alert, Event
from compiler.lower import Loaded
from compiler.testing import fixture_events

EngineUnavailable = engines.EngineUnavailable
NotExecutable = engines.NotExecutable

FORMATS = ("ecs-jsonl", "ecs-json", "parquet")


def _duckdb() -> Any:
    try:
        import duckdb
    except ModuleNotFoundError:  # pragma: no cover - duckdb is a runtime dependency
        raise EngineUnavailable(
            "the duckdb engine needs the Python package 'duckdb': pip install duckdb"
        ) from None
    return duckdb


def connect() -> Any:
    con = _duckdb().connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    functions.register(con)
    return con


def _path(field: str) -> str:
    """The JSON path of a flat (dotted) key."""
    return '$."' + field.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def load_events(con: Any, events: Sequence[Event], fields: Sequence[str]) -> None:
    """Create ``events`` from evaluator events (already flat and ordered)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as fh:
        for e in events:
            doc = {"_ts": e.ts, "_seq": e.seq, "_id": e.id, "doc": e.fields}
            fh.write(json.dumps(doc, ensure_ascii=False, default=str, allow_nan=False) + "\n")
        tmp = Path(fh.name)
    try:
        con.execute(
            "CREATE OR REPLACE TABLE siemc_raw AS SELECT * FROM read_json(?, "
            "format = 'newline_delimited', columns = {_ts: 'BIGINT', _seq: 'BIGINT', "
            "_id: 'VARCHAR', doc: 'JSON'})",
            [str(tmp)],
        )
    finally:
        tmp.unlink()
    cols = "".join(f", json_extract(doc, {_lit(_path(f))}) AS {_quote(f)}" for f in fields)
    con.execute(f"CREATE OR REPLACE VIEW events AS SELECT _ts, _seq, _id{cols} FROM siemc_raw")


def execute(
    con: Any, query: str, now_ms: int | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run a compiled script (macros, then the query); the column names and the rows.
    ``now_ms`` is the observation end absences are decided at (variable ``siemc_now``)."""
    con.execute(f"SET VARIABLE siemc_now = {'NULL' if now_ms is None else int(now_ms)}::BIGINT")
    *setup, last = [s for s in _statements(query) if s.strip()]
    for stmt in setup:
        con.execute(stmt)
    cur = con.execute(last)
    names = [d[0] for d in cur.description]
    return names, cur.fetchall()


def _statements(script: str) -> list[str]:
    """Split on the semicolons that end a line: the backend ends each statement that way and
    never puts one inside a literal at a line end (literals are single-line)."""
    out, cur = [], []
    for line in script.splitlines():
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur))
            cur = []
    out.append("\n".join(cur))
    return out


def _alerts(analytic: ir.Analytic, names: list[str], rows: list[tuple[Any, ...]]) -> list[Alert]:
    d = analytic.detection
    keys = d.keys if isinstance(d, ir.Aggregate) else ()
    if isinstance(d, ir.Absence):
        keys = d.first.keys
    measures = [n for n in names if n.startswith("measure:")]
    at = {n: i for i, n in enumerate(names)}
    out = []
    for row in rows:
        key = tuple((k, _json(row[at[k]])) for k in keys)
        ms = tuple((m.removeprefix("measure:"), _json(row[at[m]])) for m in measures)
        out.append(
            Alert(
                analytic.id,
                key,
                int(row[at["_start"]]),
                int(row[at["_end"]]),
                ms,
                tuple(row[at["_evidence"]]),
            )
        )
    return out


def _json(v: Any) -> Any:
    return None if v is None else json.loads(v)


def run(loaded: Loaded, fixture: ir.Fixture, artifact: Artifact) -> list[CanonicalAlert]:
    """The alerts of ``artifact`` over ``fixture``'s events, in canonical form."""
    events = fixture_events(loaded, fixture)
    con = connect()
    try:
        load_events(con, events, columns(loaded.analytic))
        names, rows = execute(con, artifact.query, fixture.now_ms)
    finally:
        con.close()
    return [canonical.from_evaluator(a) for a in _alerts(loaded.analytic, names, rows)]


# ---------------------------------------------------------------------------- files
def _splits(field: str) -> list[str]:
    """Every JSON path that flattens to ``field``: dotted keys first (the whole name as one key),
    then each nesting of its parts (``process.name``: ``$."process.name"``,
    ``$."process"."name"``)."""
    parts = field.split(".")
    paths: list[list[str]] = [[]]
    out: list[list[str]] = []

    def walk(i: int, acc: list[str]) -> None:
        if i == len(parts):
            out.append(acc)
            return
        for j in range(len(parts), i, -1):
            walk(j, [*acc, ".".join(parts[i:j])])

    walk(0, paths[0])
    return [
        "$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)
        for keys in out
    ]


# @timestamp as ms since the epoch, parsed only where DuckDB is sure to agree with
# compiler.timeutil.parse_timestamp (the evaluator's reader): non-negative integer epochs
# (seconds, or ms/us/ns from 1e11/1e14/1e17 on, floored; DuckDB's // truncates, equal to floor
# only for non-negative numbers) and ISO 8601 as ECS writes it (seconds present, an optional
# fraction, then Z or a +HH[[:]MM] offset, or no zone = UTC; the calendar is validated by the cast).
# Anything else is null, and a null time stops the run (siemc run then uses the evaluator, whose
# reader parses every layout it documents or names the record it cannot read).
_ISO = (
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ]([01]\d|2[0-3]):([0-5]\d):([0-5]\d)"
    r"(?:[.,](\d+))?(?:([Zz])|([+-])([01]\d|2[0-3])(?::?([0-5]\d))?)?$"
)
# The layout ECS shippers write (UTC, 'T', 'Z', a year from 0001) matched on the JSON text
# itself: a string of these characters has no escapes, so its text is the quoted value, and the
# time is sliced out with no JSON parse and no range check (9999-12-31T23:59:59.999Z is the max).
_JSON_ISO_Z = (
    r'^"(?:[1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])-\d{2}-\d{2}T'
    r'(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?Z"$'
)
_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999
_TIME_MACROS = (
    "CREATE OR REPLACE TEMP MACRO siemc_in_range(ms) AS list_transform([ms], lambda m: "
    f"CASE WHEN m BETWEEN {_MIN_MS} AND {_MAX_MS} THEN m::BIGINT END)[1]",
    "CREATE OR REPLACE TEMP MACRO siemc_epoch(x) AS siemc_in_range(CASE "
    "WHEN x < 0 THEN NULL WHEN x < 100000000000 THEN x * 1000 "
    "WHEN x < 100000000000000 THEN x WHEN x < 100000000000000000 THEN x // 1000 "
    "ELSE x // 1000000 END)",
    "CREATE OR REPLACE TEMP MACRO siemc_iso_parts(p) AS siemc_in_range("
    "epoch_ms(try_cast(p.y || '-' || p.mo || '-' || p.d || ' ' || p.h || ':' || p.mi || ':' "
    "|| p.sec AS TIMESTAMP)) + rpad(left(p.f, 3), 3, '0')::BIGINT - CASE p.sign "
    "WHEN '+' THEN 1 WHEN '-' THEN -1 ELSE 0 END "
    "* (coalesce(try_cast(p.oh AS BIGINT), 0) * 3600000 + coalesce(try_cast(p.om AS BIGINT), 0) "
    "* 60000))",
    # The groups are extracted once: a macro repeats its argument's text at every use.
    "CREATE OR REPLACE TEMP MACRO siemc_iso(s) AS CASE "
    f"WHEN regexp_full_match(s, {_lit(_ISO)}) THEN list_transform([regexp_extract(s, "
    f"{_lit(_ISO)}, ['y', 'mo', 'd', 'h', 'mi', 'sec', 'f', 'z', 'sign', 'oh', 'om'])], "
    "lambda p: siemc_iso_parts(p))[1] END",
    # CASE tests each WHEN only on the rows no earlier one took: the common layout first
    "CREATE OR REPLACE TEMP MACRO siemc_ts(t) AS CASE "
    f"WHEN regexp_full_match(t, {_lit(_JSON_ISO_Z)}) "
    "THEN epoch_ms(try_cast(substr(t, 2, 19) AS TIMESTAMP)) + CASE WHEN length(t) > 22 "
    "THEN rpad(left(substr(t, 22, length(t) - 23), 3), 3, '0')::BIGINT ELSE 0 END "
    "WHEN json_type(t) = 'VARCHAR' THEN siemc_iso(t ->> '$') "
    "WHEN json_type(t) IN ('UBIGINT', 'BIGINT') THEN siemc_epoch(t::HUGEINT) END",
)


def file_view(con: Any, files: Sequence[tuple[str | Path, str]], fields: Sequence[str]) -> None:
    """Create ``events`` over ECS files read by DuckDB (see :func:`run_analytic`)."""
    reads = []
    for n, (path, fmt) in enumerate(files):
        if fmt not in FORMATS:
            raise ValueError(f"{path}: unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
        p = _lit(str(path))
        if fmt == "parquet":
            src = f"SELECT to_json(t) AS doc FROM read_parquet({p}) t"
        else:
            kind = "newline_delimited" if fmt == "ecs-jsonl" else "array"
            src = f"SELECT json AS doc FROM read_json_objects({p}, format = '{kind}')"
        reads.append(
            f"SELECT {n} AS _file, {_lit(Path(path).name)} AS _src, "
            f"row_number() OVER () AS _line, doc FROM ({src})"
        )
    for macro in _TIME_MACROS:
        con.execute(macro)
    paths = ['$."@timestamp"', '$."event"."id"', '$."event.id"'] + [
        p for f in fields for p in _splits(f)
    ]
    pick, at = [], 4
    for f in fields:
        n = len(_splits(f))
        pick.append(
            f"coalesce({', '.join(f'NULLIF(v[{i}], {_lit("null")})' for i in range(at, at + n))})"
            f" AS {_quote(f)}"
        )
        at += n
    extract = f"json_extract(doc, [{', '.join(_lit(p) for p in paths)}])"
    # Materialised, so that every record's time is read (a record no stream selects but whose
    # time does not parse stops the run, as it stops the evaluator's reader). No sort: queries
    # order events by (_ts, _seq), and _seq is the input order (file, then document).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE events AS SELECT coalesce(_ts, error("
        "'a @timestamp missing or in a layout DuckDB does not read here: ' || _src || '#' "
        "|| _line)) AS _ts, "
        f"_file * {1 << 40} + _line AS _seq, "
        "coalesce(v[2] ->> '$', v[3] ->> '$', _src || '#' || _line) AS _id, "
        + ", ".join(pick)
        + f" FROM (SELECT _file, _src, _line, v, siemc_ts(v[1]) AS _ts FROM (SELECT *, {extract}"
        f" AS v FROM ({' UNION ALL '.join(reads)})))"
    )


def run_analytic(
    analytic: ir.Analytic, files: Sequence[tuple[str | Path, str]], now_ms: int | None = None
) -> list[Alert]:
    """Run ``analytic`` over ECS event files through DuckDB's own readers.

    ``files`` lists ``(path, format)``, format ``ecs-jsonl`` (JSON Lines), ``ecs-json`` (one
    JSON array) or ``parquet``; documents are ECS events, nested objects or dotted keys, with
    ``@timestamp`` (ISO 8601, no zone = UTC, or epoch seconds/ms/us/ns) and optionally
    ``event.id``. Events are ordered by time, ties in file order then document order.
    ``now_ms`` is the observation end (``siemc run --now``): absences whose window it does not
    cover are undecided and do not alert, as in the evaluator.

    Returns the evaluator's :class:`Alert` objects (key, window, measures, evidence ids: an
    event's ``event.id``, else ``<file name>#<n>``, the n-th document of the file), sorted as
    the evaluator sorts them.
    Raises :class:`backends.base.CompileError` when the analytic does not compile exactly to
    DuckDB (the caller then runs the evaluator) and ``ValueError`` for unreadable input.
    """
    art = DuckdbBackend().compile(analytic)
    con = connect()
    spill = tempfile.TemporaryDirectory(prefix="siemc-duckdb-")
    try:
        # an in-memory database spills to ./.tmp by default: never write into the user's folder
        con.execute(f"SET temp_directory = {_lit(spill.name)}")
        file_view(con, files, columns(analytic))
        names, rows = execute(con, art.query, now_ms)
    except _duckdb().Error as exc:
        raise ValueError(f"DuckDB could not read the events: {exc}") from None
    finally:
        con.close()
        spill.cleanup()
    alerts = _alerts(analytic, names, rows)
    return sorted(alerts, key=lambda a: (a.end, a.start, repr(a.key), a.evidence))
