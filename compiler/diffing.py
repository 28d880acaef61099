"""``siemc diff``: what changed between two compile/build/export outputs, per analytic and
target, for pull-request reviews.

Each side is a file tree (relative path -> text): an output folder as written, or the analytics
of a git revision compiled here the way ``siemc build`` compiles them (every target, the best
profile, approximations allowed, fidelity.json and the export/ packages; no tests, no JUnit).
Pair files are ``<target>/<id>.<ext>`` (``.err`` where the target refused); fidelity comes from
``fidelity.json``; every other file is compared as a file.
"""

from __future__ import annotations

import difflib
import io
import json
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from compiler.build import ALL_TARGETS, OUTPUT_MARKER, compile_all, output_files
from compiler.discover import load_catalog
from compiler.export import VENDORS, export, tree
from compiler.export import check as export_check
from compiler.export.common import Request

Tree = dict[str, str]

# worse to the right: a move to the right is a regression a reviewer must see
FIDELITY_ORDER = ("exact", "superset", "subset", "mixed", "refused")
_IGNORED = {OUTPUT_MARKER, "junit.xml"}  # junit.xml holds test timings: not an output change


class DiffInputError(ValueError):
    """A side that is neither an output folder nor a git revision."""


def read_folder(root: Path) -> Tree:
    out: Tree = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            rel = PurePosixPath(*p.relative_to(root).parts).as_posix()
            if rel not in _IGNORED:
                out[rel] = p.read_text(encoding="utf-8", errors="replace")
    return out


def is_revision(repo: Path, rev: str) -> bool:
    probe = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def compiled_revision(repo: Path, rev: str, analytics: str) -> tuple[Tree, list[str]]:
    """The analytics folder of ``rev`` compiled as ``siemc build`` does, and the headlines of
    the analytics that did not load there."""
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", rev, "--", analytics],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        reason = archive.stderr.decode(errors="replace").strip()
        raise DiffInputError(f"{rev}: cannot read {analytics} ({reason})")
    with tempfile.TemporaryDirectory(prefix="siemc-diff-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        cat = load_catalog([Path(tmp) / analytics])
        problems = [d.headline().replace(tmp + "/", f"{rev}:") for d in cat.diagnostics]
        catalog = tuple(sorted(cat.loaded, key=lambda x: x.analytic.id))
        refused = {d.path for d in export_check(catalog, None) if d.severity == "error"}
        results = compile_all(catalog, ALL_TARGETS, allow_approximate=True)
        req = Request(tuple(lo for lo in catalog if lo.doc.path not in refused), True, None)
        files = output_files(results)
        files |= {f"export/{k}": v for k, v in tree(export(req, VENDORS), req).items()}
    return {k: v for k, v in files.items() if k not in _IGNORED}, problems


@dataclass
class PairChange:
    analytic: str
    target: str
    change: str  # added / removed / changed / unchanged (only fidelity moved)
    base: str | None  # fidelity on each side (None: absent)
    head: str | None
    path: str
    diff: list[str] = field(default_factory=list)

    @property
    def fidelity_change(self) -> str | None:
        """worse / better when both sides have the pair and its fidelity moved."""
        if self.base is None or self.head is None or self.base == self.head:
            return None
        return "worse" if _rank(self.head) > _rank(self.base) else "better"


@dataclass
class FileChange:
    path: str
    change: str
    diff: list[str] = field(default_factory=list)


@dataclass
class Report:
    pairs: list[PairChange]
    files: list[FileChange]

    def as_dict(self, with_diff: bool) -> dict[str, Any]:
        def pair(p: PairChange) -> dict[str, Any]:
            doc: dict[str, Any] = {
                "analytic": p.analytic,
                "target": p.target,
                "change": p.change,
                "base": p.base,
                "head": p.head,
                "fidelity_change": p.fidelity_change,
                "path": p.path,
            }
            if with_diff:
                doc["diff"] = "".join(p.diff)
            return doc

        def file(f: FileChange) -> dict[str, Any]:
            doc: dict[str, Any] = {"path": f.path, "change": f.change}
            if with_diff:
                doc["diff"] = "".join(f.diff)
            return doc

        worse = sum(1 for p in self.pairs if p.fidelity_change == "worse")
        return {
            "pairs": [pair(p) for p in self.pairs],
            "files": [file(f) for f in self.files],
            "summary": {
                "pairs_changed": len(self.pairs),
                "files_changed": len(self.files),
                "fidelity_worse": worse,
                "fidelity_better": sum(1 for p in self.pairs if p.fidelity_change == "better"),
            },
        }


def _rank(fidelity: str) -> int:
    return FIDELITY_ORDER.index(fidelity) if fidelity in FIDELITY_ORDER else len(FIDELITY_ORDER)


def _fidelity(t: Tree) -> dict[tuple[str, str], str]:
    try:
        doc = json.loads(t.get("fidelity.json", "{}"))
    except json.JSONDecodeError:
        return {}
    out = {}
    for aid, per in doc.items():
        for target, entry in per.items():
            if entry.get("status") in ("exact", "approximate"):
                out[aid, target] = entry.get("direction") or "exact"
            else:
                out[aid, target] = "refused"
    return out


def _pair_key(path: str) -> tuple[str, str] | None:
    parts = path.split("/")
    if len(parts) != 2 or parts[0] not in (*ALL_TARGETS, "duckdb"):
        return None
    stem = parts[1].rsplit(".", 1)[0]
    return stem, parts[0]


def _udiff(a: str | None, b: str | None, path: str) -> list[str]:
    lines = difflib.unified_diff(
        (a or "").splitlines(keepends=True),
        (b or "").splitlines(keepends=True),
        fromfile=f"a/{path}" if a is not None else "/dev/null",
        tofile=f"b/{path}" if b is not None else "/dev/null",
    )
    return [x if x.endswith("\n") else x + "\n" for x in lines]


def compare(base: Tree, head: Tree) -> Report:
    fb, fh = _fidelity(base), _fidelity(head)
    by_pair: dict[tuple[str, str], dict[str, str]] = {}
    files: list[FileChange] = []
    for path in sorted(set(base) | set(head)):
        a, b = base.get(path), head.get(path)
        key = _pair_key(path)
        if key is not None:
            side = by_pair.setdefault(key, {})
            if a is not None:
                side["a"] = path  # a query, or the .err of a refusal
            if b is not None:
                side["b"] = path
            continue
        if path == "fidelity.json" or a == b:
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        files.append(FileChange(path, change, _udiff(a, b, path)))
    pairs = []
    for (aid, target), side in sorted(by_pair.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        ap, bp = side.get("a"), side.get("b")
        a = base[ap] if ap else None
        b = head[bp] if bp else None
        fa, fb_ = fb.get((aid, target)), fh.get((aid, target))
        if a is None:
            change = "added"
        elif b is None:
            change = "removed"
        elif a != b or ap != bp:
            change = "changed"
        elif fa != fb_:
            change = "unchanged"
        else:
            continue
        path = bp or ap or ""
        diff = _udiff(a, b, path) if ap == bp else _udiff(a, None, ap or "") + _udiff(None, b, path)
        pairs.append(PairChange(aid, target, change, fa, fb_, path, diff))
    return Report(pairs, files)


def render(report: Report, *, verbose: bool) -> list[tuple[str, str | None]]:
    """Lines of the text report, each with the colour it is drawn in (None: plain)."""
    out: list[tuple[str, str | None]] = []
    current = None
    for p in report.pairs:
        if p.analytic != current:
            current = p.analytic
            out.append((p.analytic, None))
        fid = ""
        if p.fidelity_change is not None:
            fid = f"  fidelity {p.base} -> {p.head} ({p.fidelity_change})"
        elif p.change in ("added", "removed"):
            fid = f"  ({p.head or p.base})"
        color = "red" if p.fidelity_change == "worse" else None
        color = color or ("green" if p.fidelity_change == "better" else None)
        what = "fidelity only" if p.change == "unchanged" else p.change
        out.append((f"  {p.target:<7} {what:<13} {p.path}{fid}", color))
        if verbose:
            out += [(line.rstrip("\n"), None) for line in p.diff]
    if report.files:
        out.append(("files", None))
        for f in report.files:
            out.append((f"  {f.change:<8} {f.path}", None))
            if verbose:
                out += [(line.rstrip("\n"), None) for line in f.diff]
    s = report.as_dict(False)["summary"]
    out.append(
        (
            f"{s['pairs_changed']} pair(s) and {s['files_changed']} other file(s) changed; "
            f"fidelity worse for {s['fidelity_worse']}, better for {s['fidelity_better']}",
            "red" if s["fidelity_worse"] else None,
        )
    )
    return out
