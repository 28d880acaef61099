"""Opening the files an analytic refers to (lookup CSVs, fixture inputs) when the analytic may
come from an untrusted contributor (docs/security.md).

Every such path is resolved (symlinks included) and must stay inside a *root*: the analytics
root for paths beside the analytic, or the data root the user chose through the environment for
``$OTRF/...``. Only regular files are opened, never below /proc, /sys or /dev, and never more
than a size limit: a lookup on /dev/zero, a FIFO or /proc/self/environ would otherwise hang,
exhaust memory or copy the CI environment into a query.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import Any

# Limits on what an analytic can make siemc read (docs/security.md, "Size limits"). A lookup is
# inlined into queries and shipped in rule packages, so anything near the limit is already far
# beyond what a SIEM accepts; fixture inputs are extracts of real logs and may be larger.
LOOKUP_MAX_BYTES = 16 * 1024 * 1024
FIXTURE_MAX_BYTES = 64 * 1024 * 1024

# Pseudo file systems whose "files" are the machine's state (environment, memory, devices), not
# data. Refused even under a root that contains them (``--root /``).
SPECIAL_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


class RefusedPath(Exception):
    """A referenced file siemc will not read. ``code`` is E004 (where it is or what it is) or
    E005 (too large); the message names the path, never the file's contents."""

    def __init__(self, code: str, message: str, help: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help


def confine(path: Path, root: Path, what: str = "the analytics root") -> Path:
    """``path`` with symlinks resolved; RefusedPath when it leaves ``root`` or lies in a
    pseudo file system. ``path`` need not exist (the caller reports a missing file)."""
    try:
        real = path.resolve()
    except (RuntimeError, OSError, ValueError):
        # RuntimeError: a symlink loop (Python < 3.13); ValueError: a NUL in the name
        raise RefusedPath(
            "E004", f"{str(path)!r} cannot be resolved (a symlink loop or an invalid name)"
        ) from None
    for special in SPECIAL_TREES:
        if real.is_relative_to(special):
            raise RefusedPath(
                "E004",
                f"{path} is in {special}, whose files are system state, not data",
                "refer to a regular file inside " + what,
            )
    real_root = root.resolve()
    if not real.is_relative_to(real_root):
        raise RefusedPath(
            "E004",
            f"{path} resolves to {real}, outside {what} ({real_root})",
            "referenced files must stay inside it (no absolute paths, '..' or symlinks that "
            "lead out); siemc --root DIR widens it",
        )
    return real


def check_regular(path: Path, limit: int | None) -> os.stat_result:
    """``os.stat`` of ``path`` (following symlinks) when it is a regular file within ``limit``
    bytes (None: any size); RefusedPath when it is not; OSError when it cannot be examined
    (missing, no permission). Examined before any open: opening a FIFO blocks until a writer
    appears."""
    st = os.stat(path)
    _check_stat(path, st, limit)
    return st


def _check_stat(path: Path, st: os.stat_result, limit: int | None) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise RefusedPath("E004", f"{path} is {kind}", "refer to a regular file")
    if limit is not None and st.st_size > limit:
        raise RefusedPath("E005", f"{path} is {st.st_size} bytes, over the limit of {limit}")


class _Bounded(io.RawIOBase):
    """A file descriptor read as a stream that refuses to go past ``limit`` bytes."""

    def __init__(self, fd: int, path: Path, limit: int):
        self._fh = os.fdopen(fd, "rb", buffering=0)
        self._path, self._left = path, limit + 1
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self._left]
        n = self._fh.readinto(view) or 0
        self._left -= n
        if self._left <= 0:
            raise RefusedPath("E005", f"{self._path} is over the limit of {self._limit} bytes")
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def _open_checked(path: Path, limit: int) -> int:
    check_regular(path, limit)
    # O_NONBLOCK: if a FIFO replaced the file since the check, open returns instead of waiting
    # for a writer, and the fstat below refuses it.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        _check_stat(path, os.fstat(fd), limit)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_bounded(path: Path, limit: int) -> io.BufferedReader:
    """The regular file ``path`` opened for reading as a stream that raises RefusedPath (E005)
    instead of reading past ``limit`` bytes: a file that grows after the size check, or is
    swapped for a FIFO or device, is refused, not read without end."""
    return io.BufferedReader(_Bounded(_open_checked(path, limit), path, limit))


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, never reading more than ``limit`` + 1 bytes:
    a file that is swapped for something else after the check, or grows, is refused, not
    loaded."""
    with os.fdopen(_open_checked(path, limit), "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise RefusedPath("E005", f"{path} is over the limit of {limit} bytes")
    return data
