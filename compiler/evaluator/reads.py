"""Every event field an evaluation may read, so that ``siemc run`` builds only those of each
input record (compiler.inputs.project).

The evaluator reads event fields by name only (``fields.get(name)``), and every name it reads
is written in the analytic: a predicate's or a measure's field, a key, a join or lookup field, a
derived field, a baseline field (``alias.field`` for a correlation step's), a field of a
logsource's condition (compiler.evaluator.streams), plus ``@timestamp`` and ``event.id``, which
make the event. Rather than list where names stand in the IR (a list a new construct could
miss), the walk takes every string of the analytic's streams, detection and baselines, and each
dotted suffix of it (``a.process.name`` also gives ``process.name`` and ``name``): a superset.
Only the strings that are values compared with fields (filter values, patterns, networks) and the
lookup tables are left out; they are never read as names. A value of a type the walk does not
know (a mapping, say) disables the projection rather than risk missing a name in it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from compiler import ir
from compiler.evaluator.streams import logsource_predicate

_VALUES = {
    ir.Eq: ("values",),
    ir.StrMatch: ("values",),
    ir.Regex: ("patterns",),
    ir.Cidr: ("networks",),
    ir.Span: ("path",),
}
ALWAYS = ("@timestamp", "event.id")


def read_fields(analytics: Iterable[ir.Analytic]) -> frozenset[str] | None:
    """The names of the event fields the evaluation of ``analytics`` may read (a superset), or
    None when the analytic holds something the walk does not know (then every field is read)."""
    found: set[str] = set(ALWAYS)
    try:
        for a in analytics:
            _strings((a.streams, a.detection, a.baselines), found)
            for stream in a.streams:
                if isinstance(stream.source, ir.LogSource):
                    _strings(logsource_predicate(stream.source), found)
    except _Unknown:
        return None
    out: set[str] = set()
    for s in found:
        parts = s.split(".")
        out.update(".".join(parts[i:]) for i in range(len(parts)))
    return frozenset(out)


class _Unknown(Exception):
    pass


def _strings(node: Any, found: set[str]) -> None:
    if isinstance(node, str):
        found.add(node)
    elif isinstance(node, tuple | list):
        for item in node:
            _strings(item, found)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        skip = _VALUES.get(type(node), ())
        for f in dataclasses.fields(node):
            if f.name not in skip:
                _strings(getattr(node, f.name), found)
    elif node is not None and not isinstance(node, int | float):  # bool is an int
        raise _Unknown(type(node).__name__)
