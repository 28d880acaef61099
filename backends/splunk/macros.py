"""Search macros of the Splunk target (ESCU convention): every data source's base search is a
macro users point at their own indexes, and every query ends with a per-analytic
``<name>_filter`` macro, their exclusion hook (default ``search *``, which keeps every result).

A source entry of a profile names its macro (``macro``) and the macro's default definition
(``search``). The export ships the definitions in macros.conf; the engine harness expands them
(Splunk expands a macro, written between backticks, into its definition before it parses the
search: https://docs.splunk.com/Documentation/Splunk/latest/Knowledge/Usesearchmacros).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

from backends.profiles import HERE, FieldProfile, load_profile

MACRO_CALL = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")
FILTER_DEFINITION = "search *"


def filter_macro(analytic_id: str) -> str:
    """The analytic's exclusion macro: ``an1190_filter`` for AN1190; an id that starts with a
    digit (a Sigma rule's UUID) gets the prefix ``siemc_``, since a macro name starts with a
    letter or an underscore."""
    name = re.sub(r"[^a-z0-9]+", "_", analytic_id.lower()).strip("_") + "_filter"
    return f"siemc_{name}" if name[0].isdigit() else name


def source_macros(profile: FieldProfile) -> dict[str, str]:
    """Macro name -> default definition, for every source of the profile that has a macro."""
    return {str(e["macro"]): str(e["search"]) for e in profile.sources.values() if e.get("macro")}


def definitions(query: str, profile: str, analytic_id: str) -> dict[str, str]:
    """The definitions of the macros ``query`` (compiled with ``profile``) calls, in order."""
    known = source_macros(load_profile(profile))
    known[filter_macro(analytic_id)] = FILTER_DEFINITION
    out: dict[str, str] = {}
    for name in MACRO_CALL.findall(query):
        if name in known:
            out.setdefault(name, known[name])
    return out


def default_source(profile: FieldProfile) -> dict[str, Any] | None:
    """The source whose macro a category-only logsource starts from (``default: true``)."""
    return next((e for e in profile.sources.values() if e.get("default")), None)


@functools.cache
def event_codes(profile: str) -> dict[str, dict[str, str]]:
    """``event_codes`` of a profile: EventCode -> the ECS field values its events have."""
    doc = yaml.safe_load((HERE / f"{profile}.yml").read_text(encoding="utf-8"))
    codes = doc.get("event_codes") or {}
    return {str(c): {str(k): str(v) for k, v in m.items()} for c, m in codes.items()}
