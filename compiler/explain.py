"""``siemc explain``: per target, what the SIEM will run, how faithful it is and why, and the
nearest change to the analytic that would make the pair exact.

The verdict is the one ``siemc build`` records (compile_pair with approximations allowed, the best
profile of the target). Suggestions are of three kinds, each labelled with how sure it is:

* ``verified``: a rewrite of the analytic (a tumbling instead of a sliding window, a correlation
  on ``process.entity_id`` instead of host and PID), compiled here, which makes the pair exact;
* ``hint``: a known remedy for an approximated construct, not compiled (it needs information the
  analytic does not hold, such as which field the data already fills);
* the refusal's own ``help`` line, which names what the target can run instead.

Where none applies, the explanation says that no change is known.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends import get_backend
from backends.identity import HOST_KEYS, PID
from compiler import ir
from compiler.build import PairResult, compile_pair
from compiler.explain_plan import plan_lines
from compiler.lower import Loaded

ENTITY_ID = "process.entity_id"


@dataclass(frozen=True)
class Reason:
    what: str  # the construct approximated, or the diagnostic code of a refusal
    direction: str  # superset / subset / mixed, or refused
    detail: str
    at: str  # path:line:col
    source_line: str
    help: str | None = None


@dataclass(frozen=True)
class Suggestion:
    change: str
    kind: str  # verified / hint / help
    at: str | None = None


@dataclass
class TargetExplanation:
    target: str
    verdict: str  # exact / superset / subset / mixed / refused
    profile: str | None
    profiles: dict[str, str]  # verdict under each profile of the target
    reasons: list[Reason] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    query: str | None = None


@dataclass
class Explanation:
    analytic: str
    path: str
    plan: list[str]
    targets: list[TargetExplanation]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def verdict(r: PairResult) -> str:
    return (r.direction or "exact") if r.artifact is not None else "refused"


def _at(path: str, line: int, col: int) -> str:
    return f"{path}:{line}:{col}"


def _line(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1].strip() if 1 <= line <= len(lines) else ""


def _reasons(r: PairResult) -> list[Reason]:
    if r.artifact is not None:
        return [
            Reason(
                a.construct,
                a.direction,
                a.detail,
                _at(a.span.path, a.span.line, a.span.col),
                _line(r.source, a.span.line),
            )
            for a in r.artifact.approximations
        ]
    return [
        Reason(
            d.code,
            "refused",
            d.message,
            _at(d.path, d.line, d.col),
            _line(r.source, d.line),
            d.help,
        )
        for d in r.diagnostics
    ]


# --------------------------------------------------------------------------- rewrites
Rewrite = Callable[[ir.Analytic], tuple[ir.Analytic, str, ir.Span] | None]


def _tumbling(a: ir.Analytic) -> tuple[ir.Analytic, str, ir.Span] | None:
    d = a.detection
    if not isinstance(d, ir.Aggregate) or d.window.kind != "sliding":
        return None
    w = dataclasses.replace(d.window, kind="tumbling")
    change = "use a tumbling window (window: {kind: tumbling}) instead of a sliding one"
    return dataclasses.replace(a, detection=dataclasses.replace(d, window=w)), change, w.span


def _entity_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    if PID not in keys:
        return keys
    rest = tuple(k for k in keys if k != PID and k not in HOST_KEYS)
    return (ENTITY_ID, *rest)


def _entity_id(a: ir.Analytic) -> tuple[ir.Analytic, str, ir.Span] | None:
    d = a.detection
    change = f"key the correlation on {ENTITY_ID} instead of host and {PID}"
    if isinstance(d, ir.Sequence) and any(PID in st.keys for st in d.steps):
        steps = tuple(dataclasses.replace(st, keys=_entity_keys(st.keys)) for st in d.steps)
        if d.until is not None:
            change += " (a unique process id needs no `until` on the process end)"
        new: ir.Detection = dataclasses.replace(d, steps=steps, until=None)
    elif isinstance(d, ir.Cooccurrence) and any(PID in st.keys for st in d.members):
        members = tuple(dataclasses.replace(st, keys=_entity_keys(st.keys)) for st in d.members)
        new = dataclasses.replace(d, members=members)
    else:
        return None
    return dataclasses.replace(a, detection=new), change, d.span


REWRITES: tuple[Rewrite, ...] = (_tumbling, _entity_id)

# Remedies for approximated constructs that cannot be checked by compiling (matched on the
# construct's name): they need a choice the analytic does not make.
HINTS: tuple[tuple[str, str], ...] = (
    (
        "registered_domain",
        "compare a field the data source already fills with the registered domain (e.g. "
        "dns.question.registered_domain in ECS) instead of calling registered_domain()",
    ),
    (
        "multi-valued",
        "correlate or test on a single-valued field: the target splits or matches lists "
        "element by element",
    ),
    (
        "lookup enrichment",
        "give the lookup one row per match key: with repeated keys the target may pick "
        "another row than the first",
    ),
    (
        "regular expression",
        "use a pattern within the target's regular expression dialect (no lookaround or "
        "backreferences), or a contains/startswith/endswith test",
    ),
    ("logsource", "name a logsource the target's profile maps (docs/targets.md)"),
)


def _suggestions(loaded: Loaded, target: str, best: PairResult) -> list[Suggestion]:
    """Towards an exact pair. Another profile is never among them: the verdict already is the
    best profile's (each profile's verdict is listed beside it)."""
    if verdict(best) == "exact":
        return []
    out: list[Suggestion] = []
    for rewrite in REWRITES:
        found = rewrite(loaded.analytic)
        if found is None:
            continue
        analytic, change, span = found
        trial = compile_pair(
            dataclasses.replace(loaded, analytic=analytic),
            target,
            profile=None,
            allow_approximate=True,
        )
        if verdict(trial) == "exact":
            at = _at(span.path, span.line, span.col)
            out.append(Suggestion(f"{change}: then {target} compiles it exactly", "verified", at))
    for reason in _reasons(best):
        if reason.help and reason.direction == "refused":
            out.append(Suggestion(reason.help, "help", reason.at))
        for word, hint in HINTS:
            if word in reason.what and Suggestion(hint, "hint", reason.at) not in out:
                out.append(Suggestion(hint, "hint", reason.at))
    return out


def explain(loaded: Loaded, targets: Sequence[str]) -> Explanation:
    a = loaded.analytic
    out = []
    for t in targets:
        best = compile_pair(loaded, t, profile=None, allow_approximate=True)
        profiles = {
            p: verdict(compile_pair(loaded, t, profile=p, allow_approximate=True))
            for p in get_backend(t).profiles
        }
        art = best.artifact
        out.append(
            TargetExplanation(
                target=t,
                verdict=verdict(best),
                profile=art.profile if art is not None else None,
                profiles=profiles,
                reasons=_reasons(best),
                suggestions=_suggestions(loaded, t, best),
                notes=list(art.notes) if art is not None else [],
                query=art.query if art is not None else None,
            )
        )
    return Explanation(a.id, a.path, plan_lines(a), out)


def render(ex: Explanation, *, query: bool) -> str:
    """The explanation as text; ``query``: also the query each target runs."""
    lines = [f"{ex.analytic}  ({ex.path})", "", "plan:"]
    lines += [f"  {p}" for p in ex.plan]
    for t in ex.targets:
        prof = f" with profile {t.profile}" if t.profile else ""
        lines += ["", f"{t.target}: {t.verdict}{prof}"]
        others = [f"{p} {v}" for p, v in t.profiles.items()]
        if len(others) > 1:
            lines.append(f"  profiles: {', '.join(others)}")
        for r in t.reasons:
            head = f"{r.what} ({r.direction})" if r.direction != "refused" else f"error[{r.what}]"
            lines.append(f"  - {head} at {r.at}: {r.detail}")
            if r.source_line:
                lines.append(f"      | {r.source_line}")
        for n in t.notes:
            lines.append(f"  note: {n}")
        if t.verdict != "exact":
            if t.suggestions:
                for s in t.suggestions:
                    where = f" (at {s.at})" if s.at else ""
                    lines.append(f"  nearest change [{s.kind}]: {s.change}{where}")
            else:
                lines.append("  nearest change: none known")
        if query and t.query:
            lines += ["  query:"] + [f"    {q}" for q in t.query.splitlines()]
    return "\n".join(lines) + "\n"
