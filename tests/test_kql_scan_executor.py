"""The harness' scan operator (compiler/engines/kql_scan.py) on the worked examples of Microsoft's
scan documentation (learn.microsoft.com/kusto/query/scan-operator, "Examples" and "Scan logic
walkthrough"): each input as the example's datatable gives it, each expected output copied from
the page. This is the evidence that the executor follows the documented matching logic,
independently of siemc's evaluator."""

from __future__ import annotations

import datetime as dt

import pytest

from compiler.engines.kql_scalar import ScanError
from compiler.engines.kql_scan import parse_scan, run_partitioned, scan, split_partition

M = dt.timedelta(minutes=1)


def _run(rows: list[dict[str, object]], text: str) -> list[dict[str, object]]:
    return scan(rows, parse_scan(text))


def test_cumulative_sum() -> None:
    out = _run(
        [{"x": x} for x in range(1, 6)],
        "scan declare (cumulative_x:long=0) with "
        "(step s1: true => cumulative_x = x + s1.cumulative_x;)",
    )
    assert [(r["x"], r["cumulative_x"]) for r in out] == [(1, 1), (2, 3), (3, 6), (4, 10), (5, 15)]


def test_cumulative_sum_on_two_columns_with_a_reset_condition() -> None:
    out = _run(
        [{"x": x, "y": 2 * x} for x in range(1, 6)],
        """scan declare (cumulative_x:long=0, cumulative_y:long=0) with
        (
            step s1: true => cumulative_x = iff(s1.cumulative_x >= 10, x, x + s1.cumulative_x),
                             cumulative_y = iff(s1.cumulative_y >= 10, y, y + s1.cumulative_y);
        )""",
    )
    assert [(r["x"], r["y"], r["cumulative_x"], r["cumulative_y"]) for r in out] == [
        (1, 2, 1, 2),
        (2, 4, 3, 6),
        (3, 6, 6, 12),
        (4, 8, 10, 8),
        (5, 10, 5, 18),
    ]


def test_fill_forward() -> None:
    events = [(0, "A"), (1, ""), (2, "B"), (3, ""), (4, ""), (6, "C"), (8, ""), (11, "D"), (12, "")]
    out = _run(
        [{"Ts": t * M, "Event": e} for t, e in events],
        """scan declare (Event_filled: string="") with
        (step s1: true => Event_filled = iff(isempty(Event), s1.Event_filled, Event);)""",
    )
    assert [r["Event_filled"] for r in out] == ["A", "A", "B", "B", "B", "C", "C", "D", "D"]


def test_sessions_tagging() -> None:
    events = [(0, "A"), (1, "A"), (2, "B"), (3, "D"), (32, "B"), (36, "C"), (38, "D"), (41, "E"),
              (75, "A")]  # fmt: skip
    out = _run(
        [{"Ts": t * M, "Event": e} for t, e in events],
        """scan with_match_id=session_id declare (sessionStart: timespan) with
        (
            step inSession: true => sessionStart = iff(isnull(inSession.sessionStart), Ts,
                                                       inSession.sessionStart);
            step endSession output=none: Ts - inSession.sessionStart > 30m;
        )""",
    )
    assert [(r["Ts"], r["Event"], r["sessionStart"], r["session_id"]) for r in out] == [
        (0 * M, "A", 0 * M, 0),
        (1 * M, "A", 0 * M, 0),
        (2 * M, "B", 0 * M, 0),
        (3 * M, "D", 0 * M, 0),
        (32 * M, "B", 32 * M, 1),
        (36 * M, "C", 32 * M, 1),
        (38 * M, "D", 32 * M, 1),
        (41 * M, "E", 32 * M, 1),
        (75 * M, "A", 75 * M, 2),
    ]


def test_events_between_start_and_stop_the_walkthrough() -> None:
    events = [(0, "A"), (1, "Start"), (2, "B"), (3, "D"), (4, "Stop"), (6, "C"), (8, "Start"),
              (11, "E"), (12, "Stop")]  # fmt: skip
    out = _run(
        [{"Ts": t * M, "Event": e} for t, e in events],
        """scan with_match_id=m_id with
        (
            step s1: Event == "Start";
            step s2: Event != "Start" and Event != "Stop" and Ts - s1.Ts <= 5m;
            step s3: Event == "Stop" and Ts - s1.Ts <= 5m;
        )""",
    )
    assert [(r["Ts"], r["Event"], r["m_id"]) for r in out] == [
        (1 * M, "Start", 0),
        (2 * M, "B", 0),
        (3 * M, "D", 0),
        (4 * M, "Stop", 0),
        (8 * M, "Start", 1),
        (11 * M, "E", 1),
        (12 * M, "Stop", 1),
    ]


def test_session_length_per_user_with_partition() -> None:
    t = dt.datetime
    logs = [
        (t(2024, 5, 28, 8, 15, 23), 1, "login"),
        (t(2024, 5, 28, 8, 30, 15), 2, "login"),
        (t(2024, 5, 28, 9, 10, 27), 3, "login"),
        (t(2024, 5, 28, 12, 30, 45), 1, "logout"),
        (t(2024, 5, 28, 11, 45, 32), 2, "logout"),
        (t(2024, 5, 28, 13, 25, 19), 3, "logout"),
    ]
    head, part = split_partition(
        """LogsEvents
| partition hint.strategy=native by userID (
    sort by Timestamp asc
    | scan declare (start: datetime, end: datetime, sessionDuration: timespan) with (
        step s1 output=none: EventType == "login" => start = Timestamp;
        step s2 output=all: EventType == "logout" => start = s1.start, end = Timestamp,
            sessionDuration = Timestamp - s1.start;
    )
)"""
    ) or pytest.fail("no partition found")
    assert head.strip() == "LogsEvents"
    rows = [{"Timestamp": ts, "userID": u, "EventType": e} for ts, u, e in logs]
    out = {(r["start"], r["end"], r["userID"], r["sessionDuration"]) for r in run_partitioned(
        rows, part)}  # fmt: skip
    h = dt.timedelta
    assert out == {
        (t(2024, 5, 28, 8, 15, 23), t(2024, 5, 28, 12, 30, 45), 1, h(hours=4, seconds=922)),
        (t(2024, 5, 28, 9, 10, 27), t(2024, 5, 28, 13, 25, 19), 3, h(hours=4, seconds=892)),
        (t(2024, 5, 28, 8, 30, 15), t(2024, 5, 28, 11, 45, 32), 2, h(hours=3, seconds=917)),
    }


def test_ties_of_the_sort_key_run_against_the_input_order() -> None:
    _, part = split_partition(
        "T | partition hint.strategy=native by k (sort by t asc | scan declare (seen: string = "
        '"") with (step s: true => seen = strcat_like;))'.replace(
            "strcat_like", "iff(isempty(s.seen), v, s.seen)"
        )
    ) or pytest.fail("no partition found")
    rows = [{"k": 1, "t": 5, "v": "first"}, {"k": 1, "t": 5, "v": "second"}]
    assert [r["seen"] for r in run_partitioned(rows, part)] == ["second", "second"]


@pytest.mark.parametrize(
    "text",
    [
        "scan with (step s output=last: true;)",
        "scan declare (n: long) with (step s: true => n = bin(n, 1);)",
        "scan declare (n: long) with (step s: true => m = 1;)",
        "scan with (step s: true; step s: true;)",
    ],
)
def test_what_the_harness_does_not_implement_is_an_error(text: str) -> None:
    with pytest.raises(ScanError):
        parse_scan(text)
