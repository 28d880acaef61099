"""`siemc import sigma` on the command line: outputs, report, exit codes (docs/diagnostics.md)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from compiler.cli import main
from compiler.lower import load_file
from tests.import_support import rule

GOOD = rule("sel: {Image|endswith: '\\\\cmd.exe'}\ncondition: sel")
KEYWORD = rule("keywords: [evil]\ncondition: keywords").replace("000000000001", "000000000002")


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["import", "sigma", *args])
    return r.exit_code, r.stdout, r.stderr


def test_imports_and_reports(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.yml").write_text(GOOD)
    code, out, _ = invoke(str(tmp_path / "in"), "--out", str(tmp_path / "out"))
    assert code == 0, out
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["import.json", "test_rule-5f0e1a9c.yml"]
    loaded = load_file(tmp_path / "out" / "test_rule-5f0e1a9c.yml")
    assert loaded.analytic.id == "5f0e1a9c-0000-4000-8000-000000000001"
    report = json.loads((tmp_path / "out" / "import.json").read_text())
    assert report["imported"] == [
        {
            "rule": "a.yml",
            "id": "5f0e1a9c-0000-4000-8000-000000000001",
            "analytic": "test_rule-5f0e1a9c.yml",
        }
    ]


def test_some_refused_exits_1_with_positioned_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.yml").write_text(GOOD)
    (tmp_path / "in" / "b.yml").write_text(KEYWORD)
    code, _, err = invoke(str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert code == 1
    assert f"{tmp_path / 'in' / 'b.yml'}:8:3: error[E500]: cannot import: a keyword search" in err
    report = json.loads((tmp_path / "out" / "import.json").read_text())
    assert report["refusals_by_construct"] == {"keyword": 1}
    assert report["refused"][0]["at"] == "b.yml:8:3"


def test_invalid_input_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("title: x\ndetection: [\n")
    code, _, err = invoke(str(tmp_path / "bad.yml"), "-o", str(tmp_path / "out"))
    assert code == 2 and "error[E001]" in err
    (tmp_path / "bad.yml").write_text("title: x\nlogsource: {product: windows}\n")
    code, _, err = invoke(str(tmp_path / "bad.yml"), "-o", str(tmp_path / "out"))
    assert code == 2 and "error[E501]" in err


def test_usage_errors_exit_64(tmp_path: Path) -> None:
    code, _, err = invoke(str(tmp_path / "none"), "-o", str(tmp_path / "out"))
    assert code == 64 and "no such file or folder" in err
    (tmp_path / "empty").mkdir()
    code, _, err = invoke(str(tmp_path / "empty"), "-o", str(tmp_path / "out"))
    assert code == 64 and "no Sigma rule files" in err
    assert not (tmp_path / "out").exists()


def test_unwritable_output_exits_73(tmp_path: Path) -> None:
    # a file where the output's parent folder should be: no user, root included, can write there
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "file").write_text("x")
    code, _, err = invoke(str(tmp_path / "a.yml"), "-o", str(tmp_path / "file" / "out"))
    assert code == 73 and "error:" in err


def test_foreign_folder_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(GOOD)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    code, _, _ = invoke(str(tmp_path / "a.yml"), "-o", str(tmp_path / "out"))
    assert code == 73
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep"
