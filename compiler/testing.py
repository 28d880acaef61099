"""Running an analytic's fixtures through the reference evaluator and comparing alerts."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from compiler import ir
from compiler.evaluator import Alert, Event, evaluate, make_events, merge_events
from compiler.evaluator.values import to_number
from compiler.inputs import read_events
from compiler.lower import Loaded
from compiler.lower_fixtures import (
    UnknownDataRoot,
    absent_root_message,
    input_path,
    split_data_root,
)
from compiler.safe_files import FIXTURE_MAX_BYTES, RefusedPath
from compiler.timeutil import format_timestamp

Status = Literal["passed", "failed", "skipped", "error"]


@dataclass
class FixtureResult:
    analytic: str
    fixture: ir.Fixture
    status: Status
    message: str = ""
    detail: str = ""
    actual: list[Alert] = field(default_factory=list)
    seconds: float = 0.0


class MissingData(Exception):
    """A fixture's data folder is absent (skipped locally, a failure under CI=true)."""


class FixtureInputError(Exception):
    pass


def resolve_input(file: str, analytic_path: str, root: Path | None = None) -> Path:
    """The fixture input's path, checked again at run time (confined to its root, a regular
    file within the size limit): loading checked it, but the run may come much later.
    ``root``: the analytics root (default: the analytic's folder)."""
    folder = Path(analytic_path).parent
    try:
        p = input_path(file, folder, root if root is not None else folder)
    except UnknownDataRoot as exc:  # loading reports it; only a caller that skipped it gets here
        raise FixtureInputError(f"unknown data root ${exc.args[0]}") from None
    except RefusedPath as exc:
        raise FixtureInputError(f"fixture file refused: {exc.message}") from None
    except OSError as exc:  # FileNotFoundError names the path; others give their reason
        reason = str(exc) if exc.strerror is None else f"{file}: {exc.strerror}"
        raise FixtureInputError(reason) from None
    if p is None:
        name = split_data_root(file)
        assert name is not None
        raise MissingData(absent_root_message(name[0]))
    return p


@dataclass(frozen=True)
class FixtureEvents:
    """A fixture's events, merged in time order, and the ids of its history events."""

    events: list[Event]
    history: frozenset[str]


def fixture_events(loaded: Loaded, fx: ir.Fixture) -> list[Event]:
    """Every event of the fixture, history included (see :func:`load_fixture`)."""
    return load_fixture(loaded, fx).events


def load_fixture(loaded: Loaded, fx: ir.Fixture) -> FixtureEvents:
    """The fixture's input files, its inline history events, then its inline events, merged in
    time order (ties keep this order), with the ids of the history events (inputs marked
    ``history: true`` and inline ``history``). An id both history and not is an error: an
    alert's evidence names events by id, so history could not be told apart."""
    groups: list[list[Event]] = []
    history: set[str] = set()
    live: set[str] = set()
    for inp in fx.inputs:
        at = f"{inp.span.path}:{inp.span.line}:{inp.span.col}"
        try:
            path = resolve_input(inp.file, loaded.analytic.path, loaded.root)
        except MissingData as exc:
            raise MissingData(f"{at}: {exc}") from None
        except FixtureInputError as exc:
            raise FixtureInputError(f"{at}: {exc}") from None
        try:
            events = read_events(path, inp.format, FIXTURE_MAX_BYTES)
            groups.append(make_events(events, path.name))
        except ValueError as exc:
            raise FixtureInputError(f"{at}: {exc}") from None
        except RefusedPath as exc:
            raise FixtureInputError(f"{at}: {exc.code}: {exc.message}") from None
        (history if inp.history else live).update(e.id for e in groups[-1])
    for docs, source in ((fx.history, "history"), (fx.events, "inline")):
        if docs:
            try:
                groups.append(make_events(docs, source))
            except ValueError as exc:
                raise FixtureInputError(f"inline {source} events: {exc}") from None
            (history if source == "history" else live).update(e.id for e in groups[-1])
    both = sorted(history & live)
    if both:
        raise FixtureInputError(
            f"{fx.span.path}:{fx.span.line}:{fx.span.col}: event id {both[0]!r} names both a "
            "history event and another event: alerts name their evidence by id, so give "
            "history events ids of their own"
        )
    return FixtureEvents(merge_events(groups), frozenset(history))


def reported(alerts: list[Alert], history: frozenset[str]) -> list[Alert]:
    """The alerts a fixture reports: those with no history event among their evidence."""
    if not history:
        return alerts
    return [al for al in alerts if history.isdisjoint(al.evidence)]


def _norm(v: Any) -> Any:
    n = to_number(v)
    return n if n is not None and not isinstance(v, bool) else v


def _cmp(op: str, actual: Any, want: float | str) -> bool:
    a = to_number(actual)
    if isinstance(want, str) or a is None:
        return op == "==" and str(actual) == str(want)
    return {
        "==": abs(a - want) <= 1e-9 * max(1.0, abs(want)),
        "gte": a >= want,
        "gt": a > want,
        "lte": a <= want,
        "lt": a < want,
    }[op]


def alert_matches(exp: ir.ExpectedAlert, al: Alert) -> bool:
    keys = dict(al.key)
    for k, v in exp.key:
        if k not in keys:
            return False
        if _norm(keys[k]) != _norm(v):
            return False
    if exp.evidence is not None and tuple(exp.evidence) != tuple(al.evidence):
        return False
    measures = dict(al.measures)
    return all(
        name in measures and _cmp(op, measures[name], want) for name, op, want in exp.measures
    )


def match_alerts(
    expected: tuple[ir.ExpectedAlert, ...], actual: list[Alert]
) -> tuple[list[ir.ExpectedAlert], list[Alert]]:
    """Pair expectations with alerts (bipartite, small n); return the unpaired of each side."""
    pairs: dict[int, int] = {}  # actual index -> expected index

    def augment(ei: int, seen: set[int]) -> bool:
        for ai, al in enumerate(actual):
            if ai in seen or not alert_matches(expected[ei], al):
                continue
            seen.add(ai)
            if ai not in pairs or augment(pairs[ai], seen):
                pairs[ai] = ei
                return True
        return False

    missing = [expected[ei] for ei in range(len(expected)) if not augment(ei, set())]
    extra = [al for ai, al in enumerate(actual) if ai not in pairs]
    return missing, extra


def describe_alert(al: Alert) -> str:
    key = ", ".join(f"{k}={json.dumps(v)}" for k, v in al.key) or "(no key)"
    ms = ", ".join(f"{k}={_fmt(v)}" for k, v in al.measures)
    window = f"{format_timestamp(al.start)} .. {format_timestamp(al.end)}"
    ev = ", ".join(al.evidence[:6]) + (
        f", ... ({len(al.evidence)} events)" if len(al.evidence) > 6 else ""
    )
    return (
        f"key {{{key}}} window {window}"
        + (f" measures {{{ms}}}" if ms else "")
        + f" evidence [{ev}]"
    )


def describe_expected(ex: ir.ExpectedAlert) -> str:
    key = ", ".join(f"{k}={json.dumps(v)}" for k, v in ex.key) or "(any key)"
    out = f"key {{{key}}}"
    if ex.measures:
        out += " measures {" + ", ".join(f"{n} {op} {_fmt(v)}" for n, op, v in ex.measures) + "}"
    if ex.evidence is not None:
        out += " evidence [" + ", ".join(ex.evidence) + "]"
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return json.dumps(v) if isinstance(v, str) else str(v)


def run_fixture(loaded: Loaded, fx: ir.Fixture) -> FixtureResult:
    aid = loaded.analytic.id
    t0 = time.perf_counter()
    try:
        loaded_events = load_fixture(loaded, fx)
    except MissingData as exc:
        if os.environ.get("CI") == "true":
            return FixtureResult(aid, fx, "error", f"real data missing under CI: {exc}")
        return FixtureResult(aid, fx, "skipped", str(exc))
    except FixtureInputError as exc:
        return FixtureResult(aid, fx, "error", str(exc))
    try:
        every = evaluate(loaded.analytic, loaded_events.events, fx.now_ms)
    except ValueError as exc:
        return FixtureResult(aid, fx, "error", f"evaluation failed: {exc}")
    actual = reported(every, loaded_events.history)
    missing, extra = match_alerts(fx.expect, actual)
    secs = time.perf_counter() - t0
    if not missing and not extra:
        n, h = len(actual), len(every) - len(actual)
        msg = f"{n} alert{'s' * (n != 1)}" + (f"; {h} on history, not reported" if h else "")
        return FixtureResult(aid, fx, "passed", msg, "", actual, secs)
    lines = [f"expected {len(fx.expect)} alert(s), got {len(actual)}"]
    lines += [f"  - missing:    {describe_expected(ex)}" for ex in missing]
    lines += [f"  + unexpected: {describe_alert(al)}" for al in extra]
    if missing and actual:
        lines.append("  actual alerts:")
        lines += [f"      {describe_alert(al)}" for al in actual]
    if len(fx.expect) == len(actual):
        msg = f"alerts differ: {len(missing)} expected not produced, {len(extra)} unexpected"
    else:
        msg = f"expected {len(fx.expect)} alert(s), got {len(actual)}"
    return FixtureResult(aid, fx, "failed", msg, "\n".join(lines), actual, secs)


def run_all(loaded: Loaded) -> Iterator[FixtureResult]:
    for fx in loaded.fixtures:
        yield run_fixture(loaded, fx)
