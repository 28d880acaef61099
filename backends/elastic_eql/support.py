"""What the EQL backend does with each IR construct (the rows of docs/targets.md)."""

from __future__ import annotations

from backends.base import Support
from compiler import ir


def _s(level: str, how: str) -> Support:
    return Support(level, how)  # type: ignore[arg-type]


SUPPORT: dict[type, Support] = {
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
        "unanchored ends get .*, '.' excludes newline as in Python; \\d as the Unicode "
        "decimal digits Python's \\d matches, spelled out, since Lucene has no Unicode "
        "classes); \\w \\s are ASCII-only in Lucene and non-ASCII letters fold ASCII-only "
        "under regex~: reported approximations; "
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
        "ignores case), coalesce(a, b) as `a : v or (a == null and b : v)`; "
        "registered_domain(x) == d as a test of the ECS <entity>.registered_domain "
        "Elastic fills at ingest with the Public Suffix List when x is an ECS name field "
        "(a requirement noted in the artifact), otherwise as a `regex~` on x proven against "
        "the Public Suffix List (backends/psl_names.py: the names under d, blanks and "
        "trailing dots, minus the suffixes rules name below d; a declared superset past 16 "
        "such suffixes); other functions "
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
        "approximate: Elasticsearch runs one state machine per value of a multi-valued key. "
        "`by [host, process.pid] ... until <process end>` (the same process) becomes `sequence "
        "by host.name, process.entity_id` with no until (ECS's unique process identity; equal "
        "under the conditions the artifact note states, docs/semantics.md). Two steps reading "
        "one stream are approximate: Elasticsearch offers an event to every step it matches, "
        "siemc to one",
    ),
    ir.Step: _s(
        "exact",
        "a counted step as `[..] with runs=N`, which Elasticsearch defines as the step written "
        "N times in a row: the evaluator's meaning of a counted step; at most 100 runs "
        "(Elasticsearch's limit; more: E200)",
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
        "(Elasticsearch >= 8.9), which searches missing events strictly later than `first`, "
        "as siemc does; superset: the absence is reported even when the searched range ends "
        "before first + T (the evaluator waits)",
    ),
    ir.Aggregate: _s(
        "unsupported",
        "EQL has no aggregation (no stats, windows or thresholds); compile to esql, kql or "
        "splunk. A count or distinct-count threshold is named as the Elastic threshold rule "
        "that approximates it (group-by fields, a count, a distinct count, over one rule "
        "execution's look-back)",
    ),
    ir.Measure: _s(
        "unsupported",
        "EQL has no aggregation, so no conditional measure either; compile to splunk or kql",
    ),
    ir.FirstSeen: _s(
        "approximate",
        "an EQL query cannot look back at history: the baseline is dropped, with the streams "
        "only it reads (a superset: a baseline only removes candidates), and the note names "
        "the Elastic answer: a new_terms rule (<= 3 fields) or a building-block chain (this "
        "query as a building block, first-seen decided over its alerts)",
    ),
    ir.Rarity: _s(
        "approximate",
        "EQL cannot count over a lookback period: the baseline is dropped (a superset), and "
        "the note names the Elastic answer: a building-block chain (this query as a building "
        "block, rarity counted over its alerts by an ES|QL rule)",
    ),
    ir.Deviation: _s(
        "approximate",
        "EQL cannot compare with past windows: the baseline is dropped (a superset); it only "
        "ever sits on an aggregate, which EQL refuses, so in practice compile to esql, kql or "
        "splunk",
    ),
}
