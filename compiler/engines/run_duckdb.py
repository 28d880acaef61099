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
from backends.duckdb import DuckdbBackend, columns
from backends.duckdb import functions as _functions
from compiler import canonical, engines, ir
from compiler.canonical import CanonicalAlert
from compiler.engines.duckdb_files import _TIME_MACROS as _TIME_MACROS
from compiler.engines.duckdb_files import FORMATS as FORMATS
from compiler.engines.duckdb_files import file_view as file_view
from compiler.engines.duckdb_files import order_free
from compiler.evaluator.model import Alert, Event
from compiler.lower import Loaded
from compiler.testing import fixture_events

EngineUnavailable = engines.EngineUnavailable
NotExecutable = engines.NotExecutable


def _duckdb() -> Any:
    try:
        import duckdb
    except ModuleNotFoundError:  # pragma: no cover - duckdb is a runtime dependency
        raise EngineUnavailable(
            "the duckdb engine needs the Python package 'duckdb': pip install duckdb"
        ) from None
    return duckdb


def connect(functions: bool = True) -> Any:
    """A DuckDB connection in UTC; ``functions``: with the evaluator's functions registered
    (backends/duckdb/functions.py; registering them imports numpy, a third of a second)."""
    con = _duckdb().connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if functions:
        _functions.register(con)
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

    An analytic whose alerts do not depend on the input order of events of equal time
    (``duckdb_files.order_free``) first runs over a parallel scan with no document numbers;
    that result stands unless an alert names an event without ``event.id`` or holds two events
    of one time (whose order only the numbers give), or the scan failed: then the numbered,
    single-threaded read runs, as it does for every other analytic.
    """
    if order_free(analytic):
        art = DuckdbBackend().configure({"ties": "count"}).compile(analytic)
        alerts = _attempt(analytic, art, files, now_ms)
        if alerts is not None:
            return _sorted(alerts)
    art = DuckdbBackend().compile(analytic)
    return _sorted(_numbered(analytic, art, files, now_ms))


def _sorted(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (a.end, a.start, repr(a.key), a.evidence))


def _session(query: str) -> tuple[Any, tempfile.TemporaryDirectory[str]]:
    con = connect(functions=any(name in query for name in _functions.NAMES))
    spill = tempfile.TemporaryDirectory(prefix="siemc-duckdb-")
    # an in-memory database spills to ./.tmp by default: never write into the user's folder
    con.execute(f"SET temp_directory = {_lit(spill.name)}")
    return con, spill


def _attempt(
    analytic: ir.Analytic,
    art: Artifact,
    files: Sequence[tuple[str | Path, str]],
    now_ms: int | None,
) -> list[Alert] | None:
    """The alerts over unnumbered events, or None when they cannot stand (see run_analytic)."""
    con, spill = _session(art.query)
    try:
        file_view(con, files, columns(analytic), numbered=False)
        names, rows = execute(con, art.query, now_ms)
    except _duckdb().Error:
        return None  # a document the typed read refuses, or a time it does not read
    finally:
        con.close()
        spill.cleanup()
    if "_ties" in names and any(row[names.index("_ties")] for row in rows):
        return None
    alerts = _alerts(analytic, names, rows)
    if any(i is None for a in alerts for i in a.evidence):
        return None
    return alerts


def _numbered(
    analytic: ir.Analytic,
    art: Artifact,
    files: Sequence[tuple[str | Path, str]],
    now_ms: int | None,
) -> list[Alert]:
    con, spill = _session(art.query)
    try:
        try:
            file_view(con, files, columns(analytic))
        except _duckdb().Error:
            # a document the typed read refuses (an object where a string is, a key twice)
            file_view(con, files, columns(analytic), typed=False)
        names, rows = execute(con, art.query, now_ms)
    except _duckdb().Error as exc:
        raise ValueError(f"DuckDB could not read the events: {exc}") from None
    finally:
        con.close()
        spill.cleanup()
    return _alerts(analytic, names, rows)
