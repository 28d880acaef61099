"""``siemc export``: scheduled-rule packages for Splunk, Elastic, Sentinel and Sigma.

:func:`check` reports analytic problems the export finds (unknown ATT&CK techniques, an
``--every`` that would cut windows) as positioned diagnostics; :func:`export` builds every
vendor's :class:`~compiler.export.common.Package`; :func:`write` writes them atomically.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from compiler import ir
from compiler.atomic import OutputError, write_tree
from compiler.build import OUTPUT_MARKER
from compiler.diagnostics import Diagnostic
from compiler.export import attack, elastic, sentinel, sigma, splunk
from compiler.export import schedule as sch
from compiler.export.common import Package, Request
from compiler.lower import Loaded

VENDORS = ("splunk", "elastic", "sentinel", "sigma")
SUMMARY = "export.json"  # marks a folder siemc export wrote (and may replace)

E_ATTACK = "E400"  # a technique id missing from the ATT&CK table
E_SCHEDULE = "E401"  # --every that would miss or repeat decisions
W_DEPRECATED = "W400"  # a deprecated or revoked technique
W_UNFILED = "W401"  # a technique that belongs to none of the named tactics


# The output folder could not be written (the message names the path and the reason).
ExportIOError = OutputError


def _detection_path(a: ir.Analytic) -> tuple[str | int, ...]:
    d = a.detection
    kind = {
        ir.Match: "match",
        ir.Sequence: "sequence",
        ir.Cooccurrence: "cooccurrence",
        ir.Absence: "absence",
    }.get(type(d), "aggregate")
    if isinstance(d, ir.Aggregate) and d.origin != "aggregate":
        kind = "threshold"
    return ("detect", kind)


def check(catalog: Sequence[Loaded], every_ms: int | None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for lo in catalog:
        a = lo.analytic
        for i, tid in enumerate(a.meta.attack_techniques):
            path = ("attack", "techniques", i)
            try:
                t = attack.technique(tid)
            except attack.UnknownTechnique as exc:
                out.append(lo.doc.diag(E_ATTACK, str(exc), path))
                continue
            if t.deprecated:
                d = lo.doc.diag(
                    W_DEPRECATED,
                    f"{tid} ({t.name}) is deprecated or revoked in ATT&CK "
                    f"{attack.attack_version()}",
                    path,
                    help="name the technique that replaced it",
                )
                out.append(dataclasses.replace(d, severity="warning"))
        out += _check_tactics(lo)
        try:
            sch.derive(a, every_ms)
        except sch.ScheduleError as exc:
            out.append(
                lo.doc.diag(
                    E_SCHEDULE,
                    f"--every: {exc}",
                    _detection_path(a),
                    key=True,
                    help="omit --every to use the schedule siemc derives from the analytic",
                )
            )
    return out


def _check_tactics(lo: Loaded) -> list[Diagnostic]:
    a = lo.analytic
    out: list[Diagnostic] = []
    for i, name in enumerate(a.meta.attack_tactics):
        try:
            attack.resolve_tactic(name)
        except attack.UnknownTactic as exc:
            out.append(lo.doc.diag(E_ATTACK, str(exc), ("attack", "tactics", i)))
    if out:
        return out
    try:
        stray = attack.unfiled(a.meta.attack_techniques, a.meta.attack_tactics)
    except attack.UnknownTechnique:
        return out  # reported with the techniques
    for tid in stray:
        i = a.meta.attack_techniques.index(tid)
        d = lo.doc.diag(
            W_UNFILED,
            f"{tid} belongs to none of the tactics named in attack.tactics; exports file it "
            "under its own tactics (" + ", ".join(attack.technique(tid).tactics) + ")",
            ("attack", "techniques", i),
            help="name one of its tactics, or remove attack.tactics to derive them all",
        )
        out.append(dataclasses.replace(d, severity="warning"))
    return out


def export(
    req: Request, vendors: Sequence[str], splunk_options: splunk.Options | None = None
) -> list[Package]:
    out: list[Package] = []
    for v in vendors:
        if v == "splunk":
            out.append(splunk.package(req, splunk_options or splunk.Options()))
        elif v == "elastic":
            out.append(elastic.package(req))
        elif v == "sentinel":
            out.append(sentinel.package(req))
        elif v == "sigma":
            out.append(sigma.package(req))
        else:
            raise ValueError(f"unknown export target '{v}'; targets: {', '.join(VENDORS)}")
    return out


def summary(packages: Sequence[Package], req: Request) -> str:
    doc = {
        "attack_version": attack.attack_version(),
        "allow_approximate": req.allow_approximate,
        "every": sch.fmt_duration(req.every_ms) if req.every_ms else None,
        "targets": {
            p.vendor: {
                "exported": p.exported,
                "skipped": {s.analytic: s.reason for s in p.skipped},
            }
            for p in packages
        },
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def tree(packages: Sequence[Package], req: Request) -> dict[str, str]:
    files = {f"{p.vendor}/{name}": text for p in packages for name, text in p.files.items()}
    files[SUMMARY] = summary(packages, req)
    # analytic discovery skips the folder, so an export under the analytics path is not reread
    files[OUTPUT_MARKER] = "written by siemc export: analytic discovery skips this folder\n"
    return dict(sorted(files.items()))


def write(out: Path, files: dict[str, str]) -> None:
    """Write ``files`` as the folder ``out`` atomically (:func:`compiler.atomic.write_tree`):
    ``out`` holds the previous export or the new one, never a mix. An existing ``out`` is
    replaced only if it is empty or a previous export (it holds ``export.json``), never another
    folder."""
    write_tree(out, files, owned_by=(SUMMARY,), who="siemc export")
