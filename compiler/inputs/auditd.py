"""Linux audit records from auoms (the Azure Monitor audit agent) -> ECS.

Accepted shapes, one record per line:
- JSON rows of the Azure ``Syslog`` table (``SyslogMessage`` = ``type=AUOMS_EXECVE
  audit(<epoch>:<serial>): key=value ...``, ``EventData`` = the key=value part, ``Computer``);
- the same ``type=... audit(...): ...`` text as a raw line.

Every key=value pair is kept under ``auditd.data.<key>``.
"""

from __future__ import annotations

import ipaddress
import json
import re
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

_HEADER = re.compile(
    r"type=(?P<type>\S+)\s+(?:msg=)?audit\((?P<ts>\d+(?:\.\d+)?):(?P<serial>\d+)\):\s*(?P<body>.*)",
    re.S,
)
_KEY = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=")
# Free-text fields that auoms writes without escaping inner quotes and that may contain ` k=v`
# of their own; in auoms output they are followed by these keys.
_FREE_TEXT = {"cmdline", "proctitle"}
_AFTER_FREE_TEXT = re.compile(r"\s(?:redactors|containerid)=")


def read(path: Path, limit: int | None = None) -> Iterator[Record]:
    ids = IdDeduper()
    for lineno, value in iter_json(path, allow_text=True, limit=limit):
        try:
            yield _to_ecs(value, ids)
        except (ValueError, TypeError, KeyError) as exc:
            raise fail(path, lineno, str(exc)) from exc


def parse_kv(body: str) -> dict[str, Any]:
    """auoms ``key=value`` text as a dict. Values may be bare, ``"quoted"`` or JSON-ish lists
    (``path_name=["/bin/bash","/lib64/ld-linux-x86-64.so.2"]``)."""
    out: dict[str, Any] = {}
    keys = list(_KEY.finditer(body))
    i = 0
    while i < len(keys):
        m = keys[i]
        key, start = m.group(1), m.end()
        if key in _FREE_TEXT:
            # `cmdline="bash -c "{echo,...}|{bash,-i}""`: the inner quotes are not escaped, so
            # the value runs up to the trailer keys, not to the next quote.
            stop = _AFTER_FREE_TEXT.search(body, start)
            end = stop.start() if stop else len(body)
            while i + 1 < len(keys) and keys[i + 1].start() < end:
                i += 1
        else:
            end = keys[i + 1].start() if i + 1 < len(keys) else len(body)
        out[key] = _value(body[start:end].strip())
        i += 1
    return out


def _value(text: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _to_ecs(value: Any, ids: IdDeduper) -> Record:
    envelope: dict[str, Any] = value if isinstance(value, dict) else {}
    text = value if isinstance(value, str) else envelope.get("SyslogMessage")
    header = _HEADER.search(text) if isinstance(text, str) else None
    if header:
        rtype, body = header.group("type"), header.group("body")
        when: Any = header.group("ts")
    elif "EventData" in envelope:
        rtype = str(envelope.get("EventType", "")) or "UNKNOWN"
        body, when = str(envelope["EventData"]), envelope.get("TimeGenerated")
    else:
        raise ValueError("no audit record (expected 'type=... audit(<time>:<serial>): ...')")
    if when is None:
        raise ValueError("no timestamp (audit(...) header or TimeGenerated)")
    data = parse_kv(body)
    out: Record = {
        "@timestamp": timestamp(when),
        "event.kind": "event",
        "event.module": "auditd",
        "event.dataset": "auditd.log",
        "event.action": rtype.lower(),
        "host.os.type": "linux",
        "auditd.message_type": rtype,
    }
    if header:
        out["event.id"] = ids(header.group("serial"))
        out["auditd.sequence"] = int(header.group("serial"))
    put(out, "host.name", envelope.get("Computer") or envelope.get("HostName") or data.get("node"))
    put(out, "host.ip", envelope.get("HostIP"))
    put(out, "user.name", data.get("user"))
    put(out, "user.id", data.get("uid"))
    put(out, "user.effective.name", data.get("effective_user"))
    put(out, "process.pid", to_int(data.get("pid")))
    put(out, "process.parent.pid", to_int(data.get("ppid")))
    put(out, "process.working_directory", data.get("cwd"))
    success = data.get("success")
    if success in ("yes", "no"):
        out["event.outcome"] = "success" if success == "yes" else "failure"
    syscall = data.get("syscall")
    if syscall in ("execve", "execveat") or rtype.endswith("EXECVE"):
        _execve(data, out)
    elif syscall == "connect":
        _connect(data, out)
    _executable(out, data.get("exe"))
    for key, val in data.items():
        out[f"auditd.data.{key}"] = val
    return out


def _executable(out: Record, exe: Any) -> None:
    if isinstance(exe, str) and exe not in ("", "(null)"):
        out.setdefault("process.executable", exe)
        out.setdefault("process.name", basename(exe))


def _execve(data: dict[str, Any], out: Record) -> None:
    out["event.category"] = "process"
    if data.get("success") == "no":
        # A failed execve (Java walks $PATH trying /usr/local/sbin/bash, ...): `exe`, `pid` and
        # `proctitle` still describe the caller, so this is no process start.
        out["event.type"] = "info"
        put(out, "file.path", data.get("name"))
        put(out, "process.command_line", data.get("proctitle"))
        return
    out["event.type"] = "start"
    put(out, "process.command_line", data.get("cmdline"))
    put(out, "process.title", data.get("comm"))
    put(out, "process.args_count", to_int(data.get("argc")))


def _connect(data: dict[str, Any], out: Record) -> None:
    ip, port = _sockaddr(data)
    if ip is None:
        return  # unix sockets and records without an address are no network connection
    out["event.category"] = "network"
    out["event.type"] = "connection"
    out["destination.ip"] = ip
    put(out, "destination.port", port)


def _sockaddr(data: dict[str, Any]) -> tuple[str | None, int | None]:
    for ip_key, port_key in (("addr", "port"), ("daddr", "dport"), ("laddr", "lport")):
        ip = clean_ip(data.get(ip_key))
        if ip is not None:
            return ip, to_int(data.get(port_key))
    saddr = data.get("saddr")
    if not isinstance(saddr, str):
        return None, None
    if "{" in saddr or "=" in saddr:  # interpreted: "{ fam=inet laddr=10.0.0.1 lport=443 }"
        fields = dict(re.findall(r"(\w+)=(\S+?)[ }]", saddr + " "))
        return clean_ip(fields.get("laddr")), to_int(fields.get("lport"))
    try:
        raw = bytes.fromhex(saddr)
    except ValueError:
        return None, None
    family = int.from_bytes(raw[:2], "little") if len(raw) >= 2 else 0
    if family == 2 and len(raw) >= 8:  # AF_INET: port (big endian), then 4 address bytes
        return str(ipaddress.IPv4Address(raw[4:8])), int.from_bytes(raw[2:4], "big")
    if family == 10 and len(raw) >= 24:  # AF_INET6: port, flowinfo, 16 address bytes
        return clean_ip(str(ipaddress.IPv6Address(raw[8:24]))), int.from_bytes(raw[2:4], "big")
    return None, None
