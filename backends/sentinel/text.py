"""Escaping and literal spelling for KQL (the kql backend's text layer).

String literals follow the Kusto docs page "The string data type": double-quoted, with the
backslash escapes it documents; other control characters are spelled by code point. Regular
expressions are re-spelled for RE2 by :mod:`backends.regex_re2`.
"""

from __future__ import annotations

import re

from compiler.ir import Scalar

# The escapes the Kusto docs define for string literals ("The string data type": the enclosing
# quote, \t, \n and the backslash). Every other control character (\r included) is spelled with
# unicode_codepoints_to_string() ("Converts one or more UTF-8 code points to a string"), joined by
# strcat(): an undocumented escape such as \u0001 may not mean that character to the engine.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}
_REPLACEMENT = 0xFFFD  # ingestion replaces invalid UTF-8 (a lone surrogate) with U+FFFD


def _spelled_apart(ch: str) -> bool:
    o = ord(ch)
    return ch not in _ESCAPES and (o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF)


def string(value: str) -> str:
    parts: list[str] = []
    run: list[str] = []
    for ch in value:
        if _spelled_apart(ch):
            if run:
                parts.append('"' + "".join(run) + '"')
                run = []
            o = ord(ch)
            parts.append(
                f"unicode_codepoints_to_string({_REPLACEMENT if 0xD800 <= o <= 0xDFFF else o})"
            )
        else:
            run.append(_ESCAPES.get(ch, ch))
    if run or not parts:
        parts.append('"' + "".join(run) + '"')
    return parts[0] if len(parts) == 1 else "strcat(" + ", ".join(parts) + ")"


def number(value: float | int) -> str:
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 2**53):
        return str(int(value))
    return repr(float(value))


def scalar(value: Scalar) -> str:
    if value is None:
        return "dynamic(null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number(value)
    return string(value)


_UNITS = ((86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"))


def timespan(ms: int) -> str:
    for size, unit in _UNITS:
        if ms % size == 0 and ms != 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


# The words Kusto.Language lexes as keywords (SyntaxFacts.IsKeyword over every SyntaxKind of
# @kusto/language-service-next 12.4.1, plus the literals true/false). A bare keyword is not a name
# in every position (a measure named `queries` broke `summarize queries = count()`), and the
# Kusto docs ("Identifier naming rules", https://learn.microsoft.com/kusto/query/schema-entities/
# entity-names) say a name that is a keyword, or is not an identifier, is written ['name'].
_KEYWORD_TEXT = """
    __contextual_datatable __crossCluster __crossDB __executeAndCache __id __isFuzzy
    __noWithSource __packedColumn __partitionby __projectAway __sourceColumnIndex access
    accumulate alias and anomalychart areachart as asc bagexpansion barchart best_effort
    between bin bin_legacy bool boolean by byte cachingpolicy callout cancel card char
    columnchart consume contains contains_cs containscs count cycles database dataexport
    dataformat datascope datatable date datetime datetime_pattern decimal declare decodeblocks
    default desc distinct double dynamic earliest edges encodingpolicy endswith endswith_cs
    entity_group evaluate expandoutput extend extent_tags_retention external_data externaldata
    facet false filter find first flags float force_remote fork from getschema graph guid
    harddelete hardretention has has_all has_any has_cs hasprefix hasprefix_cs hassuffix
    hassuffix_cs hotcache id in inline_external_table int int16 int32 int64 int8 invoke
    isfuzzy join journal kind ladderchart last latest let like likecs limit linechart long
    lookup materialize mdm missing mvapply mvexpand nodes nooptimization notcontains
    notcontainscs notlike notlikecs null nulls of on optional or order others output pack
    parse partition pathformat pattern piechart pivotchart plotly print project queries
    query_parameters query_results range real reduce regex relaxed render restrict
    restricted_view_access row_level_security rowstore rowstore_references rowstore_sealinfo
    rowstorepolicy rowstores sample scan scatterchart seal seals search serialize set shards
    simple softdelete softretention sort sql stackedareachart startswith startswith_cs
    statistics step storedqueryresultcontainers string summarize tablepurge take time
    timechart timeline timepivot timespan title to top toscalar totable treemap true typeof
    uint uint16 uint32 uint64 uint8 ulong union uniqueid unrestrictedviewers uuid verbose view
    viewers views where with with_itemindex with_match_id with_node_id with_source
    with_step_name withsource writeaheadlog
    """
KEYWORDS = frozenset(_KEYWORD_TEXT.split())

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def ident(name: str) -> str:
    """A column or let name as KQL accepts it: bare when an identifier that is not a keyword,
    else ['quoted'] (backslash escapes, as in a single-quoted string literal)."""
    # Keywords are case-sensitive, but the bool literals are read in any case (TRUE, False:
    # "The bool data type", https://learn.microsoft.com/kusto/query/scalar-data-types/bool).
    if _PLAIN.fullmatch(name) and name not in KEYWORDS and name.lower() not in ("true", "false"):
        return name
    out = []
    for ch in name:
        if ch in ("\\", "'"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "['" + "".join(out) + "']"
