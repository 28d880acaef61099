"""Run a pySigma backend's query on siemc's engines, for bench/vs_pysigma.py.

siemc's engine adapters read siemc's own output conventions (key columns, header notes) to
make canonical alerts; a pySigma query has its own columns, so here the engines run it for
raw rows (SPL interpreter, ES|QL interpreter, eql's PythonEngine, DuckDB's KQL) over the same
events, presented as each pySigma pipeline expects them: Splunk as the Splunk Add-on for
Sysmon extracts them (siemc's ``sysmon`` profile: Image, CommandLine, ...), Elastic as ECS
documents, Sentinel as Defender XDR tables (siemc's ``mde`` profile).

Each run gives an :class:`Outcome`: the times of the events a single-event query returns, or
the group keys of the rows (windows, sequences) a correlation query returns. Both sides of
the bench are compared with the evaluator at that grain (docs: bench/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backends.profiles import load_profile
from compiler import ir
from compiler.engines import NotExecutable, run_eql, run_esql, run_kql, run_spl
from compiler.evaluator.keys import normalise
from compiler.evaluator.model import Event


@dataclass(frozen=True)
class Outcome:
    times: frozenset[int]  # alert times (single-event rules)
    keys: frozenset[tuple[Any, ...]]  # alerting group keys (correlations)


def outcome(times: Sequence[int | None], keys: Sequence[Sequence[Any]]) -> Outcome:
    return Outcome(
        frozenset(t for t in times if t is not None),
        frozenset(tuple(normalise(v) if v is not None else None for v in k) for k in keys),
    )


def _column(row: dict[str, Any], names: Sequence[str]) -> Any:
    for n in names:
        if n in row:
            v = row[n]
            return v[0] if isinstance(v, list) and len(v) == 1 else v
    return None


def run_splunk(query: str, events: list[Event], analytic: ir.Analytic, keys: list[str]) -> Outcome:
    interp = run_spl.interpreter()
    profile = load_profile("sysmon")
    conv = run_spl.ProfileEvents(profile, analytic, interp)
    docs = [conv.event(e) for e in events]
    # pySigma writes a bare search; Splunk's search bar puts the implicit `search` in front
    # a line break is white space to the search language
    text = spl_bin(spl_in(re.sub(r"\s*\n\s*", " ", query.strip())))
    text = text if text.startswith("|") else "search " + text
    now = max((e.ts for e in events), default=0)
    try:
        rows = interp.execute(text, docs, {}, now, {})
    except interp.NotExecutable as exc:
        raise NotExecutable(f"SPL interpreter: {exc.what}") from None
    cols = [[profile.fields.get(k, k), k] for k in keys]
    return outcome(
        [run_spl._ms(r.get("_time")) for r in rows], [[_column(r, c) for c in cols] for r in rows]
    )


_IN = re.compile(r'\b([A-Za-z_][\w.]*) IN \(((?:"(?:[^"\\]|\\.)*"|[^()"])*)\)')
_ITEM = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^,]+?)\s*(?:,|$)')


def spl_in(query: str) -> str:
    """``f IN (a, b)`` in a search as ``(f=a OR f=b)``: the search command's IN operator is
    that disjunction (Search Reference, search command: "The IN operator"), which siemc's SPL
    interpreter does not parse; the rewrite changes no meaning."""

    def sub(m: re.Match[str]) -> str:
        items = [x for x in _ITEM.findall(m.group(2)) if x]
        return "(" + " OR ".join(f"{m.group(1)}={v}" for v in items) + ")"

    return _IN.sub(sub, query)


_BIN = re.compile(r"\| bin _time span=(\d+)([smhd])\b")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def spl_bin(query: str) -> str:
    """``bin _time span=N<unit>`` as the eval that computes the same bucket: ``_time`` rounded
    down to a multiple of the span (Search Reference, bin: spans under a day align to the epoch
    when ``aligntime`` is not given), which siemc's SPL interpreter evaluates; ``bin`` itself it
    does not implement."""

    def sub(m: re.Match[str]) -> str:
        span = int(m.group(1)) * _UNIT_S[m.group(2)]
        return f"| eval _time=floor(_time/{span})*{span}"

    return _BIN.sub(sub, query)


_CASELESS = re.compile(r"\b([a-z_]+(?:\.[a-z_]+)+)\.caseless\b")


def caseless(query: str) -> str:
    """ecs_windows names ``X.caseless``, a lowercase-normalised multi-field that Elastic
    Endpoint's and Winlogbeat's index templates define beside ``X``; the engines index plain
    ECS documents, so the query reads ``X`` (values compared as written)."""
    return _CASELESS.sub(r"\1", query)


def run_esql_query(query: str, events: list[Event], keys: list[str]) -> Outcome:
    idx = run_esql.indices(events, "ecs")
    # pySigma reads every index (`from *`); the interpreter knows the indices by name
    text = re.sub(r"^from \*", "from " + ",".join(sorted(idx)), caseless(query))
    now = max((e.ts for e in events), default=0)
    try:
        rows = run_esql.execute_rows(text, idx, {}, now)
    except Exception as exc:  # a parse or run error of the interpreter: not executable
        raise NotExecutable(f"ES|QL interpreter: {' '.join(str(exc).split())[:200]}") from None
    times = [run_esql.plain(r.get("@timestamp")) for r in rows]
    return outcome(
        [t if isinstance(t, int) else None for t in times],
        [[_column(r, [k]) for k in keys] for r in rows],
    )


def run_eql_query(query: str, events: list[Event], keys: list[str]) -> Outcome:
    text = caseless(query)
    try:
        ast = run_eql.parse(text)
    except Exception as exc:
        raise NotExecutable(f"eql cannot parse it: {' '.join(str(exc).split())[:200]}") from None
    runner = run_eql._Runner(events)
    try:
        results = runner.run(ast)
    except Exception as exc:
        raise NotExecutable(f"eql cannot run it: {' '.join(str(exc).split())[:200]}") from None
    times = [runner.events[r[0]].ts for r in results if len(r) == 1]
    found = [[runner.events[r[0]].fields.get(k) for k in keys] for r in results]
    return outcome(times, found)


def run_kql_query(
    query: str, events: list[Event], analytic: ir.Analytic, keys: list[str]
) -> Outcome:
    dk = run_kql._require()
    profile = load_profile("mde")
    tables = run_kql.Tables(profile, events, analytic)
    con = run_kql._connect(dk)
    try:
        tables.create(con)
        now = max((e.ts for e in events), default=0)
        opts = {"functions": run_kql._functions("mde"), "query_now": run_kql._ts(now)}
        try:
            rel = dk.kql(con, query, **opts)
            cols, rows = list(rel.columns), rel.fetchall()
        except Exception as exc:
            raise NotExecutable(f"KQL engine: {' '.join(str(exc).split())[:200]}") from None
    finally:
        con.close()
    recs = [dict(zip(cols, r, strict=True)) for r in rows]
    times = [run_kql._ms(r.get("Timestamp", r.get("TimeGenerated"))) for r in recs]
    # the Kusto backend converts no correlation; a key column of a future one would carry a
    # Defender name, which is not mapped back here, so no key is read
    return outcome(times, [[None for _ in keys] for _ in recs])
