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


# --------------------------------------------------------------------------- metadata
class Attack(Strict):
    analytics: list[Annotated[str, _attack(ANALYTIC_RE, "MITRE analytic id (AN1234)")]] = []
    # may be empty: a rule imported from Sigma keeps the tags its author gave, which name no
    # technique in one rule of eight of the SigmaHQ corpus
    techniques: list[
        Annotated[str, _attack(TECHNIQUE_RE, "ATT&CK technique id (T1234 or T1234.001)")]
    ] = []
    # Exports derive tactics from the techniques; naming them here chooses among a technique's
    # tactics (T1071 is command-and-control only, but an analytic may file it as exfiltration).
    tactics: list[
        Annotated[str, _attack(TACTIC_RE, "ATT&CK tactic id or short name (TA0010, exfiltration)")]
    ] = []


# --------------------------------------------------------------------------- streams
class LogSourceM(Strict):
    category: str | None = None
    product: str | None = None
    service: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> LogSourceM:
        if not (self.category or self.product or self.service):
            raise PydanticCustomError(
                "one_of", "a logsource needs at least one of category, product, service"
            )
        return self


class LookupM(Strict):
    file: Name
    description: str | None = None


class EnrichM(Strict):
    lookup: Name
    match: dict[ColumnName, FieldName] = Field(min_length=1)
    add: dict[ColumnName, FieldName] = Field(min_length=1)


class JoinM(Strict):
    stream: Name
    on: list[FieldName] = Field(min_length=1)
    within: Duration
    direction: Literal["around", "before", "after"] = "around"
    add: list[FieldName] = []


class StreamM(Strict):
    logsource: LogSourceM | None = None
    from_: Name | None = Field(default=None, alias="from")
    join: JoinM | None = None
    enrich: list[EnrichM] = []
    derive: dict[FieldName, str] = {}
    where: Any = None

    @model_validator(mode="after")
    def _source(self) -> StreamM:
        if (self.logsource is None) == (self.from_ is None):
            raise PydanticCustomError(
                "one_of", "a stream needs exactly one of 'logsource' or 'from'"
            )
        return self


# --------------------------------------------------------------------------- detections
class StepM(Strict):
    stream: Name
    as_: AliasName | None = Field(default=None, alias="as")
    by: list[FieldName] | None = None


class SequenceM(Strict):
    by: list[FieldName] | None = None
    maxspan: Duration
    steps: list[StepM] = Field(min_length=2)
    until: StepM | None = None


class CooccurrenceM(Strict):
    by: list[FieldName] = Field(min_length=1)
    window: Duration
    streams: list[Name | StepM] = Field(min_length=2)


class AbsenceM(Strict):
    by: list[FieldName] = Field(min_length=1)
    first: Name | StepM
    missing: Name | StepM
    within: Duration


class WindowM(Strict):
    kind: Literal["tumbling", "sliding"]
    size: Duration


class CountMeasure(Strict):
    count: bool | FieldName


class DistinctMeasure(Strict):
    distinct: FieldName


class SumMeasure(Strict):
    sum: FieldName


class AvgMeasure(Strict):
    avg: FieldName


class MinMeasure(Strict):
    min: FieldName


class MaxMeasure(Strict):
    max: FieldName


class StdevMeasure(Strict):
    stdev: FieldName


class PercentileMeasure(Strict):
    percentile: FieldName
    p: float = Field(gt=0, le=100)


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
    stream: Name
    window: WindowM
    by: list[FieldName] = []
    measures: dict[MeasureName, MeasureM] = Field(min_length=1)
    compute: dict[MeasureName, str] = {}
    having: str | None = None

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
    gte: int | None = Field(default=None, ge=1)
    gt: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> CountCond:
        if (self.gte is None) == (self.gt is None):
            raise PydanticCustomError("one_of", "give exactly one of 'gte' or 'gt'")
        return self


class DistinctCond(CountCond):
    field: FieldName


class ThresholdM(Strict):
    stream: Name
    by: list[FieldName] = []
    window: Duration
    count: CountCond | None = None
    distinct: DistinctCond | None = None

    @model_validator(mode="after")
    def _one(self) -> ThresholdM:
        if (self.count is None) == (self.distinct is None):
            raise PydanticCustomError("one_of", "a threshold needs exactly one of count, distinct")
        return self


class MatchD(Strict):
    match: Name


class SequenceD(Strict):
    sequence: SequenceM


class CooccurrenceD(Strict):
    cooccurrence: CooccurrenceM


class AbsenceD(Strict):
    absence: AbsenceM


class AggregateD(Strict):
    aggregate: AggregateM


class ThresholdD(Strict):
    threshold: ThresholdM


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
    stream: Name
    keys: list[FieldName] = Field(min_length=1)
    as_: list[FieldName] | None = Field(default=None, alias="as")
    lookback: Duration


class RarityM(Strict):
    stream: Name
    keys: list[FieldName] = Field(min_length=1)
    as_: list[FieldName] | None = Field(default=None, alias="as")
    across: FieldName
    max: int = Field(ge=1)
    lookback: Duration


class DeviationM(Strict):
    measure: Name
    lookback: Duration
    k: float | None = Field(default=None, gt=0)
    percentile: float | None = Field(default=None, gt=0, le=100)
    min_history: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _one(self) -> DeviationM:
        if (self.k is None) == (self.percentile is None):
            raise PydanticCustomError("one_of", "a deviation needs exactly one of k, percentile")
        return self


class FirstSeenB(Strict):
    first_seen: FirstSeenM


class RarityB(Strict):
    rarity: RarityM


class DeviationB(Strict):
    deviation: DeviationM


BASELINE_KINDS = ("first_seen", "rarity", "deviation")

BaselineM = Annotated[
    Annotated[FirstSeenB, Tag("first_seen")]
    | Annotated[RarityB, Tag("rarity")]
    | Annotated[DeviationB, Tag("deviation")],
    _tag_of(BASELINE_KINDS),
]


# --------------------------------------------------------------------------- tests
class InputM(Strict):
    file: Name
    format: Literal["ecs", "sysmon", "zeek", "auditd", "vmconnection"] = "ecs"


class ExpectM(Strict):
    key: dict[str, Scalar] = {}
    evidence: list[str] | None = None
    measures: dict[str, Scalar | dict[Literal["==", "gte", "gt", "lte", "lt"], Scalar]] = {}


class TestM(Strict):
    name: Name
    kind: Literal["positive", "negative"]
    data: Literal["real", "synthetic"] = "synthetic"
    now: str | None = None
    inputs: list[InputM] = []
    events: list[dict[str, Any]] = []
    expect: list[ExpectM] = []

    @model_validator(mode="after")
    def _consistent(self) -> TestM:
        if self.kind == "negative" and self.expect:
            raise PydanticCustomError("fixture", "a negative fixture expects no alerts")
        if self.kind == "positive" and not self.expect:
            raise PydanticCustomError(
                "fixture", "a positive fixture lists the alerts it expects under 'expect'"
            )
        if not self.inputs and not self.events:
            raise PydanticCustomError("fixture", "a fixture needs 'inputs' or 'events'")
        return self


# --------------------------------------------------------------------------- analytic
class AnalyticM(Strict):
    """One analytic file."""

    id: Annotated[str, Field(pattern=ID_RE)]
    title: Name
    description: Name
    attack: Attack = Attack()
    # empty for rules on no operating system (cloud audit logs, proxies, network devices)
    platforms: list[Literal["windows", "linux", "macos"]] = []
    severity: Literal["informational", "low", "medium", "high", "critical"]
    owner: str | None = None
    # the rule's authors and license, kept from an imported rule (the Detection Rule License
    # of Sigma rules requires keeping the author and the references), and its other tags
    author: str | None = None
    license: str | None = None
    tags: list[str] = []
    references: list[str] = []
    false_positives: list[str] = []
    lookups: dict[LookupName, LookupM] = {}
    streams: dict[StreamName, StreamM] = Field(min_length=1)
    detect: DetectM
    baseline: list[BaselineM] = []
    tests: list[TestM] = []

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
