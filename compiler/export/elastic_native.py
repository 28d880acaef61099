"""Native Elastic ``threshold`` and ``new_terms`` rules over the source indices
(docs/export.md, *Elastic*): the rule's query is the stream's filter in KQL or Lucene
(backends/elastic_kuery), and Kibana's own aggregation says the detection.

* ``threshold`` for a tumbling aggregate of one logsource stream whose only measure is an event
  count or a distinct count compared with ``>=``/``>`` (or no ``having``), on at most 3 keys
  (the 8.19 schema's limit), and whose window is one clock unit (1m, 1h, 1d): the query frames
  the window that ended last, ``@timestamp >= "now-1<u>/<u>" and @timestamp < "now/<u>"``
  (Elasticsearch rounds date math in UTC), so each run, every window size, decides that one
  epoch-aligned window whatever Kibana's run phase, and Kibana's threshold groups and counts
  exactly as siemc does (docs/semantics.md, *Aggregates*: missing keys dropped, a
  multi-valued key in each of its groups, keys exact). A window of 5m or 15m has no date math
  rounding and stays an ES|QL rule. A distinct count is ``threshold.cardinality``, a
  HyperLogLog++ estimate: declared approximate (mixed), as the ES|QL backend declares
  COUNT_DISTINCT, so an exact ES|QL rule is preferred to it.
* ``new_terms`` for a match of one logsource stream with one ``first_seen`` on the same stream
  and fields (at most 3). Kibana's history is ``[history_window_start, run start)`` anchored at
  the run, siemc's ``[event - lookback, event)``: an occurrence between ``lookback`` and
  ``lookback + interval`` before the event is in siemc's history only, so the rule is a
  **superset**; a candidate field the filter does not require can be missing, where Kibana
  raises nothing and siemc alerts (a missing candidate is never seen): then **mixed**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backends.elastic_kuery import Declined, Query, lower_predicate, render
from backends.elastic_kuery.lower import flatten
from backends.elastic_kuery.nodes import And, Exists, Node, Or, Range, Term, Text
from compiler import ir
from compiler.evaluator.streams import logsource_predicate
from compiler.export import schedule as sch

UNITS = {sch.MINUTE: "m", sch.HOUR: "h", sch.DAY: "d"}
MAX_THRESHOLD_FIELDS = 3  # detection-rules' 8.19 schema (master allows 5)
MAX_NEW_TERMS_FIELDS = 3


@dataclass
class Native:
    """The type-specific part of a native rule; export adds the common fields."""

    fields: dict[str, Any]
    lookback_ms: int
    notes: list[str]
    direction: str = "exact"  # or superset / mixed
    detail: str = ""


def stream_node(a: ir.Analytic, name: str) -> Node:
    """The stream's logsource condition and filter as one query tree (raises Declined)."""
    st = a.stream(name)
    if not isinstance(st.source, ir.LogSource):
        raise Declined(f"stream '{name}' reads another stream")
    if st.join is not None or st.enrich or st.derive:
        raise Declined(
            f"stream '{name}' joins, enriches or derives fields, which a rule query cannot"
        )
    return lower_predicate(ir.And((logsource_predicate(st.source), st.filter)))


def stream_query(a: ir.Analytic, name: str, frame: Node | None = None) -> Query:
    """The stream's query, with the window frame when given (raises Declined)."""
    node = stream_node(a, name)
    return render(flatten(And((node, frame))) if frame is not None else node)


def _count_needed(having: ir.Expr | None, measure: str) -> int | None:
    """The smallest integer count the ``having`` accepts, or None when it is another shape."""
    if having is None:
        return 1
    if (
        isinstance(having, ir.BinOp)
        and having.op in (">=", ">")
        and isinstance(having.left, ir.MeasureRef)
        and having.left.name == measure
        and isinstance(having.right, ir.Literal_)
        and isinstance(having.right.value, int | float)
        and not isinstance(having.right.value, bool)
        and math.isfinite(having.right.value)
    ):
        v = having.right.value
        return math.floor(v) + 1 if having.op == ">" else math.ceil(v)
    return None


def threshold(a: ir.Analytic, s: sch.Schedule, reasons: list[str]) -> Native | None:
    d = a.detection
    if not isinstance(d, ir.Aggregate):
        return None
    why = _threshold_refusal(a, d, s)
    if why:
        reasons.append(f"native threshold: {why}")
        return None
    m = d.measures[0]
    needed = _count_needed(d.having, m.name)
    assert needed is not None
    unit = UNITS[d.window.size_ms]
    frame = And(
        (
            Range("@timestamp", "gte", f"now-1{unit}/{unit}"),
            Range("@timestamp", "lt", f"now/{unit}"),
        )
    )
    if m.kind == "count" and m.field and needed >= 1:  # counts the events that have the field
        frame = And((Exists(m.field), *frame.items))
    try:
        q = stream_query(a, d.stream, frame)
    except Declined as exc:
        reasons.append(f"native threshold: {exc}")
        return None
    spec: dict[str, Any] = {"field": list(d.keys), "value": max(needed, 1)}
    direction, detail = "exact", ""
    if m.kind == "distinct":
        assert m.field is not None
        spec["value"] = 1
        if needed >= 1:
            spec["cardinality"] = [{"field": m.field, "value": needed}]
            # as the ES|QL backend's COUNT_DISTINCT: the same estimate, declared the same way
            direction = "mixed"
            detail = (
                "distinct count as threshold.cardinality (mixed): Elasticsearch's cardinality "
                "aggregation is a HyperLogLog++ estimate (Kibana sets no precision_threshold: "
                "3000), exact below it barring hash collisions, approximate above"
            )
    size = sch.fmt_duration(d.window.size_ms)
    return Native(
        {"type": "threshold", "language": q.language, "query": q.text, "threshold": spec},
        # the framed window lies in [now - 2 windows, now] whatever the run's phase
        2 * d.window.size_ms,
        [
            f"native threshold rule ({q.language}): the query frames the {size} window that "
            "ended last (date math rounded in UTC), Kibana counts each group of it once"
        ],
        direction,
        detail,
    )


def _threshold_refusal(a: ir.Analytic, d: ir.Aggregate, s: sch.Schedule) -> str | None:
    if d.window.kind != "tumbling":
        return (
            "a sliding window consumes the events of each alert (docs/semantics.md), Kibana's "
            "threshold counts each run's range"
        )
    if a.baselines:
        return "the threshold rule has no baseline"
    if d.window.size_ms not in UNITS:
        return (
            f"a {sch.fmt_duration(d.window.size_ms)} window has no date math rounding "
            "(1m, 1h and 1d do) to frame it on the epoch"
        )
    if s.frequency_ms != d.window.size_ms:
        return "the rule must run once per window to decide each window once"
    if len(d.keys) > MAX_THRESHOLD_FIELDS:
        return f"at most {MAX_THRESHOLD_FIELDS} group keys (threshold.field)"
    if d.compute or len(d.measures) != 1:
        return "one measure, an event count or a distinct count, without compute"
    m = d.measures[0]
    if m.where is not None or m.kind not in ("count", "distinct"):
        return "one measure, an event count or a distinct count, without where"
    if _count_needed(d.having, m.name) is None:
        return f"having must be '{m.name} >= N' (or > N)"
    return None


def _required(n: Node) -> set[str]:
    """Fields every document the query matches has."""
    if isinstance(n, Text | Term | Range | Exists):
        return {n.field}
    if isinstance(n, And):
        return set().union(*(_required(x) for x in n.items)) if n.items else set()
    if isinstance(n, Or) and n.items:
        common = _required(n.items[0])
        for x in n.items[1:]:
            common &= _required(x)
        return common
    return set()


def new_terms(a: ir.Analytic, s: sch.Schedule, reasons: list[str]) -> Native | None:
    d = a.detection
    if len(a.baselines) != 1 or not isinstance(a.baselines[0], ir.FirstSeen):
        return None
    fs = a.baselines[0]
    if not isinstance(d, ir.Match):
        reasons.append(
            "native new_terms: only for a match (Kibana alerts once per new term, siemc once "
            "per window, sequence or co-occurrence)"
        )
        return None
    if fs.stream != d.stream or fs.keys != fs.current:
        reasons.append(
            "native new_terms: the history must be the match's own stream and fields "
            "(Kibana's history is the rule's query)"
        )
        return None
    if len(fs.keys) > MAX_NEW_TERMS_FIELDS:
        reasons.append(f"native new_terms: at most {MAX_NEW_TERMS_FIELDS} fields")
        return None
    if fs.lookback_ms < s.frequency_ms:
        reasons.append("native new_terms: the lookback must be at least the rule's interval")
        return None
    try:
        node = stream_node(a, d.stream)
    except Declined as exc:
        reasons.append(f"native new_terms: {exc}")
        return None
    q = render(node)
    missing = sorted(set(fs.keys) - _required(node))
    direction = "mixed" if missing else "superset"
    detail = (
        f"first_seen as a native new_terms rule ({direction}): Kibana's history "
        f"[now-{sch.fmt_duration(fs.lookback_ms)}, run start) is anchored at the run, not at "
        "each event, so an occurrence up to one interval older than the lookback is not seen"
        + (
            f"; {', '.join(missing)} may be missing, where Kibana raises nothing and siemc alerts"
            if missing
            else ""
        )
    )
    return Native(
        {
            "type": "new_terms",
            "language": q.language,
            "query": q.text,
            "new_terms_fields": list(fs.keys),
            "history_window_start": f"now-{sch.fmt_duration(fs.lookback_ms)}",
        },
        s.frequency_ms,  # runs tile time: each event is a candidate of one run
        [f"native new_terms rule ({q.language}) over the source indices"],
        direction,
        detail,
    )
