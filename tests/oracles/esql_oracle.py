"""The ES|QL oracle: Elastic's offline parser and analyzer (``detection-rules-esql-py``, module
``esql``). No Elasticsearch runs offline, so queries are checked, not executed.

``validate(query, lookups, stack=...)`` parses the query with the grammar of the target stack
(the backend's ``--stack``, default 9.3), rejects features newer than that version
(``verify_features``), analyses it against the ECS schema of ``esql_ecs_schema.yml`` plus the
lookup indices (unknown fields and functions, type errors, columns dropped by STATS/KEEP/DROP)
and checks the shape detection rules need
(``validate_detection_rule_query``: METADATA _id, _index, _version and KEEP). It raises the
library's ``EsqlError`` on the first problem.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import esql
import yaml

from backends.elastic_esql import DEFAULT_STACK, lookup_index, lookup_key
from compiler import ir

SCHEMA_FILE = Path(__file__).resolve().parent / "esql_ecs_schema.yml"


@functools.cache
def ecs_types() -> dict[str, str]:
    doc = yaml.safe_load(SCHEMA_FILE.read_text("utf-8"))
    return {str(k): str(v) for k, v in doc.items()}


def lookup_schema(columns: Sequence[str]) -> dict[str, str]:
    """The fields of a ``siemc-lookup-<name>`` index as the backend's contract defines them."""
    fields = {c: "keyword" for c in columns}
    fields.update({lookup_key(c): "keyword" for c in columns})
    fields["siemc_row"] = "long"
    return fields


def lookups_of(analytic: ir.Analytic) -> dict[str, list[str]]:
    return {lk.name: list(lk.columns) for lk in analytic.lookups}


def validate(
    query: str,
    lookups: Mapping[str, Sequence[str]] | None = None,
    *,
    extra_fields: Mapping[str, str] | None = None,
    rule_shape: bool = True,
    stack: str = DEFAULT_STACK,
) -> esql.ast.EsqlQuery:
    fields = dict(ecs_types())
    fields.update(extra_fields or {})
    schema = esql.Schema(
        fields,
        lookups={lookup_index(n): lookup_schema(cols) for n, cols in (lookups or {}).items()},
    )
    version = stack + ".0"
    with esql.ParserConfig(min_stack_version=version):
        tree = esql.parse_query(query)
        esql.verify_features(tree, version)
        esql.analyze(tree, schema)
        if rule_shape:
            esql.validate_detection_rule_query(tree)
    return tree
