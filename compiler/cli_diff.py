"""``siemc diff BASE HEAD`` (registered on the main group by compiler.cli)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from compiler import output_format as fmt
from compiler import terminal
from compiler.cli_common import EXIT_OK, EXIT_TESTS
from compiler.diffing import (
    DiffInputError,
    Tree,
    compare,
    compiled_revision,
    is_revision,
    read_folder,
    render,
)


def _side(spec: str, repo: Path, analytics: str) -> Tree:
    folder = Path(spec)
    if folder.is_dir():
        return read_folder(folder)
    if is_revision(repo, spec):
        files, problems = compiled_revision(repo, spec, analytics)
        for line in problems:
            click.echo(f"warning: not compiled: {line}", err=True)
        return files
    raise click.UsageError(
        f"{spec} is neither an output folder nor a git revision of {repo.resolve()}"
    )


@click.command("diff")
@click.argument("base")
@click.argument("head")
@click.option(
    "--analytics",
    default="analytics",
    show_default=True,
    help="with git revisions: the analytics folder, relative to the repository root",
)
@click.option(
    "--repo",
    default=".",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="with git revisions: the repository",
)
@click.option("-v", "--verbose", is_flag=True, help="show a unified diff of every change")
@click.option("--exit-code", is_flag=True, help="exit 1 when something changed (as git diff)")
@fmt.format_option(fmt.TEXT, fmt.JSON)
def diff_cmd(
    base: str,
    head: str,
    analytics: str,
    repo: str,
    verbose: bool,
    exit_code: bool,
    output_format: str,
) -> None:
    """What the emitted queries and exports changed between BASE and HEAD, per analytic and
    target, with fidelity moves (exact -> superset, ...). BASE and HEAD are two output folders
    of compile, build or export, or two git revisions (their analytics compiled here as build
    does)."""
    verbose = verbose or terminal.verbose()
    try:
        report = compare(_side(base, Path(repo), analytics), _side(head, Path(repo), analytics))
    except DiffInputError as exc:
        raise click.UsageError(str(exc)) from None
    if output_format == fmt.JSON:
        click.echo(fmt.dump(report.as_dict(verbose)), nl=False)
    else:
        for line, color in render(report, verbose=verbose):
            click.secho(line, fg=color)
    changed = bool(report.pairs or report.files)
    sys.exit(EXIT_TESTS if exit_code and changed else EXIT_OK)
