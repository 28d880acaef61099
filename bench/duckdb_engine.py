"""The DuckDB engine against hand-written DuckDB SQL, end to end from an ECS JSON Lines file.

    .venv/bin/python bench/duckdb_engine.py --events 1000000

Writes the events of bench/evaluator.py's generator as nested ECS JSON Lines (``@timestamp`` in
ISO 8601, as shippers write them), then times, each reading the file itself:

* ``compiler.engines.run_duckdb.run_analytic`` (what ``siemc run --engine duckdb`` runs) on a
  process-start filter and on the tumbling ratio aggregate of bench/evaluator.py (AN1511's
  shape: 1 h windows, sums of bytes out/in per host, process and destination, ratio >= 10);
* the SQL an engineer would write by hand for the same analytics over ``read_json``'s typed
  columns.

Both must find the same alerts (checked). The last line is one JSON object with
``duckdb_vs_hand_filter`` and ``duckdb_vs_hand_aggregate``: siemc's throughput divided by the
hand-written query's (the issue's target is at least 0.8).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.evaluator import TUMBLING_YAML, generate  # noqa: E402
from compiler.engines import run_duckdb  # noqa: E402
from compiler.lower import load_text  # noqa: E402

FILTER_YAML = """\
id: BENCH-FILTER
title: A script host or office process starts
description: A single-event filter (the shape of most catalog analytics' first stream).
attack: {techniques: [T1059]}
platforms: [windows, linux]
severity: medium
streams:
  start:
    logsource: {category: process_creation}
    where:
      process.name: [powershell.exe, cmd.exe, wscript.exe, winword.exe, excel.exe]
detect:
  match: start
"""

HAND_FILTER = """\
SELECT epoch_ms("@timestamp"::TIMESTAMPTZ) AS ts
FROM read_json({path}, format = 'newline_delimited')
WHERE event.category = 'process' AND event.type = 'start'
  AND lower(process.name) IN ('powershell.exe', 'cmd.exe', 'wscript.exe', 'winword.exe',
                              'excel.exe')
"""

HAND_AGGREGATE = """\
SELECT time_bucket(INTERVAL 1 HOUR, "@timestamp"::TIMESTAMPTZ) AS w,
       host.name AS host, process.entity_id AS entity, destination.ip AS ip,
       sum(source.bytes) AS bytes_out, sum(destination.bytes) AS bytes_in
FROM read_json({path}, format = 'newline_delimited')
WHERE event.category = 'network' AND (source.bytes IS NOT NULL OR destination.bytes IS NOT NULL)
  AND host.name IS NOT NULL AND process.entity_id IS NOT NULL AND destination.ip IS NOT NULL
GROUP BY ALL
HAVING bytes_out / nullif(bytes_in, 0) >= 10 AND bytes_out >= 10000000
"""


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def write_events(path: Path, n: int, seed: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for ts, fields in generate(n, seed=seed):
            doc = _nest(fields)
            stamp = datetime.fromtimestamp(ts / 1000, UTC).isoformat(timespec="milliseconds")
            doc["@timestamp"] = stamp.replace("+00:00", "Z")
            fh.write(json.dumps(doc) + "\n")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _hand(sql: str, path: Path) -> list[tuple[Any, ...]]:
    con = run_duckdb.connect()
    try:
        rows: list[tuple[Any, ...]] = con.execute(
            sql.format(path="'" + str(path).replace("'", "''") + "'")
        ).fetchall()
        return rows
    finally:
        con.close()


def measure(n: int, seed: int = 1, workdir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "events.jsonl"
        write_events(path, n, seed)
        out: dict[str, Any] = {"events": n, "bytes": path.stat().st_size}
        for shape, yaml_text, hand_sql in (
            ("filter", FILTER_YAML, HAND_FILTER),
            ("aggregate", TUMBLING_YAML, HAND_AGGREGATE),
        ):
            analytic = load_text(f"<bench:{shape}>", yaml_text).analytic
            ours_s, ours = _timed(partial(run_duckdb.run_analytic, analytic, [(path, "ecs-jsonl")]))
            hand_s, hand = _timed(partial(_hand, hand_sql, path))
            if shape == "filter":
                same = sorted(a.start for a in ours) == sorted(r[0] for r in hand)
            else:
                ours_keys = sorted((a.start, *(str(v) for _, v in a.key)) for a in ours)
                hand_keys = sorted(
                    (int(r[0].timestamp() * 1000), str(r[1]), str(r[2]), str(r[3])) for r in hand
                )
                same = ours_keys == hand_keys
            if not same:
                raise AssertionError(f"{shape}: siemc and the hand-written SQL differ")
            out[f"{shape}_alerts"] = len(ours)
            out[f"{shape}_siemc_s"] = round(ours_s, 3)
            out[f"{shape}_hand_s"] = round(hand_s, 3)
            out[f"duckdb_vs_hand_{shape}"] = round(hand_s / ours_s, 3)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    res = measure(args.events, args.seed)
    for shape in ("filter", "aggregate"):
        print(
            f"{shape}: siemc {res[f'{shape}_siemc_s']} s, hand-written {res[f'{shape}_hand_s']} s,"
            f" {res[f'{shape}_alerts']} alerts, ratio {res[f'duckdb_vs_hand_{shape}']}",
            file=sys.stderr,
        )
    print(json.dumps(res, sort_keys=True))


if __name__ == "__main__":
    main()
