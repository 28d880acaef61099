"""Zeek logs (TSV with ``#`` headers, or JSON lines) -> ECS.

The log kind (conn, ssl, dns, files, ...) comes from ``#path``, from a ``_path`` / ``@stream``
field, from the file name, or from the fields present, in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler.inputs._common import (
    IdDeduper,
    Record,
    clean_ip,
    fail,
    iter_objects,
    open_text,
    put,
    timestamp,
    to_int,
)

_KNOWN = ("conn", "ssl", "dns", "files", "http", "x509", "notice", "weird", "ssh", "smtp")
_NAME_KIND = re.compile(rf"(?:^|[^a-z])({'|'.join(_KNOWN)})(?:[^a-z]|$)")
_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
# OTRF's APT29 files replaced the dots of Zeek's field names with underscores (`id_orig_h`)
_ID_FIELDS = {f"id_{p}": f"id.{p}" for p in ("orig_h", "orig_p", "resp_h", "resp_p")}


def read(path: Path, limit: int | None = None) -> Iterator[Record]:
    ids = IdDeduper()
    with open_text(path, limit) as fh:
        first = ""
        for line in fh:
            if line.strip():
                first = line.lstrip()[0]
                break
    rows = _json_rows(path, limit) if first in ("{", "[") else _tsv_rows(path, limit)
    for lineno, kind, rec in rows:
        try:
            yield _to_ecs(kind or _guess_kind(path, rec), rec, ids)
        except (ValueError, TypeError) as exc:
            raise fail(path, lineno, str(exc)) from exc


def _json_rows(path: Path, limit: int | None) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
    for lineno, obj in iter_objects(path, limit):
        kind = obj.get("_path") or obj.get("@stream")
        rec = {_ID_FIELDS.get(k, k): v for k, v in obj.items() if not k.startswith(("@", "_"))}
        yield lineno, str(kind) if kind else None, rec


def _tsv_rows(path: Path, limit: int | None) -> Iterator[tuple[int, str | None, dict[str, Any]]]:
    sep, set_sep, empty, unset = "\t", ",", "(empty)", "-"
    kind: str | None = None
    fields: list[str] | None = None
    types: list[str] | None = None
    with open_text(path, limit) as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if line.startswith("#"):
                if line.startswith("#separator"):
                    sep = _unescape(line[len("#separator") :].strip())
                    continue
                name, _, value = line[1:].partition(sep)
                if name == "set_separator":
                    set_sep = value
                elif name == "empty_field":
                    empty = value
                elif name == "unset_field":
                    unset = value
                elif name == "path":
                    kind = value
                elif name == "fields":
                    fields, types = value.split(sep), None
                elif name == "types":
                    types = value.split(sep)
                continue  # #open, #close and unknown directives carry no events
            if fields is None:
                raise fail(path, lineno, "Zeek TSV data line before the #fields header")
            values = line.split(sep)
            if len(values) != len(fields):
                raise fail(
                    path, lineno, f"expected {len(fields)} tab-separated fields, got {len(values)}"
                )
            rec: dict[str, Any] = {}
            for i, (name, text) in enumerate(zip(fields, values, strict=True)):
                if text == unset:
                    continue
                ztype = types[i] if types and i < len(types) else ""
                try:
                    rec[name] = _convert(text, ztype, set_sep, empty)
                except ValueError as exc:
                    raise fail(path, lineno, f"field {name} ({ztype}): {exc}") from exc
            yield lineno, kind, rec


def _unescape(text: str) -> str:
    return _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _convert(text: str, ztype: str, set_sep: str, empty: str) -> Any:
    if ztype.startswith(("set[", "vector[")):
        if text == empty:
            return []
        inner = ztype[ztype.index("[") + 1 : -1]
        return [_scalar(_unescape(t), inner) for t in text.split(set_sep)]
    if text == empty:
        return ""
    return _scalar(_unescape(text), ztype)


def _scalar(text: str, ztype: str) -> Any:
    if ztype in ("count", "int", "port"):
        return int(text)
    if ztype in ("double", "interval"):
        return float(text)
    if ztype == "time":
        return float(text) if _looks_numeric(text) else text
    if ztype == "bool":
        if text not in ("T", "F"):
            raise ValueError(f"expected T or F, got {text!r}")
        return text == "T"
    if ztype == "":  # no #types header: numbers where they look like numbers
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if _looks_numeric(text):
            return float(text)
    return text


def _looks_numeric(text: str) -> bool:
    return re.fullmatch(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", text) is not None


def _guess_kind(path: Path, rec: dict[str, Any]) -> str:
    m = _NAME_KIND.search(path.name.lower())
    if m:
        return m.group(1)
    if "conn_state" in rec or "orig_ip_bytes" in rec:
        return "conn"
    if "server_name" in rec or "cipher" in rec or "ja3" in rec:
        return "ssl"
    if "query" in rec or "qtype" in rec:
        return "dns"
    if "fuid" in rec:
        return "files"
    raise ValueError(
        "cannot tell the Zeek log kind: no #path header, _path/@stream field, "
        "kind in the file name (conn, ssl, dns, ...) or telltale fields"
    )


def _to_ecs(kind: str, rec: dict[str, Any], ids: IdDeduper) -> Record:
    if "ts" not in rec:
        raise ValueError("missing ts")
    out: Record = {
        "@timestamp": timestamp(rec["ts"]),
        "event.kind": "event",
        "event.module": "zeek",
        "event.dataset": f"zeek.{kind}",
    }
    if "uid" in rec:
        # ssl/dns records reuse the uid of their conn record; the suffix keeps ids distinct when
        # several logs are evaluated together. Repeats within a file (DNS retries) get `#n`.
        out["event.id"] = ids(str(rec["uid"]) if kind == "conn" else f"{rec['uid']}:{kind}")
    elif "fuid" in rec:
        out["event.id"] = ids(str(rec["fuid"]))
    put(out, "source.ip", clean_ip(rec.get("id.orig_h")))
    put(out, "source.port", to_int(rec.get("id.orig_p")))
    put(out, "destination.ip", clean_ip(rec.get("id.resp_h")))
    put(out, "destination.port", to_int(rec.get("id.resp_p")))
    if isinstance(rec.get("proto"), str):
        out["network.transport"] = rec["proto"].lower()
    mapper = _MAPPERS.get(kind)
    if mapper is not None:
        mapper(rec, out)
    for name, value in rec.items():
        out[f"zeek.{kind}.{name}"] = value
    return out


def _conn(rec: dict[str, Any], out: Record) -> None:
    out["event.category"] = "network"
    out["event.type"] = "connection"
    put(out, "network.protocol", rec.get("service"))
    # ECS maps the IP-level counts; orig_bytes/resp_bytes (payload, from TCP sequence numbers)
    # stay available as zeek.conn.* and differ a lot when the sensor dropped packets.
    put(out, "source.bytes", to_int(rec.get("orig_ip_bytes")))
    put(out, "destination.bytes", to_int(rec.get("resp_ip_bytes")))
    put(out, "source.packets", to_int(rec.get("orig_pkts")))
    put(out, "destination.packets", to_int(rec.get("resp_pkts")))
    duration = rec.get("duration")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        out["event.duration"] = round(duration * 1_000_000_000)  # ECS: nanoseconds


def _ssl(rec: dict[str, Any], out: Record) -> None:
    out["event.category"] = "network"
    out["event.type"] = "protocol"
    out["network.protocol"] = "tls"
    put(out, "tls.client.server_name", rec.get("server_name"))
    put(out, "destination.domain", rec.get("server_name"))
    version = rec.get("version")
    m = re.fullmatch(r"(TLS|SSL)v(\d)(\d)?", version) if isinstance(version, str) else None
    if m:
        out["tls.version_protocol"] = m.group(1).lower()
        out["tls.version"] = f"{m.group(2)}.{m.group(3) or 0}"
    put(out, "tls.cipher", rec.get("cipher"))
    put(out, "tls.client.ja3", rec.get("ja3"))
    put(out, "tls.server.ja3s", rec.get("ja3s"))
    for flag in ("resumed", "established"):
        if isinstance(rec.get(flag), bool):
            out[f"tls.{flag}"] = rec[flag]


def _dns(rec: dict[str, Any], out: Record) -> None:
    out["event.category"] = "network"
    out["event.type"] = "protocol"
    out["network.protocol"] = "dns"
    put(out, "dns.question.name", rec.get("query"))
    put(out, "dns.question.type", rec.get("qtype_name"))
    put(out, "dns.response_code", rec.get("rcode_name"))
    put(out, "dns.id", rec.get("trans_id"))
    answers = rec.get("answers")
    if isinstance(answers, str):  # JSON logs written without the set type
        answers = answers.split(",")
    if isinstance(answers, list):
        ips = [ip for ip in (clean_ip(a) for a in answers) if ip is not None]
        if ips:
            out["dns.resolved_ip"] = ips


def _files(rec: dict[str, Any], out: Record) -> None:
    out["event.category"] = "file"
    out["event.type"] = "info"
    for algo in ("md5", "sha1", "sha256"):
        put(out, f"file.hash.{algo}", rec.get(algo))
    put(out, "file.mime_type", rec.get("mime_type"))
    put(out, "file.size", to_int(rec.get("total_bytes", rec.get("seen_bytes"))))


_MAPPERS = {"conn": _conn, "ssl": _ssl, "dns": _dns, "files": _files}
