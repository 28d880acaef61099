"""Filters (``where``) of the reference evaluator: compiler.evaluator.predicates."""

from __future__ import annotations

from typing import Any

import pytest

from compiler import ir
from compiler.evaluator.predicates import compile_predicate, text

LOOKUPS = {
    "approved": ir.Lookup(
        name="approved",
        path="/x/approved.csv",
        columns=("role", "domain", "port"),
        rows=(("Server", "Example.COM", "443"), ("workstation", "dropbox.com", "")),
    )
}


def holds(p: ir.Predicate, fields: dict[str, Any]) -> bool:
    return compile_predicate(p, LOOKUPS)(fields)


# --------------------------------------------------------------------------- equality
@pytest.mark.parametrize(
    ("value", "field", "expected"),
    [
        ("cmd.exe", "CMD.EXE", True),  # case-insensitive by default
        ("CMD.exe", "cmd.exe", True),
        ("cmd.exe", "cmd.exe ", False),  # no trimming
        (443, 443, True),
        (443, 443.0, True),
        (443, "443", True),  # numeric strings in events are numbers
        (443, " 443 ", True),
        ("443", 443, True),  # a numeric string value is a number too
        ("443", "443.0", True),  # two numeric strings compare numerically
        (1000, "1e3", True),
        (443, "0x1bb", False),
        (443, "443/tcp", False),
        ("https", 443, False),  # a number never equals a non-numeric string
        (True, True, True),
        (True, "true", False),  # booleans only equal booleans
        (True, 1, False),
        (1, True, False),
        (False, False, True),
        (0, False, False),
    ],
)
def test_eq_coercions(value: ir.Scalar, field: Any, expected: bool) -> None:
    assert holds(ir.Eq("f", (value,)), {"f": field}) is expected


def test_eq_cased() -> None:
    p = ir.Eq("f", ("Cmd.exe",), cased=True)
    assert holds(p, {"f": "Cmd.exe"})
    assert not holds(p, {"f": "cmd.exe"})
    # numbers are unaffected by `cased`
    assert holds(ir.Eq("f", ("443",), cased=True), {"f": 443})


def test_eq_any_of_values() -> None:
    p = ir.Eq("f", ("a", "b", 3))
    assert holds(p, {"f": "B"})
    assert holds(p, {"f": "3"})
    assert not holds(p, {"f": "c"})


def test_eq_multi_valued_field_any_element() -> None:
    p = ir.Eq("event.category", ("process",))
    assert holds(p, {"event.category": ["network", "PROCESS"]})
    assert not holds(p, {"event.category": ["network"]})
    assert not holds(p, {"event.category": []})
    assert holds(p, {"event.category": [None, "process"]})


def test_eq_all_quantifier() -> None:
    p = ir.Eq("tags", ("a", "b"), quantifier="all")
    assert holds(p, {"tags": ["B", "x", "A"]})  # each value matched by some element
    assert not holds(p, {"tags": ["a", "x"]})
    assert not holds(p, {"tags": "a"})
    assert holds(ir.Eq("tags", ("a",), quantifier="all"), {"tags": "a"})


def test_eq_null_value_means_missing_or_null() -> None:
    p = ir.Eq("f", (None,))
    assert holds(p, {})
    assert holds(p, {"f": None})
    assert holds(p, {"f": []})
    assert holds(p, {"f": [None]})
    assert not holds(p, {"f": ""})  # an empty string is a value
    assert not holds(p, {"f": 0})
    either = ir.Eq("f", ("x", None))
    assert holds(either, {}) and holds(either, {"f": "X"}) and not holds(either, {"f": "y"})
    assert not holds(ir.Eq("f", ("x", None), quantifier="all"), {"f": "x"})


def test_eq_special_characters_are_literal() -> None:
    assert holds(ir.Eq("f", ("a.b*c",)), {"f": "A.B*C"})
    assert not holds(ir.Eq("f", ("a.b*c",)), {"f": "axbbc"})
    assert holds(ir.Eq("f", ("C:\\Windows\\",)), {"f": "c:\\windows\\"})


def test_unicode_uses_str_lower() -> None:
    assert holds(ir.Eq("f", ("ÄRGER",)), {"f": "ärger"})
    assert holds(ir.StrMatch("f", "contains", ("ΣΟΦ",)), {"f": "σοφία"})
    # lower(), not casefold(): "ß" and "SS" differ (as in every SIEM we compile to)
    assert not holds(ir.Eq("f", ("STRASSE",)), {"f": "straße"})


@pytest.mark.parametrize(
    ("value", "event", "equal", "regex"),
    [
        # "contains" follows equality, except that lower("İ") = "i" + U+0307 contains "i"
        # docs/semantics.md, "Case and non-ASCII letters": lower() for equality, substrings and
        # lookups; Python's re.IGNORECASE (simple case folding plus its i/ı/İ, s/ſ, k/K and
        # σ/ς classes) for `re`
        ("i", "İ", False, True),  # "İ".lower() is "i" + U+0307
        ("i", "ı", False, True),
        ("k", "\u212a", True, True),  # KELVIN SIGN lowers to k
        ("s", "ſ", False, True),
        ("σ", "ς", False, True),
        ("Σ", "σ", True, True),
        ("ß", "ẞ", True, True),
        ("ss", "ß", False, False),
    ],
)
def test_non_ascii_case_letters_follow_the_documented_rules(
    value: str, event: str, equal: bool, regex: bool
) -> None:
    assert holds(ir.Eq("f", (value,)), {"f": event}) is equal
    contains = equal or (value, event) == ("i", "İ")
    assert holds(ir.StrMatch("f", "contains", (value,)), {"f": event}) is contains
    assert holds(ir.Regex("f", (f"^{value}$",)), {"f": event}) is regex


# --------------------------------------------------------------------------- missing fields
MISSING_LEAVES: list[ir.Predicate] = [
    ir.Eq("f", ("x",)),
    ir.Eq("f", (1,)),
    ir.StrMatch("f", "contains", ("",)),
    ir.Regex("f", (".*",)),
    ir.Compare("f", "gte", 0),
    ir.Exists("f"),
    ir.Cidr("f", ("0.0.0.0/0",)),
    ir.InLookup("approved", (("role", "f"),)),
]


@pytest.mark.parametrize("p", MISSING_LEAVES)
@pytest.mark.parametrize("fields", [{}, {"f": None}, {"f": []}, {"f": [None]}])
def test_missing_field_satisfies_no_leaf_and_not_is_true(
    p: ir.Predicate, fields: dict[str, Any]
) -> None:
    assert not holds(p, fields)
    assert holds(ir.Not(p), fields)  # `NOT x=1` matches a missing x (Splunk/Sigma semantics)


def test_exists() -> None:
    assert holds(ir.Exists("f"), {"f": ""})
    assert holds(ir.Exists("f"), {"f": 0})
    assert holds(ir.Exists("f"), {"f": [None, 1]})
    assert holds(ir.Exists("f", present=False), {"g": 1})
    assert not holds(ir.Exists("f", present=False), {"f": False})


# --------------------------------------------------------------------------- strings
def test_string_operators() -> None:
    f = {"p": r"C:\Windows\System32\CMD.EXE"}
    assert holds(ir.StrMatch("p", "endswith", ("\\cmd.exe",)), f)
    assert holds(ir.StrMatch("p", "startswith", ("c:\\windows",)), f)
    assert holds(ir.StrMatch("p", "contains", ("system32",)), f)
    assert not holds(ir.StrMatch("p", "contains", ("system32",), cased=True), f)
    assert holds(ir.StrMatch("p", "contains", ("System32",), cased=True), f)
    assert holds(ir.StrMatch("p", "startswith", ("x", "C:")), f)  # any of the values
    assert not holds(ir.StrMatch("p", "endswith", ("x", "y")), f)


def test_string_operators_all_quantifier_and_lists() -> None:
    p = ir.StrMatch("cmd", "contains", ("-enc", "hidden"), quantifier="all")
    assert holds(p, {"cmd": "powershell -W Hidden -Enc AAA"})
    assert not holds(p, {"cmd": "powershell -enc AAA"})
    assert holds(p, {"cmd": ["x -enc", "-w hidden"]})  # different elements may match
    assert holds(ir.StrMatch("f", "endswith", (".exe",)), {"f": ["a.dll", "b.EXE"]})


def test_string_operators_read_text_of_scalars() -> None:
    assert text(443.0) == "443" and text(1.5) == "1.5" and text(True) == "true"
    assert holds(ir.StrMatch("port", "startswith", ("44",)), {"port": 443})
    assert holds(ir.StrMatch("port", "endswith", ("43",)), {"port": 443.0})
    assert holds(ir.StrMatch("b", "contains", ("TRU",)), {"b": True})
    assert not holds(ir.StrMatch("d", "contains", ("a",)), {"d": {"a": 1}})


def test_special_characters_in_substrings_are_literal() -> None:
    assert holds(ir.StrMatch("f", "contains", ("(x)[.*]",)), {"f": "a(X)[.*]b"})
    assert not holds(ir.StrMatch("f", "contains", ("a.c",)), {"f": "abc"})


# --------------------------------------------------------------------------- regex
def test_regex_search_ignorecase() -> None:
    p = ir.Regex("f", (r"\\cmd\.exe$",))
    assert holds(p, {"f": r"C:\Windows\CMD.EXE"})  # search, not fullmatch; case-insensitive
    assert not holds(p, {"f": r"C:\Windows\CMD.EXE.bak"})
    assert not holds(ir.Regex("f", ("CMD",), cased=True), {"f": "cmd"})
    assert holds(ir.Regex("f", ("^a", "b$")), {"f": "xb"})
    assert not holds(ir.Regex("f", ("^a", "b$"), quantifier="all"), {"f": "xb"})
    assert holds(ir.Regex("f", ("^a", "b$"), quantifier="all"), {"f": "ab"})
    assert holds(ir.Regex("port", (r"^4\d\d$",)), {"port": 443})


def test_regex_invalid_pattern_fails_at_compile_time() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        compile_predicate(ir.Regex("f", ("(",)), {})


# --------------------------------------------------------------------------- cidr
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.1.2.3", True),
        (" 10.1.2.3 ", True),
        ("11.0.0.1", False),
        ("::ffff:10.0.0.1", True),  # IPv4-mapped IPv6 is its IPv4 address
        ("fd00::1", True),
        ("fe80::1", False),
        ("not an ip", False),
        ("10.1.2.3:443", False),
        ("", False),
        (167837955, False),  # numbers are not addresses
        (["8.8.8.8", "10.9.9.9"], True),
    ],
)
def test_cidr(value: Any, expected: bool) -> None:
    p = ir.Cidr("ip", ("10.0.0.0/8", "fd00::/8"))
    assert holds(p, {"ip": value}) is expected


def test_cidr_all_quantifier_and_host_bits() -> None:
    p = ir.Cidr("ip", ("10.0.0.0/8", "10.1.0.0/16"), quantifier="all")
    assert holds(p, {"ip": "10.1.0.1"})
    assert not holds(p, {"ip": "10.2.0.1"})
    # host bits set in the network are tolerated (the network is 10.1.2.0/24)
    assert holds(ir.Cidr("ip", ("10.1.2.3/24",)), {"ip": "10.1.2.200"})


# --------------------------------------------------------------------------- compare
@pytest.mark.parametrize(
    ("op", "value", "field", "expected"),
    [
        ("gt", 10, 11, True),
        ("gt", 10, 10, False),
        ("gte", 10, 10.0, True),
        ("lt", 10, "9.5", True),  # numeric strings coerced
        ("lte", 10, " 10 ", True),
        ("gt", 10, "11MB", False),  # not a number
        ("gt", 0, True, False),  # booleans are not numbers
        ("gt", 10, [1, 20], True),  # any element
        ("gt", 10, [1, 2], False),
    ],
)
def test_compare(op: ir.CmpOp, value: float, field: Any, expected: bool) -> None:
    assert holds(ir.Compare("f", op, value), {"f": field}) is expected


# --------------------------------------------------------------------------- lookups
def test_in_lookup() -> None:
    p = ir.InLookup("approved", (("role", "labels.role"), ("domain", "dom")))
    assert holds(p, {"labels.role": "server", "dom": "example.com"})
    assert holds(p, {"labels.role": "SERVER", "dom": "EXAMPLE.com"})
    assert not holds(p, {"labels.role": "server", "dom": "dropbox.com"})  # same row needed
    assert not holds(p, {"labels.role": "server"})
    assert holds(p, {"labels.role": ["x", "workstation"], "dom": "dropbox.com"})
    assert holds(ir.Not(p), {"labels.role": "x", "dom": "y"})  # an allowlist


def test_in_lookup_compares_text_of_numbers() -> None:
    p = ir.InLookup("approved", (("port", "destination.port"),))
    assert holds(p, {"destination.port": 443})
    assert holds(p, {"destination.port": 443.0})
    assert holds(p, {"destination.port": ""})  # an empty cell equals an empty string
    assert not holds(p, {"destination.port": 80})


def test_in_lookup_unknown_table_or_column() -> None:
    with pytest.raises(ValueError, match="unknown lookup"):
        compile_predicate(ir.InLookup("nope", (("a", "b"),)), LOOKUPS)
    with pytest.raises(ValueError, match="no column"):
        compile_predicate(ir.InLookup("approved", (("nope", "b"),)), LOOKUPS)


# --------------------------------------------------------------------------- boolean structure
def test_and_or_not() -> None:
    a, b = ir.Eq("a", (1,)), ir.Eq("b", (2,))
    assert holds(ir.TRUE, {})
    assert not holds(ir.Or(()), {})
    assert holds(ir.And((a, b)), {"a": 1, "b": 2})
    assert not holds(ir.And((a, b, ir.TRUE)), {"a": 1, "b": 3})
    assert holds(ir.Or((a, b)), {"a": 0, "b": 2})
    c = ir.Eq("c", ("x",))
    assert holds(ir.Or((a, b, c)), {"c": "X"}) and not holds(ir.Or((a, b, c)), {"c": "y"})
    assert holds(ir.And((a, b, c)), {"a": "1", "b": 2.0, "c": ["y", "x"]})
    assert holds(ir.Not(ir.And((a, b))), {"a": 1})
    assert not holds(ir.Not(ir.Not(a)), {})
