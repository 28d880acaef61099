"""Sigma correlation rules: sequences and co-occurrences -> ``temporal``, absences -> ``temporal``
with pySigma's extended condition ``first and not missing``, aggregates -> ``event_count`` /
``value_count`` / ``value_sum`` / ``value_avg`` / ``value_percentile``.

What the correlation specification (v2.1.0) leaves open, and siemc pins down
(docs/semantics.md), is declared with the direction it errs in: the spec says a timespan "should
not be restricted to boundaries" (sliding), but not whether its end is inclusive, whether an
event can serve two alerts, how equal timestamps are ordered, or how group-by values compare.
pySigma's sqlite backend, the executable reference here, uses inclusive sliding windows
(BETWEEN), strictly later timestamps for later steps, no consumption, and lower-cased group-by
values.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from backends.base import CompileError, Context
from backends.profiles import ecs_array_fields
from backends.sigma.fields import SourceMap, map_field, multi_valued
from backends.sigma.inline import Env
from backends.sigma.support import CORRELATION_TYPES, having_condition, timespan_text
from backends.sigma.tree import Cond, Node
from compiler import ir


@dataclass
class Member:
    """A Sigma rule a correlation references: one stream (a step, member or aggregate input)."""

    name: str  # the rule's `name`, unique in a collection
    stream: str
    key: str  # what its id is derived from: the stream, or stream/alias for a repeated stream
    keys: tuple[str, ...]
    span: ir.Span
    extra: list[Node] = field(default_factory=list)  # conditions only this rule adds
    # keys read from another rule's source (a chained join: the partner's fields)
    key_sources: dict[str, tuple[SourceMap, Env]] = field(default_factory=dict)


NO_CONSUMPTION = (
    "siemc consumes the events of an alert (a completed sequence or co-occurrence uses each "
    "event once), while the Sigma correlation spec defines no consumption and backends report "
    "every qualifying window per group: more alerts, never fewer"
)
CONSUMPTION = (
    "siemc consumes the events of an alert (a burst of N events over a threshold T gives "
    "floor(N/T) alerts), while the Sigma correlation spec defines no consumption and backends "
    "report every qualifying window per group, whose first event can differ from siemc's"
)
KEY_CASE = (
    "siemc compares group-by keys exactly (case-sensitively); the spec leaves it to the backend "
    "and pySigma's sqlite backend lower-cases them, merging keys that differ only by case"
)
EXTENSION_NOTE = (
    "the correlation condition '{expr}' is a pySigma extension (extended temporal conditions, "
    "pySigma >= 1.1), not part of the Sigma correlation specification v2.1.0: other tools may "
    "reject it"
)


def timespan(ctx: Context, ms: int, span: ir.Span) -> str:
    text = timespan_text(ms)
    if text is None:
        raise ctx.unsupported(
            f"a window of {ms} ms",
            "Sigma timespans are a whole number of seconds, minutes, hours or days",
            span,
            "round the window to whole seconds, or compile to eql, kql or splunk",
        )
    return text


# ---------------------------------------------------------------------- detections
def temporal(ctx: Context, det: ir.Sequence | ir.Cooccurrence) -> dict[str, Any]:
    if isinstance(det, ir.Sequence):
        ctx.approximate(
            "ordered sequence",
            "compiled to a Sigma temporal correlation (the steps within maxspan, last - first "
            "<= maxspan inclusive, in any order): temporal_ordered leaves equal timestamps and "
            "which earlier step pairs with a later one to the backend (pySigma's sqlite "
            "backend needs each step strictly later and pairs the earliest first step), so it "
            "could miss sequences siemc reports; unordered it fires on every siemc sequence, "
            "and also on steps in another order; " + NO_CONSUMPTION + "; " + KEY_CASE,
            det.span,
            direction="superset",
        )
        return {"type": "temporal"}
    ctx.approximate(
        "unordered co-occurrence",
        "compiled to a Sigma temporal correlation with the same bound (max - min <= window, "
        "inclusive, as pySigma's sqlite backend); " + NO_CONSUMPTION + "; " + KEY_CASE,
        det.span,
        direction="superset",
    )
    return {"type": "temporal"}


def absence(ctx: Context, det: ir.Absence, first: str, missing: str) -> dict[str, Any]:
    expr = f"{first} and not {missing}"
    # pySigma's sqlite backend anchors a window [t, t + timespan] at each first event (one per
    # key and timestamp), looks for missing events BETWEEN its ends, and decides it once the
    # observation end reaches t + timespan, as siemc does at `now`. Every difference left
    # removes alerts.
    ctx.approximate(
        "absence",
        "compiled to a temporal correlation with pySigma's extended condition "
        f"'{expr}' (not in the Sigma specification v2.1.0): pySigma's sqlite backend checks "
        "a window from each first event forward, as siemc, but a missing event at the first "
        "event's own timestamp suppresses it (siemc: only a strictly later one, since no SIEM "
        "orders events of one timestamp), first events of one key at one timestamp make one "
        "alert, and " + KEY_CASE + ", so a missing event of another case suppresses: fewer "
        "alerts, never more",
        det.span,
        direction="subset",
    )
    return {"type": "temporal", "condition": expr}


def aggregate(
    ctx: Context, det: ir.Aggregate, member: Member, src: SourceMap, env: Env
) -> dict[str, Any]:
    # checks.support_errors has rejected every shape this cannot handle
    measure = det.measures[0]
    if measure.span == ir.NO_SPAN:
        measure = dataclasses.replace(measure, span=det.span)
    kind = CORRELATION_TYPES[measure.kind]
    cond = having_condition(det.having, measure.name)
    op, count = cond if cond is not None else ("gte", 1)
    condition: dict[str, Any] = {op: count}
    window = det.window
    size = timespan_text(window.size_ms) or f"{window.size_ms}ms"
    # a sliding window ending at a bucket's last event holds the whole bucket: a metric that
    # only grows with more events, tested against a lower bound, fires on it too
    counted = measure.field is not None and measure.field.endswith((".bytes", ".packets"))
    growing = op in ("gt", "gte") and (
        measure.kind in ("count", "distinct") or (measure.kind == "sum" and counted)
    )
    if window.kind == "tumbling":
        ctx.approximate(
            "tumbling window aggregation",
            f"siemc's {size} windows are tumbling buckets aligned to the Unix epoch; a Sigma "
            f"timespan is a sliding window in the correlation spec ('should not be restricted "
            f"to boundaries', as pySigma's sqlite backend does it) but tumbling buckets in "
            f"pySigma's Splunk, ES|QL and Kusto backends: a sliding {size} window also fires "
            f"on events that straddle a bucket boundary, and reports the metric of its own "
            f"window"
            + (
                " (a superset: the metric only grows with more events, since counts, byte and "
                "packet counts are never negative)"
                if growing
                else ""
            )
            + "; "
            + KEY_CASE,
            window.span,
            direction="superset" if growing else "mixed",
        )
    else:
        ctx.approximate(
            "sliding window aggregation",
            f"the Sigma timespan is sliding like siemc's {size} window (inclusive in pySigma's "
            f"sqlite backend, as in siemc); " + CONSUMPTION + "; " + KEY_CASE,
            window.span,
        )
    if measure.field is not None and measure.field in ecs_array_fields():
        multi_valued(ctx, f"{measure.kind} measure", measure.field, measure.span)
    if measure.field is not None and measure.kind == "count":
        # `count: field` counts events that have the field: only those reach the rule
        member.extra.append(Cond(f"{measure_field(ctx, measure, src, env)}|exists", (True,)))
    elif measure.field is not None:
        condition = {"field": measure_field(ctx, measure, src, env)} | condition
    if measure.kind == "distinct":
        ctx.approximate(
            "distinct count",
            "siemc counts distinct values exactly (case-sensitively, numeric strings as "
            "numbers); Sigma's value_count leaves value comparison to the backend",
            measure.span,
        )
    if measure.kind == "percentile":
        assert measure.p is not None
        condition["percentile"] = int(measure.p)
        ctx.approximate(
            "percentile",
            "siemc's percentile is nearest-rank; value_percentile (a pySigma extension) "
            "uses the percentile function of each backend's engine, often interpolated",
            measure.span,
        )
    return {"type": kind, "condition": condition}


def measure_field(ctx: Context, measure: ir.Measure, src: SourceMap, env: Env) -> str:
    assert measure.field is not None
    stored = stored_field(env, measure.field)
    f = None if stored is None else map_field(ctx.profile, src, stored, measure.span)
    if f is None or f.basename is not None or f.values is not None:
        raise ctx.unsupported(
            f"a {measure.kind} of {measure.field}",
            f"{measure.field} is computed from other fields; a Sigma correlation reads fields "
            "as logged",
            measure.span,
            "compile to esql, kql or splunk",
        )
    return f.name


def stored_field(env: Env, name: str) -> str | None:
    """The logged field ``name`` stands for (itself, or the field a derive copies), else None."""
    e = env.resolve(name)
    return e.name if isinstance(e, ir.FieldRef) and e.step is None else None


# ---------------------------------------------------------------------- keys
def group_by(
    ctx: Context,
    members: list[Member],
    sources: dict[str, SourceMap],
    envs: dict[str, Env],
) -> dict[str, Any]:
    """`group-by`, with `aliases` where steps name a key differently."""
    group: list[str] = []
    aliases: dict[str, dict[str, str]] = {}
    errors = []
    names: list[list[str]] = []
    for m in members:
        row = []
        for k in m.keys:
            src, env = m.key_sources.get(k, (sources[m.name], envs[m.name]))
            stored = stored_field(env, k)
            if stored is None:
                errors += ctx.unsupported(
                    f"the computed key {k}",
                    "a Sigma correlation groups by fields as logged and cannot compute one",
                    m.span,
                    "key on a logged field; over a tumbling window, with no `having` or lower "
                    "bounds on counts or byte sums, the rule groups by the logged keys alone (a "
                    "declared superset); or compile to esql, kql or splunk",
                ).diagnostics
                continue
            try:
                f = map_field(ctx.profile, src, stored, m.span)
            except CompileError as exc:
                errors += exc.diagnostics
                continue
            if k in ecs_array_fields():
                multi_valued(ctx, "group-by key", k, m.span)
            if f.basename is not None:
                ctx.approximate(
                    f"key {k}",
                    f"Sigma groups by {f.name}, the full path {k} is the last part of: "
                    "one program started from two paths makes two groups",
                    m.span,
                )
            row.append(f.name)
        names.append(row)
    if errors:
        raise CompileError(errors)
    used = {n for row in names for n in row}
    for i, key in enumerate(members[0].keys):
        column = [row[i] for row in names]
        if len(set(column)) == 1:
            group.append(column[0])
            continue
        alias = re.sub(r"[^A-Za-z0-9_]", "_", key)
        while alias in used or alias in aliases:
            alias += "_key"
        aliases[alias] = {m.name: column[j] for j, m in enumerate(members)}
        group.append(alias)
    return {"group_by": group, "aliases": aliases}
