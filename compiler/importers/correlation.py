"""A Sigma correlation rule (spec v2) -> a siemc detection over the streams of its rules.

| Sigma type | siemc |
|---|---|
| event_count | threshold count (gte/gt), else a sliding aggregate with `having` |
| value_count | threshold distinct (gte/gt), else a sliding aggregate with `having` |
| value_sum / value_avg / value_percentile | sliding aggregate: sum / avg / percentile |
| temporal | cooccurrence of the rules' streams within the timespan |
| temporal_ordered | sequence of the rules' streams, maxspan the timespan |
| temporal_ordered reading an event_count | the counted rule's step takes N events (`count`) |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.rule import SigmaRule

from compiler.importers import rules as R
from compiler.importers.detection import Converter, merge
from compiler.importers.refusal import Refusal
from compiler.importers.sigma_source import RuleDoc
from compiler.lower import MAX_STEP_COUNT, format_duration

_OPS = {
    SigmaCorrelationConditionOperator.GTE: ">=",
    SigmaCorrelationConditionOperator.GT: ">",
    SigmaCorrelationConditionOperator.LTE: "<=",
    SigmaCorrelationConditionOperator.LT: "<",
    SigmaCorrelationConditionOperator.EQ: "==",
    SigmaCorrelationConditionOperator.NEQ: "!=",
}
_MEASURE = {
    SigmaCorrelationType.VALUE_SUM: "sum",
    SigmaCorrelationType.VALUE_AVG: "avg",
    SigmaCorrelationType.VALUE_PERCENTILE: "percentile",
}

Resolve = Callable[[str], RuleDoc | None]


def correlation(doc: RuleDoc, resolve: Resolve) -> tuple[dict[str, Any], list[str], list[RuleDoc]]:
    """(the analytic, its lookup names, the base rules it reads); raises Refusal."""
    c = doc.rule
    assert isinstance(c, SigmaCorrelationRule)
    if not isinstance(c.condition, SigmaCorrelationCondition | None):
        raise Refusal(
            "extended-condition",
            "an extended (boolean) correlation condition: the language's cooccurrence and "
            "sequence need every rule",
            ("correlation", "condition"),
        )
    ctype = c.type
    if ctype not in (*_MEASURE, *_TYPES_PLAIN):
        raise Refusal(
            f"correlation-{ctype.name.lower()}",
            f"correlation type {ctype.name.lower()}: "
            + (
                "a median of an even count is the mean of the two middle values; the "
                "language's percentile is the nearest rank"
                if ctype == SigmaCorrelationType.VALUE_MEDIAN
                else "not a Sigma v2 type the language can say"
            ),
            ("correlation", "type"),
        )
    bases: list[RuleDoc] = []
    counted: dict[int, _Counted] = {}  # rule position -> the event_count it reads
    for i, ref in enumerate(c.rules or []):
        base = resolve(str(ref.reference))
        if base is None:
            raise Refusal(
                "unresolved-reference",
                f"correlation refers to rule '{ref.reference}', which none of the imported "
                "files holds",
                ("correlation", "rules", i),
                key=False,
            )
        if isinstance(base.rule, SigmaCorrelationRule):
            child = _counted_child(c, base, str(ref.reference), i, resolve)
            counted[i] = child
            base = child.base
        bases.append(base)
    shared = Converter(lambda n, w: n, lambda *a: ())
    names = _stream_names(bases)
    streams: dict[str, Any] = {}
    for name, base in zip(names, bases, strict=True):
        try:
            streams[name] = R.stream(base, R.converter_for(base, shared))
        except Refusal as exc:
            exc.doc = exc.doc or base
            raise
    keys = [counted[i].keys if i in counted else _keys(c, base, i) for i, base in enumerate(bases)]
    span = max([int(c.timespan.seconds), *(x.seconds for x in counted.values())])
    window = format_duration(span * 1000)
    if ctype in (SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED):
        detect = _temporal(c, names, keys, window)
        for i, child in counted.items():
            detect["sequence"]["steps"][i]["count"] = {"gte": child.count}
    else:
        streams, stream = _one_stream(c, bases, names, streams, keys)
        detect = _aggregate(c, bases, stream, keys[0], window)
    platforms = sorted(
        {p for b in bases if isinstance(b.rule, SigmaRule) for p in R.platforms_of(b.rule)}
    )
    analytic = {**R.metadata(doc, platforms), "streams": streams, "detect": detect}
    return analytic, shared.lookups, bases


_TYPES_PLAIN = (
    SigmaCorrelationType.EVENT_COUNT,
    SigmaCorrelationType.VALUE_COUNT,
    SigmaCorrelationType.TEMPORAL,
    SigmaCorrelationType.TEMPORAL_ORDERED,
)


def _stream_names(bases: list[RuleDoc]) -> list[str]:
    out: list[str] = []
    for i, b in enumerate(bases):
        name = R.slug(str(b.rule.name or b.rule.title))[:40].strip("_")
        if not name or not name[0].isalpha() or name in out:
            name = f"rule{i + 1}"
        out.append(name)
    return out


def _keys(c: SigmaCorrelationRule, base: RuleDoc, i: int) -> list[str]:
    """The ECS group-by fields of one referenced rule (aliases give each rule its own field)."""
    mapper = R.field_mapper(base)
    out = []
    for g in c.group_by or []:
        alias = c.aliases.aliases.get(g) if c.aliases else None
        sigma_field = g
        if alias is not None:
            hits = [f for ref, f in alias.mapping.items() if _refers(ref, base)]
            if not hits:
                raise Refusal(
                    "alias-missing",
                    f"alias '{g}' names no field of rule '{base.rule.name or base.rule.title}'",
                    ("correlation", "aliases", g),
                )
            sigma_field = hits[0]
        out.append(mapper(sigma_field, ("correlation", "group-by")))
    return out


def _refers(ref: Any, base: RuleDoc) -> bool:
    r = str(getattr(ref, "reference", ref))
    return r in (str(base.rule.id), str(base.rule.name))


def _condition(c: SigmaCorrelationRule) -> SigmaCorrelationCondition:
    cond = c.condition
    if not isinstance(cond, SigmaCorrelationCondition):
        raise Refusal("no-condition", "the correlation has no condition", ("correlation",))
    return cond


def _temporal(
    c: SigmaCorrelationRule, names: list[str], keys: list[list[str]], window: str
) -> dict[str, Any]:
    cond = c.condition
    if isinstance(cond, SigmaCorrelationCondition) and not (
        cond.op == SigmaCorrelationConditionOperator.GTE and cond.count == len(names)
    ):
        raise Refusal(
            "temporal-condition",
            f"a temporal condition other than 'gte: {len(names)}' (every rule): the language's "
            "cooccurrence and sequence need every rule",
            ("correlation", "condition"),
        )
    if not keys[0]:
        raise Refusal(
            "temporal-no-group-by",
            "a temporal correlation without group-by: the language correlates events by keys",
            ("correlation",),
        )
    steps = []
    for name, k in zip(names, keys, strict=True):
        step: dict[str, Any] = {"stream": name}
        if k != keys[0]:
            step["by"] = k
        steps.append(step)
    if c.type == SigmaCorrelationType.TEMPORAL_ORDERED:
        return {"sequence": {"by": keys[0], "maxspan": window, "steps": steps}}
    members: list[Any] = [s if len(s) > 1 else s["stream"] for s in steps]
    return {"cooccurrence": {"by": keys[0], "window": window, "streams": members}}


def _one_stream(
    c: SigmaCorrelationRule,
    bases: list[RuleDoc],
    names: list[str],
    streams: dict[str, Any],
    keys: list[list[str]],
) -> tuple[dict[str, Any], str]:
    """An aggregate reads one stream: the rules' events must come from one logsource, and
    the stream keeps an event any of the rules matches."""
    if len(bases) == 1:
        return streams, names[0]
    first = streams[names[0]]
    for name, k in zip(names, keys, strict=True):
        if streams[name]["logsource"] != first["logsource"] or k != keys[0]:
            raise Refusal(
                "aggregate-mixed-sources",
                "an aggregating correlation over rules of different logsources or group-by "
                "fields: an aggregate reads one stream",
                ("correlation", "rules"),
            )
    derive: dict[str, str] = {}
    for s in streams.values():
        derive.update(s.get("derive", {}))
    merged: dict[str, Any] = {"logsource": first["logsource"]}
    if derive:
        merged["derive"] = derive
    merged["where"] = merge("any", [streams[n]["where"] for n in names])
    return {"events": merged}, "events"


def _aggregate(
    c: SigmaCorrelationRule, bases: list[RuleDoc], stream: str, by: list[str], window: str
) -> dict[str, Any]:
    cond = _condition(c)
    op = _OPS[cond.op]
    field = None
    if c.type != SigmaCorrelationType.EVENT_COUNT:
        refs = cond.fieldref if isinstance(cond.fieldref, list) else [cond.fieldref]
        if len(refs) != 1 or refs[0] is None:
            raise Refusal(
                "condition-field",
                "the condition names no single field",
                ("correlation", "condition"),
            )
        fields = {
            R.field_mapper(b)(str(refs[0]), ("correlation", "condition", "field")) for b in bases
        }
        if len(fields) != 1:
            raise Refusal(
                "condition-field",
                "the condition's field maps to different ECS fields in the rules",
                ("correlation", "condition", "field"),
            )
        field = fields.pop()
    n = cond.count
    counting = c.type in (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT)
    if (
        counting
        and op in (">=", ">")
        and float(n).is_integer()
        and int(n) >= (1 if op == ">=" else 0)
    ):
        bound = {"gte" if op == ">=" else "gt": int(n)}
        measure: dict[str, Any] = (
            {"count": bound} if field is None else {"distinct": {"field": field, **bound}}
        )
        return {"threshold": {"stream": stream, "by": by, "window": window, **measure}}
    m: dict[str, Any]
    if c.type == SigmaCorrelationType.EVENT_COUNT:
        name, m = "event_count", {"count": True}
    elif c.type == SigmaCorrelationType.VALUE_COUNT:
        name, m = "value_count", {"distinct": field}
    else:
        kind = _MEASURE[c.type]
        name, m = c.type.name.lower(), {kind: field}
        if kind == "percentile":
            if cond.percentile is None:
                raise Refusal(
                    "percentile",
                    "value_percentile without 'percentile'",
                    ("correlation", "condition"),
                )
            m["p"] = cond.percentile
    agg = {
        "stream": stream,
        "window": {"kind": "sliding", "size": window},
        "by": by,
        "measures": {name: m},
        "having": f"{name} {op} {int(n) if float(n).is_integer() else n}",
    }
    return {"aggregate": agg}


# --------------------------------------------------------------------------- chained correlations
@dataclass(frozen=True)
class _Counted:
    """An event_count correlation a temporal_ordered one reads: a counted sequence step."""

    base: RuleDoc  # the rule whose events it counts
    count: int  # how many events the step takes
    keys: list[str]  # its ECS group-by fields
    seconds: int  # its timespan


def chained_step(c: SigmaCorrelationRule, child: Any) -> bool:
    """Whether ``child``, a rule ``c`` reads, is a correlation that becomes a counted step of
    ``c`` (and so, unless it says `generate: true`, no analytic of its own)."""
    return (
        isinstance(child, SigmaCorrelationRule)
        and not child.generate
        and c.type == SigmaCorrelationType.TEMPORAL_ORDERED
        and child.type == SigmaCorrelationType.EVENT_COUNT
    )


def _counted_child(
    c: SigmaCorrelationRule, child: RuleDoc, ref: str, i: int, resolve: Resolve
) -> _Counted:
    """The Sigma specification's chained correlation (an event_count of failed logons read by a
    temporal_ordered with the successful logon) as a counted sequence step; any other chain is
    refused. The counted events and the later steps lie within one maxspan, the longer of the
    two timespans (docs/import.md)."""
    where = ("correlation", "rules", i)
    k = child.rule
    assert isinstance(k, SigmaCorrelationRule)

    def refuse(why: str) -> Refusal:
        return Refusal(
            "chained-correlation",
            f"rule '{ref}' is itself a correlation: {why}",
            where,
            key=False,
        )

    if (
        c.type != SigmaCorrelationType.TEMPORAL_ORDERED
        or k.type != SigmaCorrelationType.EVENT_COUNT
    ):
        raise refuse(
            "the language feeds only an event_count into a temporal_ordered correlation (a "
            "counted sequence step: N events, then the next rule)"
        )
    cond = k.condition
    if not (
        isinstance(cond, SigmaCorrelationCondition)
        and cond.op in (SigmaCorrelationConditionOperator.GTE, SigmaCorrelationConditionOperator.GT)
        and float(cond.count).is_integer()
    ):
        raise refuse(
            "a counted step takes at least (gte) or more than (gt) a whole number of events"
        )
    n = int(cond.count) + (1 if cond.op == SigmaCorrelationConditionOperator.GT else 0)
    if not 2 <= n <= MAX_STEP_COUNT:
        raise refuse(f"a counted step takes from 2 to {MAX_STEP_COUNT} events, this one {n}")
    inner = list(k.rules or [])
    if len(inner) != 1 or k.aliases.aliases:
        raise refuse("the event_count must count the events of one rule, without aliases")
    base = resolve(str(inner[0].reference))
    if base is None or isinstance(base.rule, SigmaCorrelationRule):
        raise refuse(f"its rule '{inner[0].reference}' must be a Sigma rule of the imported files")
    outer = list(c.group_by or [])
    if list(k.group_by or []) != outer or any(
        c.aliases and c.aliases.aliases.get(g) is not None for g in outer
    ):
        raise refuse("its group-by must be the same fields as the chain's, without aliases")
    mapper = R.field_mapper(base)
    keys = [mapper(g, ("correlation", "group-by")) for g in outer]
    return _Counted(base, n, keys, int(k.timespan.seconds))
