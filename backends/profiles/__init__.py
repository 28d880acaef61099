"""Field-mapping profiles: ECS (the language's taxonomy) -> a target's data model.

Profiles are data (``<name>.yml`` beside this module), so adding a data model needs no code. A
field that a profile cannot map is an error naming the profile, never a guess.

A profile also knows which fields its data sources carry: an entry of ``sources`` may declare
``lacks: {<ECS field or prefix.*>: <why>}``, the fields that no event of that source has (Sysmon
EID 3 and Windows 5156 carry no byte counts; Zeek sees no process). :meth:`FieldProfile.lacking`
answers, for a logsource, which of those apply; the backends' base refuses a stream that reads
one (E211, docs/diagnostics.md).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
    # How a logsource finds its entries in `sources`: "all" (every matching key applies: the
    # category's and the product's) or "most_specific" (the first matching key alone: sigma).
    source_lookup: Literal["all", "most_specific"] = "all"
    targets: tuple[str, ...] = ()  # the targets that compile with this profile
    # A logsource with a service needs an entry for it (``product/service``): the product's
    # entry alone does not describe another service's events (Windows Security is not Sysmon).
    strict_services: bool = False

    def map_field(self, name: str) -> str:
        if name in self.unavailable:
            raise UnmappedField(name, self.unavailable[name])
        if name in self.fields:
            return self.fields[name]
        if self.identity:
            return name
        # `prefix.*: "*"` maps a namespace by the rest of the name (winlog.event_data.<Field>
        # is the add-on's field <Field>); `prefix.*` under unavailable refuses the namespace
        for pattern, why in self.unavailable.items():
            if pattern.endswith(".*") and name.startswith(pattern[:-1]):
                raise UnmappedField(name, why)
        for pattern, to in self.fields.items():
            rest = name[len(pattern) - 1 :]
            if pattern.endswith(".*") and name.startswith(pattern[:-1]) and _FIELD.match(rest):
                return to.replace("*", rest)
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

    def source_entries(self, ls: Any) -> list[tuple[str, dict[str, Any]]]:
        """The ``sources`` entries that describe logsource ``ls``, most specific first."""
        found = [(k, self.sources[k]) for k in source_keys(ls) if k in self.sources]
        if self.source_lookup == "most_specific":
            return found[:1]
        if ls.category and ls.product and f"{ls.category}/{ls.product}" in self.sources:
            # an entry for the pair describes the whole logsource: the data that is both (e.g.
            # flows that also name the process), not the AND of the two entries
            return [(k, e) for k, e in found if k not in (ls.category, ls.product)]
        return found

    def has_source(self, ls: Any) -> bool:
        """Whether the profile names a data source for ``ls``: an entry for its category and
        for its product (the identity profile selects products by ECS fields), none of them
        saying the data does not exist."""
        entries = self.source_entries(ls)
        if any(_no_source(e) for _, e in entries):
            return False
        own = f"{ls.product}/{ls.service}"
        if self.strict_services and ls.service and not any(k.endswith(own) for k, _ in entries):
            return False
        if self.source_lookup == "most_specific":
            return bool(entries)  # the one entry stands for the whole logsource
        for part in (ls.category, None if self.identity else ls.product):
            if part and not any(
                k == part or k.startswith(part + "/") or k.endswith("/" + part) for k, _ in entries
            ):
                return False
        return bool(entries)

    def lacking(self, ls: Any, fields: list[str]) -> dict[str, tuple[str, str]]:
        """Of ``fields``, those that the sources of ``ls`` cannot carry: field -> (the
        ``sources`` key that says so, why)."""
        out: dict[str, tuple[str, str]] = {}
        for key, entry in self.source_entries(ls):
            for pattern, why in (entry.get("lacks") or {}).items():
                for f in fields:
                    if f not in out and _covers(str(pattern), f):
                        out[f] = (key, " ".join(str(why).split()))
        return out


_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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
        source_lookup=doc.get("source_lookup", "all"),
        targets=tuple(doc.get("targets") or ()),
        strict_services=bool(doc.get("strict_services", False)),
    )


def _no_source(entry: dict[str, Any]) -> bool:
    # kql profiles write `unavailable: <why>` on an entry, the sigma profile `no_source: <why>`
    return isinstance(entry.get("unavailable"), str) or "no_source" in entry


def _covers(pattern: str, name: str) -> bool:
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def source_keys(ls: Any) -> list[str]:
    """Every key a logsource may be described under, most specific first:
    ``category/product/service``, ``product/service``, ``category/product``, ``category``,
    ``product``."""
    c, p, s = ls.category, ls.product, ls.service
    keys = []
    if c and p and s:
        keys.append(f"{c}/{p}/{s}")
    if p and s:
        keys.append(f"{p}/{s}")
    if c and p:
        keys.append(f"{c}/{p}")
    if c:
        keys.append(c)
    if p:
        keys.append(p)
    return keys


def describe(ls: Any) -> str:
    """``{category: x, product: y}``: a logsource as an analytic writes it."""
    parts = [
        f"{k}: {v}"
        for k, v in (("category", ls.category), ("product", ls.product), ("service", ls.service))
        if v
    ]
    return "{" + ", ".join(parts) + "}"


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
