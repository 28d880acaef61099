"""What every vendor package shares: compiling pairs, stable ids, skip records, field lists."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field

from backends.base import Artifact
from compiler import ir
from compiler.build import PairResult, by_file_name, compile_pair
from compiler.export import schedule as sch
from compiler.lower import Loaded

# uuid5 namespace of siemc exports: ids depend only on the analytic id and the artifact's role,
# so re-exporting after an edit updates the same SIEM rule instead of creating a new one.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/siemc/analytics")


def stable_uuid(analytic_id: str, vendor: str, role: str = "rule") -> str:
    return str(uuid.uuid5(NAMESPACE, f"{analytic_id}/{vendor}/{role}"))


@dataclass(frozen=True)
class Skip:
    analytic: str
    reason: str


@dataclass
class Package:
    """One vendor's output: relative path -> file text, and what was left out and why."""

    vendor: str
    files: dict[str, str] = field(default_factory=dict)
    exported: list[str] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, analytic: str, reason: str) -> None:
        self.skipped.append(Skip(analytic, reason))


@dataclass(frozen=True)
class Request:
    catalog: tuple[Loaded, ...]  # sorted by analytic id
    allow_approximate: bool
    every_ms: int | None
    # backend options, as `siemc compile` takes them (`--stack` for ES|QL)
    options: tuple[tuple[str, str], ...] = ()


def compile_target(
    loaded: Loaded,
    target: str,
    req: Request,
    *,
    analytic: ir.Analytic | None = None,
    profile: str | None = None,
) -> PairResult:
    """Compile with the backend as ``siemc compile`` does (``analytic`` replaces the loaded one,
    for a part of it such as the detection without its baselines)."""
    if analytic is not None:
        loaded = dataclasses.replace(loaded, analytic=analytic)
    return compile_pair(
        loaded,
        target,
        profile=profile,
        allow_approximate=req.allow_approximate,
        options=dict(req.options),
    )


def why_not(res: PairResult) -> str:
    """One line on why a pair did not compile (the first diagnostic's headline)."""
    heads = [d.headline() for d in by_file_name(res.diagnostics)]
    more = f" (+{len(heads) - 1} more)" if len(heads) > 1 else ""
    return (heads[0] if heads else res.status) + more


def authors(m: ir.Metadata) -> list[str]:
    """The rule's authors (``author:``, comma-separated as Sigma rules write them; kept from an
    imported rule), else its owner."""
    names = [x.strip() for x in (m.author or "").split(",") if x.strip()]
    return names or ([m.owner] if m.owner else [])


def credits(m: ir.Metadata) -> list[str]:
    """Author, licence and references as lines, for vendors whose rules have no field for them
    (the Detection Rule License of imported Sigma rules requires keeping author and
    references with the rule)."""
    out = [f"Author: {', '.join(authors(m))}"] if authors(m) else []
    if m.license:
        out.append(f"License: {m.license}")
    if m.references:
        out.append("References: " + ", ".join(m.references))
    return out


def approximations_text(art: Artifact) -> list[str]:
    return [
        f"{a.construct} ({a.direction}): {a.detail} ({a.span.at()})" for a in art.approximations
    ]


def schedule_or_skip(
    pkg: Package, loaded: Loaded, req: Request, min_ms: int = 0
) -> sch.Schedule | None:
    try:
        return sch.derive(loaded.analytic, req.every_ms, min_ms)
    except sch.ScheduleError as exc:
        pkg.skip(loaded.analytic.id, f"schedule: {exc}")
        return None


# ---------------------------------------------------------------------- fields
def computed_fields(analytic: ir.Analytic) -> set[str]:
    """Fields the analytic makes (derive, enrich, join add): not read from the source data."""
    made: set[str] = set()
    for s in analytic.streams:
        made.update(n for n, _ in s.derive)
        for en in s.enrich:
            made.update(n for _, n in en.add)
    return made


def read_fields(analytic: ir.Analytic) -> list[str]:
    """Every event field the analytic reads from the source data, sorted, without the fields it
    computes itself (a derived field that replaces a source field still reads it first)."""
    out: list[str] = []
    for s in analytic.streams:
        if s.join is not None:
            out += list(s.join.on) + list(s.join.add)
        for en in s.enrich:
            out += [f for _, f in en.match]
        for _, e in s.derive:
            out += ir.field_names(e)
        out += ir.predicate_fields(s.filter)
    d = analytic.detection
    if isinstance(d, ir.Aggregate):
        out += list(d.keys) + [m.field for m in d.measures if m.field]
        for m in d.measures:
            if m.where is not None:
                out += ir.predicate_fields(m.where)
    elif isinstance(d, ir.Sequence | ir.Cooccurrence):
        steps = d.steps if isinstance(d, ir.Sequence) else d.members
        out += [k for st in steps for k in st.keys]
    elif isinstance(d, ir.Absence):
        out += list(d.first.keys) + list(d.missing.keys)
    for b in analytic.baselines:
        if isinstance(b, ir.FirstSeen | ir.Rarity):
            out += list(b.keys)
    made = computed_fields(analytic)
    derived_from_self = {n for s in analytic.streams for n, e in s.derive if n in ir.field_names(e)}
    return sorted({f for f in out if f not in made or f in derived_from_self})


def alert_keys(analytic: ir.Analytic) -> tuple[str, ...]:
    """The alert's key fields (first step's names, as the evaluator reports them)."""
    d = analytic.detection
    if isinstance(d, ir.Aggregate):
        return d.keys
    if isinstance(d, ir.Sequence):
        return d.steps[0].keys
    if isinstance(d, ir.Cooccurrence):
        return d.members[0].keys
    if isinstance(d, ir.Absence):
        return d.first.keys
    return ()
