"""``registered_domain(x) == d`` as a regular expression on ``x``, proven against the PSL.

The evaluator's registered_domain() (docs/semantics.md, Functions) removes surrounding blanks
(``str.strip()``) and then trailing dots, lower-cases, and asks ``publicsuffixlist`` for the
private suffix: null for a name with an empty label; otherwise the package tries the name's
suffixes from the longest and stops at the first that is an exception rule, a wildcard's parent
or a rule (backends/splunk/psl.py spells the algorithm out).

For a registered domain ``d`` (``registered_domain(d) == d``) this gives, for a stripped name
``n`` without empty labels: ``registered_domain(n) == d`` exactly when ``n`` is ``d`` or ends
with ``.d``, and neither is nor ends with ``.s`` for any suffix ``s`` a rule names below ``d``
(a plain, wildcard or exception rule whose suffix ends with ``.d``, such as
``map.fastly.net`` below ``fastly.net``). Proof: such a rule is tried before ``d`` and makes the
public suffix at least as long as ``d`` (so the registered domain is longer, or null); without
one, every suffix tried before ``d`` names no rule, and the search ends where it ends for ``d``
itself, at a public suffix one label shorter than ``d``. The name in the event may carry the
blanks and trailing dots the function removes, which the pattern allows around the name.

The pattern spells out Python's blanks (``str.isspace``), since ``\\s`` means ASCII blanks in
Lucene, RE2 and PCRE; it is case-insensitive, as the test it replaces (lower-cased texts).
"""

from __future__ import annotations

import functools
import re

from compiler import ir

# Every character str.strip() removes (str.isspace), as class ranges (pinned by a test): escapes
# Python's re, RE2 and the Lucene translation all read, the others as themselves.
BLANKS = r"\t-\r\x1c-\x20\x85\xa0" + "\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# More suffixes below one domain than this are not excluded one by one: the test then also
# matches the names under them (a declared superset), as a small query no engineer would
# write otherwise.
BELOW_LIMIT = 16


def names_pattern(domains: list[str]) -> str:
    """The names whose registered domain is one of ``domains`` when no rule lies below them:
    the domain or a subdomain with non-empty labels, the first starting after the blanks,
    with blanks around it and dots after it."""
    alt = "|".join(re.escape(d) for d in domains)
    return rf"^[{BLANKS}]*(?:[^.{BLANKS}][^.]*\.(?:[^.]+\.)*)?(?:{alt})\.*[{BLANKS}]*$"


def under_pattern(suffixes: list[str]) -> str:
    """Names (with non-empty labels) that are or end with one of ``suffixes``."""
    alt = "|".join(re.escape(s) for s in suffixes)
    return rf"^[{BLANKS}]*(?:[^.]+\.)*(?:{alt})\.*[{BLANKS}]*$"


def domain_test(
    name: str, domains: list[str], span: ir.Span
) -> tuple[ir.Predicate, dict[str, list[str]]]:
    """A test on field ``name`` equal to ``registered_domain(name) in domains`` (each one a
    registered domain, lower-case), and the suffixes below each domain it could not exclude
    (where it also matches names whose registered domain is longer)."""
    plain = [d for d in domains if not suffixes_below(d)]
    alts: list[ir.Predicate] = []
    if plain:
        alts.append(ir.Regex(name, (names_pattern(plain),), span=span))
    kept: dict[str, list[str]] = {}
    for d in domains:
        below = suffixes_below(d)
        if not below:
            continue
        names = ir.Regex(name, (names_pattern([d]),), span=span)
        if len(below) > BELOW_LIMIT:
            kept[d] = below
            alts.append(names)
            continue
        under = ir.Regex(name, (under_pattern(below),), span=span)
        alts.append(ir.And((names, ir.Not(under, span)), span))
    return (alts[0] if len(alts) == 1 else ir.Or(tuple(alts), span)), kept


def suffixes_below(domain: str) -> list[str]:
    """The suffixes that PSL rules (plain, wildcard or exception) name below ``domain``."""
    tail = "." + domain
    return sorted({s for s in _rule_suffixes() if s.endswith(tail)})


@functools.cache
def _rule_suffixes() -> frozenset[str]:
    # the evaluator's own list (compiler.evaluator.values), so both read the same snapshot;
    # publicsuffixlist keeps its parsed rules, wildcards and exceptions spelled as in the PSL
    from compiler.evaluator.values import _psl

    rules: frozenset[str] = getattr(_psl(), "_publicsuffix", frozenset())
    return frozenset(r.removeprefix("!").removeprefix("*.") for r in map(str, rules))
