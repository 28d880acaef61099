"""An interpreter for the subset of Splunk SPL that siemc's splunk backend emits.

No Splunk engine exists offline (docs: /work/shared/reference/oracles.md), so the differential
test of the splunk backend runs its queries here. The query text is split and tokenised with the
grammar oracle (``tests/oracles/spl_grammar.py``), parsed into an AST (eval and search
expressions, :mod:`spl_interp_eval`, :mod:`spl_interp_search`) and run command by command, each
as its Search Reference page describes it (cited per command, base
https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/). It never sees siemc's IR.

``execute(query, events, lookups, now_ms)``: ``events`` are Splunk events (dicts with CIM field
names and ``_time`` in seconds; search-time extracted values are strings, multivalues lists);
``lookups`` maps a lookup definition name to its rows. Returns the result rows. ``time_range``
is the search's time range (a scheduled search's ``dispatch.earliest_time`` /
``dispatch.latest_time`` resolved to epoch milliseconds; None: all time): the index returns only
its events, and ``addinfo`` reports it.

Order: a search returns events newest first; events with equal ``_time`` come in reverse input
order (the newest-indexed first). ``sort`` is stable. Commands outside the subset raise
:class:`NotExecutable` ("not executable by the interpreter: <command>").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tests.interpreters import spl_interp_eval as ev
from tests.interpreters import spl_interp_search as sx
from tests.interpreters import spl_interp_stats as st
from tests.interpreters.spl_interp_values import (
    NotExecutable,
    SplRuntimeError,
    mv,
    norm,
    num,
    pcre,
    text,
    wildcard,
)
from tests.oracles.spl_grammar import (
    Cursor,
    SplError,
    _options,
    _string_value,
    expand_macros,
    lex,
    split_pipes,
    strip_comments,
)

__all__ = ["LookupDef", "NotExecutable", "SplRuntimeError", "execute"]

Row = dict[str, Any]
SEQ = "_siemc_seq"  # input position of an event (hidden, dropped from the results)


class LookupDef:
    """A CSV lookup definition (transforms.conf): rows in file order, ``case_sensitive_match``
    (default true) and ``max_matches`` (default 1000 for a CSV lookup without time)
    (https://docs.splunk.com/Documentation/Splunk/latest/Admin/Transformsconf)."""

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        case_sensitive: bool = True,
        max_matches: int = 1000,
    ) -> None:
        self.rows = [dict(r) for r in rows]
        self.case_sensitive = case_sensitive
        self.max_matches = max_matches
        self._index: dict[str, dict[str, list[int]]] = {}

    def index(self, column: str) -> dict[str, list[int]]:
        """Row numbers by the (case-folded unless case-sensitive) text of a column, in file
        order; rows with an empty cell are left out (an empty cell matches nothing)."""
        if column not in self._index:
            idx: dict[str, list[int]] = {}
            for n, row in enumerate(self.rows):
                v = row.get(column)
                if v in (None, ""):
                    continue
                k = text(v) if self.case_sensitive else text(v).lower()
                idx.setdefault(k, []).append(n)
            self._index[column] = idx
        return self._index[column]


class Search:
    def __init__(
        self,
        events: Sequence[Mapping[str, Any]],
        lookups: Mapping[str, LookupDef | Sequence[Mapping[str, Any]]],
        now_ms: int,
        time_range: tuple[int | None, int | None] = (None, None),
    ) -> None:
        self.index = [{**e, "_time": num(e["_time"]), SEQ: i} for i, e in enumerate(events)]
        lo, hi = time_range
        self.range = (None if lo is None else lo / 1000, None if hi is None else hi / 1000)
        self.lookups = {
            k: v if isinstance(v, LookupDef) else LookupDef(v) for k, v in lookups.items()
        }
        self.env = ev.Env(now_ms / 1000)

    # ------------------------------------------------------------------ pipelines
    def run(self, query: str) -> list[Row]:
        segs = split_pipes(strip_comments(query))
        rows: list[Row] | None = None
        if not segs[0].strip():
            segs = segs[1:]
        for n, seg in enumerate(segs):
            name, _, args = seg.strip().partition(" ")
            if n == 0 and name != "multisearch" and name != "search":
                name, args = "search", seg.strip()
            if n == 0:
                rows = self.generate(name, args)
                continue
            assert rows is not None
            rows = self.command(name, args, rows)
        return rows or []

    def generate(self, name: str, args: str) -> list[Row]:
        if name == "search":
            return self.base_search(args)
        return self.multisearch(args)

    def base_search(self, args: str) -> list[Row]:
        """The events of the index matching the expression, newest first (Search reference)."""
        node = sx.parse(args)
        lo, hi = sx.time_bounds(node, self.env.now)
        if lo is None and hi is None:
            # time modifiers in the search string override the search's time range
            # (https://docs.splunk.com/Documentation/Splunk/latest/Search/Specifytimemodifiersinyoursearch)
            lo, hi = self.range
        out = [
            dict(e)
            for e in self.index
            if (lo is None or e["_time"] >= lo) and (hi is None or e["_time"] < hi)
            and sx.matches(node, e)
        ]  # fmt: skip
        return sorted(out, key=lambda r: (-r["_time"], -r[SEQ]))

    def multisearch(self, args: str) -> list[Row]:
        """``| multisearch [search ...] [search ...]``: the streaming subsearches run over the
        same events and their results are interleaved by time, newest first
        (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Multisearch)."""
        out: list[Row] = []
        for tok in lex(args, "search"):
            if tok.kind != "SUB":
                raise SplRuntimeError(f"multisearch takes subsearches, found {tok.text!r}")
            out += self.run(tok.text)
        return sorted(out, key=lambda r: (-r["_time"], -r.get(SEQ, 0)))

    def command(self, name: str, args: str, rows: list[Row]) -> list[Row]:
        if name == "search":
            snode = sx.parse(args)
            return [r for r in rows if sx.matches(snode, r)]
        if name == "where":
            enode = ev.parse(args, "where")
            return [r for r in rows if ev.truth(ev.evaluate(enode, r, self.env))]
        if name == "eval":
            return self.eval(rows, args)
        simple = {
            "rex": self.rex, "lookup": self.lookup, "fields": _fields, "table": _table,
            "rename": _rename, "sort": _sort, "mvexpand": _mvexpand, "bin": st.cmd_bin,
            "stats": st.cmd_stats, "join": self.join,
            "reverse": _reverse, "eventstats": st.cmd_eventstats,
        }  # fmt: skip
        if name in simple:
            return simple[name](rows, args)
        if name == "transaction":
            return st.cmd_transaction(rows, args, self.env)
        if name == "streamstats":
            return st.cmd_streamstats(rows, args, self.env)
        if name == "addinfo":
            return self.addinfo(rows, args)
        raise NotExecutable(name)

    def addinfo(self, rows: list[Row], args: str) -> list[Row]:
        """``addinfo``: every result gets ``info_min_time`` and ``info_max_time``, the earliest
        and latest time boundaries of the search, ``info_search_time`` and ``info_sid``
        (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Addinfo). An
        all-time search has no boundaries: its earliest is the epoch, 0, and its latest is
        ``+Infinity`` (the page's example: "info_max_time would be set to +infinity")."""
        if args.strip():
            raise SplRuntimeError("addinfo takes no arguments")
        lo, hi = self.range
        info = {
            "info_min_time": 0.0 if lo is None else float(lo),
            "info_max_time": "+Infinity" if hi is None else float(hi),
            "info_search_time": self.env.now,
            "info_sid": "siemc_interp",
        }
        return [{**r, **info} for r in rows]

    # ------------------------------------------------------------------ streaming commands
    def eval(self, rows: list[Row], args: str) -> list[Row]:
        """Assignments left to right; a null result removes the field; a boolean cannot be
        stored in a field (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Eval)."""
        assigns = ev.parse_assignments(args)
        for name, node in assigns:
            if ev.is_boolean(node):
                raise SplRuntimeError(f"eval {name}: fields cannot be assigned a boolean result")
        out = []
        for r in rows:
            res = dict(r)
            for name, node in assigns:
                v = ev.evaluate(node, res, self.env)
                if isinstance(v, bool):
                    raise SplRuntimeError(f"eval {name}: a boolean is not a field value")
                if v is None:
                    res.pop(name, None)
                else:
                    res[name] = v
            out.append(res)
        return out

    def rex(self, rows: list[Row], args: str) -> list[Row]:
        """``rex field=<f> [max_match=<n>] "<regex>"``: named groups become fields; max_match=0
        keeps every match as a multivalue; no match leaves the fields as they were
        (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Rex)."""
        c = Cursor(lex(args, "search"), "rex")
        opts = _options(c, {"field": lambda t: True, "max_match": lambda t: True}, "rex")
        rx = pcre(_string_value(c.expect("STR").text))
        c.end()
        field = opts.get("field", "_raw")
        limit = int(opts.get("max_match", "1"))
        names = list(rx.groupindex)
        out = []
        for r in rows:
            found: dict[str, list[Any]] = {n: [] for n in names}
            count = 0
            for value in mv(r.get(field)):
                for m in rx.finditer(text(value)):
                    if limit and count >= limit:
                        break
                    count += 1
                    for n in names:
                        if m.group(n) is not None:
                            found[n].append(m.group(n))
            res = dict(r)
            for n, vals in found.items():
                if vals:
                    res[n] = norm(vals)
            out.append(res)
        return out

    def lookup(self, rows: list[Row], args: str) -> list[Row]:
        """``lookup <name> col [AS f]... OUTPUT|OUTPUTNEW col [AS f]...``: an event matches a row
        when every input field equals its column (per the definition's case_sensitive_match; a
        multivalue field matches each value); up to max_matches rows in file order; OUTPUT
        overwrites the output fields, cleared when nothing matches; OUTPUTNEW only fills absent
        ones (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Lookup)."""
        toks = [t for t in lex(args, "search") if t.kind != "COMMA"]
        name = toks[0].text
        if name not in self.lookups:
            raise SplRuntimeError(f"lookup table {name!r} is not defined")
        table = self.lookups[name]
        ins: list[tuple[str, str]] = []
        outs: list[tuple[str, str]] = []
        mode = "OUTPUT"
        target = ins
        i = 1
        while i < len(toks):
            t = toks[i].text
            if t in ("OUTPUT", "OUTPUTNEW"):
                mode, target = t, outs
                i += 1
                continue
            alias = t
            if i + 2 < len(toks) + 1 and i + 1 < len(toks) and toks[i + 1].text in ("AS", "as"):
                alias = toks[i + 2].text
                i += 2
            target.append((t, alias))
            i += 1
        if not outs:
            cols = {k for r in table.rows for k in r}
            outs = [(c, c) for c in sorted(cols - {c for c, _ in ins})]

        def same(a: Any, b: Any) -> bool:
            x, y = text(a), text(b)
            return x == y if table.case_sensitive else x.lower() == y.lower()

        # the rows whose first input column has a value, by that value: a row matches only
        # if that column equals some value of the field, so the others are never candidates
        first = ins[0][0]
        index = table.index(first)

        def key(v: Any) -> str:
            return text(v) if table.case_sensitive else text(v).lower()

        out = []
        for r in rows:
            res = dict(r)
            if mode == "OUTPUTNEW" and all(res.get(f) is not None for _, f in outs):
                out.append(res)
                continue
            hits: list[Row] = []
            candidates = sorted({i for v in mv(r.get(ins[0][1])) for i in index.get(key(v), [])})
            for n in candidates:
                row = table.rows[n]
                if len(hits) >= table.max_matches:
                    break
                if all(
                    row.get(col) not in (None, "") and any(same(v, row[col]) for v in mv(r.get(f)))
                    for col, f in ins
                ):
                    hits.append(row)
            for col, f in outs:
                if mode == "OUTPUTNEW" and res.get(f) is not None:
                    continue
                v = norm([h.get(col) for h in hits if h.get(col) not in (None, "")])
                if v is None:
                    res.pop(f, None)
                else:
                    res[f] = v
            out.append(res)
        return out

    def join(self, rows: list[Row], args: str) -> list[Row]:
        """``join [type=inner|left] [max=<n>] [overwrite=<bool>] f1 f2 [subsearch]``: each row
        joins the first ``max`` subsearch results whose join fields are all equal (exact,
        case-sensitive); the subsearch's fields overwrite the row's by default; type=left keeps
        rows without a match (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Join)."""
        c = Cursor(lex(args, "search"), "join")
        allowed = {k: (lambda t: True) for k in ("type", "max", "overwrite")}
        opts = _options(c, allowed, "join")
        fields: list[str] = []
        while not c.done() and not c.at("SUB"):
            t = c.next()
            if t.kind != "COMMA":
                fields.append(t.text)
        sub = self.run(c.expect("SUB").text)
        kind = opts.get("type", "inner")
        limit = int(opts.get("max", "1"))
        overwrite = opts.get("overwrite", "true").lower() in ("t", "true", "1")
        if kind not in ("inner", "left"):
            raise NotExecutable(f"join type={kind}")
        index: dict[tuple[str, ...], list[Row]] = {}
        for s in sub:
            vals = [s.get(f) for f in fields]
            if all(v is not None and not isinstance(v, list) for v in vals):
                index.setdefault(tuple(text(v) for v in vals), []).append(s)
        out = []
        for r in rows:
            vals = [r.get(f) for f in fields]
            key = tuple(text(v) for v in vals) if all(v is not None for v in vals) else None
            matches = index.get(key, []) if key is not None else []
            if limit > 0:
                matches = matches[:limit]
            if not matches:
                if kind == "left":
                    out.append(dict(r))
                continue
            for m in matches:
                res = dict(r)
                for k, v in m.items():
                    if k == SEQ or k in fields:
                        continue
                    if overwrite or res.get(k) is None:
                        res[k] = v
                out.append(res)
        return out


# ---------------------------------------------------------------------- field commands
def _names(args: str) -> list[str]:
    return [t.text for t in lex(args, "search") if t.kind != "COMMA"]


def _fields(rows: list[Row], args: str) -> list[Row]:
    """``fields [+|-] <wc-field-list>``: keep or remove the fields matching the wildcards
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Fields)."""
    names = _names(args.strip())
    remove = bool(names) and names[0] == "-"
    if names and names[0] in ("-", "+"):
        names = names[1:]
    pats = [wildcard(n, 0) for n in names]

    def hit(k: str) -> bool:
        return any(p.match(k) for p in pats)

    if remove:
        return [{k: v for k, v in r.items() if not hit(k)} for r in rows]
    return [{k: v for k, v in r.items() if hit(k) or k.startswith("_")} for r in rows]


def _table(rows: list[Row], args: str) -> list[Row]:
    """``table <wc-field-list>``: only those fields, in that order
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Table)."""
    pats = [wildcard(n, 0) for n in _names(args)]
    out = []
    for r in rows:
        res: Row = {}
        for p in pats:
            for k in r:
                if p.match(k) and k != SEQ:
                    res.setdefault(k, r[k])
        out.append(res)
    return out


def _rename(rows: list[Row], args: str) -> list[Row]:
    """``rename a AS b, ...``: a field that does not exist is not renamed
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Rename)."""
    toks = _names(args)
    pairs = [(toks[i], toks[i + 2]) for i in range(0, len(toks), 3)]
    out = []
    for r in rows:
        res = dict(r)
        for a, b in pairs:
            if a in res:
                res[b] = res.pop(a)
        out.append(res)
    return out


def _sort(rows: list[Row], args: str) -> list[Row]:
    """``sort [<count>] [+|-]<sort-field>...``, a sort field being ``<field>`` or
    ``str(<field>)``: numbers numerically, strings lexicographically (``str()``: every value as
    a string, lexicographically, so values are equal only when their texts are), count 0 =
    every result (default 10000); stable
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Sort)."""
    toks = _names(args)
    limit = 10000
    if toks and re.fullmatch(r"\d+", toks[0]):
        limit = int(toks.pop(0))
    keys: list[tuple[str, bool, bool]] = []  # (field, descending, as text)
    i = 0
    while i < len(toks):
        t = toks[i]
        desc = t.startswith("-")
        name = t.lstrip("+-")
        if toks[i + 1 : i + 2] == ["("] and toks[i + 3 : i + 4] == [")"]:
            if name != "str":
                raise NotExecutable(f"sort {name}()")
            keys.append((toks[i + 2], desc, True))
            i += 4
            continue
        keys.append((name, desc, False))
        i += 1
    out = list(rows)
    for f, desc, as_text in reversed(keys):
        present = [r for r in out if r.get(f) is not None]
        absent = [r for r in out if r.get(f) is None]
        if as_text:
            present.sort(key=lambda r: "\n".join(map(text, mv(r[f]))), reverse=desc)
        else:
            present.sort(key=lambda r: st.sort_key(r[f]), reverse=desc)
        out = present + absent
    return out[:limit] if limit else out


def _reverse(rows: list[Row], args: str) -> list[Row]:
    """``reverse``: the results in the opposite order
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Reverse)."""
    if args.strip():
        raise SplRuntimeError("reverse takes no arguments")
    return rows[::-1]


def _mvexpand(rows: list[Row], args: str) -> list[Row]:
    """``mvexpand <field>``: one result per value of the field
    (https://docs.splunk.com/Documentation/Splunk/latest/SearchReference/Mvexpand)."""
    c = Cursor(lex(args, "search"), "mvexpand")
    field = c.expect("WORD").text
    opts = _options(c, {"limit": lambda t: True}, "mvexpand")
    limit = int(opts.get("limit", "0"))
    out = []
    for r in rows:
        values = mv(r.get(field))
        if not isinstance(r.get(field), list):
            out.append(r)
            continue
        for v in values[:limit] if limit else values:
            out.append({**r, field: v})
    return out


def execute(
    query: str,
    events: list[dict[str, Any]],
    lookups: Mapping[str, LookupDef | Sequence[Mapping[str, Any]]],
    now_ms: int,
    macros: Mapping[str, str] | None = None,
    time_range: tuple[int | None, int | None] = (None, None),
) -> list[dict[str, Any]]:
    """Run ``query`` over ``events``; ``now()`` and relative time modifiers use ``now_ms``;
    ``macros`` defines the search macros the query calls (macros.conf ``definition``);
    ``time_range`` is the search's [earliest, latest) in epoch milliseconds."""
    for e in events:
        if num(e.get("_time")) is None:
            raise SplRuntimeError("every event needs a numeric _time (seconds)")
    try:
        query = expand_macros(query, dict(macros or {}))
    except SplError as exc:
        raise SplRuntimeError(str(exc)) from None
    rows = Search(events, lookups, now_ms, time_range).run(query)
    return [{k: v for k, v in r.items() if k != SEQ} for r in rows]
