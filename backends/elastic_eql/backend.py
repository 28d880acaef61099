"""Elasticsearch EQL backend.

Queries follow the Elasticsearch dialect of EQL (not Endgame EQL): ``:`` and the ``~`` forms are
case-insensitive, ``==``/``in``/``like``/``regex`` are case-sensitive, wildcards only exist in
``:``/``like``. https://www.elastic.co/guide/en/elasticsearch/reference/current/eql-syntax.html
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import ClassVar

import jinja2

from backends.base import Backend, CompileError, Context, Support, construct_name
from backends.comment import one_line
from backends.elastic_eql import process, relaxation
from backends.elastic_eql.predicates import PredicateRenderer, join
from backends.elastic_eql.support import SUPPORT
from backends.elastic_eql.text import duration, field
from backends.elastic_eql.threshold import threshold_rule
from backends.elastic_esql.expr import profile_arrays
from backends.identity import disjoint_streams, sequence_process_key
from backends.inline import Env
from backends.registered_domain import REQUIREMENT, requirements
from compiler import ir
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES, logsource_predicate

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "eql"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)

# ECS event.category values are lower-case words (https://www.elastic.co/guide/en/ecs/current/
# ecs-allowed-values-event-category.html); EQL matches the category as a keyword term.
_CATEGORY = re.compile(r"[a-z][a-z_]*")
MAX_RUNS = 100  # Elasticsearch: "The runs value must be between 1 and 100 (inclusive)"
_DERIVE_ALT = "compile to esql (EVAL), kql (extend) or splunk (eval), which compute fields"


class EqlBackend(Backend):
    target = "eql"
    extension = ".eql"
    comment = "//"
    profiles = ("ecs",)

    SUPPORT: ClassVar[dict[type, Support]] = SUPPORT

    # ------------------------------------------------------------------ entry point
    def check_support(self, analytic: ir.Analytic, ctx: Context) -> None:
        """Baselines are dropped (:mod:`relaxation`), so only the rest must be expressible; a
        refused aggregate that is a count or distinct-count threshold names the Elastic
        threshold rule that approximates it."""
        relaxed = relaxation.relaxed(analytic)[0]
        try:
            super().check_support(relaxed, ctx)
        except CompileError as exc:
            d = relaxed.detection
            rule = threshold_rule(d) if isinstance(d, ir.Aggregate) else None
            if rule is None:
                raise
            at = (d.span.line, d.span.col)
            raise CompileError(
                [
                    dataclasses.replace(x, help=f"{rule}; or {x.help}")
                    if (x.line, x.col) == at
                    else x
                    for x in exc.diagnostics
                ]
            ) from None

    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        relaxation.declare(analytic, ctx)
        detection = relaxation.relaxed(analytic)[0].detection
        return self.dispatch(detection, ctx).rstrip("\n") + "\n"

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        text = super().wrap(analytic, ctx, query)
        notes = [
            f"{self.comment} {REQUIREMENT.format(reg=reg, src=src)}\n"
            for reg, src in requirements(analytic)
            if ctx.profile.name == "ecs" and re.search(rf"\b{re.escape(reg)}\b", query)
        ]
        d = analytic.detection
        identity = process.note(analytic, d) if isinstance(d, ir.Sequence) else None
        if identity is not None and process.ENTITY_ID in query:
            notes.append(f"{self.comment} {one_line(identity)}\n")
        head, _, rest = text.partition("\n")
        second, _, body = rest.partition("\n")
        return head + "\n" + second + "\n" + "".join(notes) + body

    def visit_Match(self, node: ir.Match, ctx: Context) -> str:
        category, cond, _ = self.stream_query(node.stream, ctx)
        return f"{category} where {cond}\n"

    def visit_Sequence(self, node: ir.Sequence, ctx: Context) -> str:
        # The same process: ECS names it by process.entity_id, which needs no end events.
        pk = sequence_process_key(ctx.analytic, node)
        guards: list[str] = []
        if pk is not None:
            # The analytic keys on the PID: a step event without one never joins (a null key),
            # which the entity id alone would not say.
            guards = [f"{self.key_field(s, pk.pid, ctx)} != null" for s in node.steps]
        node = process.entity_keyed(ctx.analytic, node) or node
        steps = list(node.steps) + ([node.until] if node.until is not None else [])
        shared, per_step = self.split_keys(steps, ctx)
        rendered = [
            self.step(s, keys, ctx, guards[i] if i < len(guards) else None)
            for i, (s, keys) in enumerate(zip(steps, per_step, strict=True))
        ]
        until = rendered.pop() if node.until is not None else None
        # after the steps: what the target cannot express is reported before approximations
        self.shared_streams(node, ctx)
        return _TEMPLATES.get_template("sequence.eql.j2").render(
            kind="sequence",
            by=", ".join(shared),
            maxspan=duration(node.maxspan_ms),
            steps=rendered,
            until=until,
        )

    def visit_Absence(self, node: ir.Absence, ctx: Context) -> str:
        # Elasticsearch looks for the nearest missing event strictly later than the first
        # (a range `gt` its millisecond) and suppresses when it is at most maxspan later: the
        # evaluator's (t, t + within]. Only the end of the searched range differs.
        ctx.approximate(
            "absence (A not followed by B)",
            "compiled as an Elasticsearch missing-event sequence (`![...]`), which finds the "
            "same missing events as siemc (strictly later, at most maxspan later), but reports "
            "an absence as soon as the searched range has no missing event, even if it ends "
            f"before first + {duration(node.within_ms)} (schedule the rule to look back at "
            "least that far behind now)",
            node.span,
            direction="superset",
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
    def step(self, step: ir.Step, keys: list[str], ctx: Context, guard: str | None = None) -> str:
        category, parts, _ = self._stream_parts(step.stream, ctx)
        cond = join("and", parts + ([guard] if guard else []), top=True) or "true"
        text = f"[{category} where {cond}]"
        if keys:
            text += " by " + ", ".join(keys)
        return text + self.runs(step, ctx)

    @staticmethod
    def shared_streams(node: ir.Sequence, ctx: Context) -> None:
        """Two steps reading one stream: Elasticsearch offers each event to every step it
        matches, independently (it may extend one sequence and start another), where siemc
        gives an event to one step. The copies of a counted step are matched as EQL does."""
        streams = [st.stream for st in node.steps]
        repeated = sorted({s for s in streams if streams.count(s) > 1})
        overlapping = [
            (x, y)
            for i, x in enumerate(streams)
            for y in streams[i + 1 :]
            if x != y and not disjoint_streams(ctx.analytic, x, y, profile_arrays(ctx.profile.name))
        ]
        if overlapping and not repeated:
            pairs = ", ".join(f"{x} and {y}" for x, y in dict.fromkeys(overlapping))
            # Two steps: the extra partial Elasticsearch starts can only add alerts (it
            # replaces no other partial); with more steps it can replace one waiting for a
            # middle step that siemc completes later.
            two = len(streams) == 2
            ctx.approximate(
                "ordered sequence",
                f"the steps' filters can hold for one event ({pairs}: no field both require "
                "with disjoint values): Elasticsearch offers such an event to every step "
                "independently, so it can complete one sequence and also start another, where "
                "siemc gives it to the most advanced step only; equal when no event belongs to "
                "two steps"
                + (
                    ", else more alerts, never fewer"
                    if two
                    else ", else the new partial it starts can replace one siemc completes later"
                ),
                node.span,
                direction="superset" if two else "mixed",
            )
        if repeated:
            ctx.approximate(
                "ordered sequence",
                f"steps that read one stream ({', '.join(repeated)}): Elasticsearch matches "
                "an event against every step independently, so an event can complete one "
                "sequence and start or extend another ([a] [a] over a1 a2 a3 a4 gives (a1, "
                "a2), (a2, a3), (a3, a4)), where siemc uses an event in one step ((a1, a2), "
                "(a3, a4)); a counted step (`with runs`) is matched as EQL does",
                node.span,
            )

    @staticmethod
    def runs(step: ir.Step, ctx: Context) -> str:
        """`with runs=N` for a counted step: Elasticsearch defines it as the step repeated N
        times (https://www.elastic.co/docs/reference/query-languages/eql/eql-syntax,
        "with runs statement"), which is what a counted step means."""
        if step.count == 1:
            return ""
        if step.count > MAX_RUNS:
            raise ctx.unsupported(
                f"a counted step of {step.count} events",
                f"Elasticsearch accepts `with runs` from 1 to {MAX_RUNS}",
                step.span,
                "count at most 100 events in the step, or count them per key in a window "
                "with a `threshold` (compile to esql, kql or splunk)",
            )
        return f" with runs={step.count}"

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
