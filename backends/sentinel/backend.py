"""Microsoft Sentinel KQL backend (target ``kql``; profiles ``mde`` and ``asim``).

Each stream becomes a ``let`` statement over its table (MDE) or ASIM parser function; the
detection and the baselines are joins and summarizes over those. Lookups are Sentinel watchlists
(``_GetWatchlist('<lookup name>')``: the watchlist alias is the lookup's name, its columns the
CSV's). Predicates and expressions: :mod:`backends.sentinel.expr`; detections and baselines:
:mod:`backends.sentinel.detect`; escaping: :mod:`backends.sentinel.text`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import jinja2

from backends.base import E_NO_SOURCE, Backend, CompileError, Context, Support, _diag
from backends.inline import Env, Inliner, Limits, render_best
from backends.profiles import FieldProfile, load_profile, logsource_keys
from backends.sentinel import psl
from backends.sentinel import text as t
from backends.sentinel.detect import KqlDetectMixin
from backends.sentinel.domains import cut_is_exact, normalised
from backends.sentinel.expr import KqlExprMixin, Scope, Source
from backends.sentinel.fold import KqlJoinFoldMixin
from backends.sentinel.process import ENTITY, identity_sequence, needed_streams
from backends.sentinel.streams import KqlStreamMixin
from compiler import ir

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parents[1] / "templates" / "kql"),
    autoescape=False,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)

_SEQ_HOW = (
    "exact for two steps on the process identity whose first step holds process starts "
    "((host, PID) until process end is keyed on MDE's id + creation time or ASIM's process "
    "GUID, no end events needed): the first later step-2 event within maxspan per start; on MDE "
    "a process start then an event of that process, or a start then a child's start (keyed on "
    "the parent), is one query over the later rows, whose InitiatingProcess* columns are the "
    "process (keyed on PIDs a declared subset: a reused PID pairs only in the evaluator); "
    "otherwise inner joins of the steps on the keys with `between (t0 .. t0 + maxspan)`; each "
    "event pairs "
    "with the earliest later event of the next step, each later event keeps the latest earlier "
    "one (arg_min/arg_max), `until` is a leftanti join. Approximate: for two steps without until "
    "that is the evaluator's pairing but for the input order of one millisecond (KQL has none); "
    "with more steps or until the evaluator's EQL state machine (one pending partial per key "
    "and step, consumed events) can pair differently when instances of one key overlap"
)

_PERIOD_HOW = (
    "approximate when lookback + history join reach + detection period (at least 5m) exceed "
    "the 14-day queryPeriod of a Sentinel scheduled rule (older history is unread"
)


class KqlBackend(KqlDetectMixin, KqlJoinFoldMixin, KqlStreamMixin, KqlExprMixin, Backend):
    target = "kql"
    extension = ".kql"
    comment = "//"
    profiles = ("mde", "asim")

    SUPPORT: ClassVar[dict[type, Support]] = {
        ir.Eq: Support(
            "exact",
            "`=~` / `in~` (case-insensitive), `==` / `in` with |cased; numbers "
            "compare numerically (todouble on string columns)",
        ),
        ir.StrMatch: Support(
            "exact",
            "`contains` / `startswith` / `endswith` (case-insensitive), "
            "`*_cs` variants with |cased; never the term-based `has`; on a multi-valued "
            "(dynamic) column, as text equality, a multi-line `matches regex` over "
            '`strcat_array(c, "\\n")` (some element); regex, cidr, comparisons and lookups '
            "on a dynamic column are E201 (mv-apply not emitted yet)",
        ),
        ir.Regex: Support(
            "exact",
            "`matches regex` (RE2) with `(?i)` unless |cased: the pattern is parsed by Python's "
            "re and re-spelled for RE2 with the same meaning (`{,n}` as `{0,n}`, `\\Z` as "
            "`\\z`, a final `$` as `\\n?\\z`, Unicode `\\d` `\\s` as explicit classes, "
            "letters RE2 folds differently such as i/ı/İ as explicit classes), RE2 (google-re2) "
            "deciding acceptance; Unicode `\\w` `\\b`, `\\B` and a `$` before more pattern are "
            "approximate; look-around, back-references, atomic and possessive groups, "
            "conditionals and patterns RE2 rejects are E200",
        ),
        ir.Compare: Support("exact", "`> >= < <=` (todouble on string columns)"),
        ir.Exists: Support(
            "exact",
            "`isnotempty` on strings (Kusto strings are never null: an "
            'absent string is "", and the MDE and ASIM tables store a present empty value the '
            "same way, so a present empty value reads as absent), `isnotnull` otherwise; "
            '`field: ""`, substrings of "" and regexes matching "" also hold on events '
            "without the field: declared superset (subset under not)",
        ),
        ir.Cidr: Support("exact", "`ipv4_is_in_any_range` / `ipv6_is_in_any_range`"),
        ir.InLookup: Support(
            "exact",
            "`tolower(x) in (_GetWatchlist('<lookup>') | project "
            "tolower(column))`; several columns as a packed array",
        ),
        ir.And: Support("exact", "`and` (two-valued: leaves never yield null)"),
        ir.Or: Support("exact", "`or` (two-valued: leaves never yield null)"),
        ir.Not: Support("exact", "`not()`; negated leaves on nullable columns add `isnotnull`"),
        ir.Literal_: Support("exact", "KQL literals; strings escaped, null is real(null)"),
        ir.FieldRef: Support("exact", "the profile's column, or the query-made column"),
        ir.MeasureRef: Support("exact", "the summarize output column of the measure"),
        ir.BinOp: Support("exact", "arithmetic; `/` is `iff(b == 0, real(null), todouble(a) / b)`"),
        ir.UnaryOp: Support("exact", "`-x` and `not(x)`"),
        ir.Call: Support(
            "exact",
            "tolower/toupper, extract (basename), coalesce, max_of/min_of, abs; "
            "registered_domain (a derived field) by the Public Suffix List as a watchlist "
            "(`_GetWatchlist('siemc_public_suffix_list')`: every suffix of the name looked up, "
            "the longest listed one wins), or the last two labels where the stream's filter "
            "pins the name to values or suffixes no list rule reaches below (no watchlist "
            "needed); inside another expression the last two labels (approximate); a test "
            "only the stream's filter reads is inlined "
            "instead as a regular expression proven against the Public Suffix List, with no "
            "extend and no watchlist for lookups (backends/inline.py); extract_ips is "
            "approximate (extract_all, IPv4 only)",
        ),
        ir.Enrich: Support(
            "exact",
            "`lookup kind=leftouter (_GetWatchlist('<lookup>') ...)` on "
            "lower-cased keys; where the CSV repeats a key, the first row by the watchlist's "
            "siemc_row column (the CSV row number siemc export writes; watchlists keep no row "
            "order): `summarize arg_min(row, *) by` key",
        ),
        ir.Join: Support(
            "exact",
            "each event gets a row id (`new_guid()`), `join kind=inner` on the keys, the time "
            "bound in `where`, one partner per row id by `arg_min` of the distance (earlier on "
            "a tie); approximate when partners at one timestamp may carry different added "
            "fields (no input order in KQL), unless the join is on the process identity against "
            "process starts (one start per process)",
        ),
        ir.Match: Support("exact", "the stream's query: one row per event"),
        ir.Sequence: Support("approximate", _SEQ_HOW),
        ir.Cooccurrence: Support(
            "approximate",
            "union of the members, self-join of each event "
            "with its key's events in [t - window, t], count_distinct of "
            "members; re-alerts on each later completing event instead of "
            "consuming the set",
        ),
        ir.Absence: Support(
            "exact",
            "leftanti join against (first ⋈ missing with `t < ts <= t + within`), decided "
            "when `t + within <= now()`",
        ),
        ir.Aggregate: Support(
            "exact",
            "tumbling: `summarize ... by bin(t, size)` (bin_at "
            "1970-01-01 when the size does not divide a day), sum of no values "
            "null; a multi-valued (dynamic) key is mv-expanded (one group per element); "
            "sliding (approximate): self-join of each event with its "
            "group's events in [t - size, t], no consumption; percentile is "
            "exact: the nearest rank of `array_sort_asc(make_list(x))` (percentile() is "
            "a T-Digest estimate)",
        ),
        ir.Measure: Support(
            "exact",
            "the filter as a boolean column of each event (extend, before keys are "
            "mv-expanded), then countif, count_distinctif, sumif, avgif, minif, maxif, "
            "stdevif, make_list_if on it",
        ),
        ir.Step: Support(
            "approximate",
            "a counted first step then one step (N failures, then a success): a scan per key "
            "over the rows of both streams (and until), sorted by time, keeps the times of the "
            "latest N run events; a next-step row alerts when the row before it is a run event "
            "and the N-th latest lies within maxspan, the closed form of the evaluator's EQL "
            "state machine (backends/sentinel/counted.py). Approximate only for rows of one key "
            "at one millisecond (KQL has no input order; taken run first). Other layouts "
            "(the run not first, more steps, streams one event can be in, multi-valued keys) "
            "are E200",
        ),
        ir.FirstSeen: Support(
            "exact",
            "leftanti join against (candidates ⋈ history in "
            "[start - lookback, start)); " + _PERIOD_HOW + ": fires on a superset); exact "
            "alternative: a watchlist or summary table of first-seen keys",
        ),
        ir.Rarity: Support(
            "exact",
            "count_distinct of `across` (startofday for days) per "
            "candidate over [start - lookback, start); " + _PERIOD_HOW + ": fires on a "
            "superset); exact alternative: a watchlist or summary table of (key, across) pairs",
        ),
        ir.Deviation: Support(
            "exact",
            "past windows of the same aggregate joined per group and "
            "summarized (count, avg/stdev or sum for a ratio) over [start - lookback, start) "
            "(through start with history: include_current); "
            "percentile history is the exact nearest rank of the sorted values; "
            + _PERIOD_HOW
            + ": mixed); exact "
            "alternative: a summary table of past window values",
        ),
    }

    # ------------------------------------------------------------------ rendering
    def render(self, analytic: ir.Analytic, ctx: Context) -> str:
        # a small static lookup or a derived field only filters read: no watchlist, no extend
        return render_best(ctx, analytic, kql_inliner, self._render)

    def _render(self, analytic: ir.Analytic, ctx: Context) -> str:
        self.lets: list[tuple[str, str]] = []
        self.scopes: dict[str, Scope] = {}
        self.used = _referenced_fields(analytic)
        self._ctx_analytic = analytic
        # "(host, PID) until process end" is one process: key on the identity (no end events)
        self.identity_seq = identity_sequence(analytic)
        self.folded = set()
        if self.identity_seq is not None:
            self.used.add(ENTITY)  # the identity the analytic's (host, PID) stands for
        needed = needed_streams(analytic, self.identity_seq)
        for stream in analytic.streams:
            if stream.name not in needed:
                continue
            self.lets.append((t.ident(stream.name), self.stream_query(stream, analytic, ctx)))
        final = self.detection_query(analytic, ctx)
        if any(f"invoke {psl.FUNCTION}()" in q for _, q in self.lets):
            self.lets.insert(0, (psl.FUNCTION, psl.function_body()))
        lets = _read(self.lets, final)
        return _ENV.get_template("query.kql.j2").render(lets=lets, final=final).rstrip("\n")

    def resolve_source(self, stream: ir.Stream, ctx: Context) -> Source:
        src = _resolve(stream, ctx.profile)
        if isinstance(src, str):
            raise self._no_source(ctx, stream, src)
        return src

    def _no_source(self, ctx: Context, stream: ir.Stream, why: str) -> CompileError:
        # Suggest only the profiles that really have a source for this logsource.
        others = [
            p
            for p in self.profiles
            if p != ctx.profile.name and not isinstance(_resolve(stream, load_profile(p)), str)
        ]
        here = f"backends/profiles/{ctx.profile.name}.yml"
        help = (
            f"compile with another profile ({', '.join(others)}) or map the logsource in {here}"
            if others
            else f"no {self.target} profile has a source for it: map the logsource in {here} "
            "(a `sources` entry naming the table or parser that carries these events)"
        )
        return CompileError(
            [
                _diag(
                    E_NO_SOURCE,
                    f"stream '{stream.name}' has no data source in the {ctx.profile.name} "
                    f"profile ({self.target}): {why}",
                    stream.span,
                    help,
                )
            ]
        )

    def stream_query(self, stream: ir.Stream, analytic: ir.Analytic, ctx: Context) -> str:
        lines: list[str] = []
        if isinstance(stream.source, str):
            self.scope = self.scopes[stream.source].clone()
            head = t.ident(stream.source)
        else:
            src = self.resolve_source(stream, ctx)
            _event_data_fields(src, self.used)
            if src.approximate:
                ctx.approximate(f"{src.table} rows", src.approximate, stream.span)
            self.scope = Scope(src)
            head = src.table
            lines += [f"| where {w}" for w in src.where]
            used_cols = {src.fields[f] for f in self.used if f in src.fields}
            ext = [f"{c} = {x}" for c, x in src.computed.items() if c in used_cols]
            if ext:
                lines.append("| extend " + ", ".join(ext))
        if stream.join is not None:
            self.building = stream.name
            lines += self.join_lines(stream.join, analytic, ctx)
        lines += self.pipeline_lines(stream, stream.derive, analytic, ctx)
        self.scopes[stream.name] = self.scope
        return "\n".join([head, *lines])

    def pipeline_lines(
        self,
        stream: ir.Stream,
        derive: tuple[tuple[str, ir.Expr], ...],
        analytic: ir.Analytic,
        ctx: Context,
    ) -> list[str]:
        """The stream's enrichments, derived fields (``derive``) and filter over the current
        scope."""
        lines: list[str] = []
        for en in stream.enrich:
            lines += self.enrich_lines(en, analytic, ctx)
        for name, e in derive:
            if _psl_derive(stream, e):
                lines += self._registered_domain(name, e, ctx)
                continue
            self.deriving_in, self.pre_lines = stream, []
            try:
                text = self.expr(e, ctx)
            finally:
                self.deriving_in = None
            col = self.target_col(name, ctx)
            self.scope.types[col] = self.expr_type(e)
            self.scope.cols[name] = col
            lines += self.pre_lines
            lines.append(f"| extend {t.ident(col)} = {text}")
            helpers = [x.split(" = ", 1)[0].removeprefix("| extend ") for x in self.pre_lines]
            if helpers:
                lines.append(f"| project-away {', '.join(helpers)}")
        if stream.filter != ir.TRUE:
            lines.append(f"| where {self.pred(stream.filter, ctx)}")
        return lines

    def _registered_domain(self, name: str, e: ir.Expr, ctx: Context) -> list[str]:
        """The derived field ``name`` = registered_domain(x) by the Public Suffix List watchlist:
        exact (backends/sentinel/psl.py)."""
        assert isinstance(e, ir.Call)
        self._scalar_args(e.args, "function registered_domain()", ctx)
        arg = e.args[0]
        while isinstance(arg, ir.Call) and arg.func == "lower" and len(arg.args) == 1:
            arg = arg.args[0]  # registered_domain lower-cases anyway
        text = self.expr(arg, ctx)
        if self.expr_type(arg) != "string":
            text = f"tostring({text})"
        ctx.note(psl.note())
        col = self.target_col(name, ctx)
        self.scope.types[col] = "string"
        self.scope.cols[name] = col
        return [
            f"| extend {psl.COLUMN} = {normalised(f'tolower({text})')}",
            f"| invoke {psl.FUNCTION}()",
            f"| extend {t.ident(col)} = {psl.COLUMN}",
            f"| project-away {psl.COLUMN}",
        ]


def _psl_derive(stream: ir.Stream, e: ir.Expr) -> bool:
    """Whether the derived field ``e`` is a registered domain the label cut does not give
    exactly (then the watchlist does)."""
    return (
        isinstance(e, ir.Call)
        and e.func == "registered_domain"
        and not cut_is_exact(stream, e.args[0])
    )


def _read(lets: list[tuple[str, str]], final: str) -> list[tuple[str, str]]:
    """The ``let`` statements the query reads (a stream a folded form replaced is left out)."""
    kept: list[tuple[str, str]] = []
    reader = final
    for name, query in reversed(lets):
        if re.search(rf"(?<![\w']){re.escape(name)}(?![\w'])", reader):
            kept.insert(0, (name, query))
            reader += "\n" + query
    return kept


def _resolve(stream: ir.Stream, prof: FieldProfile) -> Source | str:
    """The source of a logsource stream in a profile, or why the profile has none."""
    ls = stream.source
    assert isinstance(ls, ir.LogSource)
    keys = logsource_keys(ls)
    hint = _category_hint(stream.filter)
    if not ls.category and hint:
        keys.insert(0, f"event.category={hint}")
    entries = [(k, prof.source(k)) for k in keys if prof.source(k) is not None]
    if ls.category and ls.product and f"{ls.category}/{ls.product}" in prof.sources:
        # the pair's entry describes the whole logsource (FieldProfile.source_entries)
        entries = [(k, e) for k, e in entries if k not in (ls.category, ls.product)]
    own = _service_source(ls, prof)
    if own is not None:
        return own
    for k, e in entries:
        if e and "unavailable" in e:
            return f"logsource '{k}': {e['unavailable']}"
    needed = [x for x in (ls.category, ls.product) if x]
    for part in needed:
        if not any(
            k == part
            or k.startswith(part + "/")
            or k.endswith("/" + part)
            or k.startswith("event.category=")
            for k, _ in entries
        ):
            return f"the {prof.name} profile has no data source for '{part}'"
    tables = [e["table"] for _, e in entries if e and "table" in e]
    if not tables:
        return (
            f"the {prof.name} profile names no table for logsource {', '.join(keys) or '(empty)'}"
        )
    src = Source(tables[0], [], {}, {}, {})
    for _, e in reversed(entries):
        assert e is not None
        src.where = list(e.get("where") or []) + src.where
        src.fields.update(e.get("fields") or {})
        src.computed.update(e.get("computed") or {})
        src.types.update(e.get("types") or {})
        if e.get("approximate"):
            src.approximate = " ".join(str(e["approximate"]).split())
        _read_event_data(src, e)
    return src


def _read_event_data(src: Source, e: dict[str, Any]) -> None:
    if e.get("event_data"):
        src.event_data = str(e["event_data"])
        src.table_columns = tuple(str(c) for c in e.get("table_columns") or ())


_EVENT_DATA = "winlog.event_data."


def _event_data_fields(src: Source, used: set[str]) -> None:
    """The winlog.event_data.<Name> fields the analytic reads, on a source whose EventData is
    a dynamic column: each is that column's <Name> member as a string."""
    if src.event_data is None:
        return
    for f in sorted(used):
        name = f[len(_EVENT_DATA) :]
        if not f.startswith(_EVENT_DATA) or f in src.fields or not re.fullmatch(r"\w+", name):
            continue
        col = name + "_data" if name in src.table_columns or name in src.computed else name
        src.fields[f] = col
        src.computed[col] = f"tostring({src.event_data}.{name})"


def _service_source(ls: ir.LogSource, prof: FieldProfile) -> Source | str | None:
    """The source of a logsource whose product's service has a parser of its own (the
    ``product/service`` entry names a table, as Corelight's corelight_conn for Zeek conn.log):
    that entry alone describes it, and the category adds its ``category_where`` condition.
    None when there is no such entry."""
    if not (ls.product and ls.service):
        return None
    key = f"{ls.product}/{ls.service}"
    e = prof.source(key)
    if not e or "table" not in e:
        return None
    where = list(e.get("where") or [])
    if ls.category:
        by_category = e.get("category_where") or {}
        if ls.category not in by_category:
            return (
                f"logsource '{key}' ({e['table']}) has no {ls.category} events (categories: "
                f"{', '.join(sorted(by_category)) or 'none, use the logsource without one'})"
            )
        where += list(by_category[ls.category] or [])
    src = Source(
        str(e["table"]),
        where,
        dict(e.get("fields") or {}),
        dict(e.get("computed") or {}),
        dict(e.get("types") or {}),
        " ".join(str(e["approximate"]).split()) if e.get("approximate") else None,
    )
    _read_event_data(src, e)
    return src


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _category_hint(p: ir.Predicate) -> str | None:
    items = p.items if isinstance(p, ir.And) else (p,)
    for x in items:
        if (
            isinstance(x, ir.Eq)
            and x.field == "event.category"
            and len(x.values) == 1
            and isinstance(x.values[0], str)
        ):
            return x.values[0].lower()
    return None


def _referenced_fields(a: ir.Analytic) -> set[str]:
    """Every field name the analytic can read (to extend only the computed columns it uses)."""
    out: set[str] = {"@timestamp"}

    def walk(x: Any) -> None:
        if isinstance(x, str):
            out.add(x)
            if "." in x:
                out.add(x.split(".", 1)[1])
        elif isinstance(x, tuple | list):
            for y in x:
                walk(y)
        elif hasattr(x, "__dataclass_fields__") and not isinstance(x, ir.Lookup | ir.Span):
            for name in x.__dataclass_fields__:
                walk(getattr(x, name))

    walk(a.streams)
    walk(a.detection)
    walk(a.baselines)
    return out


_LIMITS = Limits(
    "KQL", 100, "keep the extend (the field is read outside filters)", "keep the watchlist"
)


def kql_inliner(ctx: Context, env: Env) -> Inliner:
    """Lookups and derived fields inlined as KQL filters (MDE and ASIM columns are scalars)."""
    return Inliner(ctx, env, _LIMITS)
