"""Compiling a catalog of analytics to targets and writing the output folder atomically."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from backends import TARGETS, get_backend
from backends.base import (
    E_NO_SOURCE,
    E_NOT_IMPLEMENTED,
    E_UNMAPPED,
    E_UNSUPPORTED,
    W_APPROXIMATE,
    Artifact,
    CompileError,
    overall_direction,
)
from compiler.atomic import write_tree
from compiler.diagnostics import Diagnostic
from compiler.lower import Loaded


@dataclass
class PairResult:
    analytic: str
    target: str
    artifact: Artifact | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    source: str = ""

    @property
    def status(self) -> str:
        if self.artifact is not None:
            return "approximate" if self.artifact.approximations else "exact"
        codes = {d.code for d in self.diagnostics}
        if E_UNSUPPORTED in codes:
            return "unsupported"
        if E_NOT_IMPLEMENTED in codes:
            return "not_implemented"
        if codes <= {E_UNMAPPED, E_NO_SOURCE}:
            # the target could express it; the data model of the profile lacks a field/source
            return "unmapped"
        return "approximation_not_allowed"

    @property
    def direction(self) -> str | None:
        """superset / subset / mixed for an approximate pair (None otherwise)."""
        return None if self.artifact is None else overall_direction(self.artifact.approximations)

    def warnings(self) -> list[Diagnostic]:
        if self.artifact is None:
            return []
        return [
            Diagnostic(
                W_APPROXIMATE,
                f"{self.target} approximates {a.construct} ({a.direction}): {a.detail}",
                a.span.path,
                a.span.line,
                a.span.col,
                1,
                None,
                "warning",
            )
            for a in self.artifact.approximations
        ]


def compile_pair(
    loaded: Loaded,
    target: str,
    *,
    profile: str | None,
    allow_approximate: bool,
    allow_superset: bool = False,
    options: Mapping[str, str] | None = None,
) -> PairResult:
    """Compile one analytic for one target. Without ``profile``, every profile of the target is
    tried and the best result is kept (exact, then superset, subset, mixed; among refusals the
    default profile's), so a catalog deploys on whichever data model carries it."""
    backend = get_backend(target).configure(options)
    names = [profile] if profile is not None else list(backend.profiles)
    best: PairResult | None = None
    for name in names:
        res = PairResult(loaded.analytic.id, target, source=loaded.doc.text)
        try:
            res.artifact = backend.compile(
                loaded.analytic,
                profile=name,
                allow_approximate=allow_approximate,
                allow_superset=allow_superset,
            )
        except CompileError as exc:
            res.diagnostics = exc.diagnostics
        if best is None or _rank(res) < _rank(best):
            best = res
        if res.status == "exact":
            break
    assert best is not None
    return best


_RANK = {"exact": 0, "superset": 1, "subset": 2, "mixed": 3}


def _rank(r: PairResult) -> int:
    if r.artifact is None:
        return 9
    return _RANK[r.direction or "exact"]


def profile_problem(profile: str | None, targets: Iterable[str]) -> str | None:
    """Why ``profile`` cannot be used for every one of ``targets`` (None when it can). A profile
    is never dropped for a target it does not fit: that would compile against another data model
    than the one asked for, without a word."""
    if profile is None:
        return None
    targets = list(targets)
    per_target = {t: get_backend(t).profiles for t in ALL_TARGETS}
    known = sorted({p for ps in per_target.values() for p in ps})
    listing = "; ".join(f"{t}: {', '.join(ps)}" for t, ps in per_target.items())
    if profile not in known:
        return f"unknown profile '{profile}'; profiles by target: {listing}"
    misfit = [t for t in targets if profile not in per_target[t]]
    if not misfit:
        return None
    fits = [t for t, ps in per_target.items() if profile in ps]
    return (
        f"profile '{profile}' does not apply to {', '.join(misfit)} (it is a profile of "
        f"{', '.join(fits)}); choose the target with -t, or a profile of each target: {listing}"
    )


def compile_all(
    catalog: Sequence[Loaded],
    targets: Iterable[str],
    *,
    profile: str | None = None,
    allow_approximate: bool = False,
    allow_superset: bool = False,
    options: Mapping[str, str] | None = None,
) -> list[PairResult]:
    out = []
    for loaded in sorted(catalog, key=lambda x: x.analytic.id):
        for t in targets:
            out.append(
                compile_pair(
                    loaded,
                    t,
                    profile=profile,
                    allow_approximate=allow_approximate,
                    allow_superset=allow_superset,
                    options=options,
                )
            )
    return out


def fidelity_json(results: Sequence[PairResult]) -> str:
    doc: dict[str, dict[str, Any]] = {}
    for r in results:
        entry: dict[str, Any] = {"status": r.status}
        if r.artifact is not None:
            entry["profile"] = r.artifact.profile
            if r.direction is not None:
                entry["direction"] = r.direction
            entry["approximations"] = [
                {
                    "construct": a.construct,
                    "detail": a.detail,
                    "direction": a.direction,
                    "at": a.span.at(),
                }
                for a in r.artifact.approximations
            ]
        else:
            entry["diagnostics"] = [d.headline() for d in by_file_name(r.diagnostics)]
        doc.setdefault(r.analytic, {})[r.target] = entry
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def by_file_name(diags: Sequence[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics citing the file's name only: written outputs must not depend on the working
    directory or on the path the catalog was given by."""
    return [dataclasses.replace(d, path=PurePath(d.path).name) for d in diags]


def render_err(r: PairResult) -> str:
    return "\n\n".join(d.render(r.source) for d in by_file_name(r.diagnostics)) + "\n"


# Written into every output root so that discovery never reads siemc's own outputs (the Sigma
# rules are YAML) as analytics when the folder lies under an analytics path.
OUTPUT_MARKER = ".siemc-output"


def output_files(results: Sequence[PairResult]) -> dict[str, str]:
    """Every artifact (or ``.err``) as ``<target>/<id>.<ext>``, ``fidelity.json`` and the
    output marker: the files of a compile output folder, by relative path."""
    files: dict[str, str] = {}
    for r in results:
        if r.artifact is not None:
            files[f"{r.target}/{r.analytic}{r.artifact.extension}"] = r.artifact.text
        else:
            files[f"{r.target}/{r.analytic}.err"] = render_err(r)
    files["fidelity.json"] = fidelity_json(results)
    files[OUTPUT_MARKER] = "written by siemc: analytic discovery skips this folder\n"
    return files


def write_outputs(
    out_dir: Path, results: Sequence[PairResult], extra: Mapping[str, str] | None = None
) -> None:
    """Write the compile output of ``results`` (and ``extra`` files: build's junit.xml and
    export/) as the folder ``out_dir``, atomically: it then holds exactly the new output, or
    still the previous one when writing fails (:class:`compiler.atomic.OutputError`) or is
    interrupted. A folder that is not empty and not a previous siemc output is never replaced.
    """
    write_tree(out_dir, {**output_files(results), **(extra or {})}, owned_by=(OUTPUT_MARKER,))


ALL_TARGETS = tuple(TARGETS)
