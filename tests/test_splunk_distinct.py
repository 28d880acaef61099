"""The exact sliding distinct-count threshold on Splunk (backends/splunk/consume.py,
distinct_pass): equal to the evaluator on random orders (fixed seed: deterministic), and each
of its parts is needed (a mutation is caught by a fixture of
tests/differential/splunk/cnt_distinct.yml)."""

from __future__ import annotations

import dataclasses
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends.base import Artifact
from compiler import canonical
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_spl
from compiler.lower import Loaded
from tests.differential_support import evaluator_alerts, spl_engine_or_skip

ROOT = Path(__file__).resolve().parent.parent
FILE = ROOT / "tests" / "differential" / "splunk" / "cnt_distinct.yml"
T0 = 1704067200000  # 2024-01-01T00:00:00Z
RESET = re.compile(r'reset_after="(?:\\.|[^"\\])*" ')
USERS: list[object] = ["alice", "alice", "Alice", "bob", "carol", "443", 443, "7", "7.0", None]


def _setup(profile: str = "cim") -> tuple[Loaded, Artifact]:
    lo = load_catalog([FILE]).loaded[0]
    art = compile_pair(lo, "splunk", profile=profile, allow_approximate=False).artifact
    assert art is not None and not art.approximations
    return lo, art


def _events(rnd: random.Random) -> list[dict[str, object]]:
    """Steps of 0 (ties), 1 ms, seconds and the window's size around its edge."""
    out: list[dict[str, object]] = []
    t = T0
    for i in range(rnd.randint(10, 40)):
        t += rnd.choice([0, 0, 1, 1000, 2000, 3000, 9999, 10000, 10001])
        e: dict[str, object] = {
            "@timestamp": datetime.fromtimestamp(t / 1000, UTC).isoformat(timespec="milliseconds"),
            "event.id": f"r{i}",
            "event.category": "process",
            "event.type": "start",
            "host.name": rnd.choice(["h1", "h1", "h1", "h2"]),
            "process.name": "badauth",
        }
        user = rnd.choice(USERS)
        if user is not None:
            e["user.name"] = user
        out.append(e)
    return out


@pytest.mark.parametrize("profile", ["cim", "sysmon"])
def test_random_orders_equal_the_evaluator(profile: str) -> None:
    spl_engine_or_skip()
    lo, art = _setup(profile)
    rnd = random.Random(20261206)
    alerts = 0
    for seed in range(150):
        fx = dataclasses.replace(
            lo.fixtures[0], name=f"random {seed}", events=tuple(_events(rnd)), expect=()
        )
        want = evaluator_alerts(lo, fx)
        d = canonical.diff(want, run_spl.run(lo, fx, art))
        assert d.equal, f"seed {seed}:\n{d.render()}"
        alerts += len(want)
    assert alerts >= 100  # windows fire, and fire again after their consumption


MUTATIONS = [
    # the window's start exclusive: the third user exactly 10 s after the first is lost
    (">=round(_time*1000)-10000", ">round(_time*1000)-10000", "the third user exactly 10 s"),
    # no consumption: the users of a fired window count again
    (RESET, "", "the window consumed"),
    # no window: every user since the last alert counts
    ('tonumber(mvindex(split(siemc_dw, "|"), 0))>=round(_time*1000)-10000', "true()",
     "a user seen before the window"),
    # values compared whatever their case
    ('replace(siemc_dw, "^[^|]*[|]", "v")', 'lower(replace(siemc_dw, "^[^|]*[|]", "v"))',
     "case, a number"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "fixture"), MUTATIONS)
def test_a_broken_idiom_is_caught(old: str | re.Pattern[str], new: str, fixture: str) -> None:
    spl_engine_or_skip()
    lo, art = _setup()
    fx = next(f for f in lo.fixtures if f.name.startswith(fixture))
    assert canonical.diff(evaluator_alerts(lo, fx), run_spl.run(lo, fx, art)).equal
    if isinstance(old, str):
        assert old in art.query
        query = art.query.replace(old, new)
    else:
        query, n = old.subn(new, art.query)
        assert n == 1
    wrong = dataclasses.replace(art, query=query)
    assert not canonical.diff(evaluator_alerts(lo, fx), run_spl.run(lo, fx, wrong)).equal
