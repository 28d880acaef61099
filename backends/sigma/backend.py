"""Sigma rules with Sigma correlation rules (pySigma 2 dialect).

One Sigma rule per event stream the detection reads, then, for a correlating detection, one
correlation rule that references them by ``name``; the artifact is a multi-document YAML file
(rules first, correlation last). Field names come from the ``sigma`` profile, per logsource
(:mod:`backends.sigma.fields`); derived fields, enrichments and lookups are inlined into the
filters (:mod:`backends.sigma.inline`). What Sigma cannot check but can drop soundly (baselines,
`until`, ratios) is dropped and declared a superset (:mod:`backends.sigma.streams`).
References: https://github.com/SigmaHQ/sigma-specification (rules, modifiers appendix,
correlation rules v2.1.0) and pySigma's ``sigma.correlations`` (value_avg/value_percentile and
extended temporal conditions are pySigma extensions).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

import jinja2

from backends.base import (
    Artifact,
    Backend,
    CompileError,
    Context,
    Support,
    alternative_for,
    construct_name,
)
from backends.profiles import describe, load_profile
from backends.relax import Dropped
from backends.sigma import correlation
from backends.sigma.checks import support_errors
from backends.sigma.correlation import Member
from backends.sigma.fields import SourceMap, source_map
from backends.sigma.filters import FilterTranslator
from backends.sigma.inline import FALSE, TRUE, Env, SigmaInliner
from backends.sigma.joins import SUPERSET, joined
from backends.sigma.streams import IDENTITY_NOTE, chain, relaxed
from backends.sigma.support import SUPPORT, timespan_text
from backends.sigma.tree import Cond, DetectionRenderer, conj
from backends.sigma.writer import block, scalar
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


class SigmaBackend(Backend):
    target = "sigma"
    extension = ".yml"
    comment = "#"
    profiles = ("sigma",)
    SUPPORT: ClassVar[dict[type, Support]] = SUPPORT

    def __init__(self) -> None:
        self._dropped: tuple[Dropped, ...] = ()
        self._identity = False

    def compile(
        self,
        analytic: ir.Analytic,
        *,
        profile: str | None = None,
        allow_approximate: bool = False,
        allow_superset: bool = False,
    ) -> Artifact:
        # what Sigma cannot check but can drop soundly goes first; render() declares it
        name = profile or self.profiles[0]
        loose, self._dropped, self._identity = (
            relaxed(analytic, load_profile(name))
            if name in self.profiles
            else (analytic, (), False)
        )
        return super().compile(
            loose,
            profile=profile,
            allow_approximate=allow_approximate,
            allow_superset=allow_superset,
        )

    # ------------------------------------------------------------------ support checks
    def check_support(self, analytic: ir.Analytic, ctx: Context) -> None:
        def reject(
            node: object, construct: str | None, reason: str | None, alternative: str | None
        ) -> list[Diagnostic]:
            span: ir.Span = getattr(node, "span", ctx.analytic.span)
            return ctx.unsupported(
                construct or construct_name(node),
                reason or self.SUPPORT[type(node)].how,
                span,
                alternative or alternative_for(self.target, node),
            ).diagnostics

        errors = support_errors(analytic, reject)
        if errors:
            raise CompileError(errors)

    # ------------------------------------------------------------------ rendering
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        if self._identity:
            ctx.note(IDENTITY_NOTE)
        for d in self._dropped:
            ctx.approximate(d.construct, d.what, d.span, direction="superset")
        det = analytic.detection
        prefix = slug(analytic.id)
        if isinstance(det, ir.Match):
            member = Member(f"{prefix}_{slug(det.stream)}", det.stream, det.stream, (), det.span)
            return self._rule(analytic, ctx, member, metadata=True)
        members = self._members(analytic, det, prefix)
        sources: dict[str, SourceMap] = {}
        envs: dict[str, Env] = {}
        errors: list[Diagnostic] = []
        for m in members:
            try:
                sources[m.name], envs[m.name] = self._source(analytic, ctx, m.stream)
            except CompileError as exc:
                errors += exc.diagnostics
        if errors:
            raise CompileError(errors)
        corr: dict[str, Any]
        if isinstance(det, ir.Aggregate):
            m0 = members[0]
            corr = correlation.aggregate(ctx, det, m0, sources[m0.name], envs[m0.name])
            window, span = det.window.size_ms, det.window.span
        elif isinstance(det, ir.Absence):
            corr = correlation.absence(ctx, det, members[0].name, members[1].name)
            ctx.note(correlation.EXTENSION_NOTE.format(expr=corr["condition"]))
            window, span = det.within_ms, det.span
        else:
            corr = correlation.temporal(ctx, det)
            window = det.maxspan_ms if isinstance(det, ir.Sequence) else det.window_ms
            span = det.span
        rules: list[str] = []
        counted = _counted_steps(det, members)
        for m in members:
            try:
                if m.name in counted:
                    assert isinstance(det, ir.Sequence)
                    rules.append(self._counted(analytic, ctx, m, counted[m.name], det))
                elif (j := joined(analytic, m.stream)) is not None:
                    rules.append(self._chained(analytic, ctx, m, j))
                else:
                    rules.append(self._rule(analytic, ctx, m, metadata=False))
            except CompileError as exc:
                errors += exc.diagnostics
        if errors:
            raise CompileError(errors)
        corr.update(correlation.group_by(ctx, members, sources, envs))
        corr["timespan"] = correlation.timespan(ctx, window, span)
        corr["rules"] = [m.name for m in members]
        meta = self._metadata(analytic)
        if isinstance(det, ir.Absence):
            meta["description"] += " (Condition: a pySigma extended temporal condition.)"
        doc = _ENV.get_template("correlation.yml.j2").render(
            **meta,
            id=uuid.uuid5(ID_NAMESPACE, f"{analytic.id}/correlation"),
            name=f"{prefix}_correlation",
            **{
                k: corr.get(k)
                for k in ("type", "rules", "group_by", "aliases", "timespan", "condition")
            },
        )
        return "".join(rules) + doc

    def _chained(self, analytic: ir.Analytic, ctx: Context, m: Member, s: ir.Stream) -> str:
        """The rules of a step over a join and the temporal correlation pairing them, named as
        the step (backends.sigma.joins); the step's keys added by the join read the partner."""
        j = s.join
        assert j is not None
        ctx.approximate(
            "stream join",
            SUPERSET.format(keys=", ".join(j.on), within=timespan_text(j.within_ms)),
            j.span,
            direction="superset",
        )
        event = Member(f"{m.name}_event", m.stream, f"{m.key}/event", j.on, j.span)
        partner = Member(
            f"{m.name}_{slug(j.stream)}", j.stream, f"{m.key}/{j.stream}", j.on, j.span
        )
        sources = {}
        envs = {}
        for x in (event, partner):
            sources[x.name], envs[x.name] = self._source(analytic, ctx, x.stream)
        for k in m.keys:
            if k in j.add:
                m.key_sources[k] = (sources[partner.name], envs[partner.name])
        pair = correlation.group_by(ctx, [event, partner], sources, envs)
        doc = self._member_correlation(
            analytic,
            m,
            "join",
            f"{analytic.id} {m.key}: {s.name} joined to {j.stream}",
            f"Stream '{s.name}': a {j.stream} event before it with the same {', '.join(j.on)}",
            type="temporal",
            rules=[event.name, partner.name],
            group_by=pair["group_by"],
            aliases=pair["aliases"],
            timespan=correlation.timespan(ctx, j.within_ms, j.span),
            condition=None,
        )
        return (
            self._rule(analytic, ctx, event, metadata=False)
            + self._rule(analytic, ctx, partner, metadata=False)
            + doc
        )

    def _counted(
        self, analytic: ir.Analytic, ctx: Context, m: Member, step: ir.Step, seq: ir.Sequence
    ) -> str:
        """A counted step: its events' rule and an event_count correlation over them (at
        least N per key within maxspan), named as the step, which the sequence's correlation
        reads: the Sigma specification's chained correlation (failed logons counted, then a
        successful logon)."""
        if joined(analytic, m.stream) is not None:
            raise ctx.unsupported(
                "a counted step over a stream join",
                "the join is a correlation of its own, and Sigma counts the events of rules",
                step.span,
                "count the events of a stream without a join, or compile to eql",
            )
        ctx.approximate(
            "counted sequence step (count)",
            f"compiled to an event_count correlation (at least {step.count} events of the "
            f"step per key within {timespan_text(seq.maxspan_ms)}, a sliding window) chained "
            "into the sequence's temporal correlation: it fires on the N events siemc's run "
            "takes (the latest N of the key, within maxspan of the sequence's first event), "
            "and also on any N events within the timespan, in any order with the other steps, "
            "again for every later event (no consumption): more alerts, never fewer",
            step.span,
            direction="superset",
        )
        event = Member(f"{m.name}_event", m.stream, f"{m.key}/event", m.keys, m.span)
        source, env = self._source(analytic, ctx, m.stream)
        pair = correlation.group_by(ctx, [event], {event.name: source}, {event.name: env})
        doc = self._member_correlation(
            analytic,
            m,
            "count",
            f"{analytic.id} {m.key}: {step.count} events of {m.stream}",
            f"At least {step.count} events of stream '{m.stream}' per key",
            type="event_count",
            rules=[event.name],
            group_by=pair["group_by"],
            aliases=pair["aliases"],
            timespan=correlation.timespan(ctx, seq.maxspan_ms, step.span),
            condition={"gte": step.count},
        )
        return self._rule(analytic, ctx, event, metadata=False) + doc

    def _member_correlation(
        self, analytic: ir.Analytic, m: Member, kind: str, title: str, what: str, **corr: Any
    ) -> str:
        """The correlation a step's member is (a join, a counted run), which the detection's
        correlation reads by the member's name: no metadata of its own but title and
        description."""
        meta = {k: None for k in self._metadata(analytic)} | {
            "title": title,
            "description": f"{what}, correlated by {slug(analytic.id)}_correlation",
        }
        rule_id = uuid.uuid5(ID_NAMESPACE, f"{analytic.id}/{m.key}/{kind}")
        return _ENV.get_template("correlation.yml.j2").render(
            **meta, id=rule_id, name=m.name, **corr
        )

    def _members(self, analytic: ir.Analytic, det: ir.Detection, prefix: str) -> list[Member]:
        if isinstance(det, ir.Aggregate):
            name = f"{prefix}_{slug(det.stream)}"
            return [Member(name, det.stream, det.stream, det.keys, det.span)]
        steps: tuple[ir.Step, ...]
        if isinstance(det, ir.Sequence):
            steps = det.steps
        elif isinstance(det, ir.Cooccurrence):
            steps = det.members
        else:
            assert isinstance(det, ir.Absence)
            steps = (det.first, det.missing)
        counts: dict[str, int] = {}
        for s in steps:
            counts[s.stream] = counts.get(s.stream, 0) + 1
        # a stream used by two steps needs two rules: Sigma correlates distinct rules
        out = []
        for s in steps:
            key = s.stream + (f"/{s.alias}" if counts[s.stream] > 1 else "")
            out.append(Member(f"{prefix}_{slug(key)}", s.stream, key, s.keys, s.span))
        return out

    def _source(self, analytic: ir.Analytic, ctx: Context, stream: str) -> tuple[SourceMap, Env]:
        """The Sigma logsource of a stream, and what its field names mean (derive, enrich)."""
        streams = chain(analytic, stream)
        root = streams[0]
        assert isinstance(root.source, ir.LogSource)
        env = Env()
        for s in streams:
            env = env.enriched(s.enrich).derived(s.derive)
        return source_map(ctx.profile, root.source, root.span, root.filter), env

    def _rule(self, analytic: ir.Analytic, ctx: Context, m: Member, *, metadata: bool) -> str:
        streams = chain(analytic, m.stream)
        root = streams[0]
        assert isinstance(root.source, ir.LogSource)
        src = source_map(ctx.profile, root.source, root.span, root.filter)
        if src.substitute is not None:
            ctx.approximate(
                f"logsource {describe(root.source)}",
                src.substitute,
                root.span,
                direction="superset",
            )
        env = Env()
        preds: list[ir.Predicate] = []
        for s in streams:
            env = env.enriched(s.enrich).derived(s.derive)
            where = s.filter
            if s is root and src.implied and isinstance(where, ir.And):
                # the tests that picked the logsource are what the logsource means
                where = ir.And(tuple(x for x in where.items if x not in src.implied), where.span)
            preds.append(SigmaInliner(ctx, env, src).pred(where))
        if FALSE in preds:
            raise ctx.unsupported(
                f"stream '{m.stream}'",
                "its filter, with lookups and derived fields inlined, matches no event",
                streams[-1].span,
                "check the filter's values against the lookup and the functions it reads",
            )
        translator = FilterTranslator(ctx, src)
        nodes = [translator.translate(p) for p in preds if p != TRUE]
        renderer = DetectionRenderer()
        if not nodes and not m.extra:
            # a logsource without filter: Sigma needs a condition, and a tautology on a field
            # of the source keeps every event (including those missing the field)
            anchor = next(iter(src.fields.values()), "EventID")
            anchor = anchor if isinstance(anchor, str) else anchor["field"]
            tree = Cond(f"{anchor}|exists", (True,))
            condition = renderer.condition(tree)
            condition = f"{condition} or not {condition}"
        else:
            condition = renderer.condition(conj(nodes + m.extra))
        meta = self._metadata(analytic)
        if not metadata:
            # a correlated rule is a building block: the correlation carries the metadata
            meta = {k: None for k in meta} | {
                "title": f"{analytic.id} {m.key}: {analytic.meta.title}",
                "description": f"Events of stream '{m.stream}' correlated by "
                f"{slug(analytic.id)}_correlation",
            }
        return _ENV.get_template("rule.yml.j2").render(
            **meta,
            id=uuid.uuid5(ID_NAMESPACE, f"{analytic.id}/{m.key}"),
            name=m.name,
            logsource=src.logsource,
            detection=renderer.selections,
            condition=condition,
        )

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


def _counted_steps(det: ir.Detection, members: list[Member]) -> dict[str, ir.Step]:
    """The members that stand for counted sequence steps (members follow the steps' order)."""
    if not isinstance(det, ir.Sequence):
        return {}
    return {m.name: st for m, st in zip(members, det.steps, strict=True) if st.count > 1}
