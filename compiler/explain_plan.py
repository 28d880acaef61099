"""The target-independent plan of an analytic, for ``siemc explain``: which streams read which
sources, the joins and lookups, the detection with its windows and keys, the baselines, and the
schedule a SIEM runs it on (compiler.export.schedule, the one every export uses)."""

from __future__ import annotations

from compiler import ir
from compiler.export.schedule import ScheduleError, derive, fmt_duration


def _source(s: ir.Stream) -> str:
    if isinstance(s.source, str):
        return f"stream '{s.source}'"
    parts = [f"{k}: {v}" for k, v in vars_of(s.source) if v is not None]
    return "logsource {" + ", ".join(parts) + "}"


def vars_of(ls: ir.LogSource) -> list[tuple[str, str | None]]:
    return [("category", ls.category), ("product", ls.product), ("service", ls.service)]


def _predicate_fields(p: ir.Predicate) -> set[str]:
    if isinstance(p, ir.And | ir.Or):
        return {f for x in p.items for f in _predicate_fields(x)}
    if isinstance(p, ir.Not):
        return _predicate_fields(p.item)
    if isinstance(p, ir.InLookup):
        return {f for _, f in p.match}
    name = getattr(p, "field", None)
    return {name} if isinstance(name, str) else set()


def _stream_lines(s: ir.Stream) -> list[str]:
    out = [f"stream {s.name}: reads {_source(s)}"]
    fields = sorted(_predicate_fields(s.filter))
    if fields:
        out.append(f"  filters on {', '.join(fields)}")
    for en in s.enrich:
        adds = ", ".join(new for _, new in en.add)
        on = ", ".join(f for _, f in en.match)
        out.append(f"  enriches from lookup '{en.lookup}' on {on} (adds {adds})")
    for name, _ in s.derive:
        out.append(f"  derives {name}")
    if s.join is not None:
        j = s.join
        out.append(
            f"  joins stream '{j.stream}' on {', '.join(j.on)} within {fmt_duration(j.within_ms)} "
            f"({j.direction}), adding {', '.join(j.add) or 'nothing'}"
        )
    return out


def _step(st: ir.Step) -> str:
    keys = f" by {', '.join(st.keys)}" if st.keys else ""
    return f"{st.alias} <- {st.stream}{keys}"


def _detection_lines(d: ir.Detection) -> list[str]:
    if isinstance(d, ir.Match):
        return [f"detect: every event of stream '{d.stream}' alerts"]
    if isinstance(d, ir.Sequence):
        out = [f"detect: ordered sequence within {fmt_duration(d.maxspan_ms)}"]
        out += [f"  step {_step(st)}" for st in d.steps]
        if d.until is not None:
            out.append(f"  cancelled by {_step(d.until)}")
        return out
    if isinstance(d, ir.Cooccurrence):
        out = [f"detect: unordered co-occurrence within {fmt_duration(d.window_ms)}"]
        return out + [f"  member {_step(st)}" for st in d.members]
    if isinstance(d, ir.Absence):
        return [
            f"detect: absence: {_step(d.first)}",
            f"  not followed within {fmt_duration(d.within_ms)} by {_step(d.missing)}",
        ]
    w = d.window
    keys = ", ".join(d.keys) or "(no key)"
    out = [
        f"detect: aggregate stream '{d.stream}' over {w.kind} {fmt_duration(w.size_ms)} windows "
        f"by {keys}"
    ]
    for m in d.measures:
        of = f" of {m.field}" if m.field else ""
        only = " (of the events its `where` holds for)" if m.where is not None else ""
        out.append(f"  measure {m.name}: {m.kind}{of}{only}")
    out += [f"  computes {name}" for name, _ in d.compute]
    if d.having is not None:
        out.append("  alerts where `having` holds")
    return out


def _baseline_lines(b: ir.Baseline) -> str:
    back = fmt_duration(b.lookback_ms)
    if isinstance(b, ir.FirstSeen):
        return f"baseline: first seen ({', '.join(b.current)}) against {back} of history"
    if isinstance(b, ir.Rarity):
        return f"baseline: rare ({', '.join(b.current)}: at most {b.max}) over {back}"
    if b.ratio is not None:
        r = f"{b.ratio:g}"
        form = f"at most mean / {r}" if b.direction == "below" else f"at least {r} x mean"
    elif b.k is not None:
        form = f"{'under mean - ' if b.direction == 'below' else 'over mean + '}{b.k:g} stdev"
    else:
        assert b.percentile is not None
        form = f"{'under' if b.direction == 'below' else 'over'} p{b.percentile:g}"
    within = ", the window included" if b.include_current else ""
    return (
        f"baseline: deviation of {b.measure}, {form} of {back}{within} "
        f"(at least {b.min_history} windows)"
    )


def schedule_lines(a: ir.Analytic) -> list[str]:
    try:
        s = derive(a)
    except ScheduleError as exc:  # no fixed clock fits: say so rather than invent one
        return [f"schedule: none derivable ({exc})"]
    line = (
        f"schedule: every {fmt_duration(s.frequency_ms)}, reading the last "
        f"{fmt_duration(s.lookback_ms)}"
    )
    if s.delay_ms:
        line += f" (waiting {fmt_duration(s.delay_ms)} for late join partners)"
    return [line, f"  because: {s.reason}"]


def plan_lines(a: ir.Analytic) -> list[str]:
    out: list[str] = []
    for s in a.streams:
        out += _stream_lines(s)
    out += _detection_lines(a.detection)
    out += [_baseline_lines(b) for b in a.baselines]
    return out + schedule_lines(a)
