"""`siemc import sigma`: modifiers, field mapping, metadata and refusals, each checked on the
analytic's meaning (the reference evaluator on events crafted from the rule)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from compiler.importers.fields import map_field
from tests.import_support import alerts, analytic, data, proc, rule, run


def fired(tmp: Path, detection: str, *events: dict[str, object]) -> list[bool]:
    """For each event alone: does the imported rule alert on it?"""
    a = analytic(tmp, rule(detection))
    return [bool(alerts(a, [e])) for e in events]


def test_metadata_kept(tmp_path: Path) -> None:
    text = rule("sel: {Image|endswith: '\\\\cmd.exe'}\ncondition: sel").replace(
        "level: high",
        "level: critical\nlicense: DRL-1.1\nreferences: [https://example.com/a]\n"
        "falsepositives: [Admins]\n"
        "tags: [attack.execution, attack.defense_evasion, attack.t1059.003, attack.g0016, "
        "car.2013-05-002]",
    )
    d = data(tmp_path, text)
    assert d["id"] == "5f0e1a9c-0000-4000-8000-000000000001"
    assert d["author"] == "Tester"
    assert d["license"] == "DRL-1.1"
    assert d["references"] == ["https://example.com/a"]
    assert d["attack"] == {
        "techniques": ["T1059.003"],
        "tactics": ["execution", "defense-evasion"],
    }
    assert d["tags"] == ["attack.g0016", "car.2013-05-002"]
    assert d["severity"] == "critical"
    assert d["platforms"] == ["windows"]
    assert d["false_positives"] == ["Admins"]
    assert d["streams"]["events"]["logsource"] == {
        "category": "process_creation",
        "product": "windows",
    }
    a = analytic(tmp_path, text)
    assert a.meta.author == "Tester" and a.meta.license == "DRL-1.1"
    assert a.meta.tags == ("attack.g0016", "car.2013-05-002")
    assert a.meta.attack_tactics == ("execution", "defense-evasion")


def test_wildcards_become_the_language_operators(tmp_path: Path) -> None:
    d = data(
        tmp_path,
        rule(
            """
            sel:
              CommandLine|contains: a
              Image|endswith: '\\\\x.exe'
              ParentImage|startswith: 'C:\\\\'
              CurrentDirectory: 'C:\\\\w*d?r\\\\'
            condition: sel
            """
        ),
    )
    assert d["streams"]["events"]["where"] == {
        "process.command_line|contains": "a",
        "process.executable|endswith": "\\x.exe",
        "process.parent.executable|startswith": "C:\\",
        "process.working_directory|re": "(?s)^C:\\\\w.*d.r\\\\$",
    }


def test_inner_wildcards_match_like_sigma(tmp_path: Path) -> None:
    det = "sel: {CommandLine: 'a*b?c'}\ncondition: sel"
    events = [
        proc(**{"process.command_line": "A-x\nyB1C"}),  # case-insensitive, * spans lines
        proc(**{"process.command_line": "ab1c"}),
        proc(**{"process.command_line": "abc"}),  # ? needs one character
        proc(**{"process.command_line": "zab1c"}),  # anchored
    ]
    assert fired(tmp_path, det, *events) == [True, True, False, False]


def test_contains_all(tmp_path: Path) -> None:
    det = "sel: {CommandLine|contains|all: [-nop, -w hidden]}\ncondition: sel"
    d = data(tmp_path, rule(det))
    assert d["streams"]["events"]["where"] == {
        "process.command_line|contains|all": ["-nop", "-w hidden"]
    }
    evs = [
        proc(**{"process.command_line": "powershell -NOP -W hidden"}),
        proc(**{"process.command_line": "powershell -nop"}),
    ]
    assert fired(tmp_path, det, *evs) == [True, False]


def test_windash_expands_every_dash(tmp_path: Path) -> None:
    det = "sel: {CommandLine|windash|contains: ' -enc '}\ncondition: sel"
    variants = [" -enc ", " /enc ", " \u2013enc ", " \u2014enc ", " \u2015enc "]
    evs = [proc(**{"process.command_line": f"powershell{v}AAA"}) for v in variants]
    assert fired(tmp_path, det, *evs, proc(**{"process.command_line": "x enc "})) == [
        *([True] * 5),
        False,
    ]


def test_base64offset_matches_each_alignment(tmp_path: Path) -> None:
    det = "sel: {CommandLine|base64offset|contains: 'http://'}\ncondition: sel"
    evs = [
        proc(**{"process.command_line": base64.b64encode(pad + b"http://evil").decode()})
        for pad in (b"", b"x", b"xy")
    ]
    d = data(tmp_path, rule(det))
    assert len(d["streams"]["events"]["where"]["process.command_line|contains"]) == 3
    assert fired(tmp_path, det, *evs, proc(**{"process.command_line": "aHR0cDovL"[:3]})) == [
        True,
        True,
        True,
        False,
    ]


def test_cidr(tmp_path: Path) -> None:
    det = "sel: {DestinationIp|cidr: ['10.0.0.0/8', 'fd00::/8']}\ncondition: sel"
    ls = "{category: network_connection, product: windows}"
    a = analytic(tmp_path, rule(det, ls))
    net = {"event.category": "network", "event.type": "connection", "host.os.type": "windows"}
    got = [
        bool(alerts(a, [{**net, "destination.ip": ip}]))
        for ip in ("10.1.2.3", "fd00::1", "11.0.0.1")
    ]
    assert got == [True, True, False]


@pytest.mark.parametrize(
    ("mods", "value", "expect"),
    [
        ("re", "AbC", [False, True, False]),  # Sigma regexes are case-sensitive
        ("re|i", "AbC", [True, True, False]),
        ("re|m", "^b", [False, False, True]),
        ("re|s", "a.c", [True, False, False]),
    ],
)
def test_regex_flags(tmp_path: Path, mods: str, value: str, expect: list[bool]) -> None:
    det = f"sel: {{CommandLine|{mods}: '{value}'}}\ncondition: sel"
    evs = [proc(**{"process.command_line": s}) for s in ("abc", "AbC", "a\nb")]
    assert fired(tmp_path, det, *evs) == expect


def test_regex_dotall_spans_lines(tmp_path: Path) -> None:
    det = "sel: {CommandLine|re|s: 'a.b'}\ncondition: sel"
    assert fired(tmp_path, det, proc(**{"process.command_line": "a\nb"})) == [True]


def test_numeric_comparisons_exists_and_null(tmp_path: Path) -> None:
    ls = "{product: windows, service: security}"
    det = """
    sel: {LogonType|gte: 3, LogonType|lt: 10, TargetUserName|exists: true, IpAddress: null}
    condition: sel
    """
    a = analytic(tmp_path, rule(det, ls))
    base = {"host.os.type": "windows", "event.dataset": "windows.security"}
    user = {"winlog.event_data.TargetUserName": "bob"}
    cases: list[tuple[dict[str, object], bool]] = [
        ({"winlog.event_data.LogonType": 3, **user}, True),
        ({"winlog.event_data.LogonType": "9", **user}, True),
        ({"winlog.event_data.LogonType": 10, **user}, False),
        ({"winlog.event_data.LogonType": 2, **user}, False),
        ({"winlog.event_data.LogonType": 3}, False),
        (
            {"winlog.event_data.LogonType": 3, **user, "winlog.event_data.IpAddress": "1.2.3.4"},
            False,
        ),
    ]
    assert [bool(alerts(a, [{**base, **e}])) for e, _ in cases] == [x for _, x in cases]


def test_fieldref_compares_two_fields(tmp_path: Path) -> None:
    det = "sel: {ParentImage|fieldref: Image}\ncondition: sel"
    evs = [
        proc(**{"process.executable": "C:\\a.exe", "process.parent.executable": "c:\\A.exe"}),
        proc(**{"process.executable": "C:\\a.exe", "process.parent.executable": "C:\\b.exe"}),
    ]
    assert fired(tmp_path, det, *evs) == [True, False]


def test_expand_placeholder_becomes_a_lookup(tmp_path: Path) -> None:
    det = "sel: {User|expand: '%admins%'}\ncondition: sel"
    res = run(tmp_path, rule(det))
    assert res.lookups == {"lookups/admins.csv": "value\n"}
    d = data(tmp_path, rule(det))
    assert d["lookups"] == {"admins": {"file": "lookups/admins.csv"}}
    assert d["streams"]["events"]["where"] == {
        "lookup": {"name": "admins", "match": {"value": "winlog.event_data.User"}}
    }


def test_cased_and_any_value(tmp_path: Path) -> None:
    det = "sel: {CommandLine|cased|contains: Abc, Image: '*'}\ncondition: sel"
    evs = [
        proc(**{"process.command_line": "xAbc", "process.executable": ""}),
        proc(**{"process.command_line": "xabc", "process.executable": "a"}),
        proc(**{"process.command_line": "xAbc"}),
    ]
    assert fired(tmp_path, det, *evs) == [True, False, False]


def test_condition_logic(tmp_path: Path) -> None:
    det = """
    sel_a: {Image|endswith: '\\\\a.exe'}
    sel_b: {Image|endswith: '\\\\b.exe'}
    filter: {CommandLine|contains: safe}
    condition: 1 of sel_* and not filter
    """
    evs = [
        proc(**{"process.executable": "C:\\a.exe", "process.command_line": "x"}),
        proc(**{"process.executable": "C:\\b.exe", "process.command_line": "x"}),
        proc(**{"process.executable": "C:\\b.exe", "process.command_line": "safe"}),
        proc(**{"process.executable": "C:\\c.exe", "process.command_line": "x"}),
    ]
    assert fired(tmp_path, det, *evs) == [True, True, False, False]


def test_field_mapping_table() -> None:
    assert map_field("Image", "process_creation", "windows", None).ecs == "process.executable"
    assert map_field("User", "process_creation", "windows", None).ecs == "winlog.event_data.User"
    assert map_field("User", "process_creation", "linux", None).ecs == "user.name"
    assert map_field("EventID", None, "windows", "security").ecs == "event.code"
    assert map_field("eventName", None, "aws", "cloudtrail").ecs == "event.action"
    assert map_field("userIdentity.arn", None, "aws", "cloudtrail").ecs == (
        "aws.cloudtrail.userIdentity.arn"
    )
    assert map_field("cs-method", "webserver", None, None).ecs == "http.request.method"
    bad = map_field("cs-cookie-x", "webserver", None, None)
    assert bad.ecs is None and bad.problem is not None and "cs-cookie-x" in bad.problem


def test_keyword_refused_at_its_position(tmp_path: Path) -> None:
    det = "keywords:\n  - 'evil'\ncondition: keywords"
    res = run(tmp_path, rule(det))
    assert not res.imported
    (r,) = res.refused
    assert r.construct == "keyword"
    d = r.diagnostic
    assert (Path(d.path).name, d.line, d.code) == ("rule.yml", 8, "E500")
    assert "keyword" in d.message


def test_partial_placeholder_and_unknown_category_refused(tmp_path: Path) -> None:
    res = run(
        tmp_path,
        rule("sel: {User|expand: '%domain%\\\\admin'}\ncondition: sel"),
        rule("sel: {x: 1}\ncondition: sel", "{category: appliance}").replace(
            "000000000001", "000000000002"
        ),
    )
    got = sorted((r.construct, r.diagnostic.line, r.diagnostic.col) for r in res.refused)
    assert got == [("expand-partial", 8, 9), ("logsource-category:appliance", 15, 13)]


def test_unmappable_field_refused(tmp_path: Path) -> None:
    res = run(tmp_path, rule("sel: {cs-cookie-x: a}\ncondition: sel", "{category: webserver}"))
    (r,) = res.refused
    assert r.construct == "field-name" and (r.diagnostic.line, r.diagnostic.col) == (8, 9)


def test_output_is_deterministic(tmp_path: Path) -> None:
    text = rule("sel: {CommandLine|windash|contains: ' -x '}\ncondition: sel")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = run(tmp_path / "a", text), run(tmp_path / "b", text)
    assert a.files() == b.files() and a.imported


def test_duplicate_id_refused(tmp_path: Path) -> None:
    text = rule("sel: {Image: a}\ncondition: sel")
    res = run(tmp_path, text, text)
    assert len(res.imported) == 1
    (r,) = res.refused
    assert (r.construct, r.diagnostic.line) == ("duplicate-id", 12)
