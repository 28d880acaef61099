"""``siemc new``: write an analytic skeleton (registered on the main group by compiler.cli)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from compiler.atomic import OutputError, write_new_file
from compiler.diagnostics import Diagnostic
from compiler.inputs import FORMATS
from compiler.runner import parse_input_spec
from compiler.scaffold import (
    DEFAULT_TITLES,
    SCHEMA_FILE,
    SHAPES,
    default_id,
    find_schema,
    render,
    schema_ref,
)
from compiler.scaffold_events import SampleError, propose
from compiler.scaffold_events import render as render_proposal

# the table of docs/diagnostics.md
EXIT_INVALID, EXIT_CANTCREAT = 2, 73
E_EXISTS, E_SAMPLE = "E600", "E601"


def _shape_help() -> str:
    return "; ".join(f"{k}: {v}" for k, v in SHAPES.items())


@click.command("new")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "-s",
    "--shape",
    type=click.Choice(list(SHAPES)),
    default=None,
    help=f"the detection shape (default: match). {_shape_help()}",
)
@click.option("--id", "analytic_id", help="the analytic id (default: the file name's stem)")
@click.option("--title", help="the analytic's title (default: the skeleton's own)")
@click.option(
    "--from-events",
    "from_events",
    metavar="[FORMAT:]FILE",
    help="propose the stream filter of a match analytic from sample events (the formats of "
    f"`siemc run`: {', '.join(FORMATS)}); its guesses are written as comments",
)
@click.option(
    "--format",
    "default_format",
    type=click.Choice(FORMATS),
    default="ecs",
    show_default=True,
    help="format of --from-events given without FORMAT:",
)
@click.option(
    "--schema",
    "schema",
    metavar="PATH|URL",
    help="the JSON Schema the editor modeline names (default: the nearest analytic.schema.json "
    "or docs/analytic.schema.json above PATH, relative to it)",
)
def new_cmd(
    path: str,
    shape: str | None,
    analytic_id: str | None,
    title: str | None,
    from_events: str | None,
    default_format: str,
    schema: str | None,
) -> None:
    """Write a commented analytic skeleton to PATH, with a positive and a negative fixture that
    pass `siemc test` as written. PATH must not exist: siemc new never overwrites a file."""
    target = Path(path)
    if from_events is not None and shape not in (None, "match"):
        raise click.UsageError("--from-events writes a match analytic: leave out --shape")
    shape = shape or "match"
    if analytic_id is None:
        analytic_id = default_id(target)
        if analytic_id is None:
            raise click.UsageError(
                f"{target.name}: the file name is not an analytic id ([A-Za-z0-9][A-Za-z0-9_.-]*):"
                " give --id"
            )
    elif default_id(Path(analytic_id + ".yml")) != analytic_id:
        raise click.UsageError(f"--id {analytic_id!r}: use letters, digits, '_', '.' and '-'")
    if target.exists() or target.is_symlink():
        _exists(target)
    if schema is None:
        found = find_schema(target.parent)
        ref = schema_ref(target, found) if found else SCHEMA_FILE
    else:
        found, ref = None, schema
    if from_events is None:
        text = render(shape, analytic_id, title or DEFAULT_TITLES[shape], ref)
    else:
        try:
            sample, fmt = parse_input_spec(from_events, default_format)
        except ValueError as exc:
            raise click.UsageError(f"--from-events: {exc}") from None
        if not sample.is_file():
            raise click.UsageError(f"--from-events: no such file: {sample}")
        try:
            proposal = propose(sample, fmt)
        except SampleError as exc:
            d = _diag(exc.where, E_SAMPLE, exc.message, exc.help)
            click.echo(d.render(), err=True)
            sys.exit(EXIT_INVALID)
        ls = proposal.logsource
        label = ls.get("category") if ls.get("category") != "application" else None
        label = label or ls.get("product") or "sample"
        text = render_proposal(
            proposal, sample, fmt, analytic_id, title or f"{label} events like {sample.name}", ref
        )
    try:
        write_new_file(target, text)
    except FileExistsError:
        _exists(target)
    except OutputError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_CANTCREAT)
    what = f"match, from {from_events}" if from_events else shape
    click.echo(f"wrote {target} ({what}); next: siemc test {target}")
    if schema is None and found is None:
        click.echo(
            f"note: no {SCHEMA_FILE} above {target.parent}; for editor completion write it "
            f"with: siemc schema -o {(target.parent / SCHEMA_FILE).as_posix()}",
            err=True,
        )


def _diag(where: str, code: str, message: str, help: str | None = None) -> Diagnostic:
    path, line, col = where, 1, 1
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        path, line, col = parts[0], int(parts[1]), int(parts[2])
    return Diagnostic(code, message, path, line, col, help=help)


def _exists(target: Path) -> NoReturn:
    d = _diag(
        f"{target}:1:1",
        E_EXISTS,
        f"{target} exists: siemc new never overwrites a file",
        "choose another file name, or move the existing file away first",
    )
    click.echo(d.render(), err=True)
    sys.exit(EXIT_CANTCREAT)
