"""Elastic Security package: one NDJSON of detection rules for Kibana's rule import API, plus
lookup indices (mapping with ``index.mode: lookup`` and bulk NDJSON of the rows).

Rule type per analytic (docs/export.md): ``eql`` when the EQL backend compiles it exactly
(match, sequence, co-occurrence as ``sample``, absence as a missing-event sequence); a native
``threshold`` rule when it is exact (compiler/export/elastic_native.py); ``esql`` when the
ES|QL backend compiles it exactly (aggregates, baselines); with --allow-approximate a native
``threshold`` or ``new_terms`` rule before an approximate query; otherwise, for a match or a
sequence with one first-seen baseline on at most 3 event fields of one step, a chain: an EQL
building-block rule and a ``new_terms`` rule over its alerts in ``.alerts-security.alerts-*``
(an approximation: the history is the building block's earlier alerts, not the history
stream).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from backends.elastic_esql import lookup_index, lookup_key
from backends.profiles import load_profile, logsource_keys
from compiler import ir
from compiler.build import PairResult
from compiler.evaluator.engine import detection_streams
from compiler.evaluator.streams import required_streams
from compiler.export import attack, elastic_native
from compiler.export import schedule as sch
from compiler.export.common import (
    Package,
    Request,
    approximations_text,
    authors,
    compile_target,
    read_fields,
    schedule_or_skip,
    stable_uuid,
    why_not,
)
from compiler.export.render import readme
from compiler.export.severity import severity
from compiler.lower import Loaded

ALERTS_INDEX = ".alerts-security.alerts-*"
MAX_SIGNALS = 100  # Kibana's default per run
# ECS field sets (https://www.elastic.co/guide/en/ecs/current/ecs-field-reference.html): a field
# in one of them is an ECS field for required_fields; others (zeek.*, winlog.*) are not.
ECS_SETS = frozenset(
    [
        "agent",
        "client",
        "cloud",
        "container",
        "destination",
        "dns",
        "ecs",
        "error",
        "event",
        "file",
        "group",
        "host",
        "http",
        "labels",
        "log",
        "network",
        "observer",
        "orchestrator",
        "organization",
        "package",
        "process",
        "registry",
        "related",
        "rule",
        "server",
        "service",
        "source",
        "threat",
        "tls",
        "url",
        "user",
        "user_agent",
        "vulnerability",
    ]
)


def _date_math(ms: int) -> str:
    """A lookback as Kibana date math, rounded up to whole seconds (``now-3660s``)."""
    return f"now-{sch.fmt_duration(-(-ms // 1000) * 1000)}"


def threat(techniques: tuple[str, ...], tactics: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Kibana's ``threat``: one entry per tactic (attack.filing), its techniques with their
    sub-techniques."""
    out: list[dict[str, Any]] = []
    for tac, filed in attack.filing(techniques, tactics):
        parents: dict[str, dict[str, Any]] = {}
        for t in (attack.technique(x) for x in filed):
            p = attack.technique(t.parent)
            entry = parents.setdefault(p.id, {"id": p.id, "name": p.name, "reference": p.reference})
            if t.id != p.id:
                entry.setdefault("subtechnique", []).append(
                    {"id": t.id, "name": t.name, "reference": t.reference}
                )
        out.append(
            {
                "framework": "MITRE ATT&CK",
                "tactic": {"id": tac.id, "name": tac.name, "reference": tac.reference + "/"},
                "technique": list(parents.values()),
            }
        )
    return out


def _indices(analytic: ir.Analytic) -> list[str]:
    """The index patterns the ecs profile names for the analytic's logsources (as ES|QL's FROM)."""
    prof = load_profile("ecs")
    out: set[str] = set()
    for s in analytic.streams:
        if not isinstance(s.source, ir.LogSource):
            continue
        index = "logs-*"
        for k in logsource_keys(s.source):
            src = prof.source(k)
            if src and src.get("index"):
                index = str(src["index"])
                break
        out.add(index)
    return sorted(out)


def _base_rule(lo: Loaded, role: str, s: sch.Schedule, lookback_ms: int) -> dict[str, Any]:
    a = lo.analytic
    m = a.meta
    sev = severity(m.severity)
    rule: dict[str, Any] = {
        "rule_id": stable_uuid(a.id, "elastic", role),
        "name": m.title,
        "description": m.description.strip(),
        "author": authors(m) or ["siemc"],
        "severity": sev.elastic,
        "risk_score": sev.elastic_risk,
        "interval": sch.fmt_duration(s.frequency_ms),
        "from": _date_math(lookback_ms),
        "to": "now",
        "max_signals": MAX_SIGNALS,
        "enabled": False,  # imported disabled: check index patterns and lookups first
        "version": 1,
        "tags": ["siemc", f"siemc:{a.id}", *(f"OS: {p.capitalize()}" for p in m.platforms)],
        "threat": threat(m.attack_techniques, m.attack_tactics),
        "required_fields": [
            {"name": f, "ecs": f.split(".")[0] in ECS_SETS} for f in read_fields(a)
        ],
        "meta": {"siemc": {"analytic": a.id, "schedule": s.reason}},
    }
    if m.license:
        rule["license"] = m.license
    if m.references:
        rule["references"] = list(m.references)
    if m.false_positives:
        rule["false_positives"] = [fp.strip() for fp in m.false_positives]
    return rule


def _note(art_lines: list[str], s: sch.Schedule, extra: list[str]) -> str:
    lines = [
        "## siemc",
        "",
        f"Schedule: every {sch.fmt_duration(s.frequency_ms)}; {s.reason}.",
    ]
    lines += [f"- {x}" for x in extra]
    if art_lines:
        lines += ["", "Approximations:"] + [f"- {x}" for x in art_lines]
    return "\n".join(lines) + "\n"


def _esql_query(a: ir.Analytic, query: str, s: sch.Schedule) -> str:
    """Frame an aggregate query on whole epoch-aligned windows: the run decides the windows
    that ended in its last ``frequency``. Queries with a NOW-anchored baseline already frame
    themselves on the latest complete window; a query deciding every window against its
    history (per-candidate baselines) reads the whole lookback and keeps only the framed
    windows in its output."""
    d = a.detection
    if not isinstance(d, ir.Aggregate) or "NOW()" in query:
        return query
    size = _esql_duration(d.window.size_ms)
    freq = _esql_duration(s.frequency_ms)
    if a.baselines:
        head, _, keep = query.rstrip("\n").rpartition("\n")
        assert keep.startswith("| KEEP "), keep
        frame = (
            f"| WHERE window >= DATE_TRUNC({size}, NOW()) - {freq}\n"
            f"    AND window < DATE_TRUNC({size}, NOW())"
        )
        return f"{head}\n{frame}\n{keep}"
    head, _, rest = query.partition("\n")
    frame = (
        f"| WHERE @timestamp >= DATE_TRUNC({size}, NOW()) - {freq}\n"
        f"    AND @timestamp < DATE_TRUNC({size}, NOW())"
    )
    return f"{head}\n{frame}\n{rest}"


def _esql_duration(ms: int) -> str:
    for unit, size in (("day", sch.DAY), ("hour", sch.HOUR), ("minute", sch.MINUTE)):
        if ms % size == 0:
            n = ms // size
            return f"{n} {unit}{'s' * (n != 1)}"
    return f"{ms // 1000} seconds"


def _eql_rule(lo: Loaded, art_query: str, s: sch.Schedule, role: str) -> dict[str, Any]:
    r = _base_rule(lo, role, s, s.detection_lookback_ms)
    r.update(type="eql", language="eql", query=art_query, index=_indices(lo.analytic))
    return r


def _detection_only(a: ir.Analytic) -> ir.Analytic:
    """The analytic without baselines and without the streams only they read."""
    used = required_streams(a, detection_streams(a.detection))
    streams = tuple(x for x in a.streams if x.name in used)
    return dataclasses.replace(a, baselines=(), streams=streams)


def _made(a: ir.Analytic, stream: str) -> set[str]:
    """Fields a stream's events get from the analytic (derive, enrich, join), through the
    streams it reads: Elastic's alert documents copy the source event, without them."""
    st = a.stream(stream)
    out = {n for n, _ in st.derive} | {n for en in st.enrich for _, n in en.add}
    if st.join is not None:
        out |= set(st.join.add)
    if isinstance(st.source, str):
        out |= _made(a, st.source)
    return out


def _candidate(
    a: ir.Analytic, fs: ir.FirstSeen, reasons: list[str]
) -> tuple[str, int | None, list[str]] | None:
    """(stream, step index, fields) of the events whose alerts carry the candidate's fields:
    the match's events, or one sequence step's events (``kibana.alert.group.index``)."""
    d = a.detection
    if isinstance(d, ir.Match):
        stream, index, fields = d.stream, None, list(fs.current)
    elif isinstance(d, ir.Sequence):
        aliases = {st.alias: i for i, st in enumerate(d.steps)}
        heads = {c.partition(".")[0] for c in fs.current}
        if len(heads) != 1 or not heads <= set(aliases):
            reasons.append(
                "chain: the first_seen candidate must read one sequence step's fields "
                "(its events' building-block alerts carry them)"
            )
            return None
        index = aliases[heads.pop()]
        stream = d.steps[index].stream
        fields = [c.partition(".")[2] for c in fs.current]
    else:
        reasons.append("chain: only a match or a sequence has alerts that carry event fields")
        return None
    if len(fields) > 3:
        reasons.append("chain: new_terms takes at most 3 fields")
        return None
    made = sorted(set(fields) & _made(a, stream))
    if made:
        reasons.append(
            f"chain: {', '.join(made)} is computed by the analytic (derive, enrich or join), so "
            "the building block's alerts, copies of the source events, do not carry it"
        )
        return None
    return stream, index, fields


def _chain(
    pkg: Package, lo: Loaded, req: Request, s: sch.Schedule, reasons: list[str]
) -> list[dict[str, Any]] | None:
    """An EQL building block of the detection and a ``new_terms`` rule over its alerts
    (``.alerts-security.alerts-*``, the vendor's higher-order rule idiom) for a match or a
    sequence with one first-seen baseline on at most three event fields of one step."""
    a = lo.analytic
    if len(a.baselines) != 1 or not isinstance(a.baselines[0], ir.FirstSeen):
        reasons.append("chain: new_terms expresses one first_seen baseline, no other")
        return None
    fs = a.baselines[0]
    got = _candidate(a, fs, reasons)
    if got is None:
        return None
    stream, index, fields = got
    part = _detection_only(a)
    res = compile_target(lo, "eql", req, analytic=part)
    if res.artifact is None:
        reasons.append(f"eql (without the baseline): {why_not(res)}")
        return None
    # The history is the building block's earlier alerts: the candidate stream's own earlier
    # events when it is the history stream (fewer, from the rule's deployment on, and in a
    # window anchored at the run instead of each candidate: more terms look new, a superset);
    # another stream's events are not seen at all (mixed).
    own = fs.stream == stream and list(fs.keys) == fields
    direction = "superset" if own and index is None else "mixed"
    detail = (
        f"first_seen as a new_terms rule over the building block's alerts ({direction}): the "
        "history is the building block's earlier alerts"
        + ("" if own else f", not the '{fs.stream}' stream")
        + (
            f", of sequence step {index} only (those of completed sequences)"
            if index is not None
            else ""
        )
    )
    if not req.allow_approximate:
        reasons.append(f"elastic chain needs --allow-approximate ({detail})")
        return None
    s = sch.derive(part, req.every_ms)  # the building block reads no history stream
    bb = _eql_rule(lo, res.artifact.query, s, "building-block")
    bb["building_block_type"] = "default"
    bb["name"] = f"{a.meta.title} (siemc building block)"
    bb["note"] = _note(approximations_text(res.artifact), s, [detail])
    query = f'kibana.alert.rule.rule_id: "{bb["rule_id"]}"'
    if index is not None:
        # a sequence's event alerts carry their position; its shell alert has none
        query += f" and kibana.alert.group.index: {index}"
    nt = _base_rule(lo, "rule", s, s.frequency_ms + sch.MINUTE)
    nt.update(
        type="new_terms",
        language="kuery",
        index=[ALERTS_INDEX],
        query=query,
        new_terms_fields=fields,
        history_window_start=_date_math(fs.lookback_ms),
        note=_note(approximations_text(res.artifact), s, [detail]),
    )
    nt["required_fields"] = [
        {"name": f, "ecs": f.split(".")[0] in ECS_SETS} for f in sorted(set(fields))
    ]
    return [bb, nt]


def rules_for(pkg: Package, lo: Loaded, req: Request) -> list[dict[str, Any]]:
    a = lo.analytic
    d = a.detection
    if a.baselines and isinstance(d, ir.Aggregate) and req.every_ms is None:
        # ES|QL baseline queries decide the latest complete window per run (NOW-anchored):
        # one run per window.
        req = dataclasses.replace(req, every_ms=d.window.size_ms)
    s = schedule_or_skip(pkg, lo, req)
    if s is None:
        return []
    reasons: list[str] = []
    # Kibana's own rule types, over the source indices: preferred where exact.
    native = elastic_native.threshold(a, s, reasons) or elastic_native.new_terms(a, s, reasons)
    if native is not None and native.direction == "exact":
        return [_native_rule(lo, s, native)]
    tries: list[tuple[str, PairResult]] = []
    if not a.baselines:
        tries.append(("eql", compile_target(lo, "eql", req)))
    tries.append(("esql", compile_target(lo, "esql", req)))
    if native is not None:
        # an approximate native rule (Kibana's own rule type, reading the history stream
        # itself from the source indices) comes after an exact query, before an approximate
        # one and the chain
        exact = [(t, r) for t, r in tries if r.artifact and not r.artifact.approximations]
        tries = exact
        if not exact and req.allow_approximate:
            return [_native_rule(lo, s, native)]
        if not exact:
            reasons.append(
                f"native {native.fields['type']} needs --allow-approximate ({native.detail})"
            )
    for target, res in tries:
        art = res.artifact
        if art is None:
            reasons.append(f"{target}: {why_not(res)}")
            continue
        if target == "eql":
            r = _eql_rule(lo, art.query, s, "rule")
        else:
            if a.baselines and isinstance(d, ir.Aggregate) and s.frequency_ms != d.window.size_ms:
                reasons.append(
                    "esql: the query decides only the latest complete window per run "
                    "(NOW-anchored baseline): it must run once per window"
                )
                continue
            r = _base_rule(lo, "rule", s, s.lookback_ms)
            r.update(type="esql", language="esql", query=_esql_query(a, art.query, s))
        form = [f"compiled by the {target} backend"]
        form += [x for x in reasons if x.startswith("native ")]
        if native is not None:
            form.append(
                f"not a native {native.fields['type']} rule, which is approximate: {native.detail}"
            )
        r["note"] = _note(approximations_text(art), s, form)
        return [r]
    chain = _chain(pkg, lo, req, s, reasons) if a.baselines else None
    if chain is not None:
        return chain
    pkg.skip(a.id, "; ".join(reasons))
    return []


def _native_rule(lo: Loaded, s: sch.Schedule, native: elastic_native.Native) -> dict[str, Any]:
    """A native threshold or new_terms rule over the source indices; the note says which form
    was chosen and why."""
    r = _base_rule(lo, "rule", s, native.lookback_ms)
    r.update(native.fields, index=_indices(lo.analytic))
    r["meta"]["siemc"]["form"] = f"native {native.fields['type']} ({native.direction})"
    extra = native.notes + ([native.detail] if native.detail else [])
    r["note"] = _note([native.detail] if native.direction != "exact" else [], s, extra)
    return r


def lookup_files(lk: ir.Lookup) -> dict[str, str]:
    """``lookups/<index>.mapping.json`` and ``lookups/<index>.bulk.ndjson`` for a lookup, with
    the fields the ES|QL backend joins on (docs: backends/elastic_esql/__init__.py)."""
    name = lookup_index(lk.name)
    props: dict[str, Any] = {"siemc_row": {"type": "integer"}}
    for c in lk.columns:
        props[c] = {"type": "keyword"}
        props[lookup_key(c)] = {"type": "keyword"}
    mapping = {"settings": {"index": {"mode": "lookup"}}, "mappings": {"properties": props}}
    lines: list[str] = []
    for n, row in enumerate(lk.rows, 1):
        doc: dict[str, Any] = {}
        for c, v in zip(lk.columns, row, strict=True):
            if v != "":  # empty cells are left out: siemc reads them as absent
                doc[c] = v
                doc[lookup_key(c)] = v.lower()
        doc["siemc_row"] = n
        lines.append(json.dumps({"index": {"_index": name, "_id": str(n)}}, sort_keys=True))
        lines.append(json.dumps(doc, sort_keys=True, ensure_ascii=False))
    return {
        f"lookups/{name}.mapping.json": json.dumps(mapping, indent=2, sort_keys=True) + "\n",
        f"lookups/{name}.bulk.ndjson": "\n".join(lines) + "\n",
    }


def package(req: Request) -> Package:
    pkg = Package("elastic")
    rules: list[dict[str, Any]] = []
    lookups: dict[str, ir.Lookup] = {}
    for lo in req.catalog:
        got = rules_for(pkg, lo, req)
        if got:
            pkg.exported.append(lo.analytic.id)
            rules += got
            if any(r["type"] == "esql" for r in got):
                for lk in lo.analytic.lookups:
                    lookups.setdefault(lookup_index(lk.name), lk)
    pkg.files["rules.ndjson"] = "".join(
        json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rules
    )
    for _, lk in sorted(lookups.items()):
        pkg.files.update(lookup_files(lk))
    lines = [
        f"{r['meta']['siemc']['analytic']}: {r['type']} rule every {r['interval']} from "
        f"{r['from']}" + (" (building block)" if "building_block_type" in r else "")
        for r in rules
    ]
    pkg.files["README.md"] = readme(
        pkg,
        "siemc detection rules for Elastic Security",
        "Import rules.ndjson with Kibana's rule import API (rules arrive disabled); create each "
        "lookups/<index> with its mapping, then load its rows with the bulk API.",
        lines,
    )
    return pkg
