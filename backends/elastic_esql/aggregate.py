"""ES|QL aggregation: STATS ... BY BUCKET(@timestamp), measures, compute/having, baselines."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from backends.elastic_esql import baselines as bl_mod
from backends.elastic_esql.build import QueryBuild
from backends.elastic_esql.common import duration
from backends.elastic_esql.expr import NUMERIC, STRINGS, ident, number
from backends.elastic_esql.streams import MultiRead
from compiler import ir

# COUNT_DISTINCT's largest precision_threshold: HyperLogLog++ counts below it are exact up to
# hash collisions (https://www.elastic.co/docs/reference/query-languages/esql/functions-operators/aggregation-functions#esql-count_distinct).
PRECISION = 40000


class AggregateBuilder:
    def __init__(self, build: QueryBuild, agg: ir.Aggregate):
        self.b = build
        self.cols: dict[str, str] = {}  # field -> column, where a multi-stream read renamed it
        self.exact_pct: dict[str, str] = {}  # percentile measure -> its per-row column
        self.r = build.r
        self.ctx = build.ctx
        self.agg = agg
        self.size = duration(agg.window.size_ms)
        self.double = duration(2 * agg.window.size_ms)
        # The latest complete window, epoch-aligned (DATE_TRUNC rounds fixed intervals from
        # the epoch, like BUCKET).
        self.current = f"DATE_TRUNC({self.size}, NOW()) - {self.size}"
        self.helpers: list[str] = []
        self.outputs: list[str] = []  # measure and computed columns, in declaration order
        self._fixups: list[str] = []  # EVALs completing measures (sample stdev)

    # ------------------------------------------------------------------ assembly
    def commands(self) -> list[str]:
        agg = self.agg
        bls = self.b.analytic.baselines
        joined = self._joined(agg.stream)
        per_candidate = (
            bool(bls)
            and all(isinstance(x, ir.FirstSeen) for x in bls)
            and agg.window.kind == "tumbling"
            and self.b.stack.inline_stats
        )
        if joined or per_candidate:
            return self._one_read()
        every_window = (
            bool(bls)
            and all(isinstance(x, ir.Deviation) and x.percentile is None for x in bls)
            and agg.window.kind == "tumbling"
            and self.b.stack.inline_stats
        )
        hopping = agg.window.kind == "sliding" and not bls and _grows_with_events(agg)
        if hopping:
            self.ctx.approximate(
                "sliding window aggregation",
                f"evaluated over epoch-aligned hopping buckets of {self.double} every "
                f"{self.size} (each event in two): every siemc window [e.ts - {self.size}, "
                "e.ts] lies inside one bucket and the condition only grows with more events, "
                "so the query fires for every group and time siemc alerts on; it also fires "
                f"on events up to {self.double} apart, once per bucket instead of once per "
                "consumed window, with the measures of the whole bucket",
                agg.window.span,
                direction="superset",
            )
        elif agg.window.kind == "sliding":
            self.ctx.approximate(
                "sliding window aggregation",
                f"evaluated over epoch-aligned tumbling buckets of {self.size}: a burst that "
                "straddles a bucket boundary is missed, and a bucket alerts once instead of "
                f"once per {self.size} window that reaches the threshold (siemc windows are "
                "[e.ts - size, e.ts] after each event, consumed when they alert)",
                agg.window.span,
            )
        p = self.b.stream(agg.stream)
        cmds = list(p.commands)
        keys = [self.ctx.field(k, agg.span) for k in agg.keys]
        rarity = [x for x in self.b.analytic.baselines if not isinstance(x, ir.Deviation)]
        deviation = [x for x in self.b.analytic.baselines if isinstance(x, ir.Deviation)]
        hist_cols: list[tuple[str, str]] = []  # (column, condition on it)
        if self.b.analytic.baselines and not every_window:
            self._anchor(agg.span)
            lookback = max(x.lookback_ms for x in self.b.analytic.baselines)
            if deviation:
                # only whole past windows whose start is within the lookback
                lookback = lookback // agg.window.size_ms * agg.window.size_ms
            cmds.insert(
                1,
                f"WHERE @timestamp >= {self.current} - {duration(lookback)}\n"
                f"    AND @timestamp < {self.current} + {self.size}",
            )
        if rarity:
            if not self.b.stack.inline_stats:
                raise self.b.needs_inline_stats("a baseline", rarity[0].span)
            cmds += self._history(rarity, hist_cols)
        if keys:
            cmds.append("WHERE " + " AND ".join(f"{ident(k)} IS NOT NULL" for k in keys))
        cmds += self._percentiles([ident(k) for k in keys])
        by = [f"window = BUCKET(@timestamp, {self.size})", *(ident(k) for k in keys)]
        if hopping:
            start = f"DATE_TRUNC({self.size}, @timestamp)"
            cmds.append(f"EVAL window = MV_APPEND({start} - {self.size}, {start})")
            cmds.append("MV_EXPAND window")
            by[0] = "window"
        distinct = self._distinct_exactly(keys)
        if distinct is not None:
            cmds += self._two_stats(distinct, by, ["window", *(ident(k) for k in keys)], hist_cols)
        else:
            aggs = [self.measure(m) for m in agg.measures]
            aggs += [f"{c} = MAX({c})" for c, _ in hist_cols]
            cmds.append("STATS " + ",\n    ".join(aggs) + "\n    BY " + ", ".join(by))
        cmds += self._finish_measures()
        conds: list[str] = []
        if every_window:
            cmds += self._deviation_per_window(deviation, keys, conds)
        elif deviation:
            cmds += self._deviation(deviation, keys, conds, [c for c, _ in hist_cols])
        if agg.having is not None:
            text, kind = self.r.expr(agg.having)
            conds.insert(0, text if kind == "boolean" else self.r.truthy(text, kind))
        conds += [cond for _, cond in hist_cols]
        if conds:
            cmds.append("WHERE " + "\n    AND ".join(conds))
        keep = ["window", *(ident(k) for k in keys), *self.outputs]
        if hopping:
            cmds.append(f"EVAL window_end = window + {self.double}")
            keep.insert(1, "window_end")
        cmds.append("KEEP " + ", ".join(keep))
        return cmds

    def _joined(self, name: str) -> bool:
        cur: str | None = name
        while cur is not None:
            s = self.b.analytic.stream(cur)
            if s.join is not None:
                return True
            cur = s.source if isinstance(s.source, str) else None
        return False

    def _one_read(self) -> list[str]:
        """The aggregate over a stream join and/or with first-seen baselines decided per
        candidate window: every stream in one read (backends/elastic_esql/streams.py)."""
        agg = self.agg
        if agg.window.kind == "sliding":
            raise self.ctx.not_implemented("sliding aggregate over a stream join", agg.window.span)
        bls = list(self.b.analytic.baselines)
        first_seen: list[ir.FirstSeen] = []
        for x in bls:
            if not isinstance(x, ir.FirstSeen):
                raise self.ctx.not_implemented(
                    f"{type(x).__name__} baseline on an aggregate over a stream join", x.span
                )
            if any(c not in agg.keys for c in x.current):
                raise self.ctx.not_implemented(
                    "first_seen candidate that is not a group key", x.span
                )
            first_seen.append(x)
        consumers = [(agg.stream, k) for k in agg.keys]
        consumers += [(agg.stream, m.field) for m in agg.measures if m.field]
        for x in first_seen:
            consumers += [(x.stream, k) for k in x.keys] + [(agg.stream, c) for c in x.current]
        m = MultiRead(self.b, [agg.stream, *(x.stream for x in first_seen)], consumers)
        cmds = list(m.build().commands)
        self.cols = m.cols[agg.stream]
        flag = m.flag[agg.stream]
        cand = bl_mod.Candidates(
            flag, "window", [[self.cols.get(c, c) for c in x.current] for x in first_seen]
        )
        if first_seen:
            size = agg.window.size_ms
            exact_trunc = all(x.lookback_ms % size == 0 for x in first_seen)
            cmds += bl_mod.history(m, first_seen, cand, size if exact_trunc else None)
        keys = list(agg.keys)
        cols = [self.cols.get(k, k) for k in keys]
        rows = [flag] if cand.role is None else [f'{cand.role} == "c"', flag]
        rows += [f"{ident(c)} IS NOT NULL" for c in cols]
        cmds.append("WHERE " + "\n    AND ".join(rows))
        cmds += self._percentiles([ident(c) for c in cols])
        aggs = [self.measure(x) for x in agg.measures]
        aggs += [f"{h} = VALUES({h})" for h in cand.lists]
        by = [f"window = BUCKET(@timestamp, {self.size})"]
        by += [
            ident(k) if k == c else f"{ident(k)} = {ident(c)}"
            for k, c in zip(keys, cols, strict=True)
        ]
        cmds.append("STATS " + ",\n    ".join(aggs) + "\n    BY " + ", ".join(by))
        cmds += self._finish_measures()
        if agg.having is not None:
            text, kind = self.r.expr(agg.having)
            cmds.append("WHERE " + (text if kind == "boolean" else self.r.truthy(text, kind)))
        keep = ["window", *(ident(k) for k in keys), *self.outputs]
        if first_seen:
            cmds += bl_mod.decide(cand, first_seen, all_rows=True)
            seen = [f"siemc_seen_{i}" for i in range(1, len(first_seen) + 1)]
            carry = [f"{s} = COUNT(*) WHERE {s}" for s in seen]
            carry += [f"{o} = MAX({o})" for o in self.outputs]
            cmds.append(
                "STATS "
                + ",\n    ".join(carry)
                + "\n    BY "
                + ", ".join(["window", *(ident(k) for k in keys)])
            )
            cmds.append("WHERE " + " AND ".join(f"{s} == 0" for s in seen))
        cmds.append("KEEP " + ", ".join(keep))
        return cmds

    def _anchor(self, span: ir.Span) -> None:
        self.ctx.approximate(
            "baseline",
            f"the query decides only the latest complete {self.size} window "
            f"[{self.current}, +{self.size}) at each run (NOW-anchored): schedule it every "
            f"{self.size}; siemc decides every window of the data",
            span,
        )

    # ------------------------------------------------------------------ measures
    def _distinct_exactly(self, keys: list[str]) -> ir.Measure | None:
        """The distinct-count measure counted exactly by two STATS (first by the keys and the
        value, then the values per key), or None. The other measures must carry through the
        first STATS (counts, sums, minima, maxima), which needs one value per event when there
        are any (a multi-valued field puts the event in one group per value)."""
        ds = [m for m in self.agg.measures if m.kind == "distinct" and m.field is not None]
        if len(ds) != 1:
            return None
        d = ds[0]
        assert d.field is not None
        fld = self.cols.get(d.field, d.field)
        others = [m for m in self.agg.measures if m is not d]
        if fld in keys or any(m.kind not in ("count", "sum", "min", "max") for m in others):
            return None
        if others and fld in self.r.arrays:
            return None
        return d

    def _two_stats(
        self,
        d: ir.Measure,
        by: list[str],
        group: list[str],
        hist_cols: list[tuple[str, str]],
    ) -> list[str]:
        """COUNT_DISTINCT is a HyperLogLog++ estimate; grouping by the value is exact: a first
        STATS by the group and the value, a second counting the non-null values per group and
        carrying the other measures (a count is the sum of the partial counts)."""
        assert d.field is not None
        f = ident(self.ctx.field(self.cols.get(d.field, d.field), d.span))
        first: list[str] = []
        second: list[str] = []
        for m in self.agg.measures:
            if m is d:
                name = ident(m.name)
                self.outputs.append(name)
                self.r.types["\0measure:" + m.name] = "long"
                if m.where is None:
                    second.append(f"{name} = COUNT({f})")
                    continue
                # a value counts when some event holding it satisfies the condition
                hit = ident(f"siemc_hit_{m.name}")
                first.append(f"{hit} = COUNT(*) WHERE {self.condition(m)}")
                second.append(f"{name} = COUNT({f}) WHERE {hit} > 0")
                continue
            first.append(self.measure(m))
            name = ident(m.name)
            again = "SUM" if m.kind in ("count", "sum") else m.kind.upper()
            second.append(f"{name} = {again}({name})")
        first += [f"{c} = MAX({c})" for c, _ in hist_cols]
        second += [f"{c} = MAX({c})" for c, _ in hist_cols]
        head = "STATS " + ",\n    ".join(first) + "\n    BY " if first else "STATS BY "
        return [
            head + ", ".join([*by, f]),
            "STATS " + ",\n    ".join(second) + "\n    BY " + ", ".join(group),
        ]

    def measure(self, m: ir.Measure) -> str:
        if m.span == ir.NO_SPAN:  # threshold shorthands lower to measures without a span
            m = ir.Measure(m.name, m.kind, m.field, m.p, span=self.agg.span, where=m.where)
        parts = self._measure(m)
        if m.where is not None and m.name not in self.exact_pct:
            # STATS' per-aggregate WHERE keeps the rows the condition is true for; the filter
            # is rendered as a stream filter (true exactly where siemc's holds), so a row it
            # does not hold for, null included, contributes nothing, as in siemc.
            cond = self.condition(m)
            parts = [f"{p} AND {cond}" if " WHERE " in p else f"{p} WHERE {cond}" for p in parts]
        return ", ".join(parts)

    def condition(self, m: ir.Measure) -> str:
        assert m.where is not None
        if self.cols:
            raise self.ctx.not_implemented("conditional measure (where) over a stream join", m.span)
        return self.r.pred(m.where)

    def _measure(self, m: ir.Measure) -> list[str]:
        name = ident(m.name)
        self.outputs.append(name)
        if m.field is None:
            self.r.types["\0measure:" + m.name] = "long"
            return [f"{name} = COUNT(*)"]
        fld = self.cols.get(m.field, m.field)
        f = ident(self.ctx.field(fld, m.span))
        kind = self.r.kind(fld)
        num = f if kind in NUMERIC else f"TO_DOUBLE({f})"
        if m.kind == "count":
            self.r.types["\0measure:" + m.name] = "long"
            if fld in self.r.arrays:
                # COUNT(field) counts values; siemc counts events that have the field
                return [f"{name} = COUNT(*) WHERE {f} IS NOT NULL"]
            return [f"{name} = COUNT({f})"]
        if m.kind == "distinct":
            self.r.types["\0measure:" + m.name] = "long"
            self.ctx.approximate(
                "distinct count",
                f"COUNT_DISTINCT is a HyperLogLog++ estimate: exact below {PRECISION} distinct "
                "values barring hash collisions, approximate above",
                m.span,
            )
            return [f"{name} = COUNT_DISTINCT({f}, {PRECISION})"]
        if kind not in NUMERIC and kind not in STRINGS:
            raise self.ctx.unsupported(
                f"{m.kind} of '{m.field}'", f"the field is of type {kind}", m.span, "use a number"
            )
        duplicates_matter = m.kind in ("sum", "avg", "stdev", "percentile")
        if duplicates_matter and fld in self.r.arrays and kind in STRINGS:
            self.ctx.approximate(
                f"{m.kind} of a multi-valued field",
                f"'{m.field}' is a multi-valued keyword field: ES|QL reads its doc values, "
                "sorted and de-duplicated per document, so a value repeated within one "
                "event counts once, where siemc counts every element",
                m.span,
            )
        if m.kind in ("sum", "min", "max"):
            self.r.types["\0measure:" + m.name] = (
                "long" if kind in ("long", "integer") else "double"
            )
            return [f"{name} = {m.kind.upper()}({num})"]
        if m.kind == "avg":
            self.r.types["\0measure:" + m.name] = "double"
            return [f"{name} = AVG({num})"]
        if m.kind == "stdev":
            # STD_DEV is the population deviation; siemc's is the sample one: multiply by
            # sqrt(n / (n - 1)), and null below two values.
            self.r.types["\0measure:" + m.name] = "double"
            n, sd = f"siemc_n_{m.name}", f"siemc_sd_{m.name}"
            self.helpers += [n, sd]
            self._fixups.append(
                f"{name} = CASE({n} >= 2, {sd} * SQRT(TO_DOUBLE({n}) / ({n} - 1)), null)"
            )
            return [f"{ident(n)} = COUNT({f})", f"{ident(sd)} = STD_DEV({num})"]
        assert m.kind == "percentile" and m.p is not None
        if m.name in self.exact_pct:
            self.r.types["\0measure:" + m.name] = kind if kind in NUMERIC else "double"
            return [f"{name} = MAX({self.exact_pct[m.name]})"]
        self.r.types["\0measure:" + m.name] = "double"
        self.ctx.approximate(
            "percentile",
            "PERCENTILE is a t-digest estimate interpolated between values; siemc takes the "
            "nearest-rank value",
            m.span,
        )
        return [f"{name} = PERCENTILE({num}, {number(m.p)})"]

    def _percentiles(self, group: list[str]) -> list[str]:
        """Nearest-rank percentiles, exactly (docs/semantics.md, "Aggregates"): the smallest
        value v of the group with at least k = max(1, ceil(P/100 * n)) values <= v. Each row
        is paired with every distinct value of its group (INLINE STATS VALUES, MV_EXPAND), the
        rank of each candidate counted (INLINE STATS SUM BY candidate), the smallest candidate
        reaching k kept, and each row restored once (its copy whose candidate is the group's
        smallest value). Multi-valued fields keep PERCENTILE (a comparison with a multi-value
        is null), as approximate."""
        cmds: list[str] = []
        todo = [
            m
            for m in self.agg.measures
            if m.kind == "percentile"
            and m.field is not None
            and m.p is not None
            and self.cols.get(m.field, m.field) not in self.r.arrays
            and self.r.kind(self.cols.get(m.field, m.field)) in NUMERIC
        ]
        if not todo:
            return cmds
        cmds.append(f"EVAL siemc_window = DATE_TRUNC({self.size}, @timestamp)")
        by = ", ".join(["siemc_window", *group])
        for i, m in enumerate(todo, 1):
            assert m.field is not None and m.p is not None
            x = ident(self.cols.get(m.field, m.field))
            frac = Fraction(repr(m.p))
            num, den = frac.numerator, frac.denominator * 100
            vals, first, rank, out = (
                f"siemc_pct_{i}_v",
                f"siemc_pct_{i}_min",
                f"siemc_pct_{i}_rank",
                f"siemc_pct_{i}",
            )
            cond = "" if m.where is None else f" WHERE {self.condition(m)}"
            held = "" if m.where is None else f" AND {self.condition(m)}"
            cmds += [
                f"INLINE STATS siemc_pct_{i}_n = COUNT({x}){cond}, {vals} = VALUES({x}){cond}"
                f"\n    BY {by}",
                # the group's smallest value marks the one copy of each row kept; a group
                # without values gets 0 (expanded once, ranks nothing)
                f"EVAL {vals} = COALESCE({vals}, 0), {first} = MV_MIN({vals})",
                f"MV_EXPAND {vals}",
                f"INLINE STATS {rank} = SUM(CASE({x} <= {vals}{held}, 1, 0))\n    BY {by}, {vals}",
                # k = ceil(num / den * n) in integer arithmetic, at least 1
                f"INLINE STATS {out} = MIN({vals}) WHERE {rank} >= GREATEST(1, "
                f"(siemc_pct_{i}_n * {num} + {den - 1}) / {den})\n    BY {by}",
                f"WHERE {vals} == {first}",
            ]
            self.exact_pct[m.name] = out
        return cmds

    def _finish_measures(self) -> list[str]:
        parts = list(self._fixups)
        for name, e in self.agg.compute:
            text, kind = self.r.expr(e)
            parts += [f"{h} = {t}" for h, t in self.r.hoisted]
            self.helpers += [h for h, _ in self.r.hoisted]
            self.r.hoisted.clear()
            parts.append(f"{ident(name)} = {text}")
            self.r.types["\0measure:" + name] = kind
            self.outputs.append(ident(name))
        return ["EVAL " + ",\n    ".join(parts)] if parts else []

    # ------------------------------------------------------------------ baselines
    def _history(
        self, baselines: Sequence[ir.Baseline], hist_cols: list[tuple[str, str]]
    ) -> list[str]:
        cmds = [f"EVAL siemc_current = @timestamp >= {self.current}"]
        self.helpers.append("siemc_current")
        for i, bl in enumerate(baselines, 1):
            assert isinstance(bl, ir.FirstSeen | ir.Rarity)
            name = type(bl).__name__
            if bl.stream != self.agg.stream:
                raise self.ctx.not_implemented(
                    f"{name} baseline over another stream than the aggregate's", bl.span
                )
            if bl.keys != bl.current:
                raise self.ctx.not_implemented(f"{name} baseline with renamed keys (as:)", bl.span)
            for k in bl.keys:
                if k in self.r.arrays:
                    self.ctx.approximate(
                        "baseline",
                        f"'{k}' is multi-valued in ECS: ES|QL does not document which group's "
                        "INLINE STATS result a row with several key values receives, where "
                        "siemc records and looks up every value",
                        bl.span,
                    )
            keys = ", ".join(ident(self.ctx.field(k, bl.span)) for k in bl.keys)
            col = f"siemc_hist_{i}"
            since = f"{self.current} - {duration(bl.lookback_ms)}"
            window = f"NOT siemc_current AND @timestamp >= {since}"
            if isinstance(bl, ir.FirstSeen):
                stat = "COUNT(*)"
                hist_cols.append((col, f"COALESCE({col}, 0) == 0"))
            else:
                if bl.across == "@days":
                    across = "DATE_TRUNC(1 day, @timestamp)"
                else:
                    across = ident(self.ctx.field(bl.across, bl.span))
                self.ctx.approximate(
                    "rarity baseline",
                    f"COUNT_DISTINCT is a HyperLogLog++ estimate: exact below {PRECISION} "
                    "distinct values barring hash collisions",
                    bl.span,
                )
                stat = f"COUNT_DISTINCT({across}, {PRECISION})"
                hist_cols.append((col, f"COALESCE({col}, 0) < {bl.max}"))
            cmds.append(f"INLINE STATS {col} = {stat} WHERE {window} BY {keys}")
        cmds.append("WHERE siemc_current")
        return cmds

    def _deviation_per_window(
        self, devs: list[ir.Deviation], keys: list[str], conds: list[str]
    ) -> list[str]:
        """Every window decided against its own past (docs/semantics.md, "Baselines"): each
        group window is paired with every window of its group (INLINE STATS VALUES(window),
        MV_EXPAND); it is history of the paired window when it starts within the lookback and
        ends by that window's start; a STATS per (paired window, group) gives the current
        values and the history's count, mean and deviation."""
        by = ", ".join(["siemc_window", *map(ident, keys)])
        carry = [f"{c} = MAX({c}) WHERE window == siemc_window" for c in ["window", *self.outputs]]
        hist: list[str] = []
        longest = max(d.lookback_ms for d in devs)
        for i, d in enumerate(devs, 1):
            # siemc_past reaches the longest lookback; a shorter one starts later
            past = "siemc_past"
            if d.lookback_ms < longest:
                past += f" AND window >= siemc_window - {duration(d.lookback_ms)}"
            if d.include_current:
                past += " OR window == siemc_window"
            assert d.percentile is None
            hist += _compared(d, i, f"WHERE {past}", conds)
        lookback = duration(longest)
        group = f"\n    BY {', '.join(map(ident, keys))}" if keys else ""
        return [
            f"INLINE STATS siemc_window = VALUES(window){group}",
            "MV_EXPAND siemc_window",
            f"EVAL siemc_past = window < siemc_window AND window >= siemc_window - {lookback}",
            "STATS " + ",\n    ".join(carry + hist) + f"\n    BY {by}",
        ]

    def _deviation(
        self, devs: list[ir.Deviation], keys: list[str], conds: list[str], extra: list[str]
    ) -> list[str]:
        cols = ["window", *self.outputs, *extra]
        carry = [f"{c} = MAX({c}) WHERE siemc_current" for c in cols]
        hist: list[str] = []
        longest = max(d.lookback_ms for d in devs)
        for i, d in enumerate(devs, 1):
            # the range read holds the current window and the past ones of the longest lookback
            past = [] if d.include_current else ["NOT siemc_current"]
            if d.lookback_ms < longest:
                past.append(f"window >= {self.current} - {duration(d.lookback_ms)}")
            hist += _compared(d, i, "WHERE " + " AND ".join(past) if past else "", conds)
            if d.percentile is not None:
                self.ctx.approximate(
                    "deviation baseline",
                    "PERCENTILE is a t-digest estimate; siemc compares with the nearest-rank "
                    "percentile of the past windows",
                    d.span,
                )
        return [
            f"EVAL siemc_current = window == {self.current}",
            "STATS "
            + ",\n    ".join(carry + hist)
            + ("\n    BY " + ", ".join(map(ident, keys)) if keys else ""),
            "WHERE window IS NOT NULL",
        ]


def _compared(d: ir.Deviation, i: int, past: str, conds: list[str]) -> list[str]:
    """The aggregates of the values deviation ``i`` compares with (``past``: the filter that
    selects them) and, appended to ``conds``, its tests (docs/semantics.md, deviation). The
    count includes the current window with ``include_current``, so min_history past windows
    are one value more; a null current value fails every comparison, as in siemc."""
    m, below = ident(d.measure), d.direction == "below"
    n = f"siemc_dev_n_{i}"
    hist = [f"{n} = COUNT({m}) {past}".rstrip()]
    # the sample standard deviation needs two values (siemc: false with fewer)
    least = max(d.min_history + (1 if d.include_current else 0), 2 if d.k is not None else 1)
    conds.append(f"{n} >= {least}")
    if d.k is not None:
        avg, sd = f"siemc_dev_avg_{i}", f"siemc_dev_sd_{i}"
        hist += [f"{avg} = AVG({m}) {past}".rstrip(), f"{sd} = STD_DEV({m}) {past}".rstrip()]
        sample_sd = f"{sd} * SQRT(TO_DOUBLE({n}) / ({n} - 1))"  # STD_DEV: population
        bound = f"{avg} {'-' if below else '+'} {number(d.k)} * {sample_sd}"
        conds.append(f"{m} {'<' if below else '>'} {bound}")
    if d.percentile is not None:
        pc = f"siemc_dev_p_{i}"
        hist.append(f"{pc} = PERCENTILE({m}, {number(d.percentile)}) {past}".rstrip())
        conds.append(f"{m} {'<' if below else '>'} {pc}")
    if d.ratio is not None:
        # "R times the mean" as products of the count and the sum, exact for whole numbers
        # where AVG would round first; a sum that is not positive has no ratio
        total, r = f"siemc_dev_sum_{i}", number(d.ratio)
        hist.append(f"{total} = SUM({m}) {past}".rstrip())
        times = "" if r == "1" else f" * {r}"
        test = f"{m} * {n}{times} <= {total}" if below else f"{m} * {n} >= {total}{times}"
        conds.append(f"{total} > 0 AND {test}")
    return hist


def _grows_with_events(agg: ir.Aggregate) -> bool:
    """Whether ``having`` can only turn true as events join a window (monotone): and/or of
    counts, distinct counts and maxima at or above a number and minima at or below one. A
    window holding every event of a siemc window then fires wherever siemc does."""
    kinds = {m.name: m.kind for m in agg.measures}

    def grows(e: ir.Expr) -> bool:
        if isinstance(e, ir.BinOp) and e.op in ("and", "or"):
            return grows(e.left) and grows(e.right)
        if not (
            isinstance(e, ir.BinOp)
            and isinstance(e.left, ir.MeasureRef)
            and isinstance(e.right, ir.Literal_)
            and isinstance(e.right.value, int | float)
            and not isinstance(e.right.value, bool)
        ):
            return False
        kind = kinds.get(e.left.name)
        if e.op in (">=", ">"):
            return kind in ("count", "distinct", "max")
        return e.op in ("<=", "<") and kind == "min"

    return not agg.compute and (agg.having is None or grows(agg.having))
