"""Sigma field names read backwards from the importer's table (compiler/data/sigma_fields.yml).

`siemc import sigma` defines what a Sigma field of a logsource means in ECS: the table's entry
for the logsource (most specific key first, then ``common``), else the field under the
logsource's namespace (winlog.event_data.<Field> on Windows, <product>.<service>.<Field>
otherwise). The Sigma backend writes a field back under the Sigma name that the importer reads
as that very ECS field, so a logsource the profile does not describe by hand still compiles,
and an imported rule compiles back to the fields it was written with. Every name here is
checked against the forward direction (``map_field``), never assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from backends.profiles import logsource_keys
from compiler import ir
from compiler.importers.fields import map_field, table

LogsourceKey = tuple[str | None, str | None, str | None]


def key_of(logsource: Mapping[str, str]) -> LogsourceKey:
    return (logsource.get("category"), logsource.get("product"), logsource.get("service"))


@cache
def table_names(ls: LogsourceKey) -> tuple[str, ...]:
    """Every Sigma field the importer's table lists for ``ls``, most specific key first."""
    t = table()
    out: list[str] = []
    for key in logsource_keys(ir.LogSource(*ls)):
        out += [n for n in t.sources.get(key, {}) if n not in out]
    out += [n for n in t.common if n not in out]
    return tuple(out)


def forward(name: str, ls: LogsourceKey) -> str | None:
    """The ECS field the importer reads Sigma field ``name`` of ``ls`` as."""
    return map_field(name, *ls).ecs


@cache
def table_fields(ls: LogsourceKey) -> dict[str, str]:
    """ECS field -> Sigma field for the fields the table maps under ``ls``: the first name
    (most specific key first, then the table's order) the importer reads as the ECS field, so
    where two names mean one field (W3C's cs-uri and c-uri) the profile may name the one the
    taxonomy gives the category."""
    out: dict[str, str] = {}
    for name in table_names(ls):
        ecs = forward(name, ls)
        if ecs is not None and ecs not in out:
            out[ecs] = name
    return out


@cache
def namespaced(ecs: str, ls: LogsourceKey) -> str | None:
    """The Sigma field the importer keeps under the logsource's namespace as ``ecs``
    (winlog.event_data.Hashes -> Hashes on Windows, aws.cloudtrail.userIdentity.type ->
    userIdentity.type on aws/cloudtrail), or None when no Sigma name reads back as ``ecs``."""
    parts = ecs.split(".")
    # the namespace is a fixed prefix per logsource: at most one split reads back as ``ecs``
    for i in range(1, len(parts)):
        name = ".".join(parts[i:])
        if name not in table_names(ls) and forward(name, ls) == ecs:
            return name
    return None


def shadowed(name: str, ecs: str, ls: LogsourceKey) -> bool:
    """Whether Sigma field ``name`` of ``ls`` means another ECS field than ``ecs`` (a prefix of
    the profile turning winlog.event_data.Image into Image, which the importer reads as
    process.executable on process_creation)."""
    return name in table_names(ls) and forward(name, ls) != ecs
