"""siemc against the released pySigma backends, on the same Sigma rules, judged by the evaluator.

    .venv/bin/python bench/vs_pysigma.py                 # 40 corpus rules + the correlations
    .venv/bin/python bench/vs_pysigma.py --all           # every eligible corpus rule

For (a) a deterministic sample of the SigmaHQ corpus (../shared/data/sigmahq) and (b) the
hand-written correlation rules of bench/data/sigma_correlations (every Sigma v2 type), each
rule is imported (``siemc import sigma``); events are generated from the imported analytic
(bench/vs_events.py); siemc compiles it to each target and pySigma's backends (in
.venv-pysigma1, bench/pysigma_convert.py) convert the Sigma file; both queries run on the
project's engines (bench/vs_engines.py) and are compared with the evaluator's alerts on the
same events. Prints per set a table per target (rules converted, rules equal to the evaluator,
conversion time per rule) and, for every pySigma query that differs, which scenario differs.
The last line is one JSON object with the numbers. bench/README.md describes the comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `compiler`, `backends`, `bench` importable
    sys.path.insert(0, str(ROOT))

from bench import vs_engines as E  # noqa: E402
from bench import vs_events as G  # noqa: E402
from bench.import_sigma import default_corpus  # noqa: E402
from compiler import ir  # noqa: E402
from compiler.build import compile_pair  # noqa: E402
from compiler.engine_check import describe_exception  # noqa: E402
from compiler.engines import NotExecutable, load_engine  # noqa: E402
from compiler.evaluator import evaluate  # noqa: E402
from compiler.importers.sigma import import_sigma, rule_files  # noqa: E402
from compiler.lower import Loaded, load_text  # noqa: E402
from compiler.testing import fixture_events  # noqa: E402

TARGETS = ("splunk", "esql", "eql", "kql")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a thousand files
CORRELATIONS = ROOT / "bench" / "data" / "sigma_correlations"
PYSIGMA_PYTHON = ROOT / ".venv-pysigma1" / "bin" / "python"
# the ECS fields every data model of the comparison holds under one name each (Sysmon for
# Splunk, ECS, Defender XDR), so a difference is the translation's, not the data model's
SHARED_FIELDS = frozenset(
    {
        "process.executable",
        "process.command_line",
        "process.parent.executable",
        "process.parent.command_line",
        "event.category",
        "event.type",
        "host.os.type",
    }
)


@dataclass
class Case:
    """One rule: its analytic, generated events, and a name for each expected outcome."""

    file: Path
    loaded: Loaded
    events: list[dict[str, Any]]
    keys: list[str]  # the correlation's group keys (empty: single-event rule)
    labels: dict[Any, str] = field(default_factory=dict)  # time or key -> scenario name
    evaluator: E.Outcome | None = None


@dataclass
class Side:
    converted: int = 0
    equal: int = 0
    approximate: int = 0  # siemc: converted with a declared approximation
    not_executable: int = 0
    seconds: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)


def _sigma_condition(path: Path) -> G.Condition:
    doc = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d][-1]
    c = doc["correlation"]
    cond = c.get("condition") or {"gte": len(c["rules"])}
    op = next(k for k in cond if k in ("gte", "gt", "lte", "lt", "eq"))
    span = str(c["timespan"])
    unit = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[span[-1]]
    return G.Condition(str(c["type"]), op, float(cond[op]), int(span[:-1]) * unit)


def load_case(path: Path) -> Case | str:
    """The rule as a case, or why it is not one."""
    res = import_sigma([path])
    if not res.imported:
        why = res.refused[0].construct if res.refused else "invalid"
        return f"not imported ({why})"
    imp = res.imported[-1]
    if res.lookups:
        return "reads a lookup"
    loaded = load_text(str(path.parent / imp.file), imp.text, path.parent)
    a = loaded.analytic
    streams = {s.name: s for s in a.streams}
    try:
        d = a.detection
        if isinstance(d, ir.Match):
            t = G.stream_template(a, streams[d.stream])
            events = G.match_events(t)
            labels: dict[Any, str] = {
                G.T0_MS + 1000 * i: ("positive" if i == 0 else f"near-miss {i}")
                for i in range(len(events))
            }
            return Case(path, loaded, events, [], labels)
        cond = _sigma_condition(path)
        if isinstance(d, ir.Aggregate):
            t = G.stream_template(a, streams[d.stream])
            scen = G.aggregate_scenarios(t, d, cond)
            keys = list(d.keys)
        elif isinstance(d, ir.Sequence | ir.Cooccurrence):
            steps = d.steps if isinstance(d, ir.Sequence) else d.members
            ts = [G.stream_template(a, streams[s.stream]) for s in steps]
            scen = G.temporal_scenarios(ts, steps, cond)
            keys = list(steps[0].keys)
        else:
            return f"detection {type(d).__name__}"
    except G.Unsolvable as exc:
        return f"no events generated ({exc})"
    events = [e for evs in scen.values() for e in evs]
    labels = {}
    for name, evs in scen.items():
        if evs:
            (key,) = E.outcome([], [[evs[0].get(k) for k in keys]]).keys
            labels[key] = name
    return Case(path, loaded, events, keys, labels)


def fixture(case: Case) -> ir.Fixture:
    return ir.Fixture("generated", "positive", "synthetic", (), tuple(case.events), None, ())


def evaluator_outcome(case: Case) -> E.Outcome:
    fx = fixture(case)
    alerts = evaluate(case.loaded.analytic, fixture_events(case.loaded, fx), fx.now_ms)
    if case.keys:
        return E.outcome([], [[dict(a.key).get(k) for k in case.keys] for a in alerts])
    return E.outcome([a.start for a in alerts], [])


class _NotRun(Exception):
    def __init__(self, took: float, why: str) -> None:
        super().__init__(why)
        self.took, self.why = took, why


def siemc_outcome(case: Case, target: str) -> tuple[E.Outcome | None, float, str]:
    """(outcome or None when not compiled, compile seconds, a reason when not, or the
    declared approximation's direction)."""
    t0 = time.perf_counter()
    pair = compile_pair(case.loaded, target, profile=None, allow_approximate=True)
    took = time.perf_counter() - t0
    if pair.artifact is None:
        msg = pair.diagnostics[0].message if pair.diagnostics else "no artifact"
        return None, took, f"not compiled: {msg.split(':')[0][:60]}"
    art = pair.artifact
    declared = f"declared {pair.direction or 'mixed'}" if art.approximations else ""
    fx = fixture(case)
    try:
        alerts = load_engine(target).run(case.loaded, fx, dataclasses.replace(art, query=art.text))
    except NotExecutable as exc:
        raise _NotRun(took, str(exc)) from None
    if case.keys:
        keys = [[dict(a.key).get(k) for k in case.keys] for a in alerts]
        return E.outcome([], keys), took, declared
    return E.outcome([a.start for a in alerts], []), took, declared


def pysigma_outcome(case: Case, target: str, query: str) -> E.Outcome:
    events = fixture_events(case.loaded, fixture(case))
    a = case.loaded.analytic
    runs: dict[str, Callable[[], E.Outcome]] = {
        "splunk": lambda: E.run_splunk(query, events, a, case.keys),
        "esql": lambda: E.run_esql_query(query, events, case.keys),
        "eql": lambda: E.run_eql_query(query, events, case.keys),
        "kql": lambda: E.run_kql_query(query, events, a, case.keys),
    }
    return runs[target]()


def convert_with_pysigma(files: list[Path], python: Path) -> dict[str, Any]:
    script = ROOT / "bench" / "pysigma_convert.py"
    proc = subprocess.run(
        [str(python), str(script), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"pySigma conversion failed:\n{proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def difference(case: Case, got: E.Outcome) -> str:
    want = case.evaluator
    assert want is not None
    w, g = (want.keys, got.keys) if case.keys else (want.times, got.times)
    missing = sorted(case.labels.get(x, repr(x)) for x in w - g)
    extra = sorted(case.labels.get(x, repr(x)) for x in g - w)
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
        [f"extra {', '.join(extra)}"] if extra else []
    )
    return "; ".join(parts)


def corpus_files(corpus: Path, seed: int) -> list[Path]:
    """Windows process_creation rules (the one category all three pySigma pipelines map),
    shuffled with ``seed``."""
    out = []
    for p in rule_files([corpus]):
        if "process_creation" not in p.parts:  # SigmaHQ's folders are its categories
            continue
        try:
            docs = [d for d in yaml.load_all(p.read_text(encoding="utf-8"), Loader=_LOADER) if d]
        except yaml.YAMLError:
            continue
        ls = docs[0].get("logsource") if len(docs) == 1 and isinstance(docs[0], dict) else None
        if isinstance(ls, dict) and (ls.get("category"), ls.get("product")) == (
            "process_creation",
            "windows",
        ):
            out.append(p)
    random.Random(seed).shuffle(out)
    return out


def usable(case: Case) -> str | None:
    used = {f for s in case.loaded.analytic.streams for f in _fields(s.filter)}
    outside = sorted(used - SHARED_FIELDS)
    return f"fields outside the shared data model ({outside[0]})" if outside else None


def _fields(p: ir.Predicate) -> set[str]:
    if isinstance(p, ir.And | ir.Or):
        return {f for i in p.items for f in _fields(i)}
    if isinstance(p, ir.Not):
        return _fields(p.item)
    name = getattr(p, "field", None)
    return {name} if isinstance(name, str) else {"(lookup)"}


def collect(files: list[Path], limit: int | None, corpus: bool) -> tuple[list[Case], Counter[str]]:
    cases: list[Case] = []
    skipped: Counter[str] = Counter()
    for f in files:
        if limit is not None and len(cases) >= limit:
            break
        c = load_case(f)
        if isinstance(c, str):
            skipped[c] += 1
            continue
        why = usable(c) if corpus else None
        if why is not None:
            skipped[why.split(" (")[0]] += 1
            continue
        c.evaluator = evaluator_outcome(c)
        cases.append(c)
    return cases, skipped


def compare(
    title: str, cases: list[Case], converted: dict[str, Any], examples: list[str]
) -> dict[str, Any]:
    fired = sum(len(c.evaluator.keys or c.evaluator.times) for c in cases if c.evaluator)
    labels = sum(len(c.labels) for c in cases)
    print(
        f"\n## {title}: {len(cases)} rules; the evaluator alerts in {fired} of {labels} scenarios"
    )
    print(
        f"{'target':<7} {'siemc conv':>10} {'approx':>6} {'not exec':>8} {'siemc =eval':>11} "
        f"{'pySigma conv':>12} {'not exec':>8} {'pySigma =eval':>13} "
        f"{'siemc ms/rule':>13} {'pySigma ms/rule':>15}"
    )
    summary: dict[str, Any] = {}
    for target in TARGETS:
        ours, theirs = Side(), Side()
        for c in cases:
            rel = converted["files"][str(c.file)]
            try:
                got, took, why = siemc_outcome(c, target)
            except _NotRun as exc:
                got, took, why = None, exc.took, f"not executable: {exc.why[:90]}"
                ours.converted += 1
                ours.not_executable += 1
                examples.append(f"siemc   {target:<6} {c.file.name}: {why}")
            except Exception as exc:  # a defect of siemc or its engine adapter: counted, named
                got, took, why = None, 0.0, f"error: {describe_exception(exc)[:80]}"
            ours.seconds += took
            if got is not None:
                ours.converted += 1
                ours.approximate += bool(why)
                diff = difference(c, got)
                if not diff:
                    ours.equal += 1
                else:
                    examples.append(f"siemc   {target:<6} {c.file.name}: {diff} ({why or 'exact'})")
            else:
                ours.reasons[why] += 1
            res = rel.get(target) if isinstance(rel, dict) and "load_error" not in rel else None
            if res is None:
                theirs.reasons["pySigma could not load the rule"] += 1
                continue
            theirs.seconds += float(res["seconds"])
            if "error" in res:
                theirs.reasons[str(res["error"]).split(":")[0]] += 1
                continue
            theirs.converted += 1
            try:
                po = pysigma_outcome(c, target, str(res["query"]))
            except NotExecutable as exc:
                theirs.not_executable += 1
                theirs.reasons[f"not executable: {str(exc)[:90]}"] += 1
                examples.append(f"pySigma {target:<6} {c.file.name}: not executable: {exc}")
                continue
            diff = difference(c, po)
            if not diff:
                theirs.equal += 1
            else:
                examples.append(f"pySigma {target:<6} {c.file.name}: {diff}")
        n = max(len(cases), 1)
        print(
            f"{target:<7} {ours.converted:>10} {ours.approximate:>6} {ours.not_executable:>8} "
            f"{ours.equal:>11} {theirs.converted:>12} {theirs.not_executable:>8} "
            f"{theirs.equal:>13} {1000 * ours.seconds / n:>13.2f} "
            f"{1000 * theirs.seconds / n:>15.2f}"
        )
        summary[target] = {
            "siemc_converted": ours.converted,
            "siemc_equal": ours.equal,
            "siemc_declared_approximate": ours.approximate,
            "siemc_not_executable": ours.not_executable,
            "siemc_ms_per_rule": round(1000 * ours.seconds / n, 3),
            "pysigma_converted": theirs.converted,
            "pysigma_equal": theirs.equal,
            "pysigma_not_executable": theirs.not_executable,
            "pysigma_ms_per_rule": round(1000 * theirs.seconds / n, 3),
            "siemc_why_not": dict(sorted(ours.reasons.items())),
            "pysigma_why_not": dict(sorted(theirs.reasons.items())),
        }
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=default_corpus())
    ap.add_argument("--sample", type=int, default=40, help="corpus rules (default 40)")
    ap.add_argument("--all", action="store_true", help="every eligible corpus rule")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--correlations", type=Path, default=CORRELATIONS)
    ap.add_argument("--pysigma-python", type=Path, default=PYSIGMA_PYTHON)
    ap.add_argument("--no-corpus", action="store_true", help="the correlation rules only")
    args = ap.parse_args(argv)
    if not args.pysigma_python.exists():
        ap.error(f"{args.pysigma_python} is missing: run scripts/dev setup")
    corr_files = sorted(args.correlations.glob("*.yml"))
    if not corr_files:
        ap.error(f"no correlation rules under {args.correlations}")
    sets: list[tuple[str, list[Case], Counter[str]]] = []
    if not args.no_corpus:
        if not args.corpus.is_dir():
            ap.error(f"no corpus at {args.corpus} (use --no-corpus)")
        files = corpus_files(args.corpus, args.seed)
        cases, skipped = collect(files, None if args.all else args.sample, corpus=True)
        sets.append(("SigmaHQ corpus sample (windows process_creation)", cases, skipped))
    cases, skipped = collect(corr_files, None, corpus=False)
    sets.append(("hand-written correlation rules", cases, skipped))
    files_all = [c.file for _, cs, _ in sets for c in cs]
    converted = convert_with_pysigma(files_all, args.pysigma_python)
    print("pySigma: " + ", ".join(f"{k} {v}" for k, v in converted["versions"].items()))
    out: dict[str, Any] = {"versions": converted["versions"]}
    examples: list[str] = []
    for (title, cs, skip), name in zip(sets, ("corpus", "correlations")[-len(sets) :], strict=True):
        if skip:
            print(f"\n{title}: skipped " + ", ".join(f"{v} {k}" for k, v in skip.most_common()))
        out[name] = {"rules": len(cs), "skipped": dict(sorted(skip.items()))}
        out[name]["targets"] = compare(title, cs, converted, examples)
    print("\n## differences from the evaluator (scenario names: bench/vs_events.py)")
    for line in examples:
        print("  " + line)
    print(json.dumps(out, sort_keys=True))
    return out


if __name__ == "__main__":
    main()
