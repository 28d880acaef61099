"""Detections and baselines of the kql backend.

Every detection yields an *alert relation*: a ``let __alerts`` whose rows are the candidates,
with ``__start`` (the time baselines measure their lookback from), identity columns (what makes
one candidate) and the candidate fields baselines read. Baselines then filter it with joins.
Sentinel scheduled rules read at most 14 days (queryPeriod, "Create a scheduled analytics rule"),
which bounds exact lookbacks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from backends.base import Context
from backends.identity import PID
from backends.sentinel import scan
from backends.sentinel import text as t
from backends.sentinel.consume import KqlConsumeMixin
from backends.sentinel.counted import KqlCountedMixin
from backends.sentinel.expr import Scope
from backends.sentinel.process import exact_identity_pairs, parent_child
from backends.sentinel.seqnotes import PID_CHILD, SEQ_DETAIL, SEQ_TIES
from compiler import ir
from compiler.evaluator.engine import detection_span

SENTINEL_MAX_PERIOD_MS = 14 * 86_400_000
_MIN_FREQ_MS = 5 * 60_000  # the shortest queryFrequency of a scheduled rule
# what a watchlist or summary table must keep for a baseline to read its whole lookback
_KEPT = {
    "first-seen baseline": "first-seen keys",
    "rarity baseline": "(key, across value) pairs with the time last seen",
    "deviation baseline": "past window values of the measure",
}
_MEASURE = {"sum": "sum", "avg": "avg", "min": "min", "max": "max", "stdev": "stdev"}


@dataclass
class Alerts:
    query: str
    identity: list[str]
    cand: dict[str, str] = field(default_factory=dict)  # candidate field -> column
    window_ms: int = 0
    agg: ir.Aggregate | None = None
    win_let: str | None = None  # the aggregate before `having` (deviation history)


class KqlDetectMixin(KqlConsumeMixin, KqlCountedMixin):
    scope: Scope
    lets: list[tuple[str, str]]
    scopes: dict[str, Scope]

    _ctx_analytic: ir.Analytic
    identity_seq: ir.Sequence | None
    folded: set[str]  # streams whose join reads the row's own process columns (MDE)

    if TYPE_CHECKING:  # provided by KqlExprMixin / KqlBackend

        def col(self, name: str, span: ir.Span, ctx: Context) -> str: ...
        def expr(self, e: ir.Expr, ctx: Context) -> str: ...
        def pred(self, p: ir.Predicate, ctx: Context) -> str: ...
        def _present(self, c: str) -> str: ...
        def ctype(self, column: str) -> str: ...
        def _dynamic(self, c: str, what: str, span: ir.Span, ctx: Context) -> None: ...
        def folded_sequence(
            self,
            a: ir.Analytic,
            d: ir.Sequence,
            extras: list[str],
            later: list[str],
            keys: list[str],
            ctx: Context,
        ) -> str | None: ...

    def dispatch_detection(self, d: ir.Detection, ctx: Context) -> Alerts:
        return getattr(self, f"visit_{type(d).__name__}")(d, ctx)  # type: ignore[no-any-return]

    def detection_query(self, a: ir.Analytic, ctx: Context) -> str:
        alerts = self.dispatch_detection(a.detection, ctx)
        if not a.baselines:
            return alerts.query
        self.lets.append(("__alerts", alerts.query))
        q = "__alerts"
        for i, b in enumerate(a.baselines):
            q += "\n" + self.dispatch_baseline(b, i, alerts, ctx)
        return q

    def dispatch_baseline(self, b: ir.Baseline, i: int, al: Alerts, ctx: Context) -> str:
        return getattr(self, f"visit_{type(b).__name__}")(b, i, al, ctx)  # type: ignore[no-any-return]

    def _use(self, stream: str) -> Scope:
        self.scope = self.scopes[stream].clone()
        return self.scope

    def _step_cols(self, step: ir.Step, ctx: Context) -> tuple[str, list[str]]:
        self._use(step.stream)
        return self.col("@timestamp", step.span, ctx), [
            self.col(k, step.span, ctx) for k in step.keys
        ]

    # ------------------------------------------------------------------ match
    def visit_Match(self, d: ir.Match, ctx: Context) -> Alerts:
        sc = self._use(d.stream)
        tcol = self.col("@timestamp", d.span, ctx)
        cand = {**{k: v for k, v in sc.source.fields.items()}, **sc.cols}
        return Alerts(f"{t.ident(d.stream)}\n| extend __start = {tcol}", ["__start"], cand)

    # ------------------------------------------------------------------ aggregate
    def _conditions(self, agg: ir.Aggregate, ctx: Context) -> list[str]:
        """``__if_<measure> = <filter>`` per conditional measure: a boolean column computed on
        each event before the keys are expanded (a filter reads the event's whole values).
        What the filter's rendering declares about a stream's rows, it does not claim about
        a measure (more or fewer counted events move a measure either way): mixed."""
        out = []
        for m in agg.measures:
            if m.where is None:
                continue
            n = len(ctx.approximations)
            out.append(f"__if_{m.name} = {self.pred(m.where, ctx)}")
            ctx.approximations[n:] = [
                dataclasses.replace(a, direction="mixed") for a in ctx.approximations[n:]
            ]
        return out

    def _measures(
        self, agg: ir.Aggregate, ctx: Context, over: dict[str, str] | None = None
    ) -> tuple[list[str], list[str]]:
        """Aggregations and the post-summarize fixes (sum of no values is null; stdev needs 2).
        A conditional measure aggregates the rows whose ``__if_<measure>`` column is true (the
        *if variants: countif, count_distinctif, sumif, ...)."""
        aggs, fixes = [], []
        for m in agg.measures:
            cond = f"__if_{m.name}" if m.where is not None else None
            c = (
                None
                if m.field is None
                else (over or {}).get(m.field) or self.col(m.field, m.span, ctx)
            )
            q = t.ident(c) if c else ""
            name = t.ident(m.name)
            if c is not None and m.kind != "count" and self.ctype(c) == "dynamic":
                raise ctx.not_implemented(
                    f"{m.kind} measure '{m.name}' of the multi-valued (dynamic) column '{c}' "
                    "(each element is a value: KQL needs mv-expand without changing the "
                    "event counts)",
                    m.span,
                )
            if m.kind == "count":
                tests = [x for x in (cond, c and self._present(c)) if x]
                aggs.append(
                    f"{name} = countif({' and '.join(tests)})" if tests else f"{name} = count()"
                )
            elif m.kind == "distinct":
                assert c is not None
                has = self._present(c) + (f" and {cond}" if cond else "")
                aggs.append(f"{name} = count_distinctif({q}, {has})")
            elif m.kind == "percentile":
                assert c is not None
                x = q if self.ctype(c) in ("long", "int", "real") else f"todouble({q})"
                ty = "long" if self.ctype(c) in ("long", "int") else "real"
                # exact nearest rank over the sorted values (percentile() is a T-Digest
                # estimate); make_list keeps up to 1,048,576 values per group
                if cond:
                    aggs.append(f"__n_l_{m.name} = make_list_if({x}, {cond})")
                    aggs.append(f"__n_{m.name} = countif(isnotnull({x}) and {cond})")
                else:
                    aggs.append(f"__n_l_{m.name} = make_list({x})")
                    aggs.append(f"__n_{m.name} = countif(isnotnull({x}))")
                fixes.append(
                    f"{name} = iff(__n_{m.name} < 1, {ty}(null), "
                    f"{nearest_rank(f'__n_l_{m.name}', f'__n_{m.name}', m.p or 0, ty)})"
                )
            else:
                assert c is not None
                if cond:
                    aggs.append(f"{name} = {_MEASURE[m.kind]}if({q}, {cond})")
                    aggs.append(f"__n_{m.name} = countif(isnotnull({q}) and {cond})")
                else:
                    aggs.append(f"{name} = {_MEASURE[m.kind]}({q})")
                    aggs.append(f"__n_{m.name} = countif(isnotnull({q}))")
                need = 2 if m.kind == "stdev" else 1
                ty = "real" if m.kind in ("avg", "stdev") or self.ctype(c) == "real" else "long"
                fixes.append(f"{name} = iff(__n_{m.name} < {need}, {ty}(null), {name})")
        return aggs, fixes

    def visit_Aggregate(self, agg: ir.Aggregate, ctx: Context) -> Alerts:
        sc = self._use(agg.stream)
        tcol = self.col("@timestamp", agg.span, ctx)
        keys = [self.col(k, agg.span, ctx) for k in agg.keys]
        for k, c in zip(agg.keys, keys, strict=True):
            sc.cols[k] = c
        size = t.timespan(agg.window.size_ms)
        lines = [t.ident(agg.stream)]
        conds = self._conditions(agg, ctx)
        if conds:
            lines.append(f"| extend {', '.join(conds)}")
        for c in dict.fromkeys(keys):
            if self.ctype(c) == "dynamic":
                # a multi-valued key puts the event in the group of each element
                lines.append(f"| mv-expand {t.ident(c)} to typeof(string)")
                sc.types[c] = "string"
        if keys:
            lines.append("| where " + " and ".join(self._present(c) for c in keys))
        by = ", ".join(t.ident(k) for k in keys)
        aggs, fixes = self._measures(agg, ctx)
        if agg.window.kind == "tumbling":
            # bin() rounds to multiples of the size counted from 0001-01-01, which is a whole
            # number of days before the Unix epoch: the same windows when the size divides a day.
            if 86_400_000 % agg.window.size_ms == 0:
                b = f"bin({tcol}, {size})"
            else:
                b = f"bin_at({tcol}, {size}, datetime(1970-01-01))"
            lines.append(
                f"| summarize {', '.join(aggs)} by __start = {b}" + (f", {by}" if by else "")
            )
            lines.append(f"| extend __end = __start + {size}")
            identity = ["__start", *keys]
        elif (scanned := self._sliding_scan(agg, keys, lines, ctx)) is not None:
            lines, identity = scanned.split("\n"), ["__end", *keys]
        else:
            ctx.approximate(
                "sliding window aggregation",
                "each event's window [t - size, t] is evaluated (self-join on the group keys) and "
                "every event whose window satisfies the condition alerts; the evaluator empties "
                "the "
                "group's window after an alert, so a burst of N events over a threshold T gives "
                "N - T + 1 alerts here instead of floor(N / T); events with the same timestamp are "
                "all in each other's window (the evaluator counts only those that arrived before)",
                agg.window.span,
            )
            fields = sorted({m.field for m in agg.measures if m.field})
            fcols = [self.col(f, agg.span, ctx) for f in fields]
            ifs = [f"__if_{m.name}" for m in agg.measures if m.where is not None]
            proj = ", ".join(
                [f"__t = {tcol}", *[t.ident(c) for c in dict.fromkeys(keys + fcols)], *ifs]
            )
            self.lets.append((f"__w_{_safe(agg.stream)}", "\n".join([*lines, f"| project {proj}"])))
            w = f"__w_{_safe(agg.stream)}"
            lines = [
                f"{w}",
                "| summarize by __end = __t" + (f", {by}" if by else ""),
                f"| join kind=inner ({w}) on {by}"
                if by
                else f"| extend __one = 1 | join kind=inner ({w} | extend __one = 1) on __one",
                f"| where __t between ((__end - {size}) .. __end)",
                f"| summarize {', '.join(aggs)}, __start = min(__t) by __end"
                + (f", {by}" if by else ""),
            ]
            identity = ["__end", *keys]
        if fixes:
            lines.append(f"| extend {', '.join(fixes)}")
        for name, e in agg.compute:
            lines.append(f"| extend {t.ident(name)} = {self.expr(e, ctx)}")
        if any(m.kind not in ("count", "distinct") for m in agg.measures):
            lines.append("| project-away __n_*")
        win = "\n".join(lines)
        win_let = None
        if any(isinstance(b, ir.Deviation) for b in ctx.analytic.baselines):
            win_let = "__windows"
            self.lets.append((win_let, win))
            lines = [win_let]
        if agg.having is not None:
            lines.append(f"| where {self.expr(agg.having, ctx)}")
        cand = {k: c for k, c in zip(agg.keys, keys, strict=True)}
        return Alerts("\n".join(lines), identity, cand, agg.window.size_ms, agg, win_let)

    # ------------------------------------------------------------------ correlations
    def _step_let(
        self, i: int, step: ir.Step, key_names: list[str], extra: list[str], ctx: Context
    ) -> str:
        tcol, kcols = self._step_cols(step, ctx)
        lines = [t.ident(step.stream)]
        for c in kcols:
            if self.ctype(c) == "dynamic":
                # a multi-valued key matches on any element: one row per element
                lines.append(f"| mv-expand {t.ident(c)} to typeof(string)")
                self.scope.types[c] = "string"
                ctx.approximate(
                    f"correlation keyed on the multi-valued column {c}",
                    "mv-expand gives one row per element and each row is judged alone: an "
                    "event can alert once per element (absence: per element no `missing` "
                    "event matched; sequence: per shared element), where siemc uses an event "
                    "once (any element may match)",
                    step.span,
                )
        lines.append("| where " + " and ".join(self._present(c) for c in kcols))
        proj = [f"{step.alias}__t = {tcol}"]
        proj += [f"{kn} = {t.ident(c)}" for kn, c in zip(key_names, kcols, strict=True)]
        for f in extra:
            proj.append(f"{step.alias}_{_safe(f)} = {t.ident(self.col(f, step.span, ctx))}")
        lines.append(f"| project {', '.join(proj)}")
        name = f"__step{i}"
        self.lets.append((name, "\n".join(lines)))
        return name

    def _extras(self, alias: str) -> list[str]:
        out: list[str] = []
        for b in self._analytic_baselines:
            for c in getattr(b, "current", ()):
                if c.startswith(alias + "."):
                    out.append(c[len(alias) + 1 :])
        return sorted(set(out))

    @property
    def _analytic_baselines(self) -> tuple[ir.Baseline, ...]:
        return self._ctx_analytic.baselines

    def _corr_keys(self, first: ir.Step, ctx: Context) -> list[str]:
        self._use(first.stream)
        return [f"__k_{_safe(self.col(k, first.span, ctx))}" for k in first.keys]

    def _corr_cand(self, steps: tuple[ir.Step, ...], keys: list[str]) -> dict[str, str]:
        cand = {k: kn for k, kn in zip(steps[0].keys, keys, strict=True)}
        for s in steps:
            for f in self._extras(s.alias):
                cand[f"{s.alias}.{f}"] = f"{s.alias}_{_safe(f)}"
            for k, kn in zip(s.keys, keys, strict=True):
                cand.setdefault(f"{s.alias}.{k}", kn)
        return cand

    def visit_Sequence(self, d: ir.Sequence, ctx: Context) -> Alerts:
        if any(s.count > 1 for s in d.steps):
            keys = self._corr_keys(d.steps[0], ctx)
            if any(self._extras(s.alias) for s in d.steps):
                raise ctx.not_implemented(
                    "a baseline on a field of a counted sequence's step", d.span
                )
            q = self.counted_sequence(self._ctx_analytic, d, keys, ctx)
            return Alerts(q, ["__start", "__end", *keys], self._corr_cand(d.steps, keys))
        pid_key: list[str] = []
        if self.identity_seq is not None:
            # keyed on the process identity; the alert still reports the analytic's keys, the
            # PID read from the first step (one process has one PID)
            orig = d.steps[0]
            d = self.identity_seq
            self._use(orig.stream)
            pid_key = [k for k in orig.keys if k == PID]
        exact = exact_identity_pairs(self._ctx_analytic, d)
        child = parent_child(self._ctx_analytic, d) if self.identity_seq is None else None
        keys = self._corr_keys(d.steps[0], ctx)
        first_extra = sorted({*self._extras(d.steps[0].alias), *pid_key})
        folded = None
        if (self.identity_seq is not None and exact) or child is not None:
            folded = self.folded_sequence(
                self._ctx_analytic, d, first_extra, self._extras(d.steps[1].alias), keys, ctx
            )
        if folded is not None and child == PID:
            ctx.approximate(
                "parent-child sequence keyed on PIDs", PID_CHILD, d.span, direction="subset"
            )
        elif not exact:
            two = len(d.steps) == 2 and d.until is None and self._scalar_keys(d, ctx)
            ctx.approximate("ordered sequence", SEQ_TIES if two else SEQ_DETAIL, d.span)
        lines = [folded] if folded is not None else self._joined_steps(d, keys, first_extra, ctx)
        cand = self._corr_cand(d.steps, keys)
        for k in pid_key:
            self._use(d.steps[0].stream)
            pid = f"__k_{_safe(self.col(k, d.span, ctx))}"
            lines.append(f"| extend {pid} = {d.steps[0].alias}_{_safe(k)}")
            cand[k] = cand[f"{d.steps[0].alias}.{k}"] = pid
        return Alerts("\n".join(lines), ["__start", "__end", *keys], cand)

    def _scalar_keys(self, d: ir.Sequence, ctx: Context) -> bool:
        """Whether no step's key column is multi-valued (dynamic)."""
        for s in d.steps:
            _, cols = self._step_cols(s, ctx)
            if any(self.ctype(c) == "dynamic" for c in cols):
                return False
        return True

    def _joined_steps(
        self, d: ir.Sequence, keys: list[str], first_extra: list[str], ctx: Context
    ) -> list[str]:
        names = [
            self._step_let(i, s, keys, first_extra if i == 0 else self._extras(s.alias), ctx)
            for i, s in enumerate(d.steps)
        ]
        on = ", ".join(keys)
        ms = t.timespan(d.maxspan_ms)
        t0 = f"{d.steps[0].alias}__t"
        lines = [names[0]]
        for i in range(1, len(d.steps)):
            prev, cur = f"{d.steps[i - 1].alias}__t", f"{d.steps[i].alias}__t"
            lines += [
                f"| join kind=inner ({names[i]}) on {on}",
                f"| where {cur} between ({prev} .. ({t0} + {ms}))",
                f"| summarize arg_min({cur}, *) by {prev}, {on}",
                f"| summarize arg_max({prev}, *) by {cur}, {on}",
                f"| project-away {', '.join(k + '1' for k in keys)}",
            ]
        last = f"{d.steps[-1].alias}__t"
        if d.until is not None:
            self.lets.append(("__pairs", "\n".join(lines)))
            u = self._step_let(len(d.steps), d.until, keys, [], ctx)
            ut = f"{d.until.alias}__t"
            ident = ", ".join([t0, last, *keys])
            lines = [
                "__pairs",
                f"| join kind=leftanti (__pairs | join kind=inner ({u}) on {on} "
                f"| where {ut} between ({t0} .. {last}) | distinct {ident}) on {ident}",
            ]
        lines.append(f"| extend __start = {t0}, __end = {last}")
        return lines

    def visit_Cooccurrence(self, d: ir.Cooccurrence, ctx: Context) -> Alerts:
        consume = self._members_disjoint(d, ctx)
        if consume:
            ctx.approximate("co-occurrence ties", scan.TIES_COOCCURRENCE, d.span)
            ctx.note(f"co-occurrence ({d.span.at()}): {scan.NOTE_COOCCURRENCE}")
        else:
            ctx.approximate(
                "unordered co-occurrence",
                "every event at which all members have an event of the same keys within the "
                "preceding window alerts (the evaluator consumes the set and starts again), a "
                "member listed twice needs only one event, and equal timestamps have no input "
                "order",
                d.span,
            )
        keys = self._corr_keys(d.members[0], ctx)
        parts = []
        for i, m in enumerate(d.members):
            tcol, kcols = self._step_cols(m, ctx)
            for c in kcols:
                self._dynamic(c, "a co-occurrence key", m.span, ctx)
            proj = ", ".join(
                [
                    f"__t = {tcol}",
                    *[f"{kn} = {t.ident(c)}" for kn, c in zip(keys, kcols, strict=True)],
                    f"__m = {i}",
                ]
            )
            pres = " and ".join(self._present(c) for c in kcols)
            parts.append(f"({t.ident(m.stream)} | where {pres} | project {proj})")
        self.lets.append(("__members", "union " + ",\n    ".join(parts)))
        if consume:
            body, final = scan.cooccurrence("__members", keys, len(d.members), d.window_ms)
            self.lets.append(("__scan", body))
            return Alerts(final, ["__start", "__end", *keys], self._corr_cand(d.members, keys))
        on = ", ".join(keys)
        w = t.timespan(d.window_ms)
        n = len({m.stream for m in d.members})
        q = "\n".join(
            [
                "__members",
                f"| summarize by __end = __t, {on}",
                f"| join kind=inner (__members) on {on}",
                f"| where __t between ((__end - {w}) .. __end)",
                f"| summarize __members = count_distinct(__m), __start = min(__t) by __end, {on}",
                f"| where __members == {n}",
            ]
        )
        return Alerts(q, ["__start", "__end", *keys], self._corr_cand(d.members, keys))

    def visit_Absence(self, d: ir.Absence, ctx: Context) -> Alerts:
        keys = self._corr_keys(d.first, ctx)
        f = self._step_let(0, d.first, keys, self._extras(d.first.alias), ctx)
        m = self._step_let(1, d.missing, keys, [], ctx)
        t0, tm = f"{d.first.alias}__t", f"{d.missing.alias}__t"
        on = ", ".join(keys)
        w = t.timespan(d.within_ms)
        # strictly later: no SIEM orders events of one timestamp (docs/semantics.md "Absence")
        q = "\n".join(
            [
                f,
                f"| join kind=leftanti ({f} | join kind=inner ({m}) on {on} "
                f"| where {tm} > {t0} and {tm} <= {t0} + {w} | distinct {t0}, {on}) on {t0}, {on}",
                f"| where {t0} + {w} <= now()",
                f"| extend __start = {t0}",
            ]
        )
        return Alerts(q, ["__start", *keys], self._corr_cand((d.first,), keys))

    # ------------------------------------------------------------------ baselines
    def _period(
        self, lookback_ms: int, history: str | None, span: ir.Span, what: str, ctx: Context
    ) -> None:
        """Say so when a scheduled rule cannot read all the query needs. The query itself means
        what the analytic means over the data it is given (a hunting query, a summary rule's
        table); only the scheduler cuts the history, so the export declares that approximation
        (compiler/export/sentinel.py), not the query.

        A Sentinel scheduled rule runs at most every 5 minutes and reads at most 14 days
        (queryFrequency 5m..14d, queryPeriod <= 14d: "Create a scheduled analytics rule",
        learn.microsoft.com/azure/sentinel/create-analytics-rules). A candidate of the run's
        detection period needs the lookback before it, and so do the join partners of the history
        events, so the rule must read lookback + history join reach + detection span."""
        reach = self._reach(history) if history is not None else 0
        need = lookback_ms + reach + max(detection_span(ctx.analytic.detection), _MIN_FREQ_MS)
        if need <= SENTINEL_MAX_PERIOD_MS:
            return
        effect = {
            "first-seen baseline": "a key last seen only before that reads as new, so the rule "
            "fires on a superset of the evaluator's alerts",
            "rarity baseline": "values seen only before that are not counted, so the rule fires "
            "on a superset of the evaluator's alerts",
            "deviation baseline": "past windows before that are missing (fewer than min_history "
            "suppresses alerts, a different mean/stdev moves the threshold either way: mixed)",
        }[what]
        parts = [f"a {t.timespan(lookback_ms)} lookback"]
        if reach:
            parts.append(f"{t.timespan(reach)} of history join reach")
        parts.append("the detection period (at least the 5m minimum run frequency)")
        ctx.note(
            f"{what} ({span.at()}): {' + '.join(parts)} exceed the 14-day queryPeriod of a "
            f"Sentinel scheduled rule. As a scheduled rule, history older than 14 days is not "
            f"read: {effect} (siemc export declares it). To deploy it exactly, keep the history "
            f"in a watchlist or in a summary (custom) table of {_KEPT[what]} refreshed by a "
            "Sentinel summary rule, and join that instead"
        )

    def _reach(self, stream: str) -> int:
        """How long before its own events a stream reads partners (its joins' `within`)."""
        s = next(x for x in self._ctx_analytic.streams if x.name == stream)
        out = self._reach(s.source) if isinstance(s.source, str) else 0
        # a join folded into the row's own columns (MDE) reads no other rows
        if s.join is not None and s.join.direction != "after" and stream not in self.folded:
            out = max(out, s.join.within_ms + self._reach(s.join.stream))
        return out

    def _history(
        self,
        stream: str,
        keys: tuple[str, ...],
        span: ir.Span,
        ctx: Context,
        across: str | None = None,
    ) -> str:
        self._use(stream)
        tcol = self.col("@timestamp", span, ctx)
        cols = [self.col(k, span, ctx) for k in keys]
        if across not in (None, "@days"):
            cols_checked = [*cols, self.col(across, span, ctx)]
        else:
            cols_checked = cols
        if any(self.ctype(c) == "dynamic" for c in cols_checked):
            raise ctx.not_implemented(
                "a baseline history keyed on a multi-valued (dynamic) column", span
            )
        proj = [f"__ht = {tcol}", *[f"__h{i} = {t.ident(c)}" for i, c in enumerate(cols)]]
        pres = [self._present(c) for c in cols]
        if across == "@days":
            proj.append(f"__ha = startofday({tcol})")
        elif across is not None:
            ac = self.col(across, span, ctx)
            proj.append(f"__ha = {t.ident(ac)}")
            pres.append(self._present(ac))
        return f"{t.ident(stream)} | where {' and '.join(pres)} | project {', '.join(proj)}"

    def _cand_cols(
        self, current: tuple[str, ...], al: Alerts, span: ir.Span, ctx: Context
    ) -> list[str]:
        out = []
        for c in current:
            if c in al.cand:
                if any(sc.types.get(al.cand[c]) == "dynamic" for sc in self.scopes.values()):
                    raise ctx.not_implemented(
                        f"a baseline on the multi-valued (dynamic) candidate field '{c}'", span
                    )
                out.append(al.cand[c])
            else:
                raise ctx.not_implemented(f"baseline on candidate field '{c}'", span)
        return out

    def visit_FirstSeen(self, b: ir.FirstSeen, i: int, al: Alerts, ctx: Context) -> str:
        self._period(b.lookback_ms, b.stream, b.span, "first-seen baseline", ctx)
        hist = self._history(b.stream, b.keys, b.span, ctx)
        cc = self._cand_cols(b.current, al, b.span, ctx)
        on = ", ".join(f"$left.{c} == $right.__h{j}" for j, c in enumerate(cc))
        ident = _identity(al, cc)
        lb = t.timespan(b.lookback_ms)
        return (
            f"| join kind=leftanti (__alerts | join kind=inner ({hist}) on {on}\n"
            f"    | where __ht >= __start - {lb} and __ht < __start | distinct {ident}) on {ident}"
        )

    def visit_Rarity(self, b: ir.Rarity, i: int, al: Alerts, ctx: Context) -> str:
        self._period(b.lookback_ms, b.stream, b.span, "rarity baseline", ctx)
        hist = self._history(b.stream, b.keys, b.span, ctx, b.across)
        cc = self._cand_cols(b.current, al, b.span, ctx)
        on = ", ".join(f"$left.{c} == $right.__h{j}" for j, c in enumerate(cc))
        ident = _identity(al, cc)
        lb = t.timespan(b.lookback_ms)
        seen = (
            f"__alerts | join kind=inner ({hist}) on {on}\n"
            f"    | where __ht >= __start - {lb} and __ht < __start\n"
            f"    | summarize __rare{i} = count_distinct(__ha) by {ident}"
        )
        self.lets.append((f"__rarity{i}", seen))
        return (
            f"| lookup kind=leftouter __rarity{i} on {ident}\n"
            f"| where coalesce(__rare{i}, 0) < {b.max}\n| project-away __rare{i}"
        )

    def visit_Deviation(self, b: ir.Deviation, i: int, al: Alerts, ctx: Context) -> str:
        if al.agg is None or al.win_let is None or al.agg.window.kind != "tumbling":
            raise ctx.unsupported(
                "deviation", "it needs a tumbling aggregate", b.span, "use a tumbling window"
            )
        self._period(b.lookback_ms, al.agg.stream, b.span, "deviation baseline", ctx)
        keys = al.identity[1:]
        on = ", ".join(keys) if keys else "__one"
        lb = t.timespan(b.lookback_ms)
        m = t.ident(b.measure)
        stats = [f"__dn{i} = count()"]
        if b.k is not None:
            stats += [f"__dm{i} = avg(__hv)", f"__ds{i} = stdev(__hv)"]
        if b.ratio is not None:
            stats.append(f"__dt{i} = sum(__hv)")
        if b.percentile is not None:
            stats.append(f"__dl{i} = make_list(__hv)")
        dp = (
            nearest_rank(f"__dl{i}", f"__dn{i}", b.percentile, "real")
            if b.percentile is not None
            else None
        )
        kproj = "".join(f"{k}, " for k in keys)
        hist = f"{al.win_let} | project __hs = __start, {kproj}__hv = {m}"
        if not keys:
            hist += ", __one = 1"
        left = f"{al.win_let}" + ("" if keys else " | extend __one = 1")
        self.lets.append(
            (
                f"__history{i}",
                f"{left}\n| join kind=inner ({hist}) on {on}\n"
                f"| where __hs >= __start - {lb} and __hs {'<=' if b.include_current else '<'} "
                "__start and isnotnull(__hv)\n"
                f"| summarize {', '.join(stats)} by {', '.join(al.identity)}",
            )
        )
        conds = _deviation_conds(b, i, m, dp)
        return (
            f"| lookup kind=inner __history{i} on {', '.join(al.identity)}\n"
            f"| where {' and '.join(conds)}\n| project-away __d*"
        )


def _deviation_conds(b: ir.Deviation, i: int, m: str, dp: str | None) -> list[str]:
    """The tests of deviation ``i`` on its history row (docs/semantics.md, deviation): with
    ``include_current`` the row counts the current window too, so min_history past windows are
    one value more; a null current value fails every comparison, as in siemc."""
    below = b.direction == "below"
    # the sample standard deviation needs two values (siemc: false with fewer)
    least = max(b.min_history + (1 if b.include_current else 0), 2 if b.k is not None else 1)
    conds = [f"__dn{i} >= {least}"]
    if b.k is not None:
        bound = f"__dm{i} {'-' if below else '+'} {t.number(b.k)} * __ds{i}"
        conds.append(f"{m} {'<' if below else '>'} {bound}")
    if dp is not None:
        conds.append(f"{m} {'<' if below else '>'} {dp}")
    if b.ratio is not None:
        # "R times the mean" as products of the count and the sum, exact for whole numbers
        # where avg() would round first; a sum that is not positive has no ratio
        r = t.number(b.ratio)
        times = "" if r == "1" else f" * {r}"
        test = f"{m} * __dn{i}{times} <= __dt{i}" if below else f"{m} * __dn{i} >= __dt{i}{times}"
        conds += [f"__dt{i} > 0", test]
    return conds


def nearest_rank(values: str, n: str, p: float, ty: str) -> str:
    """The nearest-rank ``p``-th percentile (docs/semantics.md, Measures: the ceil(p/100 * n)-th
    smallest, at least the first) of the list column ``values`` holding ``n`` non-null numbers.
    The rank is integer arithmetic on p as the decimal written (99.9 = 999/10), as the evaluator
    computes it; array_sort_asc puts nulls last, so they are never chosen."""
    frac = Fraction(repr(float(p)))
    num, den = frac.numerator, frac.denominator * 100
    rank = f"({num} * {n} + {den - 1}) / {den}" if num != 1 or den != 1 else n
    conv = "tolong" if ty == "long" else "todouble"
    return f"{conv}(array_sort_asc({values})[max_of({rank}, 1) - 1])"


def _identity(al: Alerts, cand_cols: list[str]) -> str:
    """The columns a baseline groups and joins its history on: the candidate's identity plus the
    candidate columns it reads. A match candidate's identity is only its time, so without the key
    columns two candidates at the same timestamp would share one history."""
    return ", ".join(dict.fromkeys([*al.identity, *cand_cols]))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
