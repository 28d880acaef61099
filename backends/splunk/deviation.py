"""The comparison of one deviation baseline with its history, as streamstats aggregates and
where-tests (docs/semantics.md, "Baselines", deviation)."""

from __future__ import annotations

from backends.splunk.expr import number
from compiler import ir


def deviation_tests(b: ir.Deviation, m: str, p: str) -> tuple[list[str], list[str]]:
    """streamstats aggregates over the values compared with (the past windows; with
    ``include_current``, streamstats current=t adds the window itself) and the tests on them.
    ``{p}_n`` counts those values, so with the current one included min_history past windows
    are min_history + 1 values; a null current value fails every comparison, as in siemc."""
    below = b.direction == "below"
    extra = 1 if b.include_current else 0
    aggs = [f"count({m}) AS {p}_n"]
    # the sample standard deviation needs two values (siemc: false with fewer)
    least = max(b.min_history + extra, 2 if b.k is not None else 1)
    tests = [f"{p}_n>={least}"]
    if b.k is not None:
        aggs += [f"avg({m}) AS {p}_mean", f"stdev({m}) AS {p}_sd"]
        if below:
            tests.append(f"{m}<{p}_mean-{number(b.k)}*{p}_sd")
        else:
            tests.append(f"{m}>{p}_mean+{number(b.k)}*{p}_sd")
    if b.percentile is not None:
        aggs.append(f"exactperc{number(b.percentile)}({m}) AS {p}_pct")
        tests.append(f"{m}{'<' if below else '>'}{p}_pct")
    if b.ratio is not None:
        # "R times the mean" as products of the count and the sum, which are exact for whole
        # numbers where a mean would round first; a sum that is not positive has no ratio
        times = "" if b.ratio == 1 else f"*{number(b.ratio)}"
        aggs.append(f"sum({m}) AS {p}_sum")
        tests.append(f"{p}_sum>0")
        if below:
            tests.append(f"{m}*{p}_n{times}<={p}_sum")
        else:
            tests.append(f"{m}*{p}_n>={p}_sum{times}")
    return aggs, tests
