"""Throughput and memory benchmark of the reference evaluator, against the eql 1.0.1 PythonEngine.

    .venv/bin/python bench/evaluator.py --events 1000000 [--memory-check] [--skip-eql]

Generates ECS process-start / network events deterministically (seeded), runs siemc's
evaluator on a ``sequence by host.name, process.entity_id with maxspan 5m`` analytic and a
one-hour tumbling aggregate (plus the bundled analytics that load), runs eql's PythonEngine on
the equivalent EQL sequence over the same events, and prints one JSON object as the last line.

Every measurement runs in a fresh subprocess (``--worker``), so ``ru_maxrss`` peaks are separate.
Throughput runs materialise their input first and time only the engine; memory runs feed the
evaluator a lazy generator, so their peak RSS is the evaluator's state, not the input.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from random import Random
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `compiler` importable without install
    sys.path.insert(0, str(ROOT))

from compiler import ir  # noqa: E402
from compiler.evaluator import Event, evaluate  # noqa: E402
from compiler.evaluator.engine import Evaluation  # noqa: E402
from compiler.lower import load_file, load_text  # noqa: E402

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z

# --------------------------------------------------------------------------- analytics
# Written here, not read from analytics/, so that the numbers do not move when those change.
SEQUENCE_YAML = """\
id: BENCH-SEQ
title: Script host or office process starts, then connects out on 443 within 5 minutes
description: The detection shape of AN1190/AN1511 (process start -> network connection).
attack: {techniques: [T1567.002]}
platforms: [windows, linux]
severity: medium
streams:
  proc:
    logsource: {category: process_creation}
    where:
      process.name: [powershell.exe, cmd.exe, rundll32.exe, excel.exe, winword.exe, python.exe,
                     curl.exe, curl, wget, python3, perl, node]
  net:
    logsource: {category: network_connection}
    where:
      destination.port: 443
detect:
  sequence:
    by: [host.name, process.entity_id]
    maxspan: 5m
    steps:
      - {stream: proc, as: start}
      - {stream: net, as: net}
"""

SEQUENCE_EQL = """\
sequence by host.name, process.entity_id with maxspan=5m
  [process where event.type == "start" and
     process.name in ("powershell.exe", "cmd.exe", "rundll32.exe", "excel.exe", "winword.exe",
                      "python.exe", "curl.exe", "curl", "wget", "python3", "perl", "node")]
  [network where event.type == "connection" and destination.port == 443]
"""

TUMBLING_YAML = """\
id: BENCH-AGG
title: Process uploads far more than it downloads to one destination in an hour
description: The detection shape of AN1511 / SIEMC-0003 (tumbling sum and ratio).
attack: {techniques: [T1048]}
platforms: [windows, linux]
severity: high
streams:
  flow:
    logsource: {category: network_flow}
detect:
  aggregate:
    stream: flow
    window: {kind: tumbling, size: 1h}
    by: [host.name, process.entity_id, destination.ip]
    measures:
      bytes_out: {sum: source.bytes}
      bytes_in: {sum: destination.bytes}
      flows: {count: true}
    compute:
      ratio: bytes_out / bytes_in
    having: ratio >= 10 and bytes_out >= 10MB
"""

BUILTIN = {"sequence": SEQUENCE_YAML, "tumbling": TUMBLING_YAML}
BUNDLED = ("an1190_linux_cli_web_service.yml", "an1511_office_script_cloud_upload_ratio.yml")


def load_analytic(name: str) -> ir.Analytic:
    """``sequence`` / ``tumbling`` (built in), or the path of a bundled analytic file."""
    if name in BUILTIN:
        return load_text(f"<bench:{name}>", BUILTIN[name]).analytic
    return load_file(name).analytic


def bundled_analytics() -> list[str]:
    """Paths of the bundled analytics named in BUNDLED that exist and load."""
    out = []
    for file in BUNDLED:
        path = ROOT / "analytics" / file
        if not path.is_file():
            continue
        try:
            load_file(path)
        except Exception as exc:  # a broken analytic is someone else's test failure
            print(f"note: skipping {file}: {type(exc).__name__}", file=sys.stderr)
            continue
        out.append(str(path))
    return out


def label(name: str) -> str:
    return name if name in BUILTIN else load_analytic(name).id


# --------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Cardinalities:
    """Distinct values of the main key fields (``--keys hosts=200,users=400,...``)."""

    hosts: int = 200
    users: int = 400
    domains: int = 5000  # random (non-cloud, non-CDN) destination domains
    procs: int = 48  # live processes remembered per host (network events pick among them)

    @classmethod
    def parse(cls, text: str) -> Cardinalities:
        values: dict[str, int] = {}
        names = {f.name for f in dataclass_fields(cls)}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            if key not in names or not value.isdigit() or int(value) < 1:
                raise argparse.ArgumentTypeError(
                    f"bad --keys item {part!r}: expected NAME=N with NAME in {sorted(names)}"
                )
            values[key] = int(value)
        return cls(**values)


# (name, weight, executable, parents); weights are relative start frequencies.
WINDOWS_PROCS: tuple[tuple[str, int, str, tuple[str, ...]], ...] = (
    ("svchost.exe", 20, r"C:\Windows\System32\svchost.exe", ("services.exe",)),
    (
        "chrome.exe",
        12,
        r"C:\Program Files\Google\Chrome\Application\chrome.exe",
        ("explorer.exe", "chrome.exe"),
    ),
    (
        "msedge.exe",
        8,
        r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
        ("explorer.exe", "msedge.exe"),
    ),
    ("conhost.exe", 10, r"C:\Windows\System32\conhost.exe", ("cmd.exe", "powershell.exe")),
    (
        "searchprotocolhost.exe",
        5,
        r"C:\Windows\System32\SearchProtocolHost.exe",
        ("searchindexer.exe",),
    ),
    ("backgroundtaskhost.exe", 4, r"C:\Windows\System32\backgroundTaskHost.exe", ("svchost.exe",)),
    ("taskhostw.exe", 4, r"C:\Windows\System32\taskhostw.exe", ("svchost.exe",)),
    (
        "teams.exe",
        4,
        r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe",
        ("explorer.exe", "teams.exe"),
    ),
    ("cmd.exe", 6, r"C:\Windows\System32\cmd.exe", ("explorer.exe", "excel.exe", "svchost.exe")),
    (
        "powershell.exe",
        5,
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        ("explorer.exe", "cmd.exe", "winword.exe", "svchost.exe"),
    ),
    (
        "excel.exe",
        3,
        r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE",
        ("explorer.exe", "outlook.exe"),
    ),
    (
        "winword.exe",
        3,
        r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
        ("explorer.exe", "outlook.exe"),
    ),
    (
        "outlook.exe",
        3,
        r"C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE",
        ("explorer.exe",),
    ),
    (
        "rundll32.exe",
        3,
        r"C:\Windows\System32\rundll32.exe",
        ("svchost.exe", "explorer.exe", "excel.exe"),
    ),
    (
        "onedrive.exe",
        2,
        r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe",
        ("explorer.exe",),
    ),
    ("explorer.exe", 2, r"C:\Windows\explorer.exe", ("userinit.exe",)),
    ("wmiprvse.exe", 2, r"C:\Windows\System32\wbem\WmiPrvSE.exe", ("svchost.exe",)),
    ("msiexec.exe", 1, r"C:\Windows\System32\msiexec.exe", ("services.exe", "explorer.exe")),
    (
        "python.exe",
        1,
        r"C:\Users\{user}\AppData\Local\Programs\Python\Python312\python.exe",
        ("cmd.exe", "powershell.exe"),
    ),
    ("curl.exe", 1, r"C:\Windows\System32\curl.exe", ("cmd.exe", "powershell.exe")),
)
LINUX_PROCS: tuple[tuple[str, int, str, tuple[str, ...]], ...] = (
    ("bash", 12, "/usr/bin/bash", ("sshd", "bash", "sudo")),
    ("sh", 10, "/usr/bin/sh", ("cron", "bash", "java", "nginx")),
    ("grep", 8, "/usr/bin/grep", ("bash", "sh")),
    ("cron", 6, "/usr/sbin/cron", ("systemd",)),
    ("python3", 6, "/usr/bin/python3", ("bash", "sh", "cron")),
    ("sshd", 5, "/usr/sbin/sshd", ("sshd", "systemd")),
    ("ps", 5, "/usr/bin/ps", ("bash", "sh")),
    ("curl", 4, "/usr/bin/curl", ("bash", "sh", "python3", "java")),
    ("java", 4, "/usr/lib/jvm/java-17-openjdk/bin/java", ("systemd", "bash")),
    ("sudo", 4, "/usr/bin/sudo", ("bash",)),
    ("nginx", 3, "/usr/sbin/nginx", ("systemd", "nginx")),
    ("node", 3, "/usr/bin/node", ("systemd", "bash")),
    ("containerd-shim", 3, "/usr/bin/containerd-shim-runc-v2", ("containerd",)),
    ("wget", 2, "/usr/bin/wget", ("bash", "sh")),
    ("git", 2, "/usr/bin/git", ("bash",)),
    ("tar", 2, "/usr/bin/tar", ("bash", "sh", "cron")),
    ("rsync", 2, "/usr/bin/rsync", ("cron", "bash")),
    ("systemd", 2, "/usr/lib/systemd/systemd", ("systemd",)),
    ("perl", 1, "/usr/bin/perl", ("bash", "cron")),
    ("apt", 1, "/usr/bin/apt", ("sudo",)),
)
# Binaries dropped in writable paths (AN1190's "nonstandard location").
DROPPED = ("/tmp/.x/kworker", "/dev/shm/upd", "/var/tmp/agent", "/home/{user}/bin/sync")

CLOUD_STORAGE = (
    "drive.google.com",
    "www.googleapis.com",
    "storage.googleapis.com",
    "dropbox.com",
    "content.dropboxapi.com",
    "onedrive.live.com",
    "graph.microsoft.com",
    "s3.amazonaws.com",
    "corp-backups.s3.amazonaws.com",
    "mega.nz",
    "discord.com",
    "cdn.discordapp.com",
    "slack.com",
    "files.slack.com",
    "api.box.com",
    "wetransfer.com",
)
CDNS = (
    "cdn.jsdelivr.net",
    "ajax.googleapis.com",
    "fonts.gstatic.com",
    "d1a2b3c4d5e6f7.cloudfront.net",
    "a248.e.akamai.net",
    "cdnjs.cloudflare.com",
    "static.xx.fbcdn.net",
    "officecdn.microsoft.com",
    "update.googleapis.com",
    "download.windowsupdate.com",
    "ctldl.windowsupdate.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "github.com",
    "objects.githubusercontent.com",
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "deb.debian.org",
)
TLDS = ("com", "net", "org", "io", "ru", "cn", "xyz", "info", "de", "co")
# (port, weight, transport)
PORTS = (
    (443, 62, "tcp"),
    (80, 14, "tcp"),
    (53, 8, "udp"),
    (8080, 3, "tcp"),
    (22, 3, "tcp"),
    (445, 3, "tcp"),
    (3389, 2, "tcp"),
    (8443, 2, "tcp"),
    (123, 2, "udp"),
    (25, 1, "tcp"),
)
ARGS = {"powershell.exe": "-nop -w hidden -enc SQBFAFgA", "curl": "-sS -X POST -d @-"}


def _table(weighted: Sequence[tuple[Any, int]]) -> list[Any]:
    """A flat list in which each item appears ``weight`` times: pick with one randrange."""
    return [item for item, weight in weighted for _ in range(weight)]


@dataclass(slots=True)
class _Host:
    name: str
    os: str
    ip: str
    users: tuple[str, ...]
    procs: list[tuple[str, int, str, str, str, str]]  # entity_id, pid, name, exe, parent, user
    next_pid: int


def generate(
    n: int, seed: int = 1, keys: Cardinalities | None = None, rate: float = 20.0
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``n`` events as ``(ts_ms, flat ECS fields)``, lazily, in time order; deterministic in
    ``seed``. ``rate`` is the mean number of events per second (exponential gaps: increasing
    timestamps with jitter, ties possible). About 28% process starts, 4% process ends, 68%
    network connections (with byte counts) by a live process of the same host, biased towards
    recently started ones."""
    card = keys or Cardinalities()
    rng = Random(seed)
    rand, expo, lognorm = rng.random, rng.expovariate, rng.lognormvariate

    def randrange(a: int, b: int | None = None) -> int:  # faster than Random.randrange
        return int(rand() * a) if b is None else a + int(rand() * (b - a))

    first = "ajmskl"
    last = ("smith", "chen", "garcia", "patel", "kim", "nguyen", "muller", "rossi")
    users = [f"{rng.choice(first)}{rng.choice(last)}{i}" for i in range(card.users)]
    hosts: list[_Host] = []
    for i in range(card.hosts):
        linux = i % 10 >= 7  # 30% Linux servers, 70% Windows workstations/servers
        prefix = ("web", "db", "app", "k8s-node")[i % 4] if linux else ("WS", "LT", "SRV")[i % 3]
        name = f"{prefix}{i:03d}" + ("" if linux else ".corp.example.com")
        ip = f"10.{i // 250}.{i % 250}.{rng.randrange(2, 250)}"
        owners = tuple(users[rng.randrange(card.users)] for _ in range(3))
        hosts.append(
            _Host(name, "linux" if linux else "windows", ip, (*owners, "SYSTEM"), [], 1000)
        )
    # Servers (the first hosts of each kind) are busier than the rest.
    host_table = _table([(h, 1 + 9 * (i < card.hosts // 10)) for i, h in enumerate(hosts)])
    win_table = _table([(p, p[1]) for p in WINDOWS_PROCS])
    lin_table = _table([(p, p[1]) for p in LINUX_PROCS])
    port_table = _table([((p, t), w) for p, w, t in PORTS])
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    random_domains = [
        "".join(rng.choices(alnum, k=rng.randrange(4, 12))) + "." + rng.choice(TLDS)
        for _ in range(card.domains)
    ]

    def domain_ip(domain: str) -> str:
        h = zlib.crc32(domain.encode())  # deterministic (unlike hash())
        return f"{h >> 24 & 223 | 1}.{h >> 16 & 255}.{h >> 8 & 255}.{(h & 255) | 1}"

    cloud_ips = {d: domain_ip(d) for d in (*CLOUD_STORAGE, *CDNS)}
    random_ips = [domain_ip(d) for d in random_domains]
    mean_gap_ms = 1000.0 / rate
    ts = START_MS
    gmtime, strftime = time.gmtime, time.strftime
    for i in range(n):
        ts += int(expo(1.0 / mean_gap_ms))
        sec, ms = divmod(ts, 1000)
        fields: dict[str, Any] = {
            "@timestamp": f"{strftime('%Y-%m-%dT%H:%M:%S', gmtime(sec))}.{ms:03d}Z",
            "event.id": f"ev-{i}",
            "event.kind": "event",
            "event.module": "sysmon",
        }
        host = host_table[randrange(len(host_table))]
        procs = host.procs
        fields["host.name"] = host.name
        fields["host.os.type"] = host.os
        fields["host.ip"] = host.ip
        r = rand()
        if r < 0.28 or len(procs) < 2:  # ------------------------------- process start
            linux = host.os == "linux"
            name, _, exe, parents = (lin_table if linux else win_table)[
                randrange(len(lin_table) if linux else len(win_table))
            ]
            user = host.users[randrange(len(host.users))]
            if linux and rand() < 0.01:
                exe = DROPPED[randrange(len(DROPPED))].format(user=user)
                name = exe.rsplit("/", 1)[1]
            else:
                exe = exe.format(user=user)
            parent = parents[randrange(len(parents))]
            host.next_pid = pid = host.next_pid + 1 + randrange(40)
            if pid > 4_000_000:
                host.next_pid = 1000
            g = f"{rng.getrandbits(128):032x}"
            entity = f"{{{g[:8]}-{g[8:12]}-{g[12:16]}-{g[16:20]}-{g[20:]}}}"
            fields.update(
                {
                    "event.category": "process",
                    "event.type": "start",
                    "event.action": "process_started",
                    "event.dataset": "sysmon.process_creation",
                    "process.entity_id": entity,
                    "process.pid": pid,
                    "process.name": name,
                    "process.executable": exe,
                    "process.command_line": f'"{exe}" {ARGS.get(name, "--quiet")}',
                    "process.parent.name": parent,
                    "process.parent.pid": pid - 1 - randrange(500),
                    "user.name": user,
                }
            )
            procs.append((entity, pid, name, exe, parent, user))
            if len(procs) > card.procs:
                del procs[0]
        elif r < 0.32:  # ----------------------------------------------------- process end
            entity, pid, name, exe, parent, user = procs.pop(randrange(len(procs)))
            fields.update(
                {
                    "event.category": "process",
                    "event.type": "end",
                    "event.action": "process_terminated",
                    "event.dataset": "sysmon.process_terminated",
                    "process.entity_id": entity,
                    "process.pid": pid,
                    "process.name": name,
                    "process.executable": exe,
                    "user.name": user,
                }
            )
        else:  # ------------------------------------------------------------ network connection
            k = len(procs) - 1 - min(int(expo(0.25)), len(procs) - 1)  # recent ones more often
            entity, pid, name, exe, parent, user = procs[k]
            port, transport = port_table[randrange(len(port_table))]
            d = rand()
            domain: str | None
            if d < 0.12:
                domain = CLOUD_STORAGE[randrange(len(CLOUD_STORAGE))]
                dip = cloud_ips[domain]
            elif d < 0.45:
                domain = CDNS[randrange(len(CDNS))]
                dip = cloud_ips[domain]
            elif d < 0.85:
                j = int(lognorm(0.0, 1.5) * card.domains / 20) % card.domains  # skewed
                domain, dip = random_domains[j], random_ips[j]
            else:  # a bare IP: no domain
                domain = None
                dip = f"{randrange(1, 224)}.{randrange(256)}.{randrange(256)}.{randrange(1, 255)}"
            out_bytes = int(lognorm(6.5, 1.6))  # heavy-tailed; median ~665 B
            in_bytes = int(lognorm(8.5, 2.0))  # median ~5 kB
            if d < 0.12 and rand() < 0.02:  # an upload to cloud storage
                out_bytes = int(2_000_000 * rng.paretovariate(1.2))
            fields.update(
                {
                    "event.category": "network",
                    "event.type": "connection",
                    "event.action": "connection_attempted",
                    "event.dataset": "sysmon.network_connection",
                    "network.transport": transport,
                    "network.direction": "egress",
                    "process.entity_id": entity,
                    "process.pid": pid,
                    "process.name": name,
                    "process.executable": exe,
                    "user.name": user,
                    "source.ip": host.ip,
                    "source.port": 49152 + randrange(16383),
                    "destination.ip": dip,
                    "destination.port": port,
                    "source.bytes": out_bytes,
                    "destination.bytes": in_bytes,
                }
            )
            if domain is not None:
                fields["destination.domain"] = domain
        yield ts, fields


def siemc_events(
    n: int, seed: int = 1, keys: Cardinalities | None = None, rate: float = 20.0
) -> Iterator[Event]:
    """The generated events as siemc :class:`Event` objects, lazily."""
    for seq, (ts, fields) in enumerate(generate(n, seed, keys, rate)):
        yield Event(ts, seq, fields["event.id"], fields)


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted ECS names to nested objects (what eql's field lookups walk)."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        parts = name.split(".") if name[0] != "@" else [name]
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def eql_events(
    n: int, seed: int = 1, keys: Cardinalities | None = None, rate: float = 20.0
) -> Iterator[Any]:
    """The same events as ``eql.Event(event.category, ts_ms, nested fields)``, lazily."""
    import eql

    make = eql.Event
    for ts, fields in generate(n, seed, keys, rate):
        yield make(fields["event.category"], ts, nest(fields))


# --------------------------------------------------------------------------- engines
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def sequence_keys_siemc(alerts: Sequence[Any]) -> list[tuple[str, ...]]:
    return sorted(tuple(a.evidence) for a in alerts)


def run_eql(events: Sequence[Any] | Iterator[Any]) -> tuple[float, list[tuple[str, ...]]]:
    """Stream ``events`` through eql's PythonEngine on SEQUENCE_EQL: (seconds, evidence ids)."""
    import eql

    with eql.parser.elasticsearch_syntax, eql.parser.ignore_missing_functions:
        query = eql.parse_query(SEQUENCE_EQL)
    engine = eql.PythonEngine({"time_unit": 1000})  # timestamps are milliseconds
    engine.add_query(query)
    found: list[tuple[str, ...]] = []

    def hook(result: Any) -> None:
        found.append(tuple(e.data["event"]["id"] for e in result.events))

    engine.add_output_hook(hook)
    t0 = time.perf_counter()
    engine.stream_events(events)
    return time.perf_counter() - t0, sorted(found)


def _materialise(items: Iterator[Any]) -> list[Any]:
    out = list(items)
    # A million live objects would make every cyclic-GC pass during the timed run walk them
    # all; freezing them moves them out of the collector's view (done alike for both engines).
    gc.collect()
    gc.freeze()
    return out


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement (run in a fresh process by :func:`measure`)."""
    kind, n, seed, rate = spec["kind"], spec["events"], spec["seed"], spec["rate"]
    keys = Cardinalities(**spec["keys"])
    if kind == "siemc_rate":  # materialised input; time evaluate() per analytic
        analytics = {name: load_analytic(name) for name in spec["analytics"]}
        t0 = time.perf_counter()
        events = _materialise(siemc_events(n, seed, keys, rate))
        build = time.perf_counter() - t0
        results: dict[str, Any] = {}
        for name, analytic in analytics.items():
            t0 = time.perf_counter()
            alerts = evaluate(analytic, events)
            dt = time.perf_counter() - t0
            results[name] = {"id": analytic.id, "seconds": dt, "alerts": len(alerts)}
            results[name]["events_per_s"] = n / dt if dt > 0 else 0.0
            del alerts
        del events
        gc.unfreeze()
        return {"build_seconds": build, "analytics": results, "peak_rss_mb": peak_rss_mb()}
    if kind == "siemc_mem":  # lazy input; peak RSS and stored items of one analytic
        analytic = load_analytic(spec["analytic"])
        base = peak_rss_mb()
        run = Evaluation(analytic)
        max_state = 0
        t0 = time.perf_counter()
        for i, event in enumerate(siemc_events(n, seed, keys, rate)):
            run.push(event)
            if i % 20_000 == 0:
                max_state = max(max_state, run.state_size())
        max_state = max(max_state, run.state_size())
        alerts = run.finish()
        dt = time.perf_counter() - t0
        return {
            "seconds_incl_generation": dt,
            "alerts": len(alerts),
            "max_state_items": max_state,
            "rss_before_mb": base,
            "peak_rss_mb": peak_rss_mb(),
        }
    if kind == "eql_rate":
        t0 = time.perf_counter()
        eql_input = _materialise(eql_events(n, seed, keys, rate))
        build = time.perf_counter() - t0
        seconds, found = run_eql(eql_input)
        del eql_input
        gc.unfreeze()
        return {
            "build_seconds": build,
            "seconds": seconds,
            "events_per_s": n / seconds if seconds > 0 else 0.0,
            "alerts": len(found),
            "peak_rss_mb": peak_rss_mb(),
        }
    raise ValueError(f"unknown worker kind {kind!r}")


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter so that its ru_maxrss is its own."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec['kind']} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def cross_check(
    n: int, seed: int, keys: Cardinalities, rate: float
) -> tuple[int, int, list[tuple[str, ...]]]:
    """In-process, small N: the sequences found by siemc and by eql (as evidence id tuples);
    returns (siemc count, eql count, ids found by only one of them)."""
    alerts = evaluate(load_analytic("sequence"), siemc_events(n, seed, keys, rate))
    ours = sequence_keys_siemc(alerts)
    _, theirs = run_eql(eql_events(n, seed, keys, rate))
    diff = sorted(set(ours).symmetric_difference(theirs))
    return len(ours), len(theirs), diff


# --------------------------------------------------------------------------- driver
@dataclass(frozen=True)
class Options:
    events: int = 1_000_000
    seed: int = 1
    keys: Cardinalities = Cardinalities()
    rate: float = 20.0
    skip_eql: bool = False
    memory_check: bool = False
    bundled: bool = True
    check_events: int = 20_000


def run(opts: Options, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole benchmark; returns the summary that ``main`` prints as the last line."""
    n, seed, keys, rate = opts.events, opts.seed, opts.keys, opts.rate
    base = {"events": n, "seed": seed, "rate": rate, "keys": asdict(keys)}
    summary: dict[str, Any] = {"events": n, "seed": seed, "rate_events_per_s_of_data": rate}

    if not opts.skip_eql:
        small = min(n, opts.check_events)
        ours, theirs, diff = cross_check(small, seed, keys, rate)
        summary["check_events"] = small
        summary["check_sequences_siemc"] = ours
        summary["check_sequences_eql"] = theirs
        summary["check_same"] = not diff
        log(f"cross-check on {small} events: siemc {ours} sequences, eql {theirs}")
        if diff:
            log(f"WARNING: siemc and eql disagree on {len(diff)} sequences, e.g. {diff[:3]}")

    names = ["sequence", "tumbling"] + (bundled_analytics() if opts.bundled else [])
    rate_run = measure({**base, "kind": "siemc_rate", "analytics": names})
    per = rate_run["analytics"]
    for res in per.values():
        log(
            f"siemc {res['id']:<12} {res['events_per_s']:>10,.0f} events/s "
            f"({res['seconds']:.2f} s, {res['alerts']} alerts)"
        )
    log(f"  (input materialised in {rate_run['build_seconds']:.1f} s, not timed)")
    seq = per["sequence"]
    summary["events_per_s"] = round(seq["events_per_s"])
    summary["alerts"] = seq["alerts"]
    summary["analytics"] = {
        res["id"]: {"events_per_s": round(res["events_per_s"]), "alerts": res["alerts"]}
        for res in per.values()
    }

    mem = measure({**base, "kind": "siemc_mem", "analytic": "sequence"})
    summary["peak_rss_mb"] = round(mem["peak_rss_mb"], 1)
    summary["max_state_items"] = mem["max_state_items"]
    log(
        f"siemc sequence, lazy input: peak RSS {mem['peak_rss_mb']:.1f} MB "
        f"(interpreter+imports {mem['rss_before_mb']:.1f} MB), "
        f"max stored items {mem['max_state_items']}"
    )

    if not opts.skip_eql:
        theirs_run = measure({**base, "kind": "eql_rate"})
        summary["eql_events_per_s"] = round(theirs_run["events_per_s"])
        summary["eql_alerts"] = theirs_run["alerts"]
        summary["ratio_vs_eql"] = round(seq["events_per_s"] / theirs_run["events_per_s"], 2)
        log(
            f"eql   sequence     {theirs_run['events_per_s']:>10,.0f} events/s "
            f"({theirs_run['seconds']:.2f} s, {theirs_run['alerts']} alerts)"
        )
        if theirs_run["alerts"] != seq["alerts"]:
            log(
                f"WARNING: at {n} events siemc found {seq['alerts']} sequences, "
                f"eql {theirs_run['alerts']}"
            )
        log(f"ratio siemc/eql: {summary['ratio_vs_eql']}")

    if opts.memory_check:
        small_run = measure({**base, "kind": "siemc_mem", "analytic": "tumbling"})
        big_run = measure({**base, "events": 4 * n, "kind": "siemc_mem", "analytic": "tumbling"})
        growth = big_run["peak_rss_mb"] / small_run["peak_rss_mb"]
        summary["tumbling_peak_rss_mb"] = round(small_run["peak_rss_mb"], 1)
        summary["tumbling_peak_rss_mb_4x"] = round(big_run["peak_rss_mb"], 1)
        summary["tumbling_max_state_items"] = small_run["max_state_items"]
        summary["tumbling_max_state_items_4x"] = big_run["max_state_items"]
        summary["mem_growth_4x"] = round(growth, 3)
        log(
            f"tumbling aggregate, lazy input: peak RSS {small_run['peak_rss_mb']:.1f} MB at {n}, "
            f"{big_run['peak_rss_mb']:.1f} MB at {4 * n} events: growth x{growth:.3f} "
            f"(stored items {small_run['max_state_items']} -> {big_run['max_state_items']})"
        )
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="number of events (default 1M)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--keys",
        type=Cardinalities.parse,
        default=Cardinalities(),
        help="cardinalities, e.g. hosts=200,users=400,domains=5000,procs=48",
    )
    p.add_argument(
        "--rate", type=float, default=20.0, help="mean events per second of the data (default 20)"
    )
    p.add_argument("--skip-eql", action="store_true", help="do not run eql")
    p.add_argument(
        "--memory-check",
        action="store_true",
        help="also run the tumbling aggregate at N and 4N events (peak RSS growth)",
    )
    p.add_argument("--no-bundled", action="store_true", help="skip the bundled analytics")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    opts = Options(
        events=args.events,
        seed=args.seed,
        keys=args.keys,
        rate=args.rate,
        skip_eql=args.skip_eql,
        memory_check=args.memory_check,
        bundled=not args.no_bundled,
    )

    def log(msg: str) -> None:
        print(msg, flush=True)

    summary = run(opts, log)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
