"""`siemc new`: every shape's skeleton loads and its fixtures pass as written; --from-events
proposes a logsource and filters its sample's first event passes; nothing is ever overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from compiler.cli import EXIT_CANTCREAT, EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from compiler.discover import load_catalog
from compiler.scaffold import MODELINE, SHAPES
from compiler.testing import run_all

REPO = Path(__file__).resolve().parent.parent
OTRF = REPO / "analytics" / "fixtures" / "otrf"


def _new(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["new", *args])
    return res.exit_code, res.output


def _fixtures(path: Path) -> dict[str, str]:
    """fixture kind -> status, after loading ``path`` as `siemc test` does."""
    cat = load_catalog([path])
    assert not cat.errors, "\n".join(e.render() for e in cat.errors)
    (loaded,) = cat.loaded
    results = list(run_all(loaded))
    assert all(r.status == "passed" for r in results), [(r.message, r.detail) for r in results]
    return {r.fixture.kind: r.status for r in results}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_passes_check_and_test(tmp_path: Path, shape: str) -> None:
    target = tmp_path / "rules" / f"my_{shape}.yml"
    code, out = _new(str(target), "--shape", shape, "--title", f"a {shape}: 'quoted' title")
    assert code == EXIT_OK, out
    text = target.read_text()
    assert text.startswith(MODELINE)
    doc = yaml.safe_load(text)
    assert doc["id"] == f"my_{shape}" and doc["title"] == f"a {shape}: 'quoted' title"
    assert _fixtures(target.parent) == {"positive": "passed", "negative": "passed"}
    for cmd in ("check", "test"):
        res = CliRunner().invoke(main, [cmd, str(target)])
        assert res.exit_code == EXIT_OK, res.output
    # only the analytic: no temporary file is left beside it
    assert [p.name for p in target.parent.iterdir()] == [target.name]


# What each shape's negative fixture is there to test: without it (a loosened analytic), the
# negative fixture's events alert.
LOOSEN = {
    "match": lambda d: d["streams"]["proc"].pop("where"),
    "sequence": lambda d: d["detect"]["sequence"].update(maxspan="1h"),
    "aggregate": lambda d: d["detect"]["aggregate"].pop("having"),
    "baseline": lambda d: d.pop("baseline"),
    "absence": lambda d: d["detect"]["absence"].update(within="30s"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_negative_fixture_tests_its_shape(tmp_path: Path, shape: str) -> None:
    target = tmp_path / "a" / f"n_{shape}.yml"
    assert _new(str(target), "--shape", shape)[0] == EXIT_OK
    doc = yaml.safe_load(target.read_text())
    LOOSEN[shape](doc)
    loose = tmp_path / "b" / f"n_{shape}.yml"
    loose.parent.mkdir()
    loose.write_text(yaml.safe_dump(doc, sort_keys=False))
    cat = load_catalog([loose])
    assert not cat.errors, "\n".join(e.render() for e in cat.errors)
    results = {r.fixture.kind: r for r in run_all(cat.loaded[0])}
    assert results["negative"].status == "failed" and results["negative"].actual, shape


def test_modeline_points_at_the_nearest_schema(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "analytic.schema.json").write_text("{}")
    target = tmp_path / "analytics" / "deep" / "x1.yml"
    code, _ = _new(str(target))
    assert code == EXIT_OK
    assert target.read_text().splitlines()[0] == MODELINE + "../../docs/analytic.schema.json"
    code, _ = _new(str(tmp_path / "x2.yml"), "--schema", "https://example.org/a.json")
    assert (tmp_path / "x2.yml").read_text().splitlines()[0] == (
        MODELINE + "https://example.org/a.json"
    )


def test_without_a_schema_file_it_says_how_to_write_one(tmp_path: Path) -> None:
    code, out = _new(str(tmp_path / "x.yml"))
    assert code == EXIT_OK
    assert "siemc schema -o" in out


def test_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "mine.yml"
    target.write_text("id: precious\n")
    code, out = _new(str(target), "--shape", "sequence")
    assert code == EXIT_CANTCREAT
    assert f"{target}:1:1: error[E600]" in out and "never overwrites" in out
    assert target.read_text() == "id: precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yml"]


def test_a_file_where_the_folder_should_be_is_exit_73(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    code, out = _new(str(tmp_path / "afile" / "x.yml"))
    assert code == EXIT_CANTCREAT
    assert "is not a folder" in out and "E600" not in out


def test_never_overwrites_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link.yml"
    link.symlink_to(tmp_path / "elsewhere.yml")
    code, _ = _new(str(link))
    assert code == EXIT_CANTCREAT
    assert not (tmp_path / "elsewhere.yml").exists()


def test_usage_errors(tmp_path: Path) -> None:
    assert _new(str(tmp_path / "bad name!.yml"))[0] == EXIT_USAGE
    assert _new(str(tmp_path / "x.yml"), "--id", "no spaces")[0] == EXIT_USAGE
    assert _new(str(tmp_path / "x.yml"), "--shape", "nonsense")[0] == EXIT_USAGE
    sample = tmp_path / "s.jsonl"
    sample.write_text("{}\n")
    code, out = _new(str(tmp_path / "x.yml"), "--shape", "sequence", "--from-events", str(sample))
    assert code == EXIT_USAGE and "match" in out
    assert _new(str(tmp_path / "x.yml"), "--from-events", str(tmp_path / "nope.jsonl"))[0] == (
        EXIT_USAGE
    )
    assert not (tmp_path / "x.yml").exists()


def _proc(n: int, host: str, name: str, cmd: str) -> dict[str, object]:
    return {
        "@timestamp": f"2024-05-01T10:00:0{n}Z",
        "event": {"id": f"e{n}", "category": "process", "type": "start", "kind": "event"},
        "host": {"name": host, "os": {"type": "windows"}},
        "process": {"name": name, "command_line": cmd, "pid": 100 + n},
    }


def test_from_events_proposes_logsource_and_constant_filters(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    events = [
        _proc(1, "ws01", "rundll32.exe", "rundll32 a.dll,Run"),
        _proc(2, "ws02", "rundll32.exe", "rundll32 b.dll,Go"),
        _proc(3, "ws02", "rundll32.exe", "rundll32 c.dll,Go"),
    ]
    sample.write_text("".join(json.dumps(e) + "\n" for e in events))
    target = tmp_path / "out" / "proposed.yml"
    code, out = _new(str(target), "--from-events", f"ecs:{sample}")
    assert code == EXIT_OK, out
    text = target.read_text()
    doc = yaml.safe_load(text)
    stream = doc["streams"]["sample"]
    assert stream["logsource"] == {"category": "process_creation", "product": "windows"}
    # constant across the sample; the logsource's own fields are not repeated, and the ones
    # that vary (host, command line) or identify an instance (pid) are not filters
    assert stream["where"] == {"process.name": "rundll32.exe"}
    assert "category process_creation" in text and "host.name (2 values)" in text
    assert doc["detect"] == {"match": "sample"}
    assert _fixtures(target) == {"positive": "passed", "negative": "passed"}


def test_from_events_single_host_keeps_host_as_a_comment(tmp_path: Path) -> None:
    sample = tmp_path / "one.json"
    sample.write_text(json.dumps([_proc(1, "ws01", "mshta.exe", "mshta x.hta")]))
    target = tmp_path / "one.yml"
    assert _new(str(target), "--from-events", str(sample))[0] == EXIT_OK
    text = target.read_text()
    assert '# host.name: "ws01"' in text and "one event: every field is constant" in text
    assert "host.name" not in yaml.safe_load(text)["streams"]["sample"]["where"]
    _fixtures(target)


@pytest.mark.parametrize(
    ("spec", "logsource"),
    [
        (
            f"zeek:{OTRF / 'otrf_lsass06_zeek_conn.log'}",
            {"category": "network_flow", "product": "zeek", "service": "conn"},
        ),
        (f"sysmon:{OTRF / 'otrf_lsass06_payload_sysmon.jsonl'}", {"product": "windows"}),
    ],
)
def test_from_events_reads_raw_formats(
    tmp_path: Path, spec: str, logsource: dict[str, str]
) -> None:
    target = tmp_path / "raw.yml"
    code, out = _new(str(target), "--from-events", spec)
    assert code == EXIT_OK, out
    assert yaml.safe_load(target.read_text())["streams"]["sample"]["logsource"] == logsource
    _fixtures(target)


def test_from_events_sysmon_process_starts(tmp_path: Path) -> None:
    """Sysmon event 1 records: process_creation on windows; the Sysmon provider and event code
    only name the log source, so they are comments, not filters."""
    lines = (OTRF / "otrf_lsass06_payload_sysmon.jsonl").read_text().splitlines()
    starts = [ln for ln in lines if json.loads(ln).get("EventID") in (1, "1")]
    assert len(starts) >= 2
    sample = tmp_path / "starts.jsonl"
    sample.write_text("\n".join(starts) + "\n")
    target = tmp_path / "starts.yml"
    assert _new(str(target), "--from-events", f"sysmon:{sample}")[0] == EXIT_OK
    text = target.read_text()
    stream = yaml.safe_load(text)["streams"]["sample"]
    assert stream["logsource"] == {"category": "process_creation", "product": "windows"}
    assert "event.code" not in (stream.get("where") or {})
    assert '# event.code: "1"' in text
    _fixtures(target)


def test_from_events_bad_sample_is_positioned_invalid_input(tmp_path: Path) -> None:
    sample = tmp_path / "broken.jsonl"
    sample.write_text('{"@timestamp": "2024-01-01T00:00:00Z"}\n{not json\n')
    code, out = _new(str(tmp_path / "x.yml"), "--from-events", str(sample))
    assert code == EXIT_INVALID
    assert f"{sample}:2:1: error[E601]" in out
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, out = _new(str(tmp_path / "x.yml"), "--from-events", str(empty))
    assert code == EXIT_INVALID and "error[E601]" in out and "no events" in out
    untimed = tmp_path / "untimed.jsonl"
    untimed.write_text('{"process": {"name": "a.exe"}}\n')
    code, out = _new(str(tmp_path / "x.yml"), "--from-events", str(untimed))
    assert code == EXIT_INVALID and f"{untimed}:1:1: error[E601]" in out and "@timestamp" in out
    assert not (tmp_path / "x.yml").exists()
