"""The DuckDB macros' scalar fast paths give what the general rule gives, on every kind of
JSON value (backends/duckdb/macros.py ``_FAST``): a fast path may only be quicker."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backends.duckdb import macros
from compiler.engines import run_duckdb

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["443", " 1e3 ", "0x10", "nan", "A", "a", "true", ""]),
)
_VALUES = st.one_of(
    _SCALARS, st.lists(_SCALARS, max_size=4), st.dictionaries(st.text(max_size=3), _SCALARS)
)


def _con() -> Any:
    con = run_duckdb.connect()
    script = " ".join(f"{name}(v) " for name in macros.GENERAL)
    for stmt in run_duckdb._statements(macros.prelude(script)):
        if stmt.strip():
            con.execute(stmt)
    for name, (params, body) in macros.GENERAL.items():
        con.execute(f"CREATE OR REPLACE TEMP MACRO {name}_general({params}) AS {body}")
    return con


_CON = _con()


def _same(sql_fast: str, sql_general: str, *values: Any) -> None:
    args = [json.dumps(v) for v in values]
    marks = ", ".join(f"${i}::JSON" for i in range(1, len(values) + 1))
    fast, general = _CON.execute(
        f"SELECT {sql_fast}({marks}), {sql_general}({marks})", args
    ).fetchone()
    assert fast == general, (sql_fast, values)


def test_every_fast_path_has_its_general_rule() -> None:
    assert set(macros.GENERAL) == set(macros._FAST)
    for name in macros.GENERAL:
        assert macros._DEFS[name][1].endswith(f" ELSE {macros.GENERAL[name][1]} END")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_VALUES)
def test_one_value_macros_agree_with_their_general_rule(value: Any) -> None:
    for name, (params, _) in macros.GENERAL.items():
        if params == "v":
            _same(name, f"{name}_general", value)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_VALUES, _VALUES)
def test_comparisons_agree_with_their_general_rule(a: Any, b: Any) -> None:
    for name, (params, _) in macros.GENERAL.items():
        if params == "a, b":
            _same(name, f"{name}_general", a, b)
