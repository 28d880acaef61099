"""Every differential catalog on every engine: a translation claimed exact must equal the
evaluator on fixtures written for other targets too (each target's own catalog has its own
test_diff_<target>.py), and an approximation must err only in its declared direction.

The check is compiler.engine_check's, as `siemc test --engines` runs it: "failed" means an exact
pair differs, a superset misses an alert or a subset adds one. A case may differ only as listed
in tests/cross_caveats/<target>.py: a documented difference of the *engine* from the SIEM it
stands for (not of the translation), with the exact alerts it changes. A listed caveat that no
longer happens fails too, so the table cannot go stale.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from compiler.discover import load_catalog
from compiler.engine_check import EngineResult, check_fixture
from compiler.lower import Loaded
from tests.cross_caveats import Caveat, eql, esql, kql, sigma, splunk
from tests.differential_support import events_or_skip, find_fixture

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ROOT / "tests" / "differential"
TARGETS = ("splunk", "eql", "esql", "kql", "sigma")


CAVEATS: dict[tuple[str, str, str], Caveat] = {
    (target, aid, fixture): c
    for target, module in (
        ("eql", eql),
        ("esql", esql),
        ("kql", kql),
        ("sigma", sigma),
        ("splunk", splunk),
    )
    for (aid, fixture), c in module.CAVEATS.items()
}


@cache
def _catalog(folder: str) -> tuple[Loaded, ...]:
    return tuple(load_catalog([CATALOGS / folder]).loaded)


def _cases() -> list[tuple[str, str, str, str]]:
    out = []
    for target in TARGETS:
        for folder in sorted(p.name for p in CATALOGS.iterdir() if p.is_dir()):
            if folder == target:
                continue  # tests/test_diff_<target>.py covers its own catalog
            for lo in _catalog(folder):
                out += [(target, folder, lo.analytic.id, fx.name) for fx in lo.fixtures]
    return out


def _run(target: str, folder: str, aid: str, fixture: str) -> EngineResult:
    loaded, fx = find_fixture(_catalog(folder), aid, fixture)
    events_or_skip(loaded, fx)
    (res,) = check_fixture(loaded, fx, [target])
    return res


@pytest.mark.parametrize(
    ("target", "folder", "aid", "fixture"), _cases(), ids=lambda v: str(v)[:40]
)
def test_other_targets_fixtures_agree_with_the_declared_fidelity(
    target: str, folder: str, aid: str, fixture: str
) -> None:
    res = _run(target, folder, aid, fixture)
    caveat = CAVEATS.get((target, aid, fixture))
    if caveat is None:
        assert res.status not in ("failed", "error"), (
            f"{target} on {aid} / {fixture}: {res.message}\n{res.detail}\n{res.query}"
        )
        return
    missing = tuple(a.describe() for a in res.expected if a not in res.actual)
    extra = tuple(a.describe() for a in res.actual if a not in res.expected)
    assert (missing, extra) == (caveat.missing, caveat.extra), (
        f"{target} on {aid} / {fixture}: the engine caveat changed\n{res.detail}"
    )


def test_caveats_name_existing_cases() -> None:
    cases = {(t, a, f) for t, _, a, f in _cases()}
    assert set(CAVEATS) <= cases
