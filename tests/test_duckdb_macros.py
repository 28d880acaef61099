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
    # as json.dumps spells them (escapes, spaces) and as DuckDB writes them (compact, raw UTF-8):
    # the string fast path reads the text itself
    for dump in (json.dumps, lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))):
        _same_texts(sql_fast, sql_general, *(dump(v) for v in values))


def _same_texts(sql_fast: str, sql_general: str, *texts: str) -> None:
    marks = ", ".join(f"${i}::JSON" for i in range(1, len(texts) + 1))
    fast, general = _CON.execute(
        f"SELECT {sql_fast}({marks}), {sql_general}({marks})", list(texts)
    ).fetchone()
    assert repr(fast) == repr(general), (sql_fast, texts)  # repr: NaN equals itself


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
        elif params == "v, k":  # siemc_raw: the element with a key the value has, or another
            _same(name, f"{name}_general", value, "a")
            _same_texts(name, f"{name}_general", json.dumps(value), '"443"')


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_VALUES, _VALUES)
def test_comparisons_agree_with_their_general_rule(a: Any, b: Any) -> None:
    for name, (params, _) in macros.GENERAL.items():
        if params == "a, b":
            _same(name, f"{name}_general", a, b)


# JSON texts no Python value dumps to: numbers beyond 64 bits, overflowing, NaN and Infinity
# (DuckDB reads them), exponents, padding, escapes
_TEXTS = [
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0.0",
    "1.5E+3",
    "123456789012345678901234567890",
    "-9223372036854775809",
    "18446744073709551615",
    " 7 ",
    ' "x" ',
    '"a\\u0041"',
    '"\\"\\""',
    '"\\\\"',
    '""',
    "true",
    "null",
    '[ 1 , "2" ]',
]


def test_fast_paths_agree_on_json_texts_python_does_not_write() -> None:
    for text in _TEXTS:
        for name, (params, _) in macros.GENERAL.items():
            if params == "v":
                _same_texts(name, f"{name}_general", text)
            elif params == "v, k":
                _same_texts(name, f"{name}_general", text, '"x"')
            else:
                for other in ('"1e3"', "1000", text):
                    _same_texts(name, f"{name}_general", text, other)
