"""Execute compiled ES|QL over a fixture with the ES|QL interpreter of the siemc tests.

No Elasticsearch runs offline, so ``run(loaded, fixture, artifact)`` executes the query with
``tests/interpreters/esql_interp.py``: it walks the syntax tree of Elastic's own parser
(``detection-rules-esql-py``) and follows the ES|QL reference per command and function. It ships
with the source tests, not with the compiler.

**Indices.** The ECS profile is the identity, so each fixture event is one document of the data
stream ``logs-<event.dataset>-default`` (``logs-generic-default`` without a dataset), as Elastic
integrations name them, with the fields typed as the index mapping would store them
(``tests/oracles/esql_ecs_schema.yml``, then the ``types`` of ``backends/profiles/ecs.yml``,
else keyword, as ECS maps most fields):

* keyword: numbers and booleans are indexed as their JSON text; values longer than 1024
  characters are not indexed (ECS ``ignore_above: 1024``) and read as null;
* long/double: numeric strings are coerced (a long truncates ``1.5`` to 1); ip: the address
  text (IPv4-mapped IPv6 stored as IPv4); a value the type cannot hold is left out, as
  ``logs-*-*`` data streams set ``index.mapping.ignore_malformed: true``;
* multi-values are read from doc values: keyword, ip and boolean values sorted and
  de-duplicated, numbers sorted.

**Lookups** follow the backend's contract (``backends/elastic_esql/``): index
``siemc-lookup-<name>``, one document per CSV row with each column (empty cells left out),
``siemc_lc_<column>`` (the cell lower-cased) and ``siemc_row`` (1-based row).

**Results.** ``NOW()`` is the fixture's ``now`` (else its last event). An aggregate row is an
alert keyed by the BY columns with the window ``[window, window + size)``, or without times
when the row has a ``window_end`` (a hopping bucket standing for a sliding window, which it
contains); a sequence row an
alert keyed by the first step's key columns from ``start`` to ``end``; a match row is an alert
with no key at its ``@timestamp``.

**Stack.** The query is checked against the stack its header names (``requires Elasticsearch >=
X``): Elastic's parser rejects commands and functions that stack lacks (``verify_features``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from backends.base import Artifact
from backends.elastic_esql import lookup_index, lookup_key
from backends.elastic_esql.expr import profile_types
from backends.profiles import load_profile
from backends.registered_domain import ingested
from compiler import canonical, engines, ir
from compiler.canonical import CanonicalAlert
from compiler.evaluator.model import Event
from compiler.lower import Loaded
from compiler.testing import fixture_events

EXTRA = "test"
REQUIREMENT = "detection-rules-esql-py==0.1.0"
INTERPRETER = "tests.interpreters.esql_interp"
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "oracles" / "esql_ecs_schema.yml"
IGNORE_ABOVE = 1024  # ECS keyword fields


class EngineUnavailable(engines.EngineUnavailable):
    """The ES|QL interpreter (siemc source tests) or Elastic's ES|QL parser is missing."""

    def __init__(self, extra: str = EXTRA, detail: str = "") -> None:
        self.extra = extra
        super().__init__(
            "no Elasticsearch runs offline: the ES|QL interpreter ships with the siemc source "
            f"tests ({INTERPRETER.replace('.', '/')}.py) and needs Elastic's ES|QL parser; run "
            f"from a source checkout with pip install 'siemc[{extra}]' (or '{REQUIREMENT}')"
            + (f" [{detail}]" if detail else "")
        )


def interpreter() -> ModuleType:
    try:
        return engines.import_interpreter(INTERPRETER)
    except ImportError as exc:
        raise EngineUnavailable(EXTRA, str(exc)) from None


def _values() -> ModuleType:
    return engines.import_interpreter("tests.interpreters.esql_interp_values")


@functools.cache
def field_types() -> dict[str, str]:
    types = dict(profile_types("ecs"))
    if SCHEMA.is_file():
        doc = yaml.safe_load(SCHEMA.read_text("utf-8")) or {}
        types.update({str(k): str(v) for k, v in doc.items()})
    return types


# ------------------------------------------------------------------------------ documents
def _json_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _coerce(kind: str, v: Any, vals: ModuleType) -> Any:
    """One value as the mapping stores it, or None when the field would not be indexed."""
    if kind in ("keyword", "wildcard", "text", "constant_keyword"):
        if isinstance(v, dict | list):
            return None
        text = _json_text(v)
        return None if kind == "keyword" and len(text) > IGNORE_ABOVE else text
    if kind in ("long", "integer", "short", "byte"):
        if isinstance(v, bool):
            return None
        if isinstance(v, int | float):
            return vals.to_long(float(v)) if isinstance(v, float) else v
        return vals.to_long(v) if isinstance(v, str) and vals.parse_double(v) is not None else None
    if kind in ("double", "float", "scaled_float"):
        if isinstance(v, bool):
            return None
        return vals.to_double(v) if isinstance(v, int | float | str) else None
    if kind == "ip":
        return vals.parse_ip(v) if isinstance(v, str) else None
    if kind == "boolean":
        if isinstance(v, bool):
            return v
        return {"true": True, "false": False}.get(v) if isinstance(v, str) else None
    if kind == "date":
        from compiler.timeutil import parse_timestamp

        try:
            return vals.Date(parse_timestamp(v))
        except ValueError:
            return None
    raise ValueError(f"no document coercion for mapping type {kind}")


def _doc_values(kind: str, items: list[Any], vals: ModuleType) -> Any:
    if kind in ("keyword", "wildcard", "ip", "boolean"):
        uniq = {vals.hashable(x): x for x in items}
        items = list(uniq.values())
    if kind == "ip":
        items.sort(key=vals.ip_key)
    elif kind in ("keyword", "wildcard"):
        items.sort(key=lambda s: s.encode("utf-8"))
    else:
        items.sort()
    return vals.pack(items)


def document(event: Event, vals: ModuleType) -> dict[str, Any]:
    types = field_types()
    doc: dict[str, Any] = {"_id": event.id, "@timestamp": vals.Date(event.ts)}
    for name, raw in ingested(event.fields).items():
        if name == "@timestamp":
            continue
        kind = types.get(name, "keyword")
        items = raw if isinstance(raw, list) else [raw]
        stored = [
            c for c in (_coerce(kind, x, vals) for x in items if x is not None) if c is not None
        ]
        doc[name] = _doc_values(kind, stored, vals)
    return doc


def data_stream(event: Event) -> str:
    ds = event.fields.get("event.dataset")
    if isinstance(ds, list):
        ds = ds[0] if ds else None
    name = re.sub(r"[^a-z0-9._]", "_", str(ds).lower()) if ds else "generic"
    return f"logs-{name}-default"


def indices(events: list[Event], profile: str = "ecs") -> dict[str, list[dict[str, Any]]]:
    """The fixture's documents per data stream. The data streams of every source the profile
    names exist, empty if no event goes there (a FROM pattern matching no index is an error)."""
    vals = _values()
    out: dict[str, list[dict[str, Any]]] = {}
    for src in load_profile(profile).sources.values():
        pattern = str(src.get("index") or "")
        if pattern:
            out[pattern.replace("*", "siemc-empty")] = []
    for e in events:
        out.setdefault(data_stream(e), []).append(document(e, vals))
    return out


def lookup_indices(analytic: ir.Analytic) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for lk in analytic.lookups:
        docs = []
        for n, row in enumerate(lk.rows, 1):
            doc: dict[str, Any] = {"siemc_row": n}
            for col, cell in zip(lk.columns, row, strict=True):
                doc[col] = cell if cell != "" else None
                doc[lookup_key(col)] = cell.lower() if cell != "" else None
            docs.append(doc)
        out[lookup_index(lk.name)] = docs
    return out


# ------------------------------------------------------------------------------ results
def plain(v: Any) -> Any:
    """An interpreter value as the evaluator writes it (ms for dates, text for addresses)."""
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(v)
    ms = getattr(v, "ms", None)
    if isinstance(ms, int) and type(v).__name__ == "Date":
        return ms
    return v


def to_alerts(
    loaded: Loaded, artifact: Artifact, rows: list[dict[str, Any]]
) -> list[CanonicalAlert]:
    analytic = loaded.analytic
    d = analytic.detection
    out: list[CanonicalAlert] = []
    if isinstance(d, ir.Aggregate):
        profile = load_profile(artifact.profile)
        keys = [(k, profile.map_field(k)) for k in d.keys]
        names = [m.name for m in d.measures] + [n for n, _ in d.compute]
        for r in rows:
            start = plain(r.get("window"))
            end = start + d.window.size_ms if isinstance(start, int) else None
            if "window_end" in r:
                # a hopping bucket of a sliding window (backends/elastic_esql/aggregate.py)
                # holds the evaluator's window [first event, e.ts] but is not it: not compared
                start = end = None
            key = [(k, plain(r.get(col))) for k, col in keys]
            ms = [(n, plain(r[n])) for n in names if n in r]
            out.append(canonical.make(analytic.id, key, start, end, ms))
        return out
    if isinstance(d, ir.Sequence):
        # one row per alert: `start`/`end` are the first and last step's times, the key the
        # first step's key fields (backends/elastic_esql/sequence.py)
        for r in rows:
            key = [(k, plain(r.get(k))) for k in d.steps[0].keys]
            out.append(canonical.make(analytic.id, key, plain(r["start"]), plain(r["end"])))
        return out
    if isinstance(d, ir.Cooccurrence):
        # a hopping bucket holding the members (backends/elastic_esql/cooccurrence.py): keyed
        # by the first member's keys, without the evaluator's times (first and last event)
        for r in rows:
            key = [(k, plain(r.get(k))) for k in d.members[0].keys]
            out.append(canonical.make(analytic.id, key, None, None))
        return out
    if isinstance(d, ir.Absence):
        for r in rows:
            ts = plain(r.get("@timestamp"))
            key = [(k, plain(r.get(k))) for k in d.first.keys]
            out.append(canonical.make(analytic.id, key, ts, ts))
        return out
    for r in rows:
        ts = plain(r.get("@timestamp"))
        out.append(canonical.make(analytic.id, (), ts, ts))
    return out


def run(loaded: Loaded, fixture: ir.Fixture, artifact: Artifact) -> list[CanonicalAlert]:
    """The canonical alerts of ``artifact``'s query executed over ``fixture``'s events."""
    interp = interpreter()
    _check_stack(artifact.text)
    events = fixture_events(loaded, fixture)
    now = fixture.now_ms if fixture.now_ms is not None else max((e.ts for e in events), default=0)
    idx = indices(events, artifact.profile)
    rows = interp.execute(artifact.query, idx, lookup_indices(loaded.analytic), now)
    return to_alerts(loaded, artifact, rows)


_STACK_NOTE = re.compile(r"^// requires Elasticsearch >= (\d+\.\d+\.\d+)$", re.M)


def _check_stack(text: str) -> None:
    """Reject a query using what the stack named in its header does not have."""
    m = _STACK_NOTE.search(text)
    if m is None:
        return
    try:
        import esql
    except ImportError as exc:
        raise EngineUnavailable(EXTRA, str(exc)) from None
    with esql.ParserConfig(min_stack_version=m.group(1)):
        esql.verify_features(esql.parse_query(text), m.group(1))


def execute_rows(
    query: str,
    idx: Mapping[str, list[dict[str, Any]]],
    lookups: Mapping[str, list[dict[str, Any]]],
    now_ms: int,
) -> list[dict[str, Any]]:
    """The interpreter's raw rows (for tests that look at columns)."""
    rows: list[dict[str, Any]] = interpreter().execute(query, idx, lookups, now_ms)
    return rows
