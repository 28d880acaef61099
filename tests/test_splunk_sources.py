"""The Splunk profiles' log sources for Sigma's taxonomy (backends/profiles/cim.yml, sysmon.yml):
what each profile reads a category or Windows channel from, what it refuses and why, that the
SPL interpreter's routing (compiler.engines.run_spl) tells the near misses apart, and that the
export ships the new base searches as macros.

The differential fixtures themselves (tests/differential/splunk/src_*.yml) run on both profiles
in tests/test_diff_splunk.py; the mutations here show that they fail when a base search is
wrong."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import pytest

from backends.base import Artifact
from backends.profiles import UnmappedField, load_profile
from compiler import canonical, ir
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_spl
from compiler.export import splunk
from compiler.export.common import Request
from compiler.lower import Loaded
from tests.differential_support import evaluator_alerts, spl_engine_or_skip
from tests.test_export_splunk import APPDIR, MACROS, SAVEDSEARCHES, check, parse_conf

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "tests" / "differential" / "splunk"


@cache
def _catalog() -> dict[str, Loaded]:
    cat = load_catalog(sorted(SRC.glob("src_*.yml")))
    assert not cat.errors
    return {lo.analytic.id: lo for lo in cat.loaded}


def _compile(aid: str, profile: str) -> Artifact | None:
    return compile_pair(_catalog()[aid], "splunk", profile=profile, allow_approximate=True).artifact


def _errors(aid: str, profile: str) -> list[str]:
    res = compile_pair(_catalog()[aid], "splunk", profile=profile, allow_approximate=True)
    return [f"{d.code} {d.message} {d.help or ''}" for d in res.diagnostics]


def _diff(aid: str, art: Artifact) -> canonical.Diff:
    lo = _catalog()[aid]
    fx = lo.fixtures[0]
    return canonical.diff(evaluator_alerts(lo, fx), run_spl.run(lo, fx, art))


# --------------------------------------------------------------------------- what compiles where
# analytic -> the profiles it compiles on (the other one refuses with E211, no data source)
WHERE = {
    "D-SPL-SRC01": {"cim", "sysmon"},  # file_event: Endpoint.Filesystem / EventCode 11
    "D-SPL-SRC02": {"cim", "sysmon"},  # file_delete
    "D-SPL-SRC03": {"cim", "sysmon"},  # registry_set
    "D-SPL-SRC04": {"cim", "sysmon"},  # registry_add
    "D-SPL-SRC05": {"sysmon"},  # image_load: no CIM data model
    "D-SPL-SRC06": {"sysmon"},  # process_access
    "D-SPL-SRC07": {"sysmon"},  # pipe_created
    "D-SPL-SRC08": {"sysmon"},  # ps_script
    "D-SPL-SRC09": {"sysmon"},  # Windows Security EventData (E210 on cim)
    "D-SPL-SRC10": {"cim"},  # webserver: CIM Web
    "D-SPL-SRC11": {"cim"},  # proxy: CIM Web.Proxy
    "D-SPL-SRC12": {"cim"},  # dns: Network_Resolution
}


@pytest.mark.parametrize("aid", sorted(WHERE))
def test_each_source_compiles_exactly_where_its_data_is(aid: str) -> None:
    for profile in ("cim", "sysmon"):
        art = _compile(aid, profile)
        if profile in WHERE[aid]:
            assert art is not None, _errors(aid, profile)
            assert not art.approximations, art.approximations
        else:
            assert art is None
            assert any(e.startswith(("E211", "E210")) for e in _errors(aid, profile))


def test_base_searches() -> None:
    first = {
        ("D-SPL-SRC01", "cim"): "search `siemc_file_event` `siemc_windows` ",
        ("D-SPL-SRC01", "sysmon"): "search `sysmon_windows` EventCode=11 ",
        ("D-SPL-SRC02", "sysmon"): "search `sysmon_windows` (EventCode=23 OR EventCode=26) ",
        ("D-SPL-SRC03", "sysmon"): "search `sysmon_windows` (EventCode=13 OR EventCode=14) ",
        ("D-SPL-SRC04", "sysmon"): "search `sysmon_windows` EventCode=12 EventType=CreateKey ",
        ("D-SPL-SRC06", "sysmon"): 'search `sysmon_windows` EventCode=10 TargetImage="*\\\\lsass',
        ("D-SPL-SRC08", "sysmon"): 'search `xmlwineventlog_ps_script` ScriptBlockText="*Invoke',
        ("D-SPL-SRC09", "sysmon"): 'search `xmlwineventlog_security` EventCode="4698" Task',
        ("D-SPL-SRC11", "cim"): 'search `siemc_proxy` url="*/MSHTML_C7/*" http_method="GET"',
    }
    for (aid, profile), start in first.items():
        art = _compile(aid, profile)
        assert art is not None and art.query.startswith(start), (aid, profile, art and art.query)
    cim, sysmon = load_profile("cim"), load_profile("sysmon")
    assert (
        cim.sources["file_event"]["search"] == "index=* tag=endpoint tag=filesystem action=created"
    )
    assert (
        cim.sources["registry_set"]["search"] == "index=* tag=endpoint tag=registry action=modified"
    )
    assert (
        sysmon.sources["windows/security"]["search"] == 'index=* source="XmlWinEventLog:Security"'
    )


# --------------------------------------------------------------------------- refusals and names
def test_event_data_fields_by_their_own_names_on_sysmon_only() -> None:
    sysmon, cim = load_profile("sysmon"), load_profile("cim")
    assert sysmon.map_field("winlog.event_data.GrantedAccess") == "GrantedAccess"
    assert sysmon.map_field("winlog.event_data.QueryResults") == "QueryResults"
    assert sysmon.map_field("powershell.file.script_block_text") == "ScriptBlockText"
    with pytest.raises(UnmappedField) as exc:
        sysmon.map_field("winlog.event_data.not-a-field")  # no Splunk field name
    assert "add it to backends/profiles/sysmon.yml" in exc.value.help
    with pytest.raises(UnmappedField) as exc:
        cim.map_field("winlog.event_data.GrantedAccess")
    assert "the sysmon profile (--profile sysmon) reads" in exc.value.help
    # an exact mapping wins over the refused namespace
    assert cim.map_field("winlog.event_data.Details") == "registry_value_data"
    assert cim.map_field("winlog.event_data.QueryResults") == "answer"


def _analytic(ls: ir.LogSource, where: str) -> Loaded:
    text = f"""\
id: T-SRC
title: t
description: t
attack: {{techniques: [T1059]}}
platforms: [windows]
severity: low
streams:
  s:
    logsource: {{{", ".join(f"{k}: {v}" for k, v in _parts(ls) if v)}}}
    where: {{{where}}}
detect:
  match: s
"""
    return _load(text)


def _parts(ls: ir.LogSource) -> list[tuple[str, str | None]]:
    return [("category", ls.category), ("product", ls.product), ("service", ls.service)]


def _load(text: str) -> Loaded:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.yml"
        p.write_text(text)
        cat = load_catalog([p])
    assert not cat.errors, cat.errors
    return cat.loaded[0]


def _refusal(lo: Loaded, profile: str) -> str:
    res = compile_pair(lo, "splunk", profile=profile, allow_approximate=True)
    assert res.artifact is None
    return " ".join(f"{d.code} {d.message} {d.help or ''}" for d in res.diagnostics)


def test_a_windows_service_needs_its_own_source_on_sysmon() -> None:
    """Before, any `product: windows` logsource read Sysmon's log: a Security rule searched
    Sysmon's events for EventCode 4728 and never fired."""
    lo = _analytic(ir.LogSource(None, "windows", "nosuchchannel"), "event.code: 4728")
    assert "E211" in _refusal(lo, "sysmon")
    sec = _analytic(ir.LogSource(None, "windows", "security"), "event.code: 4728")
    art = compile_pair(sec, "splunk", profile="sysmon", allow_approximate=True).artifact
    assert art is not None and art.query.startswith("search `xmlwineventlog_security`")


def test_sysmon_names_are_refused_on_other_channels() -> None:
    """Security 4625 names the user TargetUserName and the address IpAddress: user.name (Sysmon
    User) and source.ip (Sysmon SourceIp) are absent from its events."""
    for where in ("user.name: alice", "source.ip: 10.0.0.1", "process.executable: x"):
        lo = _analytic(ir.LogSource(None, "windows", "security"), f"event.code: 4625, {where}")
        msg = _refusal(lo, "sysmon")
        assert "E211" in msg and "TargetUserName" in msg, msg


def test_process_access_refuses_image_fields() -> None:
    lo = _analytic(ir.LogSource("process_access", "windows"), "process.executable: x")
    msg = _refusal(lo, "sysmon")
    assert "E211" in msg and "SourceImage" in msg, msg


def test_cim_names_the_profile_that_has_what_it_lacks() -> None:
    lo = _analytic(ir.LogSource("image_load", "windows"), "dll.path: x")
    assert "E211" in _refusal(lo, "cim")
    assert "sysmon profile" in load_profile("cim").sources["image_load"]["unavailable"]
    web = _analytic(ir.LogSource("webserver"), "source.ip: 10.0.0.1")
    msg = _refusal(web, "cim")
    assert "E211" in msg and "src" in msg, msg


# --------------------------------------------------------------------------- mutations
def _mutated(art: Artifact, old: str, new: str) -> Artifact:
    assert old in art.query, art.query
    return Artifact(**{**art.__dict__, "query": art.query.replace(old, new)})


def test_routing_tells_the_near_misses_apart() -> None:
    """Each family's fixture is equal on both profiles; a base search for the wrong event kind
    loses its alerts or gains the near misses'."""
    spl_engine_or_skip()
    cases = [
        ("D-SPL-SRC01", "cim", "`siemc_file_event`", "`siemc_file_delete`"),
        ("D-SPL-SRC01", "sysmon", "EventCode=11", "EventCode=23"),
        ("D-SPL-SRC03", "sysmon", "(EventCode=13 OR EventCode=14)", "EventCode=13"),
        ("D-SPL-SRC03", "cim", "`siemc_registry_set`", "`siemc_registry_event`"),
        ("D-SPL-SRC04", "sysmon", "EventType=CreateKey", "EventType=DeleteKey"),
        ("D-SPL-SRC08", "sysmon", "`xmlwineventlog_ps_script`", "`xmlwineventlog_ps_module`"),
        ("D-SPL-SRC09", "sysmon", "`xmlwineventlog_security`", "`xmlwineventlog_system`"),
        ("D-SPL-SRC11", "cim", "`siemc_proxy`", "`siemc_webserver`"),
    ]
    for aid, profile, old, new in cases:
        art = _compile(aid, profile)
        assert art is not None
        assert _diff(aid, art).equal, (aid, profile)
        assert not _diff(aid, _mutated(art, old, new)).equal, (aid, profile, new)


# --------------------------------------------------------------------------- export
def test_export_ships_the_new_base_searches_as_macros() -> None:
    los = (_catalog()["D-SPL-SRC01"], _catalog()["D-SPL-SRC03"], _catalog()["D-SPL-SRC08"])
    pkg = splunk.package(Request(los, False, None))
    assert sorted(pkg.exported) == ["D-SPL-SRC01", "D-SPL-SRC03", "D-SPL-SRC08"]
    searches = check(pkg.files[APPDIR + "default/savedsearches.conf"], SAVEDSEARCHES)
    macros = check(pkg.files[APPDIR + "default/macros.conf"], MACROS)
    assert macros["siemc_file_event"]["definition"] == (
        "index=* tag=endpoint tag=filesystem action=created"
    )
    assert macros["siemc_registry_set"]["definition"] == (
        "index=* tag=endpoint tag=registry action=modified"
    )
    assert macros["xmlwineventlog_ps_script"]["definition"] == (
        'index=* source="XmlWinEventLog:Microsoft-Windows-PowerShell/Operational" EventCode=4104'
    )
    for keys in searches.values():
        assert "index=*" not in keys["search"]
        for name in set(parse_conf(pkg.files[APPDIR + "default/macros.conf"])):
            if f"`{name}`" in keys["search"]:
                assert macros[name]["definition"]
