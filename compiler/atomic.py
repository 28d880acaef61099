"""Writing an output folder atomically: readers (and the next run) see the previous complete
output or the new complete output, never a mix, whatever signal or I/O error comes.

The new tree is written into a temporary sibling folder; only when every file is on disk is the
old folder renamed aside and the new one renamed into its place, and the old one removed. The
two renames and the clean-up run with SIGINT and SIGTERM deferred (re-raised as
:class:`Interrupted` once they are done), so an interrupted run leaves no ``.siemc-*`` folder
behind and never a missing or half-replaced output. Every ``OSError`` becomes an
:class:`OutputError` naming the path and the reason (exit 73, docs/diagnostics.md), after the
previous output is put back.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

TEMP_PREFIX = ".siemc-"  # temporary folders beside the output; discovery skips hidden folders


class OutputError(Exception):
    """The output folder could not be written (the message names the path and the reason)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while an output folder was written; the folder was left as it
    was before (or, when the signal came during the swap, as the complete new output)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Signals:
    """SIGINT/SIGTERM handlers for the duration of a write: outside a critical section a signal
    raises :class:`Interrupted` at once (the temporary folder is then removed); inside one it is
    recorded and raised when the section ends, so the swap and clean-up are never cut short."""

    def __init__(self) -> None:
        self.critical = 0
        self.pending: int | None = None

    def handler(self, signum: int, frame: FrameType | None) -> None:
        if self.critical:
            self.pending = self.pending or signum
            return
        raise Interrupted(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.critical += 1
        try:
            yield
        finally:
            self.critical -= 1
        if not self.critical and self.pending is not None:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)


@contextmanager
def _handled_signals() -> Iterator[_Signals]:
    sigs = _Signals()
    # Handlers can only be installed from the main thread; elsewhere signals are the main
    # thread's business and the write simply runs without them.
    if threading.current_thread() is not threading.main_thread():
        yield sigs
        return
    previous = {s: signal.signal(s, sigs.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield sigs
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _reason(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _check_replaceable(out: Path, owned_by: Sequence[str], who: str) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputError(f"cannot create {out}: it exists and is not a folder")
    if any(out.iterdir()) and not any((out / m).is_file() for m in owned_by):
        raise OutputError(
            f"{out} is not empty and was not written by {who} (no {' or '.join(owned_by)}): "
            "choose a new or empty folder"
        )


def write_tree(
    out: Path, files: Mapping[str, str], *, owned_by: Sequence[str], who: str = "siemc"
) -> None:
    """Make ``out`` a folder holding exactly ``files`` (relative path -> text, written as UTF-8
    with ``\\n`` line ends). An existing ``out`` is replaced only when it is empty or holds one
    of the marker files ``owned_by`` (it is then a previous output of siemc), never another
    folder. Raise :class:`OutputError` (the previous ``out`` is left as it was) or
    :class:`Interrupted`."""
    out = Path(os.path.abspath(out))
    with _handled_signals() as sigs:
        tmp: Path | None = None
        old: Path | None = None
        try:
            try:
                _check_replaceable(out, owned_by, who)
                out.parent.mkdir(parents=True, exist_ok=True)
                with sigs.deferred():  # created and recorded as one step: never left behind
                    tmp = Path(
                        tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{out.name}.new-", dir=out.parent)
                    )
            except OSError as exc:
                raise OutputError(f"cannot create {out}: {_reason(exc)}") from None
            try:
                for name, text in files.items():
                    p = tmp / name
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_text(text, encoding="utf-8", newline="\n")
                with sigs.deferred():
                    if out.exists():
                        old = Path(
                            tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{out.name}.old-", dir=out.parent)
                        )
                        out.replace(old / "previous")
                    tmp.replace(out)
                    tmp = None
            except OSError as exc:
                with sigs.deferred():
                    if old is not None and (old / "previous").exists() and not out.exists():
                        (old / "previous").replace(out)  # put the previous output back
                raise OutputError(f"cannot write {out}: {_reason(exc)}") from None
        finally:
            with sigs.deferred():
                for d in (tmp, old):
                    if d is not None:
                        shutil.rmtree(d, ignore_errors=True)


def write_new_file(path: Path, text: str) -> None:
    """Create ``path`` holding ``text`` (UTF-8, ``\\n`` line ends) all at once, never replacing
    a file that exists: the text goes to a temporary file beside it, which is then hard-linked
    to ``path`` (the link fails when ``path`` exists, also when another process created it in
    the meantime). Raise :class:`FileExistsError` for an existing ``path``, :class:`OutputError`
    for any other reason it cannot be written, or :class:`Interrupted`."""
    path = Path(os.path.abspath(path))
    with _handled_signals() as sigs:
        tmp: Path | None = None
        try:
            try:
                if path.exists() or path.is_symlink():
                    raise FileExistsError(path)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except FileExistsError:  # a file where a folder should be, not ``path``
                    raise OutputError(f"cannot create {path.parent}: it is not a folder") from None
                with sigs.deferred():  # created and recorded as one step: never left behind
                    fd, name = tempfile.mkstemp(
                        prefix=f"{TEMP_PREFIX}{path.name}.", dir=path.parent
                    )
                    tmp = Path(name)
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write(text)
                with sigs.deferred():
                    try:
                        os.link(tmp, path)
                    except FileExistsError:
                        raise
                    except OSError:
                        # a file system without hard links: the check above has to do
                        if path.exists():
                            raise FileExistsError(path) from None
                        tmp.replace(path)
                        tmp = None
            except FileExistsError:
                raise
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        finally:
            if tmp is not None:
                with sigs.deferred():
                    tmp.unlink(missing_ok=True)
