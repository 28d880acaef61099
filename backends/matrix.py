"""The fidelity matrix (construct x target), generated from the backends' SUPPORT tables."""

from __future__ import annotations

from backends import TARGETS, get_backend
from backends.base import NODE_TYPES, construct_name_of_type
from backends.profiles import load_profile, names

_MARK = {
    "exact": "exact",
    "approximate": "approx.",
    "unsupported": "—",
    "not_implemented": "not yet",
}


def markdown() -> str:
    backends = [get_backend(t) for t in TARGETS]
    out = [
        "# Targets and fidelity",
        "",
        "Generated from the backends' `SUPPORT` tables by `siemc fidelity`; a test fails when this",
        "page is stale. **exact**: the query has the evaluator's semantics (docs/semantics.md).",
        "**approx.**: compiles only with `--allow-approximate`; every approximation is reported",
        "(a warning at the source span, and a comment in the artifact); some constructs are exact",
        "in common cases and approximate in others (see the notes). **—**: the target cannot",
        "express it (error `E200`, naming an alternative target). **not yet**: siemc does not",
        "implement it for that target (error `E201`).",
        "",
        "Every approximation has a **direction**, against the evaluator's alerts on the same",
        "events: **superset** (the target fires on every evaluator alert, maybe more: nothing is",
        "missed), **subset** (every target alert is an evaluator alert; some may be missed) or",
        "**mixed** (both). A query's direction is superset only when all its approximations are",
        "supersets (likewise subset); `fidelity.json` records it per pair and per approximation,",
        "`--allow-superset` accepts supersets only, and `siemc test --engines` fails a superset",
        "that misses an evaluator alert (a subset with an extra one). Where a target cannot",
        "express a construct that only removes alerts (a baseline, a cancelling `until`), the",
        "backend may compile the rest as a declared superset (backends/relax.py) instead of",
        "refusing. Without `--profile`, each pair compiles with the best profile of its target",
        "(exact, then superset, subset, mixed); `siemc fidelity --catalog analytics/` counts a",
        "catalog's pairs per target.",
        "",
        "| construct | " + " | ".join(b.target for b in backends) + " |",
        "|---|" + "---|" * len(backends),
    ]
    for t in NODE_TYPES:
        cells = [_MARK[b.SUPPORT[t].level] for b in backends]
        out.append(f"| {construct_name_of_type(t)} | " + " | ".join(cells) + " |")
    for b in backends:
        out += ["", f"## {b.target}", "", f"Profiles: {', '.join(b.profiles)}.", ""]
        for t in NODE_TYPES:
            sup = b.SUPPORT[t]
            out.append(
                f"- **{construct_name_of_type(t)}** ({sup.level.replace('_', ' ')}): {sup.how}"
            )
    return "\n".join(out + _sources()) + "\n"


def _sources() -> list[str]:
    out = [
        "",
        "## Data sources and the fields they carry",
        "",
        "A field-mapping profile (`backends/profiles/<name>.yml`) names, under `sources`, the data",
        "source of each logsource key (`category`, `product`, `product/service`, ...) and, with",
        "`lacks: {<field or prefix.*>: <why>}`, the fields no event of that source carries. A",
        "logsource is described by all its matching entries (its category's and its product's),",
        "or by the most specific one alone where the profile says `source_lookup: most_specific`",
        "(sigma); in a kql profile, an entry for a product's service that names a table (asim's",
        "`zeek/conn`, `zeek/ssl`, `zeek/dns`: the Corelight solution's parser functions) is the",
        "logsource's whole source, with `category_where` for what a category adds. Every backend",
        "checks the fields a stream reads from its source (its filter, derives, enrichment and",
        "join keys, and what `from:` streams, the detection and the baselines read through it; a",
        "join's `add` fields come from the partner) against them:",
        "a stream that reads a field its source lacks is error `E211` at the first read, naming",
        "the logsources and profiles whose sources carry it. Such a query would be valid but",
        "could never match real data.",
        "",
        "| profile | targets | source | lacks |",
        "|---|---|---|---|",
    ]
    for name in names():
        prof = load_profile(name)
        for key, entry in prof.sources.items():
            lacks = entry.get("lacks") or {}
            if lacks:
                fields = ", ".join(f"`{f}`" for f in lacks)
                out.append(f"| {name} | {', '.join(prof.targets)} | `{key}` | {fields} |")
    return out
