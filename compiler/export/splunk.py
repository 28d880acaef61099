"""Splunk package: an app folder (``siemc_detections``) with one scheduled search per analytic.

``default/savedsearches.conf`` (schedule, time range, suppression of re-alerts from overlapping
runs, optional Enterprise Security notable and risk actions), ``default/macros.conf`` (the base
search macros the queries call, one per data source, so indexes are set once, and each
analytic's ``<id>_filter`` exclusion macro: the SPL backend emits them, ESCU-style),
``default/transforms.conf`` and ``lookups/*.csv`` (every lookup, with the match settings the SPL
backend relies on), ``default/app.conf`` and ``metadata/default.meta``. Keys follow Splunk's
.conf specs (savedsearches.conf.spec, macros.conf.spec, transforms.conf.spec, app.conf.spec).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

from backends.profiles import FieldProfile, UnmappedField, load_profile
from backends.splunk import psl
from backends.splunk.macros import definitions
from compiler import ir
from compiler.export import schedule as sch
from compiler.export.common import (
    Package,
    Request,
    alert_keys,
    approximations_text,
    compile_target,
    credits,
    read_fields,
    schedule_or_skip,
    why_not,
)
from compiler.export.render import conf, readme
from compiler.export.severity import severity

APP = "siemc_detections"


@dataclass(frozen=True)
class Options:
    notable: bool = False  # Enterprise Security notable event action
    risk: bool = False  # Enterprise Security risk action


def cron(freq_ms: int) -> str:
    """A cron expression running every ``freq_ms`` on the clock (schedule.cron_ok holds)."""
    if freq_ms < sch.HOUR:
        m = freq_ms // sch.MINUTE
        return "* * * * *" if m == 1 else f"*/{m} * * * *"
    if freq_ms < sch.DAY:
        h = freq_ms // sch.HOUR
        return "0 * * * *" if h == 1 else f"0 */{h} * * *"
    return "0 0 * * *"


def relative(ms: int) -> str:
    """``-<n>m@m``: whole minutes back from the run's minute (cron runs start on a minute),
    rounded up so the range always covers the lookback."""
    return f"-{-(-ms // sch.MINUTE)}m@m"


def search_range_ms(query: str, s: sch.Schedule) -> int:
    """How far back a run's time range reaches. A query whose history subsearch sets its own
    ``earliest=`` needs only the detection's range; one that reads the history in the same
    pass (first-seen, rarity, deviation) needs the history in its range too, and judges only
    the candidates whose history it holds whole (backends/splunk/firstseen.py)."""
    return s.detection_lookback_ms if "earliest=" in query else s.lookback_ms


def _one_line(query: str) -> str:
    """Pipeline lines joined by a space: SPL reads a newline between commands as a space, and a
    .conf value is one line. A line break inside a quoted string would change the value, so
    every line must close its quotes."""
    lines = query.strip("\n").splitlines()
    for line in lines:
        if len(re.findall(r'(?<!\\)"', line.replace("\\\\", ""))) % 2:
            raise ValueError("a quoted string spans lines")
    return " ".join(x.strip() for x in lines)


def _conf_value(text: str) -> str:
    """A single-line .conf value: whitespace collapsed, no trailing backslash (a line
    continuation in .conf files)."""
    return " ".join(text.split()).rstrip("\\")


def result_fields(a: ir.Analytic, query: str, profile: FieldProfile) -> list[str]:
    """The fields that identify one result row, one alert: the columns of the last ``table``
    command (before the filter macro); a search that ends on events (a match, a co-occurrence
    or an absence pass) identifies them by ``_time`` and the alert's key fields (the
    correlation keys ``siemc_k<i>`` the backend computes, or the keys' own fields)."""
    tables = [x.strip() for x in query.strip().splitlines() if x.startswith("| table ")]
    if tables:
        return tables[-1][len("| table ") :].split()
    keys = alert_keys(a)
    if not keys:
        return []
    if all(f"siemc_k{i}=" in query for i in range(len(keys))):
        return ["_time", *(f"siemc_k{i}" for i in range(len(keys)))]
    return ["_time", *(_columns(profile, k)[0] for k in keys)]


def _security_domain(a: ir.Analytic) -> str:
    cats = {s.source.category for s in a.streams if isinstance(s.source, ir.LogSource)}
    return "endpoint" if cats <= {"process_creation", None} else "network"


def _search_keys(
    lo_a: ir.Analytic,
    query: str,
    fields: list[str],
    s: sch.Schedule,
    opts: Options,
    notes: list[str],
    profile: FieldProfile,
) -> list[tuple[str, str]]:
    m = lo_a.meta
    lookback = search_range_ms(query, s)
    keys = [
        ("search", query),
        ("description", _conf_value(" ".join([m.description, *(f"{x}." for x in credits(m))]))),
        ("enableSched", "1"),
        ("cron_schedule", cron(s.frequency_ms)),
        ("dispatch.earliest_time", relative(lookback)),
        ("dispatch.latest_time", "@m"),
        ("schedule_window", "0"),  # run on time: the ranges of consecutive runs must tile
        ("counttype", "number of events"),
        ("relation", "greater than"),
        ("quantity", "0"),
        ("alert.track", "1"),
    ]
    overlap = s.detection_lookback_ms
    if overlap > s.frequency_ms and fields:
        # Consecutive runs overlap by the span (a baseline's history before it only feeds the
        # judgement: its candidates are not reported, firstseen.judged): the same result row
        # (same window or first event time and keys) is reported once.
        keys += [
            ("alert.suppress", "1"),
            ("alert.suppress.fields", ",".join(fields)),
            ("alert.suppress.period", f"{-(-overlap // 1000)}s"),
        ]
    else:
        keys.append(("alert.suppress", "0"))
    sev = severity(m.severity)
    if opts.notable or opts.risk:
        keys += [
            ("action.correlationsearch.enabled", "1"),
            ("action.correlationsearch.label", _conf_value(f"{lo_a.id} - {m.title}")),
            (
                "action.correlationsearch.annotations",
                json.dumps({"mitre_attack": list(m.attack_techniques)}, sort_keys=True),
            ),
        ]
    if opts.notable:
        keys += [
            ("action.notable", "1"),
            ("action.notable.param.rule_title", _conf_value(m.title)),
            ("action.notable.param.rule_description", _conf_value(m.description)),
            ("action.notable.param.severity", sev.splunk),
            ("action.notable.param.security_domain", _security_domain(lo_a)),
        ]
    if opts.risk:
        obj = risk_object(lo_a, fields, profile)
        keys += [
            ("action.risk", "1"),
            ("action.risk.param._risk_score", str(sev.splunk_risk)),
            ("action.risk.param._risk_message", _conf_value(f"{lo_a.id}: {m.title}")),
        ]
        if obj:
            keys.append(
                (
                    "action.risk.param._risk",
                    json.dumps(
                        [
                            {
                                "risk_object_field": obj[0],
                                "risk_object_type": obj[1],
                                "risk_score": sev.splunk_risk,
                            }
                        ],
                        sort_keys=True,
                    ),
                )
            )
        else:
            notes.append(f"{lo_a.id}: no host or user key in the results: risk without object")
    return keys


# Alert keys that name a risk object, in order of preference, with the Enterprise Security
# risk object type (system, user).
_RISK_OBJECTS = (
    ("host.name", "system"),
    ("host.hostname", "system"),
    ("user.name", "user"),
    ("source.ip", "system"),
    ("destination.ip", "system"),
)


def risk_object(a: ir.Analytic, fields: list[str], profile: FieldProfile) -> tuple[str, str] | None:
    """The result column of the alert's host or user key: a correlation names key ``i``
    ``siemc_k<i>``, an aggregate by the profile's field (``dvc`` for host.name in CIM); the
    results of a match are its events, with the host, user or address fields the analytic
    reads."""
    keys = alert_keys(a)
    for ecs, kind in _RISK_OBJECTS:
        if ecs in keys:
            for col in (f"siemc_k{keys.index(ecs)}", *_columns(profile, ecs)):
                if col in fields:
                    return col, kind
    if not keys and isinstance(a.detection, ir.Match):
        read = set(read_fields(a))
        for ecs, kind in _RISK_OBJECTS:
            if ecs in read:
                return _columns(profile, ecs)[0], kind
    return None


def _columns(profile: FieldProfile, ecs: str) -> list[str]:
    """The profile's field for an ECS field read from events, then its query-local name when a
    stream computes it."""
    try:
        return [profile.map_field(ecs), profile.local(ecs)]
    except UnmappedField:
        return [profile.local(ecs)]


def lookup_csv(lk: ir.Lookup) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(lk.columns)
    w.writerows(lk.rows)
    return buf.getvalue()


def psl_csv() -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(psl.COLUMNS)
    w.writerows(psl.rows())
    return buf.getvalue()


def package(req: Request, opts: Options = Options()) -> Package:
    pkg = Package("splunk")
    macros: dict[str, str] = {}
    uses_psl = False
    searches: list[tuple[str, list[tuple[str, str]]]] = []
    lookups: dict[str, ir.Lookup] = {}
    exported: list[str] = []
    for lo in req.catalog:
        a = lo.analytic
        s = schedule_or_skip(pkg, lo, req)
        if s is None:
            continue
        res = compile_target(lo, "splunk", req)
        if res.artifact is None:
            pkg.skip(a.id, f"splunk: {why_not(res)}")
            continue
        clash = [lk.name for lk in a.lookups if lk.name in lookups and lookups[lk.name] != lk]
        if clash:
            pkg.skip(a.id, f"lookup name {clash[0]!r} is defined differently by another analytic")
            continue
        try:
            query = _one_line(res.artifact.query)
        except ValueError as exc:
            pkg.skip(a.id, f"splunk: the query cannot be written on one .conf line: {exc}")
            continue
        defs = definitions(res.artifact.query, res.artifact.profile, a.id)
        clash = [m for m, d in defs.items() if macros.get(m, d) != d]
        if clash:
            pkg.skip(a.id, f"macro {clash[0]!r} is defined differently by another analytic")
            continue
        macros.update(defs)
        for lk in a.lookups:
            lookups[lk.name] = lk
        uses_psl = uses_psl or psl.LOOKUP in query
        profile = load_profile(res.artifact.profile)
        fields = result_fields(a, res.artifact.query, profile)
        keys = _search_keys(a, query, fields, s, opts, pkg.notes, profile)
        searches.append((f"siemc - {a.id} - {_conf_value(a.meta.title)}", keys))
        pkg.exported.append(a.id)
        approx = approximations_text(res.artifact)
        exported.append(
            f"{a.id}: every {sch.fmt_duration(s.frequency_ms)} over "
            f"{relative(search_range_ms(query, s))} ({s.reason})"
            + "".join(f"; APPROXIMATION {x}" for x in approx)
        )
    root = f"{APP}/"
    pkg.files[root + "default/savedsearches.conf"] = conf(
        "one scheduled search per analytic (savedsearches.conf.spec)", searches
    )
    pkg.files[root + "default/macros.conf"] = conf(
        "base searches per data source: set your indexes here; <analytic>_filter: your "
        "exclusions (macros.conf.spec)",
        [(name, [("definition", macros[name])]) for name in sorted(macros)],
    )
    stanzas = [
        (
            name,
            [
                ("filename", f"{name}.csv"),
                ("case_sensitive_match", "false"),
                ("max_matches", "1"),
            ],
        )
        for name in sorted(lookups)
    ]
    if uses_psl:
        # every rule the name's suffixes match, exactly (registered_domain(), psl.py)
        stanzas.append(
            (
                psl.LOOKUP,
                [
                    ("filename", psl.FILENAME),
                    ("case_sensitive_match", "true"),
                    ("max_matches", "1000"),
                ],
            )
        )
        pkg.files[root + f"lookups/{psl.FILENAME}"] = psl_csv()
    pkg.files[root + "default/transforms.conf"] = conf(
        "lookups: siemc matches case-insensitively and enrichment takes the first matching row; "
        f"{psl.LOOKUP}: the Public Suffix List of publicsuffixlist {psl.PSL_VERSION} "
        "(transforms.conf.spec)",
        stanzas,
    )
    for name, lk in sorted(lookups.items()):
        pkg.files[root + f"lookups/{name}.csv"] = lookup_csv(lk)
    pkg.files[root + "default/app.conf"] = conf(
        "app metadata (app.conf.spec)",
        [
            ("install", [("is_configured", "false")]),
            ("ui", [("is_visible", "false"), ("label", "siemc detections")]),
            (
                "launcher",
                [
                    ("author", "siemc"),
                    ("description", "Scheduled searches exported by siemc"),
                    ("version", "1.0.0"),
                ],
            ),
            ("package", [("id", APP), ("check_for_updates", "false")]),
        ],
    )
    pkg.files[root + "metadata/default.meta"] = conf(
        "share the app's objects with every app (default.meta.conf.spec)",
        [("", [("access", "read : [ * ], write : [ admin ]"), ("export", "system")])],
    )
    pkg.files[root + "README.md"] = readme(
        pkg,
        "siemc detections for Splunk",
        "Install the folder as an app; set the indexes in default/macros.conf.",
        exported,
    )
    return pkg
