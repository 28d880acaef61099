"""Counted sequence steps on Splunk (backends/splunk/counted.py): the one-pass form equals the
evaluator on random event orders (fixed seeds: deterministic), each of its tests is needed
(a mutation that drops or weakens one is caught by a fixture of tests/differential/splunk/cnt_*),
and the layouts it does not cover are refused with their reason."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends import get_backend
from backends.base import Artifact, CompileError
from compiler import canonical
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_spl
from compiler.lower import Loaded
from tests.differential_support import evaluator_alerts, spl_engine_or_skip

ROOT = Path(__file__).resolve().parent.parent
CNT = ROOT / "tests" / "differential" / "splunk"
KINDS = {"A": "launcher", "F": "badauth", "S": "goodauth", "U": "logoff"}
T0 = 1704067200000  # 2024-01-01T00:00:00Z


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _loaded(name: str) -> Loaded:
    return load_catalog([CNT / name]).loaded[0]


def _artifact(lo: Loaded, profile: str = "cim") -> Artifact:
    art = compile_pair(lo, "splunk", profile=profile, allow_approximate=False).artifact
    assert art is not None and not art.approximations
    return art


def _diff(lo: Loaded, fixture: str, art: Artifact) -> canonical.Diff:
    fx = next(f for f in lo.fixtures if f.name == fixture)
    return canonical.diff(evaluator_alerts(lo, fx), run_spl.run(lo, fx, art))


def _random_events(rnd: random.Random, kinds: str) -> list[dict[str, object]]:
    """Events of two users on one or two hosts, some without a user: steps of 0 (a tie),
    1 ms, a few seconds and beyond the maxspan, so runs tie, overflow, expire and repeat."""
    out: list[dict[str, object]] = []
    t = T0
    for i in range(rnd.randint(10, 30)):
        t += rnd.choice([0, 0, 1, 1000, 1000, 2000, 5000, 9000, 31000])
        e: dict[str, object] = {
            "@timestamp": iso(t),
            "event.id": f"r{i}",
            "event.category": "process",
            "event.type": "start",
            "host.name": rnd.choice(["h1", "h1", "h1", "h2"]),
            "process.name": KINDS[rnd.choice(kinds)],
        }
        user = rnd.choice(["alice", "alice", "alice", "alice", "bob", "Alice", None])
        if user is not None:
            e["user.name"] = user
        out.append(e)
    return out


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("cnt_runs.yml", "FFFFS"),
        ("cnt_runs_until.yml", "FFFFSSU"),
        ("cnt_runs_last.yml", "AAFFFFFU"),
        ("cnt_runs_last.yml", "AFFF"),
    ],
)
def test_random_orders_equal_the_evaluator(name: str, kinds: str) -> None:
    spl_engine_or_skip()
    lo = _loaded(name)
    base = lo.fixtures[0]
    alerts = 0
    for profile in ("cim", "sysmon"):
        art = _artifact(lo, profile)
        rnd = random.Random(20261206)
        for seed in range(120):
            fx = dataclasses.replace(
                base, name=f"random {seed}", events=tuple(_random_events(rnd, kinds)), expect=()
            )
            want = evaluator_alerts(lo, fx)
            d = canonical.diff(want, run_spl.run(lo, fx, art))
            assert d.equal, f"{profile} seed {seed}:\n{d.render()}"
            alerts += len(want)
    assert alerts >= 40  # the orders are not vacuous: runs complete, with and without until


# --------------------------------------------------------------------------- mutations
MUTATIONS = [
    # no previous-step-event test: the second of two successes in a row alerts again
    (
        "cnt_runs.yml",
        ' AND siemc_p=="failed"',
        "",
        "two successes in a row, then one more failure and a success",
    ),
    # maxspan exclusive: the success exactly at maxspan is lost
    ("cnt_runs.yml", "_time-siemc_st<=30", "_time-siemc_st<30", "a success exactly at maxspan"),
    # the window over every row of the key, not its failures only: a success counts as one
    (
        "cnt_runs.yml",
        "BY siemc_g0 siemc_g1 siemc_stream",
        "BY siemc_g0 siemc_g1",
        "other keys interleaved",
    ),
    # until ignored: a logoff inside the run no longer drops it
    (
        "cnt_runs_until.yml",
        " AND (isnull(siemc_pu) OR siemc_pu<siemc_rs)",
        "",
        "logoffs before, inside and after runs",
    ),
    # run last: no test that the run's first failure follows the launch (a fourth failure
    # alerts again with the same launch)
    (
        "cnt_runs_last.yml",
        " AND siemc_fo==1",
        "",
        "a launch and its three failures",
    ),
    # run last: the launch read from the latest failure instead of the run's first (a newer
    # launch inside the run takes over)
    (
        "cnt_runs_last.yml",
        "first(siemc_po) AS siemc_fo",
        "last(siemc_po) AS siemc_fo",
        "a second launch between",
    ),
    # until compared with the latest failure instead of the run's first: a logoff inside the
    # run is missed
    (
        "cnt_runs_until.yml",
        "siemc_pu<siemc_rs",
        "siemc_pu<siemc_seq",
        "logoffs before, inside and after runs",
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "fixture"), MUTATIONS)
def test_a_broken_idiom_is_caught(name: str, old: str, new: str, fixture: str) -> None:
    spl_engine_or_skip()
    lo = _loaded(name)
    art = _artifact(lo)
    fx = next(f.name for f in lo.fixtures if f.name.startswith(fixture))
    assert _diff(lo, fx, art).equal
    assert old in art.query
    wrong = dataclasses.replace(art, query=art.query.replace(old, new))
    assert not _diff(lo, fx, wrong).equal


# --------------------------------------------------------------------------- refusals
_STEPS = """
    steps:
      - {stream: failed, as: failures, count: {gte: 3}}
      - {stream: success, as: logon}
"""


def _variant(tmp_path: Path, old: str, new: str) -> CompileError:
    text = (CNT / "cnt_runs.yml").read_text(encoding="utf-8")
    assert old in text
    text = text.replace(old, new)
    if "user.peers" in text:  # a multi-valued key, derived in both streams
        ls = "    logsource: {category: process_creation}\n"
        text = text.replace(
            ls, ls + "    derive: {user.peers: extract_ips(process.command_line)}\n"
        )
    body = text.split("\ntests:\n")[0] + "\n"
    (tmp_path / "v.yml").write_text(body, encoding="utf-8")
    lo = load_catalog([tmp_path]).loaded[0]
    with pytest.raises(CompileError) as info:
        get_backend("splunk").compile(lo.analytic, profile="cim", allow_approximate=True)
    return info.value


@pytest.mark.parametrize(
    ("old", "new", "code", "words"),
    [
        (
            _STEPS,
            _STEPS.replace("logon}", "logon, count: {gte: 2}}"),
            "E200",
            "two steps, one of them a run",
        ),
        (
            _STEPS,
            _STEPS + "      - {stream: failed, as: again}\n",
            "E200",
            "two steps, one of them a run",
        ),
        ("where: {process.name: goodauth}", "where: {host.name: h1}", "E200", "may share an event"),
        (
            "by: [host.name, user.name]",
            "by: [host.name, user.peers]",
            "E200",
            "several values",
        ),
    ],
)
def test_other_layouts_are_refused_with_the_reason(
    tmp_path: Path, old: str, new: str, code: str, words: str
) -> None:
    err = _variant(tmp_path, old, new)
    assert [d.code for d in err.diagnostics] == [code]
    assert words in err.diagnostics[0].message
