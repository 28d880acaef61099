"""Lowering of an analytic's fixtures (``tests:``) to IR."""

from __future__ import annotations

import os
from pathlib import Path as FsPath
from typing import Protocol

from compiler import ir
from compiler import surface as s
from compiler.filters import known, number_with_unit
from compiler.safe_files import FIXTURE_MAX_BYTES, RefusedPath, check_regular, confine
from compiler.source import Path, SourceDoc
from compiler.timeutil import parse_timestamp


class _Context(Protocol):
    doc: SourceDoc

    def err(
        self, code: str, msg: str, path: Path, *, key: bool = False, help: str | None = None
    ) -> None: ...

    def span(self, path: Path, *, key: bool = False) -> ir.Span: ...


# Data roots a fixture input may start with ($OTRF/file): a data set too big or too foreign to
# ship beside the analytic, found through an environment variable or, for OTRF, the nearest
# shared/data/otrf beside an ancestor folder of the analytic.
DATA_ROOTS = {"OTRF": "SIEMC_OTRF_DIR"}


def split_data_root(file: str) -> tuple[str, str] | None:
    """``("OTRF", "x.jsonl")`` for ``$OTRF/x.jsonl``; None for a path beside the analytic."""
    if not file.startswith("$"):
        return None
    name, _, rest = file[1:].partition("/")
    return name, rest


def data_root(name: str, folder: FsPath) -> FsPath | None:
    """The folder ``$name`` stands for, seen from an analytic in ``folder``; None when it is
    absent on this machine."""
    env = os.environ.get(DATA_ROOTS[name])
    if env:
        return FsPath(env) if FsPath(env).is_dir() else None
    folder = folder.resolve()
    for parent in (folder, *folder.parents):
        cand = parent / "shared" / "data" / name.lower()
        if cand.is_dir():
            return cand
    return None


def absent_root_message(name: str) -> str:
    var = DATA_ROOTS[name]
    if os.environ.get(var):
        return f"data root ${name} not found: {var}={os.environ[var]} is not a folder"
    return (
        f"data root ${name} not found (set {var}, or place shared/data/{name.lower()} beside "
        "an ancestor folder of the analytic)"
    )


class UnknownDataRoot(Exception):
    """A ``$NAME/...`` fixture input whose NAME is not in DATA_ROOTS."""


def input_path(file: str, folder: FsPath, root: FsPath) -> FsPath | None:
    """The checked, resolved path of the fixture input ``file`` of an analytic in ``folder``:
    inside the analytics ``root``, or inside the data root for ``$OTRF/...`` (a root the user
    chose through the environment, so the one place a fixture may read outside ``root``).
    None when that data root is absent on this machine. Raises RefusedPath (outside its root,
    not a regular file, over FIXTURE_MAX_BYTES), FileNotFoundError, other OSErrors, or
    UnknownDataRoot."""
    rooted = split_data_root(file)
    if rooted is None:
        base, where, p = root, "the analytics root", folder / file
    else:
        name, rest = rooted
        if name not in DATA_ROOTS:
            raise UnknownDataRoot(name)
        found = data_root(name, folder)
        if found is None:
            return None
        base, where, p = found, f"the data root ${name}", found / rest
    real = confine(p, base, where)
    try:
        check_regular(real, FIXTURE_MAX_BYTES)
    except FileNotFoundError:
        raise FileNotFoundError(f"fixture file not found: {p}") from None
    return real


def _check_input(ctx: _Context, file: str, where: Path, folder: FsPath, root: FsPath) -> None:
    """A fixture file that is not there, or that siemc refuses to read, is an error at its
    ``file:``; only a data root that is absent on this machine waits for the run (skipped
    there, an error under CI=true)."""
    rooted = split_data_root(file)
    try:
        input_path(file, folder, root)
    except RefusedPath as exc:
        ctx.err(exc.code, f"fixture file refused: {exc.message}", where, help=exc.help)
    except UnknownDataRoot:
        assert rooted is not None
        ctx.err(
            "E160",
            f"unknown data root '${rooted[0]}'",
            where,
            help=known("data roots", (f"${n}" for n in DATA_ROOTS))
            + "; other paths are relative to the analytic's folder",
        )
    except FileNotFoundError:
        if rooted is None:
            ctx.err(
                "E160",
                f"fixture file not found: {folder / file}",
                where,
                help="paths are relative to the analytic's folder",
            )
            return
        name, rest = rooted
        found = data_root(name, folder)
        assert found is not None
        ctx.err(
            "E160",
            f"fixture file not found: {found / rest} (${name} is {found})",
            where,
            help=f"files in ${name}: " + _listing(found),
        )
    except OSError as exc:
        ctx.err("E003", f"cannot read fixture file {file}: {exc.strerror or exc}", where)


def _listing(root: FsPath) -> str:
    names = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    shown = ", ".join(names[:8])
    return (shown + (f", ... ({len(names)} files)" if len(names) > 8 else "")) or "(none)"


def lower_fixture(
    ctx: _Context,
    t: s.TestM,
    base: Path,
    det: ir.Detection | None,
    folder: FsPath,
    root: FsPath,
) -> ir.Fixture:
    """Lower one fixture; problems go to ``ctx.err`` with their positions."""
    now = None
    if t.now is not None:
        try:
            now = parse_timestamp(t.now)
        except ValueError as exc:
            ctx.err("E160", f"invalid 'now': {exc}", (*base, "now"))
    measure_names: set[str] = set()
    if isinstance(det, ir.Aggregate):
        measure_names = {m.name for m in det.measures} | {c for c, _ in det.compute}
    expects = []
    for j, ex in enumerate(t.expect):
        ep = (*base, "expect", j)
        ms: list[tuple[str, str, float | str]] = []
        for name, spec in ex.measures.items():
            if name not in measure_names:
                ctx.err(
                    "E132",
                    f"unknown measure '{name}'",
                    (*ep, "measures", name),
                    key=True,
                    help=known("measures", measure_names),
                )
                continue
            pairs = spec.items() if isinstance(spec, dict) else [("==", spec)]
            for op, val in pairs:
                try:
                    num: float | str = float(number_with_unit(val))
                except ValueError:
                    num = str(val)
                ms.append((name, op, num))
        expects.append(
            ir.ExpectedAlert(
                tuple((k, ctx.doc.as_written((*ep, "key", k), v)) for k, v in ex.key.items()),
                tuple(ex.evidence) if ex.evidence is not None else None,
                tuple(ms),
                ctx.span(ep),
            )
        )
    for k, inp in enumerate(t.inputs):
        _check_input(ctx, inp.file, (*base, "inputs", k, "file"), folder, root)
    inputs = tuple(
        ir.FixtureInput(inp.file, inp.format, ctx.span((*base, "inputs", k)), inp.history)
        for k, inp in enumerate(t.inputs)
    )
    return ir.Fixture(
        t.name,
        t.kind,
        t.data,
        inputs,
        tuple(ctx.doc.as_written_tree((*base, "events", i), e) for i, e in enumerate(t.events)),
        now,
        tuple(expects),
        ctx.span(base),
        tuple(ctx.doc.as_written_tree((*base, "history", i), e) for i, e in enumerate(t.history)),
    )
