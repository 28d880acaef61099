"""Analytics are read with YAML 1.2 core-schema scalars, and values used as text keep their
source spelling (compiler.source)."""

from __future__ import annotations

import math
import textwrap
from typing import Any

import pytest

from compiler import ir
from compiler.diagnostics import DiagnosticError
from compiler.evaluator.predicates import compile_predicate
from compiler.lower import load_text
from compiler.source import load_yaml


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML 1.1 (PyYAML's resolver) would read 0777 as octal 511 and 4:20 as 260
        ("0777", 777),
        ("4:20", "4:20"),
        ("1:30:00", "1:30:00"),
        ("0o777", 511),
        ("0x1F", 31),
        ("1e3", 1000.0),
        ("+5", 5),
        ("-2.5", -2.5),
        (".5", 0.5),
        ("1_000", "1_000"),  # no underscores in 1.2 numbers
        ("0b101", "0b101"),  # no binary in the core schema
        # only true/false are booleans
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("null", None),
        ("~", None),
        ("", None),
        ("2024-07-01", "2024-07-01"),  # no timestamp type
        ("2024-07-01T10:00:00Z", "2024-07-01T10:00:00Z"),
    ],
)
def test_plain_scalars_resolve_by_the_yaml_1_2_core_schema(text: str, expected: Any) -> None:
    value = load_yaml("a.yml", f"v: {text}\n").data["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_non_finite_and_quoted_and_tagged_scalars() -> None:
    data = load_yaml(
        "a.yml", "a: .inf\nb: -.Inf\nc: .NaN\nd: '0777'\ne: \"4:20\"\nf: !!str 0777\ng: |\n  0777\n"
    ).data
    assert data["a"] == math.inf and data["b"] == -math.inf and math.isnan(data["c"])
    assert data["d"] == "0777" and data["e"] == "4:20" and data["f"] == "0777"
    assert data["g"] == "0777\n"


def test_the_source_text_of_numbers_spelled_otherwise_is_kept() -> None:
    doc = load_yaml("a.yml", "a: 0777\nb: [443, 1e3, 1.50, 2.5, -7, 0x1F]\nc: 'x'\n")
    assert doc.written == {
        ("a",): "0777",
        ("b", 1): "1e3",
        ("b", 2): "1.50",
        ("b", 5): "0x1F",
    }
    assert doc.as_written(("a",), 777) == "0777"
    assert doc.as_written(("b", 0), 443) == 443  # canonical spellings stay numbers


def test_positions_are_kept_for_core_schema_scalars() -> None:
    doc = load_yaml("a.yml", "x:\n  y: [0777, yes, 4:20]\n")
    assert [(doc.pos(("x", "y", i)).line, doc.pos(("x", "y", i)).col) for i in range(3)] == [
        (2, 7),
        (2, 13),
        (2, 18),
    ]
    assert doc.pos(("x", "y", 0)).length == 4


HEAD = """\
id: L-1
title: t
description: d
attack: {techniques: [T1222.002]}
platforms: [linux]
severity: high
"""


def analytic(body: str) -> ir.Analytic:
    return load_text("a.yml", HEAD + textwrap.dedent(body)).analytic


def test_chmod_0777_filter_matches_the_text_as_written() -> None:
    a = analytic(
        """\
        streams:
          p:
            logsource: {category: process_creation}
            where:
              process.args: 0777
              process.command_line|contains: [chmod 0777, 1e3]
              process.title|endswith: 4:20
        detect: {match: p}
        """
    )
    f = a.streams[0].filter
    assert isinstance(f, ir.And)
    assert f.items[0] == ir.Eq("process.args", ("0777",))
    assert isinstance(f.items[1], ir.StrMatch) and f.items[1].values == ("chmod 0777", "1e3")
    assert isinstance(f.items[2], ir.StrMatch) and f.items[2].values == ("4:20",)
    holds = compile_predicate(f, {})
    event = {
        "process.args": ["chmod", "0777", "/tmp/x"],
        "process.command_line": "chmod 0777 /tmp/x; sleep 1e3",
        "process.title": "at 4:20",
    }
    assert holds(event)
    # equality still reads the value as a number: "0777" == 777 == "777.0"
    assert holds({**event, "process.args": 777})
    assert holds({**event, "process.args": "777.0"})
    assert not holds({**event, "process.args": "511"})  # the YAML 1.1 reading of 0777
    assert not holds({**event, "process.command_line": "chmod 511 /tmp/x; sleep 1000.0"})


def test_numeric_thresholds_and_units_still_read_numbers() -> None:
    a = analytic(
        """\
        streams:
          n:
            logsource: {category: network_connection}
            where: {destination.bytes|gte: 0o20, destination.port|lt: 1e3}
        detect:
          threshold: {stream: n, by: [host.name], window: 5m, count: {gte: 010}}
        """
    )
    f = a.streams[0].filter
    assert isinstance(f, ir.And)
    assert f.items[0] == ir.Compare("destination.bytes", "gte", 16.0)
    assert f.items[1] == ir.Compare("destination.port", "lt", 1000.0)
    det = a.detection
    assert isinstance(det, ir.Aggregate)
    assert det.having == ir.BinOp(">=", ir.MeasureRef("event_count"), ir.Literal_(10))


def test_fixture_keys_and_inline_events_keep_their_text() -> None:
    loaded = load_text(
        "a.yml",
        HEAD
        + textwrap.dedent(
            """\
            streams:
              p: {logsource: {category: process_creation}}
            detect:
              aggregate:
                stream: p
                window: {kind: tumbling, size: 1h}
                by: [process.args]
                measures: {n: {count: true}}
            tests:
              - name: mode
                kind: positive
                events:
                  - {"@timestamp": 2024-07-01T10:00:00Z, event.category: process,
                     event.type: start, process.args: 0777, process.pid: 0042}
                expect:
                  - key: {process.args: 0777}
                    measures: {n: 1e0}
            """
        ),
    )
    fx = loaded.fixtures[0]
    assert fx.events[0]["process.args"] == "0777"
    assert fx.events[0]["process.pid"] == "0042"
    assert fx.events[0]["@timestamp"] == "2024-07-01T10:00:00Z"
    assert fx.expect[0].key == (("process.args", "0777"),)
    assert fx.expect[0].measures == (("n", "==", 1.0),)


def test_yaml_errors_stay_positioned() -> None:
    with pytest.raises(DiagnosticError) as info:
        load_yaml("a.yml", "a: 0777\nb: [1, 2\n")
    d = info.value.diagnostics[0]
    assert (d.code, d.line) == ("E001", 3)
