"""``siemc export``: scheduled-rule packages (registered on the main group by compiler.cli)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from compiler import output_format as fmt
from compiler import terminal
from compiler.diagnostics import Diagnostic
from compiler.discover import find_analytics, load_catalog
from compiler.export import E_SCHEDULE, VENDORS, ExportIOError, check, export, tree, write
from compiler.export import schedule as sch
from compiler.export.common import Package, Request
from compiler.export.splunk import Options
from compiler.sarif import sarif_log

# the table of docs/diagnostics.md: 73 is sysexits' EX_CANTCREAT (the output cannot be written)
EXIT_OK, EXIT_INVALID, EXIT_IO = 0, 2, 73

# Shared by every command that loads analytics (check, test, compile, build, run, export).
root_option = click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False),
    help="the analytics root: lookups and fixture inputs must resolve inside it (default: "
    "each PATH, or the folder of a PATH that is a file; docs/security.md)",
)
# Shared by the commands that compile (compile, build, test, export).
stack_option = click.option(
    "--stack",
    help="ES|QL target: Elastic Stack version whose idioms the query may use (8.19, 9.0, 9.1, "
    "9.2, 9.3; default 9.3)",
)


def options(stack: str | None) -> dict[str, str]:
    """Backend options from the command line (each backend reads the ones it declares)."""
    return {"stack": stack} if stack is not None else {}


def check_root(paths: tuple[str, ...], root: str | None) -> None:
    """A usage error for a PATH outside ``--root``: its analytics could not refer to their own
    lookups, and silently taking its folder instead would make --root mean nothing."""
    if root is None:
        return
    real = Path(root).resolve()
    for p in paths:
        if not Path(p).resolve().is_relative_to(real):
            raise click.UsageError(f"{p} is not inside --root {root}")


@click.command("export")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-t",
    "--target",
    type=click.Choice([*VENDORS, "all"]),
    default="all",
    show_default=True,
    help="the SIEM to package for",
)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="output folder")
@click.option(
    "--allow-approximate", is_flag=True, help="also export pairs the target only approximates"
)
@click.option(
    "--every",
    metavar="DURATION",
    help="run every rule this often (15m, 1h, 1d) instead of the derived schedule; refused "
    "where it would cut windows",
)
@root_option
@click.option(
    "--splunk-action",
    "splunk_actions",
    type=click.Choice(["notable", "risk"]),
    multiple=True,
    help="add an Enterprise Security alert action to every Splunk search (repeatable)",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="output: text for people, json (what was exported and skipped, and every "
    "diagnostic), sarif (the diagnostics as SARIF 2.1.0)",
)
@stack_option
def export_cmd(
    paths: tuple[str, ...],
    target: str,
    out: str,
    allow_approximate: bool,
    every: str | None,
    splunk_actions: tuple[str, ...],
    root: str | None,
    output_format: str,
    stack: str | None,
) -> None:
    """Package analytics as scheduled rules: a Splunk app, Elastic rule NDJSON, Sentinel
    analytic rules (YAML and ARM) and Sigma rule files, into OUT/<target>/."""
    for path in paths:
        if not Path(path).exists():
            raise click.UsageError(f"no such file or folder: {path}")
    if not find_analytics(paths):
        raise click.UsageError(f"no analytic files (*.yml, *.yaml) under: {' '.join(paths)}")
    check_root(paths, root)
    try:
        every_ms = sch.parse_every(every) if every else None
    except sch.ScheduleError as exc:
        raise click.UsageError(f"--every: {exc}") from None
    cat = load_catalog(paths, root)
    for err in cat.errors:
        click.echo(err.render() + "\n", err=True)
    catalog = tuple(sorted(cat.loaded, key=lambda x: x.analytic.id))
    sources = {lo.doc.path: lo.doc.text for lo in catalog}
    problems = check(catalog, every_ms)
    for d in problems:
        click.echo(d.render(sources.get(d.path)) + "\n", err=True)
    report = _Report(output_format, [*cat.diagnostics, *problems], sources)
    for failed in cat.errors:
        report.sources |= failed.sources
    errors = [d for d in problems if d.severity == "error"]
    # An --every that cuts some analytic's windows is a wrong option for this run: nothing is
    # exported. An analytic that does not load, or names an unknown technique, is its own
    # problem: it is left out and every other analytic is exported (exit 2 all the same).
    refused = {d.path for d in errors}
    left_out = len(cat.errors) + len(refused)
    catalog = tuple(lo for lo in catalog if lo.doc.path not in refused)
    if any(d.code == E_SCHEDULE for d in errors) or not catalog:
        n = len(cat.diagnostics) + len(errors)
        click.secho(f"{n} error{'s' * (n != 1)}: nothing exported", fg="red", err=True)
        report.emit([])
        sys.exit(EXIT_INVALID)
    req = Request(catalog, allow_approximate, every_ms, tuple(options(stack).items()))
    vendors = list(VENDORS) if target == "all" else [target]
    opts = Options(notable="notable" in splunk_actions, risk="risk" in splunk_actions)
    packages = export(req, vendors, opts)
    try:
        write(Path(out), tree(packages, req))
    except ExportIOError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_IO)
    if output_format == "text":
        for p in packages:
            if not terminal.quiet():
                for s in p.skipped:
                    click.echo(f"  skip  {p.vendor:<8} {s.analytic}: {s.reason}", err=True)
            terminal.info(f"{p.vendor}: {len(p.exported)} exported, {len(p.skipped)} skipped")
        terminal.info(f"written to {out}/ (skipped pairs and why: {out}/export.json)")
    report.emit(packages)
    if left_out:
        n = len(cat.diagnostics) + len(errors)
        click.secho(
            f"{n} error{'s' * (n != 1)}: {left_out} invalid analytic file(s) not exported",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_INVALID)
    sys.exit(EXIT_OK)


@dataclass
class _Report:
    """export's --format json / sarif document, printed once whatever the outcome."""

    output_format: str
    diagnostics: list[Diagnostic]
    sources: dict[str, str]

    def emit(self, packages: Sequence[Package]) -> None:
        if self.output_format == fmt.JSON:
            doc = {
                "packages": [
                    {
                        "vendor": p.vendor,
                        "exported": sorted(p.exported),
                        "skipped": [
                            {"analytic": s.analytic, "reason": s.reason} for s in p.skipped
                        ],
                    }
                    for p in packages
                ],
                "diagnostics": fmt.diagnostics(self.diagnostics),
            }
            click.echo(fmt.dump(doc), nl=False)
        elif self.output_format == fmt.SARIF:
            click.echo(fmt.dump(sarif_log(self.diagnostics, self.sources)), nl=False)
