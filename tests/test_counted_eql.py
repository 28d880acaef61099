"""Counted sequence steps on EQL: `[..] with runs=N`, run by Elastic's eql engine over random
failure/success streams, must raise the evaluator's alerts (keys and times), for a counted first
step, a counted middle step, and with an `until`. The hand-written edge cases are the
differential fixtures tests/differential/eql/ch_*.yml (test_diff_eql.py)."""

from __future__ import annotations

import json
import random

import pytest

from compiler import canonical
from compiler.build import compile_pair
from compiler.engines import run_eql
from compiler.evaluator import evaluate
from compiler.lower import load_text
from compiler.testing import fixture_events

pytest.importorskip("eql")

HEAD = """id: CH-RANDOM
title: Counted step on random data
description: a run of failures, then a success, per user
attack: {{techniques: [T1110]}}
platforms: [linux]
severity: low
streams:
  fail:
    logsource: {{product: linux}}
    where: {{event.category: authentication, event.outcome: failure}}
  ok:
    logsource: {{product: linux}}
    where: {{event.category: authentication, event.outcome: success}}
  reset:
    logsource: {{product: linux}}
    where: {{event.category: authentication, event.outcome: unknown}}
detect:
  sequence:
    by: [user.name]
    maxspan: 6s
    steps:
{steps}
{until}tests:
  - name: random
    kind: {kind}
    data: synthetic
    events:
{events}
{expect}"""

SHAPES = {
    "counted first": (
        "      - {stream: fail, as: f, count: {gte: 3}}\n      - {stream: ok, as: s}\n",
        "",
    ),
    "counted middle": (
        "      - {stream: reset, as: first}\n"
        "      - {stream: fail, as: f, count: {gt: 1}}\n"
        "      - {stream: ok, as: s}\n",
        "",
    ),
    "counted with until": (
        "      - {stream: fail, as: f, count: {gte: 2}}\n      - {stream: ok, as: s}\n",
        "    until: {stream: reset}\n",
    ),
}


def _events(rng: random.Random, outcomes: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    t = 0
    for i in range(rng.randint(4, 30)):
        t += rng.choice([0, 1000, 1000, 2000])
        out.append(
            {
                "@timestamp": f"2024-01-01T00:{t // 60000:02d}:{t // 1000 % 60:02d}Z",
                "event.id": f"r{i}",
                "event.category": "authentication",
                "host.os.type": "linux",
                "user.name": rng.choice(["alice", "bob"]),
                "event.outcome": rng.choice(outcomes),
            }
        )
    return out


# how often each outcome is drawn: enough of every step for the runs to complete
OUTCOMES = {
    "counted first": ["failure"] * 4 + ["success"] * 3 + ["unknown"],
    "counted middle": ["failure"] * 4 + ["success"] * 2 + ["unknown"] * 2,
    "counted with until": ["failure"] * 4 + ["success"] * 3 + ["unknown"],
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_eql_runs_equal_the_evaluator_on_random_streams(shape: str) -> None:
    steps, until = SHAPES[shape]
    rng = random.Random(shape)
    alerts_seen = 0
    for _ in range(24):
        events = _events(rng, OUTCOMES[shape])
        text = HEAD.format(
            steps=steps,
            until=until,
            kind="negative",
            events="\n".join(f"      - {json.dumps(e)}" for e in events),
            expect="",
        )
        loaded = load_text("random.yml", text)
        fx = loaded.fixtures[0]
        art = compile_pair(loaded, "eql", profile=None, allow_approximate=False).artifact
        assert art is not None and not art.approximations, shape
        assert "with runs=" in art.query
        want = [
            canonical.from_evaluator(a)
            for a in evaluate(loaded.analytic, fixture_events(loaded, fx), None)
        ]
        got = run_eql.run(loaded, fx, art)
        d = canonical.diff(want, got)
        assert d.equal, f"{shape}\n{text}\n{d.render()}"
        alerts_seen += len(want)
    assert alerts_seen >= 3, shape  # the random streams do reach the count


def test_steps_sharing_a_stream_are_declared_not_exact() -> None:
    """Outside a counted step, Elasticsearch (and its eql engine) offers an event to every step
    it matches; siemc to one: two steps reading one stream are a declared approximation, and
    the engine shows why."""
    events = "\n".join(
        f'      - {{"@timestamp": "2024-01-01T00:00:0{i}Z", event.id: a{i}, '
        "event.category: authentication, host.os.type: linux, user.name: u, "
        "event.outcome: failure}"
        for i in range(1, 5)
    )
    text = HEAD.format(
        steps="      - {stream: fail, as: x}\n      - {stream: fail, as: y}\n",
        until="",
        kind="negative",
        events=events,
        expect="",
    )
    loaded = load_text("aa.yml", text)
    fx = loaded.fixtures[0]
    art = compile_pair(loaded, "eql", profile=None, allow_approximate=True).artifact
    assert art is not None
    assert [(a.construct, a.direction) for a in art.approximations] == [
        ("ordered sequence", "mixed")
    ]
    want = evaluate(loaded.analytic, fixture_events(loaded, fx), None)
    assert [a.evidence for a in want] == [("a1", "a2"), ("a3", "a4")]
    got = run_eql.run(loaded, fx, art)
    t0 = 1704067200000
    assert sorted((a.start, a.end) for a in got) == [
        (t0 + 1000, t0 + 2000),
        (t0 + 2000, t0 + 3000),
        (t0 + 3000, t0 + 4000),
    ]
