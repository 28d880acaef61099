"""Python scalar functions the compiled DuckDB queries call, registered on each connection.

DuckDB runs embedded in siemc, so where SQL built-ins would only resemble the evaluator (the
Public Suffix List, the IP address scanner, deviation statistics over exact moments), the query
calls the evaluator's own code instead, and the two cannot disagree. Values cross as JSON text,
the form every field and expression has in the compiled queries (backends/duckdb/exprs.py).

A script that calls one of these runs only on a connection :func:`register` prepared
(``siemc run``, ``siemc test``); the backend says so in the artifact's header.
"""

from __future__ import annotations

import json
from typing import Any

from compiler import ir
from compiler.evaluator.aggregate import _deviation_holds
from compiler.evaluator.values import call, to_number

# language function -> SQL function (one JSON argument, a JSON result)
CALLS = {
    "registered_domain": "siemc_py_registered_domain",
    "extract_ips": "siemc_py_extract_ips",
}
DEVIATES = "siemc_py_deviates"
NAMES = (*CALLS.values(), DEVIATES)  # a script calling none runs without registering them


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _caller(func: str) -> Any:
    def run(text: str | None) -> str | None:
        return _dump(call(func, [_load(text)]))

    return run


def _deviates(
    current: str | None,
    past: list[str | None] | None,
    k: float | None,
    p: float | None,
    n: int,
    ratio: float | None,
    below: bool,
    include_current: bool,
) -> bool:
    """The evaluator's deviation rule: ``current`` (a measure value as JSON) against the group's
    past window values (JSON; nulls and non-numbers are not history)."""
    rule = ir.Deviation(
        measure="",
        lookback_ms=0,
        k=k,
        percentile=p,
        min_history=n,
        ratio=ratio,
        direction="below" if below else "above",
        include_current=include_current,
    )
    values = [to_number(_load(v)) for v in past or ()]
    return _deviation_holds(rule, to_number(_load(current)), [v for v in values if v is not None])


def register(con: Any) -> None:
    """Create the functions on DuckDB connection ``con``."""
    for func, name in CALLS.items():
        # special null handling: SQL NULL reaches Python as None, as a missing field reaches
        # the evaluator (every function of the language decides what null gives)
        con.create_function(
            name, _caller(func), ["VARCHAR"], "VARCHAR", null_handling="special", side_effects=False
        )
    con.create_function(
        DEVIATES,
        _deviates,
        ["VARCHAR", "VARCHAR[]", "DOUBLE", "DOUBLE", "BIGINT", "DOUBLE", "BOOLEAN", "BOOLEAN"],
        "BOOLEAN",
        null_handling="special",
        side_effects=False,
    )
