"""``siemc export``: the command, deterministic output, atomic folder replacement, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compiler.cli import main
from compiler.cli_export import export_cmd
from tests.export_support import ROOT
from tests.test_export_splunk import LOOKUP_ANALYTIC

main.add_command(export_cmd)
ANALYTICS = str(ROOT / "analytics")


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["export", *args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.output


def files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_export_all_is_deterministic(tmp_path: Path) -> None:
    code, out = run(ANALYTICS, "-o", str(tmp_path / "a"), "--allow-approximate")
    assert code == 0, out
    assert "splunk: 17 exported, 1 skipped" in out  # SIEMC-0018: no profile has its fields
    code, _ = run(ANALYTICS, "-o", str(tmp_path / "b"), "--allow-approximate")
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a == b
    assert {k.split("/")[0] for k in a} == {
        "splunk", "elastic", "sentinel", "sigma", "export.json", ".siemc-output"
    }  # fmt: skip
    summary = json.loads(a["export.json"])
    assert summary["attack_version"] == "18.1"
    # a Zeek-only analytic reads Corelight's parser and names its connector
    assert set(summary["targets"]["sentinel"]["skipped"]) == set()
    assert "AN1190" in summary["targets"]["sentinel"]["exported"]
    # the counted step reads the Windows Security log, delivered by its own connector
    rule = yaml.safe_load(a["sentinel/AnalyticRules/SIEMC-0018.yaml"])
    assert rule["requiredDataConnectors"] == [
        {"connectorId": "WindowsSecurityEvents", "dataTypes": ["SecurityEvent"]}
    ]
    rule = yaml.safe_load(a["sentinel/AnalyticRules/SIEMC-0010.yaml"])
    assert rule["requiredDataConnectors"] == [
        {"connectorId": "Corelight", "dataTypes": ["corelight_ssl"]}
    ]


def test_one_target_and_approximations_refused_by_default(tmp_path: Path) -> None:
    code, out = run(ANALYTICS, "-o", str(tmp_path / "o"), "-t", "sigma")
    assert code == 0, out
    # SIEMC-0012 is exact on Sigma (its lookups inlined): the only rule exported by default
    assert set(files(tmp_path / "o")) == {
        "export.json",
        ".siemc-output",
        "sigma/README.md",
        "sigma/rules/SIEMC-0012.yml",
    }
    summary = json.loads((tmp_path / "o" / "export.json").read_text())
    assert "can only approximate" in summary["targets"]["sigma"]["skipped"]["SIEMC-0006"]


def test_reexport_replaces_the_previous_export(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run(ANALYTICS, "-o", str(out), "--allow-approximate")[0] == 0
    (out / "stale.txt").write_text("x")
    assert run(ANALYTICS, "-o", str(out), "-t", "sigma", "--allow-approximate")[0] == 0
    assert not (out / "stale.txt").exists() and not (out / "splunk").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["o"]  # no temporary folder left


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    code, out = run(ANALYTICS, "-o", str(tmp_path))
    assert code == 73
    assert "was not written by siemc export" in out and "Traceback" not in out
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_io_error_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, out = run(ANALYTICS, "-o", str(tmp_path / "file" / "sub"))
    assert code == 73 and out.startswith("error: cannot create") and "Traceback" not in out


def test_failure_while_writing_keeps_the_previous_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "o"
    assert run(ANALYTICS, "-o", str(out), "-t", "sigma", "--allow-approximate")[0] == 0
    before = files(out)
    calls = {"n": 0}
    real = Path.write_text

    def flaky(self: Path, *a: object, **k: object) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", flaky)
    code, text = run(ANALYTICS, "-o", str(out), "--allow-approximate")
    assert code == 73 and "No space left on device" in text
    assert files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_every_that_cuts_windows_is_a_positioned_error(tmp_path: Path) -> None:
    code, out = run(ANALYTICS, "-o", str(tmp_path / "o"), "--every", "30m")
    assert code == 2
    assert "siemc0011_host_hourly_egress_deviation.yml:28:3: error[E401]" in out
    assert "would cut 1h tumbling windows" in out and not (tmp_path / "o").exists()
    code, out = run(ANALYTICS, "-o", str(tmp_path / "o"), "--every", "soon")
    assert code == 64 and "not a frequency" in out  # a usage error


def test_unknown_technique_is_a_positioned_error(tmp_path: Path) -> None:
    text = LOOKUP_ANALYTIC.replace("T1059.004", "T1059.999")
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "inventory.csv").write_text("host,role\n")
    code, out = run(str(tmp_path / "a.yml"), "-o", str(tmp_path / "o"))
    assert code == 2
    assert "a.yml:4:23: error[E400]: technique T1059.999 is not in ATT&CK 18.1" in out


def test_splunk_actions_option(tmp_path: Path) -> None:
    out = tmp_path / "o"
    code, text = run(
        ANALYTICS,
        "-o",
        str(out),
        "-t",
        "splunk",
        "--splunk-action",
        "notable",
        "--allow-approximate",
    )
    assert code == 0, text
    conf = (out / "splunk" / "siemc_detections" / "default" / "savedsearches.conf").read_text()
    assert "action.notable = 1" in conf and "action.risk" not in conf


def test_named_tactics_file_the_techniques_in_every_export(tmp_path: Path) -> None:
    # T1567 is exfiltration only, T1071.001 command-and-control only, T1059.004 execution only
    text = LOOKUP_ANALYTIC.replace(
        "attack: {techniques: [T1059.004]}",
        "attack: {techniques: [T1567, T1071.001], tactics: [TA0010, command-and-control]}",
    )
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "inventory.csv").write_text("host,role\n")
    code, out = run(str(tmp_path / "a.yml"), "-o", str(tmp_path / "o"), "--allow-approximate")
    assert code == 0, out
    assert "W401" not in out
    # NDJSON lines end at "\n" only (a query may hold U+2028 or U+0085 in a string)
    ndjson = (tmp_path / "o" / "elastic" / "rules.ndjson").read_text().split("\n")
    rules = [json.loads(line) for line in ndjson if line]
    threat = next(r["threat"] for r in rules if "threat" in r)
    assert [t["tactic"]["id"] for t in threat] == ["TA0011", "TA0010"]  # kill-chain order
    assert [[x["id"] for x in t["technique"]] for t in threat] == [["T1071"], ["T1567"]]
    sentinel = next((tmp_path / "o" / "sentinel").rglob("TEST-LOOKUP*.yaml")).read_text()
    assert "- CommandAndControl\n- Exfiltration\n" in sentinel


def test_a_technique_outside_the_named_tactics_is_a_warning(tmp_path: Path) -> None:
    text = LOOKUP_ANALYTIC.replace(
        "attack: {techniques: [T1059.004]}",
        "attack: {techniques: [T1567, T1059.004], tactics: [exfiltration]}",
    )
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "inventory.csv").write_text("host,role\n")
    code, out = run(str(tmp_path / "a.yml"), "-o", str(tmp_path / "o"), "--allow-approximate")
    assert code == 0, out
    assert "a.yml:4:30: warning[W401]: T1059.004 belongs to none of the tactics" in out


def test_unknown_tactic_is_a_positioned_error(tmp_path: Path) -> None:
    text = LOOKUP_ANALYTIC.replace(
        "attack: {techniques: [T1059.004]}", "attack: {techniques: [T1059.004], tactics: [TA0099]}"
    )
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "inventory.csv").write_text("host,role\n")
    code, out = run(str(tmp_path / "a.yml"), "-o", str(tmp_path / "o"))
    assert code == 2
    assert "a.yml:4:45: error[E400]: tactic TA0099 is not in ATT&CK 18.1" in out


def test_deprecated_technique_is_a_positioned_warning(tmp_path: Path) -> None:
    text = LOOKUP_ANALYTIC.replace("T1059.004", "T1086")
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "inventory.csv").write_text("host,role\n")
    code, out = run(str(tmp_path / "a.yml"), "-o", str(tmp_path / "o"), "--allow-approximate")
    assert code == 0, out
    assert "a.yml:4:23: warning[W400]: T1086 (PowerShell) is deprecated or revoked" in out


def test_export_stack_picks_the_es_ql_idioms_that_stack_has(tmp_path: Path) -> None:
    """`--stack` reaches the ES|QL backend as in `siemc compile`: on 8.19 (no INLINE STATS, no
    MV_CONTAINS) AN1511, exact on 9.3, is skipped, and every ES|QL rule shipped passes Elastic's
    validator at 8.19."""
    from tests.oracles.esql_oracle import validate

    out = tmp_path / "out"
    code, text = run(
        str(ROOT / "analytics"),
        "-t",
        "elastic",
        "-o",
        str(out),
        "--stack",
        "8.19",
        "--allow-approximate",
    )
    assert code == 0, text
    skipped = json.loads((out / "export.json").read_text())["targets"]["elastic"]["skipped"]
    assert "AN1511" in skipped
    rules = [json.loads(x) for x in (out / "elastic" / "rules.ndjson").read_text().split("\n") if x]
    esql = [r for r in rules if r["type"] == "esql"]
    assert esql
    for r in esql:
        validate(r["query"], stack="8.19", rule_shape=False)
    code, text = run(
        str(ROOT / "analytics"), "-t", "elastic", "-o", str(tmp_path / "d"), "--allow-approximate"
    )
    assert code == 0, text
    default = json.loads((tmp_path / "d" / "export.json").read_text())
    assert "AN1511" not in default["targets"]["elastic"]["skipped"]
