"""``siemc new --from-events``: a match analytic whose stream filter is proposed from a sample of
the events it should catch.

The sample is read with the input profiles ``siemc run`` uses (ECS JSON Lines or JSON array,
Sysmon, Zeek, ...), so the proposal speaks of the ECS fields the evaluator and every backend
see. The logsource is the most specific one whose ECS condition (compiler.evaluator.streams,
the table of docs/language.md) holds for *every* sample event; ``where`` proposes the fields
that are constant across the sample. Constant fields that name one machine, user or process
instance (a single-host sample has one host.name) are written commented out: filtering on them
would make the analytic about the sample rather than the behaviour. Every guess is written as a
comment beside what it produced, since the author has to judge it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler import ir
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES, OS_PRODUCTS, logsource_predicate
from compiler.inputs import flatten, read_events
from compiler.safe_files import FIXTURE_MAX_BYTES, RefusedPath
from compiler.scaffold import MODELINE, yaml_str
from compiler.surface import field_name_problem

MAX_SAMPLE = 1000  # events read from the sample: enough to see what varies
# categories that are another name for one kept here, or that hold for any event
_SKIPPED_CATEGORIES = {"dns", "application"}
# fields every event has its own value of, or copies of the raw record: never a filter
_NEVER = {
    "@timestamp",
    "event.id",
    "event.kind",
    "event.created",
    "event.ingested",
    "event.original",
    "message",
}
_RAW_PREFIXES = ("winlog.", "zeek.", "auditd.", "log.", "agent.", "ecs.", "vmconnection.")
# constant in a sample, but the identity of one machine, user or process instance, or of the
# log source (which the logsource's product and service select)
_INSTANCE_PREFIXES = ("host.", "user.", "observer.", "client.", "server.", "related.")
_INSTANCE_FIELDS = {
    "source.ip",
    "source.port",
    "destination.ip",
    "source.address",
    "event.module",
    "event.dataset",
}
_INSTANCE_SUFFIXES = (
    ".pid",
    ".entity_id",
    ".id",
    ".uid",
    ".guid",
    ".bytes",
    ".packets",
    ".duration",
    ".start",
    ".end",
)
_HASH = re.compile(r"(^|\.)hash(\.|$)")


class SampleError(Exception):
    """The sample cannot be read, or tells nothing apart (E601); ``where`` is its position."""

    def __init__(self, where: str, message: str, help: str | None = None):
        super().__init__(message)
        self.where = where
        self.message = message
        self.help = help


@dataclass
class Proposal:
    logsource: dict[str, str]
    where: list[tuple[str, Any]]
    commented: list[tuple[str, Any]]
    notes: list[str]
    positive: dict[str, Any]
    negative: dict[str, Any]
    count: int
    varying: list[tuple[str, int]] = field(default_factory=list)


def read_sample(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Up to :data:`MAX_SAMPLE` events of ``path``, flat (dotted ECS names)."""
    try:
        docs = list(itertools.islice(read_events(path, fmt, FIXTURE_MAX_BYTES), MAX_SAMPLE))
        events = [flatten(d) for d in docs]
    except RefusedPath as exc:
        raise SampleError(f"{path}:1:1", f"{exc.code}: {exc.message}") from None
    except OSError as exc:
        raise SampleError(f"{path}:1:1", f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        # the readers start a message with ``path:line:`` when they know the record
        m = re.match(r"^(.*?):(\d+): (.*)$", str(exc), re.S)
        if m and m.group(1) == str(path):
            raise SampleError(f"{path}:{m.group(2)}:1", m.group(3)) from None
        raise SampleError(f"{path}:1:1", str(exc)) from None
    if not events:
        raise SampleError(f"{path}:1:1", f"no events in {path} (read as {fmt})")
    if "@timestamp" not in events[0]:
        # the proposed fixtures are built from the first event, and a fixture event needs one
        raise SampleError(
            f"{path}:1:1",
            f"the first event of {path} has no @timestamp (read as {fmt})",
            "give the format of the file (--format, or FORMAT:FILE) if it is not ECS",
        )
    return events


def _holds(pred: ir.Predicate, events: list[dict[str, Any]]) -> bool:
    test = compile_predicate(pred, {})
    return all(test(e) for e in events)


def _leaves(pred: ir.Predicate) -> list[ir.Predicate]:
    if isinstance(pred, ir.And | ir.Or):
        return [leaf for item in pred.items for leaf in _leaves(item)]
    return [pred]


def _fields(pred: ir.Predicate) -> list[str]:
    return [f for leaf in _leaves(pred) if isinstance(f := getattr(leaf, "field", None), str)]


def _constant(events: list[dict[str, Any]]) -> dict[str, Any]:
    first = events[0]
    out: dict[str, Any] = {}
    for name, value in first.items():
        if isinstance(value, list | dict) or value is None:
            continue
        if all(name in e and e[name] == value and type(e[name]) is type(value) for e in events):
            out[name] = value
    return out


def _infer_logsource(
    events: list[dict[str, Any]], const: dict[str, Any]
) -> tuple[dict[str, str], list[str], set[str]]:
    """The logsource, a comment line per guess, and the fields its condition tests."""
    notes: list[str] = []
    used: set[str] = set()
    fits = [
        (name, pred)
        for name, pred in LOGSOURCE_CATEGORIES.items()
        if name not in _SKIPPED_CATEGORIES and _holds(pred, events)
    ]
    ls: dict[str, str] = {}
    if fits:
        # the most specific: the category whose condition tests the most fields
        fits.sort(key=lambda np: -len(_leaves(np[1])))
        name, pred = fits[0]
        ls["category"] = name
        used |= set(_fields(pred))
        tested = ", ".join(sorted(set(_fields(pred))))
        notes.append(f"category {name}: its condition ({tested}) holds for every sample event")
        others = [n for n, _ in fits[1:]]
        if others:
            notes.append(f"  also true of every sample event: {', '.join(others)}")
    else:
        notes.append("no logsource category holds for every sample event (docs/language.md)")
    os_type = const.get("host.os.type")
    module = const.get("event.module")
    if isinstance(os_type, str) and os_type.lower() in OS_PRODUCTS:
        ls["product"] = os_type.lower()
        used.add("host.os.type")
        notes.append(f"product {ls['product']}: host.os.type is {os_type} in every event")
    elif isinstance(module, str) and field_name_problem(module) is None:
        ls["product"] = module
        used.add("event.module")
        notes.append(f"product {module}: event.module is {module} in every event")
        dataset = const.get("event.dataset")
        if (
            isinstance(dataset, str)
            and dataset.startswith(module + ".")
            and "." not in dataset[len(module) + 1 :]
        ):
            ls["service"] = dataset[len(module) + 1 :]
            used.add("event.dataset")
            notes.append(f"service {ls['service']}: event.dataset is {dataset} in every event")
    if not ls:
        # an application log: the `where` below is all that selects the events
        ls["category"] = "application"
        notes.append("category application: no condition, `where` alone selects the events")
    return ls, notes, used


def _kind(name: str) -> str:
    """ "never" (not a filter), "instance" (commented out) or "filter"."""
    if name in _NEVER or name.startswith(_RAW_PREFIXES) or field_name_problem(name):
        return "never"
    if (
        name.startswith(_INSTANCE_PREFIXES)
        or name in _INSTANCE_FIELDS
        or name.endswith(_INSTANCE_SUFFIXES)
        or _HASH.search(name)
    ):
        return "instance"
    return "filter"


def _other(value: Any) -> Any:
    """A value that no equality filter on ``value`` accepts (equality ignores case and reads
    numeric strings as numbers)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return f"{value}-other" if value else "other"


def propose(path: Path, fmt: str) -> Proposal:
    events = read_sample(path, fmt)
    const = _constant(events)
    ls, notes, used = _infer_logsource(events, const)
    where: list[tuple[str, Any]] = []
    commented: list[tuple[str, Any]] = []
    # with a category, the events' provider and code only say which log source recorded them
    # (Sysmon's event 1 for process_creation), which the targets' data models already map
    categorised = ls.get("category", "application") != "application"
    for name in sorted(const):
        if name in used:
            continue
        kind = _kind(name)
        if categorised and name in ("event.code", "event.provider") and kind == "filter":
            kind = "instance"
        if kind == "filter":
            where.append((name, const[name]))
        elif kind == "instance":
            commented.append((name, const[name]))
    varying = sorted(
        (name, len({json.dumps(e.get(name), sort_keys=True, default=str) for e in events}))
        for name in {n for e in events for n in e}
        if name not in const and _kind(name) != "never"
    )
    # the fixtures: the first sample event, cut down to what the stream reads
    first = events[0]
    keep = {"@timestamp", *used, *(n for n, _ in where)}
    if "category" in ls:
        keep |= set(_fields(LOGSOURCE_CATEGORIES[ls["category"]]))
    positive = {k: first[k] for k in sorted(keep) if k in first}
    positive["event.id"] = str(first.get("event.id") or "sample-1")
    # a negative: the same event with one tested field changed, so that it fails the filter
    breakable = [n for n, _ in where] or [
        leaf.field
        for leaf in _leaves(_logsource_pred(ls))
        if isinstance(leaf, ir.Eq) and leaf.field in positive
    ]
    if not breakable:
        raise SampleError(
            f"{path}:1:1",
            "nothing in the sample tells its events apart from others: no logsource condition "
            "and no field with one value in every event",
            "give a sample of events of one kind (one category, one program, ...)",
        )
    negative = dict(positive)
    negative[breakable[0]] = _other(positive[breakable[0]])
    negative["event.id"] = "not-" + positive["event.id"]
    return Proposal(ls, where, commented, notes, positive, negative, len(events), varying)


def _logsource_pred(ls: dict[str, str]) -> ir.Predicate:
    return logsource_predicate(
        ir.LogSource(ls.get("category"), ls.get("product"), ls.get("service"))
    )


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return yaml_str(str(value))


def _flow(event: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{yaml_str(k)}: {_scalar(v)}" for k, v in event.items()) + "}"


def _lines(prefix: str, items: Iterable[str]) -> list[str]:
    return [f"{prefix}{x}" if x else prefix.rstrip() for x in items]


def render(p: Proposal, sample: Path, fmt: str, analytic_id: str, title: str, schema: str) -> str:
    """The analytic text of a proposal (shape: match)."""
    ls_flow = "{" + ", ".join(f"{k}: {v}" for k, v in p.logsource.items()) + "}"
    n = p.count
    head = [
        MODELINE + schema,
        f"# Proposed by `siemc new --from-events` from {n} event{'s' * (n != 1)} of {sample.name}"
        f" (read as {fmt}).",
        "# Shape: match (every event of the stream is an alert). Everything below is a guess",
        "# from the sample: check each filter, widen what should match more, and add negative",
        "# fixtures for the look-alikes the analytic must ignore (docs/language.md,",
        "# docs/tutorial.md).",
        f"id: {yaml_str(analytic_id)}",
        f"title: {yaml_str(title)}",
        "description: >",
        *_lines(
            "  ",
            _wrap(
                f"Events like those of {sample.name}. Say here what the analytic detects and "
                "why it matters; exports copy it into every SIEM's rule.",
                94,
            ),
        ),
        "severity: low                    # informational | low | medium | high | critical",
    ]
    if p.logsource.get("product") in OS_PRODUCTS:
        head.append(f"platforms: [{p.logsource['product']}]")
    body = ["", "streams:", "  sample:"]
    notes = [w for note in p.notes for w in _wrap(note, 84)]
    body += _lines("    # ", ["logsource, guessed from the sample:", *notes])
    body.append(f"    logsource: {ls_flow}")
    if n == 1:
        body.append("    # one event: every field is constant; keep what defines the behaviour")
    else:
        body.append(f"    # where: the fields with one value in all {n} events")
    if p.where:
        body.append("    where:")
        body += [f"      {k}: {_scalar(v)}" for k, v in p.where]
    else:
        body.append("    # (no field other than the logsource's has one value in every event)")
    if p.commented:
        body.append(
            "      # constant in the sample, but naming its source, a host, user or instance:"
        )
        body += [f"      # {k}: {_scalar(v)}" for k, v in p.commented[:20]]
    if p.varying:
        shown = ", ".join(f"{k} ({c} values)" for k, c in p.varying[:12])
        body += _lines("    # ", _wrap(f"varying in the sample: {shown}", 88))
    body += [
        "",
        "detect:",
        "  match: sample",
        "",
        "tests:",
        "  - name: the first sample event",
        "    kind: positive",
        "    events:",
        f"      - {_flow(p.positive)}",
        "    expect:",
        f"      - evidence: [{yaml_str(p.positive['event.id'])}]",
        "  - name: the first sample event with one filtered field changed",
        "    kind: negative",
        "    events:",
        f"      - {_flow(p.negative)}",
    ]
    return "\n".join(head + body) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*out, line]
