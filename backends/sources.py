"""Which fields each logsource stream reads from its data source, and the check that the source
carries them (E211).

A profile declares, per entry of ``sources``, the fields that source ``lacks`` (docs/targets.md,
"Data sources and the fields they carry"). A query over such a source is valid but can never
match on real data (Splunk's Sysmon EID 3 and Security 5156 events have no byte counts, so a
byte ratio over them is always null), so the compile stops at the stream and names the sources
and profiles that do carry the fields.

The fields a stream reads follow the data flow of docs/semantics.md (logsource -> join ->
enrich -> derive -> filter): what the detection, the baselines and downstream ``from:`` streams
read from a stream, plus what its own filter, derives, enrichments and join keys read, minus what
it computes itself (derive, enrich ``add``); a join's ``add`` fields are read from the partner.
"""

from __future__ import annotations

from backends import ENGINE_TARGETS
from backends.profiles import FieldProfile, describe, load_profile, names
from compiler import ir
from compiler.diagnostics import Diagnostic
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES

Reads = dict[str, list[ir.Span]]  # field -> where it is read


def _pred_fields(p: ir.Predicate) -> list[tuple[str, ir.Span]]:
    if isinstance(p, ir.And | ir.Or):
        return [x for item in p.items for x in _pred_fields(item)]
    if isinstance(p, ir.Not):
        return _pred_fields(p.item)
    if isinstance(p, ir.InLookup):
        return [(f, p.span) for _, f in p.match]
    return [(p.field, p.span)]


def _expr_fields(e: ir.Expr) -> list[tuple[str, ir.Span]]:
    if isinstance(e, ir.FieldRef):
        return [(e.name, e.span)]
    if isinstance(e, ir.BinOp):
        return _expr_fields(e.left) + _expr_fields(e.right)
    if isinstance(e, ir.UnaryOp):
        return _expr_fields(e.operand)
    if isinstance(e, ir.Call):
        return [x for a in e.args for x in _expr_fields(a)]
    return []


def source_reads(a: ir.Analytic) -> dict[str, Reads]:
    """For each logsource stream, the fields it reads from its source."""
    need: dict[str, Reads] = {s.name: {} for s in a.streams}

    def ask(stream: str, field: str, span: ir.Span) -> None:
        need[stream].setdefault(field, []).append(span)

    d = a.detection
    if isinstance(d, ir.Aggregate):
        for k in d.keys:
            ask(d.stream, k, d.span)
        for m in d.measures:
            if m.field is not None:
                ask(d.stream, m.field, m.span)
            if m.where is not None:
                for f, span in _pred_fields(m.where):
                    ask(d.stream, f, span)
    steps: list[ir.Step] = []
    if isinstance(d, ir.Sequence):
        steps = [*d.steps, *([d.until] if d.until else [])]
    elif isinstance(d, ir.Cooccurrence):
        steps = list(d.members)
    elif isinstance(d, ir.Absence):
        steps = [d.first, d.missing]
    for st in steps:
        for k in st.keys:
            ask(st.stream, k, st.span)
    aliases = {st.alias: st.stream for st in steps}
    for b in a.baselines:
        if isinstance(b, ir.FirstSeen | ir.Rarity):
            for k in b.keys:
                ask(b.stream, k, b.span)
            if isinstance(b, ir.Rarity) and b.across != "@days":
                ask(b.stream, b.across, b.span)
            for c in b.current:
                alias, _, rest = c.partition(".")
                if isinstance(d, ir.Match):
                    ask(d.stream, c, b.span)
                elif alias in aliases and rest:
                    ask(aliases[alias], rest, b.span)

    out: dict[str, Reads] = {}
    for s in reversed(a.streams):  # a stream follows the streams it reads
        reads: Reads = {f: list(sp) for f, sp in need[s.name].items()}

        def add(pairs: list[tuple[str, ir.Span]], into: Reads) -> None:
            for f, sp in pairs:
                into.setdefault(f, []).append(sp)

        add(_pred_fields(s.filter), reads)
        for name, e in reversed(s.derive):
            reads.pop(name, None)
            add(_expr_fields(e), reads)
        for en in reversed(s.enrich):
            for _, f in en.add:
                reads.pop(f, None)
            add([(f, en.span) for _, f in en.match], reads)
        if s.join is not None:
            j = s.join
            for f in j.add:
                reads.pop(f, None)
            for f in (*j.on, *j.add):
                ask(j.stream, f, j.span)
            add([(f, j.span) for f in j.on], reads)
        if isinstance(s.source, str):
            for f, sp in reads.items():
                need[s.source].setdefault(f, []).extend(sp)
        else:
            out[s.name] = reads
    return out


def _first(spans: list[ir.Span]) -> ir.Span:
    real = [sp for sp in spans if sp.line > 0] or spans
    return min(real, key=lambda sp: (sp.path, sp.line, sp.col))


def _products(prof: FieldProfile) -> list[tuple[str | None, str | None]]:
    """(product, service) pairs the profile has entries for, and no product at all."""
    out: list[tuple[str | None, str | None]] = [(None, None)]
    for key in prof.sources:
        head, _, tail = key.partition("/")
        if head in LOGSOURCE_CATEGORIES or "=" in key:
            continue
        pair = (head, tail or None)
        if pair not in out:
            out.append(pair)
    return out


def carriers(
    ls: ir.LogSource, fields: list[str], here: FieldProfile, also: list[str] | None = None
) -> list[str]:
    """Logsources of this profile (same category) and other profiles whose sources carry every
    one of ``fields``; each says which of ``also`` (the stream's other reads) it lacks."""
    out: list[str] = []

    def without(prof: FieldProfile, other: ir.LogSource) -> str:
        rest = [f for f in prof.lacking(other, also or []) if f not in fields]
        return f" (without {', '.join(rest)})" if rest else ""

    general: set[str] = set()
    for product, service in _products(here):
        other = ir.LogSource(ls.category, product, service)
        if product in general or other == ls:
            continue
        if here.has_source(other) and not here.lacking(other, fields):
            out.append(f"logsource {describe(other)}{without(here, other)}")
            if product is not None and service is None:
                general.add(product)  # its services carry them too
    for name in names():
        if name == here.name:
            continue
        prof = load_profile(name)
        if prof.targets and set(prof.targets) <= set(ENGINE_TARGETS):
            continue  # a local engine's profile is no data source a SIEM user can switch to
        if prof.has_source(ls) and not prof.lacking(ls, fields):
            targets = f" ({', '.join(prof.targets)})" if prof.targets else ""
            out.append(f"the {name} profile{targets}{without(prof, ls)}")
    return out


def check_sources(analytic: ir.Analytic, profile: FieldProfile, target: str) -> list[Diagnostic]:
    """E211 for every logsource stream that reads a field its source cannot carry."""
    diags: list[Diagnostic] = []
    reads = source_reads(analytic)
    for s in analytic.streams:
        ls = s.source
        if not isinstance(ls, ir.LogSource) or not profile.has_source(ls):
            continue  # a logsource without a source is the backend's own E211
        wanted = sorted(reads[s.name], key=lambda f: _sort_key(_first(reads[s.name][f])))
        lacking = profile.lacking(ls, wanted)
        by_reason: dict[tuple[str, str], list[str]] = {}
        for f in wanted:
            if f in lacking:
                by_reason.setdefault(lacking[f], []).append(f)
        for (key, why), fields in by_reason.items():
            span = _first([sp for f in fields for sp in reads[s.name][f]])
            if span.line == 0:
                span = s.span
            alt = carriers(ls, fields, profile, wanted)
            help = (
                "sources that carry "
                + ("it" if len(fields) == 1 else "them")
                + ": "
                + "; ".join(alt)
                if alt
                else "no profile has a source that carries "
                + ("it" if len(fields) == 1 else "them")
                + f" for logsource {describe(ls)}: add "
                + ("it" if len(fields) == 1 else "them")
                + " from a stream whose source does, with a join (`join: {stream, on, add}`)"
            )
            diags.append(
                Diagnostic(
                    "E211",
                    f"stream '{s.name}' reads {', '.join(fields)}, which its source cannot "
                    f"carry in the {profile.name} profile ({target}): logsource "
                    f"'{key}': {why}",
                    span.path,
                    span.line,
                    span.col,
                    1,
                    help,
                    "error",
                )
            )
    return diags


def _sort_key(sp: ir.Span) -> tuple[str, int, int]:
    return (sp.path, sp.line, sp.col)
