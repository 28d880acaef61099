"""docs/tutorial.md runs as written: every ``$`` command of its ```console blocks, in order, in
an empty folder, with the exit code it states (0 unless the line ends in ``# exit N``), every
output line it shows among the command's output, and every file its ``<!-- files: ... -->``
markers promise on disk after the block before them.

The commands run in this process through click's test runner (the same ``main`` the ``siemc``
script calls, with its exit codes): a new interpreter per command would spend most of the
test's time importing siemc again."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler.cli import main

REPO = Path(__file__).resolve().parent.parent
TUTORIAL = (REPO / "docs" / "tutorial.md").read_text()


@dataclass
class Step:
    command: list[str]
    exit_code: int
    shown: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def steps(text: str) -> list[Step]:
    out: list[Step] = []
    token = re.compile(r"```console\n(.*?)```|<!-- files: (.*?) -->", re.S)
    for m in token.finditer(text):
        if m.group(2) is not None:
            assert out, "a files marker before any command"
            out[-1].files += m.group(2).split()
            continue
        for line in m.group(1).splitlines():
            if line.startswith("$ "):
                code = re.search(r"#\s*exit (\d+)\s*$", line)
                words = shlex.split(line[2:], comments=True)
                out.append(Step(words, int(code.group(1)) if code else 0))
            elif line.strip():
                out[-1].shown.append(line.rstrip())
    return out


STEPS = steps(TUTORIAL)


def test_the_tutorial_goes_from_new_to_three_siem_packages() -> None:
    commands = [s.command[:2] for s in STEPS]
    assert commands[0] == ["siemc", "new"]
    assert ["siemc", "export"] in commands
    files = " ".join(f for s in STEPS for f in s.files)
    for vendor in ("splunk", "elastic", "sentinel"):
        assert f"rules/{vendor}/" in files
    # only siemc runs: the tutorial needs nothing but siemc
    assert all(s.command[0] == "siemc" for s in STEPS)


def test_tutorial_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    for step in STEPS:
        res = CliRunner().invoke(main, step.command[1:], prog_name="siemc")
        said = res.output.splitlines()
        where = f"$ {shlex.join(step.command)}\n{res.output}"
        assert res.exit_code == step.exit_code, where
        for line in step.shown:
            assert line in said, f"the tutorial shows {line!r}; {where}"
        for f in step.files:
            assert (tmp_path / f).is_file(), f"{f} missing after {where}"


def test_a_wrong_promise_would_fail() -> None:
    parsed = steps(
        "```console\n$ siemc check a/    # exit 2\nsome output\n```\n<!-- files: x y -->"
    )
    assert parsed == [Step(["siemc", "check", "a/"], 2, ["some output"], ["x", "y"])]
