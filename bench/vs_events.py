"""Events generated from an imported analytic, for bench/vs_pysigma.py.

A stream's filter (and its logsource's ECS condition) is solved for one satisfying event:
every leaf the search makes true becomes a constraint on its field (an exact value, a prefix,
a suffix, pieces it contains, a number, a network), composed into one value per field; ``any``
tries its branches in order and ``not`` asks its item to be false. The evaluator's own
predicate then checks the event: a stream whose event fails the check has no generated events
(the rule is reported as such, never guessed). Near-miss negatives flip one constraint of a
positive event (its field replaced by a value no constraint asks for).

Correlations get bursts per scenario (each scenario its own group key, ``SCENARIOS``): at the
threshold and one below, within the window and just past it, inside one tumbling bucket and
across a bucket boundary, and for temporal rules out of order and with one rule missing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compiler import ir
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import logsource_predicate

T0_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z: a multiple of every bucket size used
BENIGN = "benign-value"


@dataclass
class FieldWant:
    eq: Any = None
    starts: str = ""
    ends: str = ""
    contains: list[str] = field(default_factory=list)
    number: float | None = None
    absent: bool = False

    def value(self) -> Any:
        if self.absent:
            return None
        if self.eq is not None:
            return self.eq
        if self.number is not None:
            n = self.number
            return int(n) if float(n).is_integer() else n
        if self.starts or self.ends or self.contains:
            return self.starts + "".join(self.contains) + self.ends
        return "present"


class Unsolvable(Exception):
    """The generator cannot satisfy a predicate (a regex, a lookup, a contradiction)."""


def _leaf(pred: ir.Predicate, want: bool, wants: dict[str, FieldWant]) -> None:
    if isinstance(pred, ir.Eq | ir.StrMatch | ir.Regex | ir.Compare | ir.Exists | ir.Cidr):
        w = wants.setdefault(pred.field, FieldWant())
    else:
        raise Unsolvable(type(pred).__name__)
    if not want:
        # false: leave the field to another constraint, or to a value nothing asks for
        if isinstance(pred, ir.Exists) and pred.present:
            w.absent = True
        return
    if isinstance(pred, ir.Eq):
        w.eq = pred.values[0] if pred.quantifier == "any" else list(pred.values)
    elif isinstance(pred, ir.StrMatch):
        vals = list(pred.values) if pred.quantifier == "all" else [pred.values[0]]
        if pred.op == "startswith":
            w.starts = vals[0]
        elif pred.op == "endswith":
            w.ends = vals[0]
        else:
            w.contains += vals
    elif isinstance(pred, ir.Compare):
        step = {"gt": 1, "gte": 0, "lt": -1, "lte": 0, "eq": 0}.get(str(pred.op), 0)
        w.number = pred.value + step
    elif isinstance(pred, ir.Exists):
        if not pred.present:
            w.absent = True
    elif isinstance(pred, ir.Cidr):
        net = ipaddress.ip_network(pred.networks[0], strict=False)
        w.eq = str(next(net.hosts(), net.network_address))
    else:
        raise Unsolvable("regex")


def _solve(pred: ir.Predicate, want: bool, wants: dict[str, FieldWant], check: Any) -> None:
    if isinstance(pred, ir.And | ir.Or):
        conj = isinstance(pred, ir.And) == want
        if conj:  # every item must take the wanted value
            for item in pred.items:
                _solve(item, want, wants, check)
            return
        # one item suffices: the first whose constraints still make a checked event
        for item in pred.items:
            trial = {k: FieldWant(**vars(v)) for k, v in wants.items()}
            for v in trial.values():
                v.contains = list(v.contains)
            try:
                _solve(item, want, trial, check)
            except Unsolvable:
                continue
            if check(trial, pred) == want:
                wants.clear()
                wants.update(trial)
                return
        raise Unsolvable("no branch")
    if isinstance(pred, ir.Not):
        _solve(pred.item, not want, wants, check)
        return
    _leaf(pred, want, wants)


def _event(wants: dict[str, FieldWant], base: dict[str, Any]) -> dict[str, Any]:
    ev = dict(base)
    for name, w in wants.items():
        v = w.value()
        if v is None:
            ev.pop(name, None)
        else:
            ev[name] = v
    return ev


# fields every generated event has unless a constraint says otherwise: the group keys of most
# correlations, and what each target's data model needs to place the event
DEFAULTS: dict[str, Any] = {
    "host.name": "ws01",
    "user.name": "alice",
    "process.executable": "C:\\Windows\\System32\\svchost.exe",
    "process.command_line": "svchost.exe -k netsvcs",
    "process.entity_id": "{00000000-0000-0000-0000-000000000001}",
    "process.pid": 4242,
}


@dataclass
class Template:
    stream: str
    event: dict[str, Any]
    wants: dict[str, FieldWant]
    matches: Callable[[dict[str, Any]], bool]


def stream_template(analytic: ir.Analytic, stream: ir.Stream) -> Template:
    """One positive event of ``stream`` (raises :class:`Unsolvable`)."""
    if not isinstance(stream.source, ir.LogSource) or stream.join or stream.enrich:
        raise Unsolvable("stream reads another stream, a join or a lookup")
    pred = ir.And((logsource_predicate(stream.source), stream.filter))
    lookups = {lk.name: lk for lk in analytic.lookups}
    test = compile_predicate(pred, lookups)

    def matches(ev: dict[str, Any]) -> bool:
        return bool(test(_as_event(ev)))

    def check(wants: dict[str, FieldWant], sub: ir.Predicate) -> bool:
        """The truth of ``sub`` (a part of the filter) for the event ``wants`` compose."""
        return bool(compile_predicate(sub, lookups)(_as_event(_event(wants, DEFAULTS))))

    wants: dict[str, FieldWant] = {}
    _solve(pred, True, wants, check)
    ev = _event(wants, DEFAULTS)
    if not matches(ev):
        raise Unsolvable("the composed event does not match")
    return Template(stream.name, ev, wants, matches)


def _as_event(ev: dict[str, Any]) -> Any:
    from compiler.evaluator.engine import to_event

    return to_event({"@timestamp": T0_MS, **ev}, 1, "gen")


def near_misses(t: Template, limit: int = 4) -> list[dict[str, Any]]:
    """Positive events with one constraint flipped (its field replaced or removed)."""
    out = []
    for name, w in sorted(t.wants.items()):
        if name.startswith(("event.", "host.os.")) or w.absent:
            continue  # the logsource: a flip there tests the data model, not the rule
        ev = dict(t.event)
        if isinstance(ev.get(name), int | float) and not isinstance(ev.get(name), bool):
            ev[name] = -1
        else:
            ev[name] = BENIGN
        out.append(ev)
        if len(out) == limit:
            break
    return out


def at(ev: dict[str, Any], ms: int) -> dict[str, Any]:
    return {**ev, "@timestamp": _iso(ms)}


def _iso(ms: int) -> str:
    import datetime as dt

    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def match_events(t: Template) -> list[dict[str, Any]]:
    """The positive event, then its near misses, one second apart."""
    evs = [t.event, *near_misses(t)]
    return [at(e, T0_MS + 1000 * i) for i, e in enumerate(evs)]


def key_value(base: Any, i: int, ok: Callable[[Any], bool]) -> Any:
    """A value for group key ``i`` that keeps the stream's filter true, or None."""
    cands: list[Any]
    if isinstance(base, str):
        try:
            ipaddress.ip_address(base)
            cands = [f"198.51.100.{10 + i}", f"2001:db8::{10 + i:x}"]
        except ValueError:
            cands = [f"C:\\K{i}\\{base}", f"{base}-k{i}", f"k{i}{base}", f"k{i}"]
    elif isinstance(base, int | float) and not isinstance(base, bool):
        cands = [int(base) + 1000 + i]
    else:
        cands = [f"k{i}"]
    return next((c for c in cands if ok(c)), None)


@dataclass(frozen=True)
class Condition:
    """A Sigma correlation's type, condition and timespan (read from its YAML)."""

    kind: str  # event_count, value_count, temporal, ...
    op: str  # gte, gt, lte, lt, eq
    value: float
    window_ms: int


def _keyed(t: Template, keys: tuple[str, ...], i: int) -> dict[str, Any] | None:
    ev = dict(t.event)
    for k in keys:
        base = ev.get(k, DEFAULTS.get(k, "key"))

        def ok(c: Any, k: str = k) -> bool:
            return t.matches({**ev, k: c})

        v = key_value(base, i, ok)
        if v is None:
            return None
        ev[k] = v
    return ev


def _burst(ev: dict[str, Any], n: int, start: int, span: int) -> list[tuple[int, dict[str, Any]]]:
    if n <= 0:
        return []
    step = span // (n - 1) if n > 1 else 0
    return [(start + j * step, dict(ev)) for j in range(n)]


def aggregate_scenarios(
    t: Template, det: ir.Aggregate, cond: Condition
) -> dict[str, list[dict[str, Any]]]:
    """Bursts per scenario, each under its own group key: the events of the scenario."""
    w = cond.window_ms
    counting = cond.kind in ("event_count", "value_count")
    if counting:
        n = int(cond.value) + (1 if cond.op == "gt" else 0)
        n = max(n, 2)
    else:
        n = 2
    measure = det.measures[0].field if det.measures else None
    plan: list[tuple[str, int, int, int, str]] = [
        # name, events, offset from a bucket boundary, spread, measure values
        ("one-bucket", n, w // 10, w // 2, "hit"),
        ("across-buckets", n, -w // 4, w // 2, "hit"),
        ("one-below", n - 1, w // 10, w // 2, "hit"),
        ("just-within", n, -w // 2, w - 1000, "hit"),
        ("just-past", n, -w // 2, w + 1000, "hit"),
        ("single", 1, w // 10, 0, "hit"),
    ]
    if cond.kind == "value_count":
        plan.append(("same-value", n, w // 10, w // 2, "same"))
    if not counting:
        plan.append(("low-values", n, w // 10, w // 2, "low"))
    out: dict[str, list[dict[str, Any]]] = {}
    for i, (name, count, offset, spread, values) in enumerate(plan):
        ev = _keyed(t, det.keys, i)
        if ev is None:
            raise Unsolvable("no group key value keeps the filter true")
        boundary = T0_MS + (10 * i + 5) * w
        evs = []
        for j, (ms, e) in enumerate(_burst(ev, count, boundary + offset, spread)):
            if measure is not None:
                e[measure] = _measure_value(t, e, measure, cond, values, j)
            evs.append(at(e, ms))
        out[name] = evs
    return out


def _measure_value(
    t: Template, ev: dict[str, Any], name: str, cond: Condition, values: str, j: int
) -> Any:
    if cond.kind == "value_count":
        # an address field needs addresses: the engines type .ip fields (ES|QL drops text)
        base = ev.get(name) or ("192.0.2.1" if name.endswith(".ip") else "v")
        got = key_value(
            base, 100 + (0 if values == "same" else j), lambda c: t.matches({**ev, name: c})
        )
        if got is None:
            raise Unsolvable("no distinct values keep the filter true")
        return got
    v = cond.value if cond.kind != "value_sum" else cond.value / 2 + 1
    if values == "low":
        v = cond.value / 4
    return int(v) if float(v).is_integer() else v


def temporal_scenarios(
    ts: list[Template], steps: tuple[ir.Step, ...], cond: Condition
) -> dict[str, list[dict[str, Any]]]:
    w = cond.window_ms
    plan: list[tuple[str, list[tuple[int, int]]]] = [
        # name, (template index, offset from a bucket boundary)
        ("in-order-one-bucket", [(0, w // 10), (1, w // 5)]),
        ("in-order-across-buckets", [(0, -w // 4), (1, w // 4)]),
        ("reversed", [(1, w // 10), (0, w // 5)]),
        ("too-far-apart", [(0, -w // 2), (1, w // 2 + 1000)]),
        ("first-only", [(0, w // 10), (0, w // 5)]),
        ("second-only", [(1, w // 10)]),
    ]
    out: dict[str, list[dict[str, Any]]] = {}
    for i, (name, parts) in enumerate(plan):
        boundary = T0_MS + (10 * i + 5) * w
        evs = []
        keyed = [dict(t.event) for t in ts]
        # one value per key field, taken from the first rule that sets it, true for every rule
        for f in steps[0].keys:
            base = next((e[f] for e in keyed if f in e), DEFAULTS.get(f, "key"))

            def ok(c: Any, f: str = f, keyed: list[dict[str, Any]] = keyed) -> bool:
                return all(t.matches({**e, f: c}) for t, e in zip(ts, keyed, strict=True))

            v = key_value(base, i, ok)
            if v is None:
                raise Unsolvable("no group key value keeps every rule's filter true")
            for e in keyed:
                e[f] = v
        for k, off in parts:
            evs.append(at(keyed[k], boundary + off))
        out[name] = evs
    return out
