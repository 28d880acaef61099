"""Unit tests of the SPL interpreter (tests/interpreters/spl_interp.py), one documented rule at a
time, on small inputs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.interpreters.spl_interp import LookupDef, NotExecutable, SplRuntimeError, execute

NOW = 1_000_000_000  # ms


def ev(t: float, **fields: Any) -> dict[str, Any]:
    return {"_time": t, **fields}


def run(query: str, events: list[dict[str, Any]], **lookups: Any) -> list[dict[str, Any]]:
    return execute(query, events, lookups, NOW)


def col(rows: list[dict[str, Any]], name: str) -> list[Any]:
    return [r.get(name) for r in rows]


# --------------------------------------------------------------------------- search
def test_search_values_are_case_insensitive_with_wildcards_and_newest_first() -> None:
    evs = [ev(1, n="PowerShell.exe"), ev(2, n="cmd.exe"), ev(3, n="powershell.EXE")]
    assert col(run('search n="powershell.exe"', evs), "_time") == [3, 1]
    assert col(run('search n="*SHELL*"', evs), "_time") == [3, 1]
    assert col(run("search n=cmd*", evs), "_time") == [2]


def test_search_not_matches_events_without_the_field_and_multivalues_match_any() -> None:
    evs = [ev(1, n="a"), ev(2), ev(3, n=["b", "a"])]
    assert col(run("search NOT n=a", evs), "_time") == [2]
    assert col(run("search n=*", evs), "_time") == [3, 1]
    assert col(run("search NOT n=*", evs), "_time") == [2]
    assert col(run("search n!=a", evs), "_time") == []  # != needs the field; any value = a


def test_search_or_binds_tighter_than_juxtaposition() -> None:
    evs = [ev(1, a="x", b="y"), ev(2, a="z", c="w")]
    assert col(run("search a=x b=y OR c=w", evs), "_time") == [1]


def test_search_earliest_is_relative_to_now() -> None:
    evs = [ev(NOW / 1000 - 120), ev(NOW / 1000 - 30)]
    assert len(run("search earliest=-60s index=*", evs)) == 1


def test_the_search_time_range_selects_events_and_addinfo_reports_it() -> None:
    evs = [ev(100), ev(200), ev(300)]
    rows = execute("search index=* | addinfo", evs, {}, NOW, time_range=(150_000, 300_000))
    assert col(rows, "_time") == [200]
    assert (rows[0]["info_min_time"], rows[0]["info_max_time"]) == (150.0, 300.0)
    assert rows[0]["info_search_time"] == NOW / 1000
    # all time: earliest is the epoch, latest +Infinity (Search Reference, "Addinfo")
    rows = run("search index=* | addinfo | where _time-150>=info_min_time", evs)
    assert col(rows, "_time") == [300, 200]
    assert {r["info_max_time"] for r in rows} == {"+Infinity"}
    # time modifiers in the search string override the search's time range
    rows = execute("search earliest=-1000s index=*", evs, {}, NOW, time_range=(150_000, 300_000))
    assert rows == []
    with pytest.raises(SplRuntimeError, match="no arguments"):
        run("search index=* | addinfo x", evs)


def test_equal_times_come_in_reverse_input_order() -> None:
    evs = [ev(5, i="first"), ev(5, i="second")]
    assert col(run("search index=*", evs), "i") == ["second", "first"]
    assert col(run("search index=* | sort 0 _time", evs), "i") == ["second", "first"]


# --------------------------------------------------------------------------- where / eval
def test_where_is_case_sensitive_and_numeric_text_compares_as_numbers() -> None:
    evs = [ev(1, n="Cmd.exe", p="100"), ev(2, n="cmd.exe", p="99")]
    assert col(run('search index=* | where n=="cmd.exe"', evs), "_time") == [2]
    assert col(run("search index=* | where p>=100", evs), "_time") == [1]
    assert col(run("search index=* | where tonumber(p)>99", evs), "_time") == [1]


def test_null_comparisons_are_not_true_and_not_of_null_is_null() -> None:
    evs = [ev(1, n="a"), ev(2)]
    assert col(run('search index=* | where NOT n=="a"', evs), "_time") == []
    assert col(run('search index=* | where isnull(n) OR NOT n=="a"', evs), "_time") == [2]


def test_eval_arithmetic_concatenation_and_division_by_zero() -> None:
    rows = run(
        'search index=* | eval r=if(b==0, null(), a/b), s=a+b, c="x" . a, d=a/0, e=s*2',
        [ev(1, a="6", b="3"), ev(2, a="6", b="0")],
    )
    assert col(rows, "r") == [None, 2]
    assert col(rows, "s") == [6, 9]
    assert col(rows, "c") == ["x6", "x6"]
    assert col(rows, "d") == [None, None]
    assert col(rows, "e") == [12, 18]  # later assignments see earlier ones


def test_multivalue_eval() -> None:
    """mvfilter() tests every value of its one field; operators and functions whose per-value
    meaning Splunk does not document refuse a multivalue instead of guessing one."""
    e = ev(10, m=["10.1.2.3", "8.8.8.8", "x"], n=["5", "50"])
    q = (
        'search index=* | eval a=mvfilter(cidrmatch("10.0.0.0/8", m)), '
        'b=mvfilter(tonumber(n)>=10), c=mvfilter(m=="none"), '
        'd=if(isnull(mvfilter(m=="x")), 1, 0)'
    )
    (r,) = run(q, [e])
    assert r["a"] == "10.1.2.3" and r["b"] == "50" and "c" not in r and r["d"] == 0
    # tests are read through if(), since eval cannot store a boolean
    tests = ['m=="x"', 'like(m, "x%")', 'match(m, "x")', 'cidrmatch("10.0.0.0/8", m)']
    for expr in [*(f"if({t}, 1, 0)" for t in tests), "lower(m)", "tonumber(n)"]:
        with pytest.raises(NotExecutable, match="multivalue"):
            run(f"search index=* | eval z={expr}", [e])


def test_eval_functions() -> None:
    e = ev(
        10, p="C:\\Windows\\PowerShell.EXE", h="Sub.Example.COM", ip=" ::ffff:10.1.2.3 ",
        m=["a", "b", "a"], x="5", y="notnum",
    )  # fmt: skip
    q = (
        'search index=* | eval base=replace(p, "^.*[\\\\\\\\/]", ""), low=lower(y), '
        'rd=replace(lower(h), "^(?:.*\\\\.)?([^.]+\\\\.[^.]+)\\\\.?$", "\\\\1"), '
        'v4=replace(trim(ip), "(?i)^::ffff:(\\\\d+\\\\.\\\\d+\\\\.\\\\d+\\\\.\\\\d+)$", "\\\\1"), '
        'inside=if(cidrmatch("10.0.0.0/8", v4), 1, 0), '
        'lk=if(like(lower(p), "%powershell%"), 1, 0), mt=if(match(h, "(?i)^sub\\\\."), 1, 0), '
        'pos=mvfind(m, "^b$"), dd=mvdedup(m), n=tonumber(y), big=max(x, 3), small=min(x, 3), '
        'co=coalesce(zz, y), ln=len(h), cs=case(x==4, "four", x==5, "five"), ab=abs(-2), '
        'fl=floor(2.7), rt=relative_time(now(), "-30s")'
    )
    (r,) = run(q, [e])
    assert r["base"] == "PowerShell.EXE"
    assert r["low"] == "notnum"
    assert r["rd"] == "example.com"
    assert r["inside"] == 1
    assert r["lk"] == 1 and r["mt"] == 1
    assert r["pos"] == 1 and r["dd"] == ["a", "b"]
    assert "n" not in r  # tonumber of text that is no number is null
    assert r["big"] == 5 and r["small"] == 3
    assert r["co"] == "notnum" and r["ln"] == 15 and r["cs"] == "five"
    assert r["ab"] == 2 and r["fl"] == 2 and r["rt"] == NOW / 1000 - 30


def test_eval_cannot_store_a_boolean_and_unknown_functions_are_reported() -> None:
    with pytest.raises(SplRuntimeError):
        run("search index=* | eval b=1==1", [ev(1)])
    with pytest.raises(NotExecutable, match="eval function sha256"):
        run("search index=* | eval h=sha256(x)", [ev(1, x="a")])


BOOLEAN_ASSIGNMENTS = [
    "a==b",  # the derive `labels.same_host: source.ip == destination.ip` once emitted this
    "(a==b)",
    "a!=1 AND b<2",
    "NOT a==b",
    'like(a, "x%")',
    'match(a, "x")',
    'cidrmatch("10.0.0.0/8", a)',
    "isnull(a)",
    "isnotnull(a)",
    "true()",
    "if(a==b, true(), false())",
    "coalesce(a==b, 1)",
]


@pytest.mark.parametrize("expr", BOOLEAN_ASSIGNMENTS)
def test_eval_rejects_a_boolean_whatever_the_data(expr: str) -> None:
    # a null operand makes a==b null, and no rows evaluate nothing: still a search error
    for rows in ([ev(1)], [ev(1, a="x", b="x")], []):
        with pytest.raises(SplRuntimeError, match="boolean"):
            run(f"search index=* | eval x={expr}", rows)


def test_eval_stores_a_condition_through_if() -> None:
    rows = run(
        'search index=* | eval s=if(a==b, "true", "false") | where s=="true"',
        [ev(1, a="10.0.0.1", b="10.0.0.1"), ev(2, a="10.0.0.1", b="10.0.0.2"), ev(3, b="x")],
    )
    assert col(rows, "_time") == [1]


# --------------------------------------------------------------------------- bin / stats
def test_bin_aligns_to_the_epoch_and_a_window_end_starts_the_next_bin() -> None:
    rows = run("search index=* | bin span=1h _time", [ev(3599.999), ev(3600), ev(7300)])
    assert sorted(col(rows, "_time")) == [0, 3600, 7200]
    with pytest.raises(NotExecutable):
        run("search index=* | bin span=1d _time", [ev(1)])


def test_stats_ignores_nulls_drops_null_groups_and_sorts_by_group() -> None:
    evs = [ev(1, h="b", v="2"), ev(2, h="a", v="x"), ev(3, h="b"), ev(4, v="7"),
           ev(5, h="a", v="4")]  # fmt: skip
    rows = run(
        "search index=* | stats count count(v) AS nv dc(v) AS dv sum(v) AS s avg(v) AS a "
        "min(v) AS lo max(v) AS hi BY h",
        evs,
    )
    assert col(rows, "h") == ["a", "b"]
    assert rows[0] == {"h": "a", "count": 2, "nv": 2, "dv": 2, "s": 4, "a": 4.0, "lo": 4, "hi": 4}
    assert rows[1]["count"] == 2 and rows[1]["nv"] == 1


def test_stats_multivalue_by_field_counts_in_each_group_and_stdev_exactperc() -> None:
    rows = run("search index=* | stats count BY h", [ev(1, h=["a", "b"]), ev(2, h="a")])
    assert [(r["h"], r["count"]) for r in rows] == [("a", 2), ("b", 1)]
    vals = [ev(i, v=str(i)) for i in range(1, 11)]
    (r,) = run("search index=* | stats exactperc50(v) AS p stdev(v) AS sd", vals)
    assert r["p"] == 5.5  # the Stats reference's example
    assert abs(r["sd"] - 3.0276503540974917) < 1e-12


# --------------------------------------------------------------------------- streamstats
def test_streamstats_time_window_is_inclusive_and_per_group() -> None:
    evs = [ev(0, h="a"), ev(60, h="a"), ev(60.001, h="b"), ev(120.001, h="a")]
    rows = run("search index=* | sort 0 _time | streamstats time_window=1m count AS n BY h", evs)
    assert col(rows, "n") == [1, 2, 1, 1]


def test_streamstats_current_false_last_and_null_group() -> None:
    evs = [ev(1, h="a", v="x"), ev(2, h="a"), ev(3, h="a", v="y"), ev(4)]
    rows = run(
        "search index=* | sort 0 _time | streamstats current=f last(v) AS lv count(v) AS c BY h",
        evs,
    )
    assert col(rows, "lv") == [None, "x", "x", None]
    assert col(rows, "c") == [0, 1, 1, None]


def test_streamstats_time_window_needs_sorted_events() -> None:
    evs = [ev(1, i="1"), ev(3, i="2"), ev(2, i="3")]
    with pytest.raises(SplRuntimeError, match="sorted"):
        run("search index=* | sort 0 i | streamstats time_window=1m count", evs)


_DOC = [("x", 100, "LOGON"), ("y", 200, "APP_START"), ("x", 400, "FILE_DOWNLOAD"),
        ("x", 50, "REBOOT"), ("y", 150, "LOGON"), ("x", 100, "LOGON")]  # fmt: skip


def _doc_events() -> list[dict[str, Any]]:
    """The SPL2 streamstats pages' example data, in order (sorted by _time below)."""
    return [ev(i, host=h, bytes=str(b), action=a) for i, (h, b, a) in enumerate(_DOC)]


def test_streamstats_window_is_the_last_n_events_with_the_current_one() -> None:
    # "the average of the bytes field over the last 3 events, including the current event"
    rows = run(
        "search index=* | sort 0 _time | streamstats window=3 avg(bytes) AS a", _doc_events()
    )
    assert [round(r["a"], 2) for r in rows] == [100, 150, 233.33, 216.67, 200, 100]


def test_streamstats_reset_after_resets_every_group() -> None:
    # SPL2 "streamstats command usage": "The sum of the bytes is reset for both the y and x hosts
    # in the next events"
    rows = run(
        'search index=* | sort 0 _time | streamstats reset_after="(action==\\"REBOOT\\")" '
        "sum(bytes) AS total_bytes BY host",
        _doc_events(),
    )
    assert col(rows, "total_bytes") == [100, 200, 500, 550, 150, 100]


def test_streamstats_reset_after_reads_its_own_results_and_resets_the_window() -> None:
    evs = [ev(t, h="a") for t in range(7)]
    rows = run(
        'search index=* | sort 0 _time | streamstats window=3 global=false reset_after="(n>=2)" '
        "count AS n min(_time) AS f BY h",
        evs,
    )
    assert col(rows, "n") == [1, 2, 1, 2, 1, 2, 1]
    assert col(rows, "f") == [0, 0, 2, 2, 4, 4, 6]


def test_streamstats_window_per_group_needs_global_false() -> None:
    evs = [ev(1, h="a"), ev(2, h="b"), ev(3, h="a"), ev(4, h="a")]
    rows = run(
        "search index=* | sort 0 _time | streamstats window=2 global=false count AS n BY h", evs
    )
    assert col(rows, "n") == [1, 1, 2, 2]
    # global=true (the default) is "a single window" for every group: its per-group reading
    # is not documented
    with pytest.raises(NotExecutable, match="global=false"):
        run("search index=* | streamstats window=2 count AS n BY h", evs)
    with pytest.raises(NotExecutable, match="time_window"):
        run('search index=* | sort 0 _time | streamstats time_window=1m reset_after="(n>1)" '
            "count AS n", evs)  # fmt: skip


def test_sort_str_orders_values_as_text() -> None:
    evs = [ev(1, k="9"), ev(2, k="7.0"), ev(3, k="10"), ev(4, k="7"), ev(5, k="7")]
    assert col(run("search index=* | sort 0 k _time", evs), "k") == ["7.0", "7", "7", "9", "10"]
    rows = run("search index=* | sort 0 str(k) _time", evs)
    assert col(rows, "k") == ["10", "7", "7", "7.0", "9"]
    assert col(rows, "_time") == [3, 4, 5, 2, 1]
    rows = run("search index=* | sort 0 -str(k) _time", evs)
    assert col(rows, "k") == ["9", "7.0", "7", "7", "10"]


# --------------------------------------------------------------------------- lookup / rex
def test_lookup_case_sensitivity_max_matches_and_output_clears() -> None:
    table = LookupDef([{"host": "WEB01", "role": "web"}, {"host": "web01", "role": "other"}],
                      case_sensitive=False, max_matches=1)  # fmt: skip
    evs = [ev(1, dvc="web01", role="old"), ev(2, dvc="db9", role="old")]
    rows = run("search index=* | lookup inv host AS dvc OUTPUT role AS role", evs, inv=table)
    assert col(rows, "role") == [None, "web"]
    cased = LookupDef(table.rows)  # defaults: case-sensitive, up to 1000 matches
    rows = run("search index=* | lookup inv host AS dvc OUTPUTNEW role AS r2", evs, inv=cased)
    assert col(rows, "r2") == [None, "other"]


def test_rex_max_match_zero_collects_every_match() -> None:
    rows = run(
        'search index=* | rex field=a max_match=0 "(?<ip>\\\\d+\\\\.\\\\d+)"',
        [ev(1, a="1.2;3.4;x"), ev(2, a="none")],
    )
    assert col(rows, "ip") == [None, ["1.2", "3.4"]]


# --------------------------------------------------------------------------- transaction / join
def test_transaction_start_end_maxspan_and_newest_end_first() -> None:
    evs = [
        ev(0, k="a", s="start"), ev(10, k="a", s="start"), ev(30, k="a", s="end"),
        ev(100, k="b", s="start"), ev(131, k="b", s="end"),
        ev(200, k="c", s="end"), ev(210, k="c", s="start"),
    ]  # fmt: skip
    rows = run(
        'search index=* | transaction k startswith=eval(s=="start") endswith=eval(s=="end") '
        "maxspan=30s",
        evs,
    )
    assert [(r["k"], r["_time"], r["duration"], r["eventcount"]) for r in rows] == [
        ("a", 10, 20, 2)
    ]
    assert rows[0]["s"] == ["end", "start"]  # union of values, sorted


def test_join_left_and_inner_with_overwrite() -> None:
    evs = [ev(1, k="a", v="main", src="m"), ev(2, k="b", src="m"), ev(3, k="a", v="sub", src="s")]
    sub = "[search src=s | stats max(v) AS v count AS n BY k]"
    left = run(f"search src=m | join type=left max=1 k {sub}", evs)
    assert [(r["k"], r.get("v"), r.get("n")) for r in left] == [("b", None, None), ("a", "sub", 1)]
    inner = run(f"search src=m | join k {sub}", evs)
    assert col(inner, "k") == ["a"]


# --------------------------------------------------------------------------- the rest
def test_multisearch_interleaves_branches_newest_first() -> None:
    evs = [ev(1, a="x"), ev(2, b="y"), ev(3, a="x")]
    rows = run('| multisearch [search a=x | eval t="A"] [search b=y | eval t="B"]', evs)
    assert col(rows, "t") == ["A", "B", "A"]


def test_mvexpand_sort_fields_table_rename() -> None:
    rows = run(
        "search index=* | mvexpand m | sort 0 -m | rename m AS n | fields - x* | table n y",
        [ev(1, m=["2", "10", "b"], x1="1", y="k")],
    )
    assert rows == [{"n": "b", "y": "k"}, {"n": "10", "y": "k"}, {"n": "2", "y": "k"}]


def test_unknown_commands_are_not_executable() -> None:
    with pytest.raises(NotExecutable, match="not executable by the interpreter: dedup"):
        run("search index=* | dedup a", [ev(1)])
    with pytest.raises(NotExecutable, match="search term without a field"):
        run("search error", [ev(1)])


# --------------------------------------------------------------------------- macros, reverse
def test_macros_expand_to_their_definitions_and_an_unknown_one_is_an_error() -> None:
    evs = [ev(1, n="a", s="x"), ev(2, n="b", s="y")]
    rows = execute("search `src` | `flt`", evs, {}, NOW, {"src": "s=x", "flt": "search *"})
    assert col(rows, "n") == ["a"]
    with pytest.raises(SplRuntimeError, match="macro 'nope' that cannot be found"):
        execute("search `nope`", evs, {}, NOW, {})


def test_search_star_keeps_every_result() -> None:
    evs = [ev(1, n="a"), ev(2)]
    assert col(run("search index=* | stats count BY n | search *", evs), "count") == [1]


def test_reverse_gives_the_input_order_of_equal_times() -> None:
    evs = [ev(5, i="first"), ev(5, i="second"), ev(4, i="zero")]
    assert col(run("search index=* | reverse", evs), "i") == ["zero", "first", "second"]
    with pytest.raises(SplRuntimeError):
        run("search index=* | reverse x", evs)


# --------------------------------------------------------------------------- eventstats
def test_eventstats_adds_group_statistics_to_every_row_in_place() -> None:
    evs = [ev(1, k="a", v=3), ev(2, k="b", v=5), ev(3, k="a", v=4), ev(4, v=9)]
    rows = run("search index=* | reverse | eventstats count(v) AS n max(v) AS m BY k", evs)
    assert col(rows, "_time") == [1, 2, 3, 4]  # the rows stay, in their order
    assert col(rows, "n") == [2, 1, 2, None]  # no BY field: no statistics
    assert col(rows, "m") == [4, 5, 4, None]
    with pytest.raises(NotExecutable, match="multivalue"):
        run("search index=* | eventstats count BY k", [ev(1, k=["a", "b"])])


def test_streamstats_last_skips_nulls_and_current_false_leaves_the_row_out() -> None:
    evs = [ev(1, k="a", x="p"), ev(2, k="a"), ev(3, k="a", x="q"), ev(4, k="a")]
    rows = run("search index=* | reverse | streamstats current=f last(x) AS px BY k", evs)
    assert col(rows, "px") == [None, "p", "p", "q"]


# --------------------------------------------------------------------------- multivalue functions
def test_split_mvrange_mvjoin_mvsort_mvappend_substr_ceil() -> None:
    rows = run(
        'search index=* | eval l=split(d, "."), i=mvrange(0, mvcount(l)), '
        'c=mvmap(i, mvjoin(mvindex(l, i, -1), ".")), s=mvsort(mvappend("b", "a10", "a9")), '
        "t=substr(d, 3, 7), u=substr(d, -3), r=ceil(x)",
        [ev(1, d="a.b.example", x=1.2)],
    )
    (r,) = rows
    assert r["l"] == ["a", "b", "example"] and r["i"] == [0, 1, 2]
    assert r["c"] == ["a.b.example", "b.example", "example"]
    assert r["s"] == ["a10", "a9", "b"]  # lexicographic
    assert (r["t"], r["u"], r["r"]) == ("b.examp", "ple", 2)


def test_lookup_multivalue_input_matches_each_value_in_file_order() -> None:
    table = LookupDef(
        [{"k": "x", "o": "1"}, {"k": "Y", "o": "2"}, {"k": "z", "o": "3"}],
        case_sensitive=True,
        max_matches=1000,
    )
    rows = run("search index=* | lookup t k AS f OUTPUT o", [ev(1, f=["z", "y", "x"])], t=table)
    assert rows[0]["o"] == ["1", "3"]  # Y is not y: case-sensitive; rows in file order
