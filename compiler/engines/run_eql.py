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
  a null key (of the query's ``by`` fields) are dropped, which is exactly Elasticsearch's rule
  (a null-keyed event only ever meets other null-keyed events in the engine, so no other
  result depends on it);
* the engine reads the fixture's JSON as is, where Elasticsearch indexes each field by its
  mapping and EQL filters and keys read the indexed values: fields the ECS profile types
  (``types`` of ``backends/profiles/ecs.yml``; a keyword indexes a JSON number or boolean as
  its text) are indexed first (:func:`indexed`);
* ``cidrMatch`` raises on a value that is not an address, which an Elasticsearch ``ip`` field
  never holds: it does not match (:func:`_address_or_no_match`);
* missing-event sequences and ``sample`` are not run as the engine runs them (see
  :data:`NOT_EXECUTABLE` and :func:`_run_sample`);
* the engine has no notion of multi-valued (array) fields: its comparisons see the whole list
  (``in`` even crashes hashing it). :class:`_ArrayAware` gives the engine Elasticsearch's array
  semantics, described there; ``<category> where`` becomes ``any where event.category ==
  "<category>" and ...``, the term filter Elasticsearch runs, so a multi-valued
  ``event.category`` matches every category it lists.

Never name this module ``eql_*``: the eql package imports such modules as plugins.
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from backends.base import Artifact
from backends.elastic_esql.expr import declared_type
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
    """Parse with the Elasticsearch dialect and the features newer stacks accept, without the
    library's optimizer: it folds ``not x > 5`` into ``x <= 5``, which is not the same test on
    a multi-valued field, and Elasticsearch's optimizer leaves negations alone
    (``EqlBooleanSimplification.maybeSimplifyNegatable`` returns null in
    x-pack/plugin/eql/.../optimizer/Optimizer.java)."""
    eql = _eql()
    p = eql.parser
    configs = (
        p.elasticsearch_syntax,
        p.allow_negation,
        p.allow_sample,
        p.allow_runs,
        p.skip_optimizations,
    )
    with ExitStack() as stack:
        for cfg in configs:
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


# Every event enters the engine with one type; the category test is a condition (_any_category).
_ENGINE_TYPE = "event"
# Where an expanded copy of an event carries its key binding (no ECS field has this name).
_BINDING = "\x00siemc_binding"
# Functions the backend emits as tests of one field against constants (`:`/like~ are
# `wildcard`, regex~ is `match`); Elasticsearch runs each as a query on the field's values.
_FIELD_TESTS = frozenset(
    {"wildcard", "match", "cidrMatch", "stringContains", "startsWith", "endsWith"}
)


def _dotted(field: Any) -> str:
    return ".".join([str(field.base), *(str(p) for p in field.path)])


def _any_category(query: Any, eql: Any) -> Any:
    """``cat where c`` as ``any where event.category == "cat" and c``: Elasticsearch selects
    the category with a term query on ``event.category``, which a multi-valued category
    satisfies for each of its values (the engine's event type holds one)."""
    query = copy.deepcopy(query)

    def lift(q: Any) -> Any:
        if q.event_type == "any":
            return q
        field = eql.ast.Field("event", ["category"])
        cat = eql.ast.Comparison(field, "==", eql.ast.String(q.event_type))
        return eql.ast.EventQuery("any", eql.ast.And([cat, q.query]))

    first = query.first
    if isinstance(first, eql.ast.EventQuery):
        return eql.ast.PipedQuery(lift(first), query.pipes)
    subs = [*first.queries, *([first.close] if getattr(first, "close", None) else [])]
    for sub in subs:
        sub.query = lift(sub.query)
    return query


_ENGINE_CLASS: list[Any] = []


def _array_aware_engine() -> Any:
    """A PythonEngine with Elasticsearch's semantics for multi-valued fields (class built once,
    on first use, because eql is an optional dependency)."""
    if not _ENGINE_CLASS:
        _ENGINE_CLASS.append(_make_array_aware(_eql()))
    return _ENGINE_CLASS[0]({"print": False, "time_unit": 1000})


def _make_array_aware(eql: Any) -> Any:
    Field = eql.ast.Field
    Base = eql.PythonEngine

    class ArrayAware(Base):  # type: ignore[misc, valid-type]
        """Elasticsearch EQL on arrays, from its planner (x-pack/plugin/eql/.../planner/
        QueryTranslator.java): a test of a field against constants becomes a term, terms,
        wildcard, regexp, prefix or range query, or a script query rewritten by
        ``Scripts.multiValueDocValuesRewrite`` to try every doc value; each matches a
        document when **some** value matches. ``!=`` and ``not`` become a bool ``must_not``
        around such a query: **no** value matches. ``== null`` / ``!= null`` are (not) an
        ``exists`` query, which null elements do not satisfy. So each test here runs once per
        distinct non-null value (bound in place of the list) and is combined with any (``!=``:
        all); a field with no value is tested as null. ``by`` keys read the binding of the
        event's copy (:func:`_key_bindings`)."""

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self._bound: dict[str, Any] = {}
            self._keying = False

        def _convert_field(self, node: Any) -> Callable[[Any], Any]:
            inner = super()._convert_field(node)
            name = _dotted(node)
            if self._keying:

                def key(scope: Any) -> Any:
                    binding = scope.event.data.get(_BINDING)
                    if binding and name in binding:
                        return binding[name]
                    v = inner(scope)
                    if isinstance(v, list):
                        vals = _elements(v)
                        return vals[0] if len(vals) == 1 else None
                    return v

                return key
            bound = self._bound

            def get(scope: Any) -> Any:
                return bound[name] if name in bound else inner(scope)

            return get

        def _convert_key(self, args: Any, *rest: Any, **kw: Any) -> Any:
            self._keying = True
            try:
                return super()._convert_key(args, *rest, **kw)
            finally:
                self._keying = False

        def _per_value(self, field: Any, scalar: Any, negative: bool) -> Callable[[Any], Any]:
            name = _dotted(field)
            raw = Base._convert_field(self, field)
            bound = self._bound

            def test(scope: Any) -> Any:
                value = raw(scope)
                if not isinstance(value, list) or name in bound:
                    return scalar(scope)
                vals = _elements(value)
                try:
                    if not vals:
                        bound[name] = None
                        return scalar(scope)
                    results = []
                    for x in vals:
                        bound[name] = x
                        results.append(bool(scalar(scope)))
                    return all(results) if negative else any(results)
                finally:
                    bound.pop(name, None)

            return test

        def _convert_comparison(self, node: Any) -> Any:
            scalar = super()._convert_comparison(node)
            for side in (node.left, node.right):
                if isinstance(side, Field):
                    return self._per_value(side, scalar, node.comparator == "!=")
            return scalar

        def _convert_in_set(self, node: Any) -> Any:
            scalar = super()._convert_in_set(node)
            if isinstance(node.expression, Field):
                return self._per_value(node.expression, scalar, False)
            return scalar

        def _convert_function_call(self, node: Any) -> Any:
            scalar = super()._convert_function_call(node)
            args = node.arguments
            if node.name == "cidrMatch" and args and isinstance(args[0], Field):
                scalar = _address_or_no_match(self._convert_field(args[0]), scalar)
            if node.name in _FIELD_TESTS and args and isinstance(args[0], Field):
                return self._per_value(args[0], scalar, False)
            return scalar

        def _convert_is_null(self, node: Any) -> Any:
            scalar = super()._convert_is_null(node)
            return (
                self._per_value(node.expr, scalar, True) if isinstance(node.expr, Field) else scalar
            )

        def _convert_is_not_null(self, node: Any) -> Any:
            scalar = super()._convert_is_not_null(node)
            return (
                self._per_value(node.expr, scalar, False)
                if isinstance(node.expr, Field)
                else scalar
            )

    return ArrayAware


def _address_or_no_match(value_of: Callable[[Any], Any], test: Callable[[Any], Any]) -> Any:
    """cidrMatch as Elasticsearch runs it: its field argument must be an ``ip`` field (EQL
    function reference, cidrMatch: "supports only the ip field data type"), which holds
    addresses only; a value that is none is not indexed as one (the document is rejected, or
    with ``ignore_malformed`` the value is skipped: mapping-params, ignore_malformed), so it
    matches no range. eql 1.0.1 raises ValueError parsing it instead."""

    def run(scope: Any) -> Any:
        value = value_of(scope)
        if isinstance(value, str):
            try:
                ipaddress.ip_address(value)
            except ValueError:
                return False
        return test(scope)

    return run


def _elements(value: Any) -> list[Any]:
    """The distinct non-null values of a field, as Elasticsearch indexes an array (a scalar is a
    one-value list; null, [] and [null] are no value)."""
    items = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for x in items:
        if x is not None and x not in out:
            out.append(x)
    return out


_INTEGRAL = frozenset({"long", "integer", "short", "byte"})
_DECIMAL = frozenset({"double", "float", "half_float", "scaled_float"})


def _mapped(kind: str, v: Any) -> Any:
    """One JSON value as a field of mapping type ``kind`` indexes it, or None when it is not
    indexed. Numeric fields coerce numeric strings and an integer type truncates fractions
    (mapping parameter ``coerce``, default true); ``logs-*-*`` data streams set
    ``index.mapping.ignore_malformed: true``, so a value the type cannot hold is skipped. An
    ``ip`` field stores an IPv4-mapped IPv6 address as the IPv4 address (Lucene
    ``InetAddressPoint`` encodes both alike). Other types keep the value."""
    if kind in _INTEGRAL or kind in _DECIMAL:
        if isinstance(v, bool):
            return None
        try:
            num = float(v.strip()) if isinstance(v, str) else v
        except ValueError:
            return None
        if not isinstance(num, int | float) or num != num or num in (float("inf"), -float("inf")):
            return None
        if kind in _INTEGRAL:
            return v if isinstance(v, int) else int(num)
        return float(num)
    if kind in ("keyword", "wildcard", "constant_keyword"):
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if isinstance(v, int | float) else v
    if kind == "ip":
        try:
            ip = ipaddress.ip_address(v) if isinstance(v, str) else None
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return None if ip is None else str(ip)
    return v


def indexed(fields: Mapping[str, Any], profile: str = "ecs") -> dict[str, Any]:
    """The event's fields as Elasticsearch indexes them (:func:`_mapped`, per element of a
    list); fields the profile does not type are left as dynamic mapping reads them."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        kind = declared_type(profile, name)
        if kind is None or kind == "date" or value is None:
            out[name] = value
        elif isinstance(value, list):
            out[name] = [
                m for m in (_mapped(kind, x) for x in value if x is not None) if m is not None
            ]
        else:
            out[name] = _mapped(kind, value)
    return out


Binding = dict[str, Any]  # key field -> the one value an expanded copy of an event stands for


def _key_bindings(fields: Mapping[str, Any], key_fields: Sequence[str]) -> list[Binding]:
    """One binding per combination of the values of the event's multi-valued key fields: the
    copies of the event Elasticsearch's per-key state machines see (PR elastic/elasticsearch
    #89965: "each value is considered as a different join key, so the same record will be
    considered multiple times"; several multi-valued keys: the cartesian product)."""
    multi = [f for f in key_fields if isinstance(fields.get(f), list) and _elements(fields[f])]
    if not multi:
        return [{}]
    return [
        dict(zip(multi, combo, strict=True))
        for combo in itertools.product(*(_elements(fields[f]) for f in multi))
    ]


def _value(event: Event, field_name: str, binding: Binding | None = None) -> Any:
    if binding and field_name in binding:
        return binding[field_name]
    v = event.fields.get(field_name)
    if isinstance(v, list):  # a key with no (non-null) value is null
        vals = _elements(v)
        return vals[0] if vals else None
    return v


class _Runner:
    """One fixture loaded into engine events; runs queries and maps results to fixture events.

    With ``key_fields``, an event whose key fields hold several values enters the engine once
    per combination (:func:`_key_bindings`); every copy keeps the whole event for the filters,
    and the binding only for the `by` keys."""

    def __init__(self, events: Sequence[Event], key_fields: Sequence[str] = ()) -> None:
        eql = _eql()
        self.eql = eql
        self.events = list(events)
        self.copies: list[tuple[int, Binding]] = []
        self.stream = []
        for i, e in enumerate(events):
            data = nest(indexed(ingested(e.fields)))
            for binding in _key_bindings(e.fields, key_fields):
                copy = {**data, _BINDING: binding} if binding else data
                self.stream.append(eql.Event(_ENGINE_TYPE, e.ts, copy))
                self.copies.append((i, binding))
        self.index = {id(ev.data): n for n, ev in enumerate(self.stream)}

    def run_copies(self, query: Any) -> list[list[int]]:
        """Indices into :attr:`copies` of each result's events, in output order."""
        results: list[list[int]] = []
        engine = _array_aware_engine()
        engine.add_query(_any_category(query, self.eql))
        engine.add_output_hook(
            lambda out: results.append([self.index[id(e.data)] for e in out.events])
        )
        engine.stream_events(self.stream)
        return results

    def run(self, query: Any) -> list[list[int]]:
        """Indices (into the fixture's events) of each result's events, in output order."""
        return [[self.copies[c][0] for c in r] for r in self.run_copies(query)]

    def matching(self, event_query: Any) -> list[int]:
        """Indices of the events one `[category where cond]` filter matches."""
        piped = self.eql.ast.PipedQuery(event_query, [])
        return list(dict.fromkeys(r[0] for r in self.run(piped)))


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
    analytic = loaded.analytic
    profile = load_profile(artifact.profile)
    steps = _detection_steps(analytic)
    events = fixture_events(loaded, fixture)
    if isinstance(base, eql.ast.EventQuery):
        runner = _Runner(events)
        return [
            canonical.make(analytic.id, (), runner.events[r[0]].ts, runner.events[r[0]].ts)
            for r in runner.run(ast)
        ]
    if isinstance(base, eql.ast.Sequence):
        # The query's own join keys (it may key on another field than the analytic, e.g.
        # process.entity_id for host + PID): they decide the joins and the null rule.
        joins = [[_dotted(v) for v in q.join_values] for q in base.queries]
        close = [_dotted(v) for v in base.close.join_values] if base.close else []
        key_fields = [f for keys in [*joins, close] for f in keys]
        runner = _Runner(events, list(dict.fromkeys(key_fields)))
        results = runner.run_copies(ast)
        return list(_sequence_alerts(analytic.id, steps, joins, results, runner, profile))
    if isinstance(base, eql.ast.Sample):
        return _run_sample(analytic.id, steps, base, _Runner(events), profile)
    raise TypeError(f"unexpected EQL query kind {type(base).__name__}")


def _negated(subquery: Any) -> bool:
    flag = subquery.params.kv.get("is_negated")
    return bool(flag is not None and flag.value)


def _mapped_keys(step: ir.Step, profile: FieldProfile) -> list[str]:
    return [profile.map_field(k) for k in step.keys]


def _sequence_alerts(
    aid: str,
    steps: Sequence[ir.Step],
    joins: Sequence[Sequence[str]],
    results: list[list[int]],
    runner: _Runner,
    profile: FieldProfile,
) -> Iterator[CanonicalAlert]:
    """Key pairs named after the analytic's first step keys, with its event's values (what
    the alert's first event shows, whatever the query joined on); start/end are the first
    and last event times (as the evaluator reports sequences)."""
    for result in results:
        evs = [(runner.events[i], b) for i, b in (runner.copies[c] for c in result)]
        if any(
            _value(e, f, b) is None
            for (e, b), fields in zip(evs, joins, strict=False)
            for f in fields
        ):
            continue  # Elasticsearch >= 7.16: null keys never join (the engine joins them)
        first, binding = evs[0]
        mapped = _mapped_keys(steps[0], profile)
        pairs = [(k, _value(first, f, binding)) for k, f in zip(steps[0].keys, mapped, strict=True)]
        yield canonical.make(aid, pairs, min(e.ts for e, _ in evs), max(e.ts for e, _ in evs))


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
            fields = runner.events[i].fields
            # A multi-valued key puts the event under each of its values (_key_bindings).
            for binding in _key_bindings(fields, keyed[pos]):
                key = tuple(_value(runner.events[i], f, binding) for f in keyed[pos])
                if any(v is None for v in key):
                    continue
                by_key.setdefault(key, [[] for _ in base.queries])[pos].append(i)
    alerts: list[CanonicalAlert] = []
    for key, cands in by_key.items():
        if _distinct_choice(cands) is None:
            continue
        pairs = list(zip(steps[0].keys, key, strict=True))
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
