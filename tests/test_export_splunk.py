"""Splunk export: the app's .conf files hold only keys of Splunk's .conf specs with values of
the documented forms (a spec model of the keys siemc emits), base searches become macros that
expand back to the compiled query, and lookups carry the settings the SPL backend needs.

contentctl validates its own YAML repository, not a built app, so the .conf files are checked
against this model written from savedsearches.conf.spec, macros.conf.spec, transforms.conf.spec,
app.conf.spec and default.meta.conf.spec."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.splunk.macros import definitions
from compiler import ir
from compiler.discover import load_catalog
from compiler.export import splunk
from compiler.export.common import Request, compile_target
from tests.export_support import CATALOG, request

BOOL = re.compile(r"^(0|1|true|false)$")
CRON = re.compile(r"^(\*|\*/\d+|\d+)( (\*|\*/\d+|\d+)){4}$")
# time modifiers: -<n><unit>[@<snap>], @<snap>, now (Search Reference, "Time modifiers")
REL_TIME = re.compile(
    r"^(now|-\d+(s|m|h|d|w|mon|y)(@(s|m|h|d|w\d?|mon|y))?|@(s|m|h|d|w\d?|mon|y))$"
)
INT = re.compile(r"^\d+$")
PERIOD = re.compile(r"^\d+[smhd]$")
ANY = re.compile(r"^\S.*$")

Spec = dict[str, re.Pattern[str] | Callable[[str], bool]]

SAVEDSEARCHES: Spec = {
    "search": ANY,
    "description": ANY,
    "enableSched": BOOL,
    "cron_schedule": CRON,
    "dispatch.earliest_time": REL_TIME,
    "dispatch.latest_time": REL_TIME,
    "schedule_window": re.compile(r"^(auto|\d+)$"),
    "counttype": re.compile(r"^(number of events|number of hosts|number of sources|always)$"),
    "relation": re.compile(r"^(greater than|less than|equal to|not equal to|drops by|rises by)$"),
    "quantity": INT,
    "alert.track": BOOL,
    "alert.suppress": BOOL,
    "alert.suppress.fields": re.compile(r"^[A-Za-z_][\w.]*(,[A-Za-z_][\w.]*)*$"),
    "alert.suppress.period": PERIOD,
    # action.<name> and action.<name>.param.<p> (savedsearches.conf.spec, "action settings");
    # notable, risk and correlationsearch are Enterprise Security's alert actions.
    "action.notable": BOOL,
    "action.notable.param.rule_title": ANY,
    "action.notable.param.rule_description": ANY,
    "action.notable.param.severity": re.compile(r"^(informational|low|medium|high|critical)$"),
    "action.notable.param.security_domain": re.compile(
        r"^(access|endpoint|network|threat|identity|audit)$"
    ),
    "action.risk": BOOL,
    "action.risk.param._risk_score": INT,
    "action.risk.param._risk_message": ANY,
    "action.risk.param._risk": re.compile(r"^\[\{.*\}\]$"),
    "action.correlationsearch.enabled": BOOL,
    "action.correlationsearch.label": ANY,
    "action.correlationsearch.annotations": re.compile(r"^\{.*\}$"),
}
MACROS: Spec = {"definition": ANY, "args": ANY}
TRANSFORMS: Spec = {
    "filename": re.compile(r"^[\w.-]+\.csv$"),
    "case_sensitive_match": BOOL,
    "max_matches": INT,
}
APP_CONF: Spec = {
    "is_configured": BOOL,
    "is_visible": BOOL,
    "label": ANY,
    "author": ANY,
    "description": ANY,
    "version": re.compile(r"^\d+\.\d+\.\d+$"),
    "id": re.compile(r"^[A-Za-z0-9_-]+$"),
    "check_for_updates": BOOL,
}
META: Spec = {
    "access": re.compile(r"^read : \[ .+ \], write : \[ .+ \]$"),
    "export": re.compile(r"^(system|none)$"),
}


def parse_conf(text: str) -> dict[str, dict[str, str]]:
    """Stanzas of a .conf file; a duplicate stanza or key, a line continuation or a line outside
    a stanza is an error (Splunk would merge or misread it)."""
    out: dict[str, dict[str, str]] = {}
    cur: dict[str, str] | None = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        assert not line.endswith("\\"), f"line {n} continues onto the next"
        if m := re.fullmatch(r"\[(.*)\]", line):
            assert m.group(1) not in out, f"duplicate stanza {m.group(1)}"
            cur = out[m.group(1)] = {}
            continue
        key, sep, value = line.partition(" = ")
        assert sep and cur is not None, f"line {n} is not `key = value` in a stanza: {line!r}"
        assert key not in cur, f"duplicate key {key}"
        cur[key] = value
    return out


def check(text: str, spec: Spec) -> dict[str, dict[str, str]]:
    stanzas = parse_conf(text)
    for name, keys in stanzas.items():
        for k, v in keys.items():
            assert k in spec, f"[{name}] {k} is not a key of the spec"
            rule = spec[k]
            ok = rule.fullmatch(v) if isinstance(rule, re.Pattern) else rule(v)
            assert ok, f"[{name}] {k} = {v!r} is not a valid value"
    return stanzas


PKG = splunk.package(request(), splunk.Options(notable=True, risk=True))
APPDIR = "siemc_detections/"


def test_conf_files_follow_the_specs() -> None:
    searches = check(PKG.files[APPDIR + "default/savedsearches.conf"], SAVEDSEARCHES)
    assert len(searches) == len(PKG.exported) > 0
    check(PKG.files[APPDIR + "default/macros.conf"], MACROS)
    check(PKG.files[APPDIR + "default/transforms.conf"], TRANSFORMS)
    check(PKG.files[APPDIR + "default/app.conf"], APP_CONF)
    check(PKG.files[APPDIR + "metadata/default.meta"], META)


def test_spec_model_rejects_wrong_keys_and_values() -> None:
    with pytest.raises(AssertionError, match="not a key"):
        check("[x]\ncron = */5 * * * *\n", SAVEDSEARCHES)
    with pytest.raises(AssertionError, match="not a valid value"):
        check("[x]\ndispatch.earliest_time = 5 minutes ago\n", SAVEDSEARCHES)
    with pytest.raises(AssertionError, match="continues"):
        check("[x]\nsearch = a \\\n", SAVEDSEARCHES)


def test_schedule_and_suppression() -> None:
    s = parse_conf(PKG.files[APPDIR + "default/savedsearches.conf"])
    hourly = next(v for k, v in s.items() if "SIEMC-0011" in k)
    assert hourly["cron_schedule"] == "0 * * * *"
    # 1h frequency + 1h window + the 7-day deviation history, which the query reads in the
    # same pass (streamstats over the past windows): 170 hours
    assert (hourly["dispatch.earliest_time"], hourly["dispatch.latest_time"]) == ("-10200m@m", "@m")
    assert hourly["alert.suppress"] == "1"
    assert hourly["alert.suppress.fields"].startswith("_time,dvc")
    assert hourly["action.notable.param.severity"] == "medium"
    assert '"risk_object_field": "dvc"' in hourly["action.risk.param._risk"]
    co = next(v for k, v in s.items() if "SIEMC-0006" in k)
    assert (co["cron_schedule"], co["dispatch.earliest_time"]) == ("*/5 * * * *", "-7m@m")


def test_base_searches_are_macros_that_expand_back() -> None:
    macros = parse_conf(PKG.files[APPDIR + "default/macros.conf"])
    assert macros["siemc_process_creation"]["definition"] == "index=* tag=process tag=report"
    searches = parse_conf(PKG.files[APPDIR + "default/savedsearches.conf"])
    assert searches
    for name, keys in searches.items():
        aid = name.split(" - ")[1]
        lo = next(x for x in CATALOG if x.analytic.id == aid)
        art = compile_target(lo, "splunk", Request((lo,), True, None)).artifact
        assert art is not None
        text = keys["search"]
        assert "index=*" not in text, name
        # every query ends with its own exclusion macro, defined as `search *`
        own = definitions(art.query, art.profile, aid)
        filt = next(m for m in own if m.endswith("_filter"))
        assert text.endswith(f"| `{filt}`") and macros[filt]["definition"] == "search *"
        assert all(macros[m]["definition"] == d for m, d in own.items())
        assert text == " ".join(x.strip() for x in art.query.strip().splitlines())


def test_lookups_and_options() -> None:
    lk = ir.Lookup("inventory", "/x/host_inventory.csv", ("host", "role"), (("web01", "web"),))
    assert splunk.lookup_csv(lk) == "host,role\nweb01,web\n"
    plain = splunk.package(request())
    text = plain.files[APPDIR + "default/savedsearches.conf"]
    assert "action.notable" not in text and "action.risk" not in text
    # every catalog analytic compiles to SPL, exactly, but SIEMC-0018, whose Security logon
    # fields (event.code, source.ip, user.name) no Splunk profile maps
    assert [s.analytic for s in plain.skipped] == ["SIEMC-0018"]
    assert "AN1190" in plain.exported and "AN1511" in plain.exported
    strict = splunk.package(request(allow_approximate=False))
    assert [s.analytic for s in strict.skipped] == ["SIEMC-0018"]
    assert strict.exported == plain.exported
    # registered_domain() reads the Public Suffix List lookup, shipped with the app
    stanzas = parse_conf(plain.files[APPDIR + "default/transforms.conf"])
    assert stanzas["siemc_public_suffix_list"] == {
        "filename": "siemc_public_suffix_list.csv",
        "case_sensitive_match": "true",
        "max_matches": "1000",
    }
    csv_text = plain.files[APPDIR + "lookups/siemc_public_suffix_list.csv"]
    assert csv_text.startswith("suffix,rank\n") and "\nco.uk,002:002:002\n" in csv_text


LOOKUP_ANALYTIC = """\
id: TEST-LOOKUP
title: Process on a host of an unapproved role
description: test analytic with a lookup enrichment and a lookup membership test
attack: {techniques: [T1059.004]}
platforms: [linux]
severity: low
lookups:
  inventory: {file: inventory.csv}
streams:
  proc:
    logsource: {category: process_creation}
    enrich:
      - lookup: inventory
        match: {host: host.name}
        add: {role: labels.host_role}
    where:
      not:
        lookup: {name: inventory, match: {role: labels.host_role, host: host.name}}
detect:
  match: proc
"""


def test_transforms_and_csv_for_exported_lookups(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(LOOKUP_ANALYTIC)
    (tmp_path / "inventory.csv").write_text("host,role\nweb01,web-server\nWEB01,other\n")
    cat = load_catalog([tmp_path])
    assert not cat.errors
    pkg = splunk.package(Request(tuple(cat.loaded), False, None))
    assert pkg.exported == ["TEST-LOOKUP"]
    stanzas = check(pkg.files[APPDIR + "default/transforms.conf"], TRANSFORMS)
    assert stanzas == {
        "inventory": {
            "filename": "inventory.csv",
            "case_sensitive_match": "false",
            "max_matches": "1",
        }
    }
    assert (
        pkg.files[APPDIR + "lookups/inventory.csv"] == "host,role\nweb01,web-server\nWEB01,other\n"
    )
    search = parse_conf(pkg.files[APPDIR + "default/savedsearches.conf"])
    only = next(iter(search.values()))
    assert "lookup inventory host AS dvc OUTPUT role AS" in only["search"]
    # a match decides each event once: no overlap between runs, nothing to suppress
    assert (only["dispatch.earliest_time"], only["alert.suppress"]) == ("-5m@m", "0")


def test_risk_objects_and_suppression_of_event_results() -> None:
    """Correlation results name their keys siemc_k<i>: the host key is the risk object there;
    aggregates by the profile's field (dvc); a match's events by the address they carry.
    Searches that end on events (co-occurrence, absence) are suppressed per event and key."""
    s = parse_conf(PKG.files[APPDIR + "default/savedsearches.conf"])

    def risk(aid: str) -> tuple[str, str] | None:
        v = next(v for k, v in s.items() if f" - {aid} - " in k)
        if "action.risk.param._risk" not in v:
            return None
        (obj,) = json.loads(v["action.risk.param._risk"])
        return obj["risk_object_field"], obj["risk_object_type"]

    assert risk("AN1190") == ("siemc_k0", "system")  # key host.name, process.pid
    assert risk("SIEMC-0011") == ("dvc", "system")
    assert risk("SIEMC-0007") == ("src_ip", "system")
    assert risk("SIEMC-0012") == ("src_ip", "system")  # a match: its events' source address
    assert risk("SIEMC-0010") is None  # keyed by host role and domain: no host or user
    assert any(n.startswith("SIEMC-0010: no host or user key") for n in PKG.notes)
    co = next(v for k, v in s.items() if " - SIEMC-0006 - " in k)
    assert (co["alert.suppress"], co["alert.suppress.fields"]) == ("1", "_time,siemc_k0")
    absence = next(v for k, v in s.items() if " - SIEMC-0009 - " in k)
    assert absence["alert.suppress.fields"] == "_time,siemc_k0,siemc_k1"
