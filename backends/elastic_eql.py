"""Elasticsearch EQL backend.

Queries follow the Elasticsearch dialect of EQL (not Endgame EQL): ``:`` and the ``~`` forms are
case-insensitive, ``==``/``in``/``like``/``regex`` are case-sensitive, wildcards only exist in
``:``/``like``. https://www.elastic.co/guide/en/elasticsearch/reference/current/eql-syntax.html
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import jinja2

from backends.base import Backend, CompileError, Context, Support, construct_name
from backends.elastic_eql_predicates import Env, PredicateRenderer, join
from backends.elastic_eql_text import duration, field
from backends.elastic_esql.expr import profile_arrays
from backends.registered_domain import REQUIREMENT, requirements
from compiler import ir
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES, logsource_predicate

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates" / "eql"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)

# ECS event.category values are lower-case words (https://www.elastic.co/guide/en/ecs/current/
# ecs-allowed-values-event-category.html); EQL matches the category as a keyword term.
_CATEGORY = re.compile(r"[a-z][a-z_]*")
_DERIVE_ALT = "compile to esql (EVAL), kql (extend) or splunk (eval), which compute fields"


def _s(level: str, how: str) -> Support:
    return Support(level, how)  # type: ignore[arg-type]


class EqlBackend(Backend):
    target = "eql"
    extension = ".eql"
    comment = "//"
    profiles = ("ecs",)

    SUPPORT: ClassVar[dict[type, Support]] = {
        ir.Eq: _s(
            "exact",
            "every test holds on a multi-valued field when some value passes it, and a negated "
            "test when none does (Elasticsearch runs each as a query on the field's values), "
            "as siemc; "
            'strings: `f : "v"` (case-insensitive) or `f in~ (...)` for lists and values holding '
            'the wildcards * ?; |cased: `f == "v"` / `f in (...)`; numbers and booleans `==`/`in`; '
            "null: `f == null`. A negated test adds `f == null or` so missing fields pass",
        ),
        ir.StrMatch: _s(
            "exact",
            '`f : "*v*"` / `"v*"` / `"*v"` (like~), `like` when |cased; values holding * or ? '
            "(which EQL cannot escape) use stringContains~/startsWith~/endsWith~ (no ~ when cased)",
        ),
        ir.Regex: _s(
            "exact",
            "`regex~`/`regex` with the Python pattern rewritten for Lucene (whole-value match: "
            "unanchored ends get .*, '.' excludes newline as in Python); \\d \\w \\s are "
            "ASCII-only in Lucene and non-ASCII letters fold ASCII-only under regex~: reported "
            "approximations; "
            "lookarounds, back-references, \\b and inline flags: E200",
        ),
        ir.Compare: _s("exact", "`f > n`, `>=`, `<`, `<=` on numeric fields"),
        ir.Exists: _s("exact", "`f != null` / `f == null`"),
        ir.Cidr: _s("exact", 'cidrMatch(f, "10.0.0.0/8", ...) (host bits cleared)'),
        ir.InLookup: _s(
            "exact",
            "lookup rows inlined (at most 100 distinct rows): one column -> `f in~ (...)`, "
            "several -> an `or` of `and` tuples; EQL has no lookup tables (bigger: E200)",
        ),
        ir.And: _s("exact", "`and` (two-valued here: every negated test is null-guarded)"),
        ir.Or: _s("exact", "`or`, nested groups of the same operator flattened"),
        ir.Not: _s(
            "exact",
            "pushed down to the tests (De Morgan); each negated test on a field keeps events "
            "missing the field (`f == null or not ...`), as the evaluator's plain negation does",
        ),
        ir.Literal_: _s("exact", "literals in derived fields are folded into the filter"),
        ir.FieldRef: _s("exact", "a derived field that copies another is replaced by it"),
        ir.MeasureRef: _s(
            "unsupported", "EQL has no aggregation, so no measures; compile to esql, kql or splunk"
        ),
        ir.BinOp: _s(
            "unsupported",
            "EQL cannot create fields and cannot compare a field with another, so arithmetic "
            "and comparisons in derive/compute cannot be inlined; compile to esql, kql or splunk",
        ),
        ir.UnaryOp: _s(
            "unsupported",
            "EQL cannot create fields (derive/compute); compile to esql, kql or splunk",
        ),
        ir.Call: _s(
            "exact",
            "EQL cannot create fields: a derived field is inlined into the tests that read it "
            "when possible: lower()/upper() under a case-insensitive test (the test already "
            "ignores case), coalesce(a, b) as `(a != null and test(a)) or (a == null and "
            "test(b))`; registered_domain(x) == d as a test of the ECS <entity>.registered_domain "
            "Elastic fills at ingest with the Public Suffix List when x is an ECS name field "
            '(a requirement noted in the artifact), otherwise as `x : (d, "*.d")` (approximate: '
            "no suffix list, no stripping of blanks and trailing dots); other functions "
            "(basename, extract_ips, "
            "max, min, abs) and cased tests on lower()/upper(): E200, compile to esql, kql or "
            "splunk",
        ),
        ir.Enrich: _s(
            "exact",
            "EQL has no lookups: a test on an enriched field is rewritten over the lookup rows "
            "(at most 100) as a test of the match fields (first matching row wins, no row = "
            "field absent); more rows: E200, compile to splunk, kql or esql; approximate when a "
            "match field is an ECS array field (any matching row, not the first)",
        ),
        ir.Join: _s(
            "unsupported",
            "EQL cannot copy fields from another event (sequences correlate, they do not join); "
            "compile to kql or splunk",
        ),
        ir.Match: _s("exact", "`<category> where <condition>`; `any where` without a category"),
        ir.Sequence: _s(
            "exact",
            "`sequence by k with maxspan=T [..] [..] until [..]`; per-step keys as `[..] by k`. "
            "maxspan is inclusive and measured from the first event, one pending sequence per "
            "state and key (newer replaces older), events consumed, null keys never join "
            "(Elasticsearch >= 7.16): the evaluator's rules. Equal timestamps are ordered by "
            "the tiebreaker (event.sequence / index order). A key on an ECS array field is "
            "approximate: Elasticsearch runs one state machine per value of a multi-valued key",
        ),
        ir.Cooccurrence: _s(
            "approximate",
            "`sample by k [..] [..]` (Elasticsearch >= 8.6): unordered like co-occurrence but with "
            "no time window (any span inside the searched range matches) and at most "
            "max_samples_per_key samples per key instead of one alert per consumed set",
        ),
        ir.Absence: _s(
            "approximate",
            "missing-event sequence `sequence by k with maxspan=T [first] ![missing]` "
            "(Elasticsearch >= 8.9): a missing event with the same timestamp as `first` does not "
            "suppress (Elasticsearch searches strictly after it), and the absence is reported "
            "even when the searched range ends before first + T (the evaluator waits)",
        ),
        ir.Aggregate: _s(
            "unsupported",
            "EQL has no aggregation (no stats, windows or thresholds); compile to esql, kql or "
            "splunk (an Elastic threshold rule covers simple counts)",
        ),
        ir.FirstSeen: _s(
            "unsupported",
            "an EQL query cannot look back at history; use an Elastic new_terms rule (<= 3 "
            "fields) or compile to esql, kql or splunk",
        ),
        ir.Rarity: _s(
            "unsupported", "EQL cannot count over a lookback period; compile to kql or splunk"
        ),
        ir.Deviation: _s(
            "unsupported",
            "EQL cannot aggregate nor compare with past windows; compile to kql or splunk",
        ),
    }

    # ------------------------------------------------------------------ entry point
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        return self.dispatch(analytic.detection, ctx).rstrip("\n") + "\n"

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        text = super().wrap(analytic, ctx, query)
        notes = [
            f"{self.comment} {REQUIREMENT.format(reg=reg, src=src)}\n"
            for reg, src in requirements(analytic)
            if ctx.profile.name == "ecs" and re.search(rf"\b{re.escape(reg)}\b", query)
        ]
        head, _, rest = text.partition("\n")
        second, _, body = rest.partition("\n")
        return head + "\n" + second + "\n" + "".join(notes) + body

    def visit_Match(self, node: ir.Match, ctx: Context) -> str:
        category, cond, _ = self.stream_query(node.stream, ctx)
        return f"{category} where {cond}\n"

    def visit_Sequence(self, node: ir.Sequence, ctx: Context) -> str:
        steps = list(node.steps) + ([node.until] if node.until is not None else [])
        shared, per_step = self.split_keys(steps, ctx)
        rendered = [self.step(s, keys, ctx) for s, keys in zip(steps, per_step, strict=True)]
        until = rendered.pop() if node.until is not None else None
        return _TEMPLATES.get_template("sequence.eql.j2").render(
            kind="sequence",
            by=", ".join(shared),
            maxspan=duration(node.maxspan_ms),
            steps=rendered,
            until=until,
        )

    def visit_Absence(self, node: ir.Absence, ctx: Context) -> str:
        ctx.approximate(
            "absence (A not followed by B)",
            "compiled as an Elasticsearch missing-event sequence (`![...]`): a missing event "
            "at the same timestamp as the first event does not suppress it (Elasticsearch "
            "searches strictly later events), and an absence is reported as soon as the "
            f"searched range has no missing event, even if it ends before first + "
            f"{duration(node.within_ms)} (schedule the rule to look back at least that far "
            "behind now)",
            node.span,
        )
        steps = [node.first, node.missing]
        shared, per_step = self.split_keys(steps, ctx)
        first = self.step(node.first, per_step[0], ctx)
        missing = "!" + self.step(node.missing, per_step[1], ctx)
        return _TEMPLATES.get_template("sequence.eql.j2").render(
            kind="sequence",
            by=", ".join(shared),
            maxspan=duration(node.within_ms),
            steps=[first, missing],
            until=None,
        )

    def visit_Cooccurrence(self, node: ir.Cooccurrence, ctx: Context) -> str:
        ctx.approximate(
            "unordered co-occurrence",
            f"compiled as an EQL `sample`, which has no time window: members up to the whole "
            f"searched range apart match, not only within {duration(node.window_ms)} (set the "
            "rule's look-back to the window to come close), and each key yields at most "
            "max_samples_per_key samples rather than one alert per set of events",
            node.span,
        )
        shared, per_step = self.split_keys(list(node.members), ctx)
        return _TEMPLATES.get_template("sequence.eql.j2").render(
            kind="sample",
            by=", ".join(shared),
            maxspan=None,
            steps=[self.step(m, k, ctx) for m, k in zip(node.members, per_step, strict=True)],
            until=None,
        )

    # ------------------------------------------------------------------ streams
    def stream_query(self, name: str, ctx: Context) -> tuple[str, str, Env]:
        """The event category, the condition and the field environment of a stream."""
        category, parts, env = self._stream_parts(name, ctx)
        return category, join("and", parts, top=True) or "true", env

    def _stream_parts(self, name: str, ctx: Context) -> tuple[str, list[str], Env]:
        stream = ctx.analytic.stream(name)
        if isinstance(stream.source, ir.LogSource):
            category, rest = self._logsource(stream.source, stream.span, ctx)
            env = Env()
            parts = PredicateRenderer(ctx, env).operands(rest, False, "and")
        else:
            category, parts, env = self._stream_parts(stream.source, ctx)
        if stream.join is not None:  # rejected by check_support; keep the invariant explicit
            raise ctx.unsupported(
                construct_name(stream.join),
                self.SUPPORT[ir.Join].how,
                stream.join.span,
                "compile to kql or splunk, which join streams",
            )
        env = env.enriched(stream.enrich).derived(stream.derive)
        filt = stream.filter
        if category == "any":
            category, filt = self._lift_category(filt, env)
        parts = parts + PredicateRenderer(ctx, env).operands(filt, False, "and")
        return category, parts, env

    @staticmethod
    def _lift_category(filt: ir.Predicate, env: Env) -> tuple[str, ir.Predicate]:
        """`any where event.category : "process" and ...` is `process where ...`."""
        items = filt.items if isinstance(filt, ir.And) else (filt,)
        for i, item in enumerate(items):
            if (
                isinstance(item, ir.Eq)
                and item.field == "event.category"
                and env.raw_field("event.category") == "event.category"
                and item.quantifier == "any"
                and len(item.values) == 1
                and isinstance(item.values[0], str)
                and _CATEGORY.fullmatch(item.values[0])
            ):
                return item.values[0], ir.And(items[:i] + items[i + 1 :], filt.span)
        return "any", filt

    def _logsource(self, ls: ir.LogSource, span: ir.Span, ctx: Context) -> tuple[str, ir.Predicate]:
        """EQL's event category (the `event.category` keyword; ECS allows only lower-case
        values, which `process where` matches) and the rest of the logsource condition."""
        if ls.category is not None and ls.category not in LOGSOURCE_CATEGORIES:
            raise CompileError(
                ctx.unsupported(
                    f"logsource category '{ls.category}'",
                    "the category has no ECS condition",
                    span,
                    "use one of: " + ", ".join(sorted(LOGSOURCE_CATEGORIES)),
                ).diagnostics
            )
        full = logsource_predicate(ls)
        category = "any"
        rest: list[ir.Predicate] = []
        for part in full.items if isinstance(full, ir.And) else (full,):
            for item in part.items if isinstance(part, ir.And) else (part,):
                if (
                    category == "any"
                    and isinstance(item, ir.Eq)
                    and item.field == "event.category"
                    and len(item.values) == 1
                    and isinstance(item.values[0], str)
                ):
                    category = item.values[0]
                else:
                    rest.append(item)
        return category, ir.And(tuple(rest))

    # ------------------------------------------------------------------ correlation steps
    def step(self, step: ir.Step, keys: list[str], ctx: Context) -> str:
        category, cond, _ = self.stream_query(step.stream, ctx)
        text = f"[{category} where {cond}]"
        if keys:
            text += " by " + ", ".join(keys)
        return text

    def split_keys(self, steps: list[ir.Step], ctx: Context) -> tuple[list[str], list[list[str]]]:
        """Key positions spelled alike in every step go to `sequence by`; the others stay on
        the steps. Keys compare position by position, so moving whole positions is neutral."""
        mapped = [[self.key_field(s, k, ctx) for k in s.keys] for s in steps]
        width = len(mapped[0]) if mapped else 0
        shared_pos = [i for i in range(width) if len({m[i] for m in mapped}) == 1]
        shared = [mapped[0][i] for i in shared_pos]
        per_step = [[m[i] for i in range(width) if i not in shared_pos] for m in mapped]
        return shared, per_step

    def key_field(self, step: ir.Step, key: str, ctx: Context) -> str:
        _, _, env = self.stream_query(step.stream, ctx)
        raw = env.raw_field(key)
        if raw is None:
            raise ctx.unsupported(
                f"derived key '{key}'",
                "EQL `by` keys are stored fields compared exactly; a field computed by derive "
                "or enrich cannot be a key",
                step.span,
                _DERIVE_ALT,
            )
        if raw in profile_arrays(ctx.profile.name):
            ctx.approximate(
                "multi-valued correlation key",
                f"'{raw}' is multi-valued in ECS: Elasticsearch keeps one sequence state machine "
                "per value of a multi-valued `by` key (elastic/elasticsearch#89965), so an event "
                "joins, completes or (as a missing event) is missing under each of its values "
                "separately, where siemc binds an instance to one shared value and uses an "
                "event once",
                step.span,
            )
        return field(ctx.field(raw, step.span))
