"""The CI integration files parse, and every siemc command line in them is one the CLI accepts
(click introspection), so the hooks, the action and docs/ci.md cannot drift from the CLI."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from compiler.cli import main

REPO = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
ACTION = yaml.safe_load((REPO / "action.yml").read_text())
CI_DOC = (REPO / "docs" / "ci.md").read_text()


def _command(words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command ``siemc WORDS...`` names and the arguments left for it."""
    assert words[0] == "siemc", words
    cmd: click.Command = main
    rest = words[1:]
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        sub = cmd.commands.get(rest[0])
        assert sub is not None, f"siemc has no command {rest[0]!r} ({' '.join(words)})"
        cmd, rest = sub, rest[1:]
    return cmd, rest


def _options(cmd: click.Command) -> set[str]:
    # -h/--help come from the group's context settings, on every command
    return {"-h", "--help"} | {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def _parses(words: list[str]) -> None:
    cmd, rest = _command(words)
    # parsing only: a usage error (unknown option, bad choice, missing argument) raises here
    cmd.make_context(cmd.name or "siemc", list(rest), resilient_parsing=False)


@pytest.mark.parametrize("hook", HOOKS, ids=[h["id"] for h in HOOKS])
def test_pre_commit_hook_runs_a_real_command(hook: dict[str, Any]) -> None:
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["language"] == "python"  # pre-commit installs this repository with pip
    assert hook["pass_filenames"] is False  # a catalog is checked whole (ids, lookups)
    re.compile(hook["files"])
    _parses([*shlex.split(hook["entry"]), *hook.get("args", [])])


def test_hooks_cover_check_and_test() -> None:
    assert {tuple(shlex.split(h["entry"])) for h in HOOKS} == {
        ("siemc", "check"),
        ("siemc", "test"),
    }


def _siemc_lines(script: str) -> list[list[str]]:
    """The siemc command lines of a shell script (``$VAR`` words and ``"${opts[@]}"`` stay as
    words: options the script adds at run time are checked separately)."""
    out = []
    for line in script.splitlines():
        line = line.strip()
        m = re.search(r"(?:^|[;&|(]\s*|\bif\s+)(siemc\s[^|;&)]*)", line)
        if m and not line.startswith("#"):
            out.append(shlex.split(m.group(1)))
    return out


def _steps() -> list[dict[str, Any]]:
    runs = ACTION["runs"]
    assert runs["using"] == "composite"
    return list(runs["steps"])


def test_action_runs_siemc_build_with_options_the_cli_has() -> None:
    lines = [w for s in _steps() if "run" in s for w in _siemc_lines(s["run"])]
    build = [w for w in lines if w[1] == "build" and "--help" not in w]
    assert build, "the action runs siemc build"
    for words in lines:
        cmd, rest = _command(words)
        for flag in (w for w in rest if w.startswith("-")):
            assert flag in _options(cmd), f"siemc {cmd.name} has no option {flag}"
    # the options the script adds through its array are options of siemc build
    script = next(s["run"] for s in _steps() if s.get("id") == "build")
    added = set(re.findall(r"opts\+=\((--[a-z-]+)", script))
    assert added == {"--strict", "--sarif"}
    build_opts = _options(main.commands["build"])
    assert "--strict" in build_opts
    # --sarif is added only when `siemc build --help` lists it (older siemc: no SARIF upload)
    assert "siemc build --help | grep -- '--sarif'" in script
    # the JUnit file the action reports is the one siemc build writes
    assert "junit.xml" in (main.commands["build"].help or "")


def test_action_inputs_and_outputs_are_declared() -> None:
    text = (REPO / "action.yml").read_text()
    used = set(re.findall(r"inputs\.([a-z-]+)", text))
    assert used == set(ACTION["inputs"]), used ^ set(ACTION["inputs"])
    steps = {s.get("id") for s in _steps()}
    for out in ACTION["outputs"].values():
        m = re.fullmatch(r"\$\{\{ steps\.([a-z]+)\.outputs\.([a-z-]+) \}\}", out["value"])
        assert m and m.group(1) in steps
    # inputs reach scripts through env, never spliced into the script text
    for s in _steps():
        assert "${{" not in s.get("run", ""), s.get("name")
    for s in _steps():
        if "uses" in s:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", s["uses"]), s["uses"]


def _yaml_blocks(text: str) -> list[Any]:
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]


def test_docs_example_workflow_uses_declared_inputs() -> None:
    blocks = _yaml_blocks(CI_DOC)
    workflows = [b for b in blocks if isinstance(b, dict) and "jobs" in b]
    assert workflows, "docs/ci.md shows an example workflow"
    uses = [
        step
        for wf in workflows
        for job in wf["jobs"].values()
        for step in job["steps"]
        if "siemc" in str(step.get("uses", ""))
    ]
    assert uses
    for step in uses:
        assert set(step.get("with", {})) <= set(ACTION["inputs"]), step
    # code scanning needs this permission to receive the SARIF upload
    assert any(wf.get("permissions", {}).get("security-events") == "write" for wf in workflows)


def test_docs_pre_commit_config_names_real_hooks() -> None:
    configs = [b for b in _yaml_blocks(CI_DOC) if isinstance(b, dict) and "repos" in b]
    assert configs
    ids = {h["id"] for h in HOOKS}
    for cfg in configs:
        for repo in cfg["repos"]:
            for hook in repo["hooks"]:
                assert hook["id"] in ids
                entry = next(h["entry"] for h in HOOKS if h["id"] == hook["id"])
                _parses([*shlex.split(entry), *hook.get("args", [])])


def test_docs_console_commands_parse() -> None:
    blocks = re.findall(r"```console\n(.*?)```", CI_DOC, re.S)
    lines = [ln[2:] for b in blocks for ln in b.splitlines() if ln.startswith("$ siemc ")]
    assert lines
    for line in lines:
        _parses(shlex.split(line))


def test_an_unknown_option_would_be_caught() -> None:
    with pytest.raises(click.UsageError):
        _parses(["siemc", "check", "--no-such-option", "analytics/"])
    with pytest.raises(AssertionError):
        _command(["siemc", "no-such-command"])


def test_action_build_step_runs(tmp_path: Path) -> None:
    """The build step's script, run by bash as the runner would, on a one-analytic catalog:
    it records siemc's exit code and the files it promises in $GITHUB_OUTPUT."""
    analytics = tmp_path / "analytics"
    res = CliRunner().invoke(main, ["new", str(analytics / "rule1.yml")])
    assert res.exit_code == 0, res.output
    script = next(s for s in _steps() if s.get("id") == "build")
    out_file, summary = tmp_path / "github_output", tmp_path / "summary"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_OUTPUT": str(out_file),
        "GITHUB_STEP_SUMMARY": str(summary),
        **{k: str(v) for k, v in script["env"].items() if "${{" not in str(v)},
        "SIEMC_PATHS": "analytics",
        "SIEMC_OUT": "build",
        "SIEMC_STRICT": "false",
    }
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    outputs = dict(line.split("=", 1) for line in out_file.read_text().splitlines())
    assert outputs["exit-code"] == "0"
    assert (tmp_path / outputs["junit"]).is_file()
    assert (tmp_path / "build" / "export").is_dir()
    if "--sarif" in _options(main.commands["build"]):
        assert (tmp_path / outputs["sarif"]).is_file()
    else:
        assert outputs["sarif"] == ""
    assert "siemc build exited 0" in summary.read_text()
