"""``siemc test``: fixtures through the reference evaluator and, with --engines, through the
targets' engines (registered on the main group by compiler.cli; build reuses run_tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from compiler import output_format as fmt
from compiler import terminal
from compiler.cli_common import (
    EXIT_ENGINE_ERROR,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_TESTS,
    EXIT_UNAVAILABLE,
    catalog_sources,
    check_profile,
    indent,
    no_files,
    report_invalid,
)
from compiler.cli_export import options, root_option, stack_option
from compiler.discover import Catalog, load_catalog
from compiler.engine_check import (
    EngineResult,
    EngineUnavailable,
    FixtureInputError,
    MissingData,
    check_fixture,
)
from compiler.engines import ENGINES
from compiler.junit import write_junit
from compiler.runner import alert_json
from compiler.sarif import sarif_log
from compiler.testing import FixtureResult, describe_alert, run_all

_MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "error": "ERR "}
_COLOR = {"passed": "green", "failed": "red", "skipped": "yellow", "error": "red"}


def run_tests(cat: Catalog, verbose: bool, show: bool = True) -> list[FixtureResult]:
    """Every fixture of every analytic, listed on stdout when ``show`` (under -q only the
    fixtures that did not pass), with a progress bar over the analytics where that listing is
    not on the terminal."""
    results: list[FixtureResult] = []
    quiet = terminal.quiet()
    catalog = sorted(cat.loaded, key=lambda x: x.analytic.id)
    with terminal.progress(catalog, "testing", listed=show) as bar:
        for loaded in bar:
            a = loaded.analytic
            head = [f"{a.id}  {a.meta.title}", f"      {a.path}"]
            if show and not quiet:
                click.secho(head[0], bold=True)
                click.echo(head[1])
                if not loaded.fixtures:
                    click.secho("  no fixtures", fg="yellow")
            for r in run_all(loaded):
                results.append(r)
                if show and (not quiet or r.status in ("failed", "error")):
                    _fixture_lines(r, verbose)
    counts = {k: sum(1 for r in results if r.status == k) for k in _MARK}
    line = (
        f"{len(cat.loaded)} analytic(s), {len(results)} fixture(s): "
        f"{counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped"
    )
    if cat.errors:
        line += f"; {len(cat.errors)} invalid file(s)"
    bad = counts["failed"] or counts["error"] or cat.errors
    if show and (bad or not quiet):
        click.secho(line, fg="red" if bad else "green", bold=True)
    return results


def _fixture_lines(r: FixtureResult, verbose: bool) -> None:
    fx = r.fixture
    label = f"{fx.kind}/{fx.data}"
    if terminal.quiet():  # without the analytic's heading line: name it here
        click.echo(f"{r.analytic}", nl=False)
    click.secho(f"  {_MARK[r.status]}", fg=_COLOR[r.status], nl=False)
    click.echo(f"  {label:<19} {fx.name}  ({r.message})")
    if r.detail:
        click.echo("\n".join("        " + line for line in r.detail.splitlines()))
    elif verbose:
        for al in r.actual:
            click.echo(f"        {describe_alert(al)}")


def tests_exit(results: list[FixtureResult]) -> int:
    """2 when a fixture could not be loaded (bad input), 1 when one failed, else 0."""
    if any(r.status == "error" for r in results):
        return EXIT_INVALID
    if any(r.status == "failed" for r in results):
        return EXIT_TESTS
    return EXIT_OK


def _engine_targets(spec: str | None) -> list[str]:
    if not spec:
        return []
    names = [x.strip() for x in spec.split(",") if x.strip()]
    if "all" in names:
        return list(ENGINES)
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise click.UsageError(
            f"unknown engine(s): {', '.join(unknown)}; engines: {', '.join(ENGINES)}, all"
        )
    return names


_ENGINE_MARK = {
    "equal": ("PASS", "green"),
    "approximate": ("APPX", "yellow"),
    "failed": ("FAIL", "red"),
    "not_executable": ("N/A", "yellow"),
    "not_compiled": ("--", "white"),
    "error": ("ERROR", "red"),
}


def _run_engines(
    cat: Catalog,
    targets: list[str],
    profile: str | None,
    verbose: bool,
    backend_options: dict[str, str],
    show: bool,
) -> list[EngineResult]:
    out: list[EngineResult] = []
    quiet = terminal.quiet()
    if show and not quiet:
        click.secho(f"engines: {', '.join(targets)}", bold=True)
    catalog = sorted(cat.loaded, key=lambda x: x.analytic.id)
    with terminal.progress(catalog, "engines", listed=show) as bar:
        for loaded in bar:
            for fx in loaded.fixtures:
                try:
                    rs = check_fixture(loaded, fx, targets, profile, backend_options)
                except EngineUnavailable as exc:
                    click.secho(f"error: {exc}", fg="red", err=True)
                    sys.exit(EXIT_UNAVAILABLE)
                except (MissingData, FixtureInputError):
                    continue  # reported by the evaluator run above
                for r in rs:
                    out.append(r)
                    if not show or (quiet and r.status not in ("failed", "error")):
                        continue
                    if r.status == "not_compiled" and not verbose:
                        continue  # counted in the summary; `siemc compile` explains why
                    _engine_lines(r, loaded.analytic.id, fx.name, verbose)
    for t in targets if show else ():
        mine = [r for r in out if r.target == t]
        counts = {k: sum(1 for r in mine if r.status == k) for k in _ENGINE_MARK}
        line = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
        bad = counts["failed"] or counts["error"]
        if bad or not quiet:
            click.secho(f"{t}: {line or 'nothing to run'}", fg="red" if bad else "green", bold=True)
    return out


def _engine_lines(r: EngineResult, analytic: str, fixture: str, verbose: bool) -> None:
    mark, color = _ENGINE_MARK[r.status]
    click.secho(f"  {mark:<5}", fg=color, nl=False)
    click.echo(f" {r.target:<7} {analytic}: {fixture}  ({r.message})")
    if r.query and (r.status == "failed" or (r.status == "error" and verbose)):
        click.echo(f"        query:\n{indent(r.query, 10)}")
    if r.detail:
        click.echo(indent(r.detail, 8))


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--junit", type=click.Path(dir_okay=False), help="write JUnit XML results here")
@click.option("-v", "--verbose", is_flag=True, help="list every alert of passing fixtures too")
@click.option(
    "--engines",
    "engines",
    help="also run each compiled query in its target's engine and compare with the evaluator: "
    "comma-separated from eql, sigma, kql, esql, splunk, or all",
)
@click.option("--profile", help="field-mapping profile for the engines (e.g. asim for kql)")
@stack_option
@root_option
@fmt.format_option(fmt.TEXT, fmt.JSON, fmt.SARIF)
def test(
    paths: tuple[str, ...],
    junit: str | None,
    verbose: bool,
    engines: str | None,
    profile: str | None,
    stack: str | None,
    root: str | None,
    output_format: str,
) -> None:
    """Run every analytic's fixtures through the reference evaluator (and, with --engines,
    through the targets' engines)."""
    no_files(paths, root)
    verbose = verbose or terminal.verbose()
    targets = _engine_targets(engines)
    if profile is not None and not targets:
        raise click.UsageError("--profile selects the field-mapping profile of --engines")
    check_profile(profile, targets)
    cat = load_catalog(paths, root)
    report_invalid(cat)
    show = output_format == fmt.TEXT
    results = run_tests(cat, verbose, show)
    engine_results = (
        _run_engines(cat, targets, profile, verbose, options(stack), show) if targets else []
    )
    if junit:
        write_junit(Path(junit), results, cat.diagnostics, engine_results)
    failures = fmt.failure_diagnostics(results, engine_results)
    if output_format == fmt.JSON:
        doc = {
            "fixtures": [fmt.fixture_result(r, _alerts) for r in results],
            "engines": [fmt.engine_result(r) for r in engine_results],
            "diagnostics": fmt.diagnostics([*cat.diagnostics, *failures]),
            "summary": {k: sum(1 for r in results if r.status == k) for k in _MARK},
        }
        click.echo(fmt.dump(doc), nl=False)
    elif output_format == fmt.SARIF:
        sources = catalog_sources(cat)
        click.echo(fmt.dump(sarif_log([*cat.diagnostics, *failures], sources)), nl=False)
    code = EXIT_INVALID if cat.errors else tests_exit(results)
    if code != EXIT_INVALID and any(r.status == "error" for r in engine_results):
        code = EXIT_ENGINE_ERROR  # results are missing: worse news than a failed comparison
    elif code == EXIT_OK and any(r.status == "failed" for r in engine_results):
        code = EXIT_TESTS
    sys.exit(code)


def _alerts(r: FixtureResult) -> list[object]:
    return [json.loads(alert_json(a)) for a in r.actual]
