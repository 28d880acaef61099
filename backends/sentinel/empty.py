"""Where Kusto's "an absent string is the empty string" changes a filter's answer.

Kusto strings are never null: a string column of an event without the field reads ``""``
("The string data type"), and the MDE and ASIM tables store an absent value so. The evaluator
tells the two apart: a missing field satisfies no operator except ``exists: false`` and
``field: null``. A leaf that holds for ``""`` (``field: ""``, ``contains/startswith/endswith:
""``, a regex matching ``""``) therefore also holds on every event without the field: the target
fires on more events (superset; under ``not``, fewer: subset). That is declared.

The converse, a field present with the value ``""``, cannot be stored apart from an absent one
in these tables (ingestion writes both as ``""``); ``exists``, ``field: null`` and the keys read
such a value as absent, which the kql backend documents as its data model rather than declaring
on every analytic (docs/targets.md, Exists).
"""

from __future__ import annotations

from compiler import ir
from compiler.evaluator.predicates import compile_predicate

DETAIL = (
    'a Kusto string column reads an absent value as "" (strings are never null), so this test '
    "cannot tell a missing {field} from an empty one: it {effect}"
)


def holds_on_empty(p: ir.Eq | ir.StrMatch | ir.Regex) -> bool:
    """Whether the leaf holds for a present empty string (the evaluator's answer), which is
    what Kusto answers for an event without the field."""
    return bool(compile_predicate(p, {})({p.field: ""}))
