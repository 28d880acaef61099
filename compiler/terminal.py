"""Terminal conventions shared by every command: colour (``--color``, ``NO_COLOR``), ``-q`` and
``-v`` (global options of the ``siemc`` group), and progress bars that appear only on a terminal.

The settings live in ``click.Context.meta``, which every sub-command's context shares, so a
command reads them without a parameter of its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TextIO

import click

COLOR_CHOICES = ("auto", "always", "never")
_QUIET, _VERBOSE = "siemc.quiet", "siemc.verbose"


def resolve_color(choice: str, environ: dict[str, str] | None = None) -> bool | None:
    """click's ``color`` for a ``--color`` choice: True/False force it, None leaves click to strip
    colour when the output is not a terminal. ``NO_COLOR`` (no-color.org: present and not empty)
    turns colour off under ``auto``; an explicit ``--color always`` overrides it, as that
    convention asks of per-invocation options."""
    env = os.environ if environ is None else environ
    if choice == "always":
        return True
    if choice == "never" or env.get("NO_COLOR", ""):
        return False
    return None


def configure(ctx: click.Context, color: str, quiet: bool, verbose: bool) -> None:
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose exclude each other")
    ctx.color = resolve_color(color)
    ctx.meta[_QUIET] = quiet
    ctx.meta[_VERBOSE] = verbose


def _meta(key: str) -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(key, False))


def quiet() -> bool:
    return _meta(_QUIET)


def verbose() -> bool:
    return _meta(_VERBOSE)


def info(message: str, *, err: bool = False, **style: Any) -> None:
    """A line that only informs (progress of work, a summary of success): ``-q`` drops it.
    Problems, diagnostics and the requested output are never routed through here."""
    if not quiet():
        click.secho(message, err=err, **style)


def _stream_isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or foreign stream is no terminal
        return False


@contextmanager
def progress[T](
    items: Iterable[T],
    label: str,
    length: int | None = None,
    stream: TextIO | None = None,
    listed: bool = False,
) -> Iterator[Iterable[T]]:
    """``items``, drawn as a progress bar on standard error while they are consumed, only when
    standard error is a terminal and ``-q`` is not given: a log file or a pipe receives nothing
    (click's own bar would still print its label once there). ``listed``: the items are also
    listed line by line on standard output; then that listing is the progress when it goes to
    the terminal, and a bar would tear its lines."""
    out = sys.stderr if stream is None else stream
    if quiet() or not _stream_isatty(out) or (listed and _stream_isatty(sys.stdout)):
        yield items
        return
    with click.progressbar(items, length=length, label=label, file=out) as bar:
        yield bar


class Counter:
    """A running count on standard error for work of unknown length (events read by ``siemc
    run``), on a terminal only."""

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.out = sys.stderr if stream is None else stream
        self.shown = not quiet() and _stream_isatty(self.out)
        self.label, self.count = label, 0

    def update(self, count: int) -> None:
        self.count = count
        if self.shown:
            self.out.write(f"\r{self.label}: {count:,}")
            self.out.flush()

    def close(self) -> None:
        if self.shown and self.count:
            self.out.write("\n")
            self.out.flush()
