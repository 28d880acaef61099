"""Lowering resolves names, defaults and shorthands into the IR."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler import ir
from compiler.diagnostics import DiagnosticError
from compiler.lower import load_text

HEAD = """\
id: L-1
title: t
description: d
attack: {techniques: [T1567.002]}
platforms: [windows]
severity: high
"""


def load(body: str, path: str = "a.yml") -> ir.Analytic:
    return load_text(path, HEAD + textwrap.dedent(body)).analytic


def codes(body: str) -> list[str]:
    with pytest.raises(DiagnosticError) as info:
        load(body)
    return [d.code for d in info.value.diagnostics]


def test_threshold_shorthand_is_a_sliding_aggregate() -> None:
    a = load(
        """\
        streams:
          net: {logsource: {category: network_connection}}
        detect:
          threshold: {stream: net, by: [host.name], window: 5m,
                      distinct: {field: destination.ip, gte: 10}}
        """
    )
    d = a.detection
    assert isinstance(d, ir.Aggregate)
    assert d.window == ir.Window("sliding", 300_000)
    assert d.origin == "value_count"
    assert d.measures == (ir.Measure("value_count", "distinct", "destination.ip"),)
    assert d.having == ir.BinOp(">=", ir.MeasureRef("value_count"), ir.Literal_(10))


def test_sequence_defaults_keys_and_aliases() -> None:
    a = load(
        """\
        streams:
          dns: {logsource: {category: dns_query}}
          net: {logsource: {category: network_connection}}
        detect:
          sequence:
            by: [host.name, destination.ip]
            maxspan: 2m
            steps:
              - {stream: dns, by: [host.name, dns.resolved_ip]}
              - {stream: net}
            until: {stream: dns, as: again}
        """
    )
    d = a.detection
    assert isinstance(d, ir.Sequence)
    assert [(s.alias, s.keys) for s in d.steps] == [
        ("dns", ("host.name", "dns.resolved_ip")),
        ("net", ("host.name", "destination.ip")),
    ]
    assert d.until == ir.Step("again", "dns", ("host.name", "destination.ip"))
    assert d.maxspan_ms == 120_000


def test_mismatched_key_counts_and_duplicate_aliases() -> None:
    assert codes(
        """\
        streams:
          net: {logsource: {category: network_connection}}
        detect:
          sequence:
            maxspan: 2m
            steps: [{stream: net, by: [a]}, {stream: net, by: [a, b]}]
        """
    ) == ["E102", "E122"]


def test_filter_modifiers_lower_to_predicates() -> None:
    a = load(
        """\
        streams:
          p:
            logsource: {category: process_creation}
            where:
              process.command_line|contains|all: [-enc, hidden]
              process.name|cased: PowerShell.exe
              source.bytes|gte: 10MB
              event.duration|lt: 5m
              destination.ip|cidr: [10.0.0.0/8, "fd00::/8"]
              user.name|exists: false
              any:
                - process.executable|re: '^C:\\\\Users\\\\'
                - not: {process.parent.name|endswith: [.exe]}
        detect: {match: p}
        """
    )
    f = a.streams[0].filter
    assert isinstance(f, ir.And)
    items = f.items
    assert items[0] == ir.StrMatch(
        "process.command_line", "contains", ("-enc", "hidden"), False, "all"
    )
    assert items[1] == ir.Eq("process.name", ("PowerShell.exe",), True)
    assert items[2] == ir.Compare("source.bytes", "gte", 10_000_000.0)
    assert items[3] == ir.Compare("event.duration", "lt", 300_000.0)
    assert items[4] == ir.Cidr("destination.ip", ("10.0.0.0/8", "fd00::/8"))
    assert items[5] == ir.Exists("user.name", False)
    assert items[6] == ir.Or(
        (
            ir.Regex("process.executable", ("^C:\\\\Users\\\\",)),
            ir.Not(ir.StrMatch("process.parent.name", "endswith", (".exe",))),
        )
    )


def test_expression_precedence_units_and_functions() -> None:
    a = load(
        """\
        streams:
          f:
            logsource: {category: network_flow}
            derive:
              dns.resolved_ip: extract_ips(winlog.event_data.QueryResults)
        detect:
          aggregate:
            stream: f
            window: {kind: tumbling, size: 1h}
            by: [host.name]
            measures: {o: {sum: source.bytes}, i: {sum: destination.bytes}}
            compute: {ratio: "o / max(i, 1) * 2"}
            having: ratio >= 10 and o > 10MB or not i == 0
        """
    )
    name, e = a.streams[0].derive[0]
    assert name == "dns.resolved_ip"
    assert e == ir.Call("extract_ips", (ir.FieldRef("winlog.event_data.QueryResults"),))
    d = a.detection
    assert isinstance(d, ir.Aggregate)
    o, i = ir.MeasureRef("o"), ir.MeasureRef("i")
    assert d.compute[0][1] == ir.BinOp(
        "*", ir.BinOp("/", o, ir.Call("max", (i, ir.Literal_(1)))), ir.Literal_(2)
    )
    ratio = ir.MeasureRef("ratio")
    assert d.having == ir.BinOp(
        "or",
        ir.BinOp(
            "and",
            ir.BinOp(">=", ratio, ir.Literal_(10)),
            ir.BinOp(">", o, ir.Literal_(10_000_000)),
        ),
        ir.UnaryOp("not", ir.BinOp("==", i, ir.Literal_(0))),
    )


def test_compute_cannot_read_fields_or_later_values() -> None:
    assert codes(
        """\
        streams:
          f: {logsource: {category: network_flow}}
        detect:
          aggregate:
            stream: f
            window: {kind: tumbling, size: 1h}
            measures: {o: {sum: source.bytes}}
            compute: {a: b + 1, b: source.bytes}
        """
    ) == ["E132", "E132"]


def test_lookups_enrich_and_filter(tmp_path: Path) -> None:
    (tmp_path / "inv.csv").write_text("host,role\nweb01,web\n")
    (tmp_path / "ok.csv").write_text("role,domain\nweb,slack.com\n")
    text = HEAD + textwrap.dedent(
        """\
        lookups:
          inv: {file: inv.csv}
          ok: {file: ok.csv}
        streams:
          net:
            logsource: {category: network_connection}
            enrich: [{lookup: inv, match: {host: host.name}, add: {role: labels.role}}]
            where:
              not: {lookup: {name: ok, match: {role: labels.role, domain: destination.domain}}}
        detect:
          aggregate:
            stream: net
            window: {kind: tumbling, size: 1h}
            by: [labels.role]
            measures: {n: {count: true}}
        """
    )
    a = load_text(str(tmp_path / "a.yml"), text).analytic
    assert a.lookup("inv").rows == (("web01", "web"),)
    s = a.streams[0]
    assert s.enrich == (ir.Enrich("inv", (("host", "host.name"),), (("role", "labels.role"),)),)
    assert s.filter == ir.Not(
        ir.InLookup("ok", (("role", "labels.role"), ("domain", "destination.domain")))
    )


def test_lookup_csv_with_a_byte_order_mark_keeps_its_first_column(tmp_path: Path) -> None:
    # Excel's "CSV UTF-8" and PowerShell's Export-Csv write a BOM before the header.
    (tmp_path / "inv.csv").write_bytes(b"\xef\xbb\xbfhost,role\r\nweb01,web\r\n")
    text = HEAD + textwrap.dedent(
        """\
        lookups:
          inv: {file: inv.csv}
        streams:
          net:
            logsource: {category: network_connection}
            where: {lookup: {name: inv, match: {host: host.name}}}
        detect: {match: net}
        """
    )
    lk = load_text(str(tmp_path / "a.yml"), text).analytic.lookup("inv")
    assert lk.columns == ("host", "role")
    assert lk.rows == (("web01", "web"),)


def test_missing_lookup_file_is_positioned(tmp_path: Path) -> None:
    text = HEAD + "lookups:\n  inv: {file: nope.csv}\nstreams:\n  n: {logsource: {product: zeek}}\n"
    with pytest.raises(DiagnosticError) as info:
        load_text(str(tmp_path / "a.yml"), text + "detect: {match: n}\n")
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.col) == ("E003", 8, 15)


def test_streams_are_topologically_ordered_and_cycles_rejected() -> None:
    a = load(
        """\
        streams:
          joined: {from: flow, join: {stream: conn, on: [source.ip], within: 1d}}
          flow: {logsource: {product: zeek, service: conn}}
          conn: {logsource: {category: network_connection}}
        detect: {match: joined}
        """
    )
    assert [s.name for s in a.streams] == ["flow", "conn", "joined"]
    j = a.stream("joined").join
    assert j == ir.Join("conn", ("source.ip",), 86_400_000, "around", ())
    assert "E141" in codes(
        """\
        streams:
          a: {from: b}
          b: {from: a}
        detect: {match: a}
        """
    )


def test_baselines_lower() -> None:
    a = load(
        """\
        streams:
          net: {logsource: {category: network_connection}}
        detect:
          aggregate:
            stream: net
            window: {kind: tumbling, size: 1h}
            by: [host.name, process.name]
            measures: {out: {sum: source.bytes}}
        baseline:
          - first_seen: {stream: net, keys: [host.name, process.name], lookback: 14d}
          - rarity: {stream: net, keys: [process.name], across: days, max: 3, lookback: 30d}
          - deviation: {measure: out, lookback: 7d, percentile: 99, min_history: 24}
        """
    )
    fs, rare, dev = a.baselines
    assert fs == ir.FirstSeen(
        "net", ("host.name", "process.name"), ("host.name", "process.name"), 14 * 86_400_000
    )
    assert isinstance(rare, ir.Rarity) and rare.across == "@days" and rare.max == 3
    assert dev == ir.Deviation("out", 7 * 86_400_000, None, 99.0, 24)


def test_baseline_keys_must_be_carried_by_alerts() -> None:
    assert codes(
        """\
        streams:
          net: {logsource: {category: network_connection}}
        detect:
          aggregate:
            stream: net
            window: {kind: tumbling, size: 1h}
            by: [host.name]
            measures: {out: {sum: source.bytes}}
        baseline:
          - first_seen: {stream: net, keys: [process.name], lookback: 14d}
          - deviation: {measure: out, lookback: 2h, k: 3}
        """
    ) == ["E142", "E140"]


def test_fixture_expectations_reference_known_measures() -> None:
    assert codes(
        """\
        streams:
          net: {logsource: {category: network_connection}}
        detect:
          threshold: {stream: net, window: 5m, count: {gte: 2}}
        tests:
          - name: x
            kind: positive
            events: [{"@timestamp": "2024-01-01T00:00:00Z"}]
            expect: [{measures: {count: 2}}]
        """
    ) == ["E132"]


def test_baseline_candidate_fields_of_a_sequence_are_checked() -> None:
    body = """\
        streams:
          ps: {logsource: {category: process_creation}}
          net: {logsource: {category: network_connection}}
        detect:
          sequence:
            by: [host.name]
            maxspan: 2m
            steps: [{stream: ps}, {stream: net}]
        baseline:
          - first_seen: {stream: net, keys: [destination.ip], as: [AS], lookback: 14d}
        """
    assert load(body.replace("AS", "net.destination.ip")).baselines
    assert load(body.replace("AS", "host.name")).baselines
    with pytest.raises(DiagnosticError) as info:
        load(body.replace("AS", "nett.destination.ip"))
    d = info.value.diagnostics[0]
    assert (d.code, d.line) == ("E142", 16)
    assert "steps: ps, net" in (d.help or "")


def test_unknown_logsource_category() -> None:
    with pytest.raises(DiagnosticError) as info:
        load("streams:\n  d: {logsource: {category: dns_queries}}\ndetect: {match: d}\n")
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.col) == ("E103", 8, 29)
    assert "did you mean 'dns_query'?" in (d.help or "")


def test_broken_lookup_file_is_reported_once(tmp_path: Path) -> None:
    text = HEAD + textwrap.dedent(
        """\
        lookups:
          ok: {file: missing.csv}
        streams:
          n:
            logsource: {category: network_connection}
            where: {not: {lookup: {name: ok, match: {domain: destination.domain}}}}
        detect: {match: n}
        """
    )
    with pytest.raises(DiagnosticError) as info:
        load_text(str(tmp_path / "a.yml"), text)
    assert [d.code for d in info.value.diagnostics] == ["E003"]
    assert str(tmp_path / "missing.csv") in info.value.diagnostics[0].message


def test_missing_fixture_file_is_a_load_error(tmp_path: Path) -> None:
    text = HEAD + textwrap.dedent(
        """\
        streams:
          n: {logsource: {category: network_connection}}
        detect: {match: n}
        tests:
          - name: x
            kind: negative
            inputs: [{file: fixtures/nope.jsonl}]
        """
    )
    with pytest.raises(DiagnosticError) as info:
        load_text(str(tmp_path / "a.yml"), text)
    d = info.value.diagnostics[0]
    assert (d.code, d.line, d.col) == ("E160", 13, 21)
