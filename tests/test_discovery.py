"""Discovery finds analytics, never siemc's own outputs nor other tools' trees."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner

from compiler.build import OUTPUT_MARKER
from compiler.cli import EXIT_OK, EXIT_USAGE, main
from compiler.discover import find_analytics

from .test_cli import ANALYTIC


def _catalog(tmp: Path) -> Path:
    root = tmp / "analytics"
    root.mkdir()
    (root / "a.yml").write_text(textwrap.dedent(ANALYTIC))
    return root


def test_compiling_under_the_analytics_path_does_not_feed_the_next_run(tmp_path: Path) -> None:
    root = _catalog(tmp_path)
    out = root / "out"
    res = CliRunner().invoke(
        main, ["compile", str(root), "-o", str(out), "--allow-approximate", "-t", "all"]
    )
    assert (out / "sigma" / "CLI-1.yml").is_file() and (out / OUTPUT_MARKER).is_file()
    assert res.exit_code in (0, 1), res.output
    res = CliRunner().invoke(main, ["test", str(root)])
    assert res.exit_code == EXIT_OK, res.output
    assert "1 analytic(s), 2 fixture(s)" in res.output
    assert find_analytics([root]) == [root / "a.yml"]


def test_build_output_is_skipped_too(tmp_path: Path) -> None:
    root = _catalog(tmp_path)
    out = root / "build"
    assert CliRunner().invoke(main, ["build", str(root), "--out", str(out)]).exit_code == 0
    assert (out / OUTPUT_MARKER).is_file()
    res = CliRunner().invoke(main, ["check", str(root)])
    assert res.exit_code == EXIT_OK and "1 analytic(s) valid" in res.output, res.output


def test_an_output_folder_given_as_analytics_is_a_usage_error(tmp_path: Path) -> None:
    root = _catalog(tmp_path)
    CliRunner().invoke(main, ["compile", str(root), "-o", str(tmp_path / "o"), "-t", "kql"])
    res = CliRunner().invoke(main, ["check", str(tmp_path / "o")])
    assert res.exit_code == EXIT_USAGE
    assert "is a folder siemc wrote its outputs into" in res.output


def test_hidden_and_tool_folders_are_skipped(tmp_path: Path) -> None:
    root = _catalog(tmp_path)
    for junk in (".git/x", ".venv/lib/site", "node_modules/pkg", "venv/lib", ".cache"):
        d = root / junk
        d.mkdir(parents=True)
        (d / "config.yml").write_text("not: [an analytic\n")
    (root / ".pre-commit-config.yaml").write_text("repos: []\n")
    assert find_analytics([root]) == [root / "a.yml"]
    res = CliRunner().invoke(main, ["check", str(root)])
    assert res.exit_code == EXIT_OK, res.output


def test_a_hidden_folder_named_explicitly_is_searched(tmp_path: Path) -> None:
    hidden = tmp_path / ".rules"
    hidden.mkdir()
    (hidden / "a.yml").write_text(textwrap.dedent(ANALYTIC))
    assert find_analytics([hidden]) == [hidden / "a.yml"]


def test_order_is_by_full_path(tmp_path: Path) -> None:
    for rel in ("z.yml", "sub/b.yml", "a.yaml"):
        p = tmp_path / rel
        p.parent.mkdir(exist_ok=True)
        p.write_text("")
    found = find_analytics([tmp_path])
    assert found == sorted(found) and len(found) == 3
