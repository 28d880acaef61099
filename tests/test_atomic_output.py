"""Output folders hold the previous complete output or the new complete output, never a mix,
and no ``.siemc-*`` folder is left, on every I/O error and on SIGINT/SIGTERM (issue 8, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from compiler import atomic
from compiler.atomic import Interrupted, OutputError, write_tree
from compiler.cli import main

from .test_cli import ANALYTIC

ROOT = Path(__file__).resolve().parent.parent
OLD = {"a.txt": "old a\n", "sub/b.txt": "old b\n", "marker": "siemc\n"}
NEW = {"a.txt": "new a\n", "sub/c.txt": "new c\n", "sub/deeper/d.txt": "new d\n", "marker": "x\n"}


def tree(d: Path) -> dict[str, str]:
    return {
        p.relative_to(d).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".siemc-")]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    o = tmp_path / "out"
    write_tree(o, OLD, owned_by=("marker",))
    assert tree(o) == OLD
    return o


def failing_on_call(real: Callable[..., object], n: int) -> Callable[..., object]:
    calls = {"n": 0}

    def f(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    return f


# Every place write_tree touches the file system, and which call of it fails: the temporary
# folder, a sub-folder, a file, the folder the old output is moved into, moving the old output
# aside, moving the new one into place.
STEPS = [
    ("mkdtemp of the new tree", tempfile, "mkdtemp", 1),
    ("a sub-folder", Path, "mkdir", 2),
    ("the second file", Path, "write_text", 2),
    ("the last file", Path, "write_text", len(NEW)),
    ("mkdtemp for the old output", tempfile, "mkdtemp", 2),
    ("moving the old output aside", Path, "replace", 1),
    ("moving the new output in", Path, "replace", 2),
]


@pytest.mark.parametrize(("step", "owner", "name", "n"), STEPS, ids=[s[0] for s in STEPS])
def test_an_io_error_at_any_step_leaves_the_old_output(
    out: Path, monkeypatch: pytest.MonkeyPatch, step: str, owner: object, name: str, n: int
) -> None:
    monkeypatch.setattr(owner, name, failing_on_call(getattr(owner, name), n))
    with pytest.raises(OutputError) as info:
        write_tree(out, NEW, owned_by=("marker",))
    monkeypatch.undo()
    assert str(out) in str(info.value) and "No space left on device" in str(info.value)
    assert tree(out) == OLD
    assert leftovers(out.parent) == []


def test_a_new_output_replaces_the_old_one_whole(out: Path) -> None:
    write_tree(out, NEW, owned_by=("marker",))
    assert tree(out) == NEW and leftovers(out.parent) == []


def test_a_foreign_folder_or_a_file_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="not written by siemc"):
        write_tree(tmp_path / "mine", NEW, owned_by=("marker",))
    (tmp_path / "file").write_text("keep")
    with pytest.raises(OutputError, match="not a folder"):
        write_tree(tmp_path / "file", NEW, owned_by=("marker",))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_writing_leaves_the_old_output(
    out: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    real = Path.write_text

    def signalled(self: Path, *a: object, **k: object) -> int:
        if self.name == "c.txt":
            os.kill(os.getpid(), signum)  # the handler runs before the next bytecode
        return real(self, *a, **k)  # type: ignore[arg-type]

    before = signal.getsignal(signum)
    monkeypatch.setattr(Path, "write_text", signalled)
    with pytest.raises(Interrupted) as info:
        write_tree(out, NEW, owned_by=("marker",))
    assert info.value.signum == signum
    assert tree(out) == OLD and leftovers(out.parent) == []
    assert signal.getsignal(signum) == before  # the handlers are put back


def test_a_signal_during_the_swap_completes_it_first(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Path.replace

    def signalled(self: Path, target: str | os.PathLike[str]) -> Path:
        os.kill(os.getpid(), signal.SIGTERM)  # between the two renames
        return real(self, target)

    monkeypatch.setattr(Path, "replace", signalled)
    with pytest.raises(Interrupted):
        write_tree(out, NEW, owned_by=("marker",))
    assert tree(out) == NEW and leftovers(out.parent) == []


# ------------------------------------------------------------------ through the CLI
def catalog(src: Path, n: int, process: str) -> Path:
    src.mkdir(exist_ok=True)
    for i in range(n):
        text = ANALYTIC.replace("id: CLI-1", f"id: CLI-{i}").replace("excel.exe", process)
        (src / f"a{i}.yml").write_text(text)
    return src


def test_compile_io_error_is_exit_73_with_the_old_output_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = catalog(tmp_path / "src", 2, "excel.exe"), tmp_path / "out"
    assert (
        CliRunner().invoke(main, ["compile", str(src), "-t", "kql", "-o", str(out)]).exit_code == 0
    )
    before = tree(out)
    catalog(src, 2, "winword.exe")
    monkeypatch.setattr(Path, "replace", failing_on_call(Path.replace, 2))
    res = CliRunner().invoke(main, ["compile", str(src), "-t", "kql", "-o", str(out)])
    monkeypatch.undo()
    assert res.exit_code == 73, res.output
    assert res.output.startswith(f"error: cannot write {out}: No space left on device")
    assert tree(out) == before and leftovers(tmp_path) == []


def test_compile_into_a_foreign_folder_is_exit_73(tmp_path: Path) -> None:
    src = catalog(tmp_path / "src", 1, "excel.exe")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep")
    res = CliRunner().invoke(main, ["compile", str(src), "-o", str(tmp_path / "notes")])
    assert res.exit_code == 73 and "was not written by siemc" in res.output
    assert "Traceback" not in res.output


# A compile run in a child process whose file writes are slowed down (and announced on stderr),
# so that the test can send SIGTERM while the output is being written or swapped.
CHILD = textwrap.dedent(
    """\
    import sys, time
    from pathlib import Path
    slow = sys.argv[1]
    real_write, real_replace = Path.write_text, Path.replace
    def write_text(self, *a, **k):
        if slow == "write" and self.name == "CLI-5.kql":
            sys.stderr.write("WRITING\\n"); sys.stderr.flush(); time.sleep(30)
        return real_write(self, *a, **k)
    def replace(self, target):
        if slow == "swap":
            sys.stderr.write("SWAPPING\\n"); sys.stderr.flush(); time.sleep(0.3)
        return real_replace(self, target)
    Path.write_text, Path.replace = write_text, replace
    from compiler.cli import main
    main(sys.argv[2:])
    """
)


@pytest.mark.parametrize(("phase", "expect"), [("write", "old"), ("swap", "new")])
def test_sigterm_to_a_compile_leaves_old_or_new_output_whole(
    tmp_path: Path, phase: str, expect: str
) -> None:
    src, out = catalog(tmp_path / "src", 8, "excel.exe"), tmp_path / "out"
    args = ["compile", str(src), "-t", "kql", "-o"]
    assert CliRunner().invoke(main, [*args, str(out)]).exit_code == 0
    old = tree(out)
    catalog(src, 8, "winword.exe")
    assert CliRunner().invoke(main, [*args, str(tmp_path / "ref")]).exit_code == 0
    new = tree(tmp_path / "ref")
    assert new != old
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, phase, *args, str(out)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert child.stderr is not None
    try:
        line = child.stderr.readline()
        assert line.strip() in ("WRITING", "SWAPPING"), line + child.stderr.read()
        child.send_signal(signal.SIGTERM)
        rest = child.stderr.read()
        code = child.wait(timeout=20)
    finally:
        child.kill()
    assert code == 128 + signal.SIGTERM, rest
    assert "Aborted!" in rest and "Traceback" not in rest
    assert tree(out) == (old if expect == "old" else new)
    assert leftovers(tmp_path) == []


def test_signal_handling_is_skipped_off_the_main_thread(tmp_path: Path) -> None:
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            write_tree(tmp_path / "o", NEW, owned_by=("marker",))
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert errors == [] and tree(tmp_path / "o") == NEW
    assert atomic.TEMP_PREFIX == ".siemc-"
