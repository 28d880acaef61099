"""`siemc fidelity --catalog`: how a catalog deploys, per target: exact, directed approximations
(superset / subset / mixed) and refusals, with each pair's cell."""

from __future__ import annotations

import json
from collections.abc import Sequence

from compiler.build import PairResult

COLUMNS = ("exact", "superset", "subset", "mixed", "refused")


def cell(r: PairResult) -> str:
    """exact / superset / subset / mixed, or refused (why: the diagnostic codes)."""
    if r.artifact is not None:
        return r.direction or "exact"
    return "refused"


def counts(results: Sequence[PairResult], targets: Sequence[str]) -> dict[str, dict[str, int]]:
    out = {t: dict.fromkeys(COLUMNS, 0) for t in targets}
    for r in results:
        out[r.target][cell(r)] += 1
    return out


def markdown(results: Sequence[PairResult], targets: Sequence[str]) -> str:
    per = counts(results, targets)
    lines = ["| target | " + " | ".join(COLUMNS) + " | pairs |", "|---" * (len(COLUMNS) + 2) + "|"]
    total = dict.fromkeys(COLUMNS, 0)
    for t in targets:
        row = per[t]
        for c in COLUMNS:
            total[c] += row[c]
        lines.append(
            f"| {t} | " + " | ".join(str(row[c]) for c in COLUMNS) + f" | {sum(row.values())} |"
        )
    lines.append(
        "| **all** | "
        + " | ".join(f"**{total[c]}**" for c in COLUMNS)
        + f" | **{sum(total.values())}** |"
    )
    by_id: dict[str, dict[str, PairResult]] = {}
    for r in results:
        by_id.setdefault(r.analytic, {})[r.target] = r
    lines += ["", "| analytic | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for aid in sorted(by_id):
        cells = []
        for t in targets:
            pair = by_id[aid].get(t)
            if pair is None:
                cells.append("")
            elif pair.artifact is not None:
                cells.append(f"{cell(pair)} ({pair.artifact.profile})")
            else:
                codes = sorted({d.code for d in pair.diagnostics})
                cells.append(f"refused ({', '.join(codes)})")
        lines.append(f"| {aid} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def as_json(results: Sequence[PairResult], targets: Sequence[str]) -> str:
    pairs: dict[str, dict[str, dict[str, str]]] = {}
    for r in results:
        entry = {"fidelity": cell(r)}
        if r.artifact is not None:
            entry["profile"] = r.artifact.profile
        else:
            entry["codes"] = ",".join(sorted({d.code for d in r.diagnostics}))
        pairs.setdefault(r.analytic, {})[r.target] = entry
    doc = {"targets": counts(results, targets), "pairs": pairs}
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
