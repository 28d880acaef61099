"""The ``events`` relation over ECS files, read by DuckDB itself (``run_duckdb.run_analytic``).

Two readers give the same rows:

* **typed** (JSON Lines and JSON arrays): ``read_json`` with ``columns`` naming only what the
  analytic reads, every spelling of each field (``process.name`` as the key ``"process.name"``
  and as ``"process": {"name"}``) as nested STRUCTs down to JSON leaves, so DuckDB parses each
  document once, in parallel, and keeps only those values. It is strict where a document does
  not fit that shape (an object expected where a string is, a key given twice, a field both
  read as a value and as an object): DuckDB then raises, and the caller uses the generic reader.
* **generic** (any document, and Parquet): ``read_json_objects`` and one ``json_extract`` of
  every spelling of every field.

Both give each field's value as JSON, dotted key first, then the nested spellings in
:func:`_splits` order (JSON null counts as absent), the same text as ``json_extract``.

**Numbered or not.** ``numbered`` events carry ``_seq`` (input order: file, then document) and
name an event without ``event.id`` ``<file>#<n>``; DuckDB numbers documents only in a single
thread, so the events are then materialised once (every record's time read, as the
evaluator's reader reads it). Unnumbered events stream from a parallel scan with ``_seq = 0``
and no name for an event without ``event.id``: only for queries whose alerts do not depend on
the order of events with equal times (:func:`order_free`), checked on their result by the
caller. Each field column is guarded by the time check, so a record whose time does not parse
stops the query even when no stream selects it (every stream condition reads a field).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compiler import ir

FORMATS = ("ecs-jsonl", "ecs-json", "parquet")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _keys(field: str) -> list[tuple[str, ...]]:
    """Every sequence of keys that flattens to ``field``: the whole name as one key first, then
    each nesting of its parts (``process.name``: ``("process.name",)``, ``("process",
    "name")``)."""
    parts = field.split(".")
    out: list[tuple[str, ...]] = []

    def walk(i: int, acc: tuple[str, ...]) -> None:
        if i == len(parts):
            out.append(acc)
            return
        for j in range(len(parts), i, -1):
            walk(j, (*acc, ".".join(parts[i:j])))

    walk(0, ())
    return out


def _splits(field: str) -> list[str]:
    """The JSON paths of :func:`_keys` (``$."process.name"``, ``$."process"."name"``)."""
    return [
        "$" + "".join('."' + k.replace("\\", "\\\\").replace('"', '\\"') + '"' for k in keys)
        for keys in _keys(field)
    ]


# @timestamp as ms since the epoch, parsed only where DuckDB is sure to agree with
# compiler.timeutil.parse_timestamp (the evaluator's reader): non-negative integer epochs
# (seconds, or ms/us/ns from 1e11/1e14/1e17 on, floored; DuckDB's // truncates, equal to floor
# only for non-negative numbers) and ISO 8601 as ECS writes it (seconds present, an optional
# fraction, then Z or a +HH[[:]MM] offset, or no zone = UTC; the calendar is validated by the cast).
# Anything else is null, and a null time stops the run (siemc run then uses the evaluator, whose
# reader parses every layout it documents or names the record it cannot read).
_ISO = (
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ]([01]\d|2[0-3]):([0-5]\d):([0-5]\d)"
    r"(?:[.,](\d+))?(?:([Zz])|([+-])([01]\d|2[0-3])(?::?([0-5]\d))?)?$"
)
# The layout ECS shippers write (UTC, 'T', 'Z', a year from 0001) matched on the JSON text
# itself: a string of these characters has no escapes, so its text is the quoted value, and the
# time is sliced out with no JSON parse and no range check (9999-12-31T23:59:59.999Z is the max).
_JSON_ISO_Z = (
    r'^"(?:[1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])-\d{2}-\d{2}T'
    r'(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?Z"$'
)
_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999
_TIME_MACROS = (
    "CREATE OR REPLACE TEMP MACRO siemc_in_range(ms) AS list_transform([ms], lambda m: "
    f"CASE WHEN m BETWEEN {_MIN_MS} AND {_MAX_MS} THEN m::BIGINT END)[1]",
    "CREATE OR REPLACE TEMP MACRO siemc_epoch(x) AS siemc_in_range(CASE "
    "WHEN x < 0 THEN NULL WHEN x < 100000000000 THEN x * 1000 "
    "WHEN x < 100000000000000 THEN x WHEN x < 100000000000000000 THEN x // 1000 "
    "ELSE x // 1000000 END)",
    "CREATE OR REPLACE TEMP MACRO siemc_iso_parts(p) AS siemc_in_range("
    "epoch_ms(try_cast(p.y || '-' || p.mo || '-' || p.d || ' ' || p.h || ':' || p.mi || ':' "
    "|| p.sec AS TIMESTAMP)) + rpad(left(p.f, 3), 3, '0')::BIGINT - CASE p.sign "
    "WHEN '+' THEN 1 WHEN '-' THEN -1 ELSE 0 END "
    "* (coalesce(try_cast(p.oh AS BIGINT), 0) * 3600000 + coalesce(try_cast(p.om AS BIGINT), 0) "
    "* 60000))",
    # The groups are extracted once: a macro repeats its argument's text at every use.
    "CREATE OR REPLACE TEMP MACRO siemc_iso(s) AS CASE "
    f"WHEN regexp_full_match(s, {_lit(_ISO)}) THEN list_transform([regexp_extract(s, "
    f"{_lit(_ISO)}, ['y', 'mo', 'd', 'h', 'mi', 'sec', 'f', 'z', 'sign', 'oh', 'om'])], "
    "lambda p: siemc_iso_parts(p))[1] END",
    # CASE tests each WHEN only on the rows no earlier one took: the common layout first
    "CREATE OR REPLACE TEMP MACRO siemc_ts(t) AS CASE "
    # milliseconds (the commonest form): one cast of date, time and fraction
    f"WHEN length(t) = 26 AND regexp_full_match(t, {_lit(_JSON_ISO_Z)}) "
    "THEN epoch_ms(try_cast(substr(t, 2, 23) AS TIMESTAMP)) "
    f"WHEN regexp_full_match(t, {_lit(_JSON_ISO_Z)}) "
    "THEN epoch_ms(try_cast(substr(t, 2, 19) AS TIMESTAMP)) + CASE WHEN length(t) > 22 "
    "THEN rpad(left(substr(t, 22, length(t) - 23), 3), 3, '0')::BIGINT ELSE 0 END "
    "WHEN json_type(t) = 'VARCHAR' THEN siemc_iso(t ->> '$') "
    "WHEN json_type(t) IN ('UBIGINT', 'BIGINT') THEN siemc_epoch(t::HUGEINT) END",
)

_TIME = ("@timestamp",)
_IDS = (("event", "id"), ("event.id",))  # the nested spelling first, as ever


def order_free(analytic: ir.Analytic) -> bool:
    """Whether the compiled query reads ``_seq`` only to order events of equal time within
    what it returns: a match, or a tumbling aggregate (arg_min of the keys and the evidence
    order; the caller checks that no alert holds two events of one time) whose compute and
    having read no key value (the first event's value: ``0`` is falsy where ``"0"`` is not,
    and a group that does not alert is not checked), with no join (which names its events by
    ``_seq``) and no baseline (whose history is "before" in input order)."""
    d = analytic.detection
    if analytic.baselines or any(s.join is not None for s in analytic.streams):
        return False
    if isinstance(d, ir.Match):
        return True
    if not isinstance(d, ir.Aggregate) or d.window.kind != "tumbling":
        return False
    exprs = [e for _, e in d.compute] + ([d.having] if d.having is not None else [])
    return not any(ir.field_names(e) for e in exprs)


# ---------------------------------------------------------------------------- typed reading
Tree = dict[str, "Tree | None"]  # a key's children; None: a JSON leaf


def _tree(spellings: Sequence[tuple[str, ...]]) -> Tree | None:
    """The nested ``columns`` for these key sequences, or None when one key would be both a
    leaf and an object, or two siblings differ only in case (DuckDB's names are not
    case-sensitive there): the generic reader reads those."""
    root: Tree = {}
    for keys in spellings:
        node = root
        for i, k in enumerate(keys):
            leaf = i == len(keys) - 1
            if k not in node:
                if any(o.lower() == k.lower() for o in node):
                    return None
                node[k] = None if leaf else {}
            child = node[k]
            if leaf != (child is None):
                return None
            if child is not None:
                node = child
    return root


def _type(tree: Tree) -> str:
    return "STRUCT(" + ", ".join(f"{_quote(k)} {_leaf_type(v)}" for k, v in tree.items()) + ")"


def _leaf_type(node: Tree | None) -> str:
    return "JSON" if node is None else _type(node)


def _columns(tree: Tree) -> str:
    return "{" + ", ".join(f"{_lit(k)}: {_lit(_leaf_type(v))}" for k, v in tree.items()) + "}"


def _ref(keys: tuple[str, ...]) -> str:
    return "t." + ".".join(_quote(k) for k in keys)


def _pick(values: Sequence[str]) -> str:
    """The first value that is present and not JSON null."""
    return f"coalesce({', '.join(f'NULLIF({v}, {_lit("null")})' for v in values)})"


def _typed_reads(
    files: Sequence[tuple[str | Path, str]], fields: Sequence[str], numbered: bool
) -> list[str] | None:
    spellings = [_TIME, *_IDS] + [k for f in fields for k in _keys(f)]
    tree = _tree(spellings)
    if tree is None or any(fmt == "parquet" for _, fmt in files):
        return None
    cols = _columns(tree)
    picks = ", ".join(f"{_pick([_ref(k) for k in _keys(f)])} AS {_quote('f:' + f)}" for f in fields)
    out = []
    for n, (path, fmt) in enumerate(files):
        kind = "newline_delimited" if fmt == "ecs-jsonl" else "array"
        line = "ordinality" if numbered else "NULL::BIGINT"
        out.append(
            f"SELECT {n} AS _file, {_lit(Path(path).name)} AS _src, {line} AS _line, "
            f"{_ref(_TIME)} AS _t, {_ref(_IDS[0])} AS _id1, {_ref(_IDS[1])} AS _id2"
            + (f", {picks}" if picks else "")
            + f" FROM read_json({_lit(str(path))}, format = '{kind}', columns = {cols}, "
            f"auto_detect = false){' WITH ORDINALITY' if numbered else ''} t"
        )
    return out


def _generic_reads(files: Sequence[tuple[str | Path, str]], fields: Sequence[str]) -> list[str]:
    paths = ['$."@timestamp"', '$."event"."id"', '$."event.id"'] + [
        p for f in fields for p in _splits(f)
    ]
    pick, at = [], 4
    for f in fields:
        n = len(_splits(f))
        pick.append(f", {_pick([f'v[{i}]' for i in range(at, at + n)])} AS {_quote('f:' + f)}")
        at += n
    extract = f"json_extract(doc, [{', '.join(_lit(p) for p in paths)}])"
    out = []
    for n, (path, fmt) in enumerate(files):
        p = _lit(str(path))
        if fmt == "parquet":
            src = f"SELECT to_json(t) AS doc FROM read_parquet({p}) t"
        else:
            kind = "newline_delimited" if fmt == "ecs-jsonl" else "array"
            src = f"SELECT json AS doc FROM read_json_objects({p}, format = '{kind}')"
        out.append(
            f"SELECT _file, _src, _line, v[1] AS _t, v[2] AS _id1, v[3] AS _id2{''.join(pick)} "
            f"FROM (SELECT *, {extract} AS v FROM (SELECT {n} AS _file, "
            f"{_lit(Path(path).name)} AS _src, row_number() OVER () AS _line, doc FROM ({src})))"
        )
    return out


# The event id, computed for every row of a stream: a plain string (no escapes) sliced from
# the JSON text (as backends/duckdb/macros.py siemc_str), any other value parsed.
_PLAIN_ID = (
    "CASE WHEN starts_with(_id1::VARCHAR, '\"') AND ends_with(_id1::VARCHAR, '\"') "
    "AND NOT contains(_id1::VARCHAR, '\\') "
    "THEN substr(_id1::VARCHAR, 2, length(_id1::VARCHAR) - 2) "
    "ELSE coalesce(_id1 ->> '$', _id2 ->> '$') END"
)


def file_view(
    con: Any,
    files: Sequence[tuple[str | Path, str]],
    fields: Sequence[str],
    *,
    numbered: bool = True,
    typed: bool = True,
) -> None:
    """Create ``events`` over ECS files (see the module's docstring). ``typed``: the typed
    reader where the fields allow it (its errors are the caller's to catch and retry with
    ``typed=False``); unnumbered events need it (a generic read is numbered anyway)."""
    for path, fmt in files:
        if fmt not in FORMATS:
            raise ValueError(f"{path}: unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    for macro in _TIME_MACROS:
        con.execute(macro)
    reads = _typed_reads(files, fields, numbered) if typed else None
    if reads is None:
        reads, numbered = _generic_reads(files, fields), True
    bad = "error('a @timestamp missing or in a layout DuckDB does not read here: ' || _src" + (
        " || '#' || _line)" if numbered else ")"
    )
    inner = f"SELECT *, siemc_ts(_t) AS _ts FROM ({' UNION ALL '.join(reads)})"
    if numbered:
        # Materialised, so that every record's time is read (a record no stream selects but
        # whose time does not parse stops the run, as it stops the evaluator's reader). No
        # sort: queries order events by (_ts, _seq), and _seq is the input order.
        cols = "".join(f", {_quote('f:' + f)} AS {_quote(f)}" for f in fields)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE events AS SELECT coalesce(_ts, {bad}) AS _ts, "
            f"_file * {1 << 40} + _line AS _seq, "
            f"coalesce(_id1 ->> '$', _id2 ->> '$', _src || '#' || _line) AS _id{cols} "
            f"FROM ({inner})"
        )
        return
    # Streamed: a stream's condition reads fields, and each field carries the time check, so
    # DuckDB cannot skip it for a row by filtering on another column first.
    cols = "".join(
        f", CASE WHEN _ts IS NULL THEN {bad} ELSE {_quote('f:' + f)} END AS {_quote(f)}"
        for f in fields
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW events AS SELECT coalesce(_ts, {bad}) AS _ts, "
        f"0::BIGINT AS _seq, {_PLAIN_ID} AS _id{cols} FROM ({inner})"
    )
