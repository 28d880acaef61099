"""Finding analytic files and loading a catalog of them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from compiler.build import OUTPUT_MARKER
from compiler.diagnostics import Diagnostic, DiagnosticError
from compiler.lower import Loaded, load_file
from compiler.safe_files import RefusedPath, check_regular, confine

# Folders that hold an analytic's supporting files, or other tools' trees, rather than analytics.
# Hidden folders (.git, .venv, ...) are skipped too, and so is every folder siemc wrote its
# outputs into (it holds OUTPUT_MARKER): their Sigma rules are YAML, not analytics.
SKIP_DIRS = {"fixtures", "lookups", "node_modules", "venv", "__pycache__"}
SUFFIXES = (".yml", ".yaml")


def _skipped_dir(d: Path) -> bool:
    return d.name in SKIP_DIRS or d.name.startswith(".") or (d / OUTPUT_MARKER).exists()


def find_analytics(paths: Iterable[str | Path]) -> list[Path]:
    """Analytic files under ``paths``, in a stable order. A file named explicitly is always
    taken; a folder named explicitly is searched even if discovery would skip it as a
    sub-folder, except a siemc output folder."""
    found: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            found.append(p)
            continue
        if (p / OUTPUT_MARKER).exists():
            continue
        mine: list[Path] = []
        for root, dirs, files in os.walk(p):
            here = Path(root)
            dirs[:] = [d for d in dirs if not _skipped_dir(here / d)]
            mine += [here / f for f in files if f.endswith(SUFFIXES) and not f.startswith(".")]
        found += sorted(mine)
    return found


@dataclass
class Catalog:
    loaded: list[Loaded] = field(default_factory=list)
    errors: list[DiagnosticError] = field(default_factory=list)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for e in self.errors for d in e.diagnostics]


def analytics_root(path: str | Path) -> Path:
    """The analytics root of a path named on the command line (docs/security.md): the folder
    itself, or the folder holding a file. Lookups and fixture inputs must stay inside it."""
    p = Path(path)
    return p if p.is_dir() else p.parent


def find_rooted(paths: Iterable[str | Path], root: str | Path | None) -> list[tuple[Path, Path]]:
    """``(analytic file, its analytics root)`` for every analytic under ``paths``: ``root``
    when given (``--root``), else the root of the path it was found under."""
    out: list[tuple[Path, Path]] = []
    for p in paths:
        r = Path(root) if root is not None else analytics_root(p)
        out += [(f, r) for f in find_analytics([p])]
    return out


def _refused(f: Path, root: Path) -> DiagnosticError | None:
    """Why the analytic file ``f`` itself is not read: a symlink out of its root (the root
    would mean nothing if the analytic could be any file), or not a regular file (a FIFO
    named x.yml would block the read forever)."""
    try:
        check_regular(confine(f, root), None)
    except RefusedPath as exc:
        return DiagnosticError([Diagnostic(exc.code, exc.message, str(f), 1, 1, help=exc.help)])
    except OSError:
        return None  # load_file reports it with its reason
    return None


def load_catalog(paths: Iterable[str | Path], root: str | Path | None = None) -> Catalog:
    """Load every analytic under ``paths``; ``root`` overrides the analytics root of each path
    (see :func:`analytics_root`)."""
    cat = Catalog()
    seen: dict[str, Loaded] = {}
    for f, r in find_rooted(paths, root):
        refused = _refused(f, r)
        if refused is not None:
            cat.errors.append(refused)
            continue
        try:
            loaded = load_file(f, r)
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
