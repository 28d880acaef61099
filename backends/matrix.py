"""The fidelity matrix (construct x target), generated from the backends' SUPPORT tables."""

from __future__ import annotations

from backends import TARGETS, get_backend
from backends.base import NODE_TYPES, construct_name_of_type

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
    return "\n".join(out) + "\n"
