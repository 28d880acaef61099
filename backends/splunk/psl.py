"""registered_domain() exactly, with the Public Suffix List as a lookup table.

SPL has no Public Suffix List function, so the list ships as a lookup (``lookups/
siemc_public_suffix_list.csv`` in the export) built from the copy the evaluator reads (the
pinned ``publicsuffixlist`` release, docs/semantics.md, Functions). The evaluator takes the
registrable domain as that package computes it: after lower-casing and removing surrounding
blanks and trailing dots, it tries the name's suffixes from the longest and stops at the first
that is an exception rule (``!s``: the public suffix has one label fewer), a wildcard's parent
(``*.s``: one label more, or the name itself when it is ``s``) or a rule (``s``); with none, the
last label is the public suffix; the registered domain is one label more, null when the name
is not longer.

The table has one row per suffix ``s`` that any rule names, with ``rank`` =
``<labels of s>:<public labels when s is a proper suffix>:<public labels when s is the name>``
(three digits each): the query looks every suffix of the name up at once (a multivalue input
field matches each value, https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Lookup),
and the lexicographically last rank (``mvsort``) is the longest suffix that matched.
"""

from __future__ import annotations

import sys

from backends.psl_table import COLUMNS, PSL_VERSION, rows
from backends.splunk.expr import eval_str, field_ref

LOOKUP = "siemc_public_suffix_list"
FILENAME = f"{LOOKUP}.csv"
# The characters Python's str.strip() removes (str.isspace), as a PCRE class
_WS = "".join(f"\\x{{{ord(c):x}}}" for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
_TRIM = eval_str(f"^[{_WS}]+|[{_WS}]+$")

__all__ = ["COLUMNS", "FILENAME", "LOOKUP", "PSL_VERSION", "commands", "definition", "rows"]


def definition() -> str:
    """The header line naming the lookup definition (as the analytics' lookups have theirs)."""
    return (
        f"lookup definition {LOOKUP}: transforms.conf [{LOOKUP}] filename = {FILENAME}, "
        f"case_sensitive_match = true, max_matches = 1000 (the Public Suffix List of "
        f"publicsuffixlist {PSL_VERSION})"
    )


def commands(dst: str, value: str, cond: str | None) -> list[str]:
    """Commands setting field ``dst`` to the registered domain of the eval expression
    ``value`` (only on rows where ``cond`` holds, when given)."""
    d = "siemc_rd"
    name = f'lower(replace(replace({value}, {_TRIM}, ""), "\\\\.+$", ""))'
    bare = f'replace({d}, "^[\\\\[\\\\]]+|[\\\\[\\\\]]+$", "")'
    is_ip = (
        f'(match({d}, ":") OR match({d}, "[0-9]$")) AND '
        f'(cidrmatch("0.0.0.0/0", {bare}) OR cidrmatch("::/0", {bare}))'
    )
    pick = (
        f"{d}p=case({d}k==1 OR isnull({d}b), 1, tonumber(substr({d}b, 1, 3))=={d}k, "
        f"tonumber(substr({d}b, 9, 3)), true(), tonumber(substr({d}b, 5, 3)))"
    )
    result = (
        f'case({d}=="", null(), {is_ip}, {d}, match({d}, "^\\\\.|\\\\.\\\\."), null(), '
        f'{d}k>{d}p, mvjoin(mvindex({d}l, -({d}p+1), -1), "."), true(), null())'
    )
    out = field_ref(dst)
    assign = result if cond is None else f"if({cond}, {result}, {out})"
    return [
        f"eval {d}={name}",
        f'eval {d}l=split({d}, "."), {d}i=mvrange(0, mvcount({d}l))',
        f'eval {d}c=mvmap({d}i, mvjoin(mvindex({d}l, {d}i, -1), "."))',
        f"lookup {LOOKUP} suffix AS {d}c OUTPUT rank AS {d}r",
        f"eval {d}k=mvcount({d}l), {d}b=mvindex(mvsort({d}r), -1)",
        f"eval {pick}",
        f"eval {out}={assign}",
        f"fields - {d}*",
    ]
