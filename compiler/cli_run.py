"""``siemc run``: analytics over a user's log files (registered on the main group by
compiler.cli)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from compiler import output_format as fmt
from compiler import run_engine, terminal
from compiler.cli_common import EXIT_INVALID, no_files, report_invalid
from compiler.cli_export import root_option
from compiler.discover import load_catalog
from compiler.inputs import FORMATS
from compiler.runner import alert_lines, parse_input_spec
from compiler.timeutil import parse_timestamp

# `--format` named the default input format before it named the output format of every command;
# the two sets of names do not overlap, so an input format given there still works (with a
# deprecation notice) and no existing invocation changes meaning.
_OUTPUTS = (fmt.TEXT, fmt.JSON)


@click.command("run")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-i",
    "--input",
    "inputs",
    multiple=True,
    required=True,
    metavar="[FORMAT:]FILE",
    help=f"a log file to evaluate (repeatable); FORMAT is one of {', '.join(FORMATS)}",
)
@click.option(
    "--input-format",
    "input_format",
    type=click.Choice(FORMATS),
    default=None,
    help="format of inputs given without FORMAT: (default: ecs)",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice([*_OUTPUTS, *FORMATS]),
    default=fmt.TEXT,
    show_default=True,
    help="output: text (one JSON alert per line) or json (one document with every alert); "
    "an input format here is the deprecated spelling of --input-format",
)
@click.option("--now", help="observation end, ISO 8601 (closes absence windows)")
@click.option(
    "--presorted",
    is_flag=True,
    help="each input is already in time order: fail at the first record that is not, instead "
    "of sorting that file (inputs are always streamed; files out of order are sorted on disk)",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write alerts here")
@click.option(
    "--engine",
    type=click.Choice(run_engine.ENGINES),
    default="auto",
    show_default=True,
    help="auto: DuckDB for each analytic that compiles exactly to it over ECS inputs, the "
    "reference evaluator otherwise; stderr says which ran",
)
@root_option
def run_cmd(
    paths: tuple[str, ...],
    inputs: tuple[str, ...],
    input_format: str | None,
    output_format: str,
    now: str | None,
    presorted: bool,
    output: str | None,
    engine: str,
    root: str | None,
) -> None:
    """Evaluate analytics over log files; print one JSON alert per line."""
    if output_format in FORMATS:
        if input_format is not None:
            raise click.UsageError("--format names an input format here: use --input-format only")
        click.echo("warning: --format FORMAT of inputs is now --input-format FORMAT", err=True)
        input_format, output_format = output_format, fmt.TEXT
    no_files(paths, root)
    cat = load_catalog(paths, root)
    report_invalid(cat)
    if cat.errors:
        if output_format == fmt.JSON:
            doc = {"alerts": [], "diagnostics": fmt.diagnostics(cat.diagnostics)}
            click.echo(fmt.dump(doc), nl=False)
        sys.exit(EXIT_INVALID)
    try:
        specs = [parse_input_spec(s, input_format or "ecs") for s in inputs]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    for p, _ in specs:
        if not p.is_file():
            raise click.UsageError(f"no such input file: {p}")
    try:
        now_ms = parse_timestamp(now) if now else None
    except ValueError as exc:
        raise click.UsageError(f"--now: {exc}") from None
    analytics = [x.analytic for x in sorted(cat.loaded, key=lambda x: x.analytic.id)]
    counter = terminal.Counter("events read")
    try:
        choices = run_engine.choose(analytics, specs, engine, presorted)
        lines, ran = run_engine.lines(
            choices,
            specs,
            now_ms,
            strict=engine == "duckdb",
            evaluate=lambda rest: alert_lines(
                rest, specs, now_ms, presorted=presorted, progress=counter.update
            ),
        )
    except run_engine.EngineRefused as exc:
        counter.close()
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_INVALID)
    except ValueError as exc:
        counter.close()
        click.secho(f"error: {exc}", fg="red", err=True)
        if presorted and "out of order" in str(exc):
            click.echo("help: the inputs are not in time order; run without --presorted", err=True)
        sys.exit(EXIT_INVALID)
    counter.close()
    for c in ran:
        why = f" ({c.why})" if c.engine == "evaluator" and engine == "auto" else ""
        terminal.info(f"{c.analytic.id}: engine {c.engine}{why}", err=True)
    if output_format == fmt.JSON:
        alerts = [json.loads(line) for line in lines]
        lines = iter([fmt.dump({"alerts": alerts, "diagnostics": []}).rstrip("\n")])
        count = len(alerts)
    else:
        count = -1
    written = 0
    if output:
        tmp = Path(output + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
                written += 1
        tmp.replace(output)
    else:
        for line in lines:
            click.echo(line)
            written += 1
    n = count if count >= 0 else written
    terminal.info(f"{n} alert(s) from {len(analytics)} analytic(s)", err=True)
