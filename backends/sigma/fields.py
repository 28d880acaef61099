"""Sigma field names and values: per-logsource field mapping (the ``sigma`` profile) and the
escaping of literal values (sigma-specification, "Escaping")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from backends.base import E_NO_SOURCE, E_UNMAPPED, CompileError, Context, _diag
from backends.profiles import FieldProfile, describe, source_keys
from backends.sigma.taxonomy import forward, key_of, namespaced, shadowed, table_fields
from compiler import ir
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES

# Sigma string values treat `*` and `?` as wildcards and `\` as their escape character
# (sigma-specification, "Escaping"): `\*`, `\?` and `\\` are the literal characters, while a
# backslash before anything else is itself (so Windows paths stay readable: `\cmd.exe`).
SIGMA_ESCAPES: dict[str, str] = {"*": "\\*", "?": "\\?"}
_ESCAPE_RE = re.compile(r"\\(?=[\\*?])|[*?]")


def sigma_string(value: str) -> str:
    """A literal string as a Sigma value (no wildcard left)."""
    return _ESCAPE_RE.sub(lambda m: SIGMA_ESCAPES.get(m.group(0), "\\\\"), value)


def scalar_text(value: ir.Scalar) -> str:
    """The text a substring operator reads from a scalar (docs/semantics.md)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# The approximation every comparison with a number records (an Eq with a numeric value, a Compare).
NUMERIC_COMPARISON = "numeric comparison on a field that may be logged as a string"


def sigma_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


# ---------------------------------------------------------------------- field mapping
@dataclass(frozen=True)
class SigmaField:
    name: str
    basename: str | None = None  # separators: the ECS field is the text after the last one
    bare: bool = False  # the Sigma field may hold the name with no separator at all
    values: dict[str, str] | None = None  # ECS value -> Sigma value


@dataclass(frozen=True)
class SourceMap:
    """One logsource's Sigma form and field names."""

    key: str
    logsource: dict[str, str]
    fields: dict[str, Any]
    prefixes: dict[str, str]
    unavailable: dict[str, str]
    # Sigma fields the source's schema logs as numbers: numeric tests on them compare numbers
    numeric: frozenset[str] = frozenset()
    # conjuncts of the stream's filter the logsource implies (they picked it: `select`)
    implied: tuple[ir.Predicate, ...] = ()
    # the source stands in for the one the logsource names: why, and under which condition the
    # rule still sees every event the analytic reads (the profile's `substitute`)
    substitute: str | None = None

    def shared(self, name: str) -> list[str]:
        """The other ECS fields mapped to the same Sigma field as ``name`` (one Sigma field
        holding a path and its last part, e.g. process.executable and process.name in Image)."""
        target = _target(self.fields.get(name))
        return [k for k, v in self.fields.items() if k != name and _target(v) == target]


def _target(spec: Any) -> str | None:
    if spec is None:
        return None
    return spec if isinstance(spec, str) else str(spec["field"])


def source_map(
    profile: FieldProfile, ls: ir.LogSource, span: ir.Span, where: ir.Predicate | None = None
) -> SourceMap:
    """The Sigma logsource of ``ls``; a product-only entry with ``select`` picks it by the
    stream's own event.category/event.type conjuncts (``where``: the stream's filter)."""
    # product/service beats category/product: a Zeek log's field names depend on the service,
    # not on the category the analytic files it under
    for key in source_keys(ls):
        entry = profile.source(key)
        if entry is None:
            continue
        implied: tuple[ir.Predicate, ...] = ()
        if "select" in entry:
            if ls.category is not None:
                continue  # the stream names its Sigma category itself
            picked = selected_source(entry, where)
            if picked is None:
                continue
            key, implied = picked
            entry = profile.source(key) or {}
        if "no_source" in entry:
            raise CompileError(
                [
                    _diag(
                        E_NO_SOURCE,
                        f"the {profile.name} profile has no Sigma log source for logsource "
                        f"{describe(ls)} (sigma)",
                        span,
                        str(entry["no_source"]),
                    )
                ]
            )
        if "logsource" not in entry:
            key = source_keys(ls)[0]  # the stream's own logsource, as messages name it
        return _source(profile, key, entry, ls, implied)
    if ls.category is None or ls.category in LOGSOURCE_CATEGORIES:
        # no hand-written entry: the logsource as the rule names it, with the importer's names
        return _source(profile, source_keys(ls)[0], {}, ls)
    raise CompileError(
        [
            _diag(
                E_NO_SOURCE,
                f"the {profile.name} profile has no Sigma log source for logsource "
                f"{describe(ls)} (sigma)",
                span,
                f"category {ls.category!r} is none of the Sigma taxonomy's categories siemc "
                "defines (docs/language.md, Logsources): add an entry with `ecs` to "
                "backends/profiles/sigma.yml `sources`",
            )
        ]
    )


def _source(
    profile: FieldProfile,
    key: str,
    entry: dict[str, Any],
    ls: ir.LogSource,
    implied: tuple[ir.Predicate, ...] = (),
) -> SourceMap:
    logsource: dict[str, str] = {
        k: v for k in ("category", "product", "service") if (v := getattr(ls, k))
    }
    for k, v in (entry.get("logsource") or {}).items():
        if v is None:
            logsource.pop(k, None)
        else:
            logsource[k] = v
    emitted: dict[str, str] = {
        k: logsource[k] for k in ("category", "product", "service") if k in logsource
    }
    unavailable = dict(entry.get("unavailable") or {})
    refused = unavailable.keys() | profile.unavailable.keys()
    # the hand-written fields first (they say what a Sigma field means here), then every other
    # field the importer maps under the emitted logsource, read backwards
    fields = dict(entry.get("fields") or {})
    taken = {_target(v) for v in fields.values()}
    for ecs, name in table_fields(key_of(emitted)).items():
        if ecs not in fields and ecs not in refused and name not in taken:
            fields[ecs] = name
    return SourceMap(
        key,
        emitted,
        fields,
        dict(entry.get("prefixes") or {}),
        unavailable,
        frozenset(entry.get("numeric") or ()),
        implied,
        " ".join(str(entry["substitute"]).split()) if entry.get("substitute") else None,
    )


def sigma_source(profile: FieldProfile, ls: ir.LogSource) -> SourceMap:
    """The profile's source whose Sigma logsource is ``ls`` (as a rule names it): the engine
    harness fills a table per Sigma logsource, including categories only `select` reaches."""
    try:
        return source_map(profile, ls, ir.NO_SPAN)
    except CompileError:
        for key, entry in profile.sources.items():
            if "logsource" in entry:
                src = _source(profile, key, entry, ls)
                want = {k: v for k in ("category", "product", "service") if (v := getattr(ls, k))}
                if src.logsource == want and entry["logsource"].get("category") == ls.category:
                    return src
        raise


def selected_source(
    entry: dict[str, Any], where: ir.Predicate | None
) -> tuple[str, tuple[ir.Predicate, ...]] | None:
    """The source a product-only entry's ``select`` picks for a filter, and the filter's
    conjuncts that picked it (``field: value`` tests)."""
    conjuncts = where.items if isinstance(where, ir.And) else (() if where is None else (where,))
    for option in entry["select"]:
        used: list[ir.Predicate] = []
        for name, value in option["when"].items():
            hit = next(
                (
                    c
                    for c in conjuncts
                    if isinstance(c, ir.Eq)
                    and c.field == name
                    and c.values == (value,)
                    and not c.cased
                ),
                None,
            )
            if hit is None:
                break
            used.append(hit)
        else:
            return str(option["source"]), tuple(used)
    return None


def _prefixed(src: SourceMap, name: str) -> str | None:
    for prefix, repl in src.prefixes.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return repl + name[len(prefix) :]
    return None


def sigma_name(src: SourceMap, name: str) -> str | None:
    """The Sigma field of an ECS field ``src.fields`` does not map: the profile's prefixes
    (zeek.conn.conn_state -> conn_state), else the importer's namespace read backwards
    (winlog.event_data.Hashes -> Hashes); never a name the importer reads as another field."""
    ls = key_of(src.logsource)
    spec = _prefixed(src, name)
    if spec is not None:
        return None if shadowed(spec, name, ls) else spec
    return namespaced(name, ls)


def shadow_reason(src: SourceMap, name: str) -> str | None:
    """Why :func:`sigma_name` found none: a prefix gave a Sigma name meaning another field."""
    ls = key_of(src.logsource)
    spec = _prefixed(src, name)
    if spec is None or not shadowed(spec, name, ls):
        return None
    return (
        f"Sigma's {spec} on logsource {src.key} is {forward(spec, ls)} (the importer's "
        f"compiler/data/sigma_fields.yml), not {name}: test {forward(spec, ls)} instead"
    )


def map_field(profile: FieldProfile, src: SourceMap, name: str, span: ir.Span) -> SigmaField:
    where = f"logsource {src.key}"
    reason = src.unavailable.get(name) or profile.unavailable.get(name)
    spec: Any = src.fields.get(name)
    if spec is None and reason is None:
        spec = sigma_name(src, name)
        if spec is None:
            reason = shadow_reason(src, name)
    if reason is not None and name not in src.fields:
        help = reason
    elif spec is not None:
        if isinstance(spec, str):
            return SigmaField(spec)
        return SigmaField(
            str(spec["field"]),
            spec.get("basename"),
            bool(spec.get("bare", False)),
            {str(k): str(v) for k, v in spec["values"].items()} if spec.get("values") else None,
        )
    else:
        near = sorted(k for k in src.fields if k.split(".")[0] == name.split(".")[0])[:6]
        hint = f"mapped fields near it: {', '.join(near)}" if near else "no similar fields"
        help = f"add it to backends/profiles/{profile.name}.yml under {src.key} ({hint})"
    raise CompileError(
        [
            _diag(
                E_UNMAPPED,
                f"field '{name}' has no mapping in the {profile.name} profile for {where} (sigma)",
                span,
                help,
            )
        ]
    )


MULTI_VALUED = (
    "the Sigma specification does not say how a value matches a list-valued field: "
    "Elasticsearch backends match any element, SQL backends (pySigma's SQLite backend stores a "
    "list as its JSON text) compare the whole stored value, so a test that siemc holds when "
    "some element satisfies it may miss (or, for substrings, match across elements)"
)


def multi_valued(ctx: Context, what: str, name: str, span: ir.Span) -> None:
    """Declare a test, key or measure on an ECS array field (see MULTI_VALUED)."""
    ctx.approximate(f"{what} on the multi-valued field {name}", MULTI_VALUED, span)


def placeholder_name(lookup: str, column: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{lookup}_{column}")
