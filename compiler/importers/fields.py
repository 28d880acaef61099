"""Sigma taxonomy field names -> ECS field names, per logsource (compiler/data/sigma_fields.yml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

from compiler.surface import field_name_problem


@dataclass(frozen=True)
class FieldTable:
    common: dict[str, str]
    sources: dict[str, dict[str, str]]
    fallback: dict[str, str]


@cache
def table() -> FieldTable:
    text = files("compiler").joinpath("data/sigma_fields.yml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return FieldTable(
        dict(data.get("common") or {}),
        {k: dict(v) for k, v in (data.get("sources") or {}).items()},
        dict(data.get("fallback") or {}),
    )


def _keys(category: str | None, product: str | None, service: str | None) -> list[str]:
    """Keys of the table to consult for a logsource, most specific first."""
    out = []
    if category and product:
        out.append(f"{category}/{product}")
    if category:
        out.append(category)
    if product and service:
        out.append(f"{product}/{service}")
    if product:
        out.append(product)
    return out


_SEGMENT = re.compile(r"[^A-Za-z0-9_]")


def _namespace(category: str | None, product: str | None, service: str | None) -> str:
    t = table()
    if product and product.lower() in t.fallback:
        return t.fallback[product.lower()]
    parts = [p for p in (product or category, service) if p]
    return ".".join(_SEGMENT.sub("_", p.lower()) for p in parts)


@dataclass(frozen=True)
class Mapped:
    ecs: str | None  # None when no valid field name results
    problem: str | None = None


def map_field(name: str, category: str | None, product: str | None, service: str | None) -> Mapped:
    """The ECS field for Sigma field ``name`` under a logsource: the table's entry, or the
    name under the logsource's namespace (see the data file's ``fallback``)."""
    t = table()
    for key in _keys(category, product, service):
        hit = t.sources.get(key, {}).get(name)
        if hit is not None:
            return Mapped(hit)
    if name in t.common:
        return Mapped(t.common[name])
    ns = _namespace(category, product, service)
    ecs = f"{ns}.{name}" if ns else name
    problem = field_name_problem(ecs)
    if problem is not None:
        return Mapped(None, f"Sigma field '{name}' has no ECS mapping and {problem}")
    return Mapped(ecs)
