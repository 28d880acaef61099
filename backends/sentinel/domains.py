"""registered_domain() in KQL: the label cut, and when a stream's filter makes it exact.

KQL has no Public Suffix List: a derived field reads it as a watchlist
(:mod:`backends.sentinel.psl`), unless a filter makes the cut below exact (no watchlist to
deploy); elsewhere (inside other expressions) the backend keeps the last two labels, after the
evaluator's own normalisation (surrounding blanks and trailing dots removed, lower case; an IP
address as it is; null for a blank name, a single label or a name with an empty label). The cut
differs from the evaluator only where a public suffix has more than one label (co.uk, github.io).

A stream's filter can rule that out. The derived value is observable only through the stream's
filter and what reads the stream (``from``, joins, the detection, baselines), so only on events
that pass every top-level conjunct of the filter. When one conjunct pins the name to listed
values (``name: [...]``) or to names ending with listed suffixes (``name|endswith: [...]``), and
no suffix-list rule reaches below the last two labels those names can have, the cut is the
Public Suffix List answer on every event that matters: exact.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

from compiler import ir
from compiler.evaluator.values import call


def _blank_class() -> str:
    """An RE2 class of the characters Python's str.strip() removes (isspace()); RE2's \\s is
    ASCII only."""
    codes = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    runs: list[tuple[int, int]] = []
    for c in codes:
        if runs and runs[-1][1] == c - 1:
            runs[-1] = (runs[-1][0], c)
        else:
            runs.append((c, c))
    return (
        "["
        + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in runs)
        + "]+"
    )


BLANKS = _blank_class()


def normalised(arg: str) -> str:
    """KQL: the name ``arg`` (a lower-cased string expression) as the evaluator reads it before
    looking it up: surrounding blanks and trailing dots removed."""
    return f"trim_end(@'\\.+', trim(@'{BLANKS}', {arg}))"


def cut_expr(d: str) -> str:
    """KQL: the last two labels of the normalised name ``d`` (a column); "" where the evaluator
    has no registered domain (blank, a single label, an empty label)."""
    # parse_ipv6 gives "" (not null) for text that is no address: learn.microsoft.com/kusto/
    # query/parse-ipv6-function; an IPv4 address parses as its IPv4-mapped form
    return (
        f"iff(isnotempty(parse_ipv6({d})), {d}, "
        f"iff({d} !contains '.' or {d} startswith '.' or {d} contains '..', '', "
        f"strcat_array(array_slice(split({d}, '.'), -2, -1), '.')))"
    )


@cache
def _rules() -> tuple[str, ...]:
    import publicsuffixlist

    dat = Path(publicsuffixlist.__file__).with_name("public_suffix_list.dat")
    out = []
    for line in dat.read_text(encoding="utf-8").splitlines():
        rule = line.strip().split(" ")[0]
        if rule and not rule.startswith("//"):
            out.append(rule.lstrip("!").removeprefix("*."))
    return tuple(out)


def _two_labels_safe(tail: str) -> bool:
    """Whether every name ending with ``.tail`` (non-empty labels) has the registered domain
    ``tail``'s last two labels: no suffix rule names them or anything below them."""
    labels = tail.split(".")
    if len(labels) < 2 or not all(re.fullmatch(r"[a-z0-9-]+", x) for x in labels):
        return False
    last2 = ".".join(labels[-2:])
    return not any(r == last2 or r.endswith("." + last2) for r in _rules())


def _cut_model(name: str) -> str | None:
    """The KQL cut of :func:`cut_expr` in Python, on ASCII names."""
    d = name.strip().rstrip(".").lower()
    if not d or "." not in d or d.startswith(".") or ".." in d:
        return None
    return ".".join(d.split(".")[-2:])


def _value_safe(v: ir.Scalar) -> bool:
    if not isinstance(v, str) or not v.isascii():
        return False
    return call("registered_domain", [v]) == _cut_model(v) and not re.search(r"[\d:]$", v)


def _suffix_safe(s: str) -> bool:
    # the first label of the suffix may be the end of a longer label of the name
    if not s.isascii() or "." not in s or s.endswith(".") or s.endswith(" "):
        return False
    return _two_labels_safe(s.split(".", 1)[1].lower())


def _pins(p: ir.Predicate, field: str) -> bool:
    """Whether every event satisfying ``p`` has ``field`` among safe values or suffixes."""
    if isinstance(p, ir.Or):
        return bool(p.items) and all(_pins(x, field) for x in p.items)
    if isinstance(p, ir.Eq) and p.field == field:
        return p.quantifier == "any" and all(_value_safe(v) for v in p.values)
    if isinstance(p, ir.StrMatch) and p.field == field and p.op == "endswith":
        return p.quantifier == "any" and all(_suffix_safe(v) for v in p.values)
    return False


def cut_is_exact(stream: ir.Stream, arg: ir.Expr) -> bool:
    """Whether the label cut of ``registered_domain(arg)``, derived in ``stream``, equals the
    evaluator's wherever the value is observable (module docstring)."""
    while isinstance(arg, ir.Call) and arg.func == "lower" and len(arg.args) == 1:
        arg = arg.args[0]
    if not isinstance(arg, ir.FieldRef) or arg.step is not None:
        return False
    if any(name == arg.name for name, _ in stream.derive):
        return False  # the filter reads the derived name, not the one the cut read
    items = stream.filter.items if isinstance(stream.filter, ir.And) else (stream.filter,)
    return any(_pins(p, arg.name) for p in items)
