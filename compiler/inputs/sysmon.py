"""Sysmon (Windows and Linux) -> ECS.

Accepted shapes, one event per line:
- flat JSON with the EventData fields at top level (NXLog / OTRF exports: ``EventID``,
  ``UtcTime``, ``Image``, ... plus envelope keys such as ``Hostname``, ``@timestamp``);
- Winlogbeat-style JSON (``winlog.event_data``, ``winlog.event_id``);
- JSON whose ``SyslogMessage`` (Azure Syslog table) or ``message`` holds the ``<Event>`` XML that
  Sysmon for Linux writes, or a raw syslog text line containing that XML.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler.inputs._common import (
    IdDeduper,
    Record,
    basename,
    clean_ip,
    fail,
    iter_json,
    put,
    timestamp,
    to_int,
)

# Keys of the OTRF/NXLog envelope: everything else at top level is a Sysmon EventData field.
# fmt: off
_ENVELOPE = frozenset({
    "@timestamp", "@version", "EventID", "Message", "Hostname", "Computer", "host", "port",
    "tags", "TimeCreated", "SourceName", "ProviderGuid", "Level", "Keywords", "Channel", "Task",
    "Opcode", "OpcodeValue", "Severity", "SeverityValue", "EventReceivedTime", "EventTime",
    "ExecutionProcessID", "ThreadID", "RecordNumber", "EventRecordID", "SourceModuleName",
    "SourceModuleType", "AccountType", "AccountName", "Domain", "UserID", "Category", "Version",
    "ProviderName",
})
# fmt: on

# event.category / event.type per EID, following Elastic's Sysmon integration where it is clear.
# EID 22 is "info", not "connection": a DNS query must not count as a network connection.
# fmt: off
_KIND: dict[int, tuple[str, str]] = {
    1: ("process", "start"), 2: ("file", "change"), 3: ("network", "connection"),
    5: ("process", "end"), 6: ("driver", "start"), 7: ("process", "change"),
    8: ("process", "change"), 9: ("file", "access"), 10: ("process", "access"),
    11: ("file", "creation"), 12: ("registry", "change"), 13: ("registry", "change"),
    14: ("registry", "change"), 15: ("file", "creation"), 16: ("configuration", "change"),
    17: ("file", "creation"), 18: ("file", "access"), 22: ("network", "info"),
    23: ("file", "deletion"), 25: ("process", "change"), 26: ("file", "deletion"),
    29: ("file", "creation"),
}
# fmt: on

# Sysmon for Linux escapes XML as `&lt ` / `&quot ` (a space instead of `;`), which no XML parser
# accepts: `<Data Name="Image">&lt unknown process&gt </Data>`.
_BAD_ENTITY = re.compile(r"&(lt|gt|quot|amp|apos) ")
_ENTITY_TEXT = {"lt": "&lt;", "gt": "&gt;", "quot": "&quot;", "amp": "&amp;", "apos": "&apos;"}
_DATA = re.compile(r'<Data Name="([^"]*)"\s*(?:/>|>(.*?)(?:</Data>|$))', re.S)
_IP_TOKEN = re.compile(r"[0-9A-Fa-f:.]+")


def read(path: Path, limit: int | None = None) -> Iterator[Record]:
    ids = IdDeduper()
    for lineno, value in iter_json(path, allow_text=True, limit=limit):
        try:
            raw = _extract(value)
            if raw is None:
                raise ValueError("no Sysmon event found (expected EventID or <Event> XML)")
            yield _to_ecs(raw, ids)
        except (ValueError, TypeError, KeyError) as exc:
            raise fail(path, lineno, str(exc)) from exc


class _Raw:
    """A Sysmon event independent of its transport."""

    def __init__(self, eid: int, data: dict[str, Any], system: dict[str, Any]) -> None:
        self.eid = eid
        self.data = data
        self.system = system  # computer, record_id, time_created, channel, provider, ...
        self.truncated = False


def _extract(value: Any) -> _Raw | None:
    if isinstance(value, str):
        return _from_xml(value) if "<Event" in value else None
    if not isinstance(value, dict):
        return None
    for key in ("SyslogMessage", "message", "Message", "event.original"):
        text = value.get(key)
        if isinstance(text, str) and "<Event" in text and "EventID" not in value:
            raw = _from_xml(text)
            if raw is not None:
                for env in ("Computer", "HostName", "Hostname"):
                    if env in value and "computer" not in raw.system:
                        raw.system["computer"] = value[env]
                raw.system.setdefault("envelope_time", value.get("TimeGenerated"))
                return raw
    winlog = value.get("winlog")
    if isinstance(winlog, dict) and isinstance(winlog.get("event_data"), dict):
        system = {
            "computer": winlog.get("computer_name"),
            "record_id": winlog.get("record_id"),
            "channel": winlog.get("channel"),
            "provider": winlog.get("provider_name"),
            "envelope_time": value.get("@timestamp"),
        }
        eid = to_int(winlog.get("event_id"))
        if eid is None:
            raise ValueError(f"winlog.event_id is not a number: {winlog.get('event_id')!r}")
        return _Raw(eid, dict(winlog["event_data"]), system)
    if "EventID" not in value:
        return None
    eid = to_int(value["EventID"])
    if eid is None:
        raise ValueError(f"EventID is not a number: {value['EventID']!r}")
    data = {k: v for k, v in value.items() if k not in _ENVELOPE}
    system = {
        # `host` in NXLog exports is the collector (WEC), not the machine that logged the event
        "computer": value.get("Computer") or value.get("Hostname"),
        "record_id": value.get("EventRecordID", value.get("RecordNumber")),
        "channel": value.get("Channel"),
        "provider": value.get("SourceName") or value.get("ProviderName"),
        "time_created": value.get("TimeCreated"),
        "envelope_time": value.get("@timestamp"),
        "message": value.get("Message"),
    }
    return _Raw(eid, data, system)


def _from_xml(text: str) -> _Raw | None:
    start = text.find("<Event")
    xml = _BAD_ENTITY.sub(lambda m: _ENTITY_TEXT[m.group(1)], text[start:])
    end = xml.rfind("</Event>")
    try:
        root = ET.fromstring(xml[: end + len("</Event>")] if end >= 0 else xml)
    except ET.ParseError:
        return _from_broken_xml(xml)
    # Windows-exported XML carries the event namespace; Sysmon for Linux does not
    for el in root.iter():
        el.tag = el.tag.rsplit("}", 1)[-1]
    eid = to_int(root.findtext("System/EventID"))
    if eid is None:
        return None
    created = root.find("System/TimeCreated")
    provider = root.find("System/Provider")
    system = {
        "computer": root.findtext("System/Computer"),
        "record_id": root.findtext("System/EventRecordID"),
        "channel": root.findtext("System/Channel"),
        "provider": provider.get("Name") if provider is not None else None,
        "time_created": created.get("SystemTime") if created is not None else None,
    }
    data = {d.get("Name", ""): d.text or "" for d in root.iter("Data") if d.get("Name")}
    return _Raw(eid, data, system)


def _from_broken_xml(xml: str) -> _Raw | None:
    # Syslog transports cut long messages (the OTRF Log4Shell file has an EID 1 cut at 2012
    # characters, inside ParentCommandLine): salvage every complete field, keep the partial
    # last one and tag the event.
    def tag(name: str) -> str | None:
        m = re.search(rf"<{name}>([^<]*)</{name}>", xml)
        return html.unescape(m.group(1)) if m else None

    eid = to_int(tag("EventID"))
    if eid is None:
        return None
    created = re.search(r'<TimeCreated SystemTime="([^"]*)"', xml)
    provider = re.search(r'<Provider Name="([^"]*)"', xml)
    system = {
        "computer": tag("Computer"),
        "record_id": tag("EventRecordID"),
        "channel": tag("Channel"),
        "provider": provider.group(1) if provider else None,
        "time_created": created.group(1) if created else None,
    }
    data = {m.group(1): html.unescape(m.group(2) or "") for m in _DATA.finditer(xml)}
    raw = _Raw(eid, data, system)
    raw.truncated = True
    return raw


def _to_ecs(raw: _Raw, ids: IdDeduper) -> Record:
    d, s = raw.data, raw.system
    linux = "linux" in str(s.get("provider") or "").lower() or str(
        s.get("channel") or ""
    ).startswith("Linux-")
    out: Record = {}
    # UtcTime is Sysmon's own clock; the envelope times are when a shipper saw the event and
    # can be hours off (see docs/inputs.md on LSASS_campaign_06).
    for candidate in (d.get("UtcTime"), s.get("time_created"), s.get("envelope_time")):
        if candidate not in (None, "", "-"):
            out["@timestamp"] = timestamp(candidate)
            break
    else:
        raise ValueError("no timestamp (UtcTime, TimeCreated or @timestamp)")
    for created in (s.get("time_created"), s.get("envelope_time")):
        if created not in (None, "", "-"):
            out["event.created"] = timestamp(created)
            break
    out["event.code"] = str(raw.eid)
    out["event.kind"] = "event"
    out["event.module"] = "sysmon"
    out["event.dataset"] = "sysmon"
    out["event.provider"] = "Linux-Sysmon" if linux else "Microsoft-Windows-Sysmon"
    if raw.eid in _KIND:
        out["event.category"], out["event.type"] = _KIND[raw.eid]
    if s.get("record_id") not in (None, ""):
        out["event.id"] = ids(str(s["record_id"]))
        out["winlog.record_id"] = str(s["record_id"])
    put(out, "host.name", s.get("computer"))
    out["host.os.type"] = "linux" if linux else "windows"
    put(out, "winlog.channel", s.get("channel"))
    put(out, "winlog.computer_name", s.get("computer"))
    out["winlog.event_id"] = str(raw.eid)
    put(out, "message", s.get("message"))
    if raw.truncated:
        out["tags"] = ["truncated"]
    _map_fields(raw.eid, d, out)
    for name, value in d.items():
        out[f"winlog.event_data.{name}"] = value
    return out


def _map_fields(eid: int, d: dict[str, Any], out: Record) -> None:
    _process(out, "process", d.get("Image"), d.get("ProcessId"), d.get("ProcessGuid"))
    put(out, "process.command_line", d.get("CommandLine"))
    put(out, "process.working_directory", d.get("CurrentDirectory"))
    _process(
        out,
        "process.parent",
        d.get("ParentImage"),
        d.get("ParentProcessId"),
        d.get("ParentProcessGuid"),
    )
    put(out, "process.parent.command_line", d.get("ParentCommandLine"))
    _user(out, d.get("User"))
    if eid == 1 and isinstance(d.get("Hashes"), str):
        for part in d["Hashes"].split(","):
            algo, _, digest = part.partition("=")
            if digest:
                out[f"process.hash.{algo.strip().lower()}"] = digest.strip().lower()
    if eid == 3:
        put(out, "source.ip", clean_ip(d.get("SourceIp")))
        put(out, "source.port", to_int(d.get("SourcePort")))
        put(out, "source.domain", d.get("SourceHostname"))
        put(out, "destination.ip", clean_ip(d.get("DestinationIp")))
        put(out, "destination.port", to_int(d.get("DestinationPort")))
        put(out, "destination.domain", d.get("DestinationHostname"))
        if isinstance(d.get("Protocol"), str):
            put(out, "network.transport", d["Protocol"].lower())
        ipv6 = str(d.get("DestinationIsIpv6", "")).lower()
        if ipv6 in ("true", "false"):
            out["network.type"] = "ipv6" if ipv6 == "true" else "ipv4"
        initiated = str(d.get("Initiated", "")).lower()
        if initiated in ("true", "false"):
            out["network.direction"] = "egress" if initiated == "true" else "ingress"
    if eid == 22:
        out["network.protocol"] = "dns"
        put(out, "dns.question.name", d.get("QueryName"))
        ips = _answer_ips(d.get("QueryResults"))
        if ips:
            out["dns.resolved_ip"] = ips
    target = d.get("TargetFilename") or d.get("ImageLoaded")
    if isinstance(target, str) and target not in ("", "-"):
        out["file.path"] = target
        out["file.name"] = basename(target)
    put(out, "registry.path", d.get("TargetObject"))


def _process(out: Record, prefix: str, image: Any, pid: Any, guid: Any) -> None:
    if isinstance(image, str) and image not in ("", "-"):
        out[f"{prefix}.executable"] = image
        out[f"{prefix}.name"] = basename(image)
    put(out, f"{prefix}.pid", to_int(pid))
    put(out, f"{prefix}.entity_id", guid)


def _user(out: Record, user: Any) -> None:
    if not isinstance(user, str) or user in ("", "-"):
        return
    domain, sep, name = user.partition("\\")
    if sep:
        out["user.domain"] = domain
        out["user.name"] = name
    else:
        out["user.name"] = user


def _answer_ips(results: Any) -> list[str]:
    # QueryResults looks like "type:  5 github.map.fastly.net;::ffff:151.101.208.133;": CNAME
    # records carry a "type: N" prefix, addresses come bare (IPv4 as IPv4-mapped IPv6).
    if not isinstance(results, str):
        return []
    ips: list[str] = []
    for part in results.split(";"):
        token = part.strip()
        if _IP_TOKEN.fullmatch(token):
            ip = clean_ip(token)
            if ip is not None and ip not in ips:
                ips.append(ip)
    return ips
