"""Engine caveats of the eql engine on other targets' differential catalogs.

The wording is that of tests/test_diff_eql.py, which records the same differences on the eql
catalog (D-EQL-02, D-EQL-08, D-EQL-09); compiler/engines/run_eql.py explains why the harness
cannot undo them."""

from __future__ import annotations

from tests.cross_caveats import Caveat

T0 = 1704067200000  # 2024-01-01T00:00:00Z, the differential fixtures' epoch

_CASE = (
    "eql engine caveat: the Python engine compares every string and `by` key "
    "case-insensitively; Elasticsearch compares ==, like and keyword keys exactly"
)
_PARENT = (
    _CASE + ": `process.parent.name == \"Explorer.EXE\"` (|cased) accepts 'explorer.exe' in "
    "the engine only"
)

# (analytic id, fixture name) -> the caveat
CAVEATS: dict[tuple[str, str], Caveat] = {
    (
        "D-ESQL-01",
        "case, wildcard characters as literals, the pid boundary, a missing user, a cased parent",
    ): Caveat(_PARENT, extra=(f"D-ESQL-01 {{(no key)}} [{T0 + 4000}..{T0 + 4000}]",)),
    ("D-KQL-01", "case, the pid boundary, a missing user and a cased parent"): Caveat(
        _PARENT, extra=(f"D-KQL-01 {{(no key)}} [{T0 + 4000}..{T0 + 4000}]",)
    ),
    ("D-SPL-K01", "case, the pid boundary, a missing user and a cased parent"): Caveat(
        _PARENT, extra=(f"D-SPL-K01 {{(no key)}} [{T0 + 4000}..{T0 + 4000}]",)
    ),
    ("DSIG-M1", "each operator, case variants, wildcard characters, missing fields"): Caveat(
        _CASE + ': `process.executable like "*\\\\Temp\\\\X.EXE"` (|cased) accepts '
        "'C:\\Users\\a\\Temp\\x.exe' in the engine only",
        extra=(f"DSIG-M1 {{(no key)}} [{T0 + 10000}..{T0 + 10000}]",),
    ),
    ("DSIG-S1", "host name differing only by case, missing parent id"): Caveat(
        _CASE + ": the `by host.name` key joins 'WS4' with 'ws4' in the engine only",
        extra=(
            "DSIG-S1 {host.name='WS4', process.entity_id='G12'} "
            f"[{T0 + 10800000}..{T0 + 10805000}]",
        ),
    ),
    (
        "D-KQL-62A",
        "states in both cases, empty and set tunnel parents, no byte counts, high port, other logs",
    ): Caveat(
        _CASE + ': `zeek.conn.conn_state in ("S0", "REJ")` (|cased) accepts \'s0\' in the '
        "engine only",
        extra=(f"D-KQL-62A {{(no key)}} [{T0 + 2000}..{T0 + 2000}]",),
    ),
    (
        "D-KQL-62C",
        "SNI in another case, no SNI, another port, an old version, a conn record, IPv6",
    ): Caveat(
        _CASE + ': `zeek.ssl.version in ("TLSv12", "TLSv13")` (|cased) accepts \'tlsv12\' in '
        "the engine only",
        extra=(f"D-KQL-62C {{(no key)}} [{T0 + 5000}..{T0 + 5000}]",),
    ),
    ("D-SPL-E02", "values differing from the pattern by case only"): Caveat(
        _CASE,
        extra=(
            f"D-SPL-E02 {{(no key)}} [{T0 + 1000}..{T0 + 1000}]",
            f"D-SPL-E02 {{(no key)}} [{T0 + 2000}..{T0 + 2000}]",
        ),
    ),
    ("D-SPL-E08", "keys that differ by case only"): Caveat(
        _CASE, extra=(f"D-SPL-E08 {{host.name='WEB01'}} [{T0}..{T0 + 1000}]",)
    ),
    (
        "D-KQL-CNT1",
        "maxspan inclusive, 1 ms past it, case-distinct hosts, keyless failures",
    ): Caveat(
        _CASE + ": the `by host.name` key joins 'DC4' with 'dc4' in the engine only",
        extra=(
            f"D-KQL-CNT1 {{host.name='DC4', source.ip='10.0.0.1'}} [{T0 + 400000}..{T0 + 403000}]",
        ),
    ),
    ("D-SPL-E09", "keys per position, a different user, within 1.2 s"): Caveat(
        "eql engine caveat: maxspan is converted to whole seconds (1500ms acts as 1s), so "
        "the 1.2 s sequence on h2 expires in the engine; Elasticsearch keeps milliseconds",
        missing=(f"D-SPL-E09 {{host.name='h2', user.name='carol'}} [{T0 + 60000}..{T0 + 61200}]",),
    ),
}
