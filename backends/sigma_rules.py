"""Sigma rules with Sigma correlation rules (pySigma 2 dialect).

One Sigma rule per event stream the detection reads, then, for a correlating detection, one
correlation rule that references them by ``name``; the artifact is a multi-document YAML file
(rules first, correlation last). Field names come from the ``sigma`` profile, per logsource
(:mod:`backends.sigma_rules_detection`). References:
https://github.com/SigmaHQ/sigma-specification (rules, modifiers appendix, correlation rules
v2.0.2) and pySigma 2.0.1's ``sigma.correlations`` (value_sum/value_avg/value_percentile/
value_median are pySigma extensions not yet in the specification).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

import jinja2

from backends.base import (
    Backend,
    CompileError,
    Context,
    Support,
    alternative_for,
    construct_name,
)
from backends.comment import one_line
from backends.sigma_rules_checks import support_errors
from backends.sigma_rules_correlation import CorrelationMixin, Member
from backends.sigma_rules_detection import (
    All,
    Cond,
    DetectionRenderer,
    FilterTranslator,
    SourceMap,
    conj,
    source_map,
)
from backends.sigma_rules_yaml import block, scalar
from compiler import ir
from compiler.diagnostics import Diagnostic

# Deterministic rule ids: uuid5 of "<analytic id>/<stream>" in a namespace of our own.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://siemc.invalid/sigma")

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("backends", "templates/sigma"),
    autoescape=False,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["scalar"] = scalar
_ENV.filters["block"] = block


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


class SigmaBackend(CorrelationMixin, Backend):
    target = "sigma"
    extension = ".yml"
    comment = "#"
    profiles = ("sigma",)

    SUPPORT: ClassVar[dict[type, Support]] = {
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
            "pattern is passed through, so stay within the PCRE subset Sigma backends accept; "
            "on a name kept in a path field it is approximate (matched against the path)",
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
            "one-column lookups: `Field|expand: '%lookup_column%'`, a placeholder a pySigma "
            "pipeline binds to the CSV column (case-insensitive, as siemc); several columns "
            "matched on one row cannot be expressed (compile to splunk, kql or esql)",
        ),
        ir.And: Support("exact", "one selection map, or `and` between selections"),
        ir.Or: Support("exact", "a list of maps, value lists, or `or` between selections"),
        ir.Not: Support(
            "exact",
            "`not filter`: plain negation, so it holds when the field is missing, as in siemc "
            "(the spec leaves missing fields to backends; pySigma's sqlite, Splunk and Lucene "
            "backends negate this way)",
        ),
        ir.Literal_: Support("exact", "the number a correlation `condition` compares with"),
        ir.FieldRef: Support(
            "unsupported",
            "Sigma rules match fields as logged and compute nothing: field references in "
            "derive/compute/having cannot be expressed (compile to esql, kql or splunk)",
        ),
        ir.MeasureRef: Support(
            "exact", "the correlation metric (event count, value count, sum, avg, percentile)"
        ),
        ir.BinOp: Support(
            "exact",
            "only `measure <op> number` in `having`, as the correlation `condition` "
            "(gt/gte/lt/lte/eq/neq); arithmetic, and/or and comparisons of two measures cannot "
            "be expressed (E200: compile to esql, kql or splunk)",
        ),
        ir.UnaryOp: Support(
            "unsupported",
            "Sigma correlation conditions have no negation or arithmetic; compile to esql, kql "
            "or splunk",
        ),
        ir.Call: Support(
            "unsupported",
            "Sigma rules cannot compute fields; the only derive accepted is `f: lower(f)` / "
            "`upper(f)` read by case-insensitive filters, which Sigma's default "
            "case-insensitive matching makes unnecessary",
        ),
        ir.Enrich: Support(
            "unsupported",
            "Sigma rules cannot add lookup columns to events; placeholders only test "
            "membership (compile to splunk, kql or esql)",
        ),
        ir.Join: Support(
            "unsupported",
            "Sigma correlations group events by equal fields within a timespan but cannot "
            "join one event to another and copy fields (compile to kql or splunk)",
        ),
        ir.Match: Support("exact", "the Sigma rule itself (level, ATT&CK tags)"),
        ir.Sequence: Support(
            "approximate",
            "`temporal_ordered` correlation with group-by (per-step key names -> aliases) and "
            "timespan = maxspan; event consumption, ties and key case are backend-defined; "
            "`until` cannot be expressed (compile to eql)",
        ),
        ir.Cooccurrence: Support(
            "approximate",
            "`temporal` correlation with group-by and timespan; event consumption and key case "
            "are backend-defined",
        ),
        ir.Absence: Support(
            "unsupported",
            "Sigma correlations have no 'not followed by' type (compile to eql, kql or splunk)",
        ),
        ir.Aggregate: Support(
            "approximate",
            "one measure with a `having` on it: count -> event_count, distinct -> value_count, "
            "sum -> value_sum, avg -> value_avg, percentile -> value_percentile; sliding "
            "timespan (tumbling windows approximated); min/max/stdev, several measures and "
            "computed values (ratios) cannot be expressed (compile to esql, kql or splunk)",
        ),
        ir.FirstSeen: Support(
            "unsupported",
            "a Sigma rule sees only the current timespan, no history (compile to kql, splunk "
            "or esql)",
        ),
        ir.Rarity: Support(
            "unsupported",
            "a Sigma rule sees only the current timespan, no history (compile to kql or splunk)",
        ),
        ir.Deviation: Support(
            "unsupported",
            "a Sigma rule cannot compare with past windows (compile to kql or splunk)",
        ),
    }

    # having comparison -> correlation condition operator; MIRROR flips `10 <= m` to `m >= 10`
    CONDITION_OPS: ClassVar[dict[str, str]] = {
        ">": "gt",
        ">=": "gte",
        "<": "lt",
        "<=": "lte",
        "==": "eq",
        "!=": "neq",
    }
    MIRROR: ClassVar[dict[str, str]] = {
        ">": "<",
        ">=": "<=",
        "<": ">",
        "<=": ">=",
        "==": "==",
        "!=": "!=",
    }
    CORRELATION_TYPES: ClassVar[dict[str, str]] = {
        "count": "event_count",
        "distinct": "value_count",
        "sum": "value_sum",
        "avg": "value_avg",
        "percentile": "value_percentile",
    }
    # Sigma timespans: an integer count of s, m, h or d (correlation spec, "Time Selection")
    TIMESPAN_UNITS: ClassVar[tuple[tuple[str, int], ...]] = (
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    )

    def __init__(self) -> None:
        self._notes: list[str] = []

    # ------------------------------------------------------------------ support checks
    def check_support(self, analytic: ir.Analytic, ctx: Context) -> None:
        errors = support_errors(self, analytic, ctx)
        if errors:
            raise CompileError(errors)

    def reject(
        self,
        node: object,
        ctx: Context,
        construct: str | None = None,
        reason: str | None = None,
        alternative: str | None = None,
    ) -> list[Diagnostic]:
        span: ir.Span = getattr(node, "span", ctx.analytic.span)
        return ctx.unsupported(
            construct or construct_name(node),
            reason or self.SUPPORT[type(node)].how,
            span,
            alternative or alternative_for(self.target, node),
        ).diagnostics

    # ------------------------------------------------------------------ rendering
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        self._notes = []
        det = analytic.detection
        prefix = slug(analytic.id)
        if isinstance(det, ir.Match):
            member = Member(f"{prefix}_{slug(det.stream)}", det.stream, det.stream, (), det.span)
            rule, _ = self._rule(analytic, ctx, member, metadata=True)
            return rule
        members = self._members(analytic, det, prefix)
        errors: list[Diagnostic] = []
        rules: list[str] = []
        sources: dict[str, SourceMap] = {}
        if isinstance(det, ir.Aggregate):
            corr = self._aggregate(ctx, det, members[0])
        for m in members:
            try:
                text, sources[m.name] = self._rule(analytic, ctx, m, metadata=False)
                rules.append(text)
            except CompileError as exc:
                errors += exc.diagnostics
        if errors:
            raise CompileError(errors)
        if isinstance(det, ir.Aggregate):
            corr.update(self._group_by(ctx, members, sources))
            corr["timespan"] = self._timespan(ctx, det.window.size_ms, det.window.span)
        else:
            assert isinstance(det, ir.Sequence | ir.Cooccurrence)
            corr = self._temporal(ctx, det)
            corr.update(self._group_by(ctx, members, sources))
            window = det.maxspan_ms if isinstance(det, ir.Sequence) else det.window_ms
            corr["timespan"] = self._timespan(ctx, window, det.span)
        corr["rules"] = [m.name for m in members]
        doc = _ENV.get_template("correlation.yml.j2").render(
            **self._metadata(analytic),
            id=uuid.uuid5(ID_NAMESPACE, f"{analytic.id}/correlation"),
            name=f"{prefix}_correlation",
            **{
                k: corr.get(k)
                for k in ("type", "rules", "group_by", "aliases", "timespan", "condition")
            },
        )
        return "".join(rules) + doc

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        text = super().wrap(analytic, ctx, query)
        if not self._notes:
            return text
        head, _, body = text.partition("\n---\n")
        notes = "".join(f"{self.comment} NOTE {one_line(n)}\n" for n in self._notes)
        return f"{head}\n{notes}---\n{body}"

    def _members(self, analytic: ir.Analytic, det: ir.Detection, prefix: str) -> list[Member]:
        if isinstance(det, ir.Aggregate):
            name = f"{prefix}_{slug(det.stream)}"
            return [Member(name, det.stream, det.stream, det.keys, det.span)]
        assert isinstance(det, ir.Sequence | ir.Cooccurrence)
        steps = det.steps if isinstance(det, ir.Sequence) else det.members
        counts: dict[str, int] = {}
        for s in steps:
            counts[s.stream] = counts.get(s.stream, 0) + 1
        # a stream used by two steps needs two rules: Sigma correlates distinct rules
        out = []
        for s in steps:
            key = s.stream + (f"/{s.alias}" if counts[s.stream] > 1 else "")
            out.append(Member(f"{prefix}_{slug(key)}", s.stream, key, s.keys, s.span))
        return out

    def _chain(self, analytic: ir.Analytic, stream: str) -> list[ir.Stream]:
        chain = [analytic.stream(stream)]
        while isinstance(chain[-1].source, str):
            chain.append(analytic.stream(chain[-1].source))
        return chain[::-1]

    def root(self, analytic: ir.Analytic, stream: str) -> ir.Stream:
        return self._chain(analytic, stream)[0]

    def _rule(
        self, analytic: ir.Analytic, ctx: Context, m: Member, *, metadata: bool
    ) -> tuple[str, SourceMap]:
        chain = self._chain(analytic, m.stream)
        root = chain[0]
        assert isinstance(root.source, ir.LogSource)
        src = source_map(ctx.profile, root.source, root.span)
        translator = FilterTranslator(ctx, src, self._notes)
        tree = conj([translator.translate(s.filter) for s in chain] + m.extra)
        renderer = DetectionRenderer()
        if tree == All(()):
            # a logsource without filter: Sigma needs a condition, and a tautology on a field
            # of the source keeps every event (including those missing the field)
            anchor = next(iter(src.fields.values()), "EventID")
            anchor = anchor if isinstance(anchor, str) else anchor["field"]
            tree = Cond(f"{anchor}|exists", (True,))
            condition = renderer.condition(tree)
            condition = f"{condition} or not {condition}"
        else:
            condition = renderer.condition(tree)
        meta = self._metadata(analytic)
        if not metadata:
            # a correlated rule is a building block: the correlation carries the metadata
            meta = {k: None for k in meta} | {
                "title": f"{analytic.id} {m.key}: {analytic.meta.title}",
                "description": f"Events of stream '{m.stream}' correlated by "
                f"{slug(analytic.id)}_correlation",
            }
        text = _ENV.get_template("rule.yml.j2").render(
            **meta,
            id=uuid.uuid5(ID_NAMESPACE, f"{analytic.id}/{m.key}"),
            name=m.name,
            logsource=src.logsource,
            detection=renderer.selections,
            condition=condition,
        )
        return text, src

    def _metadata(self, analytic: ir.Analytic) -> dict[str, Any]:
        meta = analytic.meta
        tags = [f"attack.{t.lower()}" for t in meta.attack_techniques]
        description = meta.description.strip()
        if meta.attack_analytics:
            description += f" (MITRE ATT&CK analytics: {', '.join(meta.attack_analytics)})"
        return {
            "title": meta.title,
            "description": description,
            "author": meta.owner,
            "references": list(meta.references),
            "tags": tags,
            "falsepositives": list(meta.false_positives),
            "level": meta.severity,
        }
