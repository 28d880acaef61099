"""Execute compiled Elasticsearch EQL over a fixture with Elastic's ``eql`` Python engine.

``run(loaded, fixture, artifact)`` loads the fixture's events as ``eql.Event``s (event type =
ECS ``event.category``, dotted ECS fields nested, times in ms with ``time_unit=1000``), runs the
artifact's query and returns the results as canonical alerts, for comparison with the reference
evaluator (``compiler.canonical.diff``).

What the engine (eql 1.0.1) does differently from Elasticsearch, and how this adapter copes:

* every string comparison and every ``by`` key is case-insensitive (Elasticsearch compares
  ``==``, ``in``, ``like`` and keyword keys case-sensitively). Nothing can undo that here:
  fixtures whose outcome depends on case alone must record the difference;
* ``maxspan`` is converted to whole seconds (``1500ms`` acts as ``1s``);
* sequences join events whose key is null, which Elasticsearch >= 7.16 never does: results with
  a null key are dropped, which is exactly Elasticsearch's rule (a null-keyed event only ever
  meets other null-keyed events in the engine, so no other result depends on it);
* missing-event sequences and ``sample`` are not run as the engine runs them (see
  :data:`NOT_EXECUTABLE` and :func:`_run_sample`).

Never name this module ``eql_*``: the eql package imports such modules as plugins.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from backends.base import Artifact
from backends.profiles import FieldProfile, load_profile
from backends.registered_domain import ingested
from compiler import canonical, engines, ir
from compiler.canonical import CanonicalAlert
from compiler.evaluator.model import Event
from compiler.lower import Loaded
from compiler.testing import fixture_events

EXTRA = "test"
REQUIREMENT = "eql==1.0.1"

# Constructs whose compiled form this engine cannot execute faithfully, with the reason. The
# differential test lists the (analytic, fixture) pairs that hit them.
NOT_EXECUTABLE: dict[str, str] = {
    "missing-event sequence": (
        "eql 1.0.1 parses `![...]` (the step keeps is_negated=true) but its PythonEngine "
        "completes the sequence at the next event of the same category and key that fails the "
        "missing filter, and never when maxspan expires with no such event; Elasticsearch "
        "(>= 8.9) reports the sequence when no matching event follows within maxspan. Its "
        "results would test the engine, not the translation"
    ),
}

# How `sample` results are formed. The engine's own `sample` is not Elasticsearch's: it emits
# any N events of a key that match any of the N filters (on the Log4Shell data it returns two
# `bash -i` starts and a connection, with no discovery command). So the engine runs each filter
# and the adapter forms samples as the Elasticsearch reference describes them
# (https://www.elastic.co/guide/en/elasticsearch/reference/current/eql-syntax.html#eql-samples):
# one distinct event per filter with equal join keys, in any order and at any distance, and at
# most max_samples_per_key (default 1) samples per key. Which events a sample picks is not
# documented, so sample alerts carry no start/end (canonical: not compared).
SAMPLE_NOTE = "sample: filters run by the engine, samples formed as Elasticsearch documents them"


class EngineUnavailable(engines.EngineUnavailable):
    """The ``eql`` package is not installed."""

    def __init__(self, extra: str = EXTRA) -> None:
        self.extra = extra
        super().__init__(
            f"the EQL engine (Elastic's `eql` package, {REQUIREMENT}) is not installed: "
            f"pip install 'siemc[{extra}]' (or pip install '{REQUIREMENT}')"
        )


class NotExecutable(engines.NotExecutable):
    """The query uses a construct this engine cannot execute faithfully."""

    def __init__(self, construct: str) -> None:
        self.construct = construct
        self.reason = NOT_EXECUTABLE[construct]
        super().__init__(f"{construct}: {self.reason}")


def _eql() -> Any:
    try:
        import eql
    except ImportError:
        raise EngineUnavailable(EXTRA) from None
    return eql


def parse(query: str) -> Any:
    """Parse with the Elasticsearch dialect and the features newer stacks accept."""
    eql = _eql()
    p = eql.parser
    with ExitStack() as stack:
        for cfg in (p.elasticsearch_syntax, p.allow_negation, p.allow_sample, p.allow_runs):
            stack.enter_context(cfg)
        return eql.parse_query(query)


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted ECS names as nested objects, the shape Elasticsearch documents have."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # `a` and `a.b` both set: keep both readable
                child = node[part] = {"": child}
            node = child
        node[parts[-1]] = value
    return out


def _category(fields: Mapping[str, Any]) -> str:
    """Elasticsearch reads the event type of `process where` from event.category (its first
    value when it is a list)."""
    cat = fields.get("event.category")
    if isinstance(cat, list):
        cat = cat[0] if cat else None
    return "" if cat is None else str(cat)


def _value(event: Event, field_name: str) -> Any:
    v = event.fields.get(field_name)
    if isinstance(v, list):  # EQL keys cannot be arrays: the backend says so; first element
        return v[0] if v else None
    return v


class _Runner:
    """One fixture loaded into engine events; runs queries and maps results to fixture events."""

    def __init__(self, events: Sequence[Event]) -> None:
        eql = _eql()
        self.eql = eql
        self.events = list(events)
        self.stream = [
            eql.Event(_category(e.fields), e.ts, nest(ingested(e.fields))) for e in events
        ]
        self.index = {id(ev.data): i for i, ev in enumerate(self.stream)}

    def run(self, query: Any) -> list[list[int]]:
        """Indices (into the fixture's events) of each result's events, in output order."""
        results: list[list[int]] = []
        engine = self.eql.PythonEngine({"print": False, "time_unit": 1000})
        engine.add_query(query)
        engine.add_output_hook(
            lambda out: results.append([self.index[id(e.data)] for e in out.events])
        )
        engine.stream_events(self.stream)
        return results

    def matching(self, event_query: Any) -> list[int]:
        """Indices of the events one `[category where cond]` filter matches."""
        piped = self.eql.ast.PipedQuery(event_query, [])
        return [r[0] for r in self.run(piped)]


def _detection_steps(analytic: ir.Analytic) -> tuple[ir.Step, ...]:
    det = analytic.detection
    if isinstance(det, ir.Sequence):
        return det.steps
    if isinstance(det, ir.Cooccurrence):
        return det.members
    if isinstance(det, ir.Absence):
        return (det.first, det.missing)
    return ()


def run(loaded: Loaded, fixture: ir.Fixture, artifact: Artifact) -> list[CanonicalAlert]:
    """The canonical alerts of ``artifact``'s query executed over ``fixture``'s events.

    Raises :class:`NotExecutable` for constructs listed in :data:`NOT_EXECUTABLE` and
    :class:`EngineUnavailable` when eql is not installed."""
    ast = parse(artifact.query)
    base = ast.first
    eql = _eql()
    if isinstance(base, eql.ast.Sequence) and any(_negated(q) for q in base.queries):
        raise NotExecutable("missing-event sequence")
    runner = _Runner(fixture_events(loaded, fixture))
    analytic = loaded.analytic
    profile = load_profile(artifact.profile)
    steps = _detection_steps(analytic)
    if isinstance(base, eql.ast.EventQuery):
        return [
            canonical.make(analytic.id, (), runner.events[r[0]].ts, runner.events[r[0]].ts)
            for r in runner.run(ast)
        ]
    if isinstance(base, eql.ast.Sequence):
        return list(_sequence_alerts(analytic.id, steps, runner.run(ast), runner, profile))
    if isinstance(base, eql.ast.Sample):
        return _run_sample(analytic.id, steps, base, runner, profile)
    raise TypeError(f"unexpected EQL query kind {type(base).__name__}")


def _negated(subquery: Any) -> bool:
    flag = subquery.params.kv.get("is_negated")
    return bool(flag is not None and flag.value)


def _mapped_keys(step: ir.Step, profile: FieldProfile) -> list[str]:
    return [profile.map_field(k) for k in step.keys]


def _sequence_alerts(
    aid: str,
    steps: Sequence[ir.Step],
    results: list[list[int]],
    runner: _Runner,
    profile: FieldProfile,
) -> Iterator[CanonicalAlert]:
    """Key pairs named after the first step's keys, with its event's values; start/end are the
    first and last event times (as the evaluator reports sequences)."""
    keyed = [_mapped_keys(s, profile) for s in steps]
    for result in results:
        evs = [runner.events[i] for i in result]
        if any(_value(e, f) is None for e, fields in zip(evs, keyed, strict=False) for f in fields):
            continue  # Elasticsearch >= 7.16: null keys never join (the engine joins them)
        first = evs[0]
        pairs = [(k, _value(first, f)) for k, f in zip(steps[0].keys, keyed[0], strict=True)]
        yield canonical.make(aid, pairs, min(e.ts for e in evs), max(e.ts for e in evs))


def _run_sample(
    aid: str,
    steps: Sequence[ir.Step],
    base: Any,
    runner: _Runner,
    profile: FieldProfile,
) -> list[CanonicalAlert]:
    """Samples per SAMPLE_NOTE: per key (in order of first appearance), one distinct event per
    filter, earliest first; one sample per key (max_samples_per_key defaults to 1)."""
    keyed = [_mapped_keys(s, profile) for s in steps]
    by_key: dict[tuple[Any, ...], list[list[int]]] = {}
    for pos, sub in enumerate(base.queries):
        for i in runner.matching(sub.query):
            key = tuple(_value(runner.events[i], f) for f in keyed[pos])
            if any(v is None for v in key):
                continue
            by_key.setdefault(key, [[] for _ in base.queries])[pos].append(i)
    alerts: list[CanonicalAlert] = []
    for cands in by_key.values():
        chosen = _distinct_choice(cands)
        if chosen is None:
            continue
        first = runner.events[chosen[0]]
        pairs = [(k, _value(first, f)) for k, f in zip(steps[0].keys, keyed[0], strict=True)]
        alerts.append(canonical.make(aid, pairs, None, None))
    return alerts


def _distinct_choice(cands: list[list[int]]) -> list[int] | None:
    """One event per filter, pairwise distinct, preferring earlier events (augmenting paths)."""
    owner: dict[int, int] = {}  # event index -> filter position

    def place(pos: int, seen: set[int]) -> bool:
        for ev in cands[pos]:
            if ev in seen:
                continue
            seen.add(ev)
            if ev not in owner or place(owner[ev], seen):
                owner[ev] = pos
                return True
        return False

    if not all(place(pos, set()) for pos in range(len(cands))):
        return None
    chosen = {pos: ev for ev, pos in owner.items()}
    return [chosen[pos] for pos in range(len(cands))]
