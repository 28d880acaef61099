"""``siemc import sigma``: Sigma rules in, analytic files out (registered by compiler.cli)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click

from compiler.atomic import OutputError, write_tree
from compiler.importers.sigma import Result, import_sigma, rule_files

# docs/diagnostics.md: 1 some rules refused, 2 invalid input, 73 the output cannot be written
EXIT_OK, EXIT_REFUSED, EXIT_INVALID, EXIT_IO = 0, 1, 2, 73
REPORT = "import.json"


def report(res: Result) -> str:
    """import.json: what became of every rule (deterministic: sorted, no times or paths)."""

    def name(p: str) -> str:
        return Path(p).name

    data = {
        "imported": [{"rule": name(i.rule), "id": i.id, "analytic": i.file} for i in res.imported],
        "consumed": [{"rule": name(r), "id": i, "by": c} for r, i, c in res.consumed],
        "refused": [
            {
                "rule": name(r.rule),
                "id": r.id,
                "construct": r.construct,
                "at": f"{name(r.diagnostic.path)}:{r.diagnostic.line}:{r.diagnostic.col}",
                "reason": r.diagnostic.message,
            }
            for r in res.refused
        ],
        "invalid": [
            {"at": f"{name(d.path)}:{d.line}:{d.col}", "reason": d.message} for d in res.invalid
        ],
        "refusals_by_construct": dict(sorted(Counter(r.construct for r in res.refused).items())),
    }
    return json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


@click.group("import")
def import_group() -> None:
    """Convert rules of other languages into siemc analytics."""


@import_group.command("sigma")
@click.argument("paths", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="output folder")
def sigma_cmd(paths: tuple[str, ...], out: str) -> None:
    """Convert Sigma rules and correlation rules (files or folders of *.yml) into one analytic
    file per rule in OUT/, with OUT/import.json saying what became of each rule."""
    for p in paths:
        if not Path(p).exists():
            raise click.UsageError(f"no such file or folder: {p}")
    if not rule_files(paths):
        raise click.UsageError(f"no Sigma rule files (*.yml, *.yaml) under: {' '.join(paths)}")
    res = import_sigma(paths)
    for d in [*res.invalid, *(r.diagnostic for r in res.refused)]:
        click.echo(d.render(res.sources.get(d.path)) + "\n", err=True)
    files = res.files()
    files[REPORT] = report(res)
    try:
        write_tree(Path(out), files, owned_by=[REPORT], who="siemc import")
    except OutputError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(EXIT_IO)
    click.echo(
        f"{len(res.imported)} imported, {len(res.consumed)} read by correlations, "
        f"{len(res.refused)} refused, {len(res.invalid)} invalid; written to {out}/ "
        f"(every rule and why: {out}/{REPORT})"
    )
    if res.invalid:
        sys.exit(EXIT_INVALID)
    sys.exit(EXIT_REFUSED if res.refused else EXIT_OK)
