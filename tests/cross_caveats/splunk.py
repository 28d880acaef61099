"""Engine caveats of the splunk engine on other targets' differential catalogs."""

from __future__ import annotations

from tests.cross_caveats import Caveat

# (analytic id, fixture name) -> the caveat
CAVEATS: dict[tuple[str, str], Caveat] = {
    ("D-EQL-68", "a lookup, an event that is both, a connection"): Caveat(
        "o2 is a DNS query and a connection in one ECS event; the Splunk sources are one "
        "record per action (Sysmon EventCode 22 and 3, CIM Network_Resolution and "
        "Network_Traffic), so the query takes the two categories as disjoint (its NOTE says "
        "so) and o2 reaches it as two rows, one per search, as Elasticsearch offers it to both "
        "steps",
        extra=("D-EQL-68 {host.name='h1'} [1704067210000..1704067220000]",),
    ),
}
