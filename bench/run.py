"""End-to-end benchmark of ``siemc run``: a subprocess reading an ECS JSON Lines file, as a user
runs it, at N and 4N events (default 1M and 4M), for five analytic shapes; with peers on the
same file (bare orjson parse, eql's PythonEngine on the sequence, hand-written DuckDB SQL on
the filter and the aggregate). See bench/README.md.

The last line of output is one JSON object (keys in bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.evaluator import SEQUENCE_EQL, SEQUENCE_YAML, TUMBLING_YAML, generate, nest  # noqa: E402

_HEAD = """\
attack: {techniques: [T1059]}
platforms: [windows, linux]
severity: medium
"""
SHAPES: dict[str, str] = {
    "filter": """\
id: BENCH-FILTER
title: A binary dropped in a temporary folder starts
description: Single-event filter; about 0.3% of process starts match.
"""
    + _HEAD
    + """\
streams:
  proc:
    logsource: {category: process_creation}
    where:
      process.executable|startswith: [/tmp/, /dev/shm/, /var/tmp/]
detect:
  match: proc
""",
    "aggregate": TUMBLING_YAML,
    "sliding": """\
id: BENCH-SLIDE
title: A host opens many connections within five minutes
description: Sliding event count per host (the threshold shape).
"""
    + _HEAD
    + """\
streams:
  conn:
    logsource: {category: network_connection}
detect:
  threshold:
    stream: conn
    by: [host.name]
    window: 5m
    count: {gte: 100}
""",
    "sequence": SEQUENCE_YAML,
    "first_seen": """\
id: BENCH-FIRST
title: A process name starts on a host for the first time in a day
description: A match filtered by a first_seen baseline over the same stream.
"""
    + _HEAD
    + """\
streams:
  proc:
    logsource: {category: process_creation}
detect:
  match: proc
baseline:
  - first_seen:
      stream: proc
      keys: [host.name, process.name]
      lookback: 1d
""",
}

# The filter and the aggregate by hand in DuckDB SQL, meaning what the evaluator means:
# `startswith` is case-insensitive; tumbling windows are aligned to the epoch; a ratio with a
# zero divisor is null (no alert). Each returns one row per alert, in the order of siemc's keys.
DUCKDB_SQL = {
    "filter": """
        SELECT "event".id AS id FROM read_json('{file}', format = 'newline_delimited')
        WHERE "event".category = 'process' AND "event"."type" = 'start'
          AND (starts_with(lower(process.executable), '/tmp/')
               OR starts_with(lower(process.executable), '/dev/shm/')
               OR starts_with(lower(process.executable), '/var/tmp/'))
    """,
    "aggregate": """
        WITH flows AS (
            SELECT host."name" AS host, process.entity_id AS entity,
                   destination.ip AS dip, source.bytes AS out_b, destination.bytes AS in_b,
                   epoch_ms("@timestamp"::TIMESTAMP) AS ts
            FROM read_json('{file}', format = 'newline_delimited')
            WHERE "event".category = 'network'
              AND (source.bytes IS NOT NULL OR destination.bytes IS NOT NULL))
        SELECT host, entity, dip, (ts // 3600000) * 3600000 AS start
        FROM flows GROUP BY ALL
        HAVING sum(in_b) <> 0 AND sum(out_b) / sum(in_b) >= 10 AND sum(out_b) >= 10000000
    """,
}


# --------------------------------------------------------------------------- data
def write_events(path: Path, n: int, seed: int) -> None:
    """``n`` generated events (bench/evaluator.py ``generate``), nested ECS, one per line."""
    import orjson

    with path.open("wb", buffering=1 << 20) as fh:
        for _, fields in generate(n, seed=seed):
            fh.write(orjson.dumps(nest(fields)) + b"\n")


# --------------------------------------------------------------------------- measuring
def timed(argv: list[str], out: Path) -> tuple[float, float, float]:
    """Run ``argv`` with stdout to ``out``: (wall seconds, CPU seconds (user + system), peak
    RSS MiB), all of that child alone.

    The child is started through /usr/bin/time where it exists and its ``%M`` is the peak RSS:
    ``ru_maxrss`` of a child forked straight from this process counts this (larger) process's
    pages it inherits at the fork, which hides the child's own peak."""
    rss_file = out.with_suffix(".rss")
    wrap = Path("/usr/bin/time").is_file()
    if wrap:
        argv = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *argv]
    with out.open("wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({code}):\n{err}")
    rss_kib = int(rss_file.read_text().split()[-1]) if wrap else usage.ru_maxrss  # Linux: KiB
    return seconds, usage.ru_utime + usage.ru_stime, rss_kib / 1024.0


def siemc_alerts(out: Path, shape: str) -> list[Any]:
    """The comparable part of siemc's alerts (what the peers report)."""
    found: list[Any] = []
    for line in out.read_text(encoding="utf-8").splitlines():
        a = json.loads(line)
        if shape == "filter":
            found.append(a["evidence"][0])
        elif shape == "aggregate":
            k = a["key"]
            start = _ms(a["start"])
            found.append([k["host.name"], k["process.entity_id"], k["destination.ip"], start])
        else:
            found.append(a["evidence"])
    return sorted(found)


def _ms(text: str) -> int:
    from compiler.timeutil import parse_timestamp

    return parse_timestamp(text)


def worker(kind: str, file: str) -> None:
    """A peer, in its own process (its peak RSS is its own); prints one JSON object."""
    import orjson

    if kind == "parse":
        n = 0
        with open(file, "rb") as fh:
            for line in fh:
                orjson.loads(line)
                n += 1
        print(json.dumps({"events": n}))
        return
    if kind == "eql":
        import eql

        from compiler.timeutil import parse_timestamp

        with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
            query = eql.parse_query(SEQUENCE_EQL)
        engine = eql.PythonEngine({"time_unit": 1000})  # timestamps in ms
        engine.add_query(query)
        found: list[list[str]] = []
        engine.add_output_hook(lambda r: found.append([e.data["event"]["id"] for e in r.events]))

        def events() -> Any:
            make = eql.Event
            with open(file, "rb") as fh:
                for line in fh:
                    doc = orjson.loads(line)
                    yield make(doc["event"]["category"], parse_timestamp(doc["@timestamp"]), doc)

        engine.stream_events(events())
        print(json.dumps({"alerts": sorted(found)}))
        return
    if kind.startswith("duckdb-"):
        import duckdb

        shape = kind.removeprefix("duckdb-")
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute(DUCKDB_SQL[shape].format(file=file.replace("'", "''"))).fetchall()
        print(json.dumps({"alerts": sorted([r[0] if len(r) == 1 else list(r) for r in rows])}))
        return
    raise ValueError(f"unknown worker {kind!r}")


def run_peer(kind: str, file: Path, tmp: Path) -> tuple[tuple[float, float, float], dict[str, Any]]:
    out = tmp / f"peer-{kind}.json"
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(file)]
    times = timed(argv, out)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8").splitlines()[-1])
    return times, result


def duckdb_available() -> bool:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def duckdb_shapes() -> list[str]:
    """The shapes ``siemc run --engine auto`` gives DuckDB (compiler/run_engine.choose)."""
    from compiler.lower import load_text
    from compiler.run_engine import choose

    analytics = {s: load_text(f"{s}.yml", text).analytic for s, text in SHAPES.items()}
    return [s for s, a in analytics.items() if choose([a], [], "auto")[0].engine == "duckdb"]


def eql_available() -> bool:
    try:
        import eql  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- driver
def run(
    sizes: Sequence[int], seed: int, tmp: Path, log: Callable[[str], None] = print
) -> dict[str, Any]:
    siemc = str(Path(sys.executable).with_name("siemc"))
    for shape, text in SHAPES.items():
        (tmp / f"{shape}.yml").write_text(text, encoding="utf-8")
    results: dict[str, Any] = {
        "sizes": list(sizes),
        "shapes": {},
        "duckdb_engine": {},
        "peers": {},
        "checks": {},
    }
    mismatches: list[str] = []
    use_duckdb = duckdb_available()
    use_eql = eql_available()
    if not use_duckdb:
        log("duckdb is not importable: the hand-written DuckDB peer is skipped")
    if not use_eql:
        log("eql is not importable (pip install -e '.[test]'): the eql peer is skipped")
    on_duckdb = duckdb_shapes() if use_duckdb else []
    results["duckdb_shapes"] = on_duckdb
    log(f"shapes --engine auto runs on DuckDB: {', '.join(on_duckdb) or 'none'}")
    for n in sizes:
        data = tmp / f"events-{n}.jsonl"
        t0 = time.perf_counter()
        write_events(data, n, seed)
        mb = data.stat().st_size / 1e6
        log(f"{n:,} events: {data} ({mb:.0f} MB, generated in {time.perf_counter() - t0:.0f} s)")
        times, _ = run_peer("parse", data, tmp)
        results["peers"].setdefault("orjson_parse", {})[n] = row = _rate(n, *times)
        log(f"  bare orjson parse        {_line(row)}")
        for shape in SHAPES:
            out = tmp / f"alerts-{shape}-{n}.jsonl"
            argv = [siemc, "run", str(tmp / f"{shape}.yml"), "-i", str(data), "-o", str(out)]
            times = timed([*argv, "--engine", "evaluator"], tmp / "stdout.txt")
            alerts = siemc_alerts(out, shape)
            row = _rate(n, *times) | {"alerts": len(alerts)}
            results["shapes"].setdefault(shape, {})[n] = row
            log(f"  siemc run {shape:<14} {_line(row)}  {len(alerts)} alerts")
            if shape in on_duckdb:
                # siemc's DuckDB engine on the same analytic (what --engine auto picks for it)
                d_out = tmp / f"alerts-{shape}-{n}-duckdb.jsonl"
                d_argv = [*argv[:-1], str(d_out), "--engine", "duckdb"]
                times = timed(d_argv, tmp / "stdout.txt")
                d_alerts = siemc_alerts(d_out, shape)
                row = _compared(
                    results,
                    ("duckdb_engine", shape),
                    f"duckdb_engine_{shape}_{n}",
                    n,
                    times,
                    d_alerts,
                    alerts,
                )
                if not row["same_alerts"]:
                    mismatches.append(f"duckdb engine {shape} at {n}: {len(d_alerts)} alerts")
                log(
                    f"  siemc run {shape:<14} {_line(row)}  {len(d_alerts)} alerts (DuckDB engine)"
                    + ("" if row["same_alerts"] else "  WARNING: different alerts")
                )
            peers: list[tuple[str, str]] = []
            if shape == "sequence" and use_eql:
                peers.append(("eql", "eql PythonEngine"))
            if shape in DUCKDB_SQL and use_duckdb:
                peers.append((f"duckdb-{shape}", "DuckDB by hand"))
            for kind, label in peers:
                times, result = run_peer(kind, data, tmp)
                theirs = sorted(result["alerts"])
                row = _compared(results, ("peers", kind), f"{kind}_{n}", n, times, theirs, alerts)
                if not row["same_alerts"]:
                    mismatches.append(f"{kind} at {n}: {len(theirs)} vs siemc {len(alerts)}")
                log(
                    f"    {label:<22} {_line(row)}  {len(theirs)} alerts"
                    + ("" if row["same_alerts"] else "  WARNING: different alerts")
                )
        data.unlink()
    for m in mismatches:
        log(f"WARNING: {m}")
    return summary(results, sizes)


def _compared(
    results: dict[str, Any],
    where: tuple[str, str],
    check: str,
    n: int,
    times: tuple[float, float, float],
    got: list[Any],
    alerts: list[Any],
) -> dict[str, Any]:
    """Record a run's rate beside whether its alerts equal siemc's (``results[group][name][n]``
    and ``results["checks"][check]``)."""
    same = got == alerts
    group, name = where
    results[group].setdefault(name, {})[n] = row = _rate(n, *times) | {
        "alerts": len(got),
        "same_alerts": same,
    }
    results["checks"][check] = same
    return row


def _rate(n: int, seconds: float, cpu: float, rss: float) -> dict[str, float]:
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "events_per_s": n / seconds,
        "events_per_cpu_s": n / cpu,
        "peak_rss_mb": rss,
    }


def _line(row: dict[str, float]) -> str:
    return (
        f"{row['events_per_s']:>10,.0f} events/s ({row['events_per_cpu_s']:>9,.0f} per CPU s)"
        f"  {row['peak_rss_mb']:6.0f} MiB"
    )


def summary(results: dict[str, Any], sizes: Sequence[int]) -> dict[str, Any]:
    """The last line's object: throughputs at the first size, wall-clock (``events_per_s``)
    and per CPU second (``_cpu``: what a busy machine cannot distort), ratios, RSS growth."""
    base = sizes[0]
    shapes, peers = results["shapes"], results["peers"]
    out: dict[str, Any] = {"events": list(sizes)}
    for shape in SHAPES:
        row = shapes[shape][base]
        out[f"evaluator_events_per_s_{shape}"] = row["events_per_s"]
        out[f"evaluator_events_per_cpu_s_{shape}"] = row["events_per_cpu_s"]
    if peers.get("eql"):
        ours, theirs = shapes["sequence"][base], peers["eql"][base]
        out["evaluator_vs_eql_sequence"] = ours["events_per_s"] / theirs["events_per_s"]
        out["evaluator_vs_eql_sequence_cpu"] = ours["events_per_cpu_s"] / theirs["events_per_cpu_s"]
    for kind, rows in peers.items():
        if kind.startswith("duckdb-"):
            shape = kind.removeprefix("duckdb-")
            ratio = shapes[shape][base]["events_per_s"] / rows[base]["events_per_s"]
            out[f"evaluator_vs_duckdb_hand_{shape}"] = ratio
            for n in sizes:
                ours = results["duckdb_engine"].get(shape, {}).get(n)
                if ours is not None and n in rows:
                    # siemc run --engine duckdb against DuckDB by hand, wall clock (both use
                    # every core), at each size
                    key = f"duckdb_vs_hand_{shape}" + ("" if n == base else f"_{n}")
                    out[key] = ours["events_per_s"] / rows[n]["events_per_s"]
    out["duckdb_shapes"] = results.get("duckdb_shapes", sorted(results["duckdb_engine"]))
    for shape, rows in results["duckdb_engine"].items():
        if base in rows:
            out[f"duckdb_engine_events_per_s_{shape}"] = rows[base]["events_per_s"]
    out["orjson_parse_events_per_s"] = peers["orjson_parse"][base]["events_per_s"]
    out["orjson_parse_events_per_cpu_s"] = peers["orjson_parse"][base]["events_per_cpu_s"]
    out["peak_rss_mb"] = {
        s: {str(n): r["peak_rss_mb"] for n, r in rows.items()} for s, rows in shapes.items()
    }
    out["duckdb_engine_peak_rss_mb"] = {
        s: {str(n): r["peak_rss_mb"] for n, r in rows.items()}
        for s, rows in results["duckdb_engine"].items()
    }
    if len(sizes) > 1 and sizes[-1] == 4 * base:
        growth = {
            s: rows[sizes[-1]]["peak_rss_mb"] / rows[base]["peak_rss_mb"]
            for s, rows in shapes.items()
        }
        for s, rows in results["duckdb_engine"].items():
            if sizes[-1] in rows and base in rows:
                growth[f"duckdb_{s}"] = rows[sizes[-1]]["peak_rss_mb"] / rows[base]["peak_rss_mb"]
        out["rss_growth_4x"] = growth
        out["rss_growth_4x_max"] = max(growth.values())
    out["same_alerts"] = all(results["checks"].values())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="N: runs N and 4N events")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-4x", action="store_true", help="only N events (no memory growth)")
    ap.add_argument("--tmp", help="folder for the generated files (default: a temporary one)")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    sizes = [args.events] if args.no_4x else [args.events, 4 * args.events]
    tmp = Path(tempfile.mkdtemp(prefix="siemc-bench-", dir=args.tmp))
    try:
        result = run(sizes, args.seed, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
