"""Diagnostics as a SARIF 2.1.0 log, within GitHub code scanning's documented subset
("SARIF support for code scanning"): one run, ``tool.driver.rules`` holding each diagnostic code
used (with its description from docs/diagnostics.md), results that name their rule by
``ruleId`` and ``ruleIndex``, artifact URIs relative to the working directory (the repository
root in CI) under ``%SRCROOT%``, and ``partialFingerprints`` so that an alert keeps its identity
when lines move. Output is deterministic: results sorted, no timestamps, no absolute paths for
files under the working directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from compiler.diagnostics import CODES, Diagnostic

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# GitHub's hard limit of results per run; past it the upload is rejected whole, so the
# log keeps the first results by severity and says how many it left out.
MAX_RESULTS = 25_000
FINGERPRINT = "primaryLocationLineHash"

_LEVEL = {"error": "error", "warning": "warning"}


def _tool_version() -> str:
    try:
        return dist_version("siemc")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "0"


def artifact_location(path: str, cwd: Path | None = None) -> dict[str, str]:
    """A relative URI under %SRCROOT% for a file inside ``cwd`` (code scanning matches those to
    the repository's files); an absolute ``file:`` URI otherwise."""
    base = (cwd or Path.cwd()).resolve()
    p = Path(path)
    absolute = p if p.is_absolute() else base / p
    try:
        rel = absolute.resolve().relative_to(base)
    except ValueError:
        return {"uri": absolute.resolve().as_uri()}
    return {"uri": quote(PurePosixPath(*rel.parts).as_posix()), "uriBaseId": "%SRCROOT%"}


def _line_text(sources: Mapping[str, str], d: Diagnostic) -> str:
    lines = sources.get(d.path, "").splitlines()
    return lines[d.line - 1].strip() if 1 <= d.line <= len(lines) else ""


def _rule(code: str) -> dict[str, Any]:
    text = CODES.get(code, code)
    return {
        "id": code,
        "name": code,
        "shortDescription": {"text": text},
        "fullDescription": {"text": f"{code}: {text} (docs/diagnostics.md)"},
        "help": {"text": f"{code}: {text}. Every code is explained in docs/diagnostics.md."},
        "defaultConfiguration": {"level": "warning" if code.startswith("W") else "error"},
    }


def sarif_log(
    diagnostics: Sequence[Diagnostic],
    sources: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """The SARIF log of ``diagnostics``; ``sources`` (path -> text) lets each fingerprint hash
    the flagged line's text instead of its number."""
    src = sources or {}
    ranked = sorted(
        set(diagnostics),
        key=lambda d: (d.severity != "error", d.path, d.line, d.col, d.code, d.message),
    )
    kept, dropped = ranked[:MAX_RESULTS], len(ranked) - MAX_RESULTS
    codes = sorted({d.code for d in kept})
    index = {c: i for i, c in enumerate(codes)}
    seen: dict[str, int] = {}
    results = []
    for d in sorted(kept, key=lambda d: (d.path, d.line, d.col, d.code, d.message)):
        loc = artifact_location(d.path, cwd)
        region: dict[str, int] = {"startLine": max(1, d.line), "startColumn": max(1, d.col)}
        region["endColumn"] = region["startColumn"] + max(1, d.length)
        key = "\0".join((d.code, loc["uri"], _line_text(src, d), d.message))
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        # the same finding on two identical lines stays two alerts: number the repeats
        seen[digest] = seen.get(digest, 0) + 1
        text = d.message + (f"\nhelp: {d.help}" if d.help else "")
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": _LEVEL[d.severity],
                "message": {"text": text},
                "locations": [{"physicalLocation": {"artifactLocation": loc, "region": region}}],
                "partialFingerprints": {FINGERPRINT: f"{digest}:{seen[digest]}"},
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "siemc",
                "version": _tool_version(),
                "rules": [_rule(c) for c in codes],
            }
        },
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if dropped > 0:
        run["properties"] = {"siemcResultsLeftOut": dropped}
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
