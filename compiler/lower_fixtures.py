"""Lowering of an analytic's fixtures (``tests:``) to IR."""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Protocol

from compiler import ir
from compiler import surface as s
from compiler.filters import known, number_with_unit
from compiler.source import Path, SourceDoc
from compiler.timeutil import parse_timestamp


class _Context(Protocol):
    doc: SourceDoc

    def err(
        self, code: str, msg: str, path: Path, *, key: bool = False, help: str | None = None
    ) -> None: ...

    def span(self, path: Path, *, key: bool = False) -> ir.Span: ...


def lower_fixture(
    ctx: _Context, t: s.TestM, base: Path, det: ir.Detection | None, folder: FsPath
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
        # $OTRF data may legitimately be absent (skipped locally); a fixture file beside the
        # analytic must exist.
        if not inp.file.startswith("$") and not (folder / inp.file).is_file():
            ctx.err(
                "E160",
                f"fixture file not found: {folder / inp.file}",
                (*base, "inputs", k, "file"),
                help="paths are relative to the analytic's folder",
            )
    inputs = tuple(
        ir.FixtureInput(inp.file, inp.format, ctx.span((*base, "inputs", k)))
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
    )
