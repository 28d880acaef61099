"""Compile-time benchmark: siemc compiling a generated catalog to every target, against pySigma.

    .venv/bin/python bench/compile.py --analytics 1000 [--seed 1] [--repeat 3]

Generates ``--analytics`` analytics deterministically (seeded) as YAML text: single-event
matches whose filters use most modifiers, sequences, co-occurrences, absences, thresholds
(event count, distinct count) and aggregates (one measure with a `having`, or several measures
with a computed ratio). Most of them can be expressed as Sigma rules (a base rule per stream,
plus a correlation rule for the correlating shapes).

In one process it then times

- **siemc**: load + lower (YAML text -> IR) and compile to all five targets
  (``siemc_s``), and the compile step alone (``siemc_compile_only_s``);
- **pySigma 2.0.1**: loading the Sigma artifacts siemc emitted (``SigmaCollection.from_yaml``
  per artifact, merged, ``resolve_rule_references()``) and converting the collection with
  pySigma-backend-sqlite 2.1.1 (``pysigma_s``): the pySigma path to one target.

The last line is one JSON object with ``analytics``, ``targets``, ``siemc_s``, ``pysigma_s`` and
``ratio`` (= pysigma_s / siemc_s; > 1 means siemc compiles to five targets faster than pySigma
converts to one). See bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `compiler`, `backends` importable
    sys.path.insert(0, str(ROOT))

from backends import TARGETS, get_backend  # noqa: E402
from backends.base import Artifact, CompileError  # noqa: E402
from compiler.lower import Loaded, load_text  # noqa: E402

ALL_TARGETS: tuple[str, ...] = tuple(TARGETS)

# --------------------------------------------------------------------------- vocabulary
WIN_PROCS = (
    "powershell.exe",
    "pwsh.exe",
    "cmd.exe",
    "rundll32.exe",
    "regsvr32.exe",
    "mshta.exe",
    "wscript.exe",
    "cscript.exe",
    "certutil.exe",
    "bitsadmin.exe",
    "schtasks.exe",
    "wmic.exe",
    "msbuild.exe",
    "installutil.exe",
    "curl.exe",
    "python.exe",
)
OFFICE = ("winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "onenote.exe", "msaccess.exe")
LINUX_PROCS = (
    "bash",
    "sh",
    "dash",
    "curl",
    "wget",
    "python3",
    "perl",
    "nc",
    "ncat",
    "socat",
    "base64",
    "chmod",
    "crontab",
    "ssh",
    "scp",
    "openssl",
)
LINUX_PARENTS = ("nginx", "httpd", "apache2", "java", "php-fpm", "node", "tomcat", "sshd", "cron")
WIN_CMD = (
    "-enc",
    "-encodedcommand",
    "-nop",
    "-w hidden",
    "bypass",
    "downloadstring",
    "frombase64string",
    "invoke-webrequest",
    "iex",
    "-urlcache",
    "/transfer",
    "javascript:",
    "vbscript:",
    "/create /sc",
    "process call create",
    "http://",
    "https://",
    "\\appdata\\local\\temp\\",
    "add-mppreference",
    "-exclusionpath",
)
LINUX_CMD = (
    "/dev/tcp/",
    "base64 -d",
    "chmod +x",
    "/tmp/",
    "/dev/shm/",
    "-e /bin/sh",
    "bash -i",
    "curl -s",
    "wget -q",
    "| sh",
    "| bash",
    "python3 -c",
    "nohup",
    "crontab -",
    "authorized_keys",
    "openssl s_client",
)
WIN_DIRS = (
    "C:\\Users\\Public\\",
    "C:\\ProgramData\\",
    "\\AppData\\Local\\Temp\\",
    "\\AppData\\Roaming\\",
    "C:\\Windows\\Temp\\",
    "C:\\Perflogs\\",
)
LINUX_DIRS = ("/tmp/", "/dev/shm/", "/var/tmp/", "/run/user/", "/home/", "/opt/")
SYSTEM_DIRS_WIN = ("C:\\Windows\\System32\\", "C:\\Windows\\SysWOW64\\", "C:\\Program Files\\")
SYSTEM_DIRS_LINUX = ("/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/lib/")
USERS = ("SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE", "root", "www-data", "nobody", "svc_backup")
DOMAIN_SUFFIXES = (
    ".onion",
    ".xyz",
    ".top",
    ".ru",
    ".duckdns.org",
    ".ngrok.io",
    ".trycloudflare.com",
    "pastebin.com",
    "transfer.sh",
    "raw.githubusercontent.com",
    "discord.com",
    "drive.google.com",
    "dropboxusercontent.com",
    "mega.nz",
)
ALLOWED_DOMAINS = (
    ".microsoft.com",
    ".windowsupdate.com",
    ".office365.com",
    ".googleapis.com",
    ".digicert.com",
    ".corp.example.com",
)
SUSPICIOUS_PORTS = (4444, 1337, 8080, 8443, 9001, 9050, 6666, 31337, 5555, 2222)
SERVICE_PORTS = (22, 23, 135, 139, 445, 1433, 3306, 3389, 5432, 5900, 5985, 5986, 6379)
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16")
REGEXES = (
    r"[A-Za-z0-9+/]{40,}={0,2}",
    r"\\[a-z0-9]{8}\.exe$",
    r"-[eE][nN][cC]\s+[A-Za-z0-9+/=]{20,}",
    r"https?://\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
    r"/tmp/\.[a-z0-9]+",
    r"\b(sh|bash)\s+-i\b",
    r"[a-z0-9]{25,}\.",
    r"^[0-9a-f]{32}\.",
    r"\.(ps1|vbs|hta|js)\b",
)
TECHNIQUES = (
    "T1059.001",
    "T1059.003",
    "T1059.004",
    "T1105",
    "T1218.011",
    "T1218.005",
    "T1071.001",
    "T1071.004",
    "T1046",
    "T1110.001",
    "T1021.002",
    "T1048",
    "T1567.002",
    "T1053.005",
    "T1027",
    "T1204.002",
)
SEVERITIES = ("informational", "low", "medium", "high", "critical")
DURATIONS = ("30s", "1m", "2m", "5m", "10m", "15m", "30m", "1h")

# Shapes and their relative frequencies. Everything but absence (and the ratio aggregates,
# whose `compute` Sigma cannot express) has a Sigma form: base rules (+ a correlation rule).
SHAPES: tuple[tuple[str, int], ...] = (
    ("match", 40),
    ("sequence", 15),
    ("threshold_count", 12),
    ("threshold_distinct", 10),
    ("aggregate", 10),
    ("cooccurrence", 6),
    ("aggregate_ratio", 4),
    ("absence", 3),
)


# --------------------------------------------------------------------------- generation
class _Gen:
    """One analytic's random choices (``Random`` is seeded per catalog)."""

    def __init__(self, rng: Random) -> None:
        self.r = rng

    def pick(self, seq: Sequence[Any], k: int | None = None) -> Any:
        if k is None:
            return self.r.choice(seq)
        return self.r.sample(list(seq), min(k, len(seq)))

    def some(self, seq: Sequence[Any], lo: int, hi: int) -> list[Any]:
        return self.pick(seq, self.r.randint(lo, hi))  # type: ignore[no-any-return]

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    # ---------------------------------------------------------------- filters
    def proc_filter(self, os_: str) -> dict[str, Any]:
        win = os_ == "windows"
        procs, cmds = (WIN_PROCS, WIN_CMD) if win else (LINUX_PROCS, LINUX_CMD)
        dirs, sysdirs = (WIN_DIRS, SYSTEM_DIRS_WIN) if win else (LINUX_DIRS, SYSTEM_DIRS_LINUX)
        parents = OFFICE if win else LINUX_PARENTS
        sep = "\\" if win else "/"
        where: dict[str, Any] = {}
        options = [
            lambda: where.__setitem__("process.name", self.some(procs, 1, 6)),
            lambda: where.__setitem__(
                "process.command_line|contains" + ("|all" if self.chance(0.4) else ""),
                self.some(cmds, 1, 3),
            ),
            lambda: where.__setitem__("process.parent.name", self.some(parents, 1, 4)),
            lambda: where.__setitem__("process.executable|startswith", self.some(dirs, 1, 3)),
            lambda: where.__setitem__(
                "process.executable|endswith", [sep + p for p in self.some(procs, 1, 3)]
            ),
            lambda: where.__setitem__("process.command_line|re", self.pick(REGEXES)),
            lambda: where.__setitem__("user.name", self.some(USERS, 1, 3)),
            lambda: where.__setitem__("process.parent.command_line|contains", self.pick(cmds)),
            lambda: where.__setitem__("process.name|cased", self.pick(procs)),
            lambda: where.__setitem__("process.command_line|exists", True),
        ]
        for fn in self.some(options, 1, 4):
            fn()
        if self.chance(0.35):  # an allowlist
            where["not"] = (
                {"process.executable|startswith": self.some(sysdirs, 1, 2)}
                if self.chance(0.5)
                else {"process.parent.name": self.some(procs, 1, 2)}
            )
        if self.chance(0.2):
            return {"any": [where, {"process.command_line|re": self.pick(REGEXES)}]}
        return where

    def net_filter(self) -> dict[str, Any]:
        where: dict[str, Any] = {}
        options = [
            lambda: where.__setitem__("destination.port", self.some(SUSPICIOUS_PORTS, 1, 5)),
            lambda: where.__setitem__("destination.port|lt", 1024),
            lambda: where.__setitem__("source.port|gte", 49152),
            lambda: where.__setitem__(
                "destination.domain|endswith", self.some(DOMAIN_SUFFIXES, 2, 5)
            ),
            lambda: where.__setitem__("network.transport", self.pick(("tcp", "udp"))),
            lambda: where.__setitem__("process.name", self.some(WIN_PROCS + LINUX_PROCS, 1, 5)),
            lambda: where.__setitem__("destination.ip|cidr", self.some(PRIVATE, 1, 3)),
            lambda: where.__setitem__("destination.domain|exists", self.chance(0.5)),
            lambda: where.__setitem__("destination.domain|re", self.pick(REGEXES[-3:])),
        ]
        for fn in self.some(options, 1, 3):
            fn()
        if self.chance(0.5):
            where["not"] = (
                {"destination.ip|cidr": self.some(PRIVATE, 1, 3)}
                if self.chance(0.5)
                else {"destination.domain|endswith": self.some(ALLOWED_DOMAINS, 1, 4)}
            )
        return where

    def dns_filter(self) -> dict[str, Any]:
        where: dict[str, Any] = {}
        if self.chance(0.5):
            where["dns.question.name|endswith"] = self.some(DOMAIN_SUFFIXES, 1, 5)
        else:
            where["dns.question.name|re"] = self.pick(REGEXES[-3:])
        if self.chance(0.4):
            where["process.name"] = self.some(WIN_PROCS, 1, 4)
        if self.chance(0.4):
            where["not"] = {"dns.question.name|endswith": self.some(ALLOWED_DOMAINS, 1, 4)}
        return where

    def flow_filter(self) -> dict[str, Any]:
        where: dict[str, Any] = {"network.transport": "tcp"}
        if self.chance(0.6):
            where["source.ip|cidr"] = self.some(PRIVATE[:3], 1, 3)
        if self.chance(0.6):
            where["not"] = {"destination.ip|cidr": self.some(PRIVATE, 1, 3)}
        if self.chance(0.3):
            where["destination.port"] = self.some((443, 80, 8443, 21, 22), 1, 3)
        return where

    # ---------------------------------------------------------------- streams
    def stream(self, kind: str, os_: str) -> dict[str, Any]:
        if kind == "proc":
            src: dict[str, Any] = {"category": "process_creation"}
            if self.chance(0.6):
                src["product"] = os_
            return {"logsource": src, "where": self.proc_filter(os_)}
        if kind == "net":
            src = {"category": "network_connection"}
            if self.chance(0.4):
                src["product"] = os_
            return {"logsource": src, "where": self.net_filter()}
        if kind == "dns":
            return {"logsource": {"category": "dns_query"}, "where": self.dns_filter()}
        return {
            "logsource": {"category": "network_flow", "product": "zeek", "service": "conn"},
            "where": self.flow_filter(),
        }

    # ---------------------------------------------------------------- detections
    def detection(self, shape: str, os_: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(streams, detect) for one shape."""
        r = self.r
        if shape == "match":
            kind = self.pick(("proc", "proc", "proc", "net", "net", "dns"))
            return {kind: self.stream(kind, os_)}, {"match": kind}
        if shape == "sequence":
            first = self.stream("proc", os_)
            if self.chance(0.3):  # parent -> child -> network, keyed by host only
                child = self.stream("proc", os_)
                net = self.stream("net", os_)
                steps = [
                    {"stream": "parent", "as": "parent"},
                    {"stream": "child", "as": "child"},
                    {"stream": "conn", "as": "conn"},
                ]
                seq: dict[str, Any] = {"by": ["host.name"], "maxspan": self.pick(DURATIONS)}
                streams = {"parent": first, "child": child, "conn": net}
            else:
                second = self.pick(("net", "dns"))
                streams = {"start": first, second: self.stream(second, os_)}
                steps = [{"stream": "start", "as": "start"}, {"stream": second, "as": "then"}]
                seq = {"by": ["host.name", "process.entity_id"], "maxspan": self.pick(DURATIONS)}
            seq["steps"] = steps
            return streams, {"sequence": seq}
        if shape == "cooccurrence":
            kinds = self.pick(("proc", "net", "dns"), r.randint(2, 3))
            streams = {k: self.stream(k, os_) for k in kinds}
            return streams, {
                "cooccurrence": {
                    "by": ["host.name"],
                    "window": self.pick(DURATIONS),
                    "streams": list(kinds),
                }
            }
        if shape == "absence":
            return {"proc": self.stream("proc", os_), "net": self.stream("net", os_)}, {
                "absence": {
                    "by": ["host.name", "process.entity_id"],
                    "first": "proc",
                    "missing": "net",
                    "within": self.pick(DURATIONS[:4]),
                }
            }
        if shape == "threshold_count":
            kind = self.pick(("proc", "net", "dns"))
            by = ["host.name"] + (["user.name"] if kind == "proc" and self.chance(0.5) else [])
            op = self.pick(("gte", "gt"))
            return {kind: self.stream(kind, os_)}, {
                "threshold": {
                    "stream": kind,
                    "by": by,
                    "window": self.pick(DURATIONS),
                    "count": {op: r.randint(3, 200)},
                }
            }
        if shape == "threshold_distinct":
            kind, fld, by = self.pick(
                (
                    ("net", "destination.ip", ["host.name"]),
                    ("net", "destination.port", ["host.name", "destination.ip"]),
                    ("dns", "dns.question.name", ["host.name"]),
                    ("proc", "process.name", ["host.name"]),
                    ("proc", "user.name", ["host.name"]),
                    ("flow", "destination.port", ["source.ip", "destination.ip"]),
                )
            )
            return {kind: self.stream(kind, os_)}, {
                "threshold": {
                    "stream": kind,
                    "by": by,
                    "window": self.pick(DURATIONS),
                    "distinct": {"field": fld, "gte": r.randint(5, 100)},
                }
            }
        window = {"kind": self.pick(("tumbling", "sliding")), "size": self.pick(DURATIONS[3:])}
        if shape == "aggregate":  # one measure, one comparison: a Sigma correlation
            agg = self.pick(
                (
                    ("sum", "source.bytes", "bytes_out", f"{r.randint(1, 500)}MB"),
                    ("sum", "destination.bytes", "bytes_in", f"{r.randint(1, 2)}GB"),
                    ("avg", "source.bytes", "avg_out", f"{r.randint(100, 900)}KB"),
                    ("count", True, "flows", str(r.randint(50, 5000))),
                    ("distinct", "destination.ip", "peers", str(r.randint(10, 300))),
                    ("distinct", "destination.port", "ports", str(r.randint(10, 300))),
                )
            )
            fn, arg, name, limit = agg
            op = self.pick((">=", ">"))
            return {"flow": self.stream("flow", os_)}, {
                "aggregate": {
                    "stream": "flow",
                    "window": window,
                    "by": ["source.ip", "destination.ip"][: r.randint(1, 2)],
                    "measures": {name: {fn: arg}},
                    "having": f"{name} {op} {limit}",
                }
            }
        # aggregate_ratio: the AN1511 shape (Sigma cannot compute the ratio)
        return {"flow": self.stream("flow", os_)}, {
            "aggregate": {
                "stream": "flow",
                "window": window,
                "by": ["source.ip", "destination.ip"],
                "measures": {
                    "bytes_out": {"sum": "source.bytes"},
                    "bytes_in": {"sum": "destination.bytes"},
                    "flows": {"count": True},
                },
                "compute": {"ratio": "bytes_out / bytes_in"},
                "having": f"ratio >= {r.randint(5, 50)} and bytes_out >= {r.randint(5, 500)}MB",
            }
        }


def generate_catalog(n: int, seed: int = 1) -> list[tuple[str, str, str]]:
    """``n`` analytics as ``(path, shape, yaml_text)``, deterministic in ``seed``."""
    rng = Random(seed)
    gen = _Gen(rng)
    table = [name for name, weight in SHAPES for _ in range(weight)]
    out = []
    for i in range(n):
        # every shape once first (small catalogs cover them all), then by weight
        shape = SHAPES[i][0] if i < len(SHAPES) else rng.choice(table)
        os_ = "linux" if rng.random() < 0.3 else "windows"
        streams, detect = gen.detection(shape, os_)
        doc = {
            "id": f"BENCH-{i:05d}",
            "title": f"Generated {shape.replace('_', ' ')} analytic {i} ({os_})",
            "description": f"bench/compile.py seed {seed}: a {shape} over {', '.join(streams)}.",
            "attack": {"techniques": gen.some(TECHNIQUES, 1, 3)},
            "platforms": [os_],
            "severity": gen.pick(SEVERITIES),
            "owner": "detection-engineering",
            "false_positives": ["Administrative scripts"],
            "streams": streams,
            "detect": detect,
        }
        text = yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)
        out.append((f"<bench:{doc['id']}>", shape, text))
    return out


# --------------------------------------------------------------------------- measurement
@dataclass
class SiemcRun:
    load_s: float  # wall-clock seconds of load + lower
    compile_s: float  # wall-clock seconds of compiling to every target
    cpu_s: float  # process CPU seconds of both
    loaded: list[Loaded]
    artifacts: dict[str, list[Artifact]]  # target -> artifacts, in catalog order
    unsupported: Counter[str] = field(default_factory=Counter)  # target -> CompileErrors
    load_errors: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return self.load_s + self.compile_s


def run_siemc(catalog: Sequence[tuple[str, str, str]], targets: Sequence[str]) -> SiemcRun:
    """Load + lower every analytic, then compile each to every target (approximations
    allowed, as ``siemc compile --allow-approximate``); a CompileError counts as compiled."""
    backends = [get_backend(t) for t in targets]
    perf, cpu = time.perf_counter, time.process_time
    loaded: list[Loaded] = []
    load_errors: list[str] = []
    c0, t0 = cpu(), perf()
    for path, _, text in catalog:
        try:
            loaded.append(load_text(path, text))
        except Exception as exc:  # a generator bug: reported as a WARNING
            load_errors.append(f"{path}: {exc}")
    t1 = perf()
    artifacts: dict[str, list[Artifact]] = {t: [] for t in targets}
    unsupported: Counter[str] = Counter()
    for item in loaded:
        for backend in backends:
            try:
                artifacts[backend.target].append(
                    backend.compile(item.analytic, allow_approximate=True)
                )
            except CompileError:
                unsupported[backend.target] += 1
    t2, c2 = perf(), cpu()
    return SiemcRun(t1 - t0, t2 - t1, c2 - c0, loaded, artifacts, unsupported, load_errors)


@dataclass
class PysigmaRun:
    load_s: float  # wall-clock seconds of from_yaml + merge + resolve_rule_references
    convert_s: float  # wall-clock seconds of the SQLite conversion
    cpu_s: float  # process CPU seconds of both
    rules: int
    queries: int
    errors: list[str]

    @property
    def total_s(self) -> float:
        return self.load_s + self.convert_s


def run_pysigma(texts: Sequence[str]) -> PysigmaRun:
    """Load each Sigma artifact (one multi-document file per analytic, as a rules folder
    would be), merge, resolve correlation references, convert with the SQLite backend."""
    from sigma.backends.sqlite import sqliteBackend  # type: ignore[attr-defined]
    from sigma.collection import SigmaCollection

    perf, cpu = time.perf_counter, time.process_time
    c0, t0 = cpu(), perf()
    collection = SigmaCollection.merge(
        [SigmaCollection.from_yaml(t, collect_errors=True) for t in texts]
    )
    collection.resolve_rule_references()
    t1 = perf()
    backend = sqliteBackend(collect_errors=True)  # type: ignore[no-untyped-call]
    queries = backend.convert(collection)
    t2, c2 = perf(), cpu()
    errors = [f"{type(e).__name__}: {e}" for e in collection.errors]
    for rule in collection.rules:
        errors += [f"{rule.title}: {type(e).__name__}: {e}" for e in rule.errors]
    errors += [f"{rule.title}: {type(e).__name__}: {e}" for rule, e in backend.errors]
    return PysigmaRun(t1 - t0, t2 - t1, c2 - c0, len(collection.rules), len(queries), errors)


def warm_up() -> None:
    """Import every backend and pySigma module and load every profile before timing: import
    cost is excluded on both sides (the first timed run would otherwise carry it)."""
    catalog = generate_catalog(len(SHAPES) * 2, seed=0)
    warm = run_siemc(catalog, ALL_TARGETS)
    run_pysigma([a.text for a in warm.artifacts.get("sigma", [])])


# --------------------------------------------------------------------------- driver
@dataclass(frozen=True)
class Options:
    analytics: int = 1000
    seed: int = 1
    repeat: int = 3
    targets: tuple[str, ...] = ALL_TARGETS


def run(opts: Options, log: Callable[[str], None]) -> dict[str, Any]:
    catalog = generate_catalog(opts.analytics, opts.seed)
    shapes = Counter(shape for _, shape, _ in catalog)
    log(
        f"catalog: {len(catalog)} analytics (seed {opts.seed}): "
        + ", ".join(f"{k} {v}" for k, v in sorted(shapes.items()))
    )
    warm_up()
    ours_runs: list[SiemcRun] = []
    theirs_runs: list[PysigmaRun] = []
    for i in range(opts.repeat):
        gc.collect()
        ours = run_siemc(catalog, opts.targets)
        gc.collect()
        theirs = run_pysigma([a.text for a in ours.artifacts.get("sigma", [])])
        ours_runs.append(ours)
        theirs_runs.append(theirs)
        log(
            f"run {i + 1}/{opts.repeat}: siemc {ours.total_s:.3f} s (load+lower "
            f"{ours.load_s:.3f} s, compile x{len(opts.targets)} {ours.compile_s:.3f} s, "
            f"cpu {ours.cpu_s:.3f} s); pySigma {theirs.total_s:.3f} s (load+resolve "
            f"{theirs.load_s:.3f} s, sqlite convert {theirs.convert_s:.3f} s, "
            f"cpu {theirs.cpu_s:.3f} s)"
        )
    # Best of --repeat on each side (the least disturbed run), each number on its own.
    ours = min(ours_runs, key=lambda x: x.total_s)
    theirs = min(theirs_runs, key=lambda x: x.total_s)
    siemc_s = ours.total_s
    compile_s = min(x.compile_s for x in ours_runs)
    siemc_cpu = min(x.cpu_s for x in ours_runs)
    pysigma_cpu = min(x.cpu_s for x in theirs_runs)
    for err in ours.load_errors[:5]:
        log(f"WARNING: a generated analytic does not load: {err}")
    for err in theirs.errors[:5]:
        log(f"WARNING: pySigma: {err}")
    per_target = {
        t: {"compiled": len(ours.artifacts[t]), "unsupported": ours.unsupported[t]}
        for t in opts.targets
    }
    for t, c in per_target.items():
        log(f"  {t:6} {c['compiled']:5} artifacts {c['unsupported']:5} compile errors")
    summary: dict[str, Any] = {
        "analytics": len(catalog),
        "targets": len(opts.targets),
        "siemc_s": round(siemc_s, 4),
        "siemc_load_s": round(ours.load_s, 4),
        "siemc_compile_only_s": round(compile_s, 4),
        "siemc_cpu_s": round(siemc_cpu, 4),
        "pysigma_s": round(theirs.total_s, 4),
        "pysigma_load_s": round(theirs.load_s, 4),
        "pysigma_convert_s": round(theirs.convert_s, 4),
        "pysigma_cpu_s": round(pysigma_cpu, 4),
        "ratio": round(theirs.total_s / siemc_s, 3),
        "ratio_compile_only": round(theirs.total_s / compile_s, 3),
        "ratio_cpu": round(pysigma_cpu / siemc_cpu, 3),
        "per_target": per_target,
        "sigma_files": len(ours.artifacts.get("sigma", [])),
        "sigma_rules": theirs.rules,
        "sqlite_queries": theirs.queries,
        "pysigma_errors": len(theirs.errors),
        "load_errors": len(ours.load_errors),
        "shapes": dict(sorted(shapes.items())),
        "repeat": opts.repeat,
        "seed": opts.seed,
    }
    log(
        f"best of {opts.repeat}: siemc {siemc_s:.3f} s ({summary['analytics']} analytics x "
        f"{len(opts.targets)} targets), pySigma {theirs.total_s:.3f} s "
        f"({summary['sigma_files']} Sigma files, {theirs.rules} rules -> {theirs.queries} "
        f"SQLite queries): ratio {summary['ratio']} (compile only {summary['ratio_compile_only']},"
        f" cpu {summary['ratio_cpu']})"
    )
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--analytics", type=int, default=1000, help="catalog size (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="runs; the best is reported (default 3)")
    p.add_argument("--dump", type=Path, help="also write the generated analytics to this folder")
    args = p.parse_args(argv)
    if args.analytics < 1 or args.repeat < 1:
        p.error("--analytics and --repeat must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for path, _, text in generate_catalog(args.analytics, args.seed):
            name = path.removeprefix("<bench:").removesuffix(">").lower()
            (args.dump / f"{name}.yml").write_text(text, encoding="utf-8")

    def log(msg: str) -> None:
        print(msg, flush=True)

    summary = run(Options(analytics=args.analytics, seed=args.seed, repeat=args.repeat), log)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
