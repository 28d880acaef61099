"""Elastic ES|QL target: one piped query per analytic (``FROM ... | WHERE ... | STATS ...``).

Layers, each importing only those below it: ``common`` (names, durations), ``stack`` (what each
Elastic Stack version has), ``regex`` and ``expr`` (filters and expressions), ``rename``,
``build`` (one stream: FROM, LOOKUP JOIN, EVAL, WHERE), ``streams`` (several streams in one read,
stream joins), ``baselines`` (per-candidate first-seen), ``aggregate`` and ``sequence``
(detections), ``backend`` (the Backend class).

Lookups are LOOKUP JOINs against lookup-mode indices named ``siemc-lookup-<name>``, loaded from
the analytic's CSV with, for every column ``c``: ``c`` (the cell text, empty cells left out),
``siemc_lc_<c>`` (the cell text lower-cased, because siemc matches lookups case-insensitively)
and ``siemc_row`` (the 1-based CSV row). See docs/semantics.md for the meaning reproduced here.
"""

from backends.elastic_esql.backend import EsqlBackend, stack_of
from backends.elastic_esql.common import lookup_index, lookup_key
from backends.elastic_esql.stack import DEFAULT_STACK, STACKS, Stack, parse_stack

__all__ = [
    "DEFAULT_STACK",
    "STACKS",
    "EsqlBackend",
    "Stack",
    "lookup_index",
    "lookup_key",
    "parse_stack",
    "stack_of",
]
