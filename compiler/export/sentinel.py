"""Microsoft Sentinel package: per analytic, the analytic-rule YAML in the Azure-Sentinel
repository's format (``AnalyticRules/<id>.yaml``) and an ARM template of the same rule
(``ARM/<id>.json``, ``Microsoft.SecurityInsights/alertRules`` kind Scheduled); per lookup, a
watchlist (``Watchlists/<name>/``: the CSV with its row number as the column ``siemc_row``, and an
ARM template). Every rule is validated with
:mod:`compiler.export.sentinel_model` before it is written."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import yaml
from pydantic import ValidationError

from backends.profiles import load_profile
from backends.sentinel import psl
from backends.sentinel.streams import with_row_numbers
from compiler import ir
from compiler.export import attack
from compiler.export import schedule as sch
from compiler.export.common import (
    Package,
    Request,
    alert_keys,
    approximations_text,
    authors,
    compile_target,
    credits,
    schedule_or_skip,
    stable_uuid,
    why_not,
)
from compiler.export.render import readme
from compiler.export.sentinel_model import AnalyticRule, ArmTemplate
from compiler.export.severity import severity
from compiler.export.splunk import lookup_csv

API_VERSION = "2023-12-01-preview"  # alertRules with subTechniques
MAX_PERIOD = 14 * sch.DAY
# Entity per ECS key field (Sentinel entity types and identifiers).
ENTITIES: dict[str, tuple[str, str]] = {
    "host.name": ("Host", "HostName"),
    "host.hostname": ("Host", "HostName"),
    "user.name": ("Account", "Name"),
    "source.ip": ("IP", "Address"),
    "destination.ip": ("IP", "Address"),
    "host.ip": ("IP", "Address"),
    "process.pid": ("Process", "ProcessId"),
    "process.command_line": ("Process", "CommandLine"),
    "destination.domain": ("DNS", "DomainName"),
    "dns.question.name": ("DNS", "DomainName"),
    "url.full": ("URL", "Url"),
    "file.name": ("File", "Name"),
}
# The MDE tables are delivered by the Microsoft Defender XDR connector.
MDE_CONNECTOR = "MicrosoftThreatProtection"


# Sentinel runs a scheduled rule at most every 5 minutes (queryFrequency 5m..14d)
SHORTEST_FREQUENCY = 5 * 60_000


def _duration(ms: int) -> str:
    """Sentinel's ``5m``/``1h``/``14d``, rounded up to whole minutes."""
    return sch.fmt_duration(-(-ms // sch.MINUTE) * sch.MINUTE)


def _iso(ms: int) -> str:
    mins = -(-ms // sch.MINUTE)
    if mins % 1440 == 0:
        return f"P{mins // 1440}D"
    if mins % 60 == 0:
        return f"PT{mins // 60}H"
    return f"PT{mins}M"


def _connectors(query: str, profile: str) -> list[dict[str, Any]]:
    """The connectors whose tables the query reads. MDE: the Defender XDR connector with the
    tables. ASIM unifying parsers each read whichever connectors the workspace has, so they name
    none (as the ASIM rules of the Azure-Sentinel repository do); a profile source that declares
    its ``connector`` (Corelight's parser functions) names it with the functions it reads as
    data types, as the Corelight solution's own rules do."""
    prof = load_profile(profile)
    out: list[dict[str, Any]] = []
    if profile == "mde":
        known = {str(v["table"]) for v in prof.sources.values() if v.get("table")} | {"DeviceInfo"}
        tables = sorted(t for t in known if re.search(rf"\b{t}\b", query))
        out.append({"connectorId": MDE_CONNECTOR, "dataTypes": tables})
    by_connector: dict[str, set[str]] = {}
    for src in prof.sources.values():
        table, connector = src.get("table"), src.get("connector")
        if connector and table and re.search(rf"\b{table}\b", query):
            by_connector.setdefault(str(connector), set()).add(str(table))
    out += [{"connectorId": c, "dataTypes": sorted(t)} for c, t in sorted(by_connector.items())]
    return out


def _columns(name: str, profile: str) -> list[str]:
    """Every column the profile maps an ECS field to (globally or per table)."""
    prof = load_profile(profile)
    out = [prof.fields[name]] if name in prof.fields else []
    for src in prof.sources.values():
        col = (src.get("fields") or {}).get(name)
        if col and col not in out:
            out.append(str(col))
    return out


def entity_mappings(a: ir.Analytic, query: str, profile: str = "mde") -> list[dict[str, Any]]:
    """Entities from the alert's key fields, each on the result column the query outputs for it
    (``__k_<column>`` for correlation keys, the column itself for aggregates)."""
    last = query.rstrip().split(";")[-1]
    by_type: dict[str, list[dict[str, str]]] = {}
    for key in alert_keys(a) or ("host.name",):
        ent = ENTITIES.get(key)
        if ent is None:
            continue
        for col in _columns(key, profile):
            hit = next(
                (c for c in (f"__k_{col}", col) if re.search(rf"(?<![\w.]){c}(?!\w)", last)),
                None,
            )
            if hit:
                maps = by_type.setdefault(ent[0], [])
                if len(maps) < 3 and all(m["identifier"] != ent[1] for m in maps):
                    maps.append({"identifier": ent[1], "columnName": hit})
                break
    return [{"entityType": t, "fieldMappings": m} for t, m in by_type.items()]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def rule_yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


def _timespan(ms: int) -> str:
    return sch.fmt_duration(ms) if ms else "0m"


def decision_filter(a: ir.Analytic, s: sch.Schedule) -> str:
    """Keep the alerts this run decides (docs/export.md, *Schedules*): those whose decision time
    lies in the slice ``[end - frequency, end)``, ``end`` being the run time less the join delay,
    rounded down to the frequency on the epoch grid. Sentinel runs every queryFrequency with some
    jitter; slices on the grid still tile time as long as the jitter stays under the frequency.
    The KQL backend names its alert bounds ``__start`` and ``__end``."""
    d = a.detection
    run = f"now() - {sch.fmt_duration(s.delay_ms)}" if s.delay_ms else "now()"
    end = f"bin_at({run}, {_timespan(s.frequency_ms)}, datetime(1970-01-01))"
    if isinstance(d, ir.Match):
        t = "__start"
    elif isinstance(d, ir.Absence):
        t = f"(__start + {_timespan(d.within_ms)})"
    elif isinstance(d, ir.Aggregate) and d.window.kind == "tumbling":
        # a window [start, end) is decided by its last instant: end - 1 tick in the slice
        return f"| where __end > {end} - {_timespan(s.frequency_ms)} and __end <= {end}"
    else:
        t = "__end"
    return f"| where {t} >= {end} - {_timespan(s.frequency_ms)} and {t} < {end}"


def sliced(a: ir.Analytic, query: str, s: sch.Schedule) -> str:
    """The backend's query with the decision filter after its final statement."""
    return query.rstrip().rstrip(";").rstrip() + "\n" + decision_filter(a, s)


def build_rule(
    lo_a: ir.Analytic, query: str, s: sch.Schedule, profile: str = "mde"
) -> dict[str, Any]:
    m = lo_a.meta
    techniques = list(m.attack_techniques)
    doc: dict[str, Any] = {
        "id": stable_uuid(lo_a.id, "sentinel"),
        "name": m.title,
        "description": "\n\n".join([m.description.strip(), *credits(m)]) + "\n",
        "severity": severity(m.severity).sentinel,
        "requiredDataConnectors": _connectors(query, profile),
        "queryFrequency": _duration(s.frequency_ms),
        "queryPeriod": _duration(s.lookback_ms),
        "triggerOperator": "gt",
        "triggerThreshold": 0,
        "tactics": [t.sentinel for t, _ in attack.filing(m.attack_techniques, m.attack_tactics)],
        "relevantTechniques": techniques,
        "query": query.strip("\n") + "\n",
    }
    ents = entity_mappings(lo_a, query, profile)
    if ents:
        doc["entityMappings"] = ents
    doc["version"] = "1.0.0"
    doc["kind"] = "Scheduled"
    # the repository's metadata block of contributed rules: who wrote it and who supports it
    doc["metadata"] = {
        "source": {"kind": "Community"},
        "author": {"name": ", ".join(authors(m)) or "siemc"},
        "support": {"tier": "Community"},
        "categories": {"domains": ["Security - Threat Protection"]},
    }
    return doc


def build_arm(doc: dict[str, Any], s: sch.Schedule) -> dict[str, Any]:
    rid = doc["id"]
    techs = doc["relevantTechniques"]
    props: dict[str, Any] = {
        "displayName": doc["name"],
        "description": doc["description"].strip(),
        "severity": doc["severity"],
        "enabled": True,
        "query": doc["query"],
        "queryFrequency": _iso(s.frequency_ms),
        "queryPeriod": _iso(s.lookback_ms),
        "triggerOperator": "GreaterThan",
        "triggerThreshold": 0,
        # Runs overlap by the span, but the query's decision filter reports each result in
        # one run only: suppression would hide other alerts, so it stays off.
        "suppressionDuration": _iso(s.frequency_ms),
        "suppressionEnabled": False,
        "tactics": doc["tactics"],
        "techniques": sorted({t.split(".")[0] for t in techs}),
        "subTechniques": [t for t in techs if "." in t],
        "eventGroupingSettings": {"aggregationKind": "AlertPerResult"},
        "templateVersion": doc["version"],
    }
    if "entityMappings" in doc:
        props["entityMappings"] = doc["entityMappings"]
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"workspace": {"type": "String"}},
        "resources": [
            {
                "id": "[concat(resourceId('Microsoft.OperationalInsights/workspaces/providers', "
                f"parameters('workspace'), 'Microsoft.SecurityInsights'),'/alertRules/{rid}')]",
                "name": f"[concat(parameters('workspace'),'/Microsoft.SecurityInsights/{rid}')]",
                "type": "Microsoft.OperationalInsights/workspaces/providers/alertRules",
                "kind": "Scheduled",
                "apiVersion": API_VERSION,
                "properties": props,
            }
        ],
    }


def watchlist_files(lk: ir.Lookup, search_key: str) -> dict[str, str]:
    """A watchlist whose alias is the lookup's name (the KQL backend reads
    ``_GetWatchlist('<name>')``), its columns the CSV's."""
    text = lookup_csv(lk)
    wid = stable_uuid(lk.name, "sentinel", "watchlist")
    arm = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"workspace": {"type": "String"}},
        "resources": [
            {
                "name": "[concat(parameters('workspace'), "
                f"'/Microsoft.SecurityInsights/{lk.name}')]",
                "type": "Microsoft.OperationalInsights/workspaces/providers/Watchlists",
                "kind": "",
                "apiVersion": "2023-02-01",
                "properties": {
                    "displayName": lk.name,
                    "watchlistAlias": lk.name,
                    "watchlistId": wid,
                    "description": f"siemc lookup {lk.name}",
                    "provider": "siemc",
                    "source": f"{lk.name}.csv",
                    "itemsSearchKey": search_key,
                    "contentType": "text/csv",
                    "numberOfLinesToSkip": 0,
                    "rawContent": text,
                },
            }
        ],
    }
    return {
        f"Watchlists/{lk.name}/{lk.name}.csv": text,
        f"Watchlists/{lk.name}/watchlist.json": json.dumps(arm, indent=2) + "\n",
    }


def _search_key(a: ir.Analytic, lk: ir.Lookup) -> str:
    """The column the analytic matches the lookup on first (Sentinel indexes it)."""
    for s in a.streams:
        for en in s.enrich:
            if en.lookup == lk.name:
                return en.match[0][0]
    return lk.columns[0]


def _history_cut(a: ir.Analytic, s: sch.Schedule) -> list[str]:
    """What a 14-day queryPeriod drops from the baselines' history, as export approximations
    (empty when the rule reads all it needs). The query means the analytic over what it reads;
    the scheduler reading less makes a key look new or rare (superset), and moves a deviation's
    mean and spread either way (mixed)."""
    if s.lookback_ms <= MAX_PERIOD:
        return []
    out = []
    for b in a.baselines:
        kind = {"FirstSeen": "first-seen", "Rarity": "rarity"}.get(type(b).__name__, "deviation")
        direction = "mixed" if isinstance(b, ir.Deviation) else "superset"
        out.append(
            f"{kind} baseline history ({direction}): a Sentinel scheduled rule reads at most 14d, "
            f"so of the {sch.fmt_duration(b.lookback_ms)} lookback only the part within the "
            f"14-day queryPeriod is read ({b.span.at()}); keep the history in a watchlist or a "
            "summary rule's table to deploy it exactly"
        )
    return out


def package(req: Request) -> Package:
    pkg = Package("sentinel")
    exported: list[str] = []
    watchlists: dict[str, dict[str, str]] = {}
    for lo in req.catalog:
        a = lo.analytic
        s = schedule_or_skip(pkg, lo, req, SHORTEST_FREQUENCY)
        if s is None:
            continue
        cut = _history_cut(a, s)
        if s.lookback_ms - s.history_ms > MAX_PERIOD or (cut and not req.allow_approximate):
            pkg.skip(
                a.id,
                f"queryPeriod would be {_duration(s.lookback_ms)} (frequency + span + history): "
                "Sentinel allows at most 14d"
                + ("; pass --allow-approximate to ship it with the history cut" if cut else ""),
            )
            continue
        res = compile_target(lo, "kql", req)
        if res.artifact is None:
            pkg.skip(a.id, f"kql: {why_not(res)}")
            continue
        if cut:
            s = dataclasses.replace(s, history_ms=MAX_PERIOD - (s.lookback_ms - s.history_ms))
        doc = build_rule(a, sliced(a, res.artifact.query, s), s, res.artifact.profile)
        arm = build_arm(doc, s)
        try:
            AnalyticRule.model_validate(doc)
            ArmTemplate.model_validate(arm)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            pkg.skip(a.id, f"the rule breaks a Sentinel constraint: {where}: {first['msg']}")
            continue
        pkg.files[f"AnalyticRules/{a.id}.yaml"] = rule_yaml(doc)
        pkg.files[f"ARM/{a.id}.json"] = json.dumps(arm, indent=2, ensure_ascii=False) + "\n"
        for lk in a.lookups:
            # the CSV row number as a column: an enrichment takes the first row of its key
            watchlists.setdefault(
                lk.name, watchlist_files(with_row_numbers(lk), _search_key(a, lk))
            )
        if f"_GetWatchlist('{psl.ALIAS}')" in res.artifact.query:
            # registered_domain() by the Public Suffix List (backends/sentinel/psl.py)
            watchlists.setdefault(psl.ALIAS, watchlist_files(psl.lookup(), psl.SEARCH_KEY))
        pkg.exported.append(a.id)
        exported.append(
            f"{a.id}: every {doc['queryFrequency']} over {doc['queryPeriod']} ({s.reason})"
            + "".join(f"; APPROXIMATION {x}" for x in approximations_text(res.artifact))
            + "".join(f"; APPROXIMATION {x}" for x in cut)
        )
    for name in sorted(watchlists):
        pkg.files.update(watchlists[name])
    pkg.files["README.md"] = readme(
        pkg,
        "siemc analytic rules for Microsoft Sentinel",
        "AnalyticRules/ holds the rules in the Azure-Sentinel repository format, ARM/ the same "
        "rules as deployable templates, Watchlists/ the lookups (alias = lookup name) and the "
        f"Public Suffix List registered_domain() reads ({psl.ALIAS}).",
        exported,
    )
    return pkg
