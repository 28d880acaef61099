"""Engine caveats of the esql engine on other targets' differential catalogs."""

from __future__ import annotations

from tests.cross_caveats import Caveat

# Not a translation defect: the fixture breaks condition 4 of docs/semantics.md "Process
# identity", under which a sequence on one process keyed on process.entity_id is exact.
_BEFORE_START = (
    "a connection of the process listed before the process' own start at the same millisecond "
    "(docs/semantics.md, Process identity, condition 4: no event of a process comes before its "
    "start): ES|QL has no input order, so it pairs the start with that connection; a process "
    "cannot connect before it exists"
)

# (analytic id, fixture name) -> the caveat
CAVEATS: dict[tuple[str, str], Caveat] = {
    (
        "D-EQL-16",
        "exactly maxspan, 1 ms beyond, equal timestamps both orders, one alert per start",
    ): Caveat(
        _BEFORE_START + " (t8 before t9)",
        extra=("D-EQL-16 {host.name='h1', process.pid='23'} [1704067500000..1704067500000]",),
    ),
    ("D-SPL-Q1", "maxspan edges, ties both orders, consumption, PID reuse, a missing PID"): Caveat(
        _BEFORE_START + " (e1 before e2, so the pair ends at e1 rather than e3)",
        missing=("D-SPL-Q1 {host.name='h5', process.pid='500'} [1704067560000..1704067561000]",),
        extra=("D-SPL-Q1 {host.name='h5', process.pid='500'} [1704067560000..1704067560000]",),
    ),
}
