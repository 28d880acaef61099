"""Field-mapping profiles: ECS (the language's taxonomy) -> a target's data model.

Profiles are data (``<name>.yml`` beside this module), so adding a data model needs no code. A
field that a profile cannot map is an error naming the profile, never a guess.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


class UnmappedField(Exception):
    def __init__(self, name: str, help: str):
        super().__init__(name)
        self.help = help


@dataclass(frozen=True)
class FieldProfile:
    name: str
    description: str
    identity: bool  # ECS itself: every field maps to its own name
    fields: dict[str, str]
    unavailable: dict[str, str]  # ECS field -> why the data model lacks it / where it lives
    sources: dict[str, dict[str, Any]]  # logsource key -> target-specific source description
    local_style: str  # how query-local (derived) fields are named: "dotted" or "underscore"

    def map_field(self, name: str) -> str:
        if name in self.unavailable:
            raise UnmappedField(name, self.unavailable[name])
        if name in self.fields:
            return self.fields[name]
        if self.identity:
            return name
        close = sorted(k for k in self.fields if k.split(".")[0] == name.split(".")[0])[:6]
        hint = f"mapped fields near it: {', '.join(close)}" if close else "no similar fields"
        raise UnmappedField(
            name,
            f"add it to backends/profiles/{self.name}.yml, or use a mapped field ({hint})",
        )

    def local(self, name: str) -> str:
        """The query-local name of a field the query computes itself (derive, enrich, join)."""
        if self.local_style == "dotted":
            return name
        return re.sub(r"[^A-Za-z0-9_]", "_", name)

    def source(self, key: str) -> dict[str, Any] | None:
        return self.sources.get(key)


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yml"))


@functools.cache
def load_profile(name: str) -> FieldProfile:
    path = HERE / f"{name}.yml"
    if not path.is_file():
        raise ValueError(f"unknown profile '{name}'; profiles: {', '.join(names())}")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return FieldProfile(
        name=doc["name"],
        description=doc.get("description", ""),
        identity=bool(doc.get("identity", False)),
        fields=dict(doc.get("fields") or {}),
        unavailable=dict(doc.get("unavailable") or {}),
        sources={str(k): dict(v) for k, v in (doc.get("sources") or {}).items()},
        local_style=doc.get("local_style", "underscore"),
    )


def logsource_keys(ls: Any) -> list[str]:
    """Keys to look a logsource up in a profile's ``sources``, most specific first:
    ``category/product``, ``category``, ``product/service``, ``product``."""
    keys = []
    if ls.category and ls.product:
        keys.append(f"{ls.category}/{ls.product}")
    if ls.category:
        keys.append(ls.category)
    if ls.product and ls.service:
        keys.append(f"{ls.product}/{ls.service}")
    if ls.product:
        keys.append(ls.product)
    return keys


@functools.cache
def ecs_array_fields() -> frozenset[str]:
    """ECS fields whose values are arrays by definition (``array_fields`` of ecs.yml): every
    backend treats them as multi-valued, whatever column its profile maps them to."""
    doc = yaml.safe_load((HERE / "ecs.yml").read_text(encoding="utf-8"))
    return frozenset(str(x) for x in doc.get("array_fields") or [])
