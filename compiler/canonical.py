"""The canonical alert form: what the evaluator and every target engine are compared on.

An engine reports alerts in its own shape (EQL sequences, SQL rows, KQL tables); an adapter turns
them into :class:`CanonicalAlert`, and :func:`diff` compares two lists. Parts an engine cannot
report are ``None`` and are not compared (e.g. a query that does not output its window).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from compiler.evaluator.keys import normalise
from compiler.evaluator.model import Alert

KeyValue = str | int | float | bool | None


@dataclass(frozen=True)
class CanonicalAlert:
    analytic: str
    # group/correlation key: field name -> normalised value (keys.normalise: exact strings,
    # numbers numeric), sorted by field name so engines may return columns in any order
    key: tuple[tuple[str, Any], ...]
    start: int | None  # window start (aggregates) or first evidence time, ms UTC
    end: int | None  # window end (aggregates) or last evidence time, ms UTC
    measures: tuple[tuple[str, Any], ...] = ()

    def describe(self) -> str:
        key = ", ".join(f"{k}={v!r}" for k, v in self.key) or "(no key)"
        ms = ", ".join(f"{k}={v!r}" for k, v in self.measures)
        return f"{self.analytic} {{{key}}} [{self.start}..{self.end}]" + (
            f" {{{ms}}}" if ms else ""
        )


def make(
    analytic: str,
    key: Iterable[tuple[str, Any]],
    start: int | None,
    end: int | None,
    measures: Iterable[tuple[str, Any]] = (),
) -> CanonicalAlert:
    k = tuple(sorted((name, normalise(v) if v is not None else None) for name, v in key))
    m = tuple(sorted((name, _num(v)) for name, v in measures))
    return CanonicalAlert(analytic, k, start, end, m)


def _num(v: Any) -> Any:
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | float):
        return float(v)
    return v


def from_evaluator(alert: Alert) -> CanonicalAlert:
    return make(alert.analytic, alert.key, alert.start, alert.end, alert.measures)


def _close(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= rel * max(1.0, abs(a), abs(b))
    return bool(a == b)


def matches(
    want: CanonicalAlert, got: CanonicalAlert, *, compare_times: bool = True, rel: float = 1e-9
) -> bool:
    if want.analytic != got.analytic or want.key != got.key:
        return False
    if compare_times:
        for a, b in ((want.start, got.start), (want.end, got.end)):
            if a is not None and b is not None and a != b:
                return False
    got_m = dict(got.measures)
    return all(name not in got_m or _close(v, got_m[name], rel) for name, v in want.measures)


def uncovered(
    expected: Sequence[CanonicalAlert], actual: Sequence[CanonicalAlert]
) -> list[CanonicalAlert]:
    """The expected alerts no actual alert *covers*: same analytic, a key made of some of the
    expected key's fields with the same values (a coarser group), and the same times where both
    give them. A superset that cannot compute a key the analytic groups by (a derived field)
    groups by the keys it has; each of its alerts then stands for every finer evaluator alert
    in it, and its measures, taken over the coarser group, are not compared. Key values that
    differ only by case also cover each other: a target that folds the case of group-by values
    (pySigma's sqlite backend lower-cases them) merges groups the same way."""
    out = []
    for want in expected:
        wk = dict(want.key)
        for got in actual:
            if got.analytic != want.analytic:
                continue
            if any(name not in wk or not _same_folded(wk[name], v) for name, v in got.key):
                continue
            if all(
                a is None or b is None or a == b
                for a, b in ((want.start, got.start), (want.end, got.end))
            ):
                break
        else:
            out.append(want)
    return out


def _same_folded(a: object, b: object) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


@dataclass
class Diff:
    missing: list[CanonicalAlert]  # in expected (evaluator), not produced by the engine
    extra: list[CanonicalAlert]  # produced by the engine, not by the evaluator

    @property
    def equal(self) -> bool:
        return not self.missing and not self.extra

    def render(self) -> str:
        lines = [f"  - missing (evaluator only): {a.describe()}" for a in self.missing]
        lines += [f"  + extra (engine only):     {a.describe()}" for a in self.extra]
        return "\n".join(lines)


def diff(
    expected: Sequence[CanonicalAlert],
    actual: Sequence[CanonicalAlert],
    *,
    compare_times: bool = True,
    rel: float = 1e-9,
) -> Diff:
    """Pair alerts one to one (greedy in sorted order is enough: alerts that match are equal on
    analytic and key, and times, when both sides give them, must be equal too)."""
    left = list(actual)
    missing: list[CanonicalAlert] = []
    for want in expected:
        for i, got in enumerate(left):
            if matches(want, got, compare_times=compare_times, rel=rel):
                del left[i]
                break
        else:
            missing.append(want)
    return Diff(missing, left)
