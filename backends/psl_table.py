"""The Public Suffix List as a table of suffixes, for targets that look suffixes up.

SPL and KQL have no Public Suffix List function, so the list ships as a lookup (Splunk) or a
watchlist (Sentinel) built from the copy the evaluator reads (the pinned ``publicsuffixlist``
release, docs/semantics.md, Functions). One row per suffix ``s`` that any rule names, with
``rank`` = ``<labels of s>:<public labels when s is a proper suffix>:<public labels when s is
the name>`` (three digits each), so the longest suffix of a name that matched is the
lexicographically last rank (backends/splunk/psl.py, backends/sentinel/psl.py).
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList
from publicsuffixlist import __version__ as PSL_VERSION

COLUMNS = ("suffix", "rank")

__all__ = ["COLUMNS", "PSL_VERSION", "rows"]


@functools.cache
def rows() -> tuple[tuple[str, str], ...]:
    """(suffix, rank) rows, sorted by suffix."""
    # the parsed rule set of the package (its own lower-casing and IDN encoding applied)
    rules: frozenset[str] = PublicSuffixList()._publicsuffix
    kinds: dict[str, str] = {}
    for r in rules:
        if r.startswith("!"):
            s, kind = r[1:], "exception"
        elif r.startswith("*."):
            s, kind = r[2:], "wildcard"
        else:
            s, kind = r, "rule"
        # the package checks, for one suffix, the exception, then the wildcard, then the rule
        order = ("exception", "wildcard", "rule")
        if s not in kinds or order.index(kind) < order.index(kinds[s]):
            kinds[s] = kind
    out = []
    for s, kind in kinds.items():
        depth = s.count(".") + 1
        proper = {"exception": depth - 1, "wildcard": depth + 1, "rule": depth}[kind]
        whole = depth - 1 if kind == "exception" else depth
        out.append((s, f"{depth:03d}:{proper:03d}:{whole:03d}"))
    return tuple(sorted(out))
