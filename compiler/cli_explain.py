"""``siemc explain`` (registered on the main group by compiler.cli)."""

from __future__ import annotations

import sys

import click

from compiler import output_format as fmt
from compiler import terminal
from compiler.build import ALL_TARGETS
from compiler.cli_common import EXIT_INVALID, EXIT_OK, no_files, report_invalid
from compiler.cli_export import root_option
from compiler.discover import load_catalog
from compiler.explain import explain, render


@click.command("explain")
@click.argument("analytic")
@click.option(
    "-t",
    "--target",
    "target",
    type=click.Choice([*ALL_TARGETS, "all"]),
    default="all",
    show_default=True,
)
@click.option("-v", "--verbose", is_flag=True, help="also print the query each target runs")
@root_option
@fmt.format_option(fmt.TEXT, fmt.JSON)
def explain_cmd(
    analytic: str, target: str, verbose: bool, root: str | None, output_format: str
) -> None:
    """For each target: the plan the SIEM runs (streams, joins, windows, schedule), the verdict
    (exact, superset, subset, mixed, refused) with its reasons at their source lines, and the
    nearest change to the analytic that would make the pair exact."""
    no_files((analytic,), root)
    cat = load_catalog((analytic,), root)
    report_invalid(cat)
    if cat.errors or not cat.loaded:
        sys.exit(EXIT_INVALID)
    if len(cat.loaded) != 1:
        raise click.UsageError(f"{analytic} holds {len(cat.loaded)} analytics: name one file")
    targets = list(ALL_TARGETS) if target == "all" else [target]
    ex = explain(cat.loaded[0], targets)
    if output_format == fmt.JSON:
        click.echo(fmt.dump(ex.as_dict()), nl=False)
    else:
        click.echo(render(ex, query=verbose or terminal.verbose()), nl=False)
    sys.exit(EXIT_OK)
