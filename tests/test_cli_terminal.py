"""Terminal conventions: --color and NO_COLOR, -q and -v, progress only on a terminal, and the
one table of exit codes (compiler/cli_common.py, docs/cli.md)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from compiler import terminal
from compiler.cli import main
from compiler.cli_common import EXIT_CODES
from compiler.lower import load_file
from compiler.runner import PROGRESS_EVERY, alert_lines

from .test_cli import ANALYTIC, write

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FAILING = ANALYTIC.replace("evidence: [e1]", "evidence: [e2]")


def invoke(*args: str, env: dict[str, str] | None = None, color: bool = False) -> Result:
    # color=True: CliRunner keeps the ANSI codes it would strip for a pipe, as a terminal would
    return CliRunner(env=env).invoke(main, list(args), color=color)


@pytest.mark.parametrize(
    ("choice", "no_color", "expected"),
    [
        ("auto", "", None),
        ("auto", "1", False),
        ("always", "1", True),  # an explicit option overrides the environment
        ("never", "", False),
    ],
)
def test_resolve_color(choice: str, no_color: str, expected: bool | None) -> None:
    env = {"NO_COLOR": no_color} if no_color else {}
    assert terminal.resolve_color(choice, env) is expected


def test_colour_on_a_terminal_and_its_switches(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    coloured = invoke("test", str(tmp_path), color=True)
    assert coloured.exit_code == 0 and ANSI.search(coloured.output)
    no_color = invoke("test", str(tmp_path), env={"NO_COLOR": "1"}, color=True)
    assert no_color.exit_code == 0 and not ANSI.search(no_color.output)
    assert ANSI.sub("", coloured.output) == no_color.output
    never = invoke("--color", "never", "test", str(tmp_path), color=True)
    assert not ANSI.search(never.output)
    always = invoke("--color", "always", "test", str(tmp_path), env={"NO_COLOR": "1"})
    assert ANSI.search(always.output)  # not a terminal, NO_COLOR set: --color always wins
    assert not ANSI.search(invoke("test", str(tmp_path)).output)  # a pipe gets none


def test_quiet_prints_only_problems(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    ok = invoke("-q", "test", str(tmp_path))
    assert ok.exit_code == 0 and ok.output == ""
    assert invoke("-q", "check", str(tmp_path)).output == ""
    out = tmp_path / "out"
    built = invoke("-q", "compile", str(tmp_path / "a.yml"), "-t", "kql", "-o", str(out))
    assert built.exit_code == 0 and built.output == "" and (out / "kql" / "CLI-1.kql").exists()
    write(tmp_path, "a.yml", FAILING)
    bad = invoke("-q", "test", str(tmp_path))
    assert bad.exit_code == 1
    assert "FAIL" in bad.output and "PASS" not in bad.output and "missing" in bad.output


def test_global_verbose_lists_alerts_as_test_v(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    assert invoke("-v", "test", str(tmp_path)).output == invoke("test", "-v", str(tmp_path)).output
    assert "evidence [e1]" in invoke("-v", "test", str(tmp_path)).output
    assert invoke("-q", "-v", "test", str(tmp_path)).exit_code == 64


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_on_a_terminal_only() -> None:
    with click.Context(main) as ctx:
        terminal.configure(ctx, "auto", False, False)
        tty, pipe = _Tty(), io.StringIO()
        with terminal.progress(range(3), "compiling", stream=tty) as bar:
            assert list(bar) == [0, 1, 2]
        assert "compiling" in tty.getvalue()
        with terminal.progress(range(3), "compiling", stream=pipe) as bar:
            assert list(bar) == [0, 1, 2]
        assert pipe.getvalue() == ""
        ctx.meta["siemc.quiet"] = True
        quiet = _Tty()
        with terminal.progress(range(3), "compiling", stream=quiet) as bar:
            assert list(bar) == [0, 1, 2]
        assert quiet.getvalue() == ""


def test_counter_on_a_terminal_only() -> None:
    with click.Context(main) as ctx:
        terminal.configure(ctx, "auto", False, False)
        tty, pipe = _Tty(), io.StringIO()
        for stream in (tty, pipe):
            c = terminal.Counter("events read", stream=stream)
            c.update(16384)
            c.close()
        assert tty.getvalue() == "\revents read: 16,384\n" and pipe.getvalue() == ""


def test_no_progress_output_when_not_a_terminal(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", ANALYTIC)
    res = invoke("build", str(tmp_path), "-o", str(tmp_path / "b"), "--format", "x")
    assert res.exit_code == 64  # build has no --format: a usage error, not a fallback
    res = invoke("build", str(tmp_path), "-o", str(tmp_path / "b"))
    assert res.exit_code == 0, res.output
    assert "compiling" not in res.stderr and "testing" not in res.stderr and "\r" not in res.output


def test_exit_codes_are_documented_in_one_table() -> None:
    assert len(set(EXIT_CODES)) == len(EXIT_CODES) == 9
    doc = (Path(__file__).parents[1] / "docs" / "cli.md").read_text()
    table = doc[doc.index("## Exit codes") :]
    for code, meaning in EXIT_CODES.items():
        assert f"| `{code}` | {meaning}" in table, code


@pytest.mark.parametrize(
    "args",
    [
        ["nosuchcommand"],
        ["--color", "sometimes", "check", "."],
        ["check", "--format", "xml", "."],
        ["explain", "no/such/file.yml"],
        ["diff", "no-such-folder", "nor-a-revision"],
    ],
)
def test_usage_errors_exit_64(args: list[str]) -> None:
    assert invoke(*args).exit_code == 64


def test_run_reports_records_read_to_its_progress_callback(tmp_path: Path) -> None:
    analytic = load_file(write(tmp_path, "a.yml", ANALYTIC)).analytic
    log = tmp_path / "log.jsonl"
    event = {"@timestamp": "2024-01-01T00:00:00Z", "process": {"name": "x"}}
    log.write_text("".join(json.dumps(event) + "\n" for _ in range(PROGRESS_EVERY + 1)))
    seen: list[int] = []
    lines = list(alert_lines([analytic], [(log, "ecs")], None, progress=seen.append))
    assert lines == [] and seen == [0, PROGRESS_EVERY]
