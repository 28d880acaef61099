"""siemc explain: the plan, each target's verdict with its reasons at their source lines, and the
nearest change to an exact pair (verified by compiling it, or labelled as a hint)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from compiler import ir
from compiler.cli import main
from compiler.explain import ENTITY_ID, _entity_id
from compiler.lower import load_text

from .test_cli import ANALYTIC, write
from .test_cli_exit_codes import COUNTING

ROOT = Path(__file__).resolve().parents[1]
AN1511 = ROOT / "analytics" / "an1511_office_script_cloud_upload_ratio.yml"
# a sliding distinct count and event count together: splunk over-approximates it (either alone
# it consumes exactly)
SLIDING = (
    COUNTING.replace("kind: tumbling", "kind: sliding")
    .replace("n: {count: true}", "n: {distinct: process.pid}\n      c: {count: true}")
    .replace("having: n >= 3", "having: n >= 3 and c >= 3")
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_plan_and_verdicts_of_a_bundled_analytic() -> None:
    res = invoke("explain", str(AN1511))
    assert res.exit_code == 0, res.output
    out = res.output
    assert "stream app_storage_flow: reads stream 'storage_flow'" in out
    assert "joins stream 'app_start' on host.name, process.entity_id within 12h (before)" in out
    assert "over tumbling 1h windows" in out and "schedule: every 1h" in out
    assert "kql: exact with profile asim\n  profiles: mde refused, asim exact" in out
    # a refusal at its source line, with the refusal's own advice as the nearest change
    assert "error[E200] at " in out and ":46:5: eql cannot express stream join" in out
    assert "      | join:" in out
    assert "nearest change [help]: compile to kql or splunk, which join streams" in out


def test_sliding_window_suggests_tumbling_verified_by_compiling(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yml", SLIDING)
    res = invoke("explain", str(path), "-t", "splunk")
    assert res.exit_code == 0, res.output
    assert "splunk: superset with profile cim" in res.output
    assert "sliding window aggregation (superset) at " in res.output
    assert (
        "nearest change [verified]: use a tumbling window (window: {kind: tumbling}) instead "
        "of a sliding one: then splunk compiles it exactly" in res.output
    )
    # and that claim holds: the tumbling analytic is exact on splunk
    tumbling = write(tmp_path, "b.yml", COUNTING)
    assert "splunk: exact" in invoke("explain", str(tumbling), "-t", "splunk").output


def test_no_known_change_is_said(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yml", COUNTING)
    res = invoke("explain", str(path), "-t", "sigma")
    assert "sigma: superset" in res.output
    assert "nearest change: none known" in res.output


def test_exact_pairs_suggest_nothing_and_v_prints_the_query(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yml", ANALYTIC)
    res = invoke("explain", str(path), "-t", "kql", "-v")
    assert "kql: exact" in res.output and "nearest change" not in res.output
    assert "  query:\n    " in res.output


def test_json_is_deterministic_and_complete(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yml", SLIDING)
    res = invoke("explain", str(path), "--format", "json")
    assert res.exit_code == 0
    assert invoke("explain", str(path), "--format", "json").stdout == res.stdout
    doc = json.loads(res.stdout)
    targets = {t["target"]: t for t in doc["targets"]}
    assert set(targets) == {"splunk", "eql", "esql", "kql", "sigma"}
    assert targets["eql"]["verdict"] == "refused"
    splunk = targets["splunk"]
    assert splunk["verdict"] == "superset"
    (reason,) = splunk["reasons"]
    assert reason["direction"] == "superset" and reason["at"].endswith(":16:35")
    assert reason["source_line"] == "window: {kind: sliding, size: 5m}"
    assert splunk["suggestions"][0]["kind"] == "verified"


def test_explain_needs_one_valid_analytic(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    write(tmp_path, "b.yml", COUNTING)
    assert invoke("explain", str(tmp_path)).exit_code == 64
    broken = tmp_path / "c"
    broken.mkdir()
    write(broken, "c.yml", ANALYTIC.replace("match: proc", "match: nope"))
    res = invoke("explain", str(broken / "c.yml"))
    assert res.exit_code == 2 and "E120" in res.output


SEQ = """\
id: SEQ-1
title: t
description: d
attack: {techniques: [T1059.001]}
platforms: [windows]
severity: low
false_positives: [none]
streams:
  start:
    logsource: {category: process_creation, product: windows}
    where: {process.name: a.exe}
  conn:
    logsource: {category: network_connection, product: windows}
    where: {destination.port: 443}
  stop:
    logsource: {product: windows}
    where: {event.category: process, event.type: end}
detect:
  sequence:
    maxspan: 5m
    steps:
      - {stream: start, as: s, by: [host.name, process.pid]}
      - {stream: conn, as: c, by: [host.name, process.pid]}
    until: {stream: stop, by: [host.name, process.pid]}
"""


def test_entity_id_rewrite_keys_on_the_process_identity() -> None:
    a = load_text("seq.yml", SEQ).analytic
    found = _entity_id(a)
    assert found is not None
    rewritten, change, _ = found
    assert isinstance(rewritten.detection, ir.Sequence)
    assert [s.keys for s in rewritten.detection.steps] == [(ENTITY_ID,), (ENTITY_ID,)]
    assert rewritten.detection.until is None and "needs no `until`" in change
