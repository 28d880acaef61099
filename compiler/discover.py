"""Finding analytic files and loading a catalog of them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from compiler.diagnostics import Diagnostic, DiagnosticError
from compiler.lower import Loaded, load_file

# Folders that hold an analytic's supporting files rather than analytics.
SUPPORT_DIRS = {"fixtures", "lookups"}


def find_analytics(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p).parts
                if f.suffix in (".yml", ".yaml") and not SUPPORT_DIRS.intersection(rel[:-1]):
                    found.append(f)
        else:
            found.append(p)
    return found


@dataclass
class Catalog:
    loaded: list[Loaded] = field(default_factory=list)
    errors: list[DiagnosticError] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for e in self.errors for d in e.diagnostics]


def load_catalog(paths: Iterable[str | Path]) -> Catalog:
    cat = Catalog()
    seen: dict[str, Loaded] = {}
    files = find_analytics(paths)
    for f in files:
        try:
            loaded = load_file(f)
        except DiagnosticError as exc:
            cat.errors.append(exc)
            continue
        prev = seen.get(loaded.analytic.id)
        if prev is not None:
            sp = loaded.analytic.span
            cat.errors.append(
                DiagnosticError(
                    [
                        Diagnostic(
                            "E150",
                            f"analytic id '{loaded.analytic.id}' is also used by {prev.doc.path}",
                            sp.path,
                            sp.line,
                            sp.col,
                            len(loaded.analytic.id),
                            "every analytic needs its own id",
                        )
                    ],
                    {sp.path: loaded.doc.text},
                )
            )
            continue
        seen[loaded.analytic.id] = loaded
        cat.loaded.append(loaded)
    return cat
