"""What the ``siemc`` commands share: exit codes, argument checks, reporting helpers.

Exit codes (one table, docs/cli.md#exit-codes, also in docs/diagnostics.md): 0 success; 1 a
check did not pass (a fixture's or an engine's alerts differ, a pair that was asked for did not
compile, ``diff --exit-code`` found changes); 2 invalid input; 64 usage error; 69 an engine is
not installed; 70 an engine raised on a case (the other cases ran); 73 the output cannot be
written (compile --out, build, export); 130 interrupted (143: SIGTERM while an output folder is
written).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from compiler import terminal
from compiler.atomic import OutputError
from compiler.build import OUTPUT_MARKER, PairResult, profile_problem
from compiler.cli_export import check_root
from compiler.discover import Catalog, find_analytics

EXIT_OK, EXIT_TESTS, EXIT_INVALID = 0, 1, 2
# click exits 2 on a usage error, which would be indistinguishable from invalid input: siemc
# uses the sysexits.h codes for the problems that are not about the analytics.
EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_ENGINE_ERROR, EXIT_CANTCREAT = 64, 69, 70, 73
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it: not a failed check
EXIT_TERMINATED = 143  # 128 + SIGTERM

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_TESTS: "a check did not pass",
    EXIT_INVALID: "invalid input",
    EXIT_USAGE: "usage error",
    EXIT_UNAVAILABLE: "an engine is not installed",
    EXIT_ENGINE_ERROR: "an engine raised on a case",
    EXIT_CANTCREAT: "the output cannot be written",
    EXIT_INTERRUPTED: "interrupted (SIGINT)",
    EXIT_TERMINATED: "terminated (SIGTERM) while an output folder was written",
}


def report_invalid(cat: Catalog) -> None:
    for exc in cat.errors:
        click.echo(exc.render(), err=True)
        click.echo("", err=True)
    if cat.errors:
        n = len(cat.diagnostics)
        click.secho(f"{n} error{'s' * (n != 1)} in {len(cat.errors)} file(s)", fg="red", err=True)


def catalog_sources(cat: Catalog) -> dict[str, str]:
    """Source text by path, of the analytics that loaded and of those that did not (for the
    source lines diagnostics quote and SARIF fingerprints hash)."""
    out = {lo.doc.path: lo.doc.text for lo in cat.loaded}
    for exc in cat.errors:
        out |= exc.sources
    return out


def no_files(paths: tuple[str, ...], root: str | None) -> None:
    for p in paths:
        if not Path(p).exists():
            raise click.UsageError(f"no such file or folder: {p}")
    for p in paths:
        if (Path(p) / OUTPUT_MARKER).exists():
            raise click.UsageError(
                f"{p} is a folder siemc wrote its outputs into, not analytics ({OUTPUT_MARKER})"
            )
    if not find_analytics(paths):
        raise click.UsageError(f"no analytic files (*.yml, *.yaml) under: {' '.join(paths)}")
    check_root(paths, root)


def check_profile(profile: str | None, targets: Sequence[str]) -> None:
    problem = profile_problem(profile, targets)
    if problem:
        raise click.UsageError(f"--profile: {problem}")


def write_or_exit(write: Callable[[], None]) -> None:
    """Run ``write`` (an atomic folder write); an I/O error is a message and exit 73, the
    previous output left as it was."""
    try:
        write()
    except OutputError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_CANTCREAT)


def warn(results: list[PairResult]) -> None:
    if terminal.quiet():
        return  # warnings inform; -q keeps errors only
    for r in results:
        for w in r.warnings():
            click.echo(w.render(r.source), err=True)


def summary(results: list[PairResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        label = f"{r.direction} approximation" if r.direction else r.status
        counts[label] = counts.get(label, 0) + 1
    parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
    return f"{len(results)} (analytic, target) pair(s): {parts}"


def indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())
