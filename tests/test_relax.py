"""backends.relax: sound relaxations drop only constructs that remove alerts, and the streams
only those constructs read; the evaluator shows the relaxed analytic alerts on a superset."""

from __future__ import annotations

from pathlib import Path

from backends.relax import one_threshold, prune_streams, without_baselines, without_until
from compiler import ir
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
