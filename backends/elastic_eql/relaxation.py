"""Baselines EQL cannot express, dropped as declared supersets with the Elastic answer named.

An EQL query sees the events of one search and has no history: first-seen, rarity and deviation
cannot be written in it. A baseline only ever removes candidates (docs/semantics.md,
"Baselines"), so the query without it fires on every alert of the analytic, with the same keys
and times, and maybe more (``backends.relax.without_baselines``). Each dropped baseline is a
``superset`` approximation whose note says what no longer filters the alerts and what an Elastic
deployment adds to filter them again.
"""

from __future__ import annotations

from backends.base import Context
from backends.relax import Dropped, without_baselines
from compiler import ir
from compiler.lower import format_duration

# new_terms rules take at most three fields (Elastic Security, "Create a new terms rule").
NEW_TERMS_MAX_FIELDS = 3
_LATER = "siemc does not emit it yet (the export issue)"


def relaxed(analytic: ir.Analytic) -> tuple[ir.Analytic, tuple[tuple[ir.Baseline, Dropped], ...]]:
    """The analytic without its baselines (and the streams only they read), and each dropped
    baseline with what dropping it means."""
    out, dropped = without_baselines(analytic)
    return out, tuple(zip(analytic.baselines, dropped, strict=True))


def declare(analytic: ir.Analytic, ctx: Context) -> None:
    """Record every baseline of ``analytic`` as a dropped construct (superset)."""
    for baseline, d in relaxed(analytic)[1]:
        answer = elastic_answer(analytic, baseline)
        ctx.approximate(
            d.construct,
            f"dropped, EQL has no history (a superset: {d.what}); {answer}",
            d.span,
            direction="superset",
        )


def elastic_answer(analytic: ir.Analytic, b: ir.Baseline) -> str:
    """How an Elastic deployment decides the baseline this query cannot, and whether
    ``siemc export`` emits it (compiler/export/elastic.py: a chain for one first-seen baseline
    on at most three fields over a correlation or match)."""
    lookback = format_duration(b.lookback_ms)
    if isinstance(b, ir.FirstSeen):
        fields = [_history_name(analytic, c) for c in b.current]
        if len(fields) > NEW_TERMS_MAX_FIELDS:
            return (
                f"the Elastic answer is a building-block chain: this query as a building-block "
                f"rule and first-seen decided over its alerts by an ES|QL rule "
                f"(a new_terms rule takes at most {NEW_TERMS_MAX_FIELDS} fields, this baseline "
                f"has {len(fields)}); {_LATER}"
            )
        where = (
            "its query this query's filter written in KQL"
            if isinstance(analytic.detection, ir.Match) and analytic.detection.stream == b.stream
            else "over the alerts of this query deployed as a building-block rule (a "
            "building-block chain)"
        )
        emitted = (
            "`siemc export -t elastic --allow-approximate` emits it as a building-block chain "
            "(the new_terms history is then the building block's earlier alerts)"
            if len(analytic.baselines) == 1
            else _LATER
        )
        return (
            f"the Elastic answer is a new_terms rule on {', '.join(fields)} with a {lookback} "
            f"history window, {where}; {emitted}"
        )
    if isinstance(b, ir.Rarity):
        return (
            "the Elastic answer is a building-block chain: this query as a building-block rule "
            f"and an ES|QL rule counting ({', '.join(b.keys)}) over the {lookback} lookback; "
            f"{_LATER}"
        )
    return (
        "the Elastic answer is an ES|QL rule (compile to esql) or a machine learning anomaly "
        "job on the measure"
    )


def _history_name(analytic: ir.Analytic, current: str) -> str:
    """``start.process.name`` is the field ``process.name`` of the alert's first event."""
    alias, _, rest = current.partition(".")
    return rest if alias in analytic.step_aliases() and rest else current
