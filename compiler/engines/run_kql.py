"""Execute compiled Sentinel KQL over a fixture with ``duckdb-kql`` (KQL run on DuckDB).

``run(loaded, fixture, artifact)`` loads the fixture's events as the tables the artifact's
profile reads, runs the query and returns its rows as canonical alerts, for comparison with the
reference evaluator (``compiler.canonical.diff``).

**Tables.** Each event is reverse-mapped (ECS -> columns, ``backends/profiles/<profile>.yml``)
into every table whose logsource it belongs to, with the column types of
``tests/oracles/kusto/schemas.json``: MDE ``DeviceProcessEvents`` (``ActionType`` ProcessCreated),
``DeviceNetworkEvents``, ``DeviceEvents`` (``DnsQueryResponse``, answers in ``AdditionalFields``),
``DeviceLogonEvents`` (``event.category: authentication``) and ``DeviceInfo`` (one row per device
and ``OSPlatform``); ASIM tables behind the parser functions ``_Im_ProcessCreate`` /
``_Im_ProcessTerminate`` / ``_Im_NetworkSession`` / ``_Im_Dns`` / ``_Im_Authentication``; and the
tables of Sigma's log sources (``compiler/engines/kql_sources.py``: MDE ``DeviceFileEvents`` /
``DeviceRegistryEvents`` / ``DeviceImageLoadEvents`` per ``ActionType``, Sentinel's
``SecurityEvent`` and ``WindowsEvent``), an event in one row per table at most. A column
the profile computes is filled so that the profile's expression gives the ECS value back
(``NetworkDirection`` from ``ActionType``, ``SrcProcessFilename`` from ``SrcProcessName``, a logon's
``EventOutcome`` from MDE ``ActionType`` / ASIM ``EventResult``, ...).
MDE has no process GUID: a process is ``DeviceId|ProcessId|ProcessCreationTime``, so every
``process.entity_id`` gets a creation time of its own and the engine's id strings are mapped back
to the fixture's entity ids in the results; every row of an entity id carries that entity's pid
(from its own start event, else the first seen), since MDE cannot pair one process GUID with two
pids as real Sysmon data sometimes does. Sentinel's ``_GetWatchlist(alias)`` is a stored
function over one table holding the analytic's lookup CSVs, and the Public Suffix List
watchlist when the query reads it (``SearchKey`` beside the CSV's columns). Strings are never
null in Kusto: an absent string is ``""``.

**Engine gaps** (duckdb-kql 1.1.2), bridged without changing what the query means:
``project-away`` with wildcards is expanded to the matching columns (read from the engine at that
point of the query); ``count_distinct``/``count_distinctif`` are its exact ``dcount``;
``minif``, ``maxif`` and ``make_list_if`` are added with Kusto's documented semantics;
``strcat_array``, ``new_guid``, ``unicode_codepoints_to_string``, ``ipv4_is_in_any_range`` and
``ipv6_is_in_any_range`` are added to its function table with Kusto's documented semantics (an
address that does not parse gives null).

Every query is validated with Kusto.Language first by the differential test: duckdb-kql accepts
some invalid KQL (``where X = 1``) and runs it wrongly.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from backends.base import Artifact
from backends.profiles import FieldProfile, load_profile
from backends.sentinel import psl
from backends.sentinel.streams import with_row_numbers
from compiler import canonical, engines, ir
from compiler.canonical import CanonicalAlert
from compiler.engines import kql_scalar, kql_scan, kql_sources
from compiler.evaluator.model import Event
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES
from compiler.lower import Loaded
from compiler.testing import fixture_events

EXTRA = "kql"
REQUIREMENT = "duckdb-kql[all]==1.1.2"
SCHEMAS = Path(__file__).resolve().parents[2] / "tests" / "oracles" / "kusto" / "schemas.json"
_EPOCH = dt.datetime(1970, 1, 1)
# MDE ProcessCreationTime of the n-th distinct entity id: far from any fixture time
_CTIME_BASE_MS = 946_684_800_000  # 2000-01-01


class EngineUnavailable(engines.EngineUnavailable):
    def __init__(self, extra: str = EXTRA) -> None:
        super().__init__(
            f"duckdb-kql is not installed: pip install '{REQUIREMENT}' "
            f"(the siemc '{extra}' extra) to execute KQL"
        )
        self.extra = extra


def _require() -> Any:
    try:
        import duckdb_kql
    except ImportError:
        raise EngineUnavailable() from None
    _extend_engine()
    return duckdb_kql


# --------------------------------------------------------------------------- engine gaps
def _in_any_range(version: int, ip: Any, ranges: Any) -> bool | None:
    """Kusto ipv4_is_in_any_range / ipv6_is_in_any_range: null when the address (or a range)
    does not parse as that version (an IPv4 address is accepted by the IPv6 function, as its
    IPv4-mapped form)."""
    if ip is None or ranges is None:
        return None
    try:
        nets = json.loads(ranges) if isinstance(ranges, str) else list(ranges)
    except ValueError:
        return None
    addr = _parse_addr(version, str(ip))
    if addr is None:
        return None
    for n in nets:
        try:
            net = ipaddress.ip_network(_mapped(version, str(n)), strict=False)
        except ValueError:
            return None
        if net.version == version and addr in net:
            return True
    return False


def _mapped(version: int, text: str) -> str:
    if version == 6 and re.fullmatch(r"\d+\.\d+\.\d+\.\d+(/\d+)?", text):
        base, _, bits = text.partition("/")
        return f"::ffff:{base}" + (f"/{96 + int(bits)}" if bits else "")
    return text


def _parse_addr(version: int, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_interface(_mapped(version, text.strip())).ip
    except ValueError:
        return None
    return addr if addr.version == version else None


def _ip4(ip: Any, ranges: Any) -> bool | None:
    return _in_any_range(4, ip, ranges)


def _ip6(ip: Any, ranges: Any) -> bool | None:
    return _in_any_range(6, ip, ranges)


def _set_difference(a: str | None, b: str | None) -> str | None:
    diff = kql_scalar.FUNCTIONS["set_difference"](
        json.loads(a) if a is not None else None, json.loads(b) if b is not None else None
    )
    return None if diff is None else json.dumps(diff)


@functools.cache
def _extend_engine() -> None:
    from duckdb_kql.translate import functions as f

    add = {
        "strcat_array": f.FunctionSpec(
            "strcat_array",
            "template",
            "array_to_string(list_transform(CAST(to_json({0}) AS JSON[]), "
            "lambda _x: CASE WHEN json_type(_x) = 'VARCHAR' THEN json_extract_string(_x, '$') "
            "ELSE CAST(_x AS VARCHAR) END), {1})",
            (2,),
        ),
        # new_guid(): "Returns a random UUID (GUID)", one per row
        # (learn.microsoft.com/kusto/query/new-guid-function); DuckDB's uuid() is volatile, so
        # it is evaluated per row as well
        "new_guid": f.FunctionSpec("new_guid", "template", "CAST(uuid() AS VARCHAR)", (0,)),
        # unicode_codepoints_to_string(n): the character of one code point
        # (learn.microsoft.com/kusto/query/unicode-codepoints-to-string-function); the backend
        # passes one integer per call
        "unicode_codepoints_to_string": f.FunctionSpec(
            "unicode_codepoints_to_string", "template", "chr(CAST({0} AS INTEGER))", (1,)
        ),
        "ipv4_is_in_any_range": f.FunctionSpec(
            "ipv4_is_in_any_range",
            "template",
            "siemc_ipv4_in_any(CAST({0} AS VARCHAR), CAST(to_json({1}) AS VARCHAR))",
            (2,),
        ),
        "ipv6_is_in_any_range": f.FunctionSpec(
            "ipv6_is_in_any_range",
            "template",
            "siemc_ipv6_in_any(CAST({0} AS VARCHAR), CAST(to_json({1}) AS VARCHAR))",
            (2,),
        ),
        # set_difference(a, b): the distinct values of a not in b (learn.microsoft.com/kusto/
        # query/set-difference-function), the scan harness' implementation
        "set_difference": f.FunctionSpec(
            "set_difference",
            "template",
            "siemc_set_difference(CAST(to_json({0}) AS VARCHAR), CAST(to_json({1}) AS VARCHAR))",
            (2,),
        ),
    }
    for name, spec in add.items():
        f.SCALAR_FUNCTIONS.setdefault(name, spec)
    aggs = f.AGGREGATE_FUNCTIONS
    for name, same in (("count_distinct", "dcount"), ("count_distinctif", "dcountif")):
        if name not in aggs:
            aggs[name] = f.AggregateSpec(name, aggs[same].template, aggs[same].arities)
    # minif/maxif: the min/max of the rows the predicate is true for, null when there is none
    # (https://learn.microsoft.com/kusto/query/minif-aggregation-function); make_list_if: the
    # non-null values of those rows, [] when there is none, as make_list
    # (https://learn.microsoft.com/kusto/query/make-list-if-aggregation-function)
    for name, template, arities in (
        ("minif", "min({0}) FILTER (WHERE {1})", (2,)),
        ("maxif", "max({0}) FILTER (WHERE {1})", (2,)),
        ("make_list_if", "coalesce(list({0}) FILTER (WHERE ({1}) AND {0} IS NOT NULL), [])", (2,)),
    ):
        aggs.setdefault(name, f.AggregateSpec(name, template, arities))


def _connect(dk: Any) -> Any:
    con = dk.connect()
    for name, fn in (("siemc_ipv4_in_any", _ip4), ("siemc_ipv6_in_any", _ip6)):
        con.create_function(name, fn, ["VARCHAR", "VARCHAR"], "BOOLEAN", null_handling="special")
    con.create_function(
        "siemc_set_difference", _set_difference, ["VARCHAR", "VARCHAR"], "JSON",
        null_handling="special",
    )  # fmt: skip
    return con


# --------------------------------------------------------------------------- tables
# (table, logsource entry of the profile, ECS condition, constant columns)
_IS_START = LOGSOURCE_CATEGORIES["process_creation"]
_IS_END = ir.And((ir.Eq("event.category", ("process",)), ir.Eq("event.type", ("end",))))
_IS_NET = ir.Or((LOGSOURCE_CATEGORIES["network_connection"], LOGSOURCE_CATEGORIES["network_flow"]))
_IS_DNS = LOGSOURCE_CATEGORIES["dns_query"]
_IS_AUTH = ir.Eq("event.category", ("authentication",))


def _zeek(log: str) -> ir.Predicate:
    return ir.And((ir.Eq("event.module", ("zeek",)), ir.Eq("event.dataset", (f"zeek.{log}",))))


ROUTES: dict[str, list[tuple[str, str, ir.Predicate, dict[str, Any]]]] = {
    "mde": [
        ("DeviceProcessEvents", "process_creation", _IS_START, {"ActionType": "ProcessCreated"}),
        ("DeviceNetworkEvents", "network_connection", _IS_NET, {}),
        ("DeviceEvents", "dns_query", _IS_DNS, {"ActionType": "DnsQueryResponse"}),
        ("DeviceLogonEvents", "event.category=authentication", _IS_AUTH, {}),
        *kql_sources.MDE_ROUTES,
    ],
    "asim": [
        ("_Im_ProcessCreate", "process_creation", _IS_START, {"EventType": "ProcessCreated"}),
        ("_Im_ProcessTerminate", "event.category=process", _IS_END,
         {"EventType": "ProcessTerminated"}),
        ("_Im_NetworkSession", "network_connection", _IS_NET, {}),
        ("_Im_Dns", "dns_query", _IS_DNS, {}),
        ("_Im_Authentication", "event.category=authentication", _IS_AUTH, {}),
        ("corelight_conn", "zeek/conn", _zeek("conn"), {}),
        ("corelight_ssl", "zeek/ssl", _zeek("ssl"), {}),
        ("corelight_dns", "zeek/dns", _zeek("dns"), {}),
        *kql_sources.ASIM_ROUTES,
    ],
}  # fmt: skip
# Corelight's parser functions keep one row per Zeek uid, the latest (`summarize
# arg_max(TimeGenerated, *) by uid`, Azure-Sentinel Solutions/Corelight/Parsers)
_ONE_ROW_PER_UID = frozenset({"corelight_conn", "corelight_ssl", "corelight_dns"})
_OS = {"mde": {"windows": "Windows10", "linux": "Linux", "macos": "macOS"},
       "asim": {"windows": "Windows", "linux": "Linux", "macos": "macOS"}}  # fmt: skip
_PRODUCT = {"zeek": "Zeek", "sysmon": "Sysmon"}
_MDE_DIRECTION = {"ingress": "InboundConnectionAccepted", "egress": "ConnectionSuccess"}
_ASIM_DIRECTION = {"egress": "Outbound", "ingress": "Inbound", "internal": "Local"}
# event.outcome -> the logon result column the profiles compute it from (an unknown outcome is
# MDE's LogonAttempted, ASIM's NA)
_MDE_OUTCOME = {"success": "LogonSuccess", "failure": "LogonFailed"}
_ASIM_OUTCOME = {"success": "Success", "failure": "Failure"}
# MDE process identities: unique-id column -> (pid column, creation-time column)
_MDE_IDS = {
    "ProcessUniqueId": ("ProcessId", "ProcessCreationTime"),
    "InitiatingProcessUniqueId": ("InitiatingProcessId", "InitiatingProcessCreationTime"),
    "InitiatingProcessParentUniqueId": (
        "InitiatingProcessParentId",
        "InitiatingProcessParentCreationTime",
    ),
}
_ENTITY_PIDS = (
    ("process.entity_id", "process.pid"),
    ("process.parent.entity_id", "process.parent.pid"),
)
_IS_START_EVENT = compile_predicate(_IS_START, {})
# MDE tables whose rows carry the initiating process, and its columns -> the ECS field
_CARRIERS = frozenset(
    {
        "DeviceNetworkEvents",
        "DeviceEvents",
        "DeviceLogonEvents",
        "DeviceFileEvents",
        "DeviceRegistryEvents",
        "DeviceImageLoadEvents",
    }
)
_INITIATING = {
    "InitiatingProcessFileName": "process.name",
    "InitiatingProcessFolderPath": "process.executable",
    "InitiatingProcessCommandLine": "process.command_line",
    "InitiatingProcessParentFileName": "process.parent.name",
    "InitiatingProcessParentId": "process.parent.pid",
    "InitiatingProcessAccountName": "user.name",
    "InitiatingProcessAccountDomain": "user.domain",
}
_SQL_TYPES = {"string": "VARCHAR", "long": "BIGINT", "int": "INTEGER", "real": "DOUBLE",
              "datetime": "TIMESTAMP", "dynamic": "JSON", "bool": "BOOLEAN"}  # fmt: skip


@functools.cache
def _schemas() -> dict[str, dict[str, str]]:
    data = json.loads(SCHEMAS.read_text(encoding="utf-8"))
    return {**data["tables"], **data["functions"]}


def _ts(ms: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(milliseconds=ms)


def _ms(v: Any) -> int | None:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return int((v - _EPOCH) // dt.timedelta(milliseconds=1))
    return None


def _cell(v: Any, ty: str) -> Any:
    """An ECS value as a value of a Kusto column type (what an ingestion would store)."""
    if v is None or (isinstance(v, list) and not v):
        return "" if ty == "string" else None
    if ty == "dynamic":
        return json.dumps(v)
    if isinstance(v, list):
        v = v[0] if len(v) == 1 else json.dumps(v)
    if ty == "string":
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)
    if ty in ("long", "int", "real"):
        try:
            n = float(str(v).strip()) if not isinstance(v, bool) else None
        except ValueError:
            n = None
        if n is None:
            return None
        # ingestion fills null for a floating point value in an int column (Azure Data
        # Explorer, "Ingestion behavior of invalid data")
        return n if ty == "real" else int(n) if n.is_integer() else None
    if ty == "bool":
        return v if isinstance(v, bool) else None
    return v


class Tables:
    """The fixture's events as the profile's tables (rows of column -> value)."""

    def __init__(self, profile: FieldProfile, events: list[Event], analytic: ir.Analytic):
        self.profile = profile
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.entity_ctime: dict[str, dt.datetime] = {}
        self.uids: dict[str, str] = {}  # MDE unique-id string -> the fixture's entity id
        # a process' creation time is its start event's time (MDE rows carry it); an entity
        # without a start in the fixture started before it (a time far before any fixture)
        self.starts: dict[str, Event] = {}
        for ev in events:
            e = ev.fields.get("process.entity_id")
            if isinstance(e, str) and e and _IS_START_EVENT(ev.fields):
                self.starts.setdefault(e, ev)
        self.parents = _parent_starts(events, self.starts)
        self.devices: dict[tuple[str, str], None] = {}
        # MDE identifies a process by DeviceId|ProcessId|ProcessCreationTime, so every row of an
        # entity id carries that entity's pid: the one its own start event gives, else the first
        # seen (real data can pair an entity id with another pid, or omit the pid)
        self.pids: dict[str, Any] = {}
        for own in (True, False):
            for ev in events:
                for ent, pid in _ENTITY_PIDS[:1] if own else _ENTITY_PIDS:
                    e, p = ev.fields.get(ent), ev.fields.get(pid)
                    if own and ev.fields.get("event.type") != "start":
                        continue
                    if isinstance(e, str) and e and p is not None:
                        self.pids.setdefault(e, p)
        lookups: Mapping[str, ir.Lookup] = {lk.name: lk for lk in analytic.lookups}
        routes = [(t, k, compile_predicate(p, lookups), c) for t, k, p, c in ROUTES[profile.name]]
        for ev in events:
            tables: set[str] = set()  # an event is one row of a table, its first route's
            for table, key, member, const in routes:
                if table not in tables and member(ev.fields):
                    tables.add(table)
                    self.rows.setdefault(table, []).append(self.row(ev, table, key, const))
        for table in _ONE_ROW_PER_UID & set(self.rows):
            self.rows[table] = _latest_per_uid(self.rows[table])
        self.watchlist = _watchlist(analytic)

    def _ctime(self, entity: Any) -> dt.datetime | None:
        if entity is None or entity == "":
            return None
        e = str(entity)
        if e not in self.entity_ctime:
            start = self.starts.get(e)
            far = _ts(_CTIME_BASE_MS + 1000 * len(self.entity_ctime))
            self.entity_ctime[e] = _ts(start.ts) if start is not None else far
        return self.entity_ctime[e]

    def row(self, ev: Event, table: str, key: str, const: dict[str, Any]) -> dict[str, Any]:
        prof, f = self.profile, ev.fields
        src = prof.source(key) or {}
        fields = {**prof.fields, **(src.get("fields") or {})}
        computed = src.get("computed") or {}
        row: dict[str, Any] = dict(const)
        for ecs, col in fields.items():
            # two ECS names of one column (user.name and winlog.event_data.TargetUserName on
            # SecurityEvent): an event carries it under either
            if ecs in f and col not in computed and row.get(col) is None:
                row[col] = f[ecs]
        row["Timestamp" if prof.name == "mde" else "TimeGenerated"] = _ts(ev.ts)
        row["TimeGenerated"] = _ts(ev.ts)
        back = {col: f.get(ecs) for ecs, col in fields.items() if col in computed}
        os_type = str(f.get("host.os.type") or "").lower()
        if prof.name == "mde":
            dev = f.get("host.id") or (f"dev-{f['host.name']}" if f.get("host.name") else "")
            row["DeviceId"] = dev
            if os_type in _OS["mde"]:
                self.devices[(str(dev), _OS["mde"][os_type])] = None
            start = self.starts.get(str(back.get("InitiatingProcessUniqueId") or ""))
            if table in _CARRIERS and start is not None:
                # the row carries its initiating process' attributes (MDE fills them from the
                # process): where the event does not say, the process' start event does
                for col, ecs in _INITIATING.items():
                    if row.get(col) in (None, "") and start.fields.get(ecs) is not None:
                        row[col] = start.fields[ecs]
                parent = start.fields.get("process.parent.entity_id")
                if "InitiatingProcessParentUniqueId" in back and back[
                    "InitiatingProcessParentUniqueId"
                ] in (None, ""):
                    back["InitiatingProcessParentUniqueId"] = parent
            parent = self.parents.get(id(ev)) if table == "DeviceProcessEvents" else None
            if parent is not None:
                # a process-creation row's Initiating* columns are its parent's, which MDE
                # fills from its own record of that process (advanced-hunting-
                # deviceprocessevents-table), not from what the child's event says about it
                for col, ecs in _INITIATING.items():
                    if parent.fields.get(ecs) is not None:
                        row[col] = parent.fields[ecs]
                if parent.fields.get("process.pid") is not None:
                    row["InitiatingProcessId"] = parent.fields["process.pid"]
            for uid, (pid, ctime) in _MDE_IDS.items():
                ent = back.get(uid)
                if uid in back:
                    row[ctime] = self._ctime(ent)
                    if uid == "InitiatingProcessUniqueId" and parent is not None and not ent:
                        row[ctime] = _ts(parent.ts)
                    if isinstance(ent, str) and ent in self.pids:
                        row[pid] = self.pids[ent]
                    if isinstance(ent, str) and ent:
                        text = _cell(row.get(pid), "long")
                        when = _kusto_time(self.entity_ctime[ent])
                        self.uids[f"{dev}|{'' if text is None else text}|{when}"] = ent
            if "RemoteHost" in back:
                row["RemoteUrl"] = back["RemoteHost"]
            if "NetworkDirection" in back:
                d = str(back["NetworkDirection"] or "").lower()
                row["ActionType"] = _MDE_DIRECTION.get(d, "ListeningConnectionCreated")
            if "EventOutcome" in back:
                o = str(back["EventOutcome"] or "").lower()
                row["ActionType"] = _MDE_OUTCOME.get(o, "LogonAttempted")
            if "RegistryPath" in back:
                row.update(kql_sources.registry_columns(str(back["RegistryPath"] or ""), row))
            extra = {c: back[c] for c in ("DnsQueryString", "DnsQueryResult") if back.get(c)}
            if extra:
                row["AdditionalFields"] = extra
        elif table == "WindowsEvent":
            row["EventData"] = kql_sources.event_data(prof, f)
        else:
            if os_type in _OS["asim"]:
                row["DvcOs"] = _OS["asim"][os_type]
            module = str(f.get("event.module") or "").lower()
            if module in _PRODUCT:
                row["EventProduct"] = _PRODUCT[module]
            if back.get("SrcProcessFilename") is not None and not row.get("SrcProcessName"):
                row["SrcProcessName"] = back["SrcProcessFilename"]
            if "NetworkDirectionEcs" in back:
                d = str(back["NetworkDirectionEcs"] or "").lower()
                row["NetworkDirection"] = _ASIM_DIRECTION.get(d, "NA")
            if "EventOutcome" in back:
                o = str(back["EventOutcome"] or "").lower()
                row["EventResult"] = _ASIM_OUTCOME.get(o, "NA")
            # Windows writes "-" for no address; the profile reads that as none
            if table == "SecurityEvent" and (back.get("SrcIpAddr") or row.get("IpAddress") is None):
                row["IpAddress"] = back.get("SrcIpAddr") or "-"
        return row

    def create(self, con: Any) -> dict[str, str]:
        """Create the tables; returns the MDE unique-id strings the engine builds -> entity id."""
        schemas = _schemas()
        names = list(dict.fromkeys(t for t, _, _, _ in ROUTES[self.profile.name]))
        if self.profile.name == "mde":
            names.append("DeviceInfo")
            self.rows["DeviceInfo"] = [
                {"DeviceId": d, "OSPlatform": os, "Timestamp": _EPOCH} for d, os in self.devices
            ]
        for name in names:
            _create(con, _table(name), schemas[name], self.rows.get(name, []))
        wl_cols = {"WatchlistAlias": "string", **{c: "string" for c in self.watchlist[0]}}
        _create(con, "Watchlists", wl_cols, self.watchlist[1])
        return self.uids if self.profile.name == "mde" else {}


def _parent_starts(events: list[Event], starts: Mapping[str, Event]) -> dict[int, Event]:
    """Each event's parent process' start event in the fixture (by ``id()`` of the event): the
    start of its ``process.parent.entity_id``, or without one the latest start before it in
    input order of its ``process.parent.pid`` on its host (a live process' PID names it alone
    on its host). Events whose parent's start is not in the fixture are left out."""
    latest: dict[tuple[str, str], Event] = {}
    out: dict[int, Event] = {}
    for ev in events:
        f = ev.fields
        host = str(f.get("host.id") or f.get("host.name") or "")
        ent, ppid = f.get("process.parent.entity_id"), f.get("process.parent.pid")
        parent = None
        if isinstance(ent, str) and ent:
            parent = starts.get(ent)
        elif ppid is not None and host:
            parent = latest.get((host, str(_cell(ppid, "long"))))
        if parent is not None and parent is not ev:
            out[id(ev)] = parent
        pid = f.get("process.pid")
        if pid is not None and host and _IS_START_EVENT(f):
            latest[(host, str(_cell(pid, "long")))] = ev
    return out


def _latest_per_uid(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A Corelight parser's rows: the latest of each uid (the later in input order on a tie,
    which arg_max leaves unspecified). A row without a uid stands for itself: every Zeek
    record has one, only synthetic fixtures lack it."""
    latest: dict[str, int] = {}
    for i, r in enumerate(rows):
        uid = str(r.get("uid") or "")
        if uid and (uid not in latest or rows[latest[uid]]["TimeGenerated"] <= r["TimeGenerated"]):
            latest[uid] = i
    keep = set(latest.values())
    return [r for i, r in enumerate(rows) if i in keep or not r.get("uid")]


def _table(name: str) -> str:
    """The engine table behind a parser function (ASIM's and Corelight's are functions)."""
    return "__" + name.lstrip("_") if name.startswith("_Im_") or name in _ONE_ROW_PER_UID else name


def _create(con: Any, name: str, cols: dict[str, str], rows: list[dict[str, Any]]) -> None:
    decl = ", ".join(f'"{c}" {_SQL_TYPES.get(t, "VARCHAR")}' for c, t in cols.items())
    con.execute(f'CREATE TABLE "{name}" ({decl})')
    if rows:
        marks = ", ".join("?" for _ in cols)
        con.executemany(
            f'INSERT INTO "{name}" VALUES ({marks})',
            [[_cell(r.get(c), t) for c, t in cols.items()] for r in rows],
        )


def _watchlist(
    a: ir.Analytic, extra: Iterable[ir.Lookup] = ()
) -> tuple[list[str], list[dict[str, Any]]]:
    """The rows ``_GetWatchlist(alias)`` returns for the analytic's lookups and ``extra``
    watchlists: ``SearchKey`` (the search key's value, here the first CSV column) beside the
    CSV's columns (https://learn.microsoft.com/azure/sentinel/watchlists-queries), and a lookup's
    CSV row number as siemc export writes it (backends/sentinel/streams.py). A watchlist keeps
    no row order: the rows are stored against the CSV's order, so a query that relies on it
    (take_any of a repeated key) shows it."""
    cols = ["SearchKey"]
    rows: list[dict[str, Any]] = []
    for lk in (*(with_row_numbers(x) for x in a.lookups), *extra):
        cols += [c for c in lk.columns if c not in cols]
        for r in reversed(lk.rows):
            rows.append(
                {
                    "WatchlistAlias": lk.name,
                    "SearchKey": r[0],
                    **dict(zip(lk.columns, r, strict=True)),
                }
            )
    return cols, rows


def _functions(profile: str) -> list[str]:
    out = ["function _GetWatchlist(alias:string) { Watchlists | where WatchlistAlias == alias }"]
    if profile == "asim":
        out += [
            f"function {t}() {{ {_table(t)} }}"
            for t in dict.fromkeys(t for t, _, _, _ in ROUTES["asim"])
            if t.startswith("_Im_") or t in _ONE_ROW_PER_UID
        ]
    return out


# --------------------------------------------------------------------------- query rewrite
# a name, or a quoted one (`let ['set'] =`: the backend quotes names that are KQL keywords)
_LET = re.compile(r"^let (\w+|\['[^'\n]*'\]) = ", re.M)
_AWAY = re.compile(r"\n\| project-away ([^\n;]*\*[^\n;]*)")


def _statements(query: str) -> list[str]:
    """The ``let`` statements and the final query (the backend writes one statement per
    ``let`` at the start of a line, ending with ``;``)."""
    starts = [m.start() for m in _LET.finditer(query)]
    if not starts:
        return [query]
    parts = [query[a:b] for a, b in zip(starts, [*starts[1:], None], strict=True)]
    last = parts[-1]
    end = last.rfind(";\n")
    return [*parts[:-1], last[: end + 2], last[end + 2 :]] if end >= 0 else parts


def expand_wildcards(query: str, columns_of: Any) -> str:
    """``project-away a*`` -> the columns matching ``a*`` at that point (duckdb-kql 1.1.2 has
    only the plain form). ``columns_of(text)`` returns the output columns of a query text."""
    stmts = _statements(query)
    for i, st in enumerate(stmts):
        while m := _AWAY.search(st):
            head = st[: m.start()]
            probe = head.split(" = ", 1)[1] if _LET.match(head) else head
            cols = columns_of("".join(stmts[:i]) + probe + "\n| take 0")
            keep: list[str] = []
            for pat in (p.strip() for p in m.group(1).split(",")):
                rx = re.compile(re.escape(pat).replace(r"\*", ".*") + "$")
                keep += [c for c in cols if rx.match(c) and c not in keep]
            away = "\n| project-away " + ", ".join(keep) if keep else ""
            st = head + away + st[m.end() :]
        stmts[i] = st
    return "".join(stmts)


_KQL_SQL = {**_SQL_TYPES, "timespan": "INTERVAL", "double": "DOUBLE"}


def _run_scans(
    query: str, con: Any, dk: Any, opts: dict[str, Any], reverse_ties: bool = True
) -> str:
    """Each ``let`` statement ending in a partitioned ``scan`` (which duckdb-kql cannot run) is
    executed here: the statements before it and its head run in the engine, the partition and
    scan in Python (compiler/engines/kql_scan.py), and its rows are loaded as a table that
    replaces the statement's body, so the rest of the query runs in the engine again."""
    stmts = _statements(query)
    for i, st in enumerate(stmts):
        m = _LET.match(st)
        found = kql_scan.split_partition(st[m.end() :].rstrip().rstrip(";")) if m else None
        if m is None or found is None:
            continue
        head, part = found
        rel = dk.kql(con, "".join(stmts[:i]) + head, **opts)
        cols, types = list(rel.columns), [str(ty) for ty in rel.types]
        rows = [
            {c: json.loads(v) if ty == "JSON" and isinstance(v, str) else v
             for c, ty, v in zip(cols, types, r, strict=True)}
            for r in rel.fetchall()
        ]  # fmt: skip
        out = kql_scan.run_partitioned(rows, part, reverse_ties)
        sc = part.scan
        decl = {c: _KQL_SQL[ty] for c, ty, _ in sc.declare}
        if sc.match_id:
            decl[sc.match_id] = "BIGINT"
        schema = {**dict(zip(cols, types, strict=True)), **decl}
        table = f"__scan_{i}"
        columns = ", ".join(f'"{c}" {t}' for c, t in schema.items())
        con.execute(f'CREATE TABLE "{table}" ({columns})')
        if out:
            con.executemany(
                f'INSERT INTO "{table}" VALUES ({", ".join("?" for _ in schema)})',
                [[json.dumps(r.get(c)) if t == "JSON" else r.get(c) for c, t in schema.items()]
                 for r in out],
            )  # fmt: skip
        stmts[i] = f"let {m.group(1)} = {table};\n"
    return "".join(stmts)


# --------------------------------------------------------------------------- results
def key_columns(loaded: Loaded, artifact: Artifact) -> list[tuple[str, str]]:
    """(key field as the evaluator names it, output column) of the detection."""
    from backends import get_backend
    from backends.sentinel import KqlBackend

    be = get_backend("kql")
    assert isinstance(be, KqlBackend)
    a = loaded.analytic
    be.compile(a, profile=artifact.profile, allow_approximate=True)
    prof = load_profile(artifact.profile)

    def col(stream: str, name: str) -> str:
        sc = be.scopes[stream]
        return sc.cols.get(name) or sc.source.fields.get(name) or prof.map_field(name)

    d = a.detection
    if isinstance(d, ir.Aggregate):
        return [(k, col(d.stream, k)) for k in d.keys]
    if isinstance(d, ir.Sequence | ir.Cooccurrence | ir.Absence):
        first = d.steps[0] if isinstance(d, ir.Sequence) else (
            d.members[0] if isinstance(d, ir.Cooccurrence) else d.first
        )  # fmt: skip
        return [(k, "__k_" + re.sub(r"\W", "_", col(first.stream, k))) for k in first.keys]
    return []


def _kusto_time(t: dt.datetime) -> str:
    """A datetime as Kusto's strcat() writes it (2024-03-10T10:00:00.1230000Z)."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}0Z"


def _value(v: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(v, str) and v in ids:
        return ids[v]
    if isinstance(v, dt.datetime):
        return _ms(v)
    if v is not None and type(v).__name__ == "Decimal":
        return float(v)
    return v


def to_alerts(
    analytic: ir.Analytic,
    columns: list[str],
    rows: Iterable[tuple[Any, ...]],
    keys: list[tuple[str, str]],
    ids: Mapping[str, str],
) -> list[CanonicalAlert]:
    d = analytic.detection
    measures: list[str] = []
    if isinstance(d, ir.Aggregate):
        measures = [m.name for m in d.measures] + [n for n, _ in d.compute]
    out = []
    for r in rows:
        rec = dict(zip(columns, r, strict=True))
        start = _ms(rec.get("__start"))
        end = _ms(rec.get("__end")) if "__end" in rec else start
        key = [(k, _value(rec.get(c), ids) if "entity_id" in k else rec.get(c)) for k, c in keys]
        key = [(k, None if v == "" else v) for k, v in key]
        ms = [(m, _value(rec.get(m), ids)) for m in measures if m in rec]
        out.append(canonical.make(analytic.id, key, start, end, ms))
    return out


def run(
    loaded: Loaded, fixture: ir.Fixture, artifact: Artifact, reverse_ties: bool = True
) -> list[CanonicalAlert]:
    """``reverse_ties``: the order of rows with equal sort keys in a scan's partitions
    (compiler/engines/kql_scan.py)."""
    dk = _require()
    events = fixture_events(loaded, fixture)
    tables = Tables(load_profile(artifact.profile), events, loaded.analytic)
    if f"_GetWatchlist('{psl.ALIAS}')" in artifact.query:
        # the Public Suffix List watchlist registered_domain() reads (backends/sentinel/psl.py)
        tables.watchlist = _watchlist(loaded.analytic, [psl.lookup()])
    con = _connect(dk)
    try:
        ids = tables.create(con)
        fns = _functions(artifact.profile)
        last = max((e.ts for e in events), default=0)
        now = fixture.now_ms if fixture.now_ms is not None else last
        opts = {"functions": fns, "query_now": _ts(now)}

        def columns_of(text: str) -> list[str]:
            return list(dk.kql(con, text, **opts).columns)

        query = _run_scans(
            expand_wildcards(artifact.query, columns_of), con, dk, opts, reverse_ties
        )
        rel = dk.kql(con, query, **opts)
        cols, rows = list(rel.columns), rel.fetchall()
    finally:
        con.close()
    return to_alerts(loaded.analytic, cols, rows, key_columns(loaded, artifact), ids)
