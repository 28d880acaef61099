"""A lookup whose CSV repeats a match key, on KQL (backends/sentinel/streams.py): the watchlist
carries the CSV row number and the query keeps the first row of each key, as the evaluator does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.base import Artifact
from backends.sentinel.streams import ROW, with_row_numbers
from compiler import canonical
from compiler.build import compile_pair
from compiler.discover import load_catalog
from compiler.engines import run_kql
from compiler.export import sentinel
from compiler.export.common import Request
from compiler.lower import Loaded
from tests.ci_support import skip_unless_ci
from tests.differential_support import evaluator_alerts

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = "the first row of a repeated key, in either case, and an empty first cell"


def _lk1() -> Loaded:
    cat = load_catalog([ROOT / "tests" / "differential" / "kql" / "lk_01_repeated_key.yml"])
    (loaded,) = cat.loaded
    return loaded


def test_the_watchlist_carries_the_csv_row_number() -> None:
    (lk,) = _lk1().analytic.lookups
    wl = with_row_numbers(lk)
    assert wl.columns == ("host", "role", ROW)
    assert [r[2] for r in wl.rows] == ["1", "2", "3", "4", "5", "6"]
    assert wl.rows[4] == ("app1", "", "5")


def test_the_export_writes_the_row_number_column() -> None:
    pkg = sentinel.package(Request((_lk1(),), True, None))
    assert pkg.exported == ["D-KQL-LK1"], pkg.skipped
    text = pkg.files["Watchlists/roles/roles.csv"]
    assert text.splitlines()[:3] == ["host,role,siemc_row", "web1,web,1", "WEB1,db,2"]
    arm = json.loads(pkg.files["Watchlists/roles/watchlist.json"])["resources"][0]["properties"]
    assert arm["rawContent"] == text and arm["itemsSearchKey"] == "host"


@pytest.mark.parametrize("profile", ["mde", "asim"])
def test_the_first_row_is_exact_and_take_any_is_caught(profile: str) -> None:
    """The engine stores watchlist rows against the CSV's order (a watchlist has none): the
    first row per key by its number is the evaluator's, any row (the former take_any) is not."""
    try:
        run_kql._require()
    except run_kql.EngineUnavailable as exc:
        skip_unless_ci(str(exc))
    loaded = _lk1()
    (fx,) = loaded.fixtures
    assert fx.name == FIXTURE
    art = compile_pair(loaded, "kql", profile=profile, allow_approximate=False).artifact
    assert art is not None and not art.approximations
    want = evaluator_alerts(loaded, fx)
    assert canonical.diff(want, run_kql.run(loaded, fx, art)).equal
    first = "| summarize arg_min(__lk_row, *) by __lk0"
    assert first in art.query
    anyrow = Artifact(
        **{
            **art.__dict__,
            "query": art.query.replace(first, "| summarize __e_role = take_any(__e_role) by __lk0"),
        }
    )
    d = canonical.diff(want, run_kql.run(loaded, fx, anyrow))
    # any row: web1/WEB1 and db1 take their last rows (db, web) and app1 its second (web)
    window = "[1704067200000..1704067800000]"
    assert [a.describe() for a in d.missing] == [
        f"D-KQL-LK1 {{labels.host_role='db'}} {window} {{starts=1.0}}"
    ], d.render()
    assert [a.describe() for a in d.extra] == [
        f"D-KQL-LK1 {{labels.host_role='db'}} {window} {{starts=2.0}}"
    ], d.render()


def test_no_lookup_column_can_take_the_row_numbers_name(tmp_path: Path) -> None:
    """Lookup columns named siemc_* are reserved (E128): the watchlist's row number column
    never meets a CSV column of its name."""
    src = (ROOT / "tests" / "differential" / "kql" / "lk_01_repeated_key.yml").read_text()
    (tmp_path / "a.yml").write_text(src.replace("lookups/lk_roles.csv", "roles.csv"))
    (tmp_path / "roles.csv").write_text(f"host,role,{ROW}\nweb1,web,x\nweb1,db,y\n")
    cat = load_catalog([tmp_path])
    assert not cat.loaded
    assert [d.code for d in cat.diagnostics] == ["E128"], cat.diagnostics
