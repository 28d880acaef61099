"""Files an untrusted analytic refers to (docs/security.md): lookups and fixture inputs stay
inside the analytics root, special files are refused before they are opened, sizes are limited,
and nothing of a file that is not a confirmed CSV reaches a diagnostic or a query."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from compiler.cli import EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from compiler.lower import load_text
from compiler.safe_files import FIXTURE_MAX_BYTES, LOOKUP_MAX_BYTES

SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"

LOOKUP_ANALYTIC = """\
id: SEC-1
title: t
description: d
attack: {techniques: [T1059.001]}
platforms: [windows]
severity: low
lookups:
  approved: {file: LOOKUP}
streams:
  proc:
    logsource: {category: process_creation, product: windows}
    where:
      not:
        lookup: {name: approved, match: {host: host.name}}
detect:
  match: proc
"""

FIXTURE_ANALYTIC = """\
id: SEC-2
title: t
description: d
attack: {techniques: [T1059.001]}
platforms: [windows]
severity: low
streams:
  proc:
    logsource: {category: process_creation, product: windows}
detect:
  match: proc
tests:
  - name: t
    kind: negative
    inputs: [{file: INPUT}]
"""

EVENT = '{"@timestamp": "2024-01-01T00:00:00Z", "event.category": "process"}\n'


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    # Before the fix a FIFO lookup blocked forever in open(): turn a hang into a failure.
    old = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("siemc blocked on a file"))
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _pos(text: str, needle: str) -> tuple[int, int]:
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def _lookup(folder: Path, ref: str) -> tuple[Path, tuple[int, int]]:
    text = LOOKUP_ANALYTIC.replace("LOOKUP", ref)
    a = folder / "a.yml"
    a.write_text(text)
    return a, _pos(text, ref)


def _fixture(folder: Path, ref: str) -> tuple[Path, tuple[int, int]]:
    text = FIXTURE_ANALYTIC.replace("INPUT", ref)
    a = folder / "a.yml"
    a.write_text(text)
    return a, _pos(text, ref)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``tmp/repo`` is the analytics root; ``tmp/secret.csv`` and ``tmp/events.jsonl`` lie
    beside it, outside."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "secret.csv").write_text(SECRET)
    (tmp_path / "events.jsonl").write_text(EVENT)
    return tmp_path / "repo"


def _invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


# ---------------------------------------------------------------- lookups outside the root


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_a_lookup_outside_the_root_is_refused_at_its_file(tree: Path, how: str) -> None:
    if how == "symlink":
        (tree / "lookups").mkdir()
        (tree / "lookups" / "ok.csv").symlink_to(tree.parent / "secret.csv")
        ref = "lookups/ok.csv"
    else:
        ref = str(tree.parent / "secret.csv") if how == "absolute" else "../secret.csv"
    a, (line, col) = _lookup(tree, ref)
    for cmd in (["check"], ["compile", "-t", "eql"], ["test"]):
        code, out = _invoke(*cmd, str(a))
        assert code == EXIT_INVALID, out
        assert f"{a}:{line}:{col}: error[E004]: lookup file refused: " in out
        assert "outside the analytics root" in out
        assert "BEGIN OPENSSH" not in out.upper() and "b3BlbnNz" not in out


def test_the_private_key_header_is_not_echoed_by_the_columns_help(tree: Path) -> None:
    # the demonstration: a wrong column name printed the "header" of any file
    a, _ = _lookup(tree, "../secret.csv")
    a.write_text(a.read_text().replace("{host: host.name}", "{nope: host.name}"))
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert "its columns are" not in out and "BEGIN OPENSSH" not in out.upper()


def test_root_widens_the_confinement_and_a_path_outside_it_is_a_usage_error(
    tree: Path,
) -> None:
    sub = tree / "windows"
    sub.mkdir()
    (tree / "lookups").mkdir()
    (tree / "lookups" / "hosts.csv").write_text("host\nh1\n")
    a, (line, col) = _lookup(sub, "../lookups/hosts.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E004]" in out
    code, out = _invoke("check", str(a), "--root", str(tree))
    assert code == EXIT_OK, out
    code, out = _invoke("check", str(sub), "--root", str(tree))
    assert code == EXIT_OK, out
    code, out = _invoke("check", str(a), "--root", str(tree / "lookups"))
    assert code == EXIT_USAGE and "is not inside --root" in out


@pytest.mark.parametrize("cmd", ["check", "test", "compile", "build", "export", "run"])
def test_every_command_that_loads_analytics_takes_root(cmd: str) -> None:
    code, out = _invoke(cmd, "--help")
    assert code == EXIT_OK and "--root" in out


# ---------------------------------------------------------------- special files


def test_a_lookup_in_proc_is_refused_even_under_root_slash(tree: Path) -> None:
    (tree / "env.csv").symlink_to("/proc/self/environ")
    a, (line, col) = _lookup(tree, "env.csv")
    code, out = _invoke("check", str(a), "--root", "/")
    assert code == EXIT_INVALID, out
    assert f"{a}:{line}:{col}: error[E004]: lookup file refused: " in out and "/proc" in out


def test_a_lookup_on_dev_zero_is_refused(tree: Path) -> None:
    (tree / "zero.csv").symlink_to("/dev/zero")
    a, (line, col) = _lookup(tree, "zero.csv")
    code, out = _invoke("check", str(a), "--root", "/")
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E004]" in out, out


def test_a_fifo_lookup_is_refused_without_opening_it(tree: Path) -> None:
    os.mkfifo(tree / "pipe.csv")
    a, (line, col) = _lookup(tree, "pipe.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert f"{a}:{line}:{col}: error[E004]: lookup file refused: " in out
    assert "not a regular file" in out


def test_a_lookup_that_is_a_folder_is_refused(tree: Path) -> None:
    (tree / "dir.csv").mkdir()
    a, (line, col) = _lookup(tree, "dir.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E004]" in out, out


def test_a_lookup_over_the_size_limit_is_refused_unread(tree: Path) -> None:
    big = tree / "big.csv"
    with big.open("wb") as fh:  # sparse: no disk, and refused from its size alone
        fh.truncate(LOOKUP_MAX_BYTES + 1)
    a, (line, col) = _lookup(tree, "big.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert f"{a}:{line}:{col}: error[E005]: lookup file refused: " in out
    assert f"over the limit of {LOOKUP_MAX_BYTES}" in out


def test_a_field_beyond_the_csv_modules_limit_is_a_positioned_error(tree: Path) -> None:
    (tree / "wide.csv").write_text("host\n" + "x" * 200_000 + "\n")
    a, (line, col) = _lookup(tree, "wide.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert f"{a}:{line}:{col}: error[E121]: lookup file wide.csv is not a valid CSV" in out


def test_a_lookup_not_named_csv_is_refused_without_quoting_it(tree: Path) -> None:
    (tree / "id_ed25519").write_text(SECRET)
    a, (line, col) = _lookup(tree, "id_ed25519")
    a.write_text(a.read_text().replace("{host: host.name}", "{nope: host.name}"))
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert f"{a}:{line}:{col}: error[E121]: lookup file id_ed25519 is not a .csv file" in out
    assert "BEGIN OPENSSH" not in out.upper()


def test_a_lookup_that_is_not_utf8_does_not_quote_its_bytes(tree: Path) -> None:
    (tree / "bin.csv").write_bytes(b"host\n\xfe\xff\n")
    a, (line, col) = _lookup(tree, "bin.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert f"{a}:{line}:{col}: error[E003]: lookup file {tree}/bin.csv is not UTF-8 (byte 5)" in (
        out
    )
    assert "0xfe" not in out


def test_an_analytic_symlinked_out_of_the_root_is_refused(tree: Path) -> None:
    outside = tree.parent / "elsewhere.yml"
    outside.write_text(FIXTURE_ANALYTIC.replace("    inputs: [{file: INPUT}]\n", ""))
    (tree / "a.yml").symlink_to(outside)
    code, out = _invoke("check", str(tree))
    assert code == EXIT_INVALID and f"{tree}/a.yml:1:1: error[E004]" in out, out


def test_an_analytic_that_is_a_fifo_is_refused(tree: Path) -> None:
    os.mkfifo(tree / "a.yml")
    code, out = _invoke("check", str(tree))
    assert code == EXIT_INVALID and f"{tree}/a.yml:1:1: error[E004]" in out, out


# ---------------------------------------------------------------- cells as written


def test_lookup_cells_are_kept_as_written(tree: Path) -> None:
    (tree / "hosts.csv").write_text("host,role\n web01 ,db \n")
    a, _ = _lookup(tree, "hosts.csv")
    lk = load_text(str(a), a.read_text()).analytic.lookups[0]
    assert lk.rows == ((" web01 ", "db "),)


def test_a_padded_column_name_is_refused_not_trimmed(tree: Path) -> None:
    (tree / "hosts.csv").write_text("role, host\nx,h1\n")
    a, (line, col) = _lookup(tree, "hosts.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert f"{a}:{line}:{col}: error[E121]: lookup 'hosts.csv': column 2 of the header" in out


def test_padded_cells_match_only_as_written_in_the_evaluator(tree: Path) -> None:
    # " h1" is not "h1": the SIEMs that read the CSV themselves would not match it either
    (tree / "hosts.csv").write_text("host\n h1\n")
    a, _ = _lookup(tree, "hosts.csv")
    text = a.read_text() + (
        "tests:\n"
        "  - name: h1 is not allowlisted by ' h1'\n"
        "    kind: positive\n"
        "    events:\n"
        '      - {"@timestamp": "2024-01-01T00:00:00Z", event.id: e1, event.category: process,\n'
        "         event.type: start, host.os.type: windows, host.name: h1}\n"
        "    expect: [{evidence: [e1]}]\n"
    )
    a.write_text(text)
    code, out = _invoke("test", str(a))
    assert code == EXIT_OK, out


# ---------------------------------------------------------------- fixture inputs


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_a_fixture_input_outside_the_root_is_refused_at_its_file(tree: Path, how: str) -> None:
    if how == "symlink":
        (tree / "in.jsonl").symlink_to(tree.parent / "events.jsonl")
        ref = "in.jsonl"
    else:
        ref = str(tree.parent / "events.jsonl") if how == "absolute" else "../events.jsonl"
    a, (line, col) = _fixture(tree, ref)
    for cmd in ("check", "test"):
        code, out = _invoke(cmd, str(a))
        assert code == EXIT_INVALID, out
        assert f"{a}:{line}:{col}: error[E004]: fixture file refused: " in out


def test_a_fifo_fixture_input_is_refused(tree: Path) -> None:
    os.mkfifo(tree / "in.jsonl")
    a, (line, col) = _fixture(tree, "in.jsonl")
    code, out = _invoke("test", str(a))
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E004]" in out, out


def test_a_fixture_input_over_the_size_limit_is_refused(tree: Path) -> None:
    with (tree / "in.jsonl").open("wb") as fh:
        fh.truncate(FIXTURE_MAX_BYTES + 1)
    a, (line, col) = _fixture(tree, "in.jsonl")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E005]" in out, out


def test_a_data_root_path_stays_inside_the_data_root(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    otrf = tree.parent / "otrf"
    otrf.mkdir()
    (otrf / "real.jsonl").write_text(EVENT)
    monkeypatch.setenv("SIEMC_OTRF_DIR", str(otrf))
    a, _ = _fixture(tree, "$OTRF/real.jsonl")
    assert _invoke("test", str(a))[0] == EXIT_OK
    a, (line, col) = _fixture(tree, "$OTRF/../events.jsonl")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID
    assert f"{a}:{line}:{col}: error[E004]" in out and "outside the data root $OTRF" in out


def test_an_input_swapped_for_a_symlink_after_loading_is_refused_at_run_time(
    tree: Path,
) -> None:
    from compiler.discover import load_catalog
    from compiler.testing import run_fixture

    (tree / "in.jsonl").write_text(EVENT)
    a, _ = _fixture(tree, "in.jsonl")
    (loaded,) = load_catalog([a]).loaded
    (tree / "in.jsonl").unlink()
    (tree / "in.jsonl").symlink_to(tree.parent / "events.jsonl")
    res = run_fixture(loaded, loaded.fixtures[0])
    assert res.status == "error" and "outside the analytics root" in res.message


def test_a_symlink_loop_is_a_positioned_error(tree: Path) -> None:
    (tree / "loop.csv").symlink_to("loop.csv")
    a, (line, col) = _lookup(tree, "loop.csv")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E004]" in out, out
    (tree / "in.jsonl").symlink_to("in.jsonl")
    a, (line, col) = _fixture(tree, "in.jsonl")
    code, out = _invoke("check", str(a))
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E004]" in out, out


@pytest.mark.parametrize("make", [_lookup, _fixture])
def test_a_nul_in_a_file_name_is_a_positioned_error(tree: Path, make: Any) -> None:
    a, (line, col) = make(tree, '"x\\0.csv"')
    code, out = _invoke("check", str(a))
    # the YAML reader refuses a NUL in any string (E007) before the path is looked at
    assert code == EXIT_INVALID and f"{a}:{line}:{col}: error[E007]" in out, out


@pytest.mark.parametrize(
    "cmd",
    [
        ["check"],
        ["test"],
        ["compile"],
        ["build", "-o", "OUT"],
        ["export", "-o", "OUT"],
        ["run", "-i", "EVENTS"],
    ],
)
def test_a_path_outside_root_is_a_usage_error_on_every_command(tree: Path, cmd: list[str]) -> None:
    elsewhere = tree.parent / "elsewhere"
    elsewhere.mkdir()
    (tree.parent / "hosts.csv").write_text("host\nh1\n")
    a, _ = _lookup(elsewhere, "../hosts.csv")
    args = [
        str(tree.parent / "out")
        if x == "OUT"
        else str(tree.parent / "events.jsonl")
        if x == "EVENTS"
        else x
        for x in cmd
    ]
    code, out = _invoke(*args, str(a), "--root", str(tree))
    assert code == EXIT_USAGE and "is not inside --root" in out, out
    # and the root that holds both the analytic and its lookup lets it load
    code, out = _invoke(*args, str(a), "--root", str(tree.parent))
    assert code not in (EXIT_USAGE, EXIT_INVALID), out


def test_fixture_reads_stop_at_the_limit_even_when_the_file_grows(tmp_path: Path) -> None:
    from compiler.inputs import read_events
    from compiler.safe_files import RefusedPath, open_bounded

    f = tmp_path / "grow.jsonl"
    line = b'{"@timestamp": "2024-01-01T00:00:00Z", "event.id": "x"}\n'
    f.write_bytes(line)
    assert len(list(read_events(f, "ecs", limit=len(line)))) == 1
    with open_bounded(f, len(line) + 10) as fh:
        f.write_bytes(line * 50)  # grows after the size check, while open
        with pytest.raises(RefusedPath) as exc:
            fh.read()
    assert exc.value.code == "E005"
    with pytest.raises(RefusedPath):
        list(read_events(f, "ecs", limit=len(line)))
    for fmt in ("sysmon", "zeek", "auditd", "vmconnection"):
        with pytest.raises(RefusedPath):
            list(read_events(f, fmt, limit=100))
