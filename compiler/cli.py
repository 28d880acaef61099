"""The ``siemc`` command line.

Exit codes (the table in docs/diagnostics.md): 0 success; 1 a check did not pass (a fixture's or
an engine's alerts differ, a pair that was asked for did not compile); 2 invalid input; 64 usage
error; 69 an engine is not installed; 70 an engine raised on a case (the other cases ran);
73 the output cannot be written (compile --out, build, export); 130 interrupted (143: SIGTERM
while an output folder is written).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from backends import ENGINE_TARGETS
from compiler import run_engine
from compiler.atomic import Interrupted, OutputError
from compiler.build import (
    ALL_TARGETS,
    OUTPUT_MARKER,
    PairResult,
    compile_all,
    profile_problem,
    render_err,
    write_outputs,
)
from compiler.cli_export import check_root, export_cmd, root_option
from compiler.cli_import import import_group
from compiler.discover import Catalog, find_analytics, load_catalog
from compiler.engine_check import (
    EngineResult,
    EngineUnavailable,
    FixtureInputError,
    MissingData,
    check_fixture,
)
from compiler.engines import ENGINES
from compiler.export import VENDORS, export
from compiler.export import check as export_check
from compiler.export import tree as export_tree
from compiler.export.common import Request
from compiler.inputs import FORMATS
from compiler.junit import junit_xml, write_junit
from compiler.runner import alert_lines, parse_input_spec
from compiler.surface import json_schema
from compiler.testing import FixtureResult, describe_alert, run_all
from compiler.timeutil import parse_timestamp

EXIT_OK, EXIT_TESTS, EXIT_INVALID = 0, 1, 2
# click exits 2 on a usage error, which would be indistinguishable from invalid input: siemc
# uses the sysexits.h codes for the problems that are not about the analytics.
EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_ENGINE_ERROR, EXIT_CANTCREAT = 64, 69, 70, 73
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it: not a failed check

_MARK = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "error": "ERR "}
_COLOR = {"passed": "green", "failed": "red", "skipped": "yellow", "error": "red"}


def _report_invalid(cat: Catalog) -> None:
    for exc in cat.errors:
        click.echo(exc.render(), err=True)
        click.echo("", err=True)
    if cat.errors:
        n = len(cat.diagnostics)
        click.secho(f"{n} error{'s' * (n != 1)} in {len(cat.errors)} file(s)", fg="red", err=True)


def _no_files(paths: tuple[str, ...], root: str | None) -> None:
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
def main() -> None:
    """siemc: write a behavioural analytic once, test it, compile it to every SIEM."""


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write to a file")
def schema(output: str | None) -> None:
    """Print the JSON Schema of analytic files (for editor autocompletion)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@root_option
def check(paths: tuple[str, ...], root: str | None) -> None:
    """Validate analytics: report every problem at file:line:col."""
    _no_files(paths, root)
    cat = load_catalog(paths, root)
    _report_invalid(cat)
    if cat.errors:
        sys.exit(EXIT_INVALID)
    click.echo(f"{len(cat.loaded)} analytic(s) valid")


def _run_tests(cat: Catalog, verbose: bool) -> list[FixtureResult]:
    results: list[FixtureResult] = []
    for loaded in sorted(cat.loaded, key=lambda x: x.analytic.id):
        a = loaded.analytic
        click.secho(f"{a.id}  {a.meta.title}", bold=True)
        click.echo(f"      {a.path}")
        if not loaded.fixtures:
            click.secho("  no fixtures", fg="yellow")
        for r in run_all(loaded):
            results.append(r)
            fx = r.fixture
            label = f"{fx.kind}/{fx.data}"
            click.secho(f"  {_MARK[r.status]}", fg=_COLOR[r.status], nl=False)
            click.echo(f"  {label:<19} {fx.name}  ({r.message})")
            if r.detail:
                click.echo("\n".join("        " + line for line in r.detail.splitlines()))
            elif verbose:
                for al in r.actual:
                    click.echo(f"        {describe_alert(al)}")
    counts = {k: sum(1 for r in results if r.status == k) for k in _MARK}
    summary = (
        f"{len(cat.loaded)} analytic(s), {len(results)} fixture(s): "
        f"{counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped"
    )
    if cat.errors:
        summary += f"; {len(cat.errors)} invalid file(s)"
    bad = counts["failed"] or counts["error"] or cat.errors
    click.secho(summary, fg="red" if bad else "green", bold=True)
    return results


def _tests_exit(results: list[FixtureResult]) -> int:
    """2 when a fixture could not be loaded (bad input), 1 when one failed, else 0."""
    if any(r.status == "error" for r in results):
        return EXIT_INVALID
    if any(r.status == "failed" for r in results):
        return EXIT_TESTS
    return EXIT_OK


@main.command()
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
@click.option(
    "--stack",
    help="ES|QL target: Elastic Stack version whose idioms the query may use (8.19, 9.0, 9.1, "
    "9.2, 9.3; default 9.3)",
)
@root_option
def test(
    paths: tuple[str, ...],
    junit: str | None,
    verbose: bool,
    engines: str | None,
    profile: str | None,
    stack: str | None,
    root: str | None,
) -> None:
    """Run every analytic's fixtures through the reference evaluator (and, with --engines,
    through the targets' engines)."""
    _no_files(paths, root)
    targets = _engine_targets(engines)
    if profile is not None and not targets:
        raise click.UsageError("--profile selects the field-mapping profile of --engines")
    _check_profile(profile, targets)
    cat = load_catalog(paths, root)
    _report_invalid(cat)
    results = _run_tests(cat, verbose)
    options = _options(stack)
    engine_results = _run_engines(cat, targets, profile, verbose, options) if targets else []
    if junit:
        write_junit(Path(junit), results, cat.diagnostics, engine_results)
    code = EXIT_INVALID if cat.errors else _tests_exit(results)
    if code != EXIT_INVALID and any(r.status == "error" for r in engine_results):
        code = EXIT_ENGINE_ERROR  # results are missing: worse news than a failed comparison
    elif code == EXIT_OK and any(r.status == "failed" for r in engine_results):
        code = EXIT_TESTS
    sys.exit(code)


def _check_profile(profile: str | None, targets: Sequence[str]) -> None:
    problem = profile_problem(profile, targets)
    if problem:
        raise click.UsageError(f"--profile: {problem}")


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


def _options(stack: str | None) -> dict[str, str]:
    """Backend options from the command line (each backend reads the ones it declares)."""
    return {"stack": stack} if stack is not None else {}


def _run_engines(
    cat: Catalog,
    targets: list[str],
    profile: str | None,
    verbose: bool,
    options: dict[str, str] | None = None,
) -> list[EngineResult]:
    out: list[EngineResult] = []
    click.secho(f"engines: {', '.join(targets)}", bold=True)
    for loaded in sorted(cat.loaded, key=lambda x: x.analytic.id):
        for fx in loaded.fixtures:
            try:
                rs = check_fixture(loaded, fx, targets, profile, options)
            except EngineUnavailable as exc:
                click.secho(f"error: {exc}", fg="red", err=True)
                sys.exit(EXIT_UNAVAILABLE)
            except (MissingData, FixtureInputError):
                continue  # reported by the evaluator run above
            for r in rs:
                out.append(r)
                if r.status == "not_compiled" and not verbose:
                    continue  # counted in the summary; `siemc compile` explains why
                mark, color = _ENGINE_MARK[r.status]
                click.secho(f"  {mark:<5}", fg=color, nl=False)
                click.echo(f" {r.target:<7} {loaded.analytic.id}: {fx.name}  ({r.message})")
                if r.query and (r.status == "failed" or (r.status == "error" and verbose)):
                    click.echo(f"        query:\n{_indent(r.query, 10)}")
                if r.detail:
                    click.echo(_indent(r.detail, 8))
    for t in targets:
        mine = [r for r in out if r.target == t]
        counts = {k: sum(1 for r in mine if r.status == k) for k in _ENGINE_MARK}
        summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
        color = "red" if counts["failed"] or counts["error"] else "green"
        click.secho(f"{t}: {summary or 'nothing to run'}", fg=color, bold=True)
    return out


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


@main.command("run")
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
    "--format",
    "default_format",
    type=click.Choice(FORMATS),
    default="ecs",
    show_default=True,
    help="format of inputs given without FORMAT:",
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
    default_format: str,
    now: str | None,
    presorted: bool,
    output: str | None,
    engine: str,
    root: str | None,
) -> None:
    """Evaluate analytics over log files; print one JSON alert per line."""
    _no_files(paths, root)
    cat = load_catalog(paths, root)
    _report_invalid(cat)
    if cat.errors:
        sys.exit(EXIT_INVALID)
    try:
        specs = [parse_input_spec(s, default_format) for s in inputs]
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
    try:
        choices = run_engine.choose(analytics, specs, engine, presorted)
        lines, ran = run_engine.lines(
            choices,
            specs,
            now_ms,
            strict=engine == "duckdb",
            evaluate=lambda rest: alert_lines(rest, specs, now_ms, presorted=presorted),
        )
    except run_engine.EngineRefused as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_INVALID)
    except ValueError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        if presorted and "out of order" in str(exc):
            click.echo("help: the inputs are not in time order; run without --presorted", err=True)
        sys.exit(EXIT_INVALID)
    for c in ran:
        why = f" ({c.why})" if c.engine == "evaluator" and engine == "auto" else ""
        click.echo(f"{c.analytic.id}: engine {c.engine}{why}", err=True)
    count = 0
    if output:
        tmp = Path(output + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line + "\n")
                count += 1
        tmp.replace(output)
    else:
        for line in lines:
            click.echo(line)
            count += 1
    click.echo(f"{count} alert(s) from {len(analytics)} analytic(s)", err=True)


def _write_or_exit(write: Callable[[], None]) -> None:
    """Run ``write`` (an atomic folder write); an I/O error is a message and exit 73, the
    previous output left as it was."""
    try:
        write()
    except OutputError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_CANTCREAT)


def _warn(results: list[PairResult]) -> None:
    for r in results:
        for w in r.warnings():
            click.echo(w.render(r.source), err=True)


def _summary(results: list[PairResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        label = f"{r.direction} approximation" if r.direction else r.status
        counts[label] = counts.get(label, 0) + 1
    parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))
    return f"{len(results)} (analytic, target) pair(s): {parts}"


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
@click.option(
    "--stack",
    help="ES|QL target: Elastic Stack version whose idioms the query may use (8.19, 9.0, 9.1, "
    "9.2, 9.3; default 9.3)",
)
@root_option
def compile_cmd(
    paths: tuple[str, ...],
    target: str,
    out: str | None,
    profile: str | None,
    allow_approximate: bool,
    allow_superset: bool,
    stack: str | None,
    root: str | None,
) -> None:
    """Compile analytics to SIEM queries: OUT/<target>/<id>.<ext>, .err where a target cannot
    express the analytic, and OUT/fidelity.json."""
    _no_files(paths, root)
    targets = list(ALL_TARGETS) if target == "all" else [target]
    _check_profile(profile, targets)
    cat = load_catalog(paths, root)
    _report_invalid(cat)
    if not cat.loaded or (out is None and cat.errors):
        sys.exit(EXIT_INVALID)
    results = compile_all(
        cat.loaded,
        targets,
        profile=profile,
        allow_approximate=allow_approximate,
        allow_superset=allow_superset,
        options=_options(stack),
    )
    _warn(results)
    if out is None:
        if len(cat.loaded) != 1:
            raise click.UsageError("give --out DIR to compile more than one analytic")
        failed = False
        for r in results:
            if len(results) > 1:
                click.echo(f"===== {r.target} =====")
            if r.artifact is not None:
                click.echo(r.artifact.text, nl=False)
            else:
                failed = True
                click.echo(render_err(r), err=True, nl=False)
        sys.exit(EXIT_TESTS if failed else EXIT_OK)
    _write_or_exit(lambda: write_outputs(Path(out), results))
    click.echo(_summary(results) + f"; written to {out}")
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
@click.option("--json", "as_json", is_flag=True, help="with --catalog: JSON instead of Markdown")
@root_option
def fidelity(catalog_paths: tuple[str, ...], as_json: bool, root: str | None) -> None:
    """Print the fidelity matrix (construct x target) as Markdown (docs/targets.md), or with
    --catalog how a catalog of analytics deploys on each target."""
    if not catalog_paths:
        if as_json:
            raise click.UsageError("--json needs --catalog")
        from backends.matrix import markdown

        click.echo(markdown(), nl=False)
        return
    from compiler import catalog_report

    _no_files(catalog_paths, root)
    cat = load_catalog(catalog_paths, root)
    _report_invalid(cat)
    if not cat.loaded:
        sys.exit(EXIT_INVALID)
    results = compile_all(cat.loaded, ALL_TARGETS, allow_approximate=True)
    render = catalog_report.as_json if as_json else catalog_report.markdown
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
@click.option(
    "--stack",
    help="ES|QL target: Elastic Stack version whose idioms the query may use (8.19, 9.0, 9.1, "
    "9.2, 9.3; default 9.3)",
)
@root_option
def build(
    paths: tuple[str, ...],
    out: str,
    strict: bool,
    allow_superset: bool,
    stack: str | None,
    root: str | None,
) -> None:
    """The main job: validate, test (fixtures through the evaluator) and compile the analytics
    (default: analytics/) to every target into OUT, with OUT/junit.xml and OUT/fidelity.json,
    and package them as scheduled rules for each SIEM into OUT/export/ (as `siemc export`)."""
    paths = paths or ("analytics",)
    _no_files(paths, root)
    cat = load_catalog(paths, root)
    _report_invalid(cat)
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
    results = _run_tests(cat, verbose=False)
    pairs = compile_all(
        cat.loaded,
        ALL_TARGETS,
        allow_approximate=not strict,
        allow_superset=allow_superset,
        options=_options(stack),
    )
    _warn(pairs)
    req = Request(exportable, not strict, None)
    extra = {"junit.xml": junit_xml(results, cat.diagnostics)}
    extra |= {f"export/{k}": v for k, v in export_tree(export(req, VENDORS), req).items()}
    # one atomic write: the folder holds this build's outputs, junit.xml and export/ together
    # or the previous build's, never a mix of the two
    _write_or_exit(lambda: write_outputs(Path(out), pairs, extra))
    click.echo(_summary(pairs) + f"; rule packages in {out}/export/; written to {out}/")
    if cat.errors or refused:
        sys.exit(EXIT_INVALID)
    sys.exit(_tests_exit(results))


main.add_command(export_cmd)
main.add_command(import_group)
