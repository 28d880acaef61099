"""``siemc run`` pushes the analytics down into reading ECS JSON Lines: a sieve on the raw line
(compiler.evaluator.sieve) drops records the entry condition cannot admit, and only the fields
the analytics read are built (compiler.evaluator.reads, compiler.inputs.project). Neither may
change an alert: the sieve must be sound (False only where the condition cannot hold, whatever
the spelling of the line: escapes, case, nesting, lists, numbers), and a projection must equal
flattening on the names it keeps."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import ir
from compiler.evaluator import Evaluation
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.reads import read_fields
from compiler.evaluator.sieve import Sieve, clauses, sieve_for
from compiler.inputs import flatten, read_timed
from compiler.inputs._common import Reading
from compiler.inputs.project import Projection, build_trie
from compiler.runner import alert_json, load_sorted, run, run_files
from tests.test_run_streaming import CASES

# --------------------------------------------------------------------------- spellings
# Ways to write the same JSON value: every one decodes to an equal document.


def _escape_string(s: str, rng: random.Random) -> str:
    out = ['"']
    for c in s:
        r = rng.random()
        if c == '"' or c == "\\" or c < " ":
            out.append(json.dumps(c)[1:-1] if r < 0.7 else f"\\u{ord(c):04x}")
        elif r < 0.08:
            out.append(f"\\u{ord(c):04X}" if r < 0.04 else f"\\u{ord(c):04x}")
        elif c == "/" and r < 0.5:
            out.append("\\/")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _spell(v: Any, rng: random.Random, escapes: bool) -> str:
    if isinstance(v, dict):
        items = [
            f"{_spell(k, rng, escapes)}{rng.choice([':', ' : '])}{_spell(x, rng, escapes)}"
            for k, x in v.items()
        ]
        return "{" + ",".join(items) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_spell(x, rng, escapes) for x in v) + "]"
    if isinstance(v, str):
        return _escape_string(v, rng) if escapes else json.dumps(v, ensure_ascii=rng.random() < 0.5)
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 and rng.random() < 0.5:
        return rng.choice([f"{int(v)}E0", f"{int(v)}.00", f"{int(v)}e+0"])
    return json.dumps(v)


def _nest(flat: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A document flatten() turns back into ``flat``: each dotted name split at a random set of
    its dots where that does not clash with another name (else the dotted name itself)."""
    doc: dict[str, Any] = {}
    for name, value in flat.items():
        keys = [name.split(".")[0]]
        for part in name.split(".")[1:]:
            if rng.random() < 0.6:
                keys.append(part)
            else:
                keys[-1] += "." + part
        node = doc
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if type(nxt) is not dict:
                node, keys = doc, [name]
                break
            node = nxt
        if keys[-1] in node:
            node, keys = doc, [name]
        node[keys[-1]] = value
    return doc if flatten(doc) == flat else dict(flat)


# --------------------------------------------------------------------------- catalogs
def _write(path: Path, events: list[dict[str, Any]], rng: random.Random) -> None:
    lines = []
    for e in events:
        doc = _nest(e, rng)
        lines.append(_spell(doc, rng, escapes=rng.random() < 0.5))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for e, line in zip(events, lines, strict=True):
        assert flatten(json.loads(line)) == e


INLINE = [(lo, fx) for lo, fx in CASES if fx.events and not fx.inputs]


@pytest.mark.parametrize(
    ("lo", "fx"), INLINE, ids=[f"{lo.analytic.id}:{fx.name[:40]}" for lo, fx in INLINE]
)
def test_pushdown_keeps_the_alerts_of_every_catalog_under_any_spelling(
    lo: Any, fx: ir.Fixture, tmp_path: Path
) -> None:
    rng = random.Random(f"{lo.analytic.id}:{fx.name}")
    path = tmp_path / "e.jsonl"
    _write(path, [dict(e) for e in fx.events], rng)
    inputs = [(path, "ecs")]
    want = [alert_json(a) for a in run([lo.analytic], load_sorted(inputs), fx.now_ms)]
    assert [alert_json(a) for a in run_files([lo.analytic], inputs, fx.now_ms)] == want


# --------------------------------------------------------------------------- the sieve
_WORDS = ["start", "Start", "proc", "process", "/tmp/", "C:\\Temp", 'q"t', "a/b", "x y", "Kelvin"]
_VALUES = st.one_of(
    st.sampled_from([*_WORDS, "443", " 443 ", "4.43e2", "true", "", "İ", "\u212a", "ß"]),
    st.text(alphabet=st.sampled_from("aAsStT/\\\"' .0-9eK\u212a\u0130\x7f\n"), max_size=6),
    st.integers(-1000, 1000),
    st.sampled_from([443, 443.0, 4.43e2, 1e20, -0.0, 0.5, True, False, None]),
)
_FIELDS = ["a", "a.b", "a.b.c", "x.y", "@timestamp"]
_FIELD_VALUES = st.one_of(_VALUES, st.lists(_VALUES, max_size=3))


@st.composite
def _predicates(draw: st.DrawFn, depth: int = 0) -> ir.Predicate:
    kind = draw(
        st.sampled_from(["eq", "str", "and", "or", "not", "exists"] if depth < 3 else ["eq", "str"])
    )
    field = draw(st.sampled_from(_FIELDS))
    if kind == "eq":
        values = tuple(draw(st.lists(_VALUES, min_size=0, max_size=3)))
        return ir.Eq(field, values, draw(st.booleans()), draw(st.sampled_from(["any", "all"])))
    if kind == "str":
        op: ir.StrOp = draw(st.sampled_from(["contains", "startswith", "endswith"]))
        strs = st.one_of(
            st.sampled_from(_WORDS), st.text(alphabet='aAsS/\\"0.e \u212a', max_size=4)
        )
        texts: tuple[str, ...] = tuple(draw(st.lists(strs, min_size=0, max_size=3)))
        return ir.StrMatch(
            field, op, texts, draw(st.booleans()), draw(st.sampled_from(["any", "all"]))
        )
    if kind == "exists":
        return ir.Exists(field, draw(st.booleans()))
    if kind == "not":
        return ir.Not(draw(_predicates(depth + 1)))
    items = tuple(draw(st.lists(_predicates(depth + 1), min_size=0, max_size=3)))
    return ir.And(items) if kind == "and" else ir.Or(items)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pred=_predicates(),
    flat=st.dictionaries(st.sampled_from(_FIELDS[:-1]), _FIELD_VALUES, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_the_sieve_rejects_only_lines_the_condition_cannot_admit(
    pred: ir.Predicate, flat: dict[str, Any], seed: int
) -> None:
    rng = random.Random(seed)
    flat = {"@timestamp": "2024-01-01T00:00:00Z", **flat}
    holds = compile_predicate(pred, {})(flat)
    sieve = sieve_for(pred)
    for _ in range(4):
        doc = _nest(dict(flat), rng)
        line = _spell(doc, rng, escapes=rng.random() < 0.5).encode("utf-8")
        assert flatten(json.loads(line)) == flat
        if holds and sieve is not None:
            for _ in range(3):  # a sieve reorders its clauses between blocks of lines
                assert sieve(line), (pred, line)


def test_the_sieve_rejects_what_it_can_prove() -> None:
    pred = ir.And(
        (
            ir.Eq("event.category", ("process",)),
            ir.Eq("event.type", ("start",)),
            ir.StrMatch("process.executable", "startswith", ("/tmp/", "/dev/shm/")),
        )
    )
    sieve = sieve_for(pred)
    assert sieve is not None
    assert clauses(pred) == [(b'"process"',), (b'"start"',), (b"/tmp/", b"/dev/shm/")]
    start = b'{"event":{"category":"Process","type":"START"},"process":{"executable":"/TMP/x"}}'
    assert sieve(start)
    assert not sieve(start.replace(b"START", b"end"))
    assert not sieve(start.replace(b"/TMP/", b"/usr/"))
    # an escape could spell what is missing: judged not proven
    assert sieve(start.replace(b"START", b"\\u0053TART"))
    assert sieve(start.replace(b"/TMP/x", b"\\/TMP\\/x"))
    # non-ASCII lines are not judged (U+212A lowers to "k")
    assert sieve(start.replace(b"/TMP/", b"/usr/").replace(b"x", "\u212a".encode()))
    # numbers, numeric strings, nulls, regexes and @timestamp prove nothing
    for p in (
        ir.Eq("destination.port", ("443",)),
        ir.Eq("destination.port", (443,)),
        ir.Eq("x", (None, "a")),
        ir.Regex("x", ("abc",)),
        ir.StrMatch("x", "contains", ("44",)),
        ir.Eq("@timestamp", ("2024",)),
        ir.Not(ir.Eq("x", ("abc",))),
        ir.Or((ir.Eq("x", ("abc",)), ir.Exists("y"))),
    ):
        assert sieve_for(p) is None, p
    # false: nothing passes
    never = sieve_for(ir.Or(()))
    assert never is not None and not never(start)


def test_a_sieve_that_does_not_pay_stops_searching() -> None:
    sieve = Sieve([(b"never",), (b"also-never",)])
    line = b'{"a": "never also-never"}'
    for _ in range(3 * Sieve.BLOCK):
        assert sieve(line)
    assert not sieve._on  # every line passed: searching only cost
    rejected = b'{"a": "x"}'
    assert not Sieve([(b"never",)])(rejected)


# --------------------------------------------------------------------------- projection
_KEYS = st.sampled_from(["a", "b", "a.b", "b.c", "c", "", "a.b.c"])
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3)),
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(
    doc=st.dictionaries(_KEYS, _JSON, max_size=5),
    names=st.sets(_KEYS | st.sampled_from(["a.b.c.d", "b.a", "a."]), max_size=5),
)
def test_a_projection_is_flatten_on_its_names(doc: dict[str, Any], names: set[str]) -> None:
    trie = build_trie(names)
    assert trie is not None
    want = {k: v for k, v in flatten(doc).items() if k in names}
    assert Projection(trie)(doc) == want


def test_read_fields_names_every_field_an_analytic_reads() -> None:
    # every field of every bundled and differential analytic's events that changes an alert is
    # named: checked by the catalog test above; here, the names a projection must keep
    for lo, _ in CASES[:50]:
        names = read_fields([lo.analytic])
        assert names is not None
        assert {"@timestamp", "event.id"} <= names
        ev = Evaluation(lo.analytic)
        for stream_fields in (ir.predicate_fields(ev.streams.entry),):
            assert stream_fields <= names


def test_the_reader_sieves_and_projects(tmp_path: Path) -> None:
    docs = [
        {"@timestamp": "2024-01-01T00:00:00Z", "event": {"type": "start"}, "p": {"n": "z", "o": 0}},
        {"@timestamp": "2024-01-01T00:00:01Z", "event": {"type": "start"}, "p": {"n": "a", "o": 1}},
        {"@timestamp": "2024-01-01T00:00:02Z", "event": {"type": "end"}, "p": {"n": "b"}},
        {"@timestamp": 1704067203, "event": {"type": "end"}, "p": {"n": "c"}},
    ]
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    pred = ir.Eq("event.type", ("start",))
    admits = compile_predicate(pred, {})
    reading = Reading(sieve_for(pred), frozenset({"@timestamp", "event.type", "p.n"}))
    got = list(read_timed(path, "ecs", None, admits, reading))
    # the first line is read by the reference reader (it decides the file's layout): whole
    assert got[0][1] is not None and got[0][1]["p.o"] == 0
    assert got[1] == (
        1704067201000,
        {"@timestamp": "2024-01-01T00:00:01Z", "event.type": "start", "p.n": "a"},
    )
    assert got[2] == (1704067202000, None)  # sieved: its time only
    assert got[3][1] is not None and got[3][1]["p.n"] == "c"  # time not text: read whole
