"""siemc diff: changes between two real build folders, and between two git revisions, per
analytic and target, with fidelity moves and (under -v) unified diffs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner, Result

from compiler.cli import main

from .test_cli import ANALYTIC, write
from .test_cli_exit_codes import COUNTING

# a sliding distinct count and event count together: splunk over-approximates it (either alone
# it consumes exactly)
SLIDING = (
    COUNTING.replace("kind: tumbling", "kind: sliding")
    .replace("n: {count: true}", "n: {distinct: process.pid}\n      c: {count: true}")
    .replace("having: n >= 3", "having: n >= 3 and c >= 3")
)
THIRD = ANALYTIC.replace("CLI-1", "CLI-3")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def build(tmp: Path, name: str, files: dict[str, str]) -> Path:
    src = tmp / f"{name}-src"
    src.mkdir()
    for fname, text in files.items():
        write(src, fname, text)
    out = tmp / name
    res = invoke("build", str(src), "-o", str(out))
    assert res.exit_code == 0, res.output
    return out


def two_builds(tmp: Path) -> tuple[Path, Path]:
    base = build(tmp, "base", {"a.yml": ANALYTIC, "b.yml": COUNTING})
    head = build(
        tmp,
        "head",
        {
            "a.yml": ANALYTIC.replace(
                "process.parent.name: excel.exe", "process.parent.name: [excel.exe, powerpnt.exe]"
            ),
            "b.yml": SLIDING,
            "c.yml": THIRD,
        },
    )
    return base, head


def test_diff_of_two_build_folders(tmp_path: Path) -> None:
    base, head = two_builds(tmp_path)
    res = invoke("diff", str(base), str(head))
    assert res.exit_code == 0, res.output
    out = res.output
    assert "CLI-1\n  eql     changed       eql/CLI-1.eql\n" in out
    assert "  splunk  changed       splunk/CLI-2.spl  fidelity exact -> superset (worse)" in out
    assert "CLI-3\n  eql     added         eql/CLI-3.eql  (exact)" in out
    assert "files\n" in out and "export/" in out
    assert "fidelity worse for" in out and "@@" not in out  # diffs only under -v
    assert invoke("diff", str(base), str(base)).output.startswith("0 pair(s)")


def test_verbose_shows_unified_diffs(tmp_path: Path) -> None:
    base, head = two_builds(tmp_path)
    res = invoke("diff", str(base), str(head), "-v")
    assert "--- a/kql/CLI-1.kql\n+++ b/kql/CLI-1.kql\n@@" in res.output
    minus = [x for x in res.output.splitlines() if x.startswith("-") and "excel.exe" in x]
    plus = [x for x in res.output.splitlines() if x.startswith("+") and "powerpnt.exe" in x]
    assert minus and plus


def test_json_and_exit_code(tmp_path: Path) -> None:
    base, head = two_builds(tmp_path)
    res = invoke("diff", str(base), str(head), "--format", "json", "--exit-code")
    assert res.exit_code == 1
    assert invoke("diff", str(base), str(head), "--format", "json").stdout == res.stdout
    doc = json.loads(res.stdout)
    moves = {(p["analytic"], p["target"]): p for p in doc["pairs"]}
    spl = moves["CLI-2", "splunk"]
    assert (spl["base"], spl["head"], spl["fidelity_change"]) == ("exact", "superset", "worse")
    assert moves["CLI-3", "kql"]["change"] == "added" and moves["CLI-3", "kql"]["base"] is None
    assert doc["summary"]["fidelity_worse"] >= 1 and "diff" not in spl
    same = invoke("diff", str(base), str(base), "--exit-code")
    assert same.exit_code == 0


def _git(repo: Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return run.stdout.strip()


def test_diff_of_two_git_revisions(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "analytics").mkdir(parents=True)
    _git(repo, "init", "-q")
    write(repo / "analytics", "b.yml", COUNTING)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    write(repo / "analytics", "b.yml", SLIDING)
    _git(repo, "commit", "-qam", "head")
    res = invoke("diff", "HEAD~1", "HEAD", "--repo", str(repo), "--format", "json")
    assert res.exit_code == 0, res.output
    moves = {(p["analytic"], p["target"]): p for p in json.loads(res.stdout)["pairs"]}
    assert moves["CLI-2", "splunk"]["fidelity_change"] == "worse"
    eql = moves["CLI-2", "eql"]  # refused on both sides: its reason (.err) changed
    assert eql["change"] == "changed" and eql["path"] == "eql/CLI-2.err"
    assert eql["base"] == eql["head"] == "refused" and eql["fidelity_change"] is None
    bad = invoke("diff", "HEAD~1", "no-such-rev", "--repo", str(repo))
    assert bad.exit_code == 64 and "neither an output folder nor a git revision" in bad.output
