"""Execute compiled Splunk SPL over a fixture with the SPL interpreter of siemc's tests.

No Splunk engine exists offline, so ``tests/interpreters/spl_interp.py`` interprets the subset of
SPL the splunk backend emits, from the query text, with the Search Reference's semantics. It ships
with the siemc source tests: outside a source checkout :class:`EngineUnavailable` is raised.

``run(loaded, fixture, artifact)`` turns the fixture's ECS events into Splunk events as the CIM
add-ons would present them (``backends/profiles/cim.yml`` reversed: CIM field names, values as
extracted text, ``_time`` in seconds), adds what the profile's base searches select on, loads the
analytic's lookup CSVs as the lookup definitions the artifact's header names, pins ``now()``
(``fixture.now_ms``, else the last event's time), runs the query and returns its rows as
canonical alerts.

**Selection fields.** ``tag``: the event's ``event.category`` values (the profile maps
event.category to tag) plus the tags of the base search of every logsource category the event
belongs to (``tag=process tag=report`` for a process start, ...). ``sourcetype``: one of the
sourcetypes the profile's product searches name, chosen so that the event is selected by exactly
the product/service searches whose logsource it belongs to (e.g. a Windows Sysmon event gets
``XmlWinEventLog:Microsoft-Windows-Sysmon/Operational``, a Zeek conn event ``bro:conn:json``).
``direction`` takes the CIM Network_Traffic vocabulary (egress -> outbound, ingress -> inbound,
https://docs.splunk.com/Documentation/CIM/latest/User/NetworkTraffic).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from backends.base import Artifact
from backends.profiles import FieldProfile, load_profile
from backends.splunk import psl
from backends.splunk.expr import is_boolean
from backends.splunk.macros import definitions, event_codes
from compiler import canonical, engines, ir
from compiler.canonical import CanonicalAlert
from compiler.evaluator.model import Event
from compiler.evaluator.predicates import compile_predicate
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES, logsource_predicate
from compiler.lower import Loaded
from compiler.testing import fixture_events

EXTRA = "source checkout"
INTERPRETER = "tests.interpreters.spl_interp"
_DIRECTION = {"egress": "outbound", "ingress": "inbound"}
_OTHER_SOURCETYPE = "siemc:other"
_LOOKUP_DEF = re.compile(
    r"lookup definition (\S+): transforms\.conf \[[^\]]*\] filename = [^,]*, "
    r"case_sensitive_match = (true|false), max_matches = (\d+)"
)


class EngineUnavailable(engines.EngineUnavailable):
    def __init__(self, extra: str = EXTRA) -> None:
        self.extra = extra
        super().__init__(
            "the SPL interpreter ships with the siemc source tests "
            "(tests/interpreters/spl_interp.py): run the SPL differential tests from a siemc "
            "source checkout"
        )


class NotExecutable(engines.NotExecutable):
    """The query uses a command or function the interpreter does not implement."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"not executable by the interpreter: {what}")


def interpreter() -> Any:
    try:
        return engines.import_interpreter(INTERPRETER)
    except ModuleNotFoundError as exc:
        if exc.name is not None and INTERPRETER.startswith(exc.name):
            raise EngineUnavailable() from None
        raise


# --------------------------------------------------------------------------- events
def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return str(v)


def _extracted(v: Any) -> Any:
    """A value as search-time extraction gives it: text; a list is a multivalue field."""
    if isinstance(v, list):
        vals = [_text(x) for x in v if x is not None]
        return None if not vals else vals[0] if len(vals) == 1 else vals
    return None if v is None else _text(v)


class ProfileEvents:
    """ECS events as the Splunk events of a profile (cim: CIM names; sysmon: raw Sysmon)."""

    def __init__(self, profile: FieldProfile, analytic: ir.Analytic, interp: Any) -> None:
        self.profile = profile
        self.search = interp.sx
        self.codes = event_codes(profile.name)
        lookups = {lk.name: lk for lk in analytic.lookups}
        self.categories = []
        # the EventCode of the events of a category (sysmon: process_creation is EventCode 1)
        self.category_codes: list[tuple[Any, list[str]]] = []
        # the other fields a category's search selects on, as its events carry them (CIM
        # Endpoint.Filesystem `action=created` for a file creation, Sysmon EventCode 12's
        # EventType=CreateKey for a registry key creation)
        self.category_terms: list[tuple[Any, dict[str, str]]] = []
        # most specific first: a registry rename is also a registry change (registry_set), but
        # Sysmon logs it as EventCode 14, not 13
        ranked = sorted(LOGSOURCE_CATEGORIES.items(), key=lambda kv: -_conjuncts(kv[1]))
        for cat, pred in ranked:
            src = profile.source(cat)
            if src is not None and "search" in src:
                tags = re.findall(r"\btag=(\w+)", str(src["search"]))
                member = compile_predicate(pred, lookups)
                self.categories.append((member, tags))
                codes = re.findall(r"\bEventCode=(\d+)", str(src["search"]))
                if codes:
                    self.category_codes.append((member, codes))
                terms = _terms(str(src["search"]))
                if terms:
                    self.category_terms.append((member, terms))
        self.products = []
        # sources of a logsource with a service (Windows Security) or of a category on its own
        # channel (PowerShell 4104): their events come from that source alone
        self.specific: list[tuple[Any, tuple[str, str]]] = []
        selectors: list[tuple[str, str]] = []
        for key, src in profile.sources.items():
            product, _, service = key.partition("/")
            if product in LOGSOURCE_CATEGORIES:
                own = _selectors(str(src.get("search", ""))) if src.get("macro") else []
                if own:
                    ls = ir.LogSource(product, service or None, None)
                    member = compile_predicate(logsource_predicate(ls), lookups)
                    self.specific.insert(0, (member, own[0]))
                    selectors += [s for s in own if s not in selectors]
                continue
            ls = ir.LogSource(None, product, service or None)
            node = self.search.parse(str(src["search"]))
            member = compile_predicate(logsource_predicate(ls), lookups)
            if src.get("default"):
                # the source every event of the profile comes from (sysmon: any event with an
                # EventCode), whatever its own product says
                member = self._has_code
            self.products.append((member, node))
            own = _selectors(str(src["search"]))
            if service and own and profile.strict_services:
                self.specific.append((member, own[0]))
            selectors += [s for s in own if s not in selectors]
        self.selectors = [*selectors, ("sourcetype", _OTHER_SOURCETYPE)]
        self.defaults = [
            bool(src.get("default"))
            for key, src in profile.sources.items()
            if key.partition("/")[0] not in LOGSOURCE_CATEGORIES
        ]
        # `prefix.*: "*"` fields: the event's fields under the prefix, by the rest of the name
        self.namespaces = [
            (k[:-1], v) for k, v in profile.fields.items() if k.endswith(".*") and "*" in v
        ]

    @functools.cache  # noqa: B019 - one instance per run
    def _selector(self, wanted: tuple[bool, ...]) -> tuple[str, str]:
        def agreement(sel: tuple[str, str]) -> tuple[int, int]:
            row = {"index": "main", sel[0]: sel[1]}
            hits = [
                self.search.matches(node, row) == w
                for (_, node), w in zip(self.products, wanted, strict=True)
            ]
            # an event no selector fits wholly (a Sysmon event without an OS) at least keeps
            # the default source right
            first = [h for h, d in zip(hits, self.defaults, strict=True) if d]
            return sum(hits), sum(first)

        return max(self.selectors, key=agreement)

    def _has_code(self, f: Mapping[str, Any]) -> bool:
        return self._event_code(f) is not None

    def _event_code(self, f: Mapping[str, Any]) -> str | None:
        """The EventCode of the event's logsource category, else the one whose ECS values (the
        profile's ``event_codes``) the event has (a process end)."""
        for member, codes in self.category_codes:
            if member(f):
                # a category of several EventCodes (file_delete: 23 and 26) keeps the event's own
                own = [_text(v) for v in _values(f.get("event.code"))]
                return own[0] if own and own[0] in codes else codes[0]
        for code, values in self.codes.items():
            if all(
                any(_text(v).lower() == want.lower() for v in _values(f.get(field)))
                for field, want in values.items()
            ):
                return code
        return None

    def event(self, e: Event) -> dict[str, Any]:
        f = e.fields
        out: dict[str, Any] = {"_time": e.ts / 1000, "index": "main"}
        for ecs, cim in self.profile.fields.items():
            if ecs == "@timestamp" or ecs not in f:
                continue
            v = _extracted(f[ecs])
            if ecs == "network.direction" and isinstance(v, str):
                v = _DIRECTION.get(v.lower(), v)
            if v is not None:
                out[cim] = v
        for prefix, to in self.namespaces:
            for name, value in f.items():
                rest = name[len(prefix) :]
                if name.startswith(prefix) and _FIELD.match(rest):
                    v = _extracted(value)
                    if v is not None:
                        out.setdefault(to.replace("*", rest), v)
        if self.codes:
            code = self._event_code(f)
            if code is not None:
                out[self.profile.fields.get("event.code", "EventCode")] = code
        for member, terms in self.category_terms:
            if member(f):
                for field, value in terms.items():
                    out.setdefault(field, value)
        tags = (
            [str(x) for x in (f.get("event.category") or []) if x is not None]
            if isinstance(f.get("event.category"), list)
            else ([str(f["event.category"])] if f.get("event.category") is not None else [])
        )
        for member, cat_tags in self.categories:
            if member(f):
                tags += [t for t in cat_tags if t not in tags]
        if tags and "tag" in self.profile.fields.values():
            out["tag"] = tags[0] if len(tags) == 1 else tags
        own = next((sel for member, sel in self.specific if member(f)), None)
        if own is not None:
            field, value = own
        else:
            field, value = self._selector(tuple(bool(member(f)) for member, _ in self.products))
        out[field] = value
        return out


_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TERM = re.compile(r'(?<![\w.])([A-Za-z_]\w*)=("[^"]*"|[^\s()"]+)')


def _selectors(search: str) -> list[tuple[str, str]]:
    """The literal source / sourcetype values a base search selects."""
    found = re.findall(r'\b(sourcetype|source)="([^"]+)"', search)
    return [(f, v) for f, v in found if "*" not in v]


def _terms(search: str) -> dict[str, str]:
    """The field=value terms of a category's search other than the selection fields the
    harness sets itself (index, tag, EventCode, source, sourcetype): the first value of each."""
    out: dict[str, str] = {}
    for field, value in _TERM.findall(search):
        if field not in ("index", "tag", "EventCode", "source", "sourcetype") and "*" not in value:
            out.setdefault(field, value.strip('"'))
    return out


def _conjuncts(p: ir.Predicate) -> int:
    return len(p.items) if isinstance(p, ir.And) else 1


def _values(v: Any) -> list[Any]:
    return [x for x in v if x is not None] if isinstance(v, list) else ([] if v is None else [v])


def lookup_definitions(loaded: Loaded, artifact: Artifact, interp: Any) -> dict[str, Any]:
    """The analytic's CSVs as the lookup definitions the artifact's header asks for."""
    settings = {m.group(1): (m.group(2) == "true", int(m.group(3)))
                for m in _LOOKUP_DEF.finditer(artifact.text)}  # fmt: skip
    out: dict[str, Any] = {}
    for lk in loaded.analytic.lookups:
        rows = [dict(zip(lk.columns, r, strict=False)) for r in lk.rows]
        cased, most = settings.get(lk.name, (True, 1000))
        out[lk.name] = interp.LookupDef(rows, case_sensitive=cased, max_matches=most)
    if psl.LOOKUP in settings:
        cased, most = settings[psl.LOOKUP]
        table = [dict(zip(psl.COLUMNS, r, strict=True)) for r in psl.rows()]
        out[psl.LOOKUP] = interp.LookupDef(table, case_sensitive=cased, max_matches=most)
    return out


# --------------------------------------------------------------------------- results
def _ms(v: Any) -> int | None:
    try:
        return round(float(v) * 1000)
    except (TypeError, ValueError):
        return None


def _table_columns(query: str) -> list[str]:
    last = [ln for ln in query.strip().splitlines() if ln.startswith("| table ")]
    return last[-1].split()[2:] if last else []


def _local(profile: FieldProfile, name: str) -> str:
    return profile.fields.get(name) or profile.local(name)


def to_alerts(
    analytic: ir.Analytic, query: str, rows: Sequence[Mapping[str, Any]], profile: FieldProfile
) -> list[CanonicalAlert]:
    d = analytic.detection
    aid = analytic.id
    out: list[CanonicalAlert] = []
    if isinstance(d, ir.Aggregate):
        cols = _table_columns(query)[1 : 1 + len(d.keys)]
        names = [profile.local(m.name) for m in d.measures]
        names += [profile.local(n) for n, _ in d.compute]
        measures = [m.name for m in d.measures] + [n for n, _ in d.compute]
        flags = _boolean_computes(d)
        for r in rows:
            t = _ms(r.get("_time"))
            key = [(k, r.get(c)) for k, c in zip(d.keys, cols, strict=True)]
            ms = [
                (m, _flag(r.get(c)) if m in flags else _num(r.get(c)))
                for m, c in zip(measures, names, strict=True)
                if c in r
            ]
            if d.window.kind == "tumbling":
                out.append(
                    canonical.make(aid, key, t, None if t is None else t + d.window.size_ms, ms)
                )
            else:
                out.append(canonical.make(aid, key, None, t, ms))
        return out
    steps: tuple[ir.Step, ...] = ()
    if isinstance(d, ir.Sequence):
        steps = d.steps
    elif isinstance(d, ir.Cooccurrence):
        steps = d.members
    elif isinstance(d, ir.Absence):
        steps = (d.first,)
    if not steps:  # match
        return [canonical.make(aid, (), _ms(r["_time"]), _ms(r["_time"])) for r in rows]
    keys = steps[0].keys
    if isinstance(d, ir.Sequence) and len(d.steps) == 1 and d.until is None:
        for r in rows:
            t = _ms(r.get("_time"))
            out.append(canonical.make(aid, [(k, r.get(_local(profile, k))) for k in keys], t, t))
        return out
    for r in rows:
        key = [(k, r.get(f"siemc_k{i}")) for i, k in enumerate(keys)]
        t = _ms(r.get("_time"))
        if isinstance(d, ir.Sequence):
            dur = _ms(r.get("duration")) or 0
            out.append(canonical.make(aid, key, t, None if t is None else t + dur))
        elif isinstance(d, ir.Cooccurrence):
            out.append(canonical.make(aid, key, None, t))
        else:
            out.append(canonical.make(aid, key, t, t))
    return out


def _boolean_computes(d: ir.Aggregate) -> set[str]:
    """Computed values the backend holds as the text "true"/"false" (eval cannot store a
    boolean; backends.splunk.expr)."""
    out: set[str] = set()
    for name, e in d.compute:
        if is_boolean(e, frozenset(out)):
            out.add(name)
    return out


def _flag(v: Any) -> Any:
    return {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v


def _num(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def run(loaded: Loaded, fixture: ir.Fixture, artifact: Artifact) -> list[CanonicalAlert]:
    """The canonical alerts of ``artifact``'s query interpreted over ``fixture``'s events.

    Raises :class:`NotExecutable` for commands the interpreter lacks and
    :class:`EngineUnavailable` outside a source checkout."""
    interp = interpreter()
    profile = load_profile(artifact.profile)
    events = fixture_events(loaded, fixture)
    conv = ProfileEvents(profile, loaded.analytic, interp)
    splunk_events = [conv.event(e) for e in events]
    now = fixture.now_ms if fixture.now_ms is not None else max((e.ts for e in events), default=0)
    lookups = lookup_definitions(loaded, artifact, interp)
    try:
        macros = definitions(artifact.query, artifact.profile, loaded.analytic.id)
        rows = interp.execute(artifact.query, splunk_events, lookups, now, macros)
    except interp.NotExecutable as exc:
        raise NotExecutable(exc.what) from None
    return to_alerts(loaded.analytic, artifact.query, rows, profile)
