"""Transforming and order-dependent commands: bin, stats, streamstats, transaction.

Statistical functions (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/CommonStatsFunctions):
every function but ``count`` ignores null values; a multivalue field contributes each value;
``sum``/``avg``/``stdev``/``exactperc`` read the numeric values only; ``stdev`` is the sample
standard deviation; ``exactperc<p>`` interpolates linearly at rank ``p/100*(n-1)`` (the reference's
example: exactperc50 of 1..10 is 5.5); ``last`` is the last value in the order the command reads
its input; ``values`` is the distinct values' texts in lexicographical order;
``min``/``max`` compare numerically when there are numbers, else lexicographically.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import deque
from typing import Any

from tests.interpreters import spl_interp_eval as ev
from tests.interpreters.spl_interp_values import (
    NotExecutable,
    SplRuntimeError,
    mv,
    norm,
    num,
    number_out,
    span_seconds,
    text,
)
from tests.oracles.spl_grammar import Cursor, _options, _string_value, lex

Row = dict[str, Any]
_PERC = re.compile(r"^exactperc(\d+(?:\.\d+)?)$")


# ---------------------------------------------------------------------- aggregation terms
class Agg:
    def __init__(self, fn: str, field: str | None, out: str) -> None:
        if fn == "distinct_count":
            fn = "dc"
        if fn not in _FUNCS and not _PERC.match(fn):
            raise NotExecutable(f"stats function {fn}")
        self.fn, self.field, self.out = fn, field, out

    def compute(self, rows: list[Row]) -> Any:
        if self.field is None:
            if self.fn != "count":
                raise SplRuntimeError(f"{self.fn} needs a field")
            return len(rows)
        values = [v for r in rows for v in mv(r.get(self.field))]
        m = _PERC.match(self.fn)
        if m:
            return _exactperc(values, float(m.group(1)))
        return _FUNCS[self.fn](values)


def _numbers(values: list[Any]) -> list[float | int]:
    return [n for n in (num(v) for v in values) if n is not None]


def _sum(values: list[Any]) -> Any:
    ns = _numbers(values)
    return number_out(math.fsum(ns)) if ns else None


def _avg(values: list[Any]) -> Any:
    ns = _numbers(values)
    return math.fsum(ns) / len(ns) if ns else None


def _stdev(values: list[Any]) -> Any:
    ns = _numbers(values)
    if len(ns) < 2:
        return None  # the sample standard deviation of one value is undefined
    mean = math.fsum(ns) / len(ns)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in ns) / (len(ns) - 1))


def _extreme(values: list[Any], biggest: bool) -> Any:
    ns = _numbers(values)
    if ns:
        return max(ns) if biggest else min(ns)
    strs = [text(v) for v in values]
    if not strs:
        return None
    return max(strs) if biggest else min(strs)


def _exactperc(values: list[Any], p: float) -> Any:
    ns = sorted(_numbers(values))
    if not ns:
        return None
    rank = p / 100 * (len(ns) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(ns) - 1)
    return number_out(ns[lo] + (ns[hi] - ns[lo]) * (rank - lo))


_FUNCS: dict[str, Any] = {
    "count": len,
    "dc": lambda vs: len({text(v) for v in vs}),
    "sum": _sum,
    "avg": _avg,
    "stdev": _stdev,
    "min": lambda vs: _extreme(vs, False),
    "max": lambda vs: _extreme(vs, True),
    # the distinct values as a multivalue, in lexicographical order
    # (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Multivaluestatsandchartfunctions#values)
    "values": lambda vs: norm(sorted({text(v) for v in vs})),
    "first": lambda vs: vs[0] if vs else None,
    "last": lambda vs: vs[-1] if vs else None,
}


def parse_aggs(c: Cursor) -> tuple[list[Agg], list[str]]:
    """``fn[(field)] [AS name] ... [BY f1 f2]`` (Stats reference, "Syntax")."""
    aggs: list[Agg] = []
    while not c.done() and not (c.at("WORD", "BY") or c.at("WORD", "by")):
        fn = c.expect("WORD").text
        field = None
        if c.at("LP"):
            c.next()
            field = c.expect("WORD").text
            c.expect("RP")
        out = f"{fn}({field})" if field else fn
        if c.at("WORD", "AS") or c.at("WORD", "as"):
            c.next()
            out = c.expect("WORD").text
        if c.at("COMMA"):
            c.next()
        aggs.append(Agg(fn, field, out))
    by: list[str] = []
    if not c.done():
        c.next()
        while not c.done():
            t = c.next()
            if t.kind != "COMMA":
                by.append(t.text)
    return aggs, by


def sort_key(v: Any) -> tuple[int, Any]:
    """Splunk's sort order of values: numbers numerically, then strings lexicographically."""
    n = num(v) if not isinstance(v, list) else None
    if n is not None:
        return (0, n)
    return (1, text(v) if not isinstance(v, list) else "\n".join(map(text, v)))


# ---------------------------------------------------------------------- commands
def cmd_bin(rows: list[Row], args: str) -> list[Row]:
    """``bin span=<span> _time``: ``_time`` becomes the start of its span, spans aligned to the
    epoch (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Bin: aligntime
    aligns "to something other than base UTC time (epoch 0)"; spans of a day or more align to
    local midnight, so the interpreter runs in UTC and refuses them)."""
    c = Cursor(lex(args, "search"), "bin")
    opts = _options(c, {"span": lambda t: True, "aligntime": lambda t: True}, "bin")
    field = c.expect("WORD").text
    if field != "_time" or "span" not in opts or "aligntime" in opts:
        raise NotExecutable(f"bin {args}")
    span = span_seconds(opts["span"])
    if span >= 86400:
        raise NotExecutable("bin span of a day or more (local-midnight alignment)")
    out = []
    for r in rows:
        t = num(r.get("_time"))
        if t is None:
            continue
        out.append({**r, "_time": number_out(math.floor(t / span) * span)})
    return out


def _group_keys(row: Row, by: list[str]) -> list[tuple[Any, ...]]:
    """stats: an event without a BY field is left out; a multivalue BY field puts the event in
    the group of each of its values."""
    keys: list[tuple[Any, ...]] = [()]
    for f in by:
        values = mv(row.get(f))
        if not values:
            return []
        keys = [(*k, v) for k in keys for v in dict.fromkeys(values)]
    return keys


def cmd_stats(rows: list[Row], args: str) -> list[Row]:
    """One result per group of BY values, sorted by the BY values
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Stats)."""
    aggs, by = parse_aggs(Cursor(lex(args, "search"), "stats"))
    groups: dict[tuple[Any, ...], tuple[tuple[Any, ...], list[Row]]] = {}
    for r in rows:
        for k in _group_keys(r, by):
            groups.setdefault(tuple(text(x) for x in k), (k, []))[1].append(r)
    if not by and not groups:
        groups[()] = ((), [])
    out = []
    for key, members in groups.values():
        res: Row = dict(zip(by, key, strict=True))
        for a in aggs:
            v = a.compute(members)
            if v is not None:
                res[a.out] = v
        out.append(res)
    return sorted(out, key=lambda r: tuple(sort_key(r.get(f)) for f in by))


def cmd_eventstats(rows: list[Row], args: str) -> list[Row]:
    """The statistics of each row's BY group added to the row, the rows kept in their order
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eventstats): a row
    without a BY field gets none; a multivalue BY field puts the row in the group of each
    value, so it takes the statistics of none unless it has one value (the interpreter refuses
    such rows rather than guess)."""
    aggs, by = parse_aggs(Cursor(lex(args, "search"), "eventstats"))
    groups: dict[tuple[str, ...], list[Row]] = {}
    keyed: list[tuple[str, ...] | None] = []
    for r in rows:
        keys = _group_keys(r, by)
        if len(keys) > 1:
            raise NotExecutable("eventstats BY a multivalue field")
        key = tuple(text(x) for x in keys[0]) if keys else None
        keyed.append(key)
        if key is not None:
            groups.setdefault(key, []).append(r)
    stats = {k: {a.out: a.compute(members) for a in aggs} for k, members in groups.items()}
    out = []
    for r, key in zip(rows, keyed, strict=True):
        res = dict(r)
        if key is not None:
            for name, v in stats[key].items():
                if v is None:
                    res.pop(name, None)
                else:
                    res[name] = v
        out.append(res)
    return out


def cmd_streamstats(rows: list[Row], args: str, env: ev.Env | None = None) -> list[Row]:
    """Running statistics over each event's BY group, in input order
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Streamstats):
    ``current=f`` leaves the event itself out; ``time_window`` keeps the group's events within
    that span of the current event (the input must be sorted by time, else Splunk stops with an
    error). The span is taken as inclusive (an event exactly ``time_window`` away is in the
    window): the reference does not say, and this reading is the interpreter's assumption. An
    event with a null BY field gets no statistics.

    ``window=N``: the statistics of the last N events (the current one included). With a BY
    clause, ``global=false`` keeps one window per group; the default ``global=true`` is "a
    single window" whose per-group reading the reference leaves open, so it is refused.
    ``reset_after="(<eval>)"``: after the event's statistics are produced, a true expression
    resets *all* accumulated statistics, every group's ("the sum of the bytes is reset for both
    the y and x hosts in the next events", SPL2 streamstats command usage,
    https://help.splunk.com/splunk-enterprise/search/spl2-search-reference/streamstats-command);
    the expression may read the fields streamstats has just produced, and with ``window`` the
    window is reset too (Streamstats reference, reset_after). It is evaluated on every event,
    also one without a BY field. Combined with ``time_window`` the reference does not say what
    a reset keeps: refused."""
    c = Cursor(lex(args, "search"), "streamstats")
    opts = _options(
        c,
        {
            k: lambda t: True
            for k in (
                "current", "window", "time_window", "global", "reset_on_change", "allnum",
                "reset_after", "reset_before",
            )
        },
        "streamstats",
    )  # fmt: skip
    for bad in ("reset_on_change", "allnum", "reset_before"):
        if bad in opts:
            raise NotExecutable(f"streamstats {bad}=")
    aggs, by = parse_aggs(c)
    current = opts.get("current", "t").lower() in ("t", "true", "1")
    count_window = int(opts.get("window", "0"))
    span = span_seconds(opts["time_window"]) if "time_window" in opts else None
    global_window = opts.get("global", "t").lower() in ("t", "true", "1")
    if count_window and by and global_window:
        raise NotExecutable("streamstats window= BY ... without global=false")
    reset: ev.Node | None = None
    if "reset_after" in opts:
        if span is not None:
            raise NotExecutable("streamstats reset_after= with time_window=")
        inner = _string_value(opts["reset_after"]).strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise SplRuntimeError('reset_after takes "(<eval-expression>)"')
        reset = ev.parse(inner, "streamstats reset_after")
    if span is not None:
        times = [num(r.get("_time")) for r in rows]
        asc = all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(times))
        desc = all(a is not None and b is not None and a >= b for a, b in itertools.pairwise(times))
        if not (asc or desc):
            raise SplRuntimeError("streamstats time_window needs events sorted by _time")
    fields = [a.field for a in aggs if a.field is not None]
    windows: dict[tuple[Any, ...], deque[Row]] = {}
    out = []
    for r in rows:
        keyvals = [r.get(f) for f in by]
        res = dict(r)
        if not any(v is None for v in keyvals):
            key = tuple(
                text(v) if not isinstance(v, list) else tuple(map(text, v)) for v in keyvals
            )
            win = windows.setdefault(key, deque())
            t = num(r.get("_time"))
            if span is not None:
                while win and t is not None and abs(t - (num(win[0]["_time"]) or 0)) > span:
                    win.popleft()
            snap = {f: r.get(f) for f in fields}
            snap["_time"] = r.get("_time")
            members = [*win, snap] if current else list(win)
            if count_window:
                members = members[-count_window:]
            for a in aggs:
                v = a.compute(members)
                if v is None:
                    res.pop(a.out, None)
                else:
                    res[a.out] = v
            win.append(snap)
            if count_window and len(win) > count_window:
                win.popleft()
        if reset is not None and ev.truth(ev.evaluate(reset, res, env or ev.Env(0))):
            windows.clear()
        out.append(res)
    return out


def _truthy_filter(spec: str, which: str) -> ev.Node:
    m = re.match(r"^eval\((.*)\)$", spec.strip(), re.DOTALL)
    if not m:
        raise NotExecutable(f"transaction {which}= other than eval(...)")
    return ev.parse(m.group(1), f"transaction {which}")


def _split_options(args: str) -> tuple[list[str], dict[str, str]]:
    fields: list[str] = []
    opts: dict[str, str] = {}
    i = 0
    while i < len(args):
        if args[i].isspace():
            i += 1
            continue
        m = re.match(r"(\w+)=", args[i:])
        if (
            m
            and m.group(1) in ("startswith", "endswith")
            and args[i + m.end() :].startswith("eval(")
        ):
            j = i + m.end() + len("eval(")
            depth = 1
            while depth and j < len(args):
                if args[j] == '"':
                    j += 1
                    while j < len(args) and args[j] != '"':
                        j += 2 if args[j] == "\\" else 1
                depth += {"(": 1, ")": -1}.get(args[j], 0)
                j += 1
            opts[m.group(1)] = args[i + m.end() : j]
            i = j
            continue
        j = i
        while j < len(args) and not args[j].isspace():
            j += 1
        word = args[i:j]
        if "=" in word:
            k, _, v = word.partition("=")
            opts[k] = v
        else:
            fields.append(word)
        i = j
    return fields, opts


def cmd_transaction(rows: list[Row], args: str, env: ev.Env) -> list[Row]:
    """``transaction f1 f2 startswith=eval(..) endswith=eval(..) maxspan=<span>``
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Transaction).

    Events are read newest first (the order search returns them). Per value of the fields, an
    ``endswith`` event opens a transaction (an open one that has not met its start is evicted:
    an end event ends its own transaction), events that are neither join the open transaction,
    and a ``startswith`` event joins it and completes it. A transaction whose events would span
    more than ``maxspan`` is evicted (a span of exactly maxspan is allowed: "the maximum length
    of time ... that the events can span"); evicted transactions are dropped (keepevicted=false).
    The result has the earliest event's ``_time``, ``duration`` = last - first, ``eventcount``,
    and every other field as the union of the members' values (mvlist=false: distinct values,
    sorted lexicographically)."""
    fields, opts = _split_options(args)
    unknown = set(opts) - {"startswith", "endswith", "maxspan"}
    if unknown:
        raise NotExecutable(f"transaction {', '.join(sorted(unknown))}=")
    start = _truthy_filter(opts["startswith"], "startswith") if "startswith" in opts else None
    end = _truthy_filter(opts["endswith"], "endswith") if "endswith" in opts else None
    if start is None or end is None:
        raise NotExecutable("transaction without both startswith and endswith")
    maxspan = span_seconds(opts["maxspan"]) if "maxspan" in opts else math.inf
    ordered = sorted(rows, key=lambda r: -(num(r.get("_time")) or 0))
    groups: dict[tuple[str, ...], list[Row]] = {}
    for r in ordered:
        values = [r.get(f) for f in fields]
        if any(v is None or isinstance(v, list) for v in values):
            continue
        groups.setdefault(tuple(text(v) for v in values), []).append(r)
    done: list[list[Row]] = []
    for members in groups.values():
        open_: list[Row] | None = None
        for r in members:
            t = num(r.get("_time")) or 0
            if open_ is not None and (num(open_[0]["_time"]) or 0) - t > maxspan:
                open_ = None  # evicted
            if ev.truth(ev.evaluate(end, r, env)):
                open_ = [r]
                if ev.truth(ev.evaluate(start, r, env)):
                    done.append(open_)
                    open_ = None
                continue
            if open_ is None:
                continue  # orphan
            open_.append(r)
            if ev.truth(ev.evaluate(start, r, env)):
                done.append(open_)
                open_ = None
    out = [_merge(m) for m in done]
    return sorted(out, key=lambda r: -(num(r["_time"]) or 0))


def _merge(members: list[Row]) -> Row:
    times = [num(m["_time"]) or 0 for m in members]
    res: Row = {}
    for m in reversed(members):  # oldest first
        for k, v in m.items():
            if k == "_time":
                continue
            res.setdefault(k, [])
            for x in mv(v):
                if x not in res[k]:
                    res[k].append(x)
    for k, vals in list(res.items()):
        if k.startswith("_"):
            res[k] = vals[0] if vals else None
            continue
        vals = sorted(vals, key=text)
        res[k] = vals[0] if len(vals) == 1 else vals
    res["_time"] = min(times)
    res["duration"] = number_out(max(times) - min(times))
    res["eventcount"] = len(members)
    return res
