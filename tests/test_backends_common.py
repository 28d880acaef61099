"""Checks every backend must pass: exhaustive SUPPORT tables, published matrix, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from backends import ENGINE_TARGETS, TARGETS, get_backend
from backends.base import NODE_TYPES, CompileError
from backends.profiles import load_profile
from backends.profiles import names as profile_names
from backends.sources import source_reads
from compiler import ir
from compiler.cli import main
from compiler.discover import load_catalog

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("target", list(TARGETS))
def test_support_table_is_exhaustive(target: str) -> None:
    backend = get_backend(target)
    missing = [t.__name__ for t in NODE_TYPES if t not in backend.SUPPORT]
    assert not missing, f"{target} does not account for: {missing}"
    for t, sup in backend.SUPPORT.items():
        assert t in NODE_TYPES, f"{target}: {t.__name__} is not an IR node type"
        assert sup.level in ("exact", "approximate", "unsupported", "not_implemented")
        assert len(sup.how.strip()) > 10, f"{target}: explain how/why for {t.__name__}"


def test_published_matrix_is_current() -> None:
    from backends.matrix import markdown

    published = (ROOT / "docs" / "targets.md").read_text()
    assert published == markdown(), "regenerate: siemc fidelity > docs/targets.md"


def test_compile_output_is_deterministic_and_complete(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["compile", str(ROOT / "analytics"), "--target", "all", "--allow-approximate"]
    a, b = tmp_path / "a", tmp_path / "b"
    r1 = runner.invoke(main, [*args, "--out", str(a)])
    r2 = runner.invoke(main, [*args, "--out", str(b)])
    # exit 1: some pairs are refused (EQL has no aggregation), each with its .err
    assert r1.exit_code == 1, r1.output
    assert r2.exit_code == 1, r2.output
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    ids = {x.analytic.id for x in load_catalog([ROOT / "analytics"]).loaded}
    for target in TARGETS:
        produced = {p.stem for p in (a / target).iterdir()}
        assert produced == ids, f"{target}: every analytic has an artifact or an .err"
    for err in a.rglob("*.err"):
        text = err.read_text()
        target = err.parent.name
        assert "error[E2" in text and target in text, err
        assert "help:" in text, err


def test_failed_compile_leaves_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    bad = tmp_path / "bad.yml"
    bad.write_text("id: X\n")
    res = CliRunner().invoke(main, ["compile", str(bad), "--out", str(out)])
    assert res.exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


# ---------------------------------------------------------------------- data sources (E211)
SPAN = ir.Span("t.yml", 7, 9)
META = ir.Metadata("t", "", (), (), (), "low", None, (), ())


def _reading(ls: ir.LogSource, field: str) -> ir.Analytic:
    s = ir.Stream("s", ls, None, (), (), ir.Compare(field, "gt", 0, SPAN), span=SPAN)
    return ir.Analytic("T-1", "t.yml", META, (), (s,), ir.Match("s"), ())


# (target, profile, logsource, field read, the sources key that lacks it, a carrier named)
LACKS = [
    ("splunk", "cim", ir.LogSource("network_connection", "windows"), "source.bytes", "windows",
     "logsource {category: network_connection, product: zeek}"),
    ("splunk", "cim", ir.LogSource("network_connection", "sysmon"), "destination.bytes",
     "sysmon", "logsource {category: network_connection, product: zeek}"),
    # a traffic sensor names no process: the endpoint flows of the same profile do
    ("splunk", "cim", ir.LogSource("network_flow", "zeek", "conn"), "process.pid", "zeek/conn",
     "logsource {category: network_flow, product: windows}"),
    ("eql", "ecs", ir.LogSource("network_connection", "sysmon"), "source.bytes", "sysmon",
     "logsource {category: network_connection}"),
    ("esql", "ecs", ir.LogSource("network_flow", "zeek"), "process.pid", "zeek",
     "logsource {category: network_flow}"),
    ("kql", "mde", ir.LogSource("network_connection", "windows"), "source.bytes",
     "network_connection", "the asim profile (kql)"),
    ("kql", "asim", ir.LogSource("network_connection", "sysmon"), "destination.bytes", "sysmon",
     "logsource {category: network_connection}"),
    ("kql", "asim", ir.LogSource("network_flow", "zeek"), "process.pid", "zeek",
     "logsource {category: network_flow}"),
    ("sigma", "sigma", ir.LogSource("network_connection", "windows"), "source.bytes",
     "network_connection/windows",
     "logsource {category: network_connection, product: zeek, service: conn}"),
    ("sigma", "sigma", ir.LogSource("network_flow", "zeek", "conn"), "process.pid", "zeek/conn",
     "logsource {category: network_flow, product: windows}"),
]  # fmt: skip


@pytest.mark.parametrize(("target", "profile", "ls", "field", "key", "carrier"), LACKS)
def test_a_field_the_source_cannot_carry_is_e211(
    target: str, profile: str, ls: ir.LogSource, field: str, key: str, carrier: str
) -> None:
    with pytest.raises(CompileError) as info:
        get_backend(target).compile(_reading(ls, field), profile=profile, allow_approximate=True)
    [d] = info.value.diagnostics
    assert (d.code, d.path, d.line, d.col) == ("E211", "t.yml", 7, 9)
    assert f"stream 's' reads {field}" in d.message
    assert f"{profile} profile ({target})" in d.message and f"logsource '{key}'" in d.message
    assert d.help is not None and carrier in d.help


@pytest.mark.parametrize("name", profile_names())
def test_profiles_name_their_targets_and_lacks_are_documented(name: str) -> None:
    prof = load_profile(name)
    assert {t for t in [*TARGETS, *ENGINE_TARGETS] if name in get_backend(t).profiles} == set(
        prof.targets
    )
    for key, entry in prof.sources.items():
        for field, why in (entry.get("lacks") or {}).items():
            assert isinstance(why, str) and len(why) > 20, (key, field)


def test_reads_follow_the_data_flow() -> None:
    """Derived and enriched fields are the stream's own; a join's `add` fields and keys are read
    from the partner; `from:` streams, the detection and baselines read through to the source."""
    proc = ir.Stream("proc", ir.LogSource("process_creation"), None, (), (), ir.TRUE)
    flow = ir.Stream(
        "flow",
        ir.LogSource("network_flow"),
        None,
        (),
        (("process.name", ir.Call("lower", (ir.FieldRef("process.executable"),))),),
        ir.Eq("destination.port", (443,)),
    )
    joined = ir.Stream(
        "joined",
        "flow",
        ir.Join("proc", ("host.name",), 1000, "before", ("user.name",)),
        (),
        (("ratio", ir.BinOp("/", ir.FieldRef("source.bytes"), ir.Literal_(2))),),
        ir.Exists("ratio"),
    )
    agg = ir.Aggregate(
        "joined",
        ir.Window("tumbling", 3_600_000),
        ("process.name", "user.name"),
        (ir.Measure("out", "sum", "destination.bytes"),),
        (),
        None,
    )
    a = ir.Analytic("T-1", "t.yml", META, (), (proc, flow, joined), agg, ())
    reads = source_reads(a)
    assert set(reads["flow"]) == {
        "process.executable",  # process.name is derived from it
        "destination.port",
        "host.name",  # the join key
        "source.bytes",
        "destination.bytes",
    }
    assert set(reads["proc"]) == {"host.name", "user.name"}


def test_lacks_apply_per_source_entry() -> None:
    cim = load_profile("cim")
    fields = ["source.bytes", "process.name", "destination.ip"]
    assert cim.lacking(ir.LogSource("network_flow", "zeek"), fields) == {
        "process.name": ("network_flow", cim.lacking(ir.LogSource("network_flow"), fields)[
            "process.name"][1]),
    }  # fmt: skip
    # an entry for the category/product pair describes the pair alone (flows that name the
    # process), not the AND of the category's and the product's entries
    assert not cim.lacking(ir.LogSource("network_flow", "windows"), fields)
    assert cim.lacking(ir.LogSource("network_connection", "windows"), fields) == {
        "source.bytes": cim.lacking(ir.LogSource(None, "windows"), fields)["source.bytes"]
    }
    assert not cim.lacking(ir.LogSource("process_creation"), fields)
    sigma = load_profile("sigma")  # the most specific entry alone describes the logsource
    assert not sigma.lacking(ir.LogSource("network_connection", "zeek", "conn"), fields[:1])
    # Windows flows are read from Sysmon network connections, which carry no bytes
    assert sigma.has_source(ir.LogSource("network_flow", "windows"))
    assert list(sigma.lacking(ir.LogSource("network_flow", "windows"), fields)) == fields[:1]
    assert not sigma.has_source(ir.LogSource("network_flow"))  # no_source
    assert not load_profile("mde").has_source(ir.LogSource("network_flow"))  # unavailable


def test_outputs_do_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Artifacts, .err files and fidelity.json cite `file.yml:line:col`, never the path the
    catalog was given by: the same catalog from two folders gives byte-identical outputs."""
    runner = CliRunner()
    args = ["compile", "--target", "all", "--allow-approximate"]
    monkeypatch.chdir(ROOT)
    r1 = runner.invoke(main, [*args, "analytics", "--out", str(tmp_path / "rel")])
    monkeypatch.chdir(tmp_path)
    r2 = runner.invoke(main, [*args, str(ROOT / "analytics"), "--out", str(tmp_path / "abs")])
    assert r1.exit_code == r2.exit_code == 1, (r1.output, r2.output)
    rel, absolute = tmp_path / "rel", tmp_path / "abs"
    files = sorted(p.relative_to(rel) for p in rel.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(absolute) for p in absolute.rglob("*") if p.is_file())
    for f in files:
        text = (absolute / f).read_text()
        assert str(ROOT) not in text and "analytics/" not in text, f
        assert text == (rel / f).read_text(), f
    # the export packages too
    exp = ["export", "--allow-approximate", "--out"]
    monkeypatch.chdir(ROOT)
    assert runner.invoke(main, [*exp, str(tmp_path / "erel"), "analytics"]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    e2 = runner.invoke(main, [*exp, str(tmp_path / "eabs"), str(ROOT / "analytics")])
    assert e2.exit_code == 0, e2.output
    for f in (tmp_path / "eabs").rglob("*"):
        if f.is_file():
            text = f.read_text()
            assert str(ROOT) not in text, f
            assert text == (tmp_path / "erel" / f.relative_to(tmp_path / "eabs")).read_text(), f
