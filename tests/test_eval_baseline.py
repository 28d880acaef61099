"""first_seen / rarity history of the reference evaluator."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import ir
from compiler.evaluator.baseline import DAY_MS, HistoryIndex
from compiler.evaluator.model import Event

D = DAY_MS
FS = ir.FirstSeen("hist", ("host.name", "process.name"), ("host.name", "process.name"), 14 * D)
RA = ir.Rarity("hist", ("dom",), ("dom",), "host.name", 3, 30 * D)
RD = ir.Rarity("hist", ("dom",), ("dom",), "@days", 2, 30 * D)


def E(ts: int, **fields: Any) -> Event:
    return Event(ts, ts, f"e{ts}", {k.replace("__", "."): v for k, v in fields.items()})


def idx(*events: Event) -> HistoryIndex:
    h = HistoryIndex([FS, RA, RD])
    for e in events:
        h.observe(e, "hist")
    return h


def test_first_seen_boundaries() -> None:
    start = 100 * D
    h = idx(E(start - 14 * D, host__name="H1", process__name="a.exe"))
    # exactly at start - lookback: seen
    assert h.first_seen_ok(FS, ("H1", "a.exe"), start) is False
    # one ms later the occurrence has left the lookback
    assert h.first_seen_ok(FS, ("H1", "a.exe"), start + 1) is True
    h = idx(E(start, host__name="H1", process__name="a.exe"))
    # exactly at start: the detection window is not history
    assert h.first_seen_ok(FS, ("H1", "a.exe"), start) is True
    assert h.first_seen_ok(FS, ("H1", "a.exe"), start + 1) is False


def test_first_seen_keys_case_sensitive_numeric_and_tuple_wise() -> None:
    h = idx(
        E(1, host__name="H1", process__name="a.exe"),
        E(2, host__name="H2", process__name="b.exe"),
        E(3, host__name="H3", process__name=443),
        E(4, host__name="H4", process__name=True),
    )
    assert h.first_seen_ok(FS, ("H1", "b.exe"), 10) is True  # each value seen, not the pair
    assert h.first_seen_ok(FS, ("H2", "b.exe"), 10) is False
    assert h.first_seen_ok(FS, ("H2", "B.EXE"), 10) is True  # case-sensitive: another key
    assert h.first_seen_ok(FS, ("h2", "b.exe"), 10) is True
    assert h.first_seen_ok(FS, ("H3", "443"), 10) is False  # numeric strings are numbers
    assert h.first_seen_ok(FS, ("H3", 443.0), 10) is False
    assert h.first_seen_ok(FS, ("H4", True), 10) is False
    assert h.first_seen_ok(FS, ("H4", 1), 10) is True  # booleans are not numbers
    assert h.first_seen_ok(FS, ("H4", "true"), 10) is True
    # a multi-valued candidate was seen when any value was
    assert h.first_seen_ok(FS, (["h9", "H1"], "a.exe"), 10) is False
    # a null candidate key equals nothing
    assert h.first_seen_ok(FS, (None, "a.exe"), 10) is True


def test_history_events_with_missing_keys_record_nothing() -> None:
    h = idx(E(1, host__name="H1"), E(2, host__name=["H1", "H2"], process__name="x"))
    assert h.first_seen_ok(FS, ("H1", None), 10) is True
    assert h.first_seen_ok(FS, ("H2", "x"), 10) is False


def test_rarity_across_field_and_boundaries() -> None:
    start = 100 * D
    lo = start - 30 * D
    h = idx(
        E(lo - 1, dom="Evil.com", host__name="h0"),  # before the lookback
        E(lo, dom="evil.com", host__name="h1"),  # exactly at start - lookback: counts
        E(lo + 5, dom="evil.com", host__name="h1"),  # same host
        E(lo + 6, dom="evil.com", host__name="h2"),
        E(lo + 7, dom="EVIL.com", host__name="h5"),  # another key (case-sensitive)
        E(start, dom="evil.com", host__name="h3"),  # at start: not history
        E(start + 1, dom="evil.com", host__name=None),  # no across value: nothing
    )
    assert h.rarity_ok(RA, ("evil.com",), start) is True  # h1, h2: 2 < 3
    assert h.rarity_ok(RA, ("EVIL.com",), start) is True  # h5
    h.observe(E(start - 1, dom="evil.com", host__name="H1"), "hist")  # another host
    assert h.rarity_ok(RA, ("evil.com",), start) is False  # h1, h2, H1


def test_rarity_across_values_compare_by_the_key_rule() -> None:
    start = 100 * D
    h = idx(
        E(start - 3, dom="x.com", host__name="10"),
        E(start - 2, dom="x.com", host__name=10.0),  # "10" == 10.0: the same across value
        E(start - 1, dom="x.com", host__name=True),  # a boolean is not 1
    )
    assert h.rarity_ok(RA, ("x.com",), start) is True  # 2 < 3
    h.observe(E(start - 1, dom="x.com", host__name=1), "hist")
    assert h.rarity_ok(RA, ("x.com",), start) is False
    assert h.rarity_ok(RA, ("other.com",), start) is True


def test_rarity_across_days() -> None:
    start = 100 * D
    h = idx(E(start - 2 * D, dom="x.com"), E(start - 2 * D + 10, dom="x.com"))
    assert h.rarity_ok(RD, ("x.com",), start) is True  # one UTC day
    h.observe(E(start - 1, dom="x.com"), "hist")
    assert h.rarity_ok(RD, ("x.com",), start) is False  # two days: not < 2


def test_observe_filters_by_stream() -> None:
    h = HistoryIndex([FS])
    h.observe(E(1, host__name="h", process__name="p"), "other")
    assert h.first_seen_ok(FS, ("h", "p"), 10) is True
    h.observe(E(1, host__name="h", process__name="p"))
    assert h.first_seen_ok(FS, ("h", "p"), 10) is False


def test_prune_keeps_answers_and_bounds_memory() -> None:
    fs = ir.FirstSeen("hist", ("k",), ("k",), 10 * D)
    ra = ir.Rarity("hist", ("k",), ("k",), "h", 3, 10 * D)
    h = HistoryIndex([fs, ra])
    horizon = 1 * D
    step = 60_000  # one event a minute, 60 days, few keys
    for i in range(60 * 24 * 60):
        ts = i * step
        h.observe(E(ts, k=f"key{i % 5}", h=f"h{i % 4}"), "hist")
        if i % 1440 == 0:
            h.prune(ts, horizon)
    end = 60 * D
    h.prune(end, horizon)
    # 5 keys + 20 (key, host) pairs, plus the last day of occurrences
    assert h.size() <= 2 * (25 + 25 * 1440 // 5)
    assert h.first_seen_ok(fs, ("key1",), end) is False
    assert h.rarity_ok(ra, ("key1",), end) is False
    with pytest.raises(ValueError):
        h.first_seen_ok(fs, ("key1",), end - 2 * D)  # before the promised horizon


def test_prune_answers_match_unpruned() -> None:
    fs = ir.FirstSeen("hist", ("k",), ("k",), 3 * D)
    events = [E(t, k=f"k{t % 7}") for t in range(0, 20 * D, D // 3 + 17)]
    full, pruned = HistoryIndex([fs]), HistoryIndex([fs])
    horizon = D
    last_prune = 0
    for e in events:
        full.observe(e)
        pruned.observe(e)
        if e.ts - last_prune >= D // 2:
            pruned.prune(e.ts, horizon)
            last_prune = e.ts
        for q in (e.ts - horizon, e.ts, e.ts + 1):
            for k in range(8):
                assert full.first_seen_ok(fs, (f"k{k}",), q) == pruned.first_seen_ok(
                    fs, (f"k{k}",), q
                )
    # forgotten keys really are gone
    assert pruned.size() < full.size()
