"""Multi-valued fields in the reference evaluator: one test per row of docs/semantics.md
*Multi-valued fields* (every operator and every place a list can reach)."""

from __future__ import annotations

from typing import Any

from compiler import ir
from compiler.evaluator.aggregate import AggregateDetector
from compiler.evaluator.baseline import HistoryIndex
from compiler.evaluator.keys import key_tuples
from compiler.evaluator.measures import make_accumulator
from compiler.evaluator.model import Alert, Event
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import Enricher, JoinOp
from compiler.evaluator.values import call, compare, eval_expr, truthy

LOOKUPS = {
    "allow": ir.Lookup(
        name="allow",
        path="/x/allow.csv",
        columns=("ip", "port", "role"),
        rows=(("10.0.0.1", "443", "dns"), ("10.0.0.2", "80", "web"), ("10.0.0.3", "22", "")),
    )
}
MV = ["10.0.0.9", "10.0.0.2", None]


def holds(pred: ir.Predicate, value: Any, **more: Any) -> bool:
    return compile_predicate(pred, LOOKUPS)({"f": value, **more})


def ev(ts: int, **fields: Any) -> Event:
    return Event(ts, ts, f"e{ts}", {k.replace("__", "."): v for k, v in fields.items()})


def expr(e: ir.Expr, **fields: Any) -> Any:
    return eval_expr(e, lambda ref: fields.get(ref.name), None)


F = ir.FieldRef("f")


def lit(v: ir.Scalar) -> ir.Literal_:
    return ir.Literal_(v)


# --------------------------------------------------------------------------- filters
def test_mv_equality_and_value_lists_hold_for_some_element() -> None:
    assert holds(ir.Eq("f", ("10.0.0.2",)), MV)
    assert holds(ir.Eq("f", ("x", "10.0.0.9")), MV)
    assert not holds(ir.Eq("f", ("x", "y")), MV)
    assert holds(ir.Eq("f", (443,)), ["80", "443"])  # numeric strings per element
    assert holds(ir.Eq("f", ("PowerShell",)), ["-c", "powershell"])  # case-insensitive
    assert not holds(ir.Eq("f", ("PowerShell",), cased=True), ["-c", "powershell"])
    assert not holds(ir.Eq("f", ("x",)), [])


def test_mv_all_needs_every_value_on_some_element() -> None:
    p = ir.Eq("f", ("-enc", "-nop"), quantifier="all")
    assert holds(p, ["-NOP", "x", "-enc"])
    assert not holds(p, ["-nop"])
    assert not holds(p, "-nop")
    s = ir.StrMatch("f", "contains", ("enc", "nop"), quantifier="all")
    assert holds(s, ["-enc", "-nop"])  # different elements may match different values
    assert not holds(s, ["-enc"])


def test_mv_null_equality_and_exists() -> None:
    for missing in ([], [None], [None, None]):
        assert holds(ir.Eq("f", (None,)), missing)
        assert holds(ir.Exists("f", present=False), missing)
        assert not holds(ir.Exists("f"), missing)
    assert not holds(ir.Eq("f", (None,)), [None, "a"])
    assert holds(ir.Exists("f"), [None, "a"])
    assert holds(ir.Eq("f", (None, "a")), [None, "a"])
    assert holds(ir.Eq("f", (None, "zz")), [])


def test_mv_substrings_regex_cidr_compare_per_element() -> None:
    assert holds(ir.StrMatch("f", "contains", ("0.0.2",)), MV)
    assert holds(ir.StrMatch("f", "startswith", ("10.0.0.9",)), MV)
    assert holds(ir.StrMatch("f", "endswith", (".2",)), MV)
    assert not holds(ir.StrMatch("f", "endswith", (".1",)), MV)
    assert holds(ir.StrMatch("f", "endswith", ("43",)), [80, 443])  # text of each number
    assert holds(ir.Regex("f", (r"^10\.0\.0\.2$",)), MV)  # anchors apply to one element
    assert not holds(ir.Regex("f", (r"9.*2",)), MV)  # elements are not joined into one text
    assert holds(ir.Cidr("f", ("10.0.0.0/30",)), MV)
    assert not holds(ir.Cidr("f", ("10.0.0.0/31",)), MV)
    assert not holds(ir.Cidr("f", ("0.0.0.0/0",)), [167772161])  # numbers are no addresses
    assert holds(ir.Compare("f", "gt", 100), [5, "443", "x"])
    assert not holds(ir.Compare("f", "lt", 5), [5, "443", "x"])
    assert holds(ir.Compare("f", "lte", 5), [5, "443", "x"])
    assert not holds(ir.Compare("f", "gt", 0), ["x", True])


def test_mv_not_negates_the_existential() -> None:
    # not: no element satisfies (a list of nulls or an empty list is missing: not holds)
    assert not holds(ir.Not(ir.Eq("f", ("10.0.0.2",))), MV)
    assert holds(ir.Not(ir.Eq("f", ("10.0.0.5",))), MV)
    assert holds(ir.Not(ir.Eq("f", ("10.0.0.5",))), [])
    assert not holds(ir.Not(ir.StrMatch("f", "contains", ("0.9",))), MV)
    assert not holds(ir.Not(ir.Regex("f", ("2$",))), MV)
    assert not holds(ir.Not(ir.Cidr("f", ("10.0.0.8/29",))), MV)
    assert holds(ir.Not(ir.Compare("f", "gt", 500)), [5, "443"])
    assert not holds(ir.Not(ir.Compare("f", "gt", 400)), [5, "443"])
    assert holds(ir.Not(ir.Exists("f")), [None])
    # not over |all: some listed value is matched by no element
    assert holds(ir.Not(ir.Eq("f", ("a", "b"), quantifier="all")), ["a", "c"])


def test_mv_lookup_membership_any_element_and_combinations() -> None:
    one = ir.InLookup("allow", (("ip", "f"),))
    assert holds(one, MV)
    assert not holds(one, ["10.0.0.8", None])
    two = ir.InLookup("allow", (("ip", "f"), ("port", "q")))
    # combinations of elements, not positions: 10.0.0.2 (2nd) with 80 (1st)
    assert holds(two, MV, q=[80, 443])
    assert not holds(two, ["10.0.0.9"], q=[80, 443])
    assert holds(two, MV, q=["8080", 80.0])  # an element's text: 80.0 reads "80"


def test_mv_enrichment_takes_first_csv_row_any_element_matches() -> None:
    en = Enricher(ir.Enrich("allow", (("ip", "f"),), (("role", "r"),)), LOOKUPS)
    fields: dict[str, Any] = {"f": ["10.0.0.2", "10.0.0.1"], "r": "old"}
    en.apply(fields)
    assert fields["r"] == "dns"  # row 1 (10.0.0.1) precedes row 2 in the CSV: element order moot
    fields = {"f": ["10.0.0.8", None], "r": "old"}
    en.apply(fields)
    assert "r" not in fields
    fields = {"f": ["10.0.0.3"]}
    en.apply(fields)
    assert "r" not in fields  # empty cell


# --------------------------------------------------------------------------- expressions
def test_mv_string_functions_map_elementwise() -> None:
    assert call("lower", [["A", 1, None]]) == ["a", 1, None]
    assert call("upper", [["a", "B"]]) == ["A", "B"]
    assert call("basename", [["C:\\w\\a.exe", "/bin/sh"]]) == ["a.exe", "sh"]
    assert call("registered_domain", [["a.B.com", "", "1.2.3.4"]]) == ["b.com", None, "1.2.3.4"]
    # extract_ips: union over the elements, first appearance order, no duplicates
    assert call("extract_ips", [["x 1.1.1.1", "2.2.2.2;1.1.1.1", None]]) == ["1.1.1.1", "2.2.2.2"]
    assert call("extract_ips", [[]]) == []


def test_mv_coalesce_max_min_abs_arithmetic() -> None:
    assert call("coalesce", [[], [None], ["a"], "b"]) == ["a"]  # a list of nulls is missing
    assert call("coalesce", [[None], "b"]) == "b"
    assert call("max", [[1, 9], 3]) == 3  # a multi-value is not a number: ignored
    assert call("min", [[1, 9]]) is None
    assert call("abs", [[-1]]) is None
    f = ir.BinOp("+", F, lit(1))
    assert expr(f, f=[1, 2]) is None
    assert expr(ir.UnaryOp("-", F), f=[1]) is None


def test_mv_comparisons_are_existential_both_sides() -> None:
    assert compare("==", ["a", "B"], "b")
    assert compare("!=", ["a", "b"], "a")  # != holds when some element differs
    assert not compare("!=", ["a", "A"], "a")
    assert compare(">", [1, "20"], 10)
    assert compare("==", ["x", "y"], ["z", "Y"])  # some pair of elements
    assert not compare("==", [], "a")
    assert not compare("!=", [], "a")  # an empty multi-value is null
    assert not compare("!=", [None], "a")
    assert expr(ir.BinOp("==", F, lit("b")), f=["a", "b"]) is True


def test_mv_truthiness_list_of_nulls_is_null() -> None:
    assert truthy(["a"]) and truthy([0])
    assert not truthy([]) and not truthy([None])
    assert expr(ir.UnaryOp("not", F), f=[None]) is True


# --------------------------------------------------------------------------- keys
def test_mv_join_on_any_element_and_add_copies_the_list() -> None:
    op = JoinOp(ir.Join("dns", ("ip",), 100, "around", ("q",)))
    op.add_other([ev(0, ip=["1.1.1.1", "2.2.2.2"], q=["a.com", "b.com"])])
    op.add_this([ev(5, ip="2.2.2.2"), ev(6, ip=["3.3.3.3", "1.1.1.1"]), ev(7, ip="3.3.3.3")])
    out = op.release(None, None)
    assert [(e.id, e.fields["q"]) for e in out] == [
        ("e5", ["a.com", "b.com"]),
        ("e6", ["a.com", "b.com"]),
    ]


def test_mv_group_by_key_one_group_per_distinct_element() -> None:
    node = ir.Aggregate(
        stream="s",
        window=ir.Window("tumbling", 1000),
        keys=("ip",),
        measures=(ir.Measure("n", "count", None),),
        compute=(),
        having=None,
    )
    det = AggregateDetector("A", node)
    out: list[Alert] = []
    for e in (ev(1, ip=["1.1.1.1", "2.2.2.2", "1.1.1.1"]), ev(2, ip=[]), ev(3, ip=[None])):
        out += det.push("s", e)
    out += det.finish(None)
    assert sorted((a.key, a.evidence) for a in out) == [
        ((("ip", "1.1.1.1"),), ("e1",)),
        ((("ip", "2.2.2.2"),), ("e1",)),
    ]
    assert key_tuples(ev(0, a=["x", "X"], b=[1, "1"]), ("a", "b")) == (("x", "1"), ("X", "1"))


def measure(kind: str, values: list[Any], p: float | None = None) -> Any:
    acc = make_accumulator(ir.Measure("m", kind, "f", p))  # type: ignore[arg-type]
    for v in values:
        acc.add(v)
    return acc.result()


def test_mv_measures_count_each_element_except_count_field() -> None:
    vals: list[Any] = [[1, 2], "3", [None, "x"], None, [4, 4]]
    assert measure("count", vals) == 4  # events whose field has a non-null element
    assert measure("distinct", vals) == 5  # 1, 2, "3", "x", 4
    assert measure("sum", vals) == 14
    assert measure("avg", vals) == 2.8
    assert measure("min", vals) == 1
    assert measure("max", vals) == 4
    assert measure("percentile", vals, 50) == 3
    assert measure("stdev", [[1, 3]]) == measure("stdev", [1, 3])
    assert measure("sum", [[None]]) is None


def test_mv_baseline_history_records_every_element_candidate_any() -> None:
    fs = ir.FirstSeen("h", ("ip",), ("ip",), 1000)
    ra = ir.Rarity("h", ("ip",), ("ip",), "host", 2, 1000)
    h = HistoryIndex([fs, ra])
    h.observe(ev(1, ip=["1.1.1.1", "2.2.2.2"], host=["a", "b"]), "h")
    h.observe(ev(2, ip=[None], host="c"), "h")
    assert h.first_seen_ok(fs, ("2.2.2.2",), 10) is False
    assert h.first_seen_ok(fs, (["9.9.9.9", "1.1.1.1"],), 10) is False  # any value seen
    assert h.first_seen_ok(fs, (["9.9.9.9"],), 10) is True
    assert h.first_seen_ok(fs, ([None],), 10) is True  # a null candidate is never seen
    assert h.rarity_ok(ra, ("1.1.1.1",), 10) is False  # across values a and b: 2, not < 2
