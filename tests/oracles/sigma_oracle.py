"""The Sigma oracle: pySigma 2.0.1's loader validates rule text, pySigma-backend-sqlite 2.1.1
converts it (proof that a real backend accepts it) and runs it on an in-memory SQLite table.

Reusable by the differential tests: ``validate(text)`` returns problems (empty = accepted),
``load(text)`` returns the resolved collection, ``to_sqlite(text, placeholders)`` the SQL
queries, ``run(text, rows, placeholders)`` the rows each query returns over a ``logs`` table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sigma.backends.sqlite import sqliteBackend  # type: ignore[attr-defined]
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import ValueListPlaceholderTransformation


def validate(text: str) -> list[str]:
    """Every error pySigma reports for a multi-document rule file (empty when accepted)."""
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except Exception as exc:  # a YAML error, before any rule exists
        return [f"{type(exc).__name__}: {exc}"]
    problems = [f"{type(e).__name__}: {e}" for e in collection.errors]
    for rule in collection.rules:
        problems += [f"{rule.title}: {type(e).__name__}: {e}" for e in rule.errors]
    if problems:
        return problems
    try:
        collection.resolve_rule_references()
    except Exception as exc:
        return [f"{type(exc).__name__}: {exc}"]
    return []


def load(text: str) -> SigmaCollection:
    problems = validate(text)
    assert not problems, "\n".join(problems)
    collection = SigmaCollection.from_yaml(text)
    collection.resolve_rule_references()
    return collection


def _pipeline(placeholders: Mapping[str, Sequence[str]] | None) -> ProcessingPipeline | None:
    if not placeholders:
        return None
    return ProcessingPipeline(
        [ProcessingItem(ValueListPlaceholderTransformation())],
        vars={k: list(v) for k, v in placeholders.items()},
    )


def to_sqlite(text: str, placeholders: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The SQLite queries pySigma's sqlite backend makes of the file (one per output rule)."""
    # Sigma matches case-insensitively; SQLite's `=` does not unless the backend collates
    backend = sqliteBackend(_pipeline(placeholders), collate_nocase=True)  # type: ignore[no-untyped-call]
    queries: list[str] = backend.convert(load(text))
    return queries


def run(
    text: str,
    rows: Sequence[Mapping[str, Any]],
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> list[list[dict[str, Any]]]:
    """Run every query over a `logs` table holding ``rows`` (columns: the union of keys)."""
    queries = to_sqlite(text, placeholders)
    columns = sorted({k for r in rows for k in r} | {"timestamp"})
    con = sqlite3.connect(":memory:")
    try:
        # the backend's REGEXP needs a function; Python's re is what siemc means by `re`
        import re

        con.create_function(
            "REGEXP", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None
        )
        con.execute("CREATE TABLE logs (" + ", ".join(f'"{c}"' for c in columns) + ")")
        for r in rows:
            con.execute(
                "INSERT INTO logs VALUES (" + ", ".join("?" for _ in columns) + ")",
                [r.get(c) for c in columns],
            )
        out = []
        for q in queries:
            cur = con.execute(q)
            names = [d[0] for d in cur.description]
            out.append([dict(zip(names, row, strict=True)) for row in cur.fetchall()])
        return out
    finally:
        con.close()
