from __future__ import annotations

from compiler import canonical
from compiler.canonical import diff, from_evaluator, make
from compiler.evaluator.model import Alert


def test_keys_normalised_and_sorted() -> None:
    a = make("A", [("port", "443"), ("host", "h1")], 0, 10, [("n", 2)])
    b = make("A", [("host", "h1"), ("port", 443)], 0, 10, [("n", 2.0)])
    assert a == b
    assert make("A", [("host", "H1")], 0, 1) != make("A", [("host", "h1")], 0, 1)


def test_from_evaluator() -> None:
    al = Alert("A", (("host.name", "h"),), 5, 9, (("bytes", 10),), ("e1",))
    assert from_evaluator(al) == make("A", [("host.name", "h")], 5, 9, [("bytes", 10.0)])


def test_diff_reports_both_sides_and_tolerates_missing_parts() -> None:
    want = [make("A", [("h", "x")], 0, 10, [("r", 1 / 3)]), make("A", [("h", "y")], 0, 10)]
    got = [
        make("A", [("h", "x")], None, None, [("r", 0.3333333333333333)]),
        make("A", [("h", "z")], 0, 10),
    ]
    d = diff(want, got)
    assert not d.equal
    assert [a.key for a in d.missing] == [(("h", "y"),)]
    assert [a.key for a in d.extra] == [(("h", "z"),)]
    assert "missing (evaluator only)" in d.render()
    assert diff(want[:1], got[:1]).equal
    # times given on both sides must agree; a measure off by more than the tolerance differs
    assert not diff([make("A", [], 0, 10)], [make("A", [], 0, 11)]).equal
    assert not diff([make("A", [], 0, 1, [("r", 1.0)])], [make("A", [], 0, 1, [("r", 1.1)])]).equal


def test_a_coarser_alert_covers_the_finer_evaluator_alerts_in_it() -> None:
    fine = [
        canonical.make("A", [("host.name", "h1"), ("process.name", "WORD")], 0, 10),
        canonical.make("A", [("host.name", "h1"), ("process.name", "EXCEL")], 0, 10),
        canonical.make("A", [("host.name", "h2"), ("process.name", "WORD")], 0, 10),
    ]
    coarse = [canonical.make("A", [("host.name", "h1")], 0, 10, [("bytes", 99)])]
    assert canonical.uncovered(fine, coarse) == [fine[2]]  # another host is not covered
    assert canonical.uncovered(fine[:1], [canonical.make("A", [("host.name", "h1")], 0, 11)])
    assert canonical.uncovered(fine[:1], [canonical.make("B", [("host.name", "h1")], 0, 10)])
    # a key field the evaluator alert does not have never covers it
    assert canonical.uncovered(fine[:1], [canonical.make("A", [("user.name", "u")], 0, 10)])
    assert canonical.uncovered(fine, fine) == []
    # a target that folds the case of group-by values merges those groups: it covers them
    folded = [canonical.make("A", [("host.name", "H1"), ("process.name", "word")], 0, 10)]
    assert canonical.uncovered(fine[:1], folded) == []
    assert canonical.uncovered(fine[:1], [canonical.make("A", [("host.name", "h1x")], 0, 10)])
