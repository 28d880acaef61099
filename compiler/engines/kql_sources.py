"""Routes of the KQL engine harness (compiler/engines/run_kql.py) for the log sources of
Sigma's categories and Windows channels: MDE DeviceFileEvents / DeviceRegistryEvents /
DeviceImageLoadEvents, Sentinel's SecurityEvent and WindowsEvent (backends/profiles/mde.yml,
asim.yml), and how an event becomes their columns (a registry path's key and value name, a
Windows event's EventData).

A route is (table, the profile's ``sources`` key, the ECS condition of the events the table
holds, constant columns)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from backends.profiles import FieldProfile, load_profile
from compiler import ir
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES, logsource_predicate

Route = tuple[str, str, ir.Predicate, dict[str, Any]]

# MDE file and registry events: one ActionType per ECS event.type (and event.action rename),
# as backends/profiles/mde.yml reads them; a rename is an ECS change that MDE records as its own
# ActionType, and a deleted value (ECS registry.value present) is RegistryValueDeleted
_RENAME = ir.Eq("event.action", ("rename",))
_SECURITY = logsource_predicate(ir.LogSource(None, "windows", "security"))


def _mde_change(category: str, rename: bool) -> ir.Predicate:
    change = LOGSOURCE_CATEGORIES[f"{category}_set" if category == "registry" else "file_change"]
    return ir.And((change, _RENAME if rename else ir.Not(_RENAME)))


# Windows events in WindowsEvent (asim.yml): Sigma's Sysmon and PowerShell categories, then the
# channels of the profile's windows/<service> entries (each entry's first Channel value)
_SYSMON, _PS = "Microsoft-Windows-Sysmon", "Microsoft-Windows-PowerShell"
_WINDOWS = ir.Eq("host.os.type", ("windows",))


def _winevent(category: str, provider: str, code: int, extra: ir.Predicate = ir.TRUE) -> Route:
    channel = f"{provider}/Operational"
    member = ir.And((LOGSOURCE_CATEGORIES[category], _WINDOWS, extra))
    const = {"Provider": provider, "Channel": channel, "EventID": code}
    return ("WindowsEvent", f"{category}/windows", member, const)


_REG_RENAME = ir.And((ir.Eq("event.type", ("change",)), _RENAME))
_SYSMON_ROUTES = [
    _winevent("ps_script", _PS, 4104),
    _winevent("ps_module", _PS, 4103),
    _winevent("create_remote_thread", _SYSMON, 8),
    _winevent("raw_access_thread", _SYSMON, 9),
    _winevent("pipe_created", _SYSMON, 17),
    _winevent("wmi_event", _SYSMON, 19),
    _winevent("process_tampering", _SYSMON, 25),
    _winevent("sysmon_status", _SYSMON, 4),
    _winevent("sysmon_error", _SYSMON, 255),
    _winevent("create_stream_hash", _SYSMON, 15),
    _winevent("file_executable_detected", _SYSMON, 29),
    # ECS categories Sysmon records: process access 10, driver load 6, file creation 11, image
    # load 7, registry value set 13, key or value renamed 14, created or deleted 12
    _winevent("process_access", _SYSMON, 10),
    _winevent("driver_load", _SYSMON, 6),
    _winevent("file_event", _SYSMON, 11),
    _winevent("image_load", _SYSMON, 7),
    _winevent("registry_event", _SYSMON, 14, _REG_RENAME),
    _winevent("registry_event", _SYSMON, 13, ir.Eq("event.type", ("change",))),
    _winevent("registry_event", _SYSMON, 12),
]


def _channel_routes() -> list[Route]:
    out: list[Route] = []
    for key, e in load_profile("asim").sources.items():
        product, _, service = key.partition("/")
        if e.get("table") == "WindowsEvent" and product == "windows" and service:
            channel = re.search(r'"([^"]+)"', str(e["where"][0]))
            assert channel is not None, key
            ls = ir.LogSource(None, product, service)
            out.append(("WindowsEvent", key, logsource_predicate(ls), {"Channel": channel[1]}))
    return out


_EVENT_DATA_COL = re.compile(r"tostring\(EventData\.(\w+)\)")


def event_data(prof: FieldProfile, f: Mapping[str, Any]) -> dict[str, Any]:
    """WindowsEvent's EventData of an event: its winlog.event_data fields by name, and the
    fields the profile reads from EventData members under other ECS names."""
    data = {k[len("winlog.event_data.") :]: v for k, v in f.items()
            if k.startswith("winlog.event_data.")}  # fmt: skip
    for e in prof.sources.values():
        if e.get("table") != "WindowsEvent":
            continue
        for ecs, col in (e.get("fields") or {}).items():
            m = _EVENT_DATA_COL.fullmatch(str((e.get("computed") or {}).get(col, "")))
            if m and ecs in f:
                data.setdefault(m[1], f[ecs])
    return data


MDE_ROUTES: list[Route] = [
        ("DeviceFileEvents", "file_event", LOGSOURCE_CATEGORIES["file_event"],
         {"ActionType": "FileCreated"}),
        ("DeviceFileEvents", "file_delete", LOGSOURCE_CATEGORIES["file_delete"],
         {"ActionType": "FileDeleted"}),
        ("DeviceFileEvents", "file_rename", _mde_change("file", True),
         {"ActionType": "FileRenamed"}),
        ("DeviceFileEvents", "file_change", _mde_change("file", False),
         {"ActionType": "FileModified"}),
        ("DeviceRegistryEvents", "registry_add", LOGSOURCE_CATEGORIES["registry_add"],
         {"ActionType": "RegistryKeyCreated"}),
        ("DeviceRegistryEvents", "registry_set", _mde_change("registry", False),
         {"ActionType": "RegistryValueSet"}),
        ("DeviceRegistryEvents", "registry_rename", _mde_change("registry", True),
         {"ActionType": "RegistryKeyRenamed"}),
        ("DeviceRegistryEvents", "registry_delete",
         ir.And((LOGSOURCE_CATEGORIES["registry_delete"], ir.Exists("registry.value"))),
         {"ActionType": "RegistryValueDeleted"}),
        ("DeviceRegistryEvents", "registry_delete",
         ir.And((LOGSOURCE_CATEGORIES["registry_delete"], ir.Not(ir.Exists("registry.value")))),
         {"ActionType": "RegistryKeyDeleted"}),
        ("DeviceImageLoadEvents", "image_load", LOGSOURCE_CATEGORIES["image_load"],
         {"ActionType": "ImageLoaded"}),
]  # fmt: skip
ASIM_ROUTES: list[Route] = [
    ("SecurityEvent", "windows/security", _SECURITY, {}),
    *_SYSMON_ROUTES,
    *_channel_routes(),
]


# MDE spells the hives HKLM and HKU in full (the profile's RegistryPath abbreviates them)
_HIVES = (("HKLM\\", "HKEY_LOCAL_MACHINE\\"), ("HKU\\", "HKEY_USERS\\"))


def registry_columns(path: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """RegistryKey and RegistryValueName of an ECS registry.path (Sysmon's TargetObject: the key,
    then the value name for a value event), so that mde.yml's RegistryPath gives it back."""
    value = str(row.get("RegistryValueName") or "")
    key = path
    if row.get("ActionType") in ("RegistryValueSet", "RegistryValueDeleted"):
        if value and path.endswith("\\" + value):
            key = path[: -len(value) - 1]
        elif not value and "\\" in path:
            key, value = path.rsplit("\\", 1)
    for short, full in _HIVES:
        if key.startswith(short):
            key = full + key[len(short) :]
    return {"RegistryKey": key, "RegistryValueName": value}
