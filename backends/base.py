"""The shared base of every target backend.

A backend turns one :class:`ir.Analytic` into query text for one target. Every IR node type is
either handled by a ``visit_<Node>`` method or declared in ``SUPPORT`` as unsupported (the target
cannot express it) or not implemented (this backend does not do it yet); a test checks the
tables are exhaustive. Approximations are recorded on the context: they become errors unless the
user allows them, and each one is reported (diagnostic + a comment in the artifact).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from backends.comment import one_line
from backends.profiles import FieldProfile, UnmappedField, load_profile
from backends.sources import check_sources
from compiler import ir
from compiler.diagnostics import Diagnostic

Level = Literal["exact", "approximate", "unsupported", "not_implemented"]

# Which way an approximation errs, against the evaluator's alerts on the same events:
# superset: the target fires on every evaluator alert and maybe more (sound for detection);
# subset: every target alert is an evaluator alert, some may be missed; mixed: both ways.
Direction = Literal["superset", "subset", "mixed"]
DIRECTIONS: tuple[Direction, ...] = ("superset", "subset", "mixed")

# Diagnostic codes of the compile stage (docs/diagnostics.md).
E_UNSUPPORTED = "E200"  # the target cannot express this
E_NOT_IMPLEMENTED = "E201"  # this backend does not implement it yet
E_APPROXIMATE = "E202"  # an approximation the user did not allow
E_UNMAPPED = "E210"  # a field the profile cannot map
E_NO_SOURCE = "E211"  # the profile has no data source for a logsource / needed fields
W_APPROXIMATE = "W300"  # an allowed approximation


# Every IR node type a backend must account for, for the exhaustiveness test and the matrix.
NODE_TYPES: tuple[type, ...] = (
    ir.Eq,
    ir.StrMatch,
    ir.Regex,
    ir.Compare,
    ir.Exists,
    ir.Cidr,
    ir.InLookup,
    ir.And,
    ir.Or,
    ir.Not,
    ir.Literal_,
    ir.FieldRef,
    ir.MeasureRef,
    ir.BinOp,
    ir.UnaryOp,
    ir.Call,
    ir.Enrich,
    ir.Join,
    ir.Match,
    ir.Sequence,
    ir.Cooccurrence,
    ir.Absence,
    ir.Aggregate,
    ir.Measure,  # only a conditional one (`where:`): iter_nodes yields no other
    ir.Step,  # only a counted sequence step (`count:`): iter_nodes yields no other
    ir.FirstSeen,
    ir.Rarity,
    ir.Deviation,
)


@dataclass(frozen=True)
class Support:
    level: Level
    how: str  # how the target does it, or why it cannot (with the alternative)


@dataclass(frozen=True)
class Approximation:
    construct: str
    detail: str
    span: ir.Span
    direction: Direction = "mixed"


def overall_direction(approximations: Iterable[Approximation]) -> Direction | None:
    """The direction of a query carrying all of ``approximations`` (None: it is exact). Two
    supersets compose to a superset and two subsets to a subset; anything else is mixed."""
    dirs = {a.direction for a in approximations}
    if not dirs:
        return None
    return dirs.pop() if len(dirs) == 1 else "mixed"


class CompileError(Exception):
    """One or more problems compiling an analytic for a target."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(d.headline() for d in diagnostics))
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class Artifact:
    target: str
    analytic: str
    profile: str
    extension: str
    query: str  # the query itself
    text: str  # the file written: query plus header (notes, approximations)
    approximations: tuple[Approximation, ...]
    notes: tuple[str, ...] = ()  # what deploying the query needs (NOTE lines of the header)


def _diag(
    code: str, message: str, span: ir.Span, help: str | None, sev: str = "error"
) -> Diagnostic:
    return Diagnostic(code, message, span.path, span.line, span.col, 1, help, sev)  # type: ignore[arg-type]


@dataclass
class Context:
    """Per-compilation state handed to visit methods."""

    target: str
    analytic: ir.Analytic
    profile: FieldProfile
    allow_approximate: bool
    approximations: list[Approximation] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    # with allow_approximate False: still accept approximations that only add alerts
    allow_superset: bool = False
    notes: list[str] = field(default_factory=list)
    # backend options (e.g. esql's target stack version), only those the backend declares
    options: Mapping[str, str] = field(default_factory=dict)

    def field(self, name: str, span: ir.Span) -> str:
        try:
            return self.profile.map_field(name)
        except UnmappedField as exc:
            raise CompileError(
                [
                    _diag(
                        E_UNMAPPED,
                        f"field '{name}' has no mapping in the {self.profile.name} profile "
                        f"({self.target})",
                        span,
                        exc.help,
                    )
                ]
            ) from None

    def approximate(
        self, construct: str, detail: str, span: ir.Span, *, direction: Direction = "mixed"
    ) -> None:
        """Record an approximation, or refuse it (E202) when the user did not allow it.
        ``direction`` says which way the target's alerts differ from the evaluator's; a
        backend that cannot tell says "mixed", which claims nothing."""
        allowed = self.allow_approximate or (self.allow_superset and direction == "superset")
        if not allowed:
            hint = (
                "pass --allow-approximate to accept this approximation"
                if direction != "superset"
                else "pass --allow-superset (or --allow-approximate) to accept this superset"
            )
            raise CompileError(
                [
                    _diag(
                        E_APPROXIMATE,
                        f"{self.target} can only approximate {construct} ({direction}): {detail}",
                        span,
                        hint,
                    )
                ]
            )
        a = Approximation(construct, detail, span, direction)
        # A stream rendered twice (e.g. also inside a baseline subquery) reports once.
        if a not in self.approximations:
            self.approximations.append(a)

    def note(self, text: str) -> None:
        """A fact about deploying the query that does not change what it means (a scheduler's
        limit, a data requirement): a NOTE line of the artifact's header."""
        if text not in self.notes:
            self.notes.append(text)

    def unsupported(
        self, construct: str, reason: str, span: ir.Span, alternative: str
    ) -> CompileError:
        return CompileError(
            [
                _diag(
                    E_UNSUPPORTED,
                    f"{self.target} cannot express {construct}: {reason}",
                    span,
                    alternative,
                )
            ]
        )

    def not_implemented(self, construct: str, span: ir.Span) -> CompileError:
        return CompileError(
            [
                _diag(
                    E_NOT_IMPLEMENTED,
                    f"the {self.target} backend does not implement {construct} yet",
                    span,
                    "a gap in siemc, not in the target: compile to another target meanwhile",
                )
            ]
        )


class Backend(ABC):
    """Subclass per target. ``SUPPORT`` must name every type in :data:`NODE_TYPES`."""

    target: ClassVar[str]
    extension: ClassVar[str]
    comment: ClassVar[str]  # line comment prefix of the target language
    profiles: ClassVar[tuple[str, ...]]  # the first is the default
    SUPPORT: ClassVar[dict[type, Support]]
    OPTIONS: ClassVar[frozenset[str]] = frozenset()  # option names the backend reads
    options: Mapping[str, str] = MappingProxyType({})  # per instance: configure()

    def configure(self, options: Mapping[str, str] | None) -> Backend:
        """Set the backend options (e.g. esql's ``stack``); names it does not read are ignored."""
        self.options = {k: v for k, v in (options or {}).items() if k in self.OPTIONS}
        return self

    def compile(
        self,
        analytic: ir.Analytic,
        *,
        profile: str | None = None,
        allow_approximate: bool = False,
        allow_superset: bool = False,
    ) -> Artifact:
        name = profile or self.profiles[0]
        if name not in self.profiles:
            raise ValueError(
                f"profile '{name}' does not apply to {self.target}; use one of: "
                + ", ".join(self.profiles)
            )
        ctx = Context(
            self.target,
            analytic,
            load_profile(name),
            allow_approximate,
            allow_superset=allow_superset,
            options=dict(self.options),
        )
        self.check_support(analytic, ctx)
        # A stream reading a field its data source never carries could not match real data.
        lacking = check_sources(analytic, ctx.profile, self.target)
        if lacking:
            raise CompileError(lacking)
        query = self.render(analytic, ctx)
        return Artifact(
            self.target,
            analytic.id,
            name,
            self.extension,
            query,
            self.wrap(analytic, ctx, query),
            tuple(ctx.approximations),
            tuple(ctx.notes),
        )

    # ------------------------------------------------------------------ support checks
    def check_support(self, analytic: ir.Analytic, ctx: Context) -> None:
        """Reject, at the source span, every node this target cannot express or that this
        backend does not implement (before rendering anything)."""
        errors: list[Diagnostic] = []
        d = analytic.detection
        # An aggregate the target cannot express is one error: its compute/having expressions
        # (a threshold's synthetic `having`, measure references) would only repeat it.
        inner = not (
            isinstance(d, ir.Aggregate)
            and self.SUPPORT[ir.Aggregate].level in ("unsupported", "not_implemented")
        )
        for node in iter_nodes(analytic, detection_exprs=inner):
            sup = self.SUPPORT[type(node)]
            span: ir.Span = getattr(node, "span", analytic.span)
            name = construct_name(node)
            if sup.level == "unsupported":
                errors += ctx.unsupported(
                    name, sup.how, span, alternative_for(self.target, node)
                ).diagnostics
            elif sup.level == "not_implemented":
                errors += ctx.not_implemented(name, span).diagnostics
        if errors:
            raise CompileError(errors)

    # ------------------------------------------------------------------ rendering
    @abstractmethod
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        """The query text for ``analytic`` (every construct already passed ``check_support``)."""

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        """The artifact: a header comment (id, title, approximations), then the query."""
        c = self.comment
        lines = [
            f"{analytic.id}: {analytic.meta.title}",
            f"target: {self.target}, profile: {ctx.profile.name}",
        ]
        for a in ctx.approximations:
            lines.append(f"APPROXIMATION, {a.direction} ({a.span.at()}) {a.construct}: {a.detail}")
        lines += [f"NOTE {n}" for n in ctx.notes]
        header = "".join(f"{c} {one_line(ln)}\n" for ln in lines)
        return header + query.rstrip("\n") + "\n"

    def dispatch(self, node: Any, ctx: Context) -> str:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise ctx.not_implemented(
                construct_name(node), getattr(node, "span", ctx.analytic.span)
            )
        result: str = method(node, ctx)
        return result


# ---------------------------------------------------------------------- helpers
_NAMES: dict[type, str] = {
    ir.Eq: "equality",
    ir.StrMatch: "substring match",
    ir.Regex: "regular expression",
    ir.Compare: "numeric comparison",
    ir.Exists: "field existence",
    ir.Cidr: "CIDR match",
    ir.InLookup: "lookup membership",
    ir.And: "and",
    ir.Or: "or",
    ir.Not: "not",
    ir.Literal_: "literal",
    ir.FieldRef: "field reference",
    ir.MeasureRef: "measure reference",
    ir.BinOp: "arithmetic/comparison",
    ir.UnaryOp: "unary operator",
    ir.Call: "function call",
    ir.Enrich: "lookup enrichment",
    ir.Join: "stream join",
    ir.Match: "single-event match",
    ir.Sequence: "ordered sequence",
    ir.Cooccurrence: "unordered co-occurrence",
    ir.Absence: "absence (A not followed by B)",
    ir.Aggregate: "windowed aggregation",
    ir.Measure: "conditional measure (where)",
    ir.Step: "counted sequence step (count)",
    ir.FirstSeen: "first-seen baseline",
    ir.Rarity: "rarity baseline",
    ir.Deviation: "deviation baseline",
}


def construct_name_of_type(t: type) -> str:
    return _NAMES.get(t, t.__name__)


def construct_name(node: object) -> str:
    if isinstance(node, ir.Call):
        return f"function {node.func}()"
    if isinstance(node, ir.StrMatch):
        return f"'{node.op}' match"
    if isinstance(node, ir.Aggregate):
        return f"{node.window.kind} window aggregation"
    return _NAMES.get(type(node), type(node).__name__)


# Where a target cannot express a construct, which target can (the help line of E200).
_ALTERNATIVES: dict[type, str] = {
    ir.Aggregate: "compile to esql, kql or splunk, which aggregate",
    ir.Measure: "compile to splunk or kql, which filter the events of one measure",
    ir.Deviation: "compile to kql or splunk, which can compare with past windows",
    ir.FirstSeen: "compile to kql, splunk or esql, which can query the lookback",
    ir.Rarity: "compile to kql or splunk",
    ir.Absence: "compile to eql (until/missing events), kql or splunk",
    ir.Cooccurrence: "compile to kql, splunk or sigma (temporal)",
    ir.Sequence: "compile to eql (sequence), kql or sigma (temporal_ordered)",
    ir.Step: "compile to eql (`with runs`) or sigma (event_count chained into temporal)",
    ir.Join: "compile to kql or splunk, which join streams",
    ir.Enrich: "compile to splunk (lookup), kql (watchlist) or esql (LOOKUP JOIN)",
    ir.InLookup: "compile to splunk (lookup), kql (watchlist) or esql (LOOKUP JOIN)",
}


def alternative_for(target: str, node: object) -> str:
    alt = _ALTERNATIVES.get(type(node))
    if alt is None:
        return f"rewrite the analytic without {construct_name(node)}"
    return alt


def iter_nodes(analytic: ir.Analytic, *, detection_exprs: bool = True) -> list[object]:
    """Every IR node of an analytic the backend must translate, in a stable order
    (without an aggregate detection's compute/having expressions if not ``detection_exprs``)."""
    out: list[object] = []

    def pred(p: ir.Predicate) -> None:
        out.append(p)
        if isinstance(p, ir.And | ir.Or):
            for x in p.items:
                pred(x)
        elif isinstance(p, ir.Not):
            pred(p.item)

    def expr(e: ir.Expr) -> None:
        out.append(e)
        if isinstance(e, ir.BinOp):
            expr(e.left)
            expr(e.right)
        elif isinstance(e, ir.UnaryOp):
            expr(e.operand)
        elif isinstance(e, ir.Call):
            for a in e.args:
                expr(a)

    for s in analytic.streams:
        if s.join is not None:
            out.append(s.join)
        out.extend(s.enrich)
        for _, e in s.derive:
            expr(e)
        pred(s.filter)
    d = analytic.detection
    out.append(d)
    if isinstance(d, ir.Sequence):
        out.extend(st for st in d.steps if st.count > 1)
    if isinstance(d, ir.Aggregate) and detection_exprs:
        for m in d.measures:
            if m.where is not None:
                out.append(m)
                pred(m.where)
        for _, e in d.compute:
            expr(e)
        if d.having is not None:
            expr(d.having)
    out.extend(analytic.baselines)
    return out
