"""Sigma correlation rules (spec v2) imported, and their alerts on crafted events equal to the
alerts the correlation describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.import_support import alerts, analytic, data, run

FAIL = """
title: Failed logon
id: 6a3c0000-0000-4000-8000-000000000001
name: failed_logon
description: a failed logon
author: Tester
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4625}
  condition: sel
level: low
"""
OK = FAIL.replace("Failed logon", "Successful logon").replace("failed_logon", "ok_logon")
OK = OK.replace("4625", "4624").replace("000000000001", "000000000002")


def corr(kind: str, rules: str, condition: str = "", extra: str = "") -> str:
    """A correlation rule; ``extra`` goes under ``correlation:`` (generate, aliases)."""
    extra = "\n".join("  " + line for line in extra.splitlines())
    return f"""
title: Correlation {kind}
id: 6a3c0000-0000-4000-8000-0000000000c1
author: Tester
description: a correlation
correlation:
  type: {kind}
  rules: [{rules}]
  group-by: [TargetUserName]
  timespan: 5m
  {condition}
{extra}
level: high
"""


def logon(code: int, user: str, **more: Any) -> dict[str, Any]:
    return {
        "host.os.type": "windows",
        "event.dataset": "windows.security",
        "event.code": code,
        "winlog.event_data.TargetUserName": user,
        **{f"winlog.event_data.{k}": v for k, v in more.items()},
    }


def users(result: list[Any]) -> list[str]:
    return sorted(str(dict(a.key)["winlog.event_data.TargetUserName"]) for a in result)


def test_event_count(tmp_path: Path) -> None:
    docs = (FAIL, corr("event_count", "failed_logon", "condition: {gte: 3}"))
    d = data(tmp_path, *docs)
    assert d["detect"] == {
        "threshold": {
            "stream": "failed_logon",
            "by": ["winlog.event_data.TargetUserName"],
            "window": "5m",
            "count": {"gte": 3},
        }
    }
    a = analytic(tmp_path, *docs)
    evs = [logon(4625, "bob")] * 3 + [logon(4625, "amy")] * 2 + [logon(4624, "amy")] * 2
    assert set(users(alerts(a, evs))) == {"bob"}
    res = run(tmp_path, *docs)
    assert [(c[1], c[2]) for c in res.consumed] == [
        ("6a3c0000-0000-4000-8000-000000000001", "6a3c0000-0000-4000-8000-0000000000c1")
    ]


def test_event_count_lt_becomes_an_aggregate(tmp_path: Path) -> None:
    docs = (FAIL, corr("event_count", "failed_logon", "condition: {lt: 2}"))
    d = data(tmp_path, *docs)
    agg = d["detect"]["aggregate"]
    assert agg["having"] == "event_count < 2" and agg["window"]["kind"] == "sliding"
    a = analytic(tmp_path, *docs)
    assert "amy" in users(alerts(a, [logon(4625, "amy")]))


def test_value_count(tmp_path: Path) -> None:
    docs = (FAIL, corr("value_count", "failed_logon", "condition: {field: IpAddress, gte: 2}"))
    a = analytic(tmp_path, *docs)
    evs = [
        logon(4625, "bob", IpAddress="1.1.1.1"),
        logon(4625, "bob", IpAddress="1.1.1.1"),
        logon(4625, "amy", IpAddress="1.1.1.1"),
        logon(4625, "amy", IpAddress="2.2.2.2"),
    ]
    assert set(users(alerts(a, evs))) == {"amy"}


def test_value_sum_avg_percentile(tmp_path: Path) -> None:
    evs = [logon(4625, "bob", Bytes=b) for b in (10, 20, 90)] + [
        logon(4625, "amy", Bytes=b) for b in (1, 2, 3)
    ]
    for kind, cond in (
        ("value_sum", "{field: Bytes, gte: 100}"),
        ("value_avg", "{field: Bytes, gt: 30}"),
        ("value_percentile", "{field: Bytes, percentile: 90, gte: 50}"),
    ):
        docs = (FAIL, corr(kind, "failed_logon", f"condition: {cond}"))
        d = data(tmp_path, *docs)
        measure = next(iter(d["detect"]["aggregate"]["measures"].values()))
        assert measure.get(kind.removeprefix("value_")) == "winlog.event_data.Bytes", kind
        a = analytic(tmp_path, *docs)
        assert set(users(alerts(a, evs))) == {"bob"}, kind


def test_temporal_is_a_cooccurrence(tmp_path: Path) -> None:
    docs = (FAIL, OK, corr("temporal", "failed_logon, ok_logon"))
    d = data(tmp_path, *docs)
    assert d["detect"]["cooccurrence"]["streams"] == ["failed_logon", "ok_logon"]
    a = analytic(tmp_path, *docs)
    evs = [logon(4624, "bob"), logon(4625, "bob"), logon(4625, "amy")]
    assert users(alerts(a, evs)) == ["bob"]


def test_temporal_ordered_is_a_sequence(tmp_path: Path) -> None:
    docs = (FAIL, OK, corr("temporal_ordered", "failed_logon, ok_logon"))
    a = analytic(tmp_path, *docs)
    evs = [logon(4624, "amy"), logon(4625, "amy"), logon(4625, "bob"), logon(4624, "bob")]
    assert users(alerts(a, evs)) == ["bob"]


def test_aliases_give_each_rule_its_key(tmp_path: Path) -> None:
    extra = "aliases:\n  user:\n    failed_logon: TargetUserName\n    ok_logon: SubjectUserName"
    text = corr("temporal_ordered", "failed_logon, ok_logon", extra=extra)
    text = text.replace("group-by: [TargetUserName]", "group-by: [user]")
    d = data(tmp_path, FAIL, OK, text)
    steps = d["detect"]["sequence"]["steps"]
    assert steps == [
        {"stream": "failed_logon"},
        {"stream": "ok_logon", "by": ["winlog.event_data.SubjectUserName"]},
    ]


def test_generate_keeps_the_base_rule(tmp_path: Path) -> None:
    docs = (FAIL, corr("event_count", "failed_logon", "condition: {gte: 3}", "generate: true"))
    res = run(tmp_path, *docs)
    assert len(res.imported) == 2 and not res.consumed


def test_refusals_name_the_construct_and_place(tmp_path: Path) -> None:
    chained = corr("temporal", "c_inner, ok_logon").replace("0000000000c1", "0000000000c2")
    inner = corr("event_count", "failed_logon", "condition: {gte: 3}").replace(
        "correlation:", "name: c_inner\ncorrelation:"
    )
    missing = corr("event_count", "nowhere", "condition: {gte: 3}").replace("c1", "c3")
    median = corr("value_median", "failed_logon", "condition: {field: Bytes, gte: 3}")
    median = median.replace("c1", "c4")
    res = run(tmp_path, FAIL, OK, inner, chained, missing, median)
    got = {r.construct: (r.diagnostic.line, r.diagnostic.code) for r in res.refused}
    assert set(got) == {"chained-correlation", "unresolved-reference", "correlation-value_median"}
    text = (tmp_path / "rules" / "rule.yml").read_text().splitlines()
    line, code = got["unresolved-reference"]
    assert code == "E500" and "nowhere" in text[line - 1]
    assert "c_inner" in text[got["chained-correlation"][0] - 1]


# --------------------------------------------------------------------------- chained correlations
INNER = corr("event_count", "failed_logon", "condition: {gte: 3}").replace(
    "correlation:", "name: c_inner\ncorrelation:"
)
CHAIN = corr("temporal_ordered", "c_inner, ok_logon").replace("0000000000c1", "0000000000c2")


def test_chained_event_count_then_temporal_ordered_is_a_counted_step(tmp_path: Path) -> None:
    """The specification's chained example: failed logons counted by an event_count, then a
    successful logon of the same user (temporal_ordered): a counted sequence step."""
    res = run(tmp_path, FAIL, OK, INNER, CHAIN)
    assert not res.refused and [i.id for i in res.imported] == [
        "6a3c0000-0000-4000-8000-0000000000c2"
    ]
    # the inner correlation raises no alert of its own, nor do the rules
    assert {c[1] for c in res.consumed} == {
        "6a3c0000-0000-4000-8000-0000000000c1",
        "6a3c0000-0000-4000-8000-000000000001",
        "6a3c0000-0000-4000-8000-000000000002",
    }
    d = data(tmp_path, FAIL, OK, INNER, CHAIN)["detect"]["sequence"]
    assert d["maxspan"] == "5m"
    assert d["steps"] == [
        {"stream": "failed_logon", "count": {"gte": 3}},
        {"stream": "ok_logon"},
    ]
    a = analytic(tmp_path, FAIL, OK, INNER, CHAIN)
    evs = [
        logon(4625, "amy"),
        logon(4625, "bob"),
        logon(4625, "amy"),
        logon(4625, "bob"),
        logon(4625, "amy"),
        logon(4624, "bob"),  # two failures only
        logon(4624, "amy"),
    ]
    (alert,) = alerts(a, evs)
    assert users([alert]) == ["amy"] and alert.evidence == ("e0", "e2", "e4", "e6")


def test_chained_count_takes_gt_plus_one_and_the_longer_timespan(tmp_path: Path) -> None:
    inner = INNER.replace("condition: {gte: 3}", "condition: {gt: 4}").replace("5m", "1h")
    d = data(tmp_path, FAIL, OK, inner, CHAIN)["detect"]["sequence"]
    assert d["steps"][0] == {"stream": "failed_logon", "count": {"gte": 5}}
    assert d["maxspan"] == "1h"


def test_chains_the_language_cannot_say_are_refused_at_the_reference(tmp_path: Path) -> None:
    cases = {
        "condition: {lt: 3}": "at least (gte) or more than (gt)",
        "condition: {gte: 1}": "from 2 to 1000 events",
    }
    for cond, why in cases.items():
        inner = INNER.replace("condition: {gte: 3}", cond)
        res = run(tmp_path, FAIL, OK, inner, CHAIN)
        (refused,) = [r for r in res.refused if r.construct == "chained-correlation"]
        assert why in refused.diagnostic.message, refused.diagnostic.message
        text = (tmp_path / "rules" / "rule.yml").read_text().splitlines()
        assert "c_inner" in text[refused.diagnostic.line - 1]
    other_keys = INNER.replace("group-by: [TargetUserName]", "group-by: [IpAddress]")
    res = run(tmp_path, FAIL, OK, other_keys, CHAIN)
    assert ["same fields" in r.diagnostic.message for r in res.refused] == [True]
