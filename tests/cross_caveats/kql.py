"""Engine caveats of the kql engine on other targets' differential catalogs.

Every one is a fixture event that the Sentinel tables (MDE, ASIM) cannot hold as written, so the
duckdb-kql harness (compiler/engines/run_kql.py) stores what an ingestion into those tables
would store, and the query answers for that data. The queries themselves are checked exact on
every fixture the tables can represent (tests/test_diff_kql.py and the rest of this matrix).

Process-identity cases rest on docs/semantics.md, "Process identity": on MDE a process is
DeviceId + ProcessId + creation time, and every connection row carries its initiating process'
id, creation time, image name, account and parent (the "DeviceNetworkEvents" table reference),
so "start -> connection of that process" reads the connection rows alone. A fixture that gives
one process two starts, two names or two users, a connection without the process' PID, or a
connection ordered before its own start at the same millisecond describes a process MDE cannot
record: the sensor writes one creation time and one set of process attributes per process, and a
process cannot connect before it is created.
"""

from __future__ import annotations

from tests.cross_caveats import Caveat

_SAME_MS = (
    "a connection listed before its own process' start at the same millisecond: MDE records "
    "the process' creation time on the connection row, and a process cannot connect before "
    "it is created, so the engine pairs the start with that connection"
)

# (analytic id, fixture name) -> the caveat
CAVEATS: dict[tuple[str, str], Caveat] = {
    (
        "D-EQL-16",
        "exactly maxspan, 1 ms beyond, equal timestamps both orders, one alert per start",
    ): Caveat(
        _SAME_MS + " (t8 before t9)",
        extra=("D-EQL-16 {host.name='h1', process.pid='23'} [1704067500000..1704067500000]",),
    ),
    ("D-SPL-Q1", "maxspan edges, ties both orders, consumption, PID reuse, a missing PID"): Caveat(
        _SAME_MS + " (e1 before e2, so the pair ends at e1 rather than e3); and h7's process "
        "has no PID at all: every MDE row carries InitiatingProcessId, the table stores null "
        "and the identity (DeviceId|pid|creation time) still names one process",
        missing=("D-SPL-Q1 {host.name='h5', process.pid='500'} [1704067560000..1704067561000]",),
        extra=(
            "D-SPL-Q1 {host.name='h5', process.pid='500'} [1704067560000..1704067560000]",
            "D-SPL-Q1 {host.name='h7', process.pid=None} [1704067680000..1704067681000]",
        ),
    ),
    (
        "D-ESQL-11",
        "1 ms beyond maxspan, connection before the start, reused PID without a start, "
        "missing PID, other host, not a shell",
    ): Caveat(
        "n4n is a connection of process f4 (PID 13) without a PID: every MDE connection row "
        "carries InitiatingProcessId, so the table holds the process' PID and the connection "
        "counts (docs/semantics.md, Process identity, condition 1)",
        extra=("D-ESQL-11 {host.name='h1', process.pid='13'} [1704067440000..1704067441000]",),
    ),
    ("D-ESQL-13", "history exactly one day before, and 1 ms before the start"): Caveat(
        "processes a and c start as sh / dash but connect as curl / wget: an MDE connection "
        "row carries the name of its initiating process' image (one per process), so the "
        "engine sees a curl and a wget start paired with their connections",
        extra=(
            "D-ESQL-13 {host.name='h1', process.pid='1'} [1704103200000..1704103200000]",
            "D-ESQL-13 {host.name='h1', process.pid='3'} [1704193199999..1704193199999]",
        ),
    ),
    ("D-SPL-J2", "edges, equal distances, ties, partners lacking or overwriting the user"): Caveat(
        "g5 starts as dave and connects as carol, and g6 has two starts (carol, then none): "
        "an MDE process has one creation and its connection rows carry its account "
        "(InitiatingProcessAccountName), so the engine's rows say carol for both",
        extra=(
            "D-SPL-J2 {(no key)} [1704067441000..1704067441000]",
            "D-SPL-J2 {(no key)} [1704067503000..1704067503000]",
        ),
    ),
    (
        "D-ESQL-12",
        "join at the start's timestamp and exactly one hour after, duplicate values, a flow "
        "without bytes, parent missing on the start",
    ): Caveat(
        "g1 is a flow carrying its own process.parent.name (cmd.exe): the ASIM NetworkSession "
        "schema has no parent-process column, so the flow row cannot hold it and the start "
        "(without a parent) gives none",
        missing=(
            "D-ESQL-12 {host.name='h2', process.entity_id='e2', process.parent.name='cmd.exe'} "
            "[1704067200000..1704070800000] {flows=1.0, median=5.0, out=5.0, p90=5.0}",
        ),
    ),
    ("D-ESQL-02", "networks, port bounds, numeric strings, missing fields"): Caveat(
        "n12's destination.port 1099.5 goes to the int column RemotePort: Kusto ingestion "
        "fills null for a floating point value in an int column (Azure Data Explorer, "
        '"Ingestion behavior of invalid data"), so the port test cannot hold',
        missing=("D-ESQL-02 {(no key)} [1704067212000..1704067212000]",),
    ),
    ("D-SPL-E05", "negation over present and missing fields"): Caveat(
        "z8 has process.parent.name '' (present and empty): Kusto strings are never null and "
        'the MDE tables store an absent string as "", so `exists` reads it as absent '
        "(backends/sentinel/empty.py; docs/targets.md, Exists)",
        missing=("D-SPL-E05 {(no key)} [1704067208000..1704067208000]",),
    ),
    # parent -> child on MDE reads the parent from the child's row (docs/semantics.md,
    # "Process identity": parent and child)
    ("DSIG-S1", "repeated first step, a second child, wrong order"): Caveat(
        "process G7 has two start events (s1-d1, s1-d2): MDE records one creation time per "
        "process, and a child's row carries it, so the engine pairs the child with the "
        "process' first start",
        missing=(
            "DSIG-S1 {host.name='ws1', process.entity_id='G7'} [1704074410000..1704074420000]",
        ),
        extra=("DSIG-S1 {host.name='ws1', process.entity_id='G7'} [1704074400000..1704074420000]",),
    ),
    ("DSIG-S1", "host name differing only by case, missing parent id"): Caveat(
        "process G12 starts on host WS4 and its child on ws4: MDE writes one DeviceName per "
        "device, and a child's row names its parent on the child's device, so the engine sees "
        "the pair on ws4",
        extra=(
            "DSIG-S1 {host.name='ws4', process.entity_id='G12'} [1704078000000..1704078005000]",
        ),
    ),
    (
        "D-ESQL-64",
        "child connects at the spawn's millisecond, exactly at maxspan, the earliest of two, "
        "the start's parent wins",
    ): Caveat(
        "n3 names another parent than its process' start c3: an MDE connection row carries "
        "its initiating process' parent (one per process, docs/semantics.md, Process "
        "identity, condition 4), so the table holds c3's parent and the row alone decides",
        missing=(
            "D-ESQL-64 {host.name='h2', process.entity_id='e3'} [1704068400000..1704068410000]",
        ),
    ),
    (
        "D-ESQL-64",
        "1 ms beyond maxspan, no start to join, the shell's own connection, a grandchild, the "
        "start's parent overrides, other host",
    ): Caveat(
        "m4 names the shell f4 as parent where its process' start d4 names another: an MDE "
        "connection row carries its initiating process' parent (condition 4), so the table "
        "holds d4's parent and the row alone decides",
        extra=(
            "D-ESQL-64 {host.name='h1', process.entity_id='f4'} [1704069000000..1704069002000]",
        ),
    ),
    ("D-DDB-07", "multi-valued history and candidates"): Caveat(
        "h1, c2, c3, c4 and c5 carry lists in source.ip or destination.domain: the ASIM "
        "NetworkSession columns SrcIpAddr and DstFQDN are strings, one value per row, so the "
        "engine stores each list as its JSON text, which equals no other value (c1, c4 and c5 "
        "find no history)",
        extra=(
            "D-DDB-07 {(no key)} [1704067800000..1704067800000]",
            "D-DDB-07 {(no key)} [1704067980000..1704067980000]",
            "D-DDB-07 {(no key)} [1704068040000..1704068040000]",
        ),
    ),
}
