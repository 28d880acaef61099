"""Value coercion and expression semantics of the reference evaluator."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import ir
from compiler.evaluator.values import (
    compare,
    compile_expr,
    eval_expr,
    extract_ips,
    to_number,
    truthy,
)


def lit(v: ir.Scalar) -> ir.Literal_:
    return ir.Literal_(v)


def f(name: str) -> ir.FieldRef:
    return ir.FieldRef(name)


def ev(expr: ir.Expr, **fields: Any) -> Any:
    flat = {k.replace("__", "."): v for k, v in fields.items()}
    return eval_expr(expr, lambda r: flat.get(r.name), None)


def b(op: ir.BinOpKind, left: ir.Expr, right: ir.Expr) -> ir.BinOp:
    return ir.BinOp(op, left, right)


def call(func: str, *args: ir.Expr) -> ir.Call:
    return ir.Call(func, args)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (443, 443),
        (1.5, 1.5),
        ("443", 443),
        (" 1.5 ", 1.5),
        ("1e3", 1000.0),
        ("-2", -2),
        (".5", 0.5),
        (True, None),
        (False, None),
        (None, None),
        ("abc", None),
        ("0x10", None),
        ("1_000", None),
        ("nan", None),
        ("inf", None),
        (float("nan"), None),
        ("", None),
        (["1"], None),
        # digits of other scripts: int() and float() read them, no SIEM does
        ("\u0664\u0661\u0660\u0664", None),
        ("\uff14\uff11", None),
        ("1\u0661", None),
    ],
)
def test_to_number(raw: Any, expected: Any) -> None:
    got = to_number(raw)
    assert got == expected
    assert type(got) is type(expected)


def test_arithmetic_coerces_numeric_strings_and_keeps_ints() -> None:
    assert ev(b("+", f("a"), lit(1)), a="41") == 42
    assert type(ev(b("*", f("a"), lit(2)), a=3)) is int
    assert ev(b("/", lit(10), lit(4))) == 2.5
    assert type(ev(b("/", lit(10), lit(5)))) is float


def test_division_by_zero_or_null_is_null() -> None:
    ratio = b("/", f("out"), f("in"))
    assert ev(ratio, out=100, **{"in": 0}) is None
    assert ev(ratio, out=100, **{"in": "0"}) is None
    assert ev(ratio, out=100) is None
    assert ev(b(">=", ratio, lit(10)), out=100, **{"in": 0}) is False


def test_arithmetic_with_null_or_non_numbers_is_null() -> None:
    assert ev(b("+", f("a"), lit(1))) is None
    assert ev(b("+", f("a"), lit(1)), a="x") is None
    assert ev(b("+", f("a"), lit(1)), a=True) is None
    assert ev(b("+", f("a"), lit(1)), a=[1, 2]) is None
    assert ev(ir.UnaryOp("-", f("a")), a="5") == -5
    assert ev(ir.UnaryOp("-", f("a"))) is None


def test_comparisons_with_null_are_false() -> None:
    for op in ("==", "!=", "<", "<=", ">", ">="):
        assert ev(b(op, f("a"), lit(1))) is False
    assert ev(b("==", f("a"), lit(None)), a=1) is False
    assert ev(b("!=", f("a"), lit(None)), a=1) is False


def test_string_equality_is_case_insensitive() -> None:
    assert ev(b("==", f("p"), lit("powershell.exe")), p="PowerShell.EXE") is True
    assert ev(b("!=", f("p"), lit("powershell.exe")), p="PowerShell.EXE") is False
    assert ev(b("<", lit("a"), lit("B"))) is True


def test_numeric_comparison_and_mixed_kinds() -> None:
    assert ev(b("==", f("port"), lit(443)), port="443") is True
    assert ev(b(">", f("n"), lit(9)), n="10") is True  # numerically, not "10" < "9"
    assert compare("==", "abc", 1) is False
    assert compare("!=", "abc", 1) is True
    assert compare("<", "abc", 1) is False
    assert compare("==", True, True) is True
    assert compare("==", True, 1) is False


def test_multi_value_comparison_is_existential() -> None:
    assert compare("==", ["a", "B"], "b") is True
    assert compare("==", [], "b") is False
    assert compare("==", "b", ["x", "B"]) is True


def test_boolean_logic_null_is_falsy() -> None:
    assert ev(b("and", f("a"), lit(True))) is False
    assert ev(b("or", f("a"), lit(True))) is True
    assert ev(ir.UnaryOp("not", f("a"))) is True
    assert ev(ir.UnaryOp("not", f("a")), a="x") is False
    assert [truthy(v) for v in (0, 1, "", "x", [], [0], None, 0.0)] == [
        False,
        True,
        False,
        True,
        False,
        True,
        False,
        False,
    ]


def test_string_functions_map_multi_values() -> None:
    assert ev(call("lower", f("a")), a="ABC") == "abc"
    assert ev(call("upper", f("a")), a=["a", "b"]) == ["A", "B"]
    assert ev(call("lower", f("a"))) is None
    assert ev(call("lower", f("a")), a=5) == 5
    assert ev(call("basename", f("a")), a=r"C:\Windows\System32\cmd.exe") == "cmd.exe"
    assert ev(call("basename", f("a")), a="/usr/bin/curl") == "curl"
    assert ev(call("basename", f("a")), a=["/a/b", r"c\d"]) == ["b", "d"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("www.Example.COM", "example.com"),
        ("example.com.", "example.com"),
        (" www.example.com.. ", "example.com"),
        # ICANN multi-label suffixes (the issue: the last two labels gave co.uk)
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("a.b.example.com.au", "example.com.au"),
        # private-section suffixes count: github.io and map.fastly.net are public suffixes
        ("microsoft.github.io", "microsoft.github.io"),
        ("a.b.Microsoft.GitHub.io", "microsoft.github.io"),
        ("a.b.c.github.map.fastly.net", "github.map.fastly.net"),
        # wildcard and exception rules (*.ck, !www.ck)
        ("a.b.example.ck", "b.example.ck"),
        ("www.ck", "www.ck"),
        # unlisted TLDs fall under the default rule `*`: the last two labels
        ("host.corp.internal-tld", "corp.internal-tld"),
        # a public suffix or a single label has no registered domain
        ("co.uk", None),
        ("github.io", None),
        ("com", None),
        ("localhost", None),
        ("a..example.com", None),
        # IDNs: the Unicode and the punycode (ACE) forms each resolve, in their own form
        ("www.Bücher.example.de", "example.de"),
        ("shop.bücher.de", "bücher.de"),
        ("shop.xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("www.example.xn--p1ai", "example.xn--p1ai"),
        ("www.пример.рф", "пример.рф"),
        # addresses are returned as they are (lower-cased)
        ("10.1.2.3", "10.1.2.3"),
        ("FE80::1", "fe80::1"),
        ("[2001:db8::1]", "[2001:db8::1]"),
        ("", None),
        (" . ", None),
        (None, None),
        (["news.bbc.co.uk", "x.github.io"], ["bbc.co.uk", "x.github.io"]),
    ],
)
def test_registered_domain(raw: Any, expected: Any) -> None:
    assert ev(call("registered_domain", f("d")), d=raw) == expected


def test_registered_domain_reads_the_bundled_list_without_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from compiler.evaluator import values

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("registered_domain() must not use the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    values._psl.cache_clear()
    values._registered_domain.cache_clear()
    assert ev(call("registered_domain", f("d")), d="news.bbc.co.uk") == "bbc.co.uk"


def test_extract_ips() -> None:
    sysmon = "type:  5 github.map.fastly.net;::ffff:151.101.208.133;"
    assert extract_ips(sysmon) == ["151.101.208.133"]
    assert extract_ips("::ffff:1.2.3.4;::ffff:5.6.7.8;1.2.3.4") == ["1.2.3.4", "5.6.7.8"]
    text = "std::string 10.0.0.1:443 fe80::1 2001:DB8:0:0::1 12:34:56 1.2.3.4.5 256.1.1.1"
    assert extract_ips(text) == ["10.0.0.1", "fe80::1", "2001:db8::1"]
    assert extract_ips("no address") == []
    assert extract_ips(None) is None
    assert extract_ips(["1.1.1.1", "x 2.2.2.2", "1.1.1.1"]) == ["1.1.1.1", "2.2.2.2"]


def test_coalesce_max_min_abs() -> None:
    assert ev(call("coalesce", f("a"), f("b"), lit("d")), b="x") == "x"
    assert ev(call("coalesce", f("a"), f("b"))) is None
    assert ev(call("coalesce", f("a"), lit(1)), a=[]) == 1
    assert ev(call("max", f("a"), f("b"), lit(3)), a="7") == 7
    assert ev(call("min", f("a"), f("b"), lit(3)), a="x") == 3
    assert ev(call("max", f("a"), f("b"))) is None
    assert ev(call("abs", f("a")), a="-4") == 4
    assert ev(call("abs", f("a"))) is None


def test_measure_reference_needs_a_resolver() -> None:
    with pytest.raises(ValueError):
        eval_expr(ir.MeasureRef("n"), lambda r: None, None)
    assert eval_expr(ir.MeasureRef("n"), lambda r: None, {"n": 3}.__getitem__) == 3


def test_compiled_form_agrees_with_the_interpreter() -> None:
    exprs: list[ir.Expr] = [
        b("and", b(">=", b("/", f("a"), f("b")), lit(2)), ir.UnaryOp("not", f("c"))),
        b("or", b("==", call("lower", f("a")), lit("x")), b("<", ir.UnaryOp("-", f("b")), lit(0))),
        call("coalesce", f("c"), call("max", f("a"), f("b")), lit(0)),
        b("+", ir.MeasureRef("m"), call("abs", f("b"))),
        b("!=", call("extract_ips", f("a")), lit("1.2.3.4")),
    ]
    rows: list[dict[str, Any]] = [
        {},
        {"a": "4", "b": 2},
        {"a": "X", "b": 0, "c": ""},
        {"a": "1.2.3.4 5.6.7.8", "b": -3.5, "c": True},
        {"a": [1, 2], "b": "x", "c": None},
    ]
    for e in exprs:
        fn = compile_expr(e)
        for row in rows:
            m = {"m": row.get("b")}.__getitem__

            def get(r: ir.FieldRef, row: dict[str, Any] = row) -> Any:
                return row.get(r.name)

            assert fn(get, m) == eval_expr(e, get, m)
