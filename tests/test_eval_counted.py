"""Counted sequence steps (docs/semantics.md, "Counted steps"): a step that takes N events of its
stream in a row, EQL's ``with runs=N``. N failures, then a success."""

from __future__ import annotations

import random
from typing import Any

from compiler import ir
from compiler.evaluator.correlation import SequenceDetector
from compiler.evaluator.model import Alert, Event

USER = ("user.name",)


def ev(ts: int, seq: int, user: str = "alice", **fields: Any) -> Event:
    return Event(ts, seq, f"e{seq}", {"user.name": user, **fields})


def det(n: int = 3, maxspan: int = 100, until: ir.Step | None = None) -> SequenceDetector:
    steps = (ir.Step("fail", "F", USER, count=n), ir.Step("ok", "S", USER))
    return SequenceDetector("AN1", ir.Sequence(steps, maxspan, until))


def run(d: SequenceDetector, pushes: list[tuple[str, Event]]) -> list[Alert]:
    out: list[Alert] = []
    for stream, e in pushes:
        out.extend(d.push(stream, e))
    out.extend(d.finish(None))
    return out


def fails(*times: int, user: str = "alice", start: int = 0) -> list[tuple[str, Event]]:
    return [("F", ev(t, start + i, user)) for i, t in enumerate(times)]


def test_n_minus_one_failures_then_success_raises_nothing() -> None:
    assert run(det(), [*fails(0, 1), ("S", ev(2, 9))]) == []


def test_n_failures_then_success_alerts_with_the_run_then_the_success_as_evidence() -> None:
    (alert,) = run(det(), [*fails(0, 1, 2), ("S", ev(3, 9))])
    assert alert.evidence == ("e0", "e1", "e2", "e9")
    assert (alert.start, alert.end) == (0, 3)
    assert alert.key == (("user.name", "alice"),)


def test_the_success_must_come_after_the_nth_failure() -> None:
    # a success before the third failure completes nothing; it is not kept for later
    assert run(det(), [*fails(0, 1), ("S", ev(1, 5)), *fails(2, start=6)]) == []


def test_more_failures_than_the_count_take_the_latest_run() -> None:
    # every failure moves each partial of its key one copy on and starts a new one, so the
    # partial waiting for the success holds the latest three failures (EQL's runs)
    (alert,) = run(det(), [*fails(0, 1, 2, 3), ("S", ev(4, 9))])
    assert alert.evidence == ("e1", "e2", "e3", "e9")


def test_maxspan_counts_from_the_first_failure_to_the_success_inclusive() -> None:
    assert len(run(det(maxspan=10), [*fails(0, 1, 2), ("S", ev(10, 9))])) == 1
    assert run(det(maxspan=10), [*fails(0, 1, 2), ("S", ev(11, 9))]) == []


def test_the_latest_failures_count_when_older_ones_leave_maxspan() -> None:
    # failures at 0, 6, 11, 12 (maxspan 10): 6, 11 and 12 are the latest three, within 10 of
    # the success at 13
    (alert,) = run(det(maxspan=10), [*fails(0, 6, 11, 12), ("S", ev(13, 9))])
    assert alert.evidence == ("e1", "e2", "e3", "e9")
    # the latest three span more than maxspan up to the success: nothing
    assert run(det(maxspan=10), [*fails(0, 2, 4), ("S", ev(11, 9))]) == []


def test_a_second_success_needs_a_new_failure_and_reuses_the_latest() -> None:
    pushes = [*fails(0, 1, 2), ("S", ev(3, 7)), ("S", ev(4, 8)), ("F", ev(5, 10)), ("S", ev(6, 11))]
    alerts = run(det(), pushes)
    assert [a.evidence for a in alerts] == [("e0", "e1", "e2", "e7"), ("e1", "e2", "e10", "e11")]


def test_users_interleaved_count_apart_and_failures_of_another_user_do_not_count() -> None:
    pushes = [
        ("F", ev(0, 0, "alice")),
        ("F", ev(1, 1, "bob")),
        ("F", ev(2, 2, "alice")),
        ("F", ev(3, 3, "bob")),
        ("F", ev(4, 4, "alice")),
        ("S", ev(5, 5, "bob")),  # bob has two failures only
        ("S", ev(6, 6, "alice")),
    ]
    (alert,) = run(det(), pushes)
    assert alert.key == (("user.name", "alice"),)
    assert alert.evidence == ("e0", "e2", "e4", "e6")


def test_equal_timestamps_follow_input_order() -> None:
    (alert,) = run(det(), [*fails(5, 5, 5), ("S", ev(5, 9))])
    assert alert.evidence == ("e0", "e1", "e2", "e9")
    # a success at the same millisecond but earlier in the input comes before the run ends
    assert run(det(), [*fails(5, 5), ("S", ev(5, 2)), ("F", ev(5, 3))]) == []


def test_until_cancels_a_run_in_progress() -> None:
    d = det(until=ir.Step("reset", "R", USER))
    pushes = [*fails(0, 1), ("R", ev(2, 5)), ("F", ev(3, 6)), ("S", ev(4, 9))]
    assert run(d, pushes) == []


def test_counted_step_after_a_first_step() -> None:
    # a logon, then three failures of a privileged command: the count is not the first step
    steps = (ir.Step("logon", "L", USER), ir.Step("denied", "F", USER, count=3))
    d = SequenceDetector("AN1", ir.Sequence(steps, 100, None))
    (alert,) = run(d, [("F", ev(0, 0)), ("L", ev(1, 1)), *fails(2, 3, 4, start=2)])
    assert alert.evidence == ("e1", "e2", "e3", "e4")


def test_record_names_each_step_once_with_the_first_event_of_its_run() -> None:
    pushes = [("F", ev(i, i, **{"source.ip": f"10.0.0.{i}"})) for i in range(3)]
    (alert,) = run(det(), [*pushes, ("S", ev(3, 9, **{"source.ip": "10.9.9.9"}))])
    assert [prefix for prefix, _ in alert.steps] == ["fail.", "ok."]
    assert alert.field("fail.source.ip") == "10.0.0.0"
    assert alert.field("ok.source.ip") == "10.9.9.9"


def _latest_failures_model(
    pushes: list[tuple[str, Event]], n: int, maxspan: int
) -> list[tuple[str, ...]]:
    """What a counted first step followed by a success means, said without a state machine: a
    success alerts when the n latest failures of its user before it lie within maxspan of the
    first of them, and a failure came after the user's previous alert."""
    seen: dict[str, list[Event]] = {}
    used: dict[str, int] = {}
    out = []
    for stream, e in pushes:
        user = e.fields["user.name"]
        if stream == "F":
            seen.setdefault(user, []).append(e)
            continue
        latest = seen.get(user, [])[-n:]
        if len(latest) == n and e.ts - latest[0].ts <= maxspan and used.get(user) != latest[-1].seq:
            used[user] = latest[-1].seq
            out.append((*[f.id for f in latest], e.id))
    return out


def test_counted_first_step_is_the_latest_n_failures_before_a_success() -> None:
    rng = random.Random(11)
    alerts = 0
    for _ in range(300):
        pushes = []
        for seq in range(rng.randint(0, 16)):
            stream = rng.choice("FFFS")
            pushes.append((stream, ev(seq // 2 * 3, seq, rng.choice(["a", "b"]))))
        n = rng.choice([2, 3])
        got = [a.evidence for a in run(det(n=n, maxspan=12), pushes)]
        assert sorted(got) == sorted(_latest_failures_model(pushes, n, 12)), pushes
        alerts += len(got)
    assert alerts > 50
