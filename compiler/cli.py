"""The ``siemc`` command line: the group with its global options (--color, -q, -v) and the
commands check, schema, compile, fidelity and build; test, run, export, import, explain and diff
live in their own compiler/cli_*.py modules. Exit codes: compiler/cli_common.py and
docs/cli.md#exit-codes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from backends import ENGINE_TARGETS
from compiler import output_format as fmt
from compiler import terminal
from compiler.atomic import Interrupted
from compiler.build import (
    ALL_TARGETS,
    PairResult,
    compile_all,
    render_err,
    write_outputs,
)
from compiler.cli_common import (
    EXIT_CANTCREAT,
    EXIT_ENGINE_ERROR,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_TESTS,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    catalog_sources,
    check_profile,
    no_files,
    report_invalid,
    summary,
    warn,
    write_or_exit,
)
from compiler.cli_diff import diff_cmd
from compiler.cli_explain import explain_cmd
from compiler.cli_export import export_cmd, options, root_option, stack_option
from compiler.cli_import import import_group
from compiler.cli_new import new_cmd
from compiler.cli_run import run_cmd
from compiler.cli_test import run_tests, test, tests_exit
from compiler.discover import load_catalog
from compiler.export import VENDORS, export
from compiler.export import check as export_check
from compiler.export import tree as export_tree
from compiler.export.common import Request
from compiler.junit import junit_xml
from compiler.lower import Loaded
from compiler.sarif import sarif_log
from compiler.surface import json_schema

__all__ = [
    "EXIT_CANTCREAT",
    "EXIT_ENGINE_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_TESTS",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "main",
]


class _Siemc(click.Group):
    """Exits with EXIT_USAGE on every usage error (click's own, such as an unknown option, and
    siemc's click.UsageError), instead of click's 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            exc.show()
            sys.exit(EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort as exc:  # Ctrl-C, or SIGTERM while an output folder was written
            click.echo("Aborted!", err=True)
            cause = exc.__cause__ or exc.__context__
            sys.exit(128 + cause.signum if isinstance(cause, Interrupted) else EXIT_INTERRUPTED)
        # without standalone mode click returns --help's and --version's exit code (an int),
        # or the command's return value (None: every command that fails exits itself)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


@click.group(cls=_Siemc, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="siemc")
@click.option(
    "--color",
    type=click.Choice(terminal.COLOR_CHOICES),
    default="auto",
    show_default=True,
    help="colour: auto (on a terminal, unless the NO_COLOR environment variable is set), "
    "always, never",
)
@click.option("-q", "--quiet", is_flag=True, help="print only problems and the output asked for")
@click.option("-v", "--verbose", is_flag=True, help="more detail, for every command")
@click.pass_context
def main(ctx: click.Context, color: str, quiet: bool, verbose: bool) -> None:
    """siemc: write a behavioural analytic once, test it, compile it to every SIEM."""
    terminal.configure(ctx, color, quiet, verbose)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write to a file")
def schema(output: str | None) -> None:
    """Print the JSON Schema of analytic files (for editor autocompletion)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        target = Path(output)
        tmp = target.with_name(target.name + ".tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
        except OSError as exc:
            if tmp.is_file():
                tmp.unlink()
            click.secho(f"error: cannot write {output}: {exc.strerror or exc}", fg="red", err=True)
            sys.exit(EXIT_CANTCREAT)
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@root_option
@fmt.format_option(fmt.TEXT, fmt.JSON, fmt.SARIF)
def check(paths: tuple[str, ...], root: str | None, output_format: str) -> None:
    """Validate analytics: report every problem at file:line:col."""
    no_files(paths, root)
    cat = load_catalog(paths, root)
    if output_format == fmt.TEXT:
        report_invalid(cat)
    elif output_format == fmt.JSON:
        doc = {
            "analytics": sorted(lo.analytic.id for lo in cat.loaded),
            "invalid_files": sorted({str(d.path) for d in cat.diagnostics}),
            "diagnostics": fmt.diagnostics(cat.diagnostics),
        }
        click.echo(fmt.dump(doc), nl=False)
    else:
        click.echo(fmt.dump(sarif_log(cat.diagnostics, catalog_sources(cat))), nl=False)
    if cat.errors:
        sys.exit(EXIT_INVALID)
    if output_format == fmt.TEXT:
        terminal.info(f"{len(cat.loaded)} analytic(s) valid")


def compile_catalog(
    loaded: Sequence[Loaded],
    targets: Sequence[str],
    *,
    profile: str | None = None,
    allow_approximate: bool = False,
    allow_superset: bool = False,
    backend_options: dict[str, str] | None = None,
) -> list[PairResult]:
    """compile_all, one analytic at a time under a progress bar (on a terminal only)."""
    out: list[PairResult] = []
    catalog = sorted(loaded, key=lambda x: x.analytic.id)
    with terminal.progress(catalog, "compiling") as bar:
        for lo in bar:
            out += compile_all(
                [lo],
                targets,
                profile=profile,
                allow_approximate=allow_approximate,
                allow_superset=allow_superset,
                options=backend_options,
            )
    return out


def _pairs_report(results: list[PairResult], diagnostics: list[Any], output_format: str) -> None:
    """compile's --format json / sarif document: every pair (with its query), or the
    diagnostics of refused pairs, allowed approximations (W300) and invalid analytics."""
    if output_format == fmt.JSON:
        doc = {
            "pairs": [fmt.pair(r, query=True) for r in results],
            "diagnostics": fmt.diagnostics(diagnostics),
        }
        click.echo(fmt.dump(doc), nl=False)
        return
    found = list(diagnostics)
    sources: dict[str, str] = {}
    for r in results:
        mine = r.diagnostics if r.artifact is None else r.warnings()
        found += mine
        sources |= {d.path: r.source for d in mine}
    click.echo(fmt.dump(sarif_log(found, sources)), nl=False)


@main.command("compile")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-t",
    "--target",
    "target",
    # "all" means the SIEMs; local engines (duckdb) are compiled when named
    type=click.Choice([*ALL_TARGETS, *ENGINE_TARGETS, "all"]),
    default="all",
    show_default=True,
)
@click.option("-o", "--out", type=click.Path(file_okay=False), help="output folder")
@click.option("--profile", help="field-mapping profile (e.g. asim for kql); default per target")
@click.option(
    "--allow-approximate",
    is_flag=True,
    help="compile constructs a target can only approximate (each one is reported)",
)
@click.option(
    "--allow-superset",
    is_flag=True,
    help="compile approximations that only add alerts (supersets: nothing is missed)",
)
@stack_option
@root_option
@fmt.format_option(fmt.TEXT, fmt.JSON, fmt.SARIF)
def compile_cmd(
    paths: tuple[str, ...],
    target: str,
    out: str | None,
    profile: str | None,
    allow_approximate: bool,
    allow_superset: bool,
    stack: str | None,
    root: str | None,
    output_format: str,
) -> None:
    """Compile analytics to SIEM queries: OUT/<target>/<id>.<ext>, .err where a target cannot
    express the analytic, and OUT/fidelity.json."""
    no_files(paths, root)
    targets = list(ALL_TARGETS) if target == "all" else [target]
    check_profile(profile, targets)
    cat = load_catalog(paths, root)
    report_invalid(cat)
    machine = output_format != fmt.TEXT
    if not cat.loaded or (out is None and cat.errors):
        if machine:
            _pairs_report([], cat.diagnostics, output_format)
        sys.exit(EXIT_INVALID)
    if out is None and len(cat.loaded) != 1 and not machine:
        raise click.UsageError("give --out DIR to compile more than one analytic")
    results = compile_catalog(
        cat.loaded,
        targets,
        profile=profile,
        allow_approximate=allow_approximate,
        allow_superset=allow_superset,
        backend_options=options(stack),
    )
    if not machine:
        warn(results)
    if out is not None:
        write_or_exit(lambda: write_outputs(Path(out), results))
    if machine:
        _pairs_report(results, cat.diagnostics, output_format)
    elif out is None:
        for r in results:
            if len(results) > 1:
                click.echo(f"===== {r.target} =====")
            if r.artifact is not None:
                click.echo(r.artifact.text, nl=False)
            else:
                click.echo(render_err(r), err=True, nl=False)
    else:
        terminal.info(summary(results) + f"; written to {out}")
    if cat.errors:
        # one invalid analytic does not stop the others from compiling, but the run failed
        sys.exit(EXIT_INVALID)
    # every pair was asked for: one that is refused (including an approximation that was not
    # allowed) is a failure CI must see, although its .err was written
    sys.exit(EXIT_TESTS if any(r.artifact is None for r in results) else EXIT_OK)


@main.command()
@click.option(
    "--catalog",
    "catalog_paths",
    multiple=True,
    type=click.Path(),
    help="instead, compile these analytics and count exact / superset / subset / mixed / "
    "refused pairs per target (each pair with its best profile)",
)
@click.option("--json", "as_json", is_flag=True, help="the same as --format json")
@root_option
@fmt.format_option(fmt.TEXT, fmt.JSON)
def fidelity(
    catalog_paths: tuple[str, ...], as_json: bool, root: str | None, output_format: str
) -> None:
    """Print the fidelity matrix (construct x target) as Markdown (docs/targets.md), or with
    --catalog how a catalog of analytics deploys on each target (Markdown, or JSON)."""
    if not catalog_paths:
        if as_json or output_format == fmt.JSON:
            flag = "--json" if as_json else "--format json"
            raise click.UsageError(f"{flag} needs --catalog")
        from backends.matrix import markdown

        click.echo(markdown(), nl=False)
        return
    from compiler import catalog_report

    no_files(catalog_paths, root)
    cat = load_catalog(catalog_paths, root)
    report_invalid(cat)
    if not cat.loaded:
        sys.exit(EXIT_INVALID)
    results = compile_catalog(cat.loaded, ALL_TARGETS, allow_approximate=True)
    machine = as_json or output_format == fmt.JSON
    render = catalog_report.as_json if machine else catalog_report.markdown
    click.echo(render(results, ALL_TARGETS), nl=False)
    sys.exit(EXIT_INVALID if cat.errors else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("-o", "--out", default="build", show_default=True, type=click.Path(file_okay=False))
@click.option("--strict", is_flag=True, help="refuse approximations (default: allow and report)")
@click.option(
    "--allow-superset",
    is_flag=True,
    help="with --strict: still accept approximations that only add alerts (supersets)",
)
@stack_option
@root_option
@click.option(
    "--sarif",
    type=click.Path(dir_okay=False),
    help="also write the problems found (invalid analytics, export problems, failing fixtures) "
    "as SARIF 2.1.0 here, with paths relative to the working directory (code scanning)",
)
def build(
    paths: tuple[str, ...],
    out: str,
    strict: bool,
    allow_superset: bool,
    stack: str | None,
    root: str | None,
    sarif: str | None,
) -> None:
    """The main job: validate, test (fixtures through the evaluator) and compile the analytics
    (default: analytics/) to every target into OUT, with OUT/junit.xml and OUT/fidelity.json,
    and package them as scheduled rules for each SIEM into OUT/export/ (as `siemc export`)."""
    paths = paths or ("analytics",)
    no_files(paths, root)
    cat = load_catalog(paths, root)
    report_invalid(cat)
    if not cat.loaded:
        sys.exit(EXIT_INVALID)
    # An invalid analytic is reported (and the exit code says so) while every other one is
    # still tested, compiled and exported: one bad file never aborts the rest of a catalog.
    catalog = tuple(sorted(cat.loaded, key=lambda x: x.analytic.id))
    problems = export_check(catalog, None)
    sources = {lo.doc.path: lo.doc.text for lo in catalog}
    for d in problems:
        click.echo(d.render(sources.get(d.path)) + "\n", err=True)
    refused = {d.path for d in problems if d.severity == "error"}
    exportable = tuple(lo for lo in catalog if lo.doc.path not in refused)
    results = run_tests(cat, verbose=terminal.verbose())
    pairs = compile_catalog(
        cat.loaded,
        ALL_TARGETS,
        allow_approximate=not strict,
        allow_superset=allow_superset,
        backend_options=options(stack),
    )
    warn(pairs)
    req = Request(exportable, not strict, None, tuple(options(stack).items()))
    extra = {"junit.xml": junit_xml(results, cat.diagnostics)}
    extra |= {f"export/{k}": v for k, v in export_tree(export(req, VENDORS), req).items()}
    # one atomic write: the folder holds this build's outputs, junit.xml and export/ together
    # or the previous build's, never a mix of the two
    write_or_exit(lambda: write_outputs(Path(out), pairs, extra))
    if sarif:
        found = [*cat.diagnostics, *problems, *fmt.failure_diagnostics(results, [])]
        log = sarif_log(found, catalog_sources(cat))
        Path(sarif).write_text(fmt.dump(log), encoding="utf-8")
    terminal.info(summary(pairs) + f"; rule packages in {out}/export/; written to {out}/")
    if cat.errors or refused:
        sys.exit(EXIT_INVALID)
    sys.exit(tests_exit(results))


main.add_command(test)
main.add_command(run_cmd)
main.add_command(export_cmd)
main.add_command(import_group)
main.add_command(explain_cmd)
main.add_command(diff_cmd)
main.add_command(new_cmd)
