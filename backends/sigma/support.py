"""What the Sigma backend can say, per IR construct (the fidelity matrix reads ``SUPPORT``), and
the correlation vocabulary of the Sigma correlation specification v2.1.0 with pySigma's
extensions (value_avg/value_percentile as metrics, the `not` of extended temporal conditions)."""

from __future__ import annotations

from typing import Any

from backends.base import Support
from backends.sigma.fields import sigma_number
from compiler import ir

SUPPORT: dict[type, Support] = {
    ir.Eq: Support(
        "exact",
        "`Field: value` (list = any, `|all` = every); case-insensitive by default as in "
        "siemc, `|cased` when cased; `*`, `?` and `\\` escaped; null -> `Field: null`; "
        "process.name -> `Image|endswith: '\\name'`; approximate with a number (or numeric "
        "string) value: Sigma backends compare the stored type, siemc reads numeric strings "
        "as numbers; approximate on ECS array fields (dns.resolved_ip, ...), as every "
        "filter, group-by key and measure on them: Sigma leaves list matching to the backend",
    ),
    ir.StrMatch: Support(
        "exact",
        "`|contains`, `|startswith`, `|endswith` (+`|cased`, `|all`); on a name kept in a "
        "path field (process.name in Image) startswith/contains become an anchored `|re|i`",
    ),
    ir.Regex: Support(
        "exact",
        "`|re|i` (Sigma's `re` is case-sensitive unless `|i`), `|re` when cased; the "
        "pattern is re-spelled in the syntax Python's re and RE2 share (pySigma validates "
        "with RE2 when google-re2 is installed); on a name kept in a path field it is "
        "approximate (matched against the path)",
    ),
    ir.Compare: Support(
        "approximate",
        "`|gt`, `|gte`, `|lt`, `|lte` with a number; Sigma backends compare the stored type "
        "(pySigma's SQLite: a port logged as the string '1050' is not >= 1024), siemc reads "
        "numeric strings as numbers",
    ),
    ir.Exists: Support("exact", "`Field|exists: true|false`"),
    ir.Cidr: Support("exact", "`|cidr` (host bits cleared, as siemc reads them)"),
    ir.InLookup: Support(
        "exact",
        "inlined at compile time: the lookup's rows become values of the rule (one column: "
        "`Field: [...]`, several: a list of maps), case-insensitive as siemc; a one-column "
        "lookup over the inlining limit stays a `%placeholder%` a pySigma pipeline binds",
    ),
    ir.And: Support("exact", "one selection map, or `and` between selections"),
    ir.Or: Support("exact", "a list of maps, value lists, or `or` between selections"),
    ir.Not: Support(
        "exact",
        "`not filter`: plain negation, so it holds when the field is missing, as in siemc "
        "(the spec leaves missing fields to backends; pySigma's sqlite, Splunk and Lucene "
        "backends negate this way)",
    ),
    ir.Literal_: Support("exact", "literals of derived fields are folded into the filter"),
    ir.FieldRef: Support(
        "exact",
        "a derived field that copies another is replaced by it in filters; Sigma rules compute "
        "nothing, so a computed key, measure or `compute` value cannot be expressed",
    ),
    ir.MeasureRef: Support(
        "exact", "the correlation metric (event count, value count, sum, avg, percentile)"
    ),
    ir.BinOp: Support(
        "approximate",
        "`measure <op> number` in `having` is the correlation `condition`; a conjunction "
        "keeps its one `>=`/`>` comparison of a metric Sigma computes and drops the rest "
        "(ratios, other measures: a declared superset)",
    ),
    ir.UnaryOp: Support(
        "unsupported",
        "Sigma correlation conditions have no negation or arithmetic; compile to esql, kql "
        "or splunk",
    ),
    ir.Call: Support(
        "approximate",
        "inlined where a filter reads it: lower()/upper() under case-insensitive tests "
        "(exact), coalesce() as alternatives on its arguments (exact), registered_domain() "
        "against a literal as a regular expression proven against the Public Suffix List "
        "(exact; a declared superset past 16 suffixes below the domain); other functions, "
        "and computed keys or measures, cannot be "
        "expressed",
    ),
    ir.Enrich: Support(
        "exact",
        "a test on an enriched column is inlined as a test of the lookup's match fields over "
        "the rows whose column passes it (the first matching row wins, as in siemc)",
    ),
    ir.Join: Support(
        "approximate",
        "a sequence or co-occurrence step over a join (direction before) becomes a chained "
        "correlation: a temporal pair of the event and its partner within `within`, which the "
        "detection's correlation references and groups by the joined fields (a declared "
        "superset: any partner in the window, either order); filters on joined fields, and "
        "joins under a single-event match or an aggregate, cannot be expressed",
    ),
    ir.Match: Support("exact", "the Sigma rule itself (level, ATT&CK tags)"),
    ir.Sequence: Support(
        "approximate",
        "a `temporal` correlation with group-by (aliases where steps name a key differently) "
        "and timespan = maxspan: a declared superset, since temporal_ordered leaves equal "
        "timestamps and which partial sequence completes to the backend; `until` is dropped "
        "(superset)",
    ),
    ir.Cooccurrence: Support(
        "approximate",
        "`temporal` correlation with group-by and timespan (superset: Sigma consumes no "
        "events; group-by values compare case-insensitively in pySigma's sqlite backend)",
    ),
    ir.Absence: Support(
        "approximate",
        "a `temporal` correlation with the pySigma extended condition "
        "`first and not missing` (not in the spec v2.1.0; the rule says so); a window that "
        "the backend checks from the first event forward (subset: pySigma's sqlite backend "
        "lets a missing event at the first event's own timestamp suppress it)",
    ),
    ir.Aggregate: Support(
        "approximate",
        "one measure with a `having` on it: count -> event_count, distinct -> value_count, "
        "sum -> value_sum, avg -> value_avg, percentile -> value_percentile; sliding "
        "timespan (tumbling windows approximated); ratios and several measures relax to the "
        "one monotone threshold Sigma computes (declared superset); min/max/stdev cannot be "
        "expressed",
    ),
    ir.Step: Support(
        "approximate",
        "a counted step as the specification's chained correlation: its rule, an "
        "event_count correlation (gte N, timespan = maxspan) named as the step, read by the "
        "sequence's temporal correlation; a declared superset (any N events in the timespan "
        "count, no consumption)",
    ),
    ir.Measure: Support(
        "unsupported",
        "a Sigma correlation measures every event of the rules it names: it has no "
        "condition on the counted events besides the rules' own detections",
    ),
    ir.FirstSeen: Support(
        "approximate",
        "dropped (a Sigma rule sees no history): every candidate alerts, a declared superset",
    ),
    ir.Rarity: Support(
        "approximate",
        "dropped (a Sigma rule sees no history): every candidate alerts, a declared superset",
    ),
    ir.Deviation: Support(
        "approximate",
        "dropped (a Sigma rule cannot compare with past windows): a declared superset",
    ),
}

# having comparison -> correlation condition operator; MIRROR flips `10 <= m` to `m >= 10`
CONDITION_OPS: dict[str, str] = {
    ">": "gt",
    ">=": "gte",
    "<": "lt",
    "<=": "lte",
    "==": "eq",
    "!=": "neq",
}
MIRROR: dict[str, str] = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
CORRELATION_TYPES: dict[str, str] = {
    "count": "event_count",
    "distinct": "value_count",
    "sum": "value_sum",
    "avg": "value_avg",
    "percentile": "value_percentile",
}
# Sigma timespans: an integer count of s, m, h or d (correlation spec, "Time Selection")
TIMESPAN_UNITS: tuple[tuple[str, int], ...] = (
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
)


def having_condition(having: ir.Expr | None, measure: str) -> tuple[str, Any] | None:
    """``measure <op> number`` (either side) as a Sigma condition operator and count."""
    if not isinstance(having, ir.BinOp) or having.op not in CONDITION_OPS:
        return None
    left, right = having.left, having.right
    op: str = having.op
    if isinstance(left, ir.Literal_):
        left, right, op = right, left, MIRROR[op]
    if (
        isinstance(left, ir.MeasureRef)
        and left.name == measure
        and isinstance(right, ir.Literal_)
        and isinstance(right.value, int | float)
        and not isinstance(right.value, bool)
    ):
        return CONDITION_OPS[op], sigma_number(right.value)
    return None


def timespan_text(ms: int) -> str | None:
    for unit, size in TIMESPAN_UNITS:
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return None
