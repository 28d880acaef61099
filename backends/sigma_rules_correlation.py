"""Sigma correlation rules for the Sigma backend: sequences -> ``temporal_ordered``,
co-occurrences -> ``temporal``, aggregates -> ``event_count`` / ``value_count`` / ``value_sum`` /
``value_avg`` / ``value_percentile``.

What the correlation specification (v2.0.2) leaves open, and siemc pins down
(docs/semantics.md), is reported as an approximation: the spec says a timespan "should not be
restricted to boundaries" (sliding), but not whether its end is inclusive, whether an event can
serve two alerts, how equal timestamps are ordered, or how group-by values compare. pySigma's
sqlite backend, the executable reference here, uses inclusive sliding windows (BETWEEN),
strictly later timestamps for later steps, no consumption, and lower-cased group-by values.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from backends.base import CompileError, Context
from backends.profiles import ecs_array_fields
from backends.sigma_rules_detection import (
    Cond,
    Node,
    SourceMap,
    map_field,
    multi_valued,
    sigma_number,
    source_map,
)
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


CONSUMPTION = (
    "siemc consumes the events of an alert (a burst of N events over a threshold T gives "
    "floor(N/T) alerts; a completed sequence or co-occurrence uses each event once), while the "
    "Sigma correlation spec defines no consumption and backends report every qualifying window "
    "per group, so the number of alerts for one burst can differ"
)
KEY_CASE = (
    "siemc compares group-by keys exactly (case-sensitively); the spec leaves it to the backend "
    "and pySigma's sqlite backend lower-cases them"
)


def _timespan_text(ms: int, units: tuple[tuple[str, int], ...]) -> str | None:
    for unit, size in units:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return None


class CorrelationMixin(ABC):
    CONDITION_OPS: ClassVar[dict[str, str]]
    MIRROR: ClassVar[dict[str, str]]
    CORRELATION_TYPES: ClassVar[dict[str, str]]
    TIMESPAN_UNITS: ClassVar[tuple[tuple[str, int], ...]]

    # ------------------------------------------------------------------ having
    @classmethod
    def having_condition(cls, having: ir.Expr | None, measure: str) -> tuple[str, Any] | None:
        """``measure <op> number`` (either side) as a Sigma condition operator and count."""
        if not isinstance(having, ir.BinOp) or having.op not in cls.CONDITION_OPS:
            return None
        left, right = having.left, having.right
        op: str = having.op
        if isinstance(left, ir.Literal_):
            left, right, op = right, left, cls.MIRROR[op]
        if (
            isinstance(left, ir.MeasureRef)
            and left.name == measure
            and isinstance(right, ir.Literal_)
            and isinstance(right.value, int | float)
            and not isinstance(right.value, bool)
        ):
            return cls.CONDITION_OPS[op], sigma_number(right.value)
        return None

    def _timespan(self, ctx: Context, ms: int, span: ir.Span) -> str:
        text = _timespan_text(ms, self.TIMESPAN_UNITS)
        if text is None:
            raise ctx.unsupported(
                f"a window of {ms} ms",
                "Sigma timespans are a whole number of seconds, minutes, hours or days",
                span,
                "round the window to whole seconds, or compile to eql, kql or splunk",
            )
        return text

    # ------------------------------------------------------------------ detections
    def _temporal(self, ctx: Context, det: ir.Sequence | ir.Cooccurrence) -> dict[str, Any]:
        if isinstance(det, ir.Sequence):
            ctx.approximate(
                "ordered sequence",
                "compiled to a Sigma temporal_ordered correlation; the bound is the same "
                "(last - first <= maxspan, inclusive, as pySigma's sqlite backend), but "
                "events with equal timestamps follow input order in siemc while the spec "
                "leaves ties open (the sqlite backend needs each step strictly later); siemc "
                "also lets a newer partial sequence replace an older one (EQL); "
                + CONSUMPTION
                + "; "
                + KEY_CASE,
                det.span,
            )
            return {"type": "temporal_ordered"}
        ctx.approximate(
            "unordered co-occurrence",
            "compiled to a Sigma temporal correlation with the same bound (max - min <= "
            "window, inclusive, as pySigma's sqlite backend); " + CONSUMPTION + "; " + KEY_CASE,
            det.span,
        )
        return {"type": "temporal"}

    def _aggregate(self, ctx: Context, det: ir.Aggregate, member: Member) -> dict[str, Any]:
        # support_errors() has rejected every shape this cannot handle
        measure = det.measures[0]
        if measure.span == ir.NO_SPAN:
            measure = dataclasses.replace(measure, span=det.span)
        kind = self.CORRELATION_TYPES[measure.kind]
        cond = self.having_condition(det.having, measure.name)
        op, count = cond if cond is not None else ("gte", 1)
        condition: dict[str, Any] = {op: count}
        window = det.window
        size = _timespan_text(window.size_ms, self.TIMESPAN_UNITS) or f"{window.size_ms}ms"
        if window.kind == "tumbling":
            ctx.approximate(
                "tumbling window aggregation",
                f"siemc's {size} windows are tumbling buckets aligned to the Unix epoch; a "
                f"Sigma timespan is a sliding window in the correlation spec ('should not be "
                f"restricted to boundaries', as pySigma's sqlite backend does it) but tumbling "
                f"buckets in pySigma's Splunk, ES|QL and Kusto backends: a sliding {size} "
                f"window also fires on events that straddle a bucket boundary; " + KEY_CASE,
                window.span,
            )
        else:
            ctx.approximate(
                "sliding window aggregation",
                f"the Sigma timespan is sliding like siemc's {size} window (inclusive in "
                f"pySigma's sqlite backend, as in siemc); " + CONSUMPTION + "; " + KEY_CASE,
                window.span,
            )
        if measure.field is not None and measure.field in ecs_array_fields():
            multi_valued(ctx, f"{measure.kind} measure", measure.field, measure.span)
        if measure.field is not None and measure.kind == "count":
            # `count: field` counts events that have the field: only those reach the rule
            member.extra.append(Cond(f"{self._measure_field(ctx, det, measure)}|exists", (True,)))
        elif measure.field is not None:
            condition = {"field": self._measure_field(ctx, det, measure)} | condition
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

    def _measure_field(self, ctx: Context, det: ir.Aggregate, measure: ir.Measure) -> str:
        assert measure.field is not None
        src = self._source_of(ctx, det.stream)
        f = map_field(ctx.profile, src, measure.field, measure.span)
        if f.basename is not None or f.values is not None:
            raise ctx.unsupported(
                f"a {measure.kind} of {measure.field}",
                f"{measure.field} is derived from {f.name}; a Sigma correlation reads fields "
                "as logged",
                measure.span,
                "compile to esql, kql or splunk",
            )
        return f.name

    def _source_of(self, ctx: Context, stream: str) -> SourceMap:
        root = self.root(ctx.analytic, stream)
        assert isinstance(root.source, ir.LogSource)
        return source_map(ctx.profile, root.source, root.span)

    @abstractmethod
    def root(self, analytic: ir.Analytic, stream: str) -> ir.Stream:
        """The logsource stream a (possibly derived) stream reads (the backend provides it)."""

    # ------------------------------------------------------------------ keys
    def _group_by(
        self, ctx: Context, members: list[Member], sources: dict[str, SourceMap]
    ) -> dict[str, Any]:
        """`group-by`, with `aliases` where steps name a key differently."""
        group_by: list[str] = []
        aliases: dict[str, dict[str, str]] = {}
        errors = []
        names: list[list[str]] = []
        for m in members:
            row = []
            for k in m.keys:
                try:
                    f = map_field(ctx.profile, sources[m.name], k, m.span)
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
                group_by.append(column[0])
                continue
            alias = re.sub(r"[^A-Za-z0-9_]", "_", key)
            while alias in used or alias in aliases:
                alias += "_key"
            aliases[alias] = {m.name: column[j] for j, m in enumerate(members)}
            group_by.append(alias)
        return {"group_by": group_by, "aliases": aliases}
