"""The EQL oracle: Elastic's ``eql`` library (1.0.1).

``validate(query)`` parses with the Elasticsearch dialect (``elasticsearch_syntax``) and the
features newer stacks accept (missing events ``![...]``, ``sample``, ``runs``), returning the
caret-marked error text or None. ``run(query, events)`` executes a query with
``eql.PythonEngine`` over flat ECS events and returns, per result, the ids of its events.

Engine caveats (do not mistake them for backend bugs):
* every string comparison and every ``by`` key is case-insensitive in the Python engine, while
  Elasticsearch compares ``==``, ``in``, ``like`` and keys case-sensitively: keep case-only
  differences out of executed fixtures;
* the parser keeps ``![...]`` (the step is ``is_negated``), but the engine reports such a
  sequence at the next same-key event that fails the step's filter and never when maxspan runs
  out, unlike Elasticsearch, so missing-event sequences are not executed (``run`` refuses them);
* the engine converts ``maxspan`` to whole seconds (``1500ms`` acts as ``1s``);
* the event type is ``event.category`` (its first value when it is a list), as Elasticsearch
  reads the category from that field.

This module must not be named ``eql_*``: the eql package imports such modules as plugins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import eql


class OracleRefused(RuntimeError):
    """The Python engine cannot execute this query faithfully."""


def _config() -> list[Any]:
    p = eql.parser
    return [p.elasticsearch_syntax, p.allow_negation, p.allow_sample, p.allow_runs]


def parse(query: str) -> Any:
    cfgs = _config()
    for c in cfgs:
        c.__enter__()
    try:
        return eql.parse_query(query)
    finally:
        for c in reversed(cfgs):
            c.__exit__(None, None, None)


def validate(query: str) -> str | None:
    """None when the Elasticsearch dialect accepts ``query``, else the parser's error."""
    try:
        parse(query)
    except eql.EqlError as exc:
        return str(exc)
    except ValueError as exc:  # eql 1.0.1 crashes on some string escapes instead of reporting
        return f"eql crashed: {exc}"
    return None


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # a scalar and an object under one name: keep both
                child = node[part] = {"": child}
            node = child
        node[parts[-1]] = value
    return out


def run(query: str, events: Iterable[tuple[int, Mapping[str, Any]]]) -> list[list[str]]:
    """Execute ``query`` over ``(ts_ms, flat ECS fields)`` events (in time order); returns the
    ``event.id`` lists of the results, in the engine's output order."""
    ast = parse(query)
    # from the tree, not the text: `![` may stand inside a string literal
    if _has_missing_event(ast):
        raise OracleRefused(
            "the eql Python engine does not run missing-event (![...]) steps as Elasticsearch does"
        )
    results: list[list[str]] = []
    # time_unit: ticks per second of Event.time (the default is Windows FILETIME, 10**7).
    engine = eql.PythonEngine({"print": False, "time_unit": 1000})
    engine.add_query(ast)
    engine.add_output_hook(
        lambda out: results.append([str(e.data.get("event", {}).get("id")) for e in out.events])
    )
    stream = []
    for ts, fields in events:
        category = fields.get("event.category")
        if isinstance(category, list):
            category = category[0] if category else None
        stream.append(eql.Event(str(category) if category is not None else "", ts, _nest(fields)))
    engine.stream_events(stream)
    return results


def _has_missing_event(ast: Any) -> bool:
    import eql

    for node in ast:
        if isinstance(node, eql.ast.SubqueryBy):
            flag = node.params.kv.get("is_negated") if node.params else None
            if flag is not None and flag.value:
                return True
    return False
