"""registered_domain() exactly in KQL, with the Public Suffix List as a Sentinel watchlist.

KQL has no Public Suffix List (parse_url() knows none either:
https://learn.microsoft.com/kusto/query/parse-url-function), so the list ships as the watchlist
:data:`ALIAS` (``siemc export --target sentinel`` writes its CSV and ARM template): the rows
:mod:`backends.psl_table` builds from the copy the evaluator reads (Splunk's lookup too), one
per suffix ``s`` that a rule names, with ``rank`` = ``<labels of s>:<public labels when s is a
proper suffix>:<public labels when s is the name>``; the search key is the suffix.
``_GetWatchlist(alias)`` returns the CSV's columns beside ``SearchKey``, the search key's value
(https://learn.microsoft.com/azure/sentinel/watchlists-queries).

The query's function :data:`FUNCTION` replaces a normalised name in column ``__rd`` (lower case,
surrounding blanks and trailing dots removed: :func:`backends.sentinel.domains.normalised`) by
its registered domain as the evaluator computes it (compiler/evaluator/values.py): one row per
suffix of the name (``mv-expand with_itemindex``), each looked up in the watchlist, and of each
name's rows the one of the longest listed suffix (the smallest label index) decides how many
labels are public: the rule's own count, or one when none is listed; the registered domain is
one label more, "" (Kusto's null string) when the name is not longer, has an empty label or is
blank. An IP address stays as it is: :data:`IP_ADDRESS` accepts exactly what Python's
``ipaddress.ip_address`` accepts after the evaluator's bracket strip (tests/test_backend_kql.py
proves it on generated addresses).
"""

from __future__ import annotations

from backends.psl_table import COLUMNS, PSL_VERSION, rows
from compiler import ir

ALIAS = "siemc_public_suffix_list"
FUNCTION = "siemc_registered_domain"
SEARCH_KEY = COLUMNS[0]  # the CSV column Sentinel indexes (SearchKey)
_KEY = "__suffix"
COLUMN = "__rd"  # the name in, the registered domain out

# Python's ipaddress: four decimal octets without leading zeros (IPv4Address); eight hextets of
# one to four hex digits, one "::" standing for at least one of them, the last two possibly an
# IPv4 address, then an optional non-empty %scope without "%" or "/" (IPv6Address). The
# evaluator strips brackets from both ends first and tests only names containing ":" or ending
# with a digit, so an IPv4 address takes no trailing bracket.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_H = r"[0-9a-f]{1,4}"
_LS32 = rf"({_H}:{_H}|{_V4})"


def _v6() -> str:
    forms = [rf"({_H}:){{6}}{_LS32}", rf"::({_H}:){{5}}{_LS32}"]
    # RFC 3986's IPv6address: before "::" at most n groups, after it the rest of eight
    for before, after in ((0, 4), (1, 3), (2, 2), (3, 1), (4, 0)):
        head = f"({_H}(:{_H}){{0,{before}}})?" if before else f"({_H})?"
        tail = f"({_H}:){{{after}}}{_LS32}" if after else _LS32
        forms.append(f"{head}::{tail}")
    forms.append(f"({_H}(:{_H}){{0,5}})?::{_H}")
    forms.append(f"({_H}(:{_H}){{0,6}})?::")
    return "(" + "|".join(forms) + ")"


_BR = r"[\[\]]*"
IP_ADDRESS = rf"^{_BR}({_V4}|{_v6()}(%[^%/]*[^%/\[\]])?{_BR})$"

__all__ = [
    "ALIAS",
    "COLUMN",
    "FUNCTION",
    "IP_ADDRESS",
    "PSL_VERSION",
    "function_body",
    "lookup",
    "note",
]


def function_body() -> str:
    """The ``let`` body of :data:`FUNCTION` (a tabular function of the rows to enrich)."""
    watchlist = f"_GetWatchlist('{ALIAS}') | project {_KEY} = SearchKey, __rank = rank"
    # rank: three digits each (module docstring); a whole-name match reads the third part
    public = "iff(isempty(__rank), 1, toint(substring(__rank, iff(__i == 0, 8, 4), 3)))"
    domain = (
        f"case({COLUMN} matches regex @'{IP_ADDRESS}', {COLUMN}, "
        f"__public < array_length(__labels) and {COLUMN} !startswith '.' "
        f"and {COLUMN} !contains '..', "
        "strcat_array(array_slice(__labels, -(__public + 1), -1), '.'), '')"
    )
    return "\n".join(
        [
            f"(events:({COLUMN}:string)) {{",
            "    events",
            f"    | extend __row = new_guid(), __labels = split({COLUMN}, '.')",
            "    | mv-expand with_itemindex = __i __label = __labels to typeof(string)",
            f"    | extend {_KEY} = strcat_array(array_slice(__labels, __i, -1), '.')",
            f"    | lookup kind=leftouter ({watchlist}) on {_KEY}",
            "    // the longest listed suffix of each name decides",
            "    | extend __order = iff(isempty(__rank), 1000000, __i)",
            "    | summarize arg_min(__order, *) by __row",
            f"    | extend __public = {public}",
            "    // an IP address (as Python's ipaddress reads it) stays as it is",
            f"    | extend {COLUMN} = {domain}",
            f"    | project-away __row, __order, __labels, __i, __label, {_KEY}, __rank, __public",
            "}",
        ]
    )


def note() -> str:
    return (
        f"registered_domain() reads the watchlist {ALIAS} (the Public Suffix List of "
        f"publicsuffixlist {PSL_VERSION}, search key {SEARCH_KEY}; siemc export --target "
        "sentinel writes it)"
    )


def lookup() -> ir.Lookup:
    """The watchlist's rows as a lookup, for the export and the engine harness."""
    return ir.Lookup(ALIAS, f"{ALIAS}.csv", COLUMNS, rows())
