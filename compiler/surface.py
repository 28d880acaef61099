"""The surface model: what an analytic file may say, validated for shape only.

Pydantic v2 models with ``extra="forbid"``. Tagged choices (``detect``, baselines, measures) are
discriminated unions keyed by the one tag key the mapping carries. Names, expressions, filters
and units are only checked for shape here; :mod:`compiler.lower` resolves them with positions.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from compiler.timeutil import parse_duration

ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ANALYTIC_RE = r"^AN\d{4}$"
TECHNIQUE_RE = r"^T\d{4}(\.\d{3})?$"
TACTIC_RE = r"^(TA\d{4}|[a-z]+(-[a-z]+)*)$"
DURATION_RE = r"^[0-9]+(ms|s|m|h|d|w)$"


def _duration(v: str) -> str:
    try:
        parse_duration(v)
    except ValueError as exc:
        raise PydanticCustomError("duration", "{msg}", {"msg": str(exc)}) from None
    return v


def _attack(pattern: str, what: str) -> Any:
    rx = re.compile(pattern)

    def check(v: str) -> str:
        if not rx.match(v):
            raise PydanticCustomError(
                "attack_id", "'{v}' is not a valid {what}", {"v": v, "what": what}
            )
        return v

    return AfterValidator(check)


def _duration_text(v: Any) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        raise PydanticCustomError(
            "duration",
            "a duration needs a unit: write {v}s, {v}m, ... (units: ms, s, m, h, d, w)",
            {"v": v},
        )
    return v


Duration = Annotated[
    str,
    BeforeValidator(_duration_text),
    AfterValidator(_duration),
    Field(json_schema_extra={"pattern": DURATION_RE}),
]
Name = Annotated[str, Field(min_length=1)]

# The identifier grammar (docs/language.md, "Names"). Every name an analytic introduces or
# references reaches a query of every target, so it is held to what all five can write without
# changing the query's structure: a field name is ECS-style dotted segments of ASCII letters,
# digits and `_` (no segment starts with a digit; the first may start with `@`, as in
# `@timestamp`); a stream, lookup, lookup CSV column, measure, compute or step name is one such
# segment without `@` (a column has no dots: ES|QL joins on a derived key column per column).
# Not allowed, because some target gives them a meaning in a name: `*` (a wildcard in ES|QL
# KEEP/DROP and SPL `fields`), `|` (a pipe in SPL, ES|QL and KQL), quotes and backticks (the
# quoting characters of KQL `['..']`, ES|QL and EQL `` `..` ``, SPL eval `'..'`), whitespace and
# control characters (they end a token or a line), and `-` (SPL's `lookup` and `search` commands
# have no quoting that Splunk documents for it in a field name).
FIELD_RE = r"^@?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$"
NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
FIELD_CHARS = (
    "ASCII letters, digits and '_' in segments joined by '.', no segment starting with a digit, "
    "'@' allowed only as the first character (e.g. process.name, @timestamp)"
)
NAME_CHARS = "ASCII letters, digits and '_', not starting with a digit (e.g. proc_start)"
_FIELD_RX = re.compile(FIELD_RE)
_NAME_RX = re.compile(NAME_RE)


# Prefixes of the columns, lets and temporaries siemc's queries make (SPL and ES|QL `siemc_*`,
# KQL `__*`): a name of the analytic spelled like one would be overwritten by them or overwrite
# them, so they are reserved.
RESERVED_PREFIXES = ("siemc_", "__")
# A measure is a column beside the window start of its row (ES|QL `window`, SPL `_time`, and
# Splunk's other `_` fields).
RESERVED_MEASURES = ("window",)


# The clause words of SPL's `lookup` (AS, OUTPUT, OUTPUTNEW) and `stats` (AS, BY, OVER) commands,
# read in any case wherever a field name stands there; the Search Reference documents no quoting
# of a field name in these commands, so a name spelled like one cannot be made safe.
SPL_CLAUSE_WORDS = ("as", "by", "over", "output", "outputnew")


def _reserved(name: str) -> str | None:
    if name.lower() in SPL_CLAUSE_WORDS:
        return f"'{name}' is a clause word of Splunk's lookup and stats commands"
    head = name.split(".")[0].lstrip("@").lower()
    for prefix in RESERVED_PREFIXES:
        if head.startswith(prefix):
            return (
                f"names starting with '{prefix}' are reserved for the columns siemc's queries make"
            )
    return None


def field_name_problem(name: str) -> str | None:
    """Why ``name`` is not a field name of the identifier grammar, or None when it is one."""
    if not _FIELD_RX.match(name):
        return f"invalid field name {name!r}: use {FIELD_CHARS}"
    reserved = _reserved(name)
    return f"invalid field name {name!r}: {reserved}" if reserved else None


def plain_name_problem(name: str, what: str) -> str | None:
    """Why ``name`` is not a plain name (stream, lookup, column, measure, alias), or None."""
    if not _NAME_RX.match(name):
        return f"invalid {what} name {name!r}: use {NAME_CHARS}"
    reserved = _reserved(name)
    if reserved is None and what == "measure" and (name in RESERVED_MEASURES or name[0] == "_"):
        reserved = "'window' and names starting with '_' name the window columns of targets"
    if reserved is None and what == "lookup column" and name[0] == "_":
        # Elasticsearch keeps names starting with `_` for metadata fields: ES|QL's LOOKUP JOIN
        # does not add such a column of the lookup index to the rows.
        reserved = "a lookup column cannot start with '_' (Elasticsearch metadata names)"
    return f"invalid {what} name {name!r}: {reserved}" if reserved else None


def _identifier(kind: str) -> Any:
    def check(v: str) -> str:
        problem = field_name_problem(v) if kind == "field" else plain_name_problem(v, kind)
        if problem is not None:
            raise PydanticCustomError("identifier", "{msg}", {"msg": problem})
        return v

    return AfterValidator(check)


_FIELD_SCHEMA = Field(min_length=1, json_schema_extra={"pattern": FIELD_RE})
_NAME_SCHEMA = Field(min_length=1, json_schema_extra={"pattern": NAME_RE})
FieldName = Annotated[str, _FIELD_SCHEMA, _identifier("field")]
ColumnName = Annotated[str, _NAME_SCHEMA, _identifier("lookup column")]
StreamName = Annotated[str, _NAME_SCHEMA, _identifier("stream")]
LookupName = Annotated[str, _NAME_SCHEMA, _identifier("lookup")]
MeasureName = Annotated[str, _NAME_SCHEMA, _identifier("measure")]
AliasName = Annotated[str, _NAME_SCHEMA, _identifier("step alias")]
Scalar = str | int | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def doc(description: str, *examples: Any, **field: Any) -> Any:
    """A field with the description and examples editors show (``siemc schema``; a test
    requires both on every property)."""
    return Field(description=description, examples=list(examples), **field)


# --------------------------------------------------------------------------- metadata
class Attack(Strict):
    analytics: list[Annotated[str, _attack(ANALYTIC_RE, "MITRE analytic id (AN1234)")]] = doc(
        "MITRE ATT&CK detection analytic ids (AN followed by four digits) this analytic "
        "implements.",
        ["AN1511"],
        default=[],
    )
    # may be empty: a rule imported from Sigma keeps the tags its author gave, which name no
    # technique in one rule of eight of the SigmaHQ corpus
    techniques: list[
        Annotated[str, _attack(TECHNIQUE_RE, "ATT&CK technique id (T1234 or T1234.001)")]
    ] = doc(
        "ATT&CK technique or sub-technique ids the analytic detects; exports derive the "
        "tactics from them.",
        ["T1567.002"],
        ["T1059.001", "T1105"],
        default=[],
    )
    # Exports derive tactics from the techniques; naming them here chooses among a technique's
    # tactics (T1071 is command-and-control only, but an analytic may file it as exfiltration).
    tactics: list[
        Annotated[str, _attack(TACTIC_RE, "ATT&CK tactic id or short name (TA0010, exfiltration)")]
    ] = doc(
        "ATT&CK tactics (ids or short names) to file the techniques under, when a technique "
        "belongs to several; default: each technique's own tactics.",
        ["exfiltration"],
        ["TA0010"],
        default=[],
    )


# --------------------------------------------------------------------------- streams
class LogSourceM(Strict):
    category: str | None = doc(
        "Sigma logsource category, selecting events by their ECS categorisation "
        "(docs/language.md, Logsources).",
        "process_creation",
        "network_connection",
        default=None,
    )
    product: str | None = doc(
        "windows, linux or macos (host.os.type), or the event.module of a log source "
        "(zeek, sysmon, auditd).",
        "windows",
        "zeek",
        default=None,
    )
    service: str | None = doc(
        "The dataset of the product: event.dataset is <product>.<service>.",
        "conn",
        "dns",
        default=None,
    )

    @model_validator(mode="after")
    def _not_empty(self) -> LogSourceM:
        if not (self.category or self.product or self.service):
            raise PydanticCustomError(
                "one_of", "a logsource needs at least one of category, product, service"
            )
        return self


class LookupM(Strict):
    file: Name = doc(
        "A UTF-8 CSV file with a header row, relative to the analytic's folder and inside "
        "the analytics root.",
        "lookups/host_inventory.csv",
    )
    description: str | None = doc(
        "What the table holds and who maintains it.",
        "Approved cloud storage domains per host role",
        default=None,
    )


class EnrichM(Strict):
    lookup: Name = doc("The lookup (under `lookups:`) to join the events to.", "inventory")
    match: dict[ColumnName, FieldName] = doc(
        "CSV column -> event field: a row matches when every column equals its field "
        "(case-insensitively).",
        {"host": "host.name"},
        min_length=1,
    )
    add: dict[ColumnName, FieldName] = doc(
        "CSV column -> new event field, copied from the matching row.",
        {"role": "labels.host_role"},
        min_length=1,
    )


class JoinM(Strict):
    stream: Name = doc("The other stream whose events are joined to this one.", "endpoint_conn")
    on: list[FieldName] = doc(
        "Fields that must be equal (exactly, as text) in both events.",
        ["source.ip", "source.port", "destination.ip", "destination.port"],
        min_length=1,
    )
    within: Duration = doc(
        "The largest time between the two events (it tolerates clock skew).", "5m", "1d"
    )
    direction: Literal["around", "before", "after"] = doc(
        "around: the partner may come before or after; before: it precedes; after: it follows.",
        "around",
        default="around",
    )
    add: list[FieldName] = doc(
        "Fields copied from the partner event (the nearest in time).",
        ["process.entity_id", "process.name", "host.name"],
        default=[],
    )


class StreamM(Strict):
    logsource: LogSourceM | None = doc(
        "Which events the stream reads, in Sigma's vocabulary (exactly one of logsource, from).",
        {"category": "process_creation", "product": "windows"},
        default=None,
    )
    from_: Name | None = doc(
        "Another stream this one reads (exactly one of logsource, from).",
        "flow",
        default=None,
        alias="from",
    )
    join: JoinM | None = doc(
        "Keep the events that have a partner in another stream, adding its fields.",
        {"stream": "endpoint_conn", "on": ["source.ip", "source.port"], "within": "1d"},
        default=None,
    )
    enrich: list[EnrichM] = doc(
        "Lookup joins, applied before derive and where.",
        [{"lookup": "inventory", "match": {"host": "host.name"}, "add": {"role": "host.role"}}],
        default=[],
    )
    derive: dict[FieldName, str] = doc(
        "Computed fields: field -> expression (docs/language.md, Expressions).",
        {"destination.registered_domain": "registered_domain(destination.domain)"},
        default={},
    )
    where: Any = doc(
        "The filter: a mapping is an AND of `field|modifier: value` entries, a list an OR; "
        "any/all/not nest (docs/language.md, Filters).",
        {"process.name": ["powershell.exe", "pwsh.exe"], "process.command_line|contains": "-enc"},
        default=None,
    )

    @model_validator(mode="after")
    def _source(self) -> StreamM:
        if (self.logsource is None) == (self.from_ is None):
            raise PydanticCustomError(
                "one_of", "a stream needs exactly one of 'logsource' or 'from'"
            )
        return self


# --------------------------------------------------------------------------- detections
class StepM(Strict):
    stream: Name = doc("The stream this step reads.", "proc")
    as_: AliasName | None = doc(
        "The step's name, used as `name.field` in expressions and baselines.",
        "start",
        default=None,
        alias="as",
    )
    by: list[FieldName] | None = doc(
        "This step's own key fields, compared position by position with the other steps'.",
        ["host.name", "destination.ip"],
        default=None,
    )


class SequenceM(Strict):
    by: list[FieldName] | None = doc(
        "Key fields every step shares unless it names its own (compared exactly, as text).",
        ["host.name", "process.entity_id"],
        default=None,
    )
    maxspan: Duration = doc("Every step within this time of the first.", "2m", "1h")
    steps: list[StepM] = doc(
        "The streams, in order.",
        [{"stream": "proc", "as": "start"}, {"stream": "conn", "as": "net"}],
        min_length=2,
    )
    until: StepM | None = doc(
        "An event of this stream with the same keys cancels the sequences it interrupts.",
        {"stream": "proc_end"},
        default=None,
    )


class CooccurrenceM(Strict):
    by: list[FieldName] = doc(
        "Key fields shared by the events of every stream.", ["host.name"], min_length=1
    )
    window: Duration = doc("Every stream has an event within this time.", "10m")
    streams: list[Name | StepM] = doc(
        "The streams (names, or steps with their own keys), in any order.",
        ["proc", "dns", "conn"],
        min_length=2,
    )


class AbsenceM(Strict):
    by: list[FieldName] = doc(
        "Key fields the missing event must share with the first.",
        ["host.name", "process.name"],
        min_length=1,
    )
    first: Name | StepM = doc("The stream of the event that starts the wait.", "agent_stop")
    missing: Name | StepM = doc(
        "The stream of the event that should follow; the alert fires when none does.",
        "agent_start",
    )
    within: Duration = doc("How long to wait for the missing event.", "5m")


class WindowM(Strict):
    kind: Literal["tumbling", "sliding"] = doc(
        "tumbling: consecutive windows aligned to the epoch (UTC); sliding: any span of that size.",
        "tumbling",
    )
    size: Duration = doc("The window's length.", "1h", "5m")


class _Conditional(Strict):
    where: Any = doc(
        "Only events this filter holds for contribute (the filter grammar of a stream's "
        "`where`); an event it does not hold for, or cannot decide (a missing field), counts "
        "for nothing (docs/semantics.md, Aggregates).",
        {"destination.port|lt": 1024},
        {"event.outcome": "failure"},
        default=None,
    )


class CountMeasure(_Conditional):
    count: bool | FieldName = doc(
        "true counts events; a field name counts events that have that field.",
        True,
        "destination.ip",
    )


class DistinctMeasure(_Conditional):
    distinct: FieldName = doc("The number of distinct values of this field.", "destination.port")


class SumMeasure(_Conditional):
    sum: FieldName = doc("The sum of this numeric field.", "source.bytes")


class AvgMeasure(_Conditional):
    avg: FieldName = doc("The mean of this numeric field.", "source.bytes")


class MinMeasure(_Conditional):
    min: FieldName = doc("The smallest value of this numeric field.", "source.bytes")


class MaxMeasure(_Conditional):
    max: FieldName = doc("The largest value of this numeric field.", "source.bytes")


class StdevMeasure(_Conditional):
    stdev: FieldName = doc("The sample standard deviation of this numeric field.", "source.bytes")


class PercentileMeasure(_Conditional):
    percentile: FieldName = doc("The numeric field whose percentile is measured.", "source.bytes")
    p: float = doc("The percentile, above 0 and at most 100.", 95, 99.5, gt=0, le=100)


MEASURE_KINDS = ("count", "distinct", "sum", "avg", "min", "max", "stdev", "percentile")


def _tag_of(kinds: tuple[str, ...]) -> Any:
    """Discriminate a tagged mapping by the one known tag key it carries."""

    def pick(v: Any) -> str | None:
        if isinstance(v, dict):
            present = [k for k in kinds if k in v]
            return present[0] if len(present) == 1 else None
        if isinstance(v, BaseModel):
            present = [k for k in kinds if k in type(v).model_fields]
            return present[0] if present else None
        return None

    return Discriminator(
        pick,
        custom_error_type="one_of",
        custom_error_message=f"expected a mapping with exactly one of: {', '.join(kinds)}",
    )


MeasureM = Annotated[
    Annotated[CountMeasure, Tag("count")]
    | Annotated[DistinctMeasure, Tag("distinct")]
    | Annotated[SumMeasure, Tag("sum")]
    | Annotated[AvgMeasure, Tag("avg")]
    | Annotated[MinMeasure, Tag("min")]
    | Annotated[MaxMeasure, Tag("max")]
    | Annotated[StdevMeasure, Tag("stdev")]
    | Annotated[PercentileMeasure, Tag("percentile")],
    _tag_of(MEASURE_KINDS),
]


class AggregateM(Strict):
    stream: Name = doc("The stream whose events are aggregated.", "flow")
    window: WindowM = doc(
        "The time windows the events are grouped in.", {"kind": "tumbling", "size": "1h"}
    )
    by: list[FieldName] = doc(
        "Group-by key fields (compared exactly, as text).",
        ["host.name", "destination.ip"],
        default=[],
    )
    measures: dict[MeasureName, MeasureM] = doc(
        "Measure name -> one of count, distinct, sum, avg, min, max, stdev, percentile; "
        "`where:` makes it conditional.",
        {
            "bytes_out": {"sum": "source.bytes"},
            "flows": {"count": True},
            "privileged_ports": {
                "distinct": "destination.port",
                "where": {"destination.port|lt": 1024},
            },
        },
        min_length=1,
    )
    compute: dict[MeasureName, str] = doc(
        "Values computed from the measures: name -> expression.",
        {"ratio": "bytes_out / bytes_in"},
        default={},
    )
    having: str | None = doc(
        "The condition a window's row must meet to be an alert (an expression).",
        "ratio >= 10 and bytes_out >= 10MB",
        default=None,
    )

    @model_validator(mode="after")
    def _names_apart(self) -> AggregateM:
        # Every target puts group-by keys and measures side by side in one row (ES|QL STATS,
        # KQL summarize, SPL stats): a measure named like a key would be one column.
        clash = [n for n in (*self.measures, *self.compute) if n in self.by]
        if clash:
            raise PydanticCustomError(
                "identifier",
                "measure '{name}' has the name of a 'by' key: keys and measures share one row",
                {"name": clash[0]},
            )
        return self


class CountCond(Strict):
    gte: int | None = doc("At least this many (exactly one of gte, gt).", 20, default=None, ge=1)
    gt: int | None = doc("More than this many (exactly one of gte, gt).", 19, default=None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> CountCond:
        if (self.gte is None) == (self.gt is None):
            raise PydanticCustomError("one_of", "give exactly one of 'gte' or 'gt'")
        return self


class DistinctCond(CountCond):
    field: FieldName = doc("The field whose distinct values are counted.", "destination.port")


class ThresholdM(Strict):
    stream: Name = doc("The stream whose events are counted.", "conn")
    by: list[FieldName] = doc("Group-by key fields.", ["host.name"], default=[])
    window: Duration = doc("The sliding window's length.", "5m")
    count: CountCond | None = doc(
        "A number of events (measure event_count); exactly one of count, distinct.",
        {"gte": 20},
        default=None,
    )
    distinct: DistinctCond | None = doc(
        "A number of distinct values of a field (measure value_count).",
        {"field": "destination.port", "gte": 10},
        default=None,
    )

    @model_validator(mode="after")
    def _one(self) -> ThresholdM:
        if (self.count is None) == (self.distinct is None):
            raise PydanticCustomError("one_of", "a threshold needs exactly one of count, distinct")
        return self


class MatchD(Strict):
    match: Name = doc("Every event of this stream is an alert.", "proc")


class SequenceD(Strict):
    sequence: SequenceM = doc(
        "Events of several streams in order, with the same keys, within maxspan.",
        {
            "by": ["host.name"],
            "maxspan": "5m",
            "steps": [{"stream": "proc"}, {"stream": "conn"}],
        },
    )


class CooccurrenceD(Strict):
    cooccurrence: CooccurrenceM = doc(
        "An event of every stream, with the same keys, within a window, in any order.",
        {"by": ["host.name"], "window": "10m", "streams": ["a", "b"]},
    )


class AbsenceD(Strict):
    absence: AbsenceM = doc(
        "An event of `first` that no event of `missing` with the same keys follows in time.",
        {"by": ["host.name"], "first": "agent_stop", "missing": "agent_start", "within": "5m"},
    )


class AggregateD(Strict):
    aggregate: AggregateM = doc(
        "Measures per key in time windows, with computed values and a condition.",
        {
            "stream": "flow",
            "window": {"kind": "tumbling", "size": "1h"},
            "by": ["host.name"],
            "measures": {"bytes_out": {"sum": "source.bytes"}},
            "having": "bytes_out >= 10MB",
        },
    )


class ThresholdD(Strict):
    threshold: ThresholdM = doc(
        "Shorthand for a sliding count or distinct count of events per key.",
        {"stream": "conn", "by": ["host.name"], "window": "5m", "count": {"gte": 20}},
    )


DETECT_KINDS = ("match", "sequence", "cooccurrence", "absence", "aggregate", "threshold")

DetectM = Annotated[
    Annotated[MatchD, Tag("match")]
    | Annotated[SequenceD, Tag("sequence")]
    | Annotated[CooccurrenceD, Tag("cooccurrence")]
    | Annotated[AbsenceD, Tag("absence")]
    | Annotated[AggregateD, Tag("aggregate")]
    | Annotated[ThresholdD, Tag("threshold")],
    _tag_of(DETECT_KINDS),
]


# --------------------------------------------------------------------------- baselines
class FirstSeenM(Strict):
    stream: Name = doc("The history stream.", "proc_history")
    keys: list[FieldName] = doc(
        "Fields of the history events; the alert's values must not have been seen together.",
        ["host.name", "process.name"],
        min_length=1,
    )
    as_: list[FieldName] | None = doc(
        "The alert's fields to compare with `keys`, when they are named differently (same length).",
        ["start.host.name", "start.process.name"],
        default=None,
        alias="as",
    )
    lookback: Duration = doc(
        "How far back history reaches, before the alert's start.", "14d", "30d"
    )


class RarityM(Strict):
    stream: Name = doc("The history stream.", "net_history")
    keys: list[FieldName] = doc(
        "Fields of the history events that identify the value whose rarity is measured.",
        ["destination.registered_domain"],
        min_length=1,
    )
    as_: list[FieldName] | None = doc(
        "The alert's fields to compare with `keys`, when they are named differently.",
        ["destination.registered_domain"],
        default=None,
        alias="as",
    )
    across: FieldName = doc(
        "What rarity counts: distinct values of this field (or `days`).", "host.name", "days"
    )
    max: int = doc("The key must have been seen on fewer than this many distinct values.", 3, ge=1)
    lookback: Duration = doc("How far back history reaches.", "30d")


class DeviationM(Strict):
    measure: Name = doc("A measure of the (tumbling) aggregate.", "bytes_out")
    lookback: Duration = doc("The past windows the measure is compared with.", "7d")
    k: float | None = doc(
        "Beyond mean +/- k * sample standard deviation of the history (one of k, percentile, "
        "ratio).",
        3,
        default=None,
        gt=0,
    )
    percentile: float | None = doc(
        "Beyond this nearest-rank percentile of the history (one of k, percentile, ratio).",
        99,
        default=None,
        gt=0,
        le=100,
    )
    ratio: float | None = doc(
        "At least this many times the history's mean (below: at most the mean divided by it); "
        "at least 1; one of k, percentile, ratio.",
        10,
        default=None,
    )
    direction: Literal["above", "below"] = doc(
        "above: a spike; below: a drop (e.g. a host whose log volume falls).",
        "below",
        default="above",
    )
    history: Literal["exclude_current", "include_current"] = doc(
        "Whether the current window is one of the values it is compared with (Splunk "
        "eventstats over every window includes it).",
        "include_current",
        default="exclude_current",
    )
    min_history: int = doc(
        "Past windows with data needed; with fewer the condition is false.", 3, default=3, ge=1
    )


class FirstSeenB(Strict):
    first_seen: FirstSeenM = doc(
        "The alert's key values were not seen together in the history stream in the lookback.",
        {"stream": "proc_history", "keys": ["host.name", "process.name"], "lookback": "14d"},
    )


class RarityB(Strict):
    rarity: RarityM = doc(
        "The key was seen on fewer than `max` distinct hosts (or days) in the lookback.",
        {
            "stream": "net",
            "keys": ["destination.domain"],
            "across": "host.name",
            "max": 3,
            "lookback": "30d",
        },
    )


class DeviationB(Strict):
    deviation: DeviationM = doc(
        "A measure beyond its history: mean +/- k * stdev, a percentile, or a ratio to the mean "
        "of past windows.",
        {"measure": "bytes_out", "lookback": "7d", "k": 3},
        {"measure": "events", "lookback": "14d", "ratio": 10, "direction": "below"},
    )


BASELINE_KINDS = ("first_seen", "rarity", "deviation")

BaselineM = Annotated[
    Annotated[FirstSeenB, Tag("first_seen")]
    | Annotated[RarityB, Tag("rarity")]
    | Annotated[DeviationB, Tag("deviation")],
    _tag_of(BASELINE_KINDS),
]


# --------------------------------------------------------------------------- tests
class InputM(Strict):
    file: Name = doc(
        "A log file relative to the analytic (or $OTRF/... under the OTRF data folder).",
        "fixtures/AN1511/positive.jsonl",
        "$OTRF/otrf_lsass06_zeek_conn.log",
    )
    format: Literal["ecs", "sysmon", "zeek", "auditd", "vmconnection"] = doc(
        "The input profile that reads the file into ECS events (docs/inputs.md).",
        "sysmon",
        default="ecs",
    )
    history: bool = doc(
        "true: the file is history: its events feed baselines (and windows) like any other, "
        "but an alert with any of them as evidence is not reported (docs/semantics.md, "
        "Fixtures).",
        True,
        default=False,
    )


class ExpectM(Strict):
    key: dict[str, Scalar] = doc(
        "The alert's key values to check (the first step's names).",
        {"host.name": "ws01", "process.name": "auditd"},
        default={},
    )
    evidence: list[str] | None = doc(
        "The event ids of the alert, in order (event.id).", ["e1", "e2"], default=None
    )
    measures: dict[str, Scalar | dict[Literal["==", "gte", "gt", "lte", "lt"], Scalar]] = doc(
        "Measure values: exact, or {gte|gt|lte|lt|==: value}; units allowed.",
        {"bytes_out": {"gte": "10MB"}, "flows": 2},
        default={},
    )


class TestM(Strict):
    name: Name = doc("What the fixture shows.", "agent stops and stays down")
    kind: Literal["positive", "negative"] = doc(
        "positive: the listed alerts, exactly; negative: no alert.", "positive", "negative"
    )
    data: Literal["real", "synthetic"] = doc(
        "real: recorded logs; synthetic: written by hand.", "real", default="synthetic"
    )
    now: str | None = doc(
        "The end of observation, ISO 8601 (closes absence and open windows).",
        "2024-05-01T12:00:00Z",
        default=None,
    )
    inputs: list[InputM] = doc(
        "Log files to read.",
        [{"file": "fixtures/X/positive.jsonl"}, {"file": "sysmon.jsonl", "format": "sysmon"}],
        default=[],
    )
    events: list[dict[str, Any]] = doc(
        "Inline ECS events (flat dotted or nested keys), each with @timestamp.",
        [{"@timestamp": "2024-05-01T10:00:00Z", "event.id": "e1", "process.name": "cmd.exe"}],
        default=[],
    )
    history: list[dict[str, Any]] = doc(
        "Inline history events: evaluated like `events`, but an alert with any of them as "
        "evidence is not reported (a first-seen baseline's past, say).",
        [{"@timestamp": "2024-04-20T10:00:00Z", "event.id": "h1", "process.name": "cmd.exe"}],
        default=[],
    )
    expect: list[ExpectM] = doc(
        "The alerts a positive fixture expects (their number is exact).",
        [{"key": {"host.name": "ws01"}, "evidence": ["e1"]}],
        default=[],
    )

    @model_validator(mode="after")
    def _consistent(self) -> TestM:
        if self.kind == "negative" and self.expect:
            raise PydanticCustomError("fixture", "a negative fixture expects no alerts")
        if self.kind == "positive" and not self.expect:
            raise PydanticCustomError(
                "fixture", "a positive fixture lists the alerts it expects under 'expect'"
            )
        if not self.inputs and not self.events and not self.history:
            raise PydanticCustomError("fixture", "a fixture needs 'inputs' or 'events'")
        if not self.events and all(i.history for i in self.inputs):
            raise PydanticCustomError(
                "fixture",
                "every event of this fixture is history, whose alerts are never reported: "
                "give it 'events' or an input without 'history: true'",
            )
        return self


# --------------------------------------------------------------------------- analytic
class AnalyticM(Strict):
    """One analytic file."""

    id: Annotated[str, Field(pattern=ID_RE)] = doc(
        "Unique across the catalog; letters, digits, _ . -", "AN1511", "SIEMC-0003"
    )
    title: Name = doc("One line: what the analytic detects.", "certutil downloads a file")
    description: Name = doc(
        "What the analytic detects, why it matters and how; exports copy it into each rule.",
        "certutil.exe downloads a file with -urlcache: a living-off-the-land download.",
    )
    attack: Attack = doc(
        "The MITRE ATT&CK analytics, techniques and tactics.",
        {"techniques": ["T1105"]},
        default=Attack(),
    )
    # empty for rules on no operating system (cloud audit logs, proxies, network devices)
    platforms: list[Literal["windows", "linux", "macos"]] = doc(
        "Operating systems the analytic applies to (empty for cloud or network logs).",
        ["windows"],
        default=[],
    )
    severity: Literal["informational", "low", "medium", "high", "critical"] = doc(
        "The alert's severity; exports map it to each SIEM's scale.", "high"
    )
    owner: str | None = doc(
        "The team that maintains the analytic.", "detection-engineering", default=None
    )
    # the rule's authors and license, kept from an imported rule (the Detection Rule License
    # of Sigma rules requires keeping the author and the references), and its other tags
    author: str | None = doc("The rule's authors.", "Jane Doe", default=None)
    license: str | None = doc("The rule's license.", "DRL-1.1", default=None)
    tags: list[str] = doc("Other tags, kept as written.", ["attack.g0016"], default=[])
    references: list[str] = doc(
        "Links to what the analytic is based on.",
        ["https://attack.mitre.org/techniques/T1105/"],
        default=[],
    )
    false_positives: list[str] = doc(
        "Known benign causes of alerts.", ["Backup agents uploading archives"], default=[]
    )
    lookups: dict[LookupName, LookupM] = doc(
        "Named CSV tables for enrich steps and lookup filters.",
        {"inventory": {"file": "lookups/host_inventory.csv"}},
        default={},
    )
    streams: dict[StreamName, StreamM] = doc(
        "Named event streams: what the detection and baselines read.",
        {"proc": {"logsource": {"category": "process_creation"}, "where": {"process.name": "x"}}},
        min_length=1,
    )
    detect: DetectM = doc(
        "The detection: exactly one of match, sequence, cooccurrence, absence, aggregate, "
        "threshold.",
        {"match": "proc"},
    )
    baseline: list[BaselineM] = doc(
        "Conditions on history every alert must also meet (first_seen, rarity, deviation).",
        [{"first_seen": {"stream": "proc", "keys": ["host.name"], "lookback": "14d"}}],
        default=[],
    )
    tests: list[TestM] = doc(
        "Fixtures: events and the alerts they must give (`siemc test`).",
        [{"name": "n", "kind": "negative", "events": [{"@timestamp": "2024-05-01T10:00:00Z"}]}],
        default=[],
    )

    @field_validator("lookups")
    @classmethod
    def _lookups_apart(cls, v: dict[str, LookupM]) -> dict[str, LookupM]:
        # ES|QL lookup indices (lower-case names) and Sentinel watchlist aliases do not tell
        # case apart: two lookups whose names differ only in case would read one table.
        seen: dict[str, str] = {}
        for name in v:
            other = seen.setdefault(name.lower(), name)
            if other != name:
                raise PydanticCustomError(
                    "identifier",
                    "lookups '{a}' and '{b}' differ only in case, which ES|QL index names and "
                    "Sentinel watchlist aliases do not tell apart",
                    {"a": other, "b": name},
                )
        return v


def json_schema() -> dict[str, Any]:
    schema = AnalyticM.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "siemc analytic"
    return schema
