"""The SQL macros compiled DuckDB queries call: the evaluator's value rules, spelled once.

Every event field is a JSON column (the profile, docs/duckdb.md), because one ECS field may hold
a string in one event, a number in the next and a list in a third, and the language's meaning
depends on which (``"443" == 443``, ``true`` is not ``"true"``, a list is a set of
alternatives). The macros read those values as compiler/evaluator/values.py and predicates.py
do; a query defines, as ``CREATE OR REPLACE TEMP MACRO`` statements before its ``SELECT``, only
the macros it calls (and those they call), in dependency order.
"""

from __future__ import annotations

import re

# Python's str.strip() removes what str.isspace() calls white space, not only ASCII blanks.
_SPACE = "".join(f"\\x{{{c:x}}}" for c in range(0x3000 + 1) if chr(c).isspace())
_NUMBER = f"[{_SPACE}]*([+-]?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[{_SPACE}]*"

# A string read on the JSON text with no parse: a valid JSON text that starts and ends with a
# quote and holds no backslash is one string with no escapes, whose value is the text between
# the quotes (each JSON value DuckDB writes is valid JSON).
_PLAIN = (
    "(starts_with(v::VARCHAR, '\"') AND ends_with(v::VARCHAR, '\"') "
    "AND NOT contains(v::VARCHAR, '\\'))"
)
_PLAIN_STR = "substr(v::VARCHAR, 2, length(v::VARCHAR) - 2)"
# A JSON number's value, read on its text: the cast takes every number DuckDB's JSON reads
# (NaN and Infinity included, as json_type's DOUBLE) and no other JSON text (hex, 1_000, nan
# and inf, which the cast would also take, are no JSON).
_NUM_TEXT = "TRY_CAST(v::VARCHAR AS DOUBLE)"

# name -> (parameters, body). Bodies may call macros defined before them in this table.
_DEFS: dict[str, tuple[str, str]] = {
    # The non-null values of a field: [] when missing (SQL or JSON null, [], [null]); a scalar is
    # a one-element list. A top-level object cannot be an ECS value (inputs flatten objects).
    "siemc_elems": (
        "v",
        "CASE WHEN v IS NULL OR json_type(v) IN ('NULL', 'OBJECT') THEN []::JSON[] "
        "WHEN json_type(v) = 'ARRAY' "
        "THEN list_filter(json_extract(v, '$[*]'), lambda e: json_type(e) <> 'NULL') "
        "ELSE [v] END",
    ),
    "siemc_missing": ("v", "len(siemc_elems(v)) = 0"),
    # The text string operators see: a string as is, a number in decimal (integral floats as
    # integers, others as Python's repr, which DuckDB's DOUBLE -> VARCHAR also gives), a boolean
    # as true/false; NULL for lists and objects.
    "siemc_text": (
        "e",
        "CASE json_type(e) WHEN 'VARCHAR' THEN e ->> '$' "
        "WHEN 'BOOLEAN' THEN e::VARCHAR "
        "WHEN 'UBIGINT' THEN e::VARCHAR WHEN 'BIGINT' THEN e::VARCHAR "
        "WHEN 'DOUBLE' THEN CASE WHEN e::DOUBLE = trunc(e::DOUBLE) "
        "THEN coalesce(try_cast(e::DOUBLE AS HUGEINT)::VARCHAR, e::DOUBLE::VARCHAR) "
        "ELSE e::DOUBLE::VARCHAR END END",
    ),
    "siemc_texts": (
        "v",
        "list_filter(list_transform(siemc_elems(v), lambda e: siemc_text(e)), "
        "lambda t: t IS NOT NULL)",
    ),
    # A number, or NULL: JSON numbers, and strings spelling a decimal literal once stripped
    # (not hex, 1_000, nan or inf, which DuckDB's cast alone would accept); booleans are not.
    "siemc_num": (
        "e",
        "CASE json_type(e) WHEN 'UBIGINT' THEN e::DOUBLE WHEN 'BIGINT' THEN e::DOUBLE "
        "WHEN 'DOUBLE' THEN e::DOUBLE "
        f"WHEN 'VARCHAR' THEN CASE WHEN regexp_full_match(e ->> '$', '{_NUMBER}') "
        f"THEN CASE WHEN isfinite(regexp_extract(e ->> '$', '{_NUMBER}', 1)::DOUBLE) "
        f"THEN regexp_extract(e ->> '$', '{_NUMBER}', 1)::DOUBLE END END END",
    ),
    "siemc_nums": (
        "v",
        "list_filter(list_transform(siemc_elems(v), lambda e: siemc_num(e)), "
        "lambda n: n IS NOT NULL)",
    ),
    # The number of a scalar (a list is not a number for arithmetic, max/min/abs).
    "siemc_num1": ("v", "CASE WHEN json_type(v) <> 'ARRAY' THEN siemc_num(v) END"),
    # Lower-cased texts of the string elements: equality with non-numeric strings.
    "siemc_istrs": (
        "v",
        "list_transform(list_filter(siemc_elems(v), lambda e: json_type(e) = 'VARCHAR'), "
        "lambda e: lower(e ->> '$'))",
    ),
    "siemc_strs": (
        "v",
        "list_transform(list_filter(siemc_elems(v), lambda e: json_type(e) = 'VARCHAR'), "
        "lambda e: e ->> '$')",
    ),
    "siemc_bools": (
        "v",
        "list_transform(list_filter(siemc_elems(v), lambda e: json_type(e) = 'BOOLEAN'), "
        "lambda e: e::BOOLEAN)",
    ),
    "siemc_any": ("l", "coalesce(list_bool_or(l), false)"),
    # Read on the JSON text, no parse (_PLAIN, _NUM_TEXT): whether a value is one
    # string with no escapes, that string, and the number a JSON number spells (else NULL).
    "siemc_plain": ("v", _PLAIN),
    "siemc_str": ("v", _PLAIN_STR),
    "siemc_numtext": ("v", _NUM_TEXT),
    # Per-event parts of sum/min/max/avg: a scalar is read directly, a list element by element
    # (each numeric element is one value; no value gives NULL, which the aggregates skip).
    "siemc_sum1": (
        "v",
        "CASE WHEN json_type(v) = 'ARRAY' THEN CASE WHEN len(siemc_nums(v)) > 0 "
        "THEN list_sum(siemc_nums(v)) END ELSE siemc_num(v) END",
    ),
    "siemc_min1": (
        "v",
        "CASE WHEN json_type(v) = 'ARRAY' THEN list_min(siemc_nums(v)) ELSE siemc_num(v) END",
    ),
    "siemc_max1": (
        "v",
        "CASE WHEN json_type(v) = 'ARRAY' THEN list_max(siemc_nums(v)) ELSE siemc_num(v) END",
    ),
    "siemc_count1": (
        "v",
        "CASE WHEN json_type(v) = 'ARRAY' THEN len(siemc_nums(v)) "
        "WHEN siemc_num(v) IS NOT NULL THEN 1 ELSE 0 END",
    ),
    # Keys compare as text (compiler/evaluator/keys.normalise): a number is its decimal text,
    # a boolean stays a JSON boolean (never equal to a string), lists and objects are no key.
    "siemc_key": (
        "e",
        "CASE WHEN json_type(e) = 'BOOLEAN' THEN e "
        "WHEN json_type(e) IN ('ARRAY', 'OBJECT', 'NULL') THEN NULL "
        "ELSE to_json(siemc_text(e)) END",
    ),
    "siemc_keys": (
        "v",
        "list_distinct(list_filter(list_transform(siemc_elems(v), lambda e: siemc_key(e)), "
        "lambda k: k IS NOT NULL))",
    ),
    # The element of ``v`` that has key ``k``, as the event holds it (an alert reports keys in
    # their original type and case).
    # (A scalar is its own only key: no search.)
    "siemc_raw": (
        "v, k",
        "CASE WHEN json_type(v) <> 'ARRAY' THEN v "
        "ELSE list_filter(siemc_elems(v), lambda e: siemc_key(e) = k)[1] END",
    ),
    "siemc_keys_meet": ("a, b", "list_has_any(siemc_keys(a), siemc_keys(b))"),
    # Truthiness of and/or/not/having: null is false; lists need a non-null element.
    "siemc_truthy": (
        "v",
        "CASE WHEN v IS NULL THEN false "
        "ELSE CASE json_type(v) WHEN 'BOOLEAN' THEN v::BOOLEAN "
        "WHEN 'VARCHAR' THEN length(v ->> '$') > 0 "
        "WHEN 'ARRAY' THEN len(siemc_elems(v)) > 0 WHEN 'NULL' THEN false "
        "WHEN 'OBJECT' THEN true ELSE v::DOUBLE <> 0 END END",
    ),
    # Comparisons (== != < <= > >=) hold when some pair of elements compares (existential on
    # both sides): two numbers numerically, two strings lower-cased, two booleans; any other
    # pair is unequal and unordered.
    # Each element as what comparisons read: its number (numeric strings included), its
    # lower-cased text when it is a string, its value when it is a boolean.
    "siemc_cmpvals": (
        "v",
        "list_transform(siemc_elems(v), lambda e: {'n': siemc_num(e), "
        "'s': CASE WHEN json_type(e) = 'VARCHAR' THEN lower(e ->> '$') END, "
        "'b': CASE WHEN json_type(e) = 'BOOLEAN' THEN e::BOOLEAN END})",
    ),
    "siemc_cmp_eq": (
        "a, b",
        "siemc_any(list_transform(siemc_cmpvals(a), lambda x: siemc_any(list_transform("
        "siemc_cmpvals(b), lambda y: CASE WHEN x.n IS NOT NULL AND y.n IS NOT NULL "
        "THEN x.n = y.n WHEN x.s IS NOT NULL AND y.s IS NOT NULL THEN x.s = y.s "
        "WHEN x.b IS NOT NULL AND y.b IS NOT NULL THEN x.b = y.b ELSE false END))))",
    ),
    "siemc_cmp_ne": (
        "a, b",
        "siemc_any(list_transform(siemc_cmpvals(a), lambda x: siemc_any(list_transform("
        "siemc_cmpvals(b), lambda y: CASE WHEN x.n IS NOT NULL AND y.n IS NOT NULL "
        "THEN x.n <> y.n WHEN x.s IS NOT NULL AND y.s IS NOT NULL THEN x.s <> y.s "
        "WHEN x.b IS NOT NULL AND y.b IS NOT NULL THEN x.b <> y.b ELSE true END))))",
    ),
    "siemc_cmp_lt": (
        "a, b",
        "siemc_any(list_transform(siemc_cmpvals(a), lambda x: siemc_any(list_transform("
        "siemc_cmpvals(b), lambda y: CASE WHEN x.n IS NOT NULL AND y.n IS NOT NULL "
        "THEN x.n < y.n WHEN x.s IS NOT NULL AND y.s IS NOT NULL THEN x.s < y.s "
        "WHEN x.b IS NOT NULL AND y.b IS NOT NULL THEN x.b < y.b ELSE false END))))",
    ),
    "siemc_cmp_le": (
        "a, b",
        "siemc_any(list_transform(siemc_cmpvals(a), lambda x: siemc_any(list_transform("
        "siemc_cmpvals(b), lambda y: CASE WHEN x.n IS NOT NULL AND y.n IS NOT NULL "
        "THEN x.n <= y.n WHEN x.s IS NOT NULL AND y.s IS NOT NULL THEN x.s <= y.s "
        "WHEN x.b IS NOT NULL AND y.b IS NOT NULL THEN x.b <= y.b ELSE false END))))",
    ),
    "siemc_cmp_gt": (
        "a, b",
        "siemc_any(list_transform(siemc_cmpvals(a), lambda x: siemc_any(list_transform("
        "siemc_cmpvals(b), lambda y: CASE WHEN x.n IS NOT NULL AND y.n IS NOT NULL "
        "THEN x.n > y.n WHEN x.s IS NOT NULL AND y.s IS NOT NULL THEN x.s > y.s "
        "WHEN x.b IS NOT NULL AND y.b IS NOT NULL THEN x.b > y.b ELSE false END))))",
    ),
    "siemc_cmp_ge": (
        "a, b",
        "siemc_any(list_transform(siemc_cmpvals(a), lambda x: siemc_any(list_transform("
        "siemc_cmpvals(b), lambda y: CASE WHEN x.n IS NOT NULL AND y.n IS NOT NULL "
        "THEN x.n >= y.n WHEN x.s IS NOT NULL AND y.s IS NOT NULL THEN x.s >= y.s "
        "WHEN x.b IS NOT NULL AND y.b IS NOT NULL THEN x.b >= y.b ELSE false END))))",
    ),
    # A number as a JSON value; overflow to infinity (and NaN) is null, as in the evaluator.
    "siemc_jnum": ("n", "CASE WHEN isfinite(n) THEN to_json(n) END"),
    # Case mapping and basename: strings and the string elements of a list; others unchanged.
    "siemc_lower": (
        "v",
        "CASE json_type(v) WHEN 'VARCHAR' THEN to_json(lower(v ->> '$')) "
        "WHEN 'ARRAY' THEN to_json(list_transform(json_extract(v, '$[*]'), lambda e: "
        "CASE WHEN json_type(e) = 'VARCHAR' THEN to_json(lower(e ->> '$')) ELSE e END)) "
        "ELSE v END",
    ),
    "siemc_upper": (
        "v",
        "CASE json_type(v) WHEN 'VARCHAR' THEN to_json(upper(v ->> '$')) "
        "WHEN 'ARRAY' THEN to_json(list_transform(json_extract(v, '$[*]'), lambda e: "
        "CASE WHEN json_type(e) = 'VARCHAR' THEN to_json(upper(e ->> '$')) ELSE e END)) "
        "ELSE v END",
    ),
    "siemc_basename": (
        "v",
        "CASE json_type(v) WHEN 'VARCHAR' "
        "THEN to_json(regexp_extract(v ->> '$', '[^/\\\\]*$')) "
        "WHEN 'ARRAY' THEN to_json(list_transform(json_extract(v, '$[*]'), lambda e: "
        "CASE WHEN json_type(e) = 'VARCHAR' "
        "THEN to_json(regexp_extract(e ->> '$', '[^/\\\\]*$')) ELSE e END)) "
        "ELSE v END",
    ),
    # An IP address as (version, value), IPv4-mapped IPv6 as its IPv4 address; NULL for
    # anything Python's ipaddress.ip_address rejects (leading-zero octets, ports, names).
    # ``list_transform([x], lambda y: ...)[1]`` binds a value once: a macro repeats its
    # argument's text at every use, which nested parsers would multiply.
    "siemc_ip4": (
        "s",
        "CASE WHEN regexp_full_match(s, '(0|[1-9][0-9]{0,2})(\\.(0|[1-9][0-9]{0,2})){3}') "
        "THEN list_transform([string_split(s, '.')], lambda o4: "
        "CASE WHEN list_bool_and(list_transform(o4, lambda o: o::INT <= 255)) "
        "THEN list_reduce(o4, lambda acc, o: acc * 256 + o::UHUGEINT, 0::UHUGEINT) END)[1] END",
    ),
    # An IPv6 text with a dotted IPv4 tail rewritten as two hex groups ('' when the tail is
    # no address).
    "siemc_ip6_groups": (
        "s",
        "CASE WHEN regexp_full_match(s, '(.*:)([0-9]*\\.[0-9.]*)') "
        "THEN list_transform([siemc_ip4(regexp_extract(s, '(.*:)([0-9]*\\.[0-9.]*)', 2))], "
        "lambda t4: CASE WHEN t4 IS NOT NULL THEN regexp_extract(s, '(.*:)', 1) "
        "|| printf('%x:%x', t4 // 65536, t4 % 65536) ELSE '' END)[1] ELSE s END",
    ),
    # Eight groups, "::" standing for at least one zero group; NULL when malformed.
    "siemc_ip6_parts": (
        "g",
        "CASE WHEN NOT regexp_full_match(g, '[0-9a-f:]+') THEN NULL "
        "WHEN NOT contains(g, '::') THEN string_split(g, ':') "
        "ELSE list_transform([string_split(g, '::')], lambda h: "
        "CASE WHEN len(h) = 2 THEN list_transform([["
        "CASE WHEN h[1] = '' THEN []::VARCHAR[] ELSE string_split(h[1], ':') END, "
        "CASE WHEN h[2] = '' THEN []::VARCHAR[] ELSE string_split(h[2], ':') END]], "
        "lambda ht: CASE WHEN len(ht[1]) + len(ht[2]) <= 7 THEN list_concat(ht[1], "
        "list_transform(range(8 - len(ht[1]) - len(ht[2])), lambda i: '0'), ht[2]) END)[1] "
        "END)[1] END",
    ),
    "siemc_ip6": (
        "s",
        "list_transform([siemc_ip6_parts(siemc_ip6_groups(s))], lambda p6: "
        "CASE WHEN len(p6) = 8 AND list_bool_and(list_transform(p6, "
        "lambda g: regexp_full_match(g, '[0-9a-f]{1,4}'))) "
        "THEN list_reduce(p6, lambda acc, g: acc * 65536 + ('0x' || g)::UHUGEINT, "
        "0::UHUGEINT) END)[1]",
    ),
    "siemc_ip": (
        "t",
        f"list_transform([regexp_replace(t, '^[{_SPACE}]+|[{_SPACE}]+$', '', 'g')], "
        "lambda a: list_transform([[siemc_ip4(a), "
        "CASE WHEN contains(a, ':') THEN siemc_ip6(lower(a)) END]], lambda r: "
        "CASE WHEN r[1] IS NOT NULL THEN {'v': 4, 'n': r[1]} "
        "WHEN r[2] // 4294967296 = 65535 THEN {'v': 4, 'n': r[2] % 4294967296} "
        "WHEN r[2] IS NOT NULL THEN {'v': 6, 'n': r[2]} END)[1])[1]",
    ),
    # The nearest-rank percentile (the ceil(num/den * n)-th smallest, at least the first).
    "siemc_nearest_rank": (
        "l, num, den",
        "list_sort(l)[greatest(1, (num * len(l) + den - 1) // den)]",
    ),
}

# Fast paths: a scalar, by far the commonest field value, skips the list machinery. Each is
# WHEN clauses put before the general rule, and gives what the rule gives for the values it
# takes (tests/test_duckdb_macros.py compares both forms on every kind of value).
_NUMERIC = "('UBIGINT', 'BIGINT', 'DOUBLE')"
_FAST: dict[str, str] = {
    # a JSON text opening with a quote, a digit, '-', 't' or 'f' is a string, a number or a
    # boolean: present
    "siemc_missing": "WHEN ascii(v::VARCHAR) IN (34, 45, 48, 49, 50, 51, 52, 53, 54, 55, 56, "
    "57, 102, 116) THEN false "
    "WHEN json_type(v) <> 'ARRAY' THEN json_type(v) IN ('NULL', 'OBJECT')",
    "siemc_texts": f"WHEN {_PLAIN} THEN [{_PLAIN_STR}] "
    "WHEN json_type(v) = 'VARCHAR' THEN [v ->> '$']",
    "siemc_nums": f"WHEN {_NUM_TEXT} IS NOT NULL THEN [{_NUM_TEXT}] "
    f"WHEN json_type(v) IN {_NUMERIC} THEN [v::DOUBLE]",
    "siemc_istrs": f"WHEN {_PLAIN} THEN [lower({_PLAIN_STR})] "
    "WHEN json_type(v) = 'VARCHAR' THEN [lower(v ->> '$')] "
    "WHEN json_type(v) <> 'ARRAY' THEN []::VARCHAR[]",
    "siemc_strs": f"WHEN {_PLAIN} THEN [{_PLAIN_STR}] "
    "WHEN json_type(v) = 'VARCHAR' THEN [v ->> '$'] "
    "WHEN json_type(v) <> 'ARRAY' THEN []::VARCHAR[]",
    "siemc_keys": f"WHEN {_PLAIN} THEN [to_json({_PLAIN_STR})] "
    "WHEN json_type(v) = 'VARCHAR' THEN [to_json(v ->> '$')]",
    "siemc_sum1": f"WHEN {_NUM_TEXT} IS NOT NULL THEN {_NUM_TEXT}",
    "siemc_raw": f"WHEN {_PLAIN} THEN v",
    "siemc_num1": f"WHEN {_NUM_TEXT} IS NOT NULL THEN {_NUM_TEXT}",
    **{
        f"siemc_cmp_{op}": f"WHEN {_NUM_TEXT.replace('v', 'a')} IS NOT NULL "
        f"AND {_NUM_TEXT.replace('v', 'b')} IS NOT NULL "
        f"THEN {_NUM_TEXT.replace('v', 'a')} {sym} {_NUM_TEXT.replace('v', 'b')} "
        f"WHEN json_type(a) IN {_NUMERIC} AND json_type(b) IN {_NUMERIC} "
        f"THEN a::DOUBLE {sym} b::DOUBLE"
        for op, sym in (
            ("eq", "="),
            ("ne", "<>"),
            ("lt", "<"),
            ("le", "<="),
            ("gt", ">"),
            ("ge", ">="),
        )
    },
}
GENERAL = {name: _DEFS[name] for name in _FAST}
for _name, _when in _FAST.items():
    _DEFS[_name] = (_DEFS[_name][0], f"CASE {_when} ELSE {_DEFS[_name][1]} END")

_CALL = re.compile(r"\b(siemc_[a-z0-9_]+)\(")


def _deps(name: str) -> list[str]:
    return [m for m in _CALL.findall(_DEFS[name][1]) if m != name and m in _DEFS]


def macro_names() -> tuple[str, ...]:
    return tuple(_DEFS)


def used(sql: str) -> list[str]:
    """The macros ``sql`` calls, with those they call, in definition order."""
    want: set[str] = set()
    todo = [m for m in _CALL.findall(sql) if m in _DEFS]
    while todo:
        name = todo.pop()
        if name not in want:
            want.add(name)
            todo.extend(_deps(name))
    return [n for n in _DEFS if n in want]


def prelude(sql: str) -> str:
    """``CREATE OR REPLACE TEMP MACRO`` statements for every macro ``sql`` needs."""
    return "".join(
        f"CREATE OR REPLACE TEMP MACRO {n}({_DEFS[n][0]}) AS\n  {_DEFS[n][1]};\n" for n in used(sql)
    )
