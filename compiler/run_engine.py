"""Which engine ``siemc run`` uses for each analytic: DuckDB or the reference evaluator.

DuckDB runs an analytic when it compiles to DuckDB SQL with no approximation (the differential
tests hold that SQL to the evaluator's alerts) and every input is ECS JSON (the only layout
DuckDB reads itself; Sysmon, Zeek, auditd and VMConnection go through the evaluator's readers).
``auto`` falls back to the evaluator for everything else, and also when DuckDB cannot read an
input the way the evaluator does (a record whose time is not in a layout it parses the same
way): the evaluator then reads it, or names the record it cannot read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from backends.base import CompileError
from backends.duckdb import DuckdbBackend
from compiler import ir
from compiler.evaluator.engine import alert_sort_key
from compiler.runner import alert_json

ENGINES = ("auto", "duckdb", "evaluator")


@dataclass(frozen=True)
class Choice:
    analytic: ir.Analytic
    engine: str  # "duckdb" or "evaluator"
    why: str  # why not DuckDB, when the evaluator runs it


class EngineRefused(ValueError):
    """``--engine duckdb`` asked for an analytic or input DuckDB cannot run exactly."""


def duckdb_format(path: Path, fmt: str) -> str | None:
    """The DuckDB reader for an input, or None when only the evaluator reads it. ECS files
    are JSON Lines unless their first non-blank byte opens an array."""
    if fmt != "ecs":
        return None
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "ecs-json" if head.startswith(b"[") else "ecs-jsonl"


def choose(
    analytics: Sequence[ir.Analytic],
    inputs: Sequence[tuple[Path, str]],
    engine: str,
    presorted: bool = False,
) -> list[Choice]:
    """The engine of each analytic. ``duckdb`` raises :class:`EngineRefused` for one it cannot
    run exactly; ``evaluator`` runs everything on the evaluator. ``presorted`` (fail on input
    out of time order instead of sorting it) is the evaluator's streaming mode."""
    if engine == "evaluator":
        return [Choice(a, "evaluator", "--engine evaluator") for a in analytics]
    others = sorted({f for p, f in inputs if duckdb_format(p, f) is None})
    out = []
    for a in analytics:
        why = ""
        if presorted:
            why = "--presorted is the evaluator's streaming mode"
        elif others:
            why = f"inputs in format {', '.join(others)} (DuckDB reads ECS JSON only)"
        else:
            try:
                DuckdbBackend().compile(a)
            except CompileError as exc:
                first = exc.diagnostics[0].message if exc.diagnostics else "not exact"
                why = f"does not compile exactly to DuckDB: {first}"
        if not why and engine == "auto":
            why = _slower_on_duckdb(a)
        if why and engine == "duckdb":
            raise EngineRefused(f"{a.id}: --engine duckdb: {why}; use --engine auto or evaluator")
        out.append(Choice(a, "evaluator" if why else "duckdb", why))
    return out


def _slower_on_duckdb(a: ir.Analytic) -> str:
    """Why ``auto`` keeps an analytic DuckDB runs exactly on the evaluator, or "". DuckDB's
    consuming sliding window pairs every event with every event of its window (quadratic rows,
    backends/duckdb/sliding.py); bench/run.py measures it slower than the evaluator and
    gigabytes larger, so ``auto`` leaves it to the evaluator and ``--engine duckdb`` still
    runs it."""
    d = a.detection
    if isinstance(d, ir.Aggregate) and d.window.kind == "sliding":
        return "a sliding window runs faster on the evaluator (bench/run.py)"
    return ""


def duckdb_lines(
    analytic: ir.Analytic, inputs: Sequence[tuple[Path, str]], now: int | None
) -> list[str]:
    """The alert lines of ``analytic`` run on DuckDB, in the evaluator's order (ValueError when
    DuckDB cannot read an input as the evaluator does)."""
    from compiler.engines import run_duckdb

    files = []
    for p, f in inputs:
        kind = duckdb_format(p, f)
        assert kind is not None  # choose() sent only ECS inputs here
        files.append((p, kind))
    alerts = run_duckdb.run_analytic(analytic, files, now)
    return [alert_json(a) for a in sorted(alerts, key=alert_sort_key)]


def lines(
    choices: Sequence[Choice],
    inputs: Sequence[tuple[Path, str]],
    now: int | None,
    *,
    strict: bool,
    evaluate: Callable[[list[ir.Analytic]], Iterator[str]],
) -> tuple[Iterator[str], list[Choice]]:
    """Every alert line, analytics in the order given, and the engine that ran each (a DuckDB
    choice that could not read the inputs becomes an evaluator one unless ``strict``)."""
    ran: list[Choice] = []
    parts: list[list[str] | None] = []
    for c in choices:
        if c.engine == "duckdb":
            try:
                parts.append(duckdb_lines(c.analytic, inputs, now))
                ran.append(c)
                continue
            except ValueError as exc:
                if strict:
                    raise EngineRefused(f"{c.analytic.id}: --engine duckdb: {exc}") from None
                c = Choice(c.analytic, "evaluator", f"DuckDB could not read the inputs: {exc}")
        parts.append(None)
        ran.append(c)
    rest = [c.analytic for c in ran if c.engine == "evaluator"]
    # the evaluator reads the inputs once for all its analytics; its lines come grouped per
    # analytic, in the order given
    evaluated = evaluate(rest) if rest else iter(())

    def chain() -> Iterator[str]:
        ahead: str | None = next(evaluated, None)
        for c, part in zip(ran, parts, strict=True):
            if part is not None:
                yield from part
                continue
            while ahead is not None and _analytic_of(ahead) == c.analytic.id:
                yield ahead
                ahead = next(evaluated, None)

    return chain(), ran


def _analytic_of(line: str) -> str:
    return str(json.loads(line)["analytic"])
