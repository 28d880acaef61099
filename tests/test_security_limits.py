"""Hostile analytics of a few bytes (or megabytes) are positioned errors, never a stall, a
traceback or gigabytes of memory; and one of them in a catalog never stops the others from being
compiled, tested, built and exported (issue 8, items 4 and 6)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from compiler.cli import main
from compiler.diagnostics import CODES, Diagnostic, DiagnosticError
from compiler.discover import load_catalog
from compiler.expr import MAX_EXPR_DEPTH
from compiler.lower import load_text
from compiler.source import MAX_DEPTH, MAX_FILE_BYTES, MAX_LIST_ITEMS, load_yaml, read_source

from .test_cli import ANALYTIC

# The classic 949-byte "billion laughs": nine levels of nine aliases, 9**9 strings once built.
BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def one_error(text: str) -> Diagnostic:
    with pytest.raises(DiagnosticError) as info:
        load_text("a.yml", text)
    (d,) = info.value.diagnostics
    assert d.code in CODES
    return d


# ------------------------------------------------------------------ YAML shape
def test_alias_bomb_stops_at_the_alias_that_crosses_the_node_limit() -> None:
    d = one_error(BOMB)
    # a..e expand to 9**5 + ... strings: the first alias of f crosses 100,000 nodes
    assert (d.code, d.line, d.col) == ("E009", 6, 8)
    assert "alias" in d.message


def test_an_alias_used_inside_its_own_node_is_refused() -> None:
    d = one_error("a: &a [1, *a]\n")
    assert (d.code, d.line, d.col) == ("E006", 1, 11)


@pytest.mark.parametrize(
    ("text", "col"),
    [
        # past libyaml's own limit of 1000 levels, which it reaches first (it scans ahead)
        ("a: " + "[" * 5000 + "]" * 5000, 3 + 1000),
        ("a: " + "{b: " * 700 + "1" + "}" * 700, 4 + 4 * (MAX_DEPTH - 1)),
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), 4 + MAX_DEPTH - 1),
    ],
)
def test_deep_nesting_is_e006_not_a_recursion_error(text: str, col: int) -> None:
    d = one_error(text)
    assert (d.code, d.line, d.col) == ("E006", 1, col)


def test_nesting_at_the_limit_loads() -> None:
    # the root mapping is level 1: MAX_DEPTH - 1 lists under it reach the limit exactly
    n = MAX_DEPTH - 1
    doc = load_yaml("a.yml", "a: " + "[" * n + "]" * n)
    assert isinstance(doc.data["a"], list)


def test_without_libyaml_the_limit_depth_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    # PyYAML built without libyaml composes in Python, two frames per level: at the depth
    # limit, called from deep in a stack, that must not be a RecursionError
    import yaml

    from compiler import source

    monkeypatch.setattr(source, "_LOADER", yaml.SafeLoader)
    n = MAX_DEPTH - 1

    def nested(k: int) -> object:
        return nested(k - 1) if k else load_yaml("a.yml", "a: " + "[" * n + "]" * n).data

    assert isinstance(nested(200), dict)
    assert one_error("a: " + "[" * (n + 2) + "]" * (n + 2)).code == "E006"


def test_aliases_count_for_the_depth_too() -> None:
    # two anchors of 250 levels, one placed inside the other: 500 levels once expanded
    deep = "[" * 250 + "]" * 250
    d = one_error(f"a: &a {deep}\nb: {'[' * 250}*a{']' * 250}\n")
    assert (d.code, d.line) == ("E006", 2)


def test_a_list_past_the_limit_is_e008_at_the_first_item_too_many() -> None:
    values = ", ".join(f"v{i}" for i in range(MAX_LIST_ITEMS + 1))
    d = one_error(f"a: [{values}]\n")
    assert d.code == "E008" and d.col == 5 + values.index(f"v{MAX_LIST_ITEMS}")
    assert "lookup" in (d.help or "")


def filter_analytic(values: str) -> str:
    return ANALYTIC.replace("process.parent.name: excel.exe", f"process.parent.name: [{values}]")


def test_a_filter_list_at_the_limit_is_accepted() -> None:
    # (speed is bench/'s business: no timing here)
    values = ", ".join(f"p{i}.exe" for i in range(MAX_LIST_ITEMS - 1)) + ", excel.exe"
    loaded = load_text("a.yml", filter_analytic(values))
    assert loaded.analytic.id


# ------------------------------------------------------------------ characters
@pytest.mark.parametrize(
    ("text", "line", "col", "what"),
    [
        ('a: "x\\0y"\n', 1, 4, "NUL"),
        ('a: "x\\x00"\n', 1, 4, "NUL"),
        ('a: {"k\\ud800": 1}\n', 1, 5, "U+D800"),  # in a key
        ('a: ["ok", "\\U0000DFFF"]\n', 1, 11, "U+DFFF"),
        ("a:\n  - 'fine'\n  - \"\\udc00tail\"\n", 3, 5, "U+DC00"),
    ],
)
def test_nul_and_lone_surrogates_are_e007_where_written(
    text: str, line: int, col: int, what: str
) -> None:
    d = one_error(text)
    assert (d.code, d.line, d.col) == ("E007", line, col) and what in d.message


def test_a_bad_character_behind_an_alias_is_reported_once() -> None:
    d = one_error('a: &x "\\0"\nb: [*x, *x, *x]\n')
    assert (d.code, d.line, d.col) == ("E007", 1, 4)  # the anchored node starts at its anchor


# ------------------------------------------------------------------ file size
def test_a_file_past_the_size_limit_is_e004_and_not_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.yml"
    big.write_bytes(b"id: x\n# " + b"x" * (40 * MAX_FILE_BYTES) + b"\n")
    with pytest.raises(DiagnosticError) as info:
        read_source(str(big))
    (d,) = info.value.diagnostics
    assert (d.code, d.path, d.line, d.col) == ("E005", str(big), 1, 1)
    cat = load_catalog([tmp_path])
    assert [e.diagnostics[0].code for e in cat.errors] == ["E005"]
    assert one_error("a: b\n" + "#" * MAX_FILE_BYTES).code == "E005"  # load_text too


def test_a_file_that_is_not_utf8_is_e003(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_bytes(b"id: \xff\n")
    (err,) = load_catalog([tmp_path]).errors
    assert err.diagnostics[0].code == "E003" and "UTF-8" in err.diagnostics[0].message


# ------------------------------------------------------------------ expressions
COUNTING = """\
id: LIM-EXPR
title: t
description: d
attack: {techniques: [T1059.001]}
platforms: [windows]
severity: low
streams:
  proc:
    logsource: {category: process_creation, product: windows}
    where: {process.name: powershell.exe}
detect:
  aggregate:
    stream: proc
    window: {kind: tumbling, size: 5m}
    by: [host.name]
    measures:
      n: {count: true}
    having: HAVING
"""


@pytest.mark.parametrize(
    ("having", "offset"),
    [
        ("(" * 5000 + "n" + ")" * 5000 + " > 1", MAX_EXPR_DEPTH),
        ("not " * 3000 + "n > 1", 4 * MAX_EXPR_DEPTH),
        ("-" * 3000 + "n > 1", MAX_EXPR_DEPTH),
        ("abs(" * 2000 + "n" + ")" * 2000 + " > 1", 4 * MAX_EXPR_DEPTH + 3),
        (" + ".join(["n"] * 5000) + " > 1", 4 * MAX_EXPR_DEPTH - 2),
    ],
)
def test_deep_expressions_are_e130_at_their_column(having: str, offset: int) -> None:
    d = one_error(COUNTING.replace("HAVING", having))
    assert (d.code, d.line) == ("E130", 18)
    assert d.col == len("    having: ") + 1 + offset
    assert f"more than {MAX_EXPR_DEPTH} levels" in d.message


def test_an_expression_at_the_limit_loads() -> None:
    having = "(" * MAX_EXPR_DEPTH + "n" + ")" * MAX_EXPR_DEPTH + " > 1"
    load_text("a.yml", COUNTING.replace("HAVING", having))
    # a chain of MAX_EXPR_DEPTH - 1 terms under the comparison: MAX_EXPR_DEPTH levels
    chain = " + ".join(["n"] * (MAX_EXPR_DEPTH - 1))
    load_text("a.yml", COUNTING.replace("HAVING", chain + " > 1"))


# ------------------------------------------------------------------ a catalog with one bad file
HOSTILE = {
    "bomb": (BOMB, "E009"),
    "deep": ("a: " + "[" * 5000 + "]" * 5000, "E006"),
    "nul": (ANALYTIC.replace("id: CLI-1", 'id: "CLI-\\0"'), "E007"),
    "surrogate": (ANALYTIC.replace("excel.exe", '"excel\\ud800.exe"'), "E007"),
    "list": (filter_analytic(", ".join(f"p{i}" for i in range(MAX_LIST_ITEMS + 1))), "E008"),
    "expr": (COUNTING.replace("HAVING", "(" * 500 + "n" + ")" * 500), "E130"),
    "big": ("id: x\n#" + "x" * MAX_FILE_BYTES, "E005"),
}


def catalog(tmp_path: Path, hostile: str) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.yml").write_text(ANALYTIC)
    (src / "bad.yml").write_text(HOSTILE[hostile][0], encoding="utf-8")
    return src


def invoke(*args: str) -> Result:
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    return res


@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_one_hostile_analytic_never_stops_the_others(tmp_path: Path, hostile: str) -> None:
    src = catalog(tmp_path, hostile)
    code = HOSTILE[hostile][1]
    where = f"{src / 'bad.yml'}:"

    res = invoke("check", str(src))
    assert res.exit_code == 2 and where in res.output and f"error[{code}]" in res.output

    junit = tmp_path / "junit.xml"
    res = invoke("test", str(src), "--junit", str(junit))
    assert res.exit_code == 2 and f"error[{code}]" in res.output
    assert "2 fixture(s): 2 passed" in res.output  # the good analytic's fixtures ran
    assert {e.get("type") for e in ET.parse(junit).getroot().iter("error")} == {code}

    out = tmp_path / "compiled"
    res = invoke("compile", str(src), "-t", "kql", "-o", str(out))
    assert res.exit_code == 2 and f"error[{code}]" in res.output
    assert (out / "kql" / "CLI-1.kql").is_file()

    res = invoke("export", str(src), "-t", "sigma", "-o", str(tmp_path / "rules"))
    assert res.exit_code == 2 and f"error[{code}]" in res.output
    assert "1 invalid analytic file(s) not exported" in res.output
    summary = json.loads((tmp_path / "rules" / "export.json").read_text())
    assert summary["targets"]["sigma"]["exported"] == ["CLI-1"]


def test_build_with_one_hostile_analytic_builds_the_others(tmp_path: Path) -> None:
    src = catalog(tmp_path, "bomb")
    out = tmp_path / "build"
    res = invoke("build", str(src), "--out", str(out))
    assert res.exit_code == 2 and "error[E009]" in res.output
    assert (out / "kql" / "CLI-1.kql").is_file() and (out / "export" / "export.json").is_file()
    errors = ET.parse(out / "junit.xml").getroot().findall(".//error")
    assert [e.get("type") for e in errors] == ["E009"]


def test_export_leaves_out_an_unknown_technique_and_exports_the_rest(tmp_path: Path) -> None:
    src = catalog(tmp_path, "bomb")
    (src / "bad.yml").write_text(
        ANALYTIC.replace("id: CLI-1", "id: CLI-7").replace("T1059.001", "T1059.999")
    )
    res = invoke("export", str(src), "-t", "sigma", "-o", str(tmp_path / "rules"))
    assert res.exit_code == 2 and "error[E400]" in res.output
    summary = json.loads((tmp_path / "rules" / "export.json").read_text())
    assert summary["targets"]["sigma"]["exported"] == ["CLI-1"]


# ------------------------------------------------------------------ item 6
def test_junit_with_control_characters_in_a_test_name_is_valid_xml(tmp_path: Path) -> None:
    # YAML escapes put C0 controls (and the ones XML 1.0 forbids) into a fixture name
    src = tmp_path / "a.yml"
    src.write_text(
        ANALYTIC.replace("name: excel spawns powershell", 'name: "bell\\a esc\\e \\x01"')
    )
    junit = tmp_path / "j.xml"
    res = invoke("test", str(src), "--junit", str(junit))
    assert res.exit_code == 0, res.output
    names = [c.get("name") for c in ET.parse(junit).getroot().iter("testcase")]
    assert names[0] == "positive/synthetic: bell\\u0007 esc\\u001b \\u0001"


def test_presorted_out_of_order_names_the_file_and_record(tmp_path: Path) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_text(
        '{"@timestamp": "2024-01-01T00:00:02Z", "event.id": "a"}\n'
        '{"@timestamp": "2024-01-01T00:00:03Z", "event.id": "b"}\n'
        '{"@timestamp": "2024-01-01T00:00:01Z", "event.id": "c"}\n'
    )
    (tmp_path / "a.yml").write_text(ANALYTIC)
    res = invoke("run", str(tmp_path / "a.yml"), "-i", str(logs), "--presorted")
    assert res.exit_code == 2
    assert f"{logs}: record 3 is out of order" in res.output
    assert "earlier than record 2's (2024-01-01T00:00:03" in res.output
    assert "run without --presorted" in res.output
