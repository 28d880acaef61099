"""backends.relax: sound relaxations drop only constructs that remove alerts, and the streams
only those constructs read; the evaluator shows the relaxed analytic alerts on a superset."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from backends.relax import (
    coarser_keys,
    join_as_own_filter,
    one_threshold,
    prune_streams,
    without_baselines,
    without_measures_over,
    without_until,
)
from compiler import canonical, ir
from compiler.evaluator import evaluate
from compiler.lower import load_file
from compiler.testing import fixture_events

ROOT = Path(__file__).resolve().parent.parent
AN1190 = ROOT / "analytics" / "an1190_linux_cli_web_service.yml"


def test_dropping_the_baseline_drops_the_join_only_it_reads() -> None:
    a = load_file(AN1190).analytic
    relaxed, dropped = without_baselines(a)
    assert relaxed.baselines == ()
    assert "conn_history" not in {s.name for s in relaxed.streams}
    assert [d.construct for d in dropped] == ["first-seen baseline"]
    assert (dropped[0].span.line, dropped[0].span.col) == (97, 5)
    assert "already seen in 'conn_history'" in dropped[0].what


def test_dropping_until_drops_the_end_stream() -> None:
    a, _ = without_baselines(load_file(AN1190).analytic)
    relaxed, dropped = without_until(a)
    assert "proc_end" not in {s.name for s in relaxed.streams}
    assert dropped[0].construct == "sequence `until`"


def test_nothing_to_drop_is_the_same_analytic() -> None:
    a, _ = without_until(without_baselines(load_file(AN1190).analytic)[0])
    assert without_baselines(a) == (a, ())
    assert without_until(a) == (a, ())
    assert prune_streams(a) == a


def test_relaxed_alerts_are_a_superset_on_every_fixture() -> None:
    loaded = load_file(AN1190)
    a = loaded.analytic
    relaxed = without_until(without_baselines(a)[0])[0]
    grew = False
    for fx in loaded.fixtures:
        events = fixture_events(loaded, fx)
        strict = {(al.key, al.start, al.end) for al in evaluate(a, events, fx.now_ms)}
        loose = {(al.key, al.start, al.end) for al in evaluate(relaxed, events, fx.now_ms)}
        assert strict <= loose
        grew |= loose > strict
    assert grew  # the fixtures exercise the baseline or the until


AN1511 = ROOT / "analytics" / "an1511_office_script_cloud_upload_ratio.yml"


def test_one_threshold_keeps_the_byte_threshold_of_a_ratio_conjunction() -> None:
    a = load_file(AN1511).analytic
    relaxed, dropped = one_threshold(a, {"sum", "count"})
    d = relaxed.detection
    assert isinstance(d, ir.Aggregate)
    assert [m.name for m in d.measures] == ["bytes_out"] and d.compute == ()
    assert isinstance(d.having, ir.BinOp) and d.having.op == ">="
    assert [x.construct for x in dropped] == ["having condition", "measures"]
    assert "ratio >= 6" in dropped[0].what
    assert "bytes_in, flows, avg_out, p90_out, ratio" in dropped[1].what
    # no measure of a kind the target computes: nothing to keep, nothing dropped
    assert one_threshold(a, {"max"}) == (a, ())


def test_one_threshold_alerts_are_a_superset_on_every_fixture() -> None:
    loaded = load_file(AN1511)
    a = without_baselines(loaded.analytic)[0]
    relaxed = one_threshold(a, {"sum"})[0]
    for fx in loaded.fixtures:
        events = fixture_events(loaded, fx)
        strict = {(al.key, al.start, al.end) for al in evaluate(a, events, fx.now_ms)}
        loose = {(al.key, al.start, al.end) for al in evaluate(relaxed, events, fx.now_ms)}
        assert strict <= loose


BYTES = {"source.bytes", "destination.bytes"}
DSIG_K1 = ROOT / "tests" / "differential" / "sigma" / "dsig_k1_coarser_keys_no_bytes.yml"


def test_measures_over_lacking_fields_go_with_the_values_and_conditions_reading_them() -> None:
    a = without_baselines(load_file(AN1511).analytic)[0]
    relaxed, dropped = without_measures_over(a, BYTES)
    d = relaxed.detection
    assert isinstance(d, ir.Aggregate)
    # every measure read bytes: the group's events are counted, every window with one alerts
    assert [(m.name, m.kind, m.field) for m in d.measures] == [("events", "count", None)]
    assert d.compute == () and d.having is None
    assert [x.construct for x in dropped] == ["measures", "having condition", "having condition"]
    assert "ratio >= 6" in dropped[1].what and "bytes_out >= 6000000" in dropped[2].what
    # a conjunct on a measure the source has stays
    agg = a.detection
    assert isinstance(agg, ir.Aggregate) and agg.having is not None
    having = ir.BinOp("and", agg.having, ir.BinOp(">=", ir.MeasureRef("n"), ir.Literal_(2)))
    counted = dataclasses.replace(
        agg, measures=(*agg.measures, ir.Measure("n", "count", None)), having=having
    )
    kept = without_measures_over(dataclasses.replace(a, detection=counted), BYTES)[0].detection
    assert isinstance(kept, ir.Aggregate) and [m.name for m in kept.measures] == ["n"]
    assert isinstance(kept.having, ir.BinOp) and kept.having.op == ">="
    assert without_measures_over(a, {"process.name"}) == (a, ())


def test_a_join_on_process_identity_becomes_the_partners_filter_on_the_event() -> None:
    a = without_baselines(load_file(AN1511).analytic)[0]
    # the ratio does not only grow: a coarser group (process.name came from the join) would
    # not be a superset, so nothing changes before the bytes are gone
    assert join_as_own_filter(a) == (a, ())
    a = without_measures_over(a, BYTES)[0]
    relaxed, dropped = join_as_own_filter(a)
    assert [x.construct for x in dropped] == ["stream join", "group-by keys"]
    assert "app_start" not in {s.name for s in relaxed.streams}
    flow = relaxed.stream("app_storage_flow")
    assert flow.join is None and flow.derive == ()
    assert isinstance(flow.filter, ir.Eq) and flow.filter.field == "process.name"
    # the derived process.name nothing reads any more is gone: the test reads the logged name
    assert [n for n, _ in relaxed.stream("storage_flow").derive] == [
        "destination.registered_domain"
    ]
    d = relaxed.detection
    assert isinstance(d, ir.Aggregate)
    assert d.keys == ("host.name", "process.entity_id", "destination.registered_domain")


def test_a_join_whose_added_fields_are_tested_stays() -> None:
    a = without_measures_over(without_baselines(load_file(AN1511).analytic)[0], BYTES)[0]
    s = a.stream("app_storage_flow")
    tested = dataclasses.replace(s, filter=ir.Eq("process.parent.name", ("explorer.exe",)))
    b = dataclasses.replace(a, streams=tuple(tested if x.name == s.name else x for x in a.streams))
    assert join_as_own_filter(b) == (b, ())
    # a join on something else than the process identity stays too
    j = s.join
    assert j is not None
    other = dataclasses.replace(s, join=dataclasses.replace(j, on=("host.name",)))
    c = dataclasses.replace(a, streams=tuple(other if x.name == s.name else x for x in a.streams))
    assert join_as_own_filter(c) == (c, ())


def test_coarser_keys_need_a_growing_lower_bound() -> None:
    a = without_measures_over(without_baselines(load_file(AN1511).analytic)[0], BYTES)[0]
    a = join_as_own_filter(a)[0]
    computable = {"host.name", "process.entity_id"}.__contains__
    relaxed, dropped = coarser_keys(a, computable)
    d = relaxed.detection
    assert isinstance(d, ir.Aggregate) and d.keys == ("host.name", "process.entity_id")
    assert [x.construct for x in dropped] == ["group-by keys"]
    assert "destination.registered_domain cannot be computed" in dropped[0].what
    avg = dataclasses.replace(
        d,
        keys=a.detection.keys,  # type: ignore[union-attr]
        measures=(ir.Measure("m", "avg", "destination.port"),),
        having=ir.BinOp(">=", ir.MeasureRef("m"), ir.Literal_(1)),
    )
    b = dataclasses.replace(a, detection=avg)
    assert coarser_keys(b, computable) == (b, ())


def test_the_relaxations_cover_every_evaluator_alert_on_every_fixture() -> None:
    """The evaluator on the relaxed analytic finds each alert of the original, or a coarser
    alert of the same window containing it (compiler.canonical.uncovered)."""
    grew = False
    for path in (AN1511, DSIG_K1):
        loaded = load_file(path)
        a = loaded.analytic
        r = without_measures_over(without_baselines(a)[0], BYTES)[0]
        r = join_as_own_filter(r)[0]
        r = coarser_keys(r, {"host.name", "process.entity_id"}.__contains__)[0]
        for fx in loaded.fixtures:
            events = fixture_events(loaded, fx)
            strict = [canonical.from_evaluator(x) for x in evaluate(a, events, fx.now_ms)]
            loose = [canonical.from_evaluator(x) for x in evaluate(r, events, fx.now_ms)]
            assert canonical.uncovered(strict, loose) == []
            grew |= len(loose) > len(strict)
    assert grew
