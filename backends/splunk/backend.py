"""Splunk SPL backend: raw searches over CIM field names (profile ``cim``).

Streams become base searches plus ``lookup``/``eval``/``search``/``where`` commands; several
streams share one ``multisearch`` pool whose rows carry their stream name. Detections:
match (the pipeline), tumbling aggregates (``bin`` + ``stats``), sliding aggregates
(``streamstats``, consuming with ``reset_after``: consume.py), sequences (previous-step test,
``transaction``), co-occurrence and absence (``streamstats``), baselines (``join`` with a
history subsearch, ``streamstats`` over past windows). Each Splunk construct's rules are
cited where it is emitted.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import jinja2

from backends.base import Backend, Context, Support
from backends.comment import one_line
from backends.splunk import consume, counted, firstseen, psl, rarity, sequence
from backends.splunk.deviation import deviation_tests
from backends.splunk.expr import eval_str, field_ref, is_boolean, number, seconds
from backends.splunk.macros import definitions, filter_macro
from backends.splunk.streams import TAG, Names, StreamBuilder
from compiler import ir

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "splunk"),
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
)

# stats functions per measure kind
# (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/CommonStatsFunctions)
STATS_FN: dict[str, str] = {
    "count": "count",
    "distinct": "dc",
    "sum": "sum",
    "avg": "avg",
    "min": "min",
    "max": "max",
    "stdev": "stdev",  # sample standard deviation (stdevp is the population one)
}

_DAY_MS = 86_400_000


class SplunkBackend(Backend):
    target = "splunk"
    extension = ".spl"
    comment = "```"
    profiles = ("cim", "sysmon")

    SUPPORT: ClassVar[dict[type, Support]] = {
        ir.Eq: Support(
            "exact",
            'search `field="value"` (case-insensitive); |cased, numbers, empty strings and '
            "values with `*` (a search wildcard that cannot be escaped) use where `==` / "
            "`lower(f)==`; negated where leaves add `isnull(f) OR`",
        ),
        ir.StrMatch: Support(
            "exact",
            'search wildcards `f="*v*"`; values with `*` or |cased use where `like(lower(f), '
            '"%v%")` or `match()` on a literal-escaped pattern',
        ),
        ir.Regex: Support(
            "exact",
            'where `match(f, "(?i)…")` (PCRE): the pattern re-spelled with its Python meaning '
            "in the syntax RE2 and PCRE share (\\p{Nd} for \\d, {0,n} for {,n}, explicit case "
            "families where the folding differs); Unicode \\w \\b and patterns RE2 cannot "
            "spell (look-around, back-references) are declared approximations",
        ),
        ir.Compare: Support("exact", "where `tonumber(f) > n` (non-numeric text is false)"),
        ir.Exists: Support("exact", "search `f=*` / `NOT f=*`, where `isnotnull(f)`"),
        ir.Cidr: Support(
            "exact",
            'where `cidrmatch("net", f)` after trimming and removing a ::ffff: prefix',
        ),
        ir.InLookup: Support(
            "exact",
            "`lookup <name> col AS f OUTPUT col AS marker` + where isnotnull(marker); the "
            "lookup definition needs case_sensitive_match = false",
        ),
        ir.And: Support("exact", "search juxtaposition / where AND"),
        ir.Or: Support("exact", "search OR / where OR"),
        ir.Not: Support(
            "exact",
            "search NOT (matches events without the field, as siemc); in where, NOT is "
            "pushed to the leaves with isnull() guards; a where leaf on a multi-valued field "
            "(ECS array fields, extract_ips results) is `isnotnull(mvfilter(test))` per value",
        ),
        ir.Literal_: Support(
            "exact",
            'eval literals: "text" (\\ and " escaped), null(); a boolean stored in a field is '
            'the text "true"/"false" (eval cannot assign a boolean), true()/false() in conditions',
        ),
        ir.FieldRef: Support("exact", "CIM field names from the cim profile"),
        ir.MeasureRef: Support("exact", "stats `AS` names"),
        ir.BinOp: Support(
            "exact",
            "eval operators; `/` is if(b==0, null(), a/b); string comparisons lower() both "
            "sides; fields read as tonumber() in arithmetic; a comparison or and/or stored in "
            'a field is if(cond, "true", "false")',
        ),
        ir.UnaryOp: Support(
            "exact", "unary minus; `not c` is if(c, 1, 0)==0 (two-valued: NOT of null is null)"
        ),
        ir.Call: Support(
            "exact",
            "eval lower/upper/coalesce/max/min/abs; basename via replace(); registered_domain "
            "(a derived field) with the Public Suffix List as a lookup shipped with the app "
            "(every suffix of the name looked up at once, the longest match wins; inside "
            "another expression: the last two labels, approximate); extract_ips via "
            "replace() marking the IPv6 tokens, rex max_match=0 and mvmap() normalising "
            "(compressed lower-case IPv6, mapped ones as IPv4); lower/upper/basename of a "
            "multi-valued field via mvmap(), any other function of one is E201",
        ),
        ir.Enrich: Support(
            "exact",
            "`lookup <name> col AS f OUTPUT col2 AS f2` with a lookup definition that sets "
            "case_sensitive_match = false and max_matches = 1 (first row in file order)",
        ),
        ir.Join: Support(
            "exact",
            "multisearch pool in input order (reverse + streamstats count); streamstats "
            "last() carries the nearest partner forwards/backwards (partners first at one "
            "time, the earliest one last), each value kept only when it came from that partner "
            "(its position); a multi-valued on/add field is a declared approximation",
        ),
        ir.Match: Support("exact", "the stream's search pipeline"),
        ir.Sequence: Support(
            "exact",
            "two steps: the previous-step-event test (streamstats last() of the step and until "
            "positions by key over the input order: the latest first step within maxspan, no "
            "second step or until since), keyed on ProcessGuid / process_guid for (host, PID) "
            "until the process ends; three or more steps: transaction (approximate)",
        ),
        ir.Cooccurrence: Support(
            "exact",
            "distinct, disjoint member streams on single-valued keys: the rows sorted by key "
            "then (time, input) order, streamstats max() of each member's times with "
            'reset_after="(every member within the window)", which consumes the set (exact '
            "while a key has at most 10,000 events in one window, a declared NOTE); otherwise "
            "streamstats time_window dc(stream), which re-alerts while the window stays "
            "complete (a superset)",
        ),
        ir.Absence: Support(
            "exact",
            "streamstats last() of the `missing` times by key in reverse time order (the "
            "nearest strictly later one), decided once now() passes the window",
        ),
        ir.Aggregate: Support(
            "exact",
            "tumbling: bin _time span (epoch-aligned below one day) + stats by _time and keys "
            "+ eval + where (a multi-valued key: one group per value); sliding with "
            "`count >= T`: the rows sorted by key then time, streamstats window=T with "
            'reset_after="(T events within the size)", which consumes the window; other '
            "sliding conditions (approximate, a superset for count/distinct thresholds): "
            "streamstats time_window without consumption; mvexpand of multi-valued keys; "
            "percentile: nearest rank by "
            "sort + streamstats count + eventstats count (exactperc, approximate, on "
            "multi-valued fields or keys)",
        ),
        ir.Measure: Support(
            "exact",
            "eval of the measured value where the filter holds, else null(), then the stats "
            "function of that column (count, dc, sum, ...; a percentile ranks its values); not "
            "yet: beside a one-pass first-seen or rarity baseline, or a percentile where the "
            "unconditional one is approximate",
        ),
        ir.Step: Support(
            "exact",
            "a counted step of a two-step sequence, first or last (N events, EQL's `with "
            "runs`), over disjoint streams on single-valued keys: streamstats window=N "
            "global=false by key and stream gives each run row the N-th latest run event of "
            "its key, and streamstats last() the key's previous row (the previous-step-event "
            "test); more steps, two runs or streams that may share an event are refused (E200)",
        ),
        ir.FirstSeen: Support(
            "exact",
            "one time-ordered pass: the history rows in the detection's pool, streamstats "
            "last() of their times by key at each candidate's start (match, two-step "
            "sequence, tumbling aggregate); elsewhere a join subsearch (approximate)",
        ),
        ir.Rarity: Support(
            "exact",
            "one time-ordered pass on a match or tumbling aggregate: the history rows in the "
            "detection's pool, streamstats values() of the across values by key, one row per "
            "value, streamstats last() of its times tested against the candidate's start, "
            "eventstats dc(); elsewhere a join subsearch anchored at search time (approximate)",
        ),
        ir.Deviation: Support(
            "exact",
            "streamstats current=f count/avg/stdev over the group's past windows (the rows of "
            "bin + stats), time_window halfway between two window multiples so that exactly "
            "the windows starting at or after start - lookback count (current=t with "
            "history: include_current); a ratio compares count and sum products; a percentile "
            "uses exactperc (approximate: it may interpolate)",
        ),
    }

    # ------------------------------------------------------------------ rendering
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        names = Names(analytic, ctx)
        sb = StreamBuilder(analytic, ctx, names)
        det = analytic.detection
        cmds = self._detection(det, analytic, ctx, sb, names)
        # ESCU convention: the analytic's own filter macro ends the search, the users' hook
        # for exclusions (https://github.com/splunk/security_content, macros/*_filter.yml)
        cmds.append(f"`{filter_macro(analytic.id)}`")
        return _ENV.get_template("query.spl.j2").render(commands=cmds)

    def wrap(self, analytic: ir.Analytic, ctx: Context, query: str) -> str:
        # SPL has no line comment: ``` ... ``` is an inline comment
        # (https://docs.splunk.com/Documentation/Splunk/latest/Search/Addcommentstosearches).
        lines = [
            f"{analytic.id}: {analytic.meta.title}",
            f"target: {self.target}, profile: {ctx.profile.name}",
        ]
        for a in ctx.approximations:
            lines.append(f"APPROXIMATION, {a.direction} ({a.span.at()}) {a.construct}: {a.detail}")
        lines += [f"NOTE {n}" for n in ctx.notes]
        for lk in analytic.lookups:
            lines.append(
                f"lookup definition {lk.name}: transforms.conf [{lk.name}] "
                f"filename = {Path(lk.path).name}, case_sensitive_match = false, "
                "max_matches = 1"
            )
        if psl.LOOKUP in query:
            lines.append(psl.definition())
        for name, definition in definitions(query, ctx.profile.name, analytic.id).items():
            lines.append(f"macro {name}: macros.conf [{name}] definition = {definition}")
        # a backtick would close the ``` comment early
        lines = [one_line(ln).replace("`", "'") for ln in lines]
        header = _ENV.get_template("header.spl.j2").render(lines=lines)
        return header + query.rstrip("\n") + "\n"

    # ------------------------------------------------------------------ detections
    def _detection(
        self, det: ir.Detection, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
    ) -> list[str]:
        if isinstance(det, ir.Match):
            if firstseen.applies(a, det):
                return self._match_first_seen(det, a, ctx, sb, names)
            if rarity.applies(a, det, sb.multi):
                self._check_candidates(a, ctx, sb)
                cmds = sb.pipeline(list(dict.fromkeys([det.stream, *rarity.history_streams(a)])))
                pooled = cmds[0].startswith("| multisearch")
                return cmds + rarity.one_pass(a, ctx, sb, names, det.stream, pooled)
            cmds = self._single(sb, det.stream)
            return cmds + self._baselines(a, ctx, sb, names)
        if isinstance(det, ir.Aggregate):
            return self._aggregate(det, a, ctx, sb, names)
        if isinstance(det, ir.Sequence):
            return self._sequence(det, a, ctx, sb, names)
        if isinstance(det, ir.Cooccurrence):
            return self._cooccurrence(det, a, ctx, sb, names)
        assert isinstance(det, ir.Absence)
        return self._absence(det, a, ctx, sb, names)

    def _match_first_seen(
        self, d: ir.Match, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
    ) -> list[str]:
        b = next(x for x in a.baselines if isinstance(x, ir.FirstSeen))
        self._check_candidates(a, ctx, sb)
        streams = [d.stream] + ([b.stream] if b.stream != d.stream else [])
        cmds = sb.pipeline(streams)
        pooled = cmds[0].startswith("| multisearch")
        cand = None if b.stream == d.stream else f"{TAG}=={eval_str(d.stream)}"
        return cmds + firstseen.one_pass(
            a, ctx, sb, names, b, cand, pooled, firstseen.CandidateField(ctx, names)
        )

    def _check_candidates(self, a: ir.Analytic, ctx: Context, sb: StreamBuilder) -> None:
        for b in a.baselines:
            for c in getattr(b, "current", ()):
                head, _, rest = c.partition(".")
                field = rest if rest and head in a.step_aliases() else c
                if field in sb.multi and not (
                    isinstance(a.detection, ir.Aggregate) and field in a.detection.keys
                ):
                    # a multi-valued candidate is seen when any of its values was
                    raise ctx.not_implemented(
                        f"a baseline reading the multi-valued field '{field}' of the candidate",
                        b.span,
                    )

    def _single(self, sb: StreamBuilder, stream: str) -> list[str]:
        cmds = sb.pipeline([stream])
        if cmds[0].startswith("| multisearch"):
            cmds.append(f"where {TAG}=={eval_str(stream)}")
        return cmds

    def _aggregate(
        self, d: ir.Aggregate, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
    ) -> list[str]:
        one_pass = firstseen.applies(a, d) and not any(
            c in sb.multi for b in a.baselines for c in getattr(b, "current", ())
        )
        rare_pass = rarity.applies(a, d, sb.multi) and not (
            d.window.kind == "sliding" and any(k in sb.multi for k in d.keys)
        )
        if rare_pass and d.window.kind == "sliding":
            # the history is the detection stream's rows: the candidates are decided after the
            # window's statistics, at the start of streamstats' window
            cmds = self._single(sb, d.stream)
        elif rare_pass:
            cmds = sb.pipeline(list(dict.fromkeys([d.stream, *rarity.history_streams(a)])))
            pooled = cmds[0].startswith("| multisearch")
            if d.window.kind == "tumbling":
                n = d.window.size_ms // 1000
                cmds += rarity.one_pass(
                    a, ctx, sb, names, d.stream, pooled, start=f"floor(_time/{n})*{n}"
                )
        elif one_pass:
            b = next(x for x in a.baselines if isinstance(x, ir.FirstSeen))
            streams = [d.stream] + ([b.stream] if b.stream != d.stream else [])
            cmds = sb.pipeline(streams)
            pooled = cmds[0].startswith("| multisearch")
            cand = None if b.stream == d.stream else f"{TAG}=={eval_str(d.stream)}"
            cmds += firstseen.one_pass(
                a, ctx, sb, names, b, cand, pooled, firstseen.CandidateField(ctx, names),
                start_s=d.window.size_ms // 1000 if d.window.size_ms % 1000 == 0 else None,
            )  # fmt: skip
            if d.window.size_ms % 1000:
                raise ctx.not_implemented("a first-seen window of a fraction of a second", b.span)
        else:
            cmds = self._single(sb, d.stream)
        keys = [names(k, d.span) for k in d.keys]
        aggs: list[str] = []
        ranks: list[str] = []  # commands ranking the values of exact percentiles
        conditional: list[str] = []  # eval assignments of conditional measures' columns
        for m in d.measures:
            out = ctx.profile.local(m.name)
            if m.where is not None:
                if one_pass or rare_pass:
                    raise ctx.not_implemented(
                        "a conditional measure beside a one-pass first-seen or rarity baseline",
                        m.span,
                    )
                looks, value = self._conditional(d, m, sb, names)
                cmds += looks
                w = f"siemc_w{len(aggs)}"
                conditional.append(f"{w}={value}")
                if m.kind == "percentile":
                    if not _exact_percentile(d, m, sb):
                        raise ctx.not_implemented(
                            "a conditional percentile of a multi-valued field or key, or over "
                            "a sliding window",
                            m.span,
                        )
                    i = len(ranks)
                    ranks += _nearest_rank(i, w, m.p or 0, keys, d.window)
                    aggs.append(f"max(siemc_pv{i}) AS {out}")
                else:
                    aggs.append(f"{STATS_FN[m.kind]}({w}) AS {out}")
                continue
            if m.kind == "percentile" and _exact_percentile(d, m, sb):
                assert m.field is not None
                i = len(ranks)
                ranks += _nearest_rank(i, names(m.field, m.span), m.p or 0, keys, d.window)
                aggs.append(f"max(siemc_pv{i}) AS {out}")
                continue
            if m.kind == "percentile":
                ctx.approximate(
                    "percentile measure",
                    "Splunk's exactperc<p> may interpolate between neighbouring values; siemc "
                    "takes the nearest rank (the ceil(p/100*n)-th smallest value)",
                    m.span,
                )
                fn = f"exactperc{number(m.p or 0)}"
            else:
                fn = STATS_FN[m.kind]
            arg = "" if m.field is None else f"({names(m.field, m.span)})"
            if m.kind == "count" and m.field is not None and m.field in sb.multi:
                # count(X) counts the values of a multivalue field; siemc counts the events
                # that have one (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Aggregatefunctions#count)
                has = f"siemc_has_{len(aggs)}"
                src = field_ref(names(m.field, m.span))
                cmds.append(f"eval {has}=if(isnotnull({src}), 1, null())")
                arg = f"({has})"
            aggs.append(f"{fn}{arg} AS {out}")
        if conditional:
            cmds.append("eval " + ", ".join(conditional))
        if d.window.kind == "tumbling":
            if d.window.size_ms >= _DAY_MS:
                ctx.approximate(
                    "tumbling window of a day or more",
                    "bin aligns spans of a day or more to the search's local day boundary, "
                    "siemc to the Unix epoch (equal only when the time zone is UTC)",
                    d.window.span,
                )
            # Spans below a day are aligned to epoch 0 (UTC); `aligntime` would move them
            # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Bin).
            cmds.append(f"bin span={seconds(d.window.size_ms)} _time")
            cmds += ranks
            cmds.append(f"stats {' '.join(aggs)} BY _time {' '.join(keys)}")
        else:
            limit = consume.count_limit(d)
            distinct = None
            if limit is None and not a.baselines:
                distinct = consume.distinct_limit(d, sb.multi)
            if limit is None and distinct is None:
                ctx.approximate(
                    "sliding window aggregation",
                    "streamstats time_window evaluates after every event but does not consume "
                    "the events of a window that fired, so a burst re-alerts on each further "
                    "event (siemc: floor(N/T) alerts)",
                    d.window.span,
                    direction="superset" if _grows_with_the_window(d) else "mixed",
                )
            if rare_pass and limit is None:
                # rows without a key are still history: the window start is kept for the pass
                aggs.append("min(_time) AS siemc_ws")
            elif not rare_pass:
                cmds.append("where " + " AND ".join(f"isnotnull({field_ref(k)})" for k in keys))
            ordered = (limit is not None and consume.needs_order(d)) or distinct is not None
            if ordered and not cmds[0].startswith("| multisearch"):
                cmds += consume.INPUT_ORDER
            # streamstats groups by a multivalue field's whole value; siemc puts the event in
            # the group of each value (as stats BY does): one row per value
            # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Mvexpand)
            for k, name in zip(d.keys, keys, strict=True):
                if k in sb.multi:
                    cmds.append(f"eval {field_ref(name)}=mvdedup({field_ref(name)})")
                    cmds.append(f"mvexpand {name}")
            if limit is not None:
                cmds += consume.window_pass(d, keys, aggs, limit, ordered)
            elif distinct is not None:
                field, at_least = distinct
                out = ctx.profile.local(d.measures[0].name)
                src = field_ref(names(field, d.measures[0].span))
                cmds += consume.distinct_pass(d, keys, src, out, at_least, ctx)
            else:
                cmds.append("sort 0 _time")
                cmds.append(
                    f"streamstats time_window={seconds(d.window.size_ms)} {' '.join(aggs)} "
                    f"BY {' '.join(keys)}"
                )
        # compute reads key fields (booleans derived upstream are held as text) and measures
        bools = set(sb.booleans(d.stream) & set(d.keys))
        for name, e in d.compute:
            cmds.append(f"eval {ctx.profile.local(name)}={sb.expr(e, frozenset(bools))}")
            if is_boolean(e, frozenset(bools)):
                bools.add(name)
            else:
                bools.discard(name)
        cmds += self._deviation(d, a, ctx, keys)
        # the consuming form fires where the window holds its T events within the size
        limit = consume.count_limit(d) if d.window.kind == "sliding" else None
        fired = None
        if limit is not None:
            assert isinstance(d.having, ir.BinOp) and isinstance(d.having.left, ir.MeasureRef)
            count = ctx.profile.local(d.having.left.name)
            fired = consume.fires(count, limit, d.window.size_ms)
        if rare_pass and d.window.kind == "sliding":
            if fired is None:
                ctx.approximate(
                    "rarity baseline on a sliding window",
                    "each candidate is judged at the start of streamstats' window, which keeps "
                    "the events of windows that fired, so it may start earlier than siemc's",
                    next(b for b in a.baselines if isinstance(b, ir.Rarity)).span,
                )
            cond = [f"isnotnull({field_ref(k)})" for k in keys]
            if fired is not None:
                cond.append(f"({fired})")
            elif d.having is not None:
                cond.append(sb.expr(d.having, frozenset(bools), condition=True))
            cmds += rarity.one_pass(
                a, ctx, sb, names, d.stream, False, start="siemc_ws", candidate=" AND ".join(cond)
            )
            cmds[-1] += " siemc_ws"
        elif fired is not None:
            cmds.append(f"where {fired}")
        elif d.having is not None:
            cmds.append(f"where {sb.expr(d.having, frozenset(bools), condition=True)}")
        if not (one_pass or rare_pass):
            cmds += self._baselines(a, ctx, sb, names)
        outs = [ctx.profile.local(m.name) for m in d.measures]
        outs += [ctx.profile.local(n) for n, _ in d.compute]
        cmds.append("table " + " ".join(["_time", *keys, *outs]))
        return cmds

    @staticmethod
    def _conditional(
        d: ir.Aggregate, m: ir.Measure, sb: StreamBuilder, names: Names
    ) -> tuple[list[str], str]:
        """The value a conditional measure aggregates, as a column: the measure's own value
        (1 for a count) where its filter holds, else null, which stats functions skip, so
        `count(col)` counts the events the filter holds for and `dc(col)` the distinct values
        of those events (a multivalue stays whole through if())."""
        assert m.where is not None
        cond = sb.preds().where(sb.translate_values(m.where, sb.booleans(d.stream)))
        value = "1"
        if m.field is not None:
            f = field_ref(names(m.field, m.span))
            if m.kind == "count":  # the events that have the field: once each, as siemc
                cond = f"{cond} AND isnotnull({f})"
            else:
                value = f
        return sb.lookup_cmds(m.where), f"if({cond}, {value}, null())"

    def _deviation(
        self, d: ir.Aggregate, a: ir.Analytic, ctx: Context, keys: list[str]
    ) -> list[str]:
        """docs/semantics.md (deviation): the group's past windows that had events and a
        numeric value, starting at or after ``start - lookback`` and ending by ``start``. After
        ``bin`` + ``stats`` a group has one row per window that had events, at its start, a
        multiple of the size; streamstats current=f leaves the current window out, and a
        time_window strictly between two multiples of the size (``q*size + size/2``, q =
        lookback // size) holds exactly the past windows starting at or after
        ``start - lookback``, whichever way streamstats treats an event exactly at its edge."""
        cmds: list[str] = []
        judged: list[str] = []
        size = d.window.size_ms
        kinds = {m.name: m.kind for m in d.measures}
        for i, b in enumerate(x for x in a.baselines if isinstance(x, ir.Deviation)):
            span = (b.lookback_ms // size) * size + size // 2
            if b.percentile is not None:
                ctx.approximate(
                    "deviation baseline percentile",
                    "streamstats exactperc may interpolate between neighbouring values; siemc "
                    "takes the nearest rank of the past windows' values",
                    b.span,
                )
            m = ctx.profile.local(b.measure)
            p = f"siemc_dev{i}"
            if kinds.get(b.measure) not in ("count", "distinct", "sum", "avg", "stdev"):
                # min/max of text and computed values may be non-numeric: not history, and a
                # non-numeric current value fails
                cmds.append(f"eval {p}_v=tonumber({field_ref(m)})")
                m = f"{p}_v"
            aggs, tests = deviation_tests(b, m, p)
            firstseen.history_note(ctx, b.lookback_ms, "window")
            cmds.append("sort 0 _time")
            cmds.append(
                f"streamstats current={'t' if b.include_current else 'f'} "
                f"time_window={seconds(span)} {' '.join(aggs)} BY {' '.join(keys)}"
            )
            # every window stays history of the next deviation's streamstats: filter once
            judged += [firstseen.judged(b.lookback_ms), *tests]
        if judged:
            cmds.append(firstseen.ADDINFO)
            cmds.append("where " + " AND ".join(dict.fromkeys(judged)))
            cmds.append("fields - info_*")
        return cmds

    # ------------------------------------------------------------------ correlations
    def _keyed_pool(
        self,
        steps: list[ir.Step],
        a: ir.Analytic,
        ctx: Context,
        sb: StreamBuilder,
        names: Names,
    ) -> tuple[list[str], list[str]]:
        """Pool of the steps' streams with common key fields siemc_k<i> (per-step names)."""
        cmds = sb.pipeline([s.stream for s in steps])
        n = len(steps[0].keys)
        knames = [f"siemc_k{i}" for i in range(n)]
        sets = []
        for i, k in enumerate(knames):
            seen: dict[str, str] = {}
            for s in steps:
                seen.setdefault(s.stream, field_ref(names(s.keys[i], s.span)))
            if len(seen) == 1:
                sets.append(f"{k}={next(iter(seen.values()))}")
            else:
                cases = ", ".join(f"{TAG}=={eval_str(st)}, {f}" for st, f in seen.items())
                sets.append(f"{k}=case({cases})")
        cmds.append("eval " + ", ".join(sets))
        for st_alias, field in _step_fields(a):
            step = next((s for s in steps if s.alias == st_alias), None)
            if step is None:
                continue
            src = field_ref(names(field, step.span))
            out = ctx.profile.local(f"{st_alias}.{field}")
            cmds.append(f"eval {out}=if({TAG}=={eval_str(step.stream)}, {src}, null())")
        cmds.append("where " + " AND ".join(f"isnotnull({k})" for k in knames))
        for k in knames:
            # a multivalued key joins on any element: one row per element
            # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Mvexpand)
            cmds.append(f"mvexpand {k}")
        return cmds, knames

    def _sequence(
        self, d: ir.Sequence, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
    ) -> list[str]:
        steps = list(d.steps) + ([d.until] if d.until else [])
        if counted.is_counted(d):
            counted.check(d, a, ctx, sb)
            cmds = counted.compile_counted(d, a, ctx, sb, names)
            knames = [f"siemc_k{i}" for i in range(len(d.steps[0].keys))]
            return [*cmds, "table " + " ".join(["_time", "duration", *knames])]
        if len(d.steps) == 1 and d.until is None:
            cmds = self._single(sb, d.steps[0].stream)
            return cmds + self._baselines(a, ctx, sb, names)
        if len(d.steps) == 2:
            one_pass = firstseen.applies(a, d)
            if one_pass:
                self._check_candidates(a, ctx, sb)
            hist = firstseen.history_streams(a) if one_pass else []
            fields = _step_fields(a)
            cmds = sequence.pair(d, a, ctx, sb, names, fields, hist)
            if one_pass:
                b = next(x for x in a.baselines if isinstance(x, ir.FirstSeen))
                cmds += firstseen.one_pass(
                    a, ctx, sb, names, b, "isnotnull(duration)", True,
                    firstseen.CandidateField(ctx, names),
                )  # fmt: skip
            else:
                cmds += self._baselines(a, ctx, sb, names)
            outs = [ctx.profile.local(f"{s}.{f}") for s, f in fields]
            knames = [f"siemc_k{i}" for i in range(len(d.steps[0].keys))]
            cmds.append("table " + " ".join(["_time", "duration", *knames, *outs]))
            return cmds
        ctx.approximate(
            "ordered sequence",
            "Splunk transaction groups events by key from a first-step event to a last-step "
            "event within maxspan; it does not replace pending partials or consume events as "
            "EQL does, checks middle steps and `until` by presence in the transaction rather "
            "than by order, and compares multivalued keys element by element via mvexpand",
            d.span,
        )
        cmds, knames = self._keyed_pool(steps, a, ctx, sb, names)
        first, last = d.steps[0].stream, d.steps[-1].stream
        # https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Transaction
        cmds.append(
            f"transaction {' '.join(knames)} startswith=eval({TAG}=={eval_str(first)}) "
            f"endswith=eval({TAG}=={eval_str(last)}) maxspan={seconds(d.maxspan_ms)}"
        )
        tests = [f"isnotnull(mvfind({TAG}, {eval_str('^' + s.stream + '$')}))" for s in d.steps]
        if d.until is not None:
            tests.append(f"isnull(mvfind({TAG}, {eval_str('^' + d.until.stream + '$')}))")
        cmds.append("where " + " AND ".join(tests))
        cmds += self._baselines(a, ctx, sb, names)
        outs = [ctx.profile.local(f"{s}.{f}") for s, f in _step_fields(a)]
        cmds.append("table " + " ".join(["_time", "duration", *knames, *outs]))
        return cmds

    def _cooccurrence(
        self, d: ir.Cooccurrence, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
    ) -> list[str]:
        if consume.cooccurrence_applies(d, a, sb):
            cmds, knames = self._keyed_pool(list(d.members), a, ctx, sb, names)
            return cmds + consume.cooccurrence(d, knames, ctx) + self._baselines(a, ctx, sb, names)
        ctx.approximate(
            "unordered co-occurrence",
            "streamstats time_window dc(stream) by keys fires at every event while all "
            "streams are in the window (siemc fires once and consumes the set); a stream "
            "listed twice needs only one event",
            d.span,
            direction="superset",
        )
        _multi_keys(list(d.members), sb, ctx, "co-occurrence", "completes a set")
        cmds, knames = self._keyed_pool(list(d.members), a, ctx, sb, names)
        count = len({m.stream for m in d.members})
        cmds.append("sort 0 _time")
        cmds.append(
            f"streamstats time_window={seconds(d.window_ms)} dc({TAG}) AS siemc_members "
            f"BY {' '.join(knames)}"
        )
        cmds.append(f"where siemc_members=={count}")
        cmds += self._baselines(a, ctx, sb, names)
        return cmds

    def _absence(
        self, d: ir.Absence, a: ir.Analytic, ctx: Context, sb: StreamBuilder, names: Names
    ) -> list[str]:
        """Each ``first`` row alerts unless the nearest strictly later ``missing`` row with its
        keys (the rows in reverse time order: streamstats ``last()``) is within ``within``; decided
        once now() has passed the window."""
        _multi_keys([d.first], sb, ctx, "absence", "has no `missing` event")
        cmds, knames = self._keyed_pool([d.first, d.missing], a, ctx, sb, names)
        by = " ".join(knames)
        # one stream for both roles without joins is a plain search, whose rows carry no TAG
        pooled = cmds[0].startswith("| multisearch")
        is_first = f"{TAG}=={eval_str(d.first.stream)} AND " if pooled else ""
        cmds.append("sort 0 -_time")
        if pooled:
            cmds.append(f"eval siemc_mt=if({TAG}=={eval_str(d.missing.stream)}, _time, null())")
        # A missing row at the first row's own time never counts (docs/semantics.md: no SIEM
        # orders events of one timestamp), so every row of a (keys, _time) group takes the
        # nearest strictly later missing time, which the group's first row in this reversed
        # order sees before any row of its own time. The window only bounds the state; the
        # where decides the edge.
        cmds.append(
            f"streamstats current=f time_window={seconds(d.within_ms + 1000)} "
            f"last({'siemc_mt' if pooled else '_time'}) AS siemc_next BY {by}"
        )
        cmds.append("eval siemc_next=if(siemc_next>_time, siemc_next, null())")
        cmds.append(f"eventstats max(siemc_next) AS siemc_next BY {by} _time")
        within = seconds(d.within_ms)
        cmds.append(
            f"where {is_first}(isnull(siemc_next) OR "
            f"siemc_next-_time>{number(d.within_ms / 1000)}) AND "
            f"_time<=relative_time(now(), {eval_str('-' + within)})"
        )
        cmds.append("fields - siemc_mt siemc_next" if pooled else "fields - siemc_next")
        cmds += self._baselines(a, ctx, sb, names)
        return cmds

    # ------------------------------------------------------------------ baselines
    def _baselines(
        self,
        a: ir.Analytic,
        ctx: Context,
        sb: StreamBuilder,
        names: Names,
    ) -> list[str]:
        cmds: list[str] = []
        for i, b in enumerate(a.baselines):
            if isinstance(b, ir.Deviation):
                continue
            assert isinstance(b, ir.FirstSeen | ir.Rarity)
            look = "-" + seconds(b.lookback_ms).replace("ms", "")
            sub = sb.pipeline([b.stream], earliest=look)
            if sub[0].startswith("| multisearch"):
                sub.append(f"where {TAG}=={eval_str(b.stream)}")
            for c in b.current:
                head, _, rest = c.partition(".")
                field = rest if rest and head in a.step_aliases() else c
                if field in sb.multi and not (
                    isinstance(a.detection, ir.Aggregate) and field in a.detection.keys
                ):
                    # join matches a multivalue field's values only as a whole
                    raise ctx.not_implemented(
                        f"a baseline reading the multi-valued field '{field}' of the candidate",
                        b.span,
                    )
            hist = [names(k, b.span) for k in b.keys]
            cand = [self._candidate(c, ctx, names, b.span) for c in b.current]
            out = f"siemc_base{i}"
            if isinstance(b, ir.FirstSeen):
                sub.append(f"stats min(_time) AS {out} BY {' '.join(hist)}")
                test = f"isnull({out}) OR {out}>=_time"
                what = "first_seen baseline"
            else:
                if b.across == "@days":
                    sub.append("eval siemc_day=floor(_time/86400)")
                    across = "siemc_day"
                else:
                    across = names(b.across, b.span)
                sub.append(f"stats dc({across}) AS {out} BY {' '.join(hist)}")
                test = f"isnull({out}) OR {out}<{b.max}"
                what = "rarity baseline"
            ctx.approximate(
                what,
                f"the history subsearch covers the {seconds(b.lookback_ms)} before search time "
                "(siemc: before each candidate's start) and includes the detection window; "
                "subsearch result limits (50,000 rows) apply",
                b.span,
            )
            renames = [f"{h} AS {c}" for h, c in zip(hist, cand, strict=True) if h != c]
            if renames:
                sub.append("rename " + ", ".join(renames))
            # https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Join
            cmds.append(f"join type=left max=1 {' '.join(cand)} [{' | '.join(sub)}]")
            cmds.append(f"where {test}")
        return cmds

    @staticmethod
    def _candidate(name: str, ctx: Context, names: Names, span: ir.Span) -> str:
        head, _, rest = name.partition(".")
        aliases = ctx.analytic.step_aliases()
        if rest and head in aliases:
            return ctx.profile.local(name)
        return names(name, span)


def _grows_with_the_window(d: ir.Aggregate) -> bool:
    """Whether ``having`` can only turn true as events join a window: count/distinct measures
    at or above a number. Then streamstats' unconsumed window (a superset of siemc's) fires
    wherever siemc does."""
    kinds = {m.name: m.kind for m in d.measures}

    def grows(e: ir.Expr) -> bool:
        if isinstance(e, ir.BinOp) and e.op == "and":
            return grows(e.left) and grows(e.right)
        return (
            isinstance(e, ir.BinOp)
            and e.op in (">=", ">")
            and isinstance(e.left, ir.MeasureRef)
            and kinds.get(e.left.name) in ("count", "distinct")
            and isinstance(e.right, ir.Literal_)
            and isinstance(e.right.value, int | float)
            and not isinstance(e.right.value, bool)
        )

    return d.having is not None and not d.compute and grows(d.having)


def _exact_percentile(d: ir.Aggregate, m: ir.Measure, sb: StreamBuilder) -> bool:
    """Nearest rank by sort + streamstats rank + eventstats count needs one value per event
    and one group per event (no multi-valued field or key) and a tumbling window."""
    return (
        d.window.kind == "tumbling"
        and m.field is not None
        and m.field not in sb.multi
        and not any(k in sb.multi for k in d.keys)
    )


def _nearest_rank(i: int, field: str, p: float, keys: list[str], w: ir.Window) -> list[str]:
    """docs/semantics.md's percentile: the ceil(p/100 * n)-th smallest of the n numeric values
    (at least the first). Splunk's perc/exactperc may interpolate or approximate, so the value
    is picked by rank: the group's rows sorted by value (after bin, every row of a group has
    the window's _time, so streamstats sees the whole group in its time window), streamstats
    count() is the value's rank and eventstats count() the group's n; P is the decimal written
    (99.9 = 999/10), so the rank is computed in integers scaled by its denominator
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eventstats)."""
    frac = Fraction(str(p))
    by = " ".join(["_time", *keys])
    scaled = f"siemc_pc{i}*{frac.numerator}/{100 * frac.denominator}"
    return [
        f"eval siemc_pn{i}=tonumber({field_ref(field)})",
        f"sort 0 _time siemc_pn{i}",
        f"streamstats time_window={seconds(w.size_ms)} count(siemc_pn{i}) AS siemc_pr{i} BY {by}",
        f"eventstats count(siemc_pn{i}) AS siemc_pc{i} BY {by}",
        f"eval siemc_pv{i}=if(siemc_pr{i}==max(1, ceil({scaled})), siemc_pn{i}, null())",
    ]


def _multi_keys(
    steps: list[ir.Step], sb: StreamBuilder, ctx: Context, what: str, fires: str
) -> None:
    """mvexpand makes one row per value of a multi-valued key, and each row is judged alone."""
    for s in steps:
        for k in s.keys:
            if k in sb.multi:
                ctx.approximate(
                    f"{what} keyed on the multi-valued field {k}",
                    f"mvexpand gives one row per value: an event alerts once for each value "
                    f"that {fires}, where siemc judges the event once (any value may match)",
                    s.span,
                )


def _step_fields(a: ir.Analytic) -> list[tuple[str, str]]:
    """(alias, field) pairs the baselines read from correlation steps, in a stable order."""
    aliases = a.step_aliases()
    out: list[tuple[str, str]] = []
    for b in a.baselines:
        for c in getattr(b, "current", ()):
            head, _, rest = c.partition(".")
            if rest and head in aliases and (head, rest) not in out:
                out.append((head, rest))
    return out
