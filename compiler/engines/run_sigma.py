"""Execute a compiled Sigma collection with pySigma's SQLite backend over a fixture's events.

pySigma-backend-sqlite 2.1.1 turns a rule, or a correlation with the rules it references, into
one SQLite query. This adapter builds the tables that query reads and turns its rows into
:class:`~compiler.canonical.CanonicalAlert`, so the differential tests can compare them with the
reference evaluator's alerts. The backend is configured deliberately:

* **One table per Sigma logsource.** A Sigma rule selects its events by ``logsource``, which SQL
  has no notion of; a pySigma pipeline routes each rule to the table of its logsource
  (``SetStateTransformation('table', ...)``, the backend's documented per-rule table), and an
  event enters the table of a logsource when it satisfies that logsource's ECS condition
  (``compiler.evaluator.streams.logsource_predicate``, the evaluator's own definition).
* **Rows carry Sigma field names.** Each ECS event is written under the field names the
  ``sigma`` profile gives its logsource. A field the profile derives from another (``process.name``
  is the basename of ``Image``) is filled the other way round: ``Image`` takes
  ``process.executable``; only when an event has no executable does ``Image`` hold the bare name.
  Enumerations map back (``network.direction: egress`` -> ``Initiated: 'true'``); prefixes and
  the importer's namespaces too (``zeek.conn.conn_state`` -> ``conn_state``,
  ``winlog.event_data.Hashes`` -> ``Hashes``, ``aws.cloudtrail.userIdentity.type`` ->
  ``userIdentity.type``), as the backend names them (``backends.sigma.fields.sigma_name``).
  Booleans are written ``'true'``/``'false'`` (the backend accepts either spelling), a
  multi-value as its JSON text (SQLite has no lists).
* **Timestamps are integer milliseconds** (``timestamp_format='unix_ms'``): exact, no string
  parsing; the backend divides by 1000.0, which is exact at every boundary a fixture can hit.
* **observation_end** is the fixture's ``now``, else the last event (the evaluator's watermark).
* ``collate_nocase=True``: Sigma matches strings case-insensitively, SQLite's ``=`` does not.

What the backend itself decides (and the test tables declare): windows slide (``BETWEEN ts -
span AND ts``, inclusive), every qualifying window is reported (no consumption), group-by values
are lower-cased, ``value_count`` counts ``DISTINCT ... COLLATE NOCASE``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from backends.profiles import load_profile
from backends.sigma.fields import (
    SourceMap,
    placeholder_name,
    sigma_name,
    sigma_source,
    sigma_string,
)
from backends.sigma.streams import relaxed
from compiler import canonical, engines, ir
from compiler.canonical import CanonicalAlert
from compiler.evaluator import Event
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import logsource_predicate
from compiler.evaluator.values import to_number
from compiler.lower import Loaded
from compiler.testing import fixture_events

EXTRA = "test"  # the pip extra of siemc that installs pysigma-backend-sqlite
REQUIREMENT = "pysigma-backend-sqlite==2.1.1"
TS_COLUMN = "siemc_ts"  # integer ms since the epoch
ID_COLUMN = "siemc_row"  # position of the event in the fixture (maps evidence back)


class EngineUnavailable(engines.EngineUnavailable):
    """The engine's Python package is not installed."""

    def __init__(self, extra: str) -> None:
        super().__init__(
            f"the Sigma engine needs {REQUIREMENT} (pySigma's SQLite backend): "
            f"pip install 'siemc[{extra}]'"
        )
        self.extra = extra


def _sqlite_backend() -> Any:
    try:
        from sigma.backends.sqlite import sqliteBackend  # type: ignore[attr-defined]
    except ImportError:
        raise EngineUnavailable(EXTRA) from None
    return sqliteBackend


# ---------------------------------------------------------------------- logsources and rows
LogsourceKey = tuple[str | None, str | None, str | None]


def table_name(ls: LogsourceKey) -> str:
    parts = [p for p in ls if p] or ["any"]
    return "ls_" + re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower())


def _scalar(value: Any) -> Any:
    """An event value as SQLite stores it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        items = [v for v in value if v is not None]
        if not items:
            return None
        if len(items) == 1:
            return _scalar(items[0])
        return json.dumps(items)
    return value


def sigma_row(fields: Mapping[str, Any], src: SourceMap) -> dict[str, Any]:
    """One ECS event under the Sigma field names of one logsource."""
    row: dict[str, Any] = {}
    derived: list[tuple[str, dict[str, Any]]] = []
    for ecs, spec in src.fields.items():
        if isinstance(spec, str):
            value = _scalar(fields.get(ecs))
            if value is not None and spec not in row:
                row[spec] = value
        else:
            derived.append((ecs, spec))
    # then the fields kept under a prefix or the importer's namespace, as logged
    # (winlog.event_data.User holds Sysmon's DOMAIN\name), as the backend names them
    for ecs, raw in fields.items():
        if ecs not in src.fields and (name := sigma_name(src, ecs)) is not None:
            value = _scalar(raw)
            if value is not None and name not in row:
                row[name] = value
    # derived fields last: the plain mapping (process.executable -> Image) holds the real data
    for ecs, spec in derived:
        name = str(spec["field"])
        value = _scalar(fields.get(ecs))
        if value is None or name in row:
            continue
        values = spec.get("values")
        if values:
            table = {str(k).lower(): v for k, v in values.items()}
            value = table.get(str(value).lower(), value)
        row[name] = value
    for name in src.numeric:
        # the source's schema logs these as numbers (sigma profile `numeric`): a fixture that
        # spells one as a numeric string is logged as its number, as the source would write it
        if isinstance(row.get(name), str) and (n := to_number(row[name])) is not None:
            row[name] = int(n) if float(n).is_integer() else n
    return row


def _ecs_condition(profile: Any, src: SourceMap, ls: ir.LogSource) -> ir.Predicate:
    """The ECS events a Sigma logsource holds: the evaluator's logsource condition, or, for a
    Sigma category siemc's language has no name for (process_termination), the profile's `ecs`
    tests with the product's condition."""
    entry = profile.source(src.key) or {}
    if "ecs" not in entry:
        return logsource_predicate(ls)
    product = logsource_predicate(ir.LogSource(None, ls.product, ls.service))
    tests = tuple(ir.Eq(str(k), (v,)) for k, v in entry["ecs"].items())
    return ir.And((product, *tests))


@dataclass
class Tables:
    """The SQLite tables of one run: rows per logsource table."""

    rows: dict[str, list[dict[str, Any]]]
    logsources: dict[str, LogsourceKey]


def build_tables(
    logsources: Iterable[LogsourceKey],
    events: Sequence[Event],
    lookups: Mapping[str, ir.Lookup],
) -> Tables:
    profile = load_profile("sigma")
    out = Tables({}, {})
    for ls in logsources:
        name = table_name(ls)
        ir_ls = ir.LogSource(*ls)
        src = sigma_source(profile, ir_ls)
        member = compile_predicate(_ecs_condition(profile, src, ir_ls), lookups)
        rows = []
        for i, e in enumerate(events):
            if member(e.fields):
                row = sigma_row(e.fields, src)
                row[TS_COLUMN] = e.ts
                row[ID_COLUMN] = i
                rows.append(row)
        out.rows[name] = rows
        out.logsources[name] = ls
    return out


# ---------------------------------------------------------------------- conversion
@dataclass
class Converted:
    query: str
    correlation: Any | None  # the root SigmaCorrelationRule, None for a single rule
    columns: set[str]  # every field the query reads
    logsources: list[LogsourceKey]  # of the rules, least specific first


def _placeholders(analytic: ir.Analytic) -> dict[str, list[str]]:
    """Every `%lookup_column%` the backend may emit, bound to the column's values written as
    Sigma literals (the artifact's NOTE says how)."""
    out: dict[str, list[str]] = {}
    for lk in analytic.lookups:
        for i, column in enumerate(lk.columns):
            out[placeholder_name(lk.name, column)] = [sigma_string(r[i]) for r in lk.rows]
    return out


def convert(text: str, analytic: ir.Analytic, observation_end: float | None) -> Converted:
    backend_cls = _sqlite_backend()
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import (
        SetStateTransformation,
        ValueListPlaceholderTransformation,
    )
    from sigma.rule import SigmaRule

    collection = SigmaCollection.from_yaml(text)
    collection.resolve_rule_references()
    rules = [r for r in collection.rules if isinstance(r, SigmaRule)]
    logsources = sorted(
        {(r.logsource.category, r.logsource.product, r.logsource.service) for r in rules},
        key=lambda ls: (sum(p is not None for p in ls), [p or "" for p in ls]),
    )
    # least specific first: the item of a rule's own logsource is applied last and wins
    items = [
        ProcessingItem(
            SetStateTransformation("table", table_name(ls)),
            rule_conditions=[LogsourceCondition(*ls)],
        )
        for ls in logsources
    ]
    placeholders = _placeholders(analytic)
    if placeholders:
        items.append(ProcessingItem(ValueListPlaceholderTransformation()))
    pipeline = ProcessingPipeline(items, vars=placeholders)
    backend = backend_cls(
        pipeline,
        collate_nocase=True,
        timestamp_format="unix_ms",
        timestamp_field=TS_COLUMN,
        event_id_field=ID_COLUMN,
        observation_end=observation_end,
    )
    queries: list[str] = backend.convert(collection)
    if len(queries) != 1:
        raise ValueError(f"expected one SQLite query from the collection, got {len(queries)}")
    columns: set[str] = set()
    correlation = None
    for r in collection.rules:
        if isinstance(r, SigmaRule):
            columns.update(backend.required_fields(r))
        elif isinstance(r, SigmaCorrelationRule):
            if not r._backreferences:
                correlation = r
            columns.update(r.group_by or [])
            field = getattr(r.condition, "fieldref", None)
            if isinstance(field, str):
                columns.add(field)
            for alias in r.aliases:
                columns.update(alias.mapping.values())
    return Converted(queries[0], correlation, columns, logsources)


# ---------------------------------------------------------------------- execution
def _regexp(pattern: str, value: Any) -> bool:
    # the backend's REGEXP needs a function; Python's re is what siemc means by `re`
    return value is not None and re.search(pattern, str(value)) is not None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def execute(query: str, tables: Tables, columns: set[str]) -> list[dict[str, Any]]:
    con = sqlite3.connect(":memory:")
    try:
        con.create_function("REGEXP", 2, _regexp, deterministic=True)
        for name, rows in tables.rows.items():
            cols = sorted({k for r in rows for k in r} | columns | {TS_COLUMN, ID_COLUMN})
            # no declared type: values keep the type they have in the event (no affinity)
            con.execute(f"CREATE TABLE {_ident(name)} ({', '.join(map(_ident, cols))})")
            con.executemany(
                f"INSERT INTO {_ident(name)} VALUES ({', '.join('?' for _ in cols)})",
                [[r.get(c) for c in cols] for r in rows],
            )
        cur = con.execute(query)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


# ---------------------------------------------------------------------- rows -> alerts
def _key_fields(det: ir.Detection) -> list[list[str]]:
    """Per key position, the ECS field of each step (the first step names the key)."""
    if isinstance(det, ir.Aggregate):
        return [[k] for k in det.keys]
    if isinstance(det, ir.Absence):
        steps: tuple[ir.Step, ...] = (det.first, det.missing)
    elif isinstance(det, ir.Sequence):
        steps = det.steps
    else:
        steps = getattr(det, "members", ())
    if not steps:
        return []
    return [[s.keys[i] for s in steps] for i in range(len(steps[0].keys))]


def _same(engine_value: Any, value: Any) -> bool:
    if isinstance(value, str) and isinstance(engine_value, str):
        return value.lower() == engine_value
    return bool(value == engine_value)


def _restore(engine_value: Any, evidence: Sequence[Event], fields: Sequence[str]) -> Any:
    """The engine lower-cases group-by values; when every evidence event holds the same value
    (under one of the key's per-step field names), that value in its own case is the group's
    key, else (events that differ only by case) the engine's value is reported."""
    originals = set()
    for e in evidence:
        for f in fields:
            v = e.fields.get(f)
            if v is not None and not isinstance(v, list) and _same(engine_value, v):
                originals.add(json.dumps(v))
                break
    if len(originals) != 1:
        return engine_value
    return json.loads(originals.pop())


def _ms(seconds: Any) -> int | None:
    return None if seconds is None else round(float(seconds) * 1000)


def to_alerts(
    analytic: ir.Analytic,
    converted: Converted,
    rows: list[dict[str, Any]],
    events: Sequence[Event],
) -> list[CanonicalAlert]:
    det = analytic.detection
    aid = analytic.id
    if converted.correlation is None:
        return [canonical.make(aid, (), r[TS_COLUMN], r[TS_COLUMN]) for r in rows]
    group_by = list(converted.correlation.group_by or [])
    # the correlation groups by the keys of the analytic as the backend relaxed it: without
    # the keys Sigma cannot compute (a coarser group), with the process identity where it
    # stands for a process end (a narrower group, not part of the alert's key)
    positions = _key_fields(relaxed(analytic, load_profile("sigma"))[0].detection)
    alert_keys = {fields[0] for fields in _key_fields(det)}
    out = []
    for r in rows:
        ids = [int(x.split(":", 1)[1]) for x in json.loads(r["event_ids"])]
        evidence = [events[i] for i in ids]
        keys_json = json.loads(r["group_keys"])
        key = []
        for name, fields in zip(group_by, positions, strict=False):
            if fields[0] in alert_keys:
                key.append((fields[0], _restore(keys_json.get(name), evidence, fields)))
        times = sorted(e.ts for e in evidence)
        measures: list[tuple[str, Any]] = []
        start: int | None
        end: int | None
        kind = str(converted.correlation.type.name).lower()
        if isinstance(det, ir.Aggregate):
            if det.window.kind == "tumbling":
                # the rule's window slides: neither bucket bounds nor the bucket's metric exist
                # in its output (the metric is its own window's)
                start = end = None
            else:
                measures = [(det.measures[0].name, r["metric_value"])]
                start, end = (times[0] if times else None), _ms(r["window_end"])
        elif isinstance(det, ir.Absence):
            # extended `first and not missing`: the window opens at the first event
            start = end = _ms(r["window_start"])
        elif kind == "temporal_ordered":
            start, end = (times[0], times[-1]) if times else (None, None)
        else:
            # temporal: the evidence is every member event in the window, not the events the
            # evaluator picks; the window end is the event that completed the correlation
            start, end = None, _ms(r["window_end"])
        out.append(canonical.make(aid, key, start, end, measures))
    return out


def run_events(
    analytic: ir.Analytic, text: str, events: Sequence[Event], now_ms: int | None = None
) -> list[CanonicalAlert]:
    """Alerts of the Sigma collection ``text`` over ``events`` (in (ts, seq) order)."""
    horizon = now_ms if now_ms is not None else (events[-1].ts if events else None)
    converted = convert(text, analytic, None if horizon is None else horizon / 1000)
    lookups = {lk.name: lk for lk in analytic.lookups}
    tables = build_tables(converted.logsources, events, lookups)
    rows = execute(converted.query, tables, converted.columns)
    return to_alerts(analytic, converted, rows, events)


def run(loaded: Loaded, fixture: ir.Fixture, artifact: Any) -> list[CanonicalAlert]:
    """The canonical alerts of the compiled Sigma ``artifact`` over ``fixture``'s events."""
    events = fixture_events(loaded, fixture)
    return run_events(loaded.analytic, artifact.query, events, fixture.now_ms)
