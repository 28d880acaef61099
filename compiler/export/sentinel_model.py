"""A model of Microsoft Sentinel's scheduled analytic rule (repository YAML and ARM alertRules),
written from the constraints of Azure-Sentinel's template validation and the alertRules API
documentation (vendor-schemas README). Every export is validated against it before it is
written, and the tests check it rejects what Sentinel rejects."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compiler.export import attack

GUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TECHNIQUE = r"^T\d{4}(\.\d{3})?$"
Severity = Literal["Informational", "Low", "Medium", "High"]

# Identifiers per entity type (Microsoft Sentinel entity types reference).
ENTITY_IDENTIFIERS: dict[str, frozenset[str]] = {
    "Account": frozenset(
        [
            "Name",
            "FullName",
            "NTDomain",
            "DnsDomain",
            "UPNSuffix",
            "Sid",
            "AadTenantId",
            "AadUserId",
            "PUID",
            "IsDomainJoined",
            "DisplayName",
            "ObjectGuid",
        ]
    ),
    "Host": frozenset(
        [
            "DnsDomain",
            "NTDomain",
            "HostName",
            "FullName",
            "NetBiosName",
            "AzureID",
            "OMSAgentID",
            "OSFamily",
            "OSVersion",
            "IsDomainJoined",
        ]
    ),
    "IP": frozenset({"Address"}),
    "Process": frozenset({"ProcessId", "CommandLine", "ElevationToken", "CreationTimeUtc"}),
    "DNS": frozenset({"DomainName"}),
    "URL": frozenset({"Url"}),
    "File": frozenset({"Directory", "Name"}),
    "FileHash": frozenset({"Algorithm", "Value"}),
}

_MIN, _MAX = 5, 14 * 24 * 60  # minutes: 5m .. 14d
_UNIT_MIN = {"m": 1, "h": 60, "d": 1440}
MAX_QUERY = 10_000  # characters of a scheduled rule's query


def minutes(text: str) -> int:
    m = re.fullmatch(r"(\d+)([mhd])", text)
    if not m:
        raise ValueError(f"'{text}' is not a duration like 5m, 1h, 14d")
    return int(m.group(1)) * _UNIT_MIN[m.group(2)]


def iso_minutes(text: str) -> int:
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", text)
    if not m or not any(m.groups()):
        raise ValueError(f"'{text}' is not an ISO 8601 duration like PT5M, PT1H, P14D")
    d, h, mi = (int(x or 0) for x in m.groups())
    return d * 1440 + h * 60 + mi


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldMapping(_Strict):
    identifier: str
    columnName: Annotated[str, Field(min_length=1)]


class EntityMapping(_Strict):
    entityType: Literal["Account", "Host", "IP", "Process", "DNS", "URL", "File", "FileHash"]
    fieldMappings: Annotated[list[FieldMapping], Field(min_length=1, max_length=3)]

    @model_validator(mode="after")
    def _identifiers(self) -> EntityMapping:
        for fm in self.fieldMappings:
            if fm.identifier not in ENTITY_IDENTIFIERS[self.entityType]:
                raise ValueError(f"{fm.identifier} is not an identifier of {self.entityType}")
        return self


class DataConnector(_Strict):
    connectorId: Annotated[str, Field(min_length=1)]
    dataTypes: Annotated[list[str], Field(min_length=1)]


def _check_attack(tactics: list[str], techniques: list[str]) -> None:
    names = {t.sentinel: t for t in attack.all_tactics()}
    for t in tactics:
        if t not in names:
            raise ValueError(f"{t} is not an ATT&CK tactic name as Sentinel spells it")
    listed = {names[t].shortname for t in tactics}
    for tid in techniques:
        if not set(attack.technique(tid).tactics) & listed:
            raise ValueError(f"technique {tid} belongs to none of the tactics {tactics}")


class _Source(_Strict):
    kind: Literal["Community", "Solution", "Standalone"]


class _Author(_Strict):
    name: Annotated[str, Field(min_length=1)]


class _Support(_Strict):
    tier: Literal["Community", "Microsoft", "Partner", "Developer"]


class _Categories(_Strict):
    domains: Annotated[list[Annotated[str, Field(pattern=r"^Security - .+$")]], Field(min_length=1)]


class RuleMetadata(_Strict):
    """The ``metadata`` block of contributed rules in the Azure-Sentinel repository (source
    kind, author, support tier, categories)."""

    source: _Source
    author: _Author
    support: _Support
    categories: _Categories | None = None


class AnalyticRule(_Strict):
    """The Azure-Sentinel repository's YAML analytic rule (Detections/<source>/<rule>.yaml)."""

    id: Annotated[str, Field(pattern=GUID)]
    name: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(min_length=1, max_length=5000)]
    severity: Severity
    requiredDataConnectors: list[DataConnector]
    queryFrequency: str
    queryPeriod: str
    triggerOperator: Literal["gt", "lt", "eq", "ne"]
    triggerThreshold: Annotated[int, Field(ge=0, le=10000)]
    tactics: Annotated[list[str], Field(min_length=1)]
    relevantTechniques: list[Annotated[str, Field(pattern=TECHNIQUE)]]
    query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY)]
    entityMappings: Annotated[list[EntityMapping], Field(min_length=1, max_length=10)] | None = None
    version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
    kind: Literal["Scheduled"]
    metadata: RuleMetadata | None = None

    @field_validator("queryFrequency", "queryPeriod")
    @classmethod
    def _duration(cls, v: str) -> str:
        n = minutes(v)
        if not _MIN <= n <= _MAX:
            raise ValueError(f"{v} is outside 5m..14d")
        return v

    @model_validator(mode="after")
    def _relations(self) -> AnalyticRule:
        if minutes(self.queryPeriod) < minutes(self.queryFrequency):
            raise ValueError("queryPeriod must be at least queryFrequency")
        _check_attack(self.tactics, self.relevantTechniques)
        return self


class AlertRuleProperties(_Strict):
    """``properties`` of an ARM ``Microsoft.SecurityInsights/alertRules`` resource, kind
    Scheduled (the subset siemc writes)."""

    displayName: Annotated[str, Field(min_length=1, max_length=256)]
    description: Annotated[str, Field(min_length=1, max_length=5000)]
    severity: Severity
    enabled: bool
    query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY)]
    queryFrequency: str
    queryPeriod: str
    triggerOperator: Literal["GreaterThan", "LessThan", "Equal", "NotEqual"]
    triggerThreshold: Annotated[int, Field(ge=0, le=10000)]
    suppressionDuration: str
    suppressionEnabled: bool
    tactics: Annotated[list[str], Field(min_length=1)]
    techniques: list[Annotated[str, Field(pattern=r"^T\d{4}$")]]
    subTechniques: list[Annotated[str, Field(pattern=r"^T\d{4}\.\d{3}$")]]
    entityMappings: Annotated[list[EntityMapping], Field(min_length=1, max_length=10)] | None = None
    eventGroupingSettings: dict[str, Literal["SingleAlert", "AlertPerResult"]]
    templateVersion: str

    @model_validator(mode="after")
    def _durations(self) -> AlertRuleProperties:
        f, p = iso_minutes(self.queryFrequency), iso_minutes(self.queryPeriod)
        if not (_MIN <= f <= _MAX and _MIN <= p <= _MAX and p >= f):
            raise ValueError("queryFrequency/queryPeriod must lie in 5m..14d, period >= frequency")
        iso_minutes(self.suppressionDuration)
        _check_attack(self.tactics, self.techniques + self.subTechniques)
        return self


class AlertRuleResource(_Strict):
    id: str
    name: str
    type: Literal["Microsoft.OperationalInsights/workspaces/providers/alertRules"]
    kind: Literal["Scheduled"]
    apiVersion: str
    properties: AlertRuleProperties


class ArmTemplate(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    schema_: Annotated[str, Field(alias="$schema")]
    contentVersion: str
    parameters: dict[str, dict[str, str]]
    resources: Annotated[list[AlertRuleResource], Field(min_length=1)]
