"""The intermediate representation: the one meaning of an analytic.

Produced by :mod:`compiler.lower` from the surface model; consumed by the evaluator and the
backends, which never see pydantic objects. Every node is a frozen dataclass. Times are integer
milliseconds; sizes are plain numbers of bytes. ``span`` fields say where in the source a node
came from, so that later stages (backends) can report errors at ``file:line:col``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Span:
    path: str
    line: int  # 1-based
    col: int  # 1-based

    def at(self) -> str:
        """``file.yml:line:col`` with the file's name only: what written outputs cite, so that
        they do not depend on the working directory or the path the catalog was given by."""
        return f"{PurePath(self.path).name}:{self.line}:{self.col}"


NO_SPAN = Span("<unknown>", 0, 0)


def _nospan() -> Any:
    # Spans say where a node came from; they are not part of its meaning, so two nodes that
    # differ only in position compare equal.
    return dataclasses.field(default=NO_SPAN, compare=False)


# --------------------------------------------------------------------------- predicates
@dataclass(frozen=True, slots=True)
class Eq:
    """Field equals one (``quantifier="any"``) or all of ``values``."""

    field: str
    values: tuple[Scalar, ...]
    cased: bool = False
    quantifier: Literal["any", "all"] = "any"
    span: Span = _nospan()


StrOp = Literal["contains", "startswith", "endswith"]


@dataclass(frozen=True, slots=True)
class StrMatch:
    field: str
    op: StrOp
    values: tuple[str, ...]
    cased: bool = False
    quantifier: Literal["any", "all"] = "any"
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Regex:
    field: str
    patterns: tuple[str, ...]
    cased: bool = False
    quantifier: Literal["any", "all"] = "any"
    span: Span = _nospan()


CmpOp = Literal["gt", "gte", "lt", "lte"]


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: CmpOp
    value: float
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Exists:
    field: str
    present: bool = True
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Cidr:
    field: str
    networks: tuple[str, ...]
    quantifier: Literal["any", "all"] = "any"
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class InLookup:
    """Some row of ``lookup`` equals (case-insensitively) the event on every (column, field)."""

    lookup: str
    match: tuple[tuple[str, str], ...]  # (csv column, event field)
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Predicate, ...]
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Predicate, ...]
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Not:
    item: Predicate
    span: Span = _nospan()


Predicate = Eq | StrMatch | Regex | Compare | Exists | Cidr | InLookup | And | Or | Not

TRUE = And(())


# --------------------------------------------------------------------------- expressions
@dataclass(frozen=True, slots=True)
class Literal_:
    value: Scalar
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class FieldRef:
    """An event field; ``step`` names a sequence/co-occurrence member (``start.process.name``)."""

    name: str
    step: str | None = None
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class MeasureRef:
    """A measure or computed value of an aggregate (in ``compute`` and ``having``)."""

    name: str
    span: Span = _nospan()


BinOpKind = Literal["+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "and", "or"]


@dataclass(frozen=True, slots=True)
class BinOp:
    op: BinOpKind
    left: Expr
    right: Expr
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class UnaryOp:
    op: Literal["-", "not"]
    operand: Expr
    span: Span = _nospan()


FUNCTIONS: dict[str, tuple[int, int | None]] = {
    # name: (min args, max args or None for variadic)
    "lower": (1, 1),
    "upper": (1, 1),
    "basename": (1, 1),
    "registered_domain": (1, 1),
    "extract_ips": (1, 1),
    "coalesce": (1, None),
    "max": (2, None),
    "min": (2, None),
    "abs": (1, 1),
}


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span = _nospan()


Expr = Literal_ | FieldRef | MeasureRef | BinOp | UnaryOp | Call


# --------------------------------------------------------------------------- streams
@dataclass(frozen=True, slots=True)
class LogSource:
    category: str | None = None
    product: str | None = None
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Lookup:
    name: str
    path: str  # absolute path of the CSV file
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Enrich:
    """Copy columns of the first matching lookup row onto the event (a left join)."""

    lookup: str
    match: tuple[tuple[str, str], ...]  # (csv column, event field)
    add: tuple[tuple[str, str], ...]  # (csv column, new event field)
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Join:
    """Inner join of each event to the nearest-in-time event of ``stream`` with equal keys."""

    stream: str
    on: tuple[str, ...]
    within_ms: int
    direction: Literal["around", "before", "after"]
    add: tuple[str, ...]
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Stream:
    """``source`` is a logsource, or the name of another stream for derived streams.

    Evaluation order for one event: logsource (or source stream) -> join -> enrich -> derive
    -> filter.
    """

    name: str
    source: LogSource | str
    join: Join | None
    enrich: tuple[Enrich, ...]
    derive: tuple[tuple[str, Expr], ...]
    filter: Predicate
    span: Span = _nospan()


# --------------------------------------------------------------------------- detections
@dataclass(frozen=True, slots=True)
class Step:
    alias: str
    stream: str
    keys: tuple[str, ...]
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Match:
    stream: str
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Sequence:
    steps: tuple[Step, ...]
    maxspan_ms: int
    until: Step | None = None
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Cooccurrence:
    members: tuple[Step, ...]
    window_ms: int
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Absence:
    first: Step
    missing: Step
    within_ms: int
    span: Span = _nospan()


MeasureKind = Literal["count", "distinct", "sum", "avg", "min", "max", "stdev", "percentile"]


@dataclass(frozen=True, slots=True)
class Measure:
    name: str
    kind: MeasureKind
    field: str | None  # None: count every event
    p: float | None = None  # percentile only
    span: Span = _nospan()
    # A conditional measure (`where:`): only events the filter holds for contribute.
    where: Predicate | None = None


@dataclass(frozen=True, slots=True)
class Window:
    kind: Literal["tumbling", "sliding"]
    size_ms: int
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Aggregate:
    stream: str
    window: Window
    keys: tuple[str, ...]
    measures: tuple[Measure, ...]
    compute: tuple[tuple[str, Expr], ...]
    having: Expr | None
    origin: Literal["aggregate", "event_count", "value_count"] = "aggregate"
    span: Span = _nospan()


Detection = Match | Sequence | Cooccurrence | Absence | Aggregate


# --------------------------------------------------------------------------- baselines
@dataclass(frozen=True, slots=True)
class FirstSeen:
    stream: str
    keys: tuple[str, ...]  # history fields
    current: tuple[str, ...]  # candidate fields, same length as keys
    lookback_ms: int
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Rarity:
    stream: str
    keys: tuple[str, ...]
    current: tuple[str, ...]
    across: str  # a field, or "@days"
    max: int
    lookback_ms: int
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Deviation:
    measure: str
    lookback_ms: int
    k: float | None
    percentile: float | None
    min_history: int
    span: Span = _nospan()
    ratio: float | None = None  # at least `ratio` times the mean (below: at most mean / ratio)
    direction: Literal["above", "below"] = "above"
    include_current: bool = False  # the current window is one of the values compared with


Baseline = FirstSeen | Rarity | Deviation


# --------------------------------------------------------------------------- analytic
@dataclass(frozen=True, slots=True)
class Metadata:
    title: str
    description: str
    attack_analytics: tuple[str, ...]
    attack_techniques: tuple[str, ...]
    platforms: tuple[str, ...]
    severity: str
    owner: str | None
    references: tuple[str, ...]
    false_positives: tuple[str, ...]
    attack_tactics: tuple[str, ...] = ()  # as written: TA ids or short names (exports resolve)
    author: str | None = None
    license: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Analytic:
    id: str
    path: str
    meta: Metadata
    lookups: tuple[Lookup, ...]
    streams: tuple[Stream, ...]  # topologically ordered: a stream follows those it reads
    detection: Detection
    baselines: tuple[Baseline, ...]
    span: Span = _nospan()

    def stream(self, name: str) -> Stream:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(name)

    def step_aliases(self) -> set[str]:
        """The aliases of the detection's steps (``start`` in ``start.process.name``)."""
        d = self.detection
        if isinstance(d, Sequence):
            return {st.alias for st in d.steps}
        if isinstance(d, Cooccurrence):
            return {st.alias for st in d.members}
        if isinstance(d, Absence):
            return {d.first.alias, d.missing.alias}
        return set()

    def lookup(self, name: str) -> Lookup:
        for lk in self.lookups:
            if lk.name == name:
                return lk
        raise KeyError(name)


# --------------------------------------------------------------------------- fixtures
@dataclass(frozen=True, slots=True)
class FixtureInput:
    file: str  # as written (may start with $OTRF)
    format: str
    span: Span = _nospan()
    history: bool = False  # feeds baselines; alerts with evidence from it are not reported


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    key: tuple[tuple[str, Scalar], ...]
    evidence: tuple[str, ...] | None
    measures: tuple[tuple[str, str, float | str], ...]  # (measure, op, value); op in ==,>=,...
    span: Span = _nospan()


@dataclass(frozen=True, slots=True)
class Fixture:
    name: str
    kind: Literal["positive", "negative"]
    data: Literal["real", "synthetic"]
    inputs: tuple[FixtureInput, ...]
    events: tuple[dict[str, object], ...]
    now_ms: int | None
    expect: tuple[ExpectedAlert, ...]
    span: Span = _nospan()
    history: tuple[dict[str, object], ...] = ()  # inline history events (see FixtureInput)


def field_names(e: Expr, *, steps: bool = True) -> set[str]:
    """The event fields an expression reads (FieldRef names; without ``steps``, only the
    references to the current event, not to a correlation step's ``alias.field``)."""
    if isinstance(e, FieldRef):
        return {e.name} if steps or e.step is None else set()
    if isinstance(e, Call):
        return {f for a in e.args for f in field_names(a, steps=steps)}
    if isinstance(e, BinOp):
        return field_names(e.left, steps=steps) | field_names(e.right, steps=steps)
    if isinstance(e, UnaryOp):
        return field_names(e.operand, steps=steps)
    return set()


def predicate_fields(p: Predicate) -> set[str]:
    """The event fields a filter tests (a lookup membership test reads its match fields)."""
    if isinstance(p, And | Or):
        return {f for x in p.items for f in predicate_fields(x)}
    if isinstance(p, Not):
        return predicate_fields(p.item)
    if isinstance(p, InLookup):
        return {f for _, f in p.match}
    return {p.field}
