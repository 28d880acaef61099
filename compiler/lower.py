"""Lowering: surface model -> IR. The one place that resolves names, defaults and shorthands.

Every problem is collected (with its position) before failing, so one run reports them all.
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from compiler import ir
from compiler import surface as s
from compiler.diagnostics import Diagnostic, DiagnosticError, sort_key
from compiler.evaluator.streams import LOGSOURCE_CATEGORIES
from compiler.expr import ExprError, SpanFn, parse_expr
from compiler.filters import FilterLowering, known
from compiler.lower_fixtures import lower_fixture
from compiler.safe_files import LOOKUP_MAX_BYTES, RefusedPath, confine, read_bounded
from compiler.source import Path, SourceDoc, load_yaml, read_source
from compiler.timeutil import parse_duration
from compiler.validation import pydantic_diagnostics


@dataclass(frozen=True)
class Loaded:
    analytic: ir.Analytic
    fixtures: tuple[ir.Fixture, ...]
    doc: SourceDoc
    # the analytics root its lookups and fixture inputs were confined to (docs/security.md);
    # running a fixture re-checks its inputs against it
    root: FsPath = FsPath(".")


def load_file(path: str | FsPath, root: str | FsPath | None = None) -> Loaded:
    """Read, validate and lower one analytic file; raise DiagnosticError with every problem.
    ``root``: the analytics root referenced files must stay in (default: the file's folder)."""
    p = str(path)
    # read_source stops at the size limit: a huge file is refused without reading it
    return load_text(p, read_source(p), root)


def load_text(path: str, text: str, root: str | FsPath | None = None) -> Loaded:
    doc = load_yaml(path, text)
    if not isinstance(doc.data, dict):
        raise DiagnosticError(
            [doc.diag("E102", "an analytic is a YAML mapping of keys such as id, streams", ())],
            {path: text},
        )
    try:
        model = s.AnalyticM.model_validate(doc.data)
    except ValidationError as exc:
        raise DiagnosticError(pydantic_diagnostics(exc, doc), {path: text}) from None
    # The safe default for a caller that names no root: only the analytic's own folder.
    lowering = _Lowering(doc, model, FsPath(root) if root is not None else FsPath(path).parent)
    loaded = lowering.run()
    if lowering.errors:
        raise DiagnosticError(sorted(lowering.errors, key=sort_key), {path: text})
    assert loaded is not None
    return loaded


def _ms(text: str) -> int:
    return parse_duration(text)


def format_duration(ms: int) -> str:
    """The largest unit that divides ``ms`` exactly: 7200000 -> '2h'."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def candidate_field_problem(det: ir.Detection | None, name: str) -> tuple[str, str] | None:
    """Why an alert of ``det`` cannot carry the field ``name`` a baseline reads (message, help),
    or None when it can."""
    if isinstance(det, ir.Aggregate):
        if name not in det.keys:
            return (
                f"'{name}' is not a group-by key of the aggregate, so alerts do not carry it",
                "add it to the aggregate's 'by' list",
            )
        return None
    steps: tuple[ir.Step, ...] = ()
    if isinstance(det, ir.Sequence):
        steps = det.steps
    elif isinstance(det, ir.Cooccurrence):
        steps = det.members
    elif isinstance(det, ir.Absence):
        steps = (det.first,)
    if not steps or name in steps[0].keys:
        return None
    aliases = [st.alias for st in steps]
    prefix, dot, rest = name.partition(".")
    if dot and rest and prefix in aliases:
        return None
    return (
        f"alerts of this correlation do not carry '{name}'",
        f"name a key of the first step ({', '.join(steps[0].keys)}) or a step's field as "
        f"<step>.<field> (steps: {', '.join(aliases)})",
    )


class _Lowering:
    def __init__(self, doc: SourceDoc, model: s.AnalyticM, root: FsPath):
        self.doc = doc
        self.m = model
        self.root = root
        self.errors: list[Diagnostic] = []
        self.lookups: dict[str, ir.Lookup] = {}

    # ------------------------------------------------------------------ helpers
    def span(self, path: Path, *, key: bool = False) -> ir.Span:
        p = self.doc.pos(path, key=key)
        return ir.Span(self.doc.path, p.line, p.col)

    def err(
        self, code: str, msg: str, path: Path, *, key: bool = False, help: str | None = None
    ) -> None:
        self.errors.append(self.doc.diag(code, msg, path, key=key, help=help))

    def stream_ref(self, name: str, path: Path) -> bool:
        if name in self.m.streams:
            return True
        close = difflib.get_close_matches(name, list(self.m.streams), n=1)
        help_ = f"did you mean '{close[0]}'?" if close else known("streams", self.m.streams)
        self.err("E120", f"unknown stream '{name}'", path, help=help_)
        return False

    # ------------------------------------------------------------------ entry
    def run(self) -> Loaded | None:
        m = self.m
        for name, lk in m.lookups.items():
            self.lookup(name, lk)
        streams = self.streams()
        detection, span_ms = self.detection()
        baselines = self.baselines(detection, span_ms)
        fixtures = tuple(
            lower_fixture(self, t, ("tests", i), detection, FsPath(self.doc.path).parent, self.root)
            for i, t in enumerate(m.tests)
        )
        if self.errors or detection is None:
            return None
        meta = ir.Metadata(
            title=m.title,
            description=m.description,
            attack_analytics=tuple(m.attack.analytics),
            attack_techniques=tuple(m.attack.techniques),
            attack_tactics=tuple(m.attack.tactics),
            platforms=tuple(m.platforms),
            severity=m.severity,
            owner=m.owner,
            references=tuple(m.references),
            false_positives=tuple(m.false_positives),
            author=m.author,
            license=m.license,
            tags=tuple(m.tags),
        )
        analytic = ir.Analytic(
            id=m.id,
            path=self.doc.path,
            meta=meta,
            lookups=tuple(self.lookups.values()),
            streams=streams,
            detection=detection,
            baselines=baselines,
            span=self.span(("id",)),
        )
        return Loaded(analytic, fixtures, self.doc, self.root)

    # ------------------------------------------------------------------ lookups
    def lookup(self, name: str, lk: s.LookupM) -> None:
        path = ("lookups", name, "file")
        f = FsPath(self.doc.path).parent / lk.file
        # Nothing of the file is quoted in a diagnostic until it has proved to be a CSV table
        # (the name says so, it decodes, every row has the header's width): only then may a
        # later "its columns are" help show its header. A private key or /proc/self/environ
        # would otherwise reach the CI log through that help line.
        if not lk.file.lower().endswith(".csv"):
            self.err("E121", f"lookup file {lk.file} is not a .csv file", path)
            return
        try:
            real = confine(f, self.root)
            data = read_bounded(real, LOOKUP_MAX_BYTES)
        except RefusedPath as exc:
            self.err(exc.code, f"lookup file refused: {exc.message}", path, help=exc.help)
            return
        except OSError as exc:
            self.err("E003", f"cannot read lookup file {f}: {exc.strerror or exc}", path)
            return
        try:
            # utf-8-sig: Excel and PowerShell's Export-Csv save UTF-8 with a byte order mark,
            # which plain utf-8 would glue to the first column name.
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            # the position only: the codec's own message quotes the offending byte
            self.err("E003", f"lookup file {f} is not UTF-8 (byte {exc.start})", path)
            return
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            self.err("E121", f"lookup file {lk.file} is not a valid CSV file: {exc}", path)
            return
        if not rows or not all(c.strip() for c in rows[0]):
            self.err("E121", f"lookup '{lk.file}' needs a header row of column names", path)
            return
        header = tuple(rows[0])
        body = []
        for n, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != len(header):
                self.err(
                    "E121",
                    f"{lk.file}:{n}: row has {len(row)} columns, the header has {len(header)}",
                    path,
                )
                return
            # Cells are kept as written: the SIEMs that read the CSV itself (a Splunk lookup,
            # a Sentinel watchlist, an ES|QL lookup index) match " x" as " x", so trimming
            # here would make the evaluator and the inlined EQL/KQL rows disagree with them.
            body.append(tuple(row))
        for i, col in enumerate(header, start=1):
            if col != col.strip():
                # refused rather than trimmed, for the same reason as cells
                self.err(
                    "E121",
                    f"lookup '{lk.file}': column {i} of the header has leading or trailing spaces",
                    path,
                    help="remove the spaces around the column name (cells are used as written)",
                )
                return
        # Column names reach queries (SPL `lookup ... OUTPUT`, ES|QL LOOKUP JOIN, KQL, Sigma):
        # they follow the identifier grammar of plain names (compiler.surface). Checked once the
        # file has read as a CSV table, the first point where a diagnostic may quote it
        # (docs/security.md, "No file contents in diagnostics"); the name is shown by repr().
        bad = [p for c in header if (p := s.plain_name_problem(c, "lookup column")) is not None]
        if bad:
            self.err(
                "E128",
                f"lookup '{lk.file}': {bad[0]}"
                + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                path,
            )
            return
        self.lookups[name] = ir.Lookup(name, str(real), header, tuple(body), self.span(path))

    # ------------------------------------------------------------------ streams
    def streams(self) -> tuple[ir.Stream, ...]:
        out: dict[str, ir.Stream] = {}
        lookup_cols = {n: lk.columns for n, lk in self.lookups.items()}
        for name, st in self.m.streams.items():
            base: Path = ("streams", name)
            source: ir.LogSource | str
            if st.logsource is not None:
                source = ir.LogSource(
                    st.logsource.category, st.logsource.product, st.logsource.service
                )
                if st.logsource.category and st.logsource.category not in LOGSOURCE_CATEGORIES:
                    close = [
                        c
                        for c in sorted(LOGSOURCE_CATEGORIES)
                        if c.startswith(st.logsource.category)
                    ] or difflib.get_close_matches(
                        st.logsource.category, list(LOGSOURCE_CATEGORIES), n=1
                    )
                    self.err(
                        "E103",
                        f"unknown logsource category '{st.logsource.category}'",
                        (*base, "logsource", "category"),
                        help=(f"did you mean '{close[0]}'? " if close else "")
                        + "categories: "
                        + ", ".join(sorted(LOGSOURCE_CATEGORIES)),
                    )
            else:
                assert st.from_ is not None
                source = st.from_
                self.stream_ref(st.from_, (*base, "from"))
            join = None
            if st.join is not None:
                jp = (*base, "join")
                self.stream_ref(st.join.stream, (*jp, "stream"))
                within = _ms(st.join.within)
                join = ir.Join(
                    st.join.stream,
                    tuple(st.join.on),
                    within,
                    st.join.direction,
                    tuple(st.join.add),
                    self.span(jp, key=True),
                )
            enrich = []
            for i, en in enumerate(st.enrich):
                ep = (*base, "enrich", i)
                if en.lookup not in self.lookups:
                    if en.lookup not in self.m.lookups:
                        self.err(
                            "E121",
                            f"unknown lookup '{en.lookup}'",
                            (*ep, "lookup"),
                            help=known("lookups", self.m.lookups),
                        )
                    continue
                cols = self.lookups[en.lookup].columns
                for part in ("match", "add"):
                    for col in getattr(en, part):
                        if col not in cols:
                            self.err(
                                "E121",
                                f"lookup '{en.lookup}' has no column '{col}'",
                                (*ep, part, col),
                                key=True,
                                help=f"its columns are: {', '.join(cols)}",
                            )
                enrich.append(
                    ir.Enrich(
                        en.lookup,
                        tuple(en.match.items()),
                        tuple(en.add.items()),
                        self.span(ep),
                    )
                )
            derive = []
            for fname, text in st.derive.items():
                e = self.expr(text, (*base, "derive", fname), allow_fields=True)
                if e is not None:
                    derive.append((fname, e))
            broken = frozenset(self.m.lookups) - set(self.lookups)
            flt = FilterLowering(self.doc, lookup_cols, self.errors, broken).lower(
                st.where, (*base, "where")
            )
            out[name] = ir.Stream(
                name, source, join, tuple(enrich), tuple(derive), flt, self.span(base, key=True)
            )
        return self.toposort(out)

    def toposort(self, streams: dict[str, ir.Stream]) -> tuple[ir.Stream, ...]:
        order: list[ir.Stream] = []
        state: dict[str, int] = {}

        def deps(st: ir.Stream) -> list[str]:
            d = [st.source] if isinstance(st.source, str) else []
            if st.join:
                d.append(st.join.stream)
            return [x for x in d if x in streams]

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join([*trail[trail.index(name) :], name])
                self.err("E141", f"streams depend on each other: {cycle}", ("streams", name))
                return
            state[name] = 1
            for d in deps(streams[name]):
                visit(d, [*trail, name])
            state[name] = 2
            order.append(streams[name])

        for n in streams:
            visit(n, [])
        return tuple(order)

    # ------------------------------------------------------------------ expressions
    def expr(
        self,
        text: str,
        path: Path,
        *,
        allow_fields: bool = False,
        names: dict[str, str] | None = None,
    ) -> ir.Expr | None:
        pos = self.doc.pos(path)
        col = pos.col + (1 if pos.quoted else 0)
        try:
            e = parse_expr(text, SpanFn(self.doc.path, pos.line, col))
        except ExprError as exc:
            self.errors.append(
                Diagnostic(
                    exc.code or ("E131" if "function" in exc.message else "E130"),
                    exc.message,
                    self.doc.path,
                    pos.line,
                    col + exc.offset,
                    exc.length,
                    exc.help,
                )
            )
            return None
        return self.resolve(e, allow_fields, names or {})

    def resolve(self, e: ir.Expr, allow_fields: bool, names: dict[str, str]) -> ir.Expr:
        if isinstance(e, ir.MeasureRef):
            if allow_fields:
                return ir.FieldRef(e.name, None, e.span)
            if e.name not in names:
                close = difflib.get_close_matches(e.name, list(names), n=1)
                self.errors.append(
                    Diagnostic(
                        "E132",
                        f"unknown measure '{e.name}'",
                        e.span.path,
                        e.span.line,
                        e.span.col,
                        len(e.name),
                        f"did you mean '{close[0]}'?" if close else known("measures", names),
                    )
                )
            return e
        if isinstance(e, ir.BinOp):
            left = self.resolve(e.left, allow_fields, names)
            right = self.resolve(e.right, allow_fields, names)
            return ir.BinOp(e.op, left, right, e.span)
        if isinstance(e, ir.UnaryOp):
            return ir.UnaryOp(e.op, self.resolve(e.operand, allow_fields, names), e.span)
        if isinstance(e, ir.Call):
            args = tuple(self.resolve(a, allow_fields, names) for a in e.args)
            return ir.Call(e.func, args, e.span)
        return e

    # ------------------------------------------------------------------ detections
    def detection(self) -> tuple[ir.Detection | None, int]:
        d = self.m.detect
        if isinstance(d, s.MatchD):
            self.stream_ref(d.match, ("detect", "match"))
            return ir.Match(d.match, self.span(("detect", "match"))), 0
        if isinstance(d, s.SequenceD):
            return self.sequence(d.sequence)
        if isinstance(d, s.CooccurrenceD):
            return self.cooccurrence(d.cooccurrence)
        if isinstance(d, s.AbsenceD):
            return self.absence(d.absence)
        if isinstance(d, s.AggregateD):
            return self.aggregate(d.aggregate)
        assert isinstance(d, s.ThresholdD)
        return self.threshold(d.threshold)

    def step(
        self, st: s.StepM | str, path: Path, default_by: list[str] | None, aliases: set[str]
    ) -> ir.Step | None:
        if isinstance(st, str):
            st = s.StepM(stream=st)
            spath = path
        else:
            spath = (*path, "stream")
        ok = self.stream_ref(st.stream, spath)
        alias = st.as_ or st.stream
        if alias in aliases:
            self.err(
                "E122",
                f"step name '{alias}' is used twice",
                path,
                help="give each step a distinct name with `as:`",
            )
        aliases.add(alias)
        keys = st.by if st.by is not None else default_by
        if not keys:
            self.err("E101", "missing 'by': correlation keys for this step", path)
            return None
        return ir.Step(alias, st.stream, tuple(keys), self.span(path)) if ok else None

    def check_keys(self, steps: list[ir.Step], path: Path) -> None:
        if len({len(st.keys) for st in steps}) > 1:
            self.err(
                "E102",
                "every step needs the same number of 'by' keys (they are compared by position)",
                path,
            )

    def sequence(self, q: s.SequenceM) -> tuple[ir.Detection | None, int]:
        base: Path = ("detect", "sequence")
        span_ms = _ms(q.maxspan)
        if span_ms <= 0:
            self.err("E140", "maxspan must be longer than 0", (*base, "maxspan"))
        aliases: set[str] = set()
        steps = [self.step(st, (*base, "steps", i), q.by, aliases) for i, st in enumerate(q.steps)]
        until = self.step(q.until, (*base, "until"), q.by, aliases) if q.until else None
        good = [x for x in steps if x is not None]
        if len(good) != len(steps) or (q.until and until is None):
            return None, span_ms
        self.check_keys([*good, *([until] if until else [])], base)
        return ir.Sequence(tuple(good), span_ms, until, self.span(base, key=True)), span_ms

    def cooccurrence(self, q: s.CooccurrenceM) -> tuple[ir.Detection | None, int]:
        base: Path = ("detect", "cooccurrence")
        w = _ms(q.window)
        if w <= 0:
            self.err("E140", "window must be longer than 0", (*base, "window"))
        aliases: set[str] = set()
        steps = [
            self.step(st, (*base, "streams", i), q.by, aliases) for i, st in enumerate(q.streams)
        ]
        good = [x for x in steps if x is not None]
        if len(good) != len(steps):
            return None, w
        self.check_keys(good, base)
        return ir.Cooccurrence(tuple(good), w, self.span(base, key=True)), w

    def absence(self, q: s.AbsenceM) -> tuple[ir.Detection | None, int]:
        base: Path = ("detect", "absence")
        w = _ms(q.within)
        if w <= 0:
            self.err("E140", "'within' must be longer than 0", (*base, "within"))
        aliases: set[str] = set()
        first = self.step(q.first, (*base, "first"), q.by, aliases)
        missing = self.step(q.missing, (*base, "missing"), q.by, aliases)
        if first is None or missing is None:
            return None, w
        self.check_keys([first, missing], base)
        return ir.Absence(first, missing, w, self.span(base, key=True)), w

    def window(self, kind: str, size: str, path: Path) -> ir.Window:
        ms = _ms(size)
        if ms <= 0:
            self.err("E140", "a window must be longer than 0", path)
        return ir.Window(kind, ms, self.span(path))  # type: ignore[arg-type]

    def aggregate(self, q: s.AggregateM) -> tuple[ir.Detection | None, int]:
        base: Path = ("detect", "aggregate")
        self.stream_ref(q.stream, (*base, "stream"))
        win = self.window(q.window.kind, q.window.size, (*base, "window", "size"))
        measures = []
        names: dict[str, str] = {}
        lookup_cols = {n: lk.columns for n, lk in self.lookups.items()}
        for name, mm in q.measures.items():
            mp = (*base, "measures", name)
            kind = next(k for k in s.MEASURE_KINDS if k in type(mm).model_fields)
            fld: Any = getattr(mm, kind)
            if kind == "count":
                if fld is False:
                    self.err("E102", "'count: false' counts nothing; use 'count: true'", mp)
                fld = None if isinstance(fld, bool) else fld
            p = mm.p if isinstance(mm, s.PercentileMeasure) else None
            cond = None
            if mm.where is not None:
                cond = FilterLowering(
                    self.doc,
                    lookup_cols,
                    self.errors,
                    frozenset(self.m.lookups) - set(self.lookups),
                ).lower(mm.where, (*mp, "where"))
            measures.append(
                ir.Measure(name, kind, fld, p, self.span(mp, key=True), cond)  # type: ignore[arg-type]
            )
            names[name] = "measure"
        compute = []
        for name, text in q.compute.items():
            cp = (*base, "compute", name)
            if name in names:
                self.err("E102", f"'{name}' is already a measure", cp, key=True)
            e = self.expr(text, cp, names=dict(names))
            names[name] = "compute"
            if e is not None:
                compute.append((name, e))
        having = self.expr(q.having, (*base, "having"), names=names) if q.having else None
        node = ir.Aggregate(
            q.stream,
            win,
            tuple(q.by),
            tuple(measures),
            tuple(compute),
            having,
            "aggregate",
            self.span(base, key=True),
        )
        return node, win.size_ms

    def threshold(self, q: s.ThresholdM) -> tuple[ir.Detection | None, int]:
        base: Path = ("detect", "threshold")
        self.stream_ref(q.stream, (*base, "stream"))
        win = self.window("sliding", q.window, (*base, "window"))
        cond = q.count or q.distinct
        assert cond is not None
        cpath = (*base, "distinct" if q.distinct else "count")
        mspan = self.span(cpath, key=True)
        if q.distinct is not None:
            measure = ir.Measure("value_count", "distinct", q.distinct.field, None, mspan)
            origin = "value_count"
        else:
            measure = ir.Measure("event_count", "count", None, None, mspan)
            origin = "event_count"
        op, limit = (">=", cond.gte) if cond.gte is not None else (">", cond.gt)
        having = ir.BinOp(
            op,  # type: ignore[arg-type]
            ir.MeasureRef(measure.name, self.span(cpath)),
            ir.Literal_(limit, self.span(cpath)),
            self.span(cpath, key=True),
        )
        node = ir.Aggregate(
            q.stream,
            win,
            tuple(q.by),
            (measure,),
            (),
            having,
            origin,  # type: ignore[arg-type]
            self.span(base, key=True),
        )
        return node, win.size_ms

    # ------------------------------------------------------------------ baselines
    def baselines(self, det: ir.Detection | None, span_ms: int) -> tuple[ir.Baseline, ...]:
        out: list[ir.Baseline] = []
        kind = type(det).__name__.lower() if det is not None else "detection"
        for i, b in enumerate(self.m.baseline):
            if isinstance(b, s.DeviationB):
                dev = self.deviation(b.deviation, ("baseline", i, "deviation"), det)
                if dev is not None:
                    out.append(dev)
                continue
            bm: s.FirstSeenM | s.RarityM = b.first_seen if isinstance(b, s.FirstSeenB) else b.rarity
            tag = "first_seen" if isinstance(b, s.FirstSeenB) else "rarity"
            bp: Path = ("baseline", i, tag)
            self.stream_ref(bm.stream, (*bp, "stream"))
            lookback = _ms(bm.lookback)
            if lookback <= span_ms:
                self.err(
                    "E140",
                    f"lookback {bm.lookback} is not longer than the {kind} window "
                    f"({format_duration(span_ms)}): the history would be empty",
                    (*bp, "lookback"),
                    help=f"use a lookback longer than {format_duration(span_ms)}",
                )
            current = bm.as_ or bm.keys
            if len(current) != len(bm.keys):
                self.err("E142", "'as' needs one name per key", (*bp, "as"))
                continue
            where = "as" if bm.as_ else "keys"
            for j, c in enumerate(current):
                problem = candidate_field_problem(det, c)
                if problem is not None:
                    self.err("E142", problem[0], (*bp, where, j), help=problem[1])
            span = self.span(bp, key=True)
            if isinstance(bm, s.FirstSeenM):
                out.append(ir.FirstSeen(bm.stream, tuple(bm.keys), tuple(current), lookback, span))
            else:
                across = "@days" if bm.across == "days" else bm.across
                node = ir.Rarity(
                    bm.stream, tuple(bm.keys), tuple(current), across, bm.max, lookback, span
                )
                out.append(node)
        return tuple(out)

    def deviation(
        self, d: s.DeviationM, path: Path, det: ir.Detection | None
    ) -> ir.Deviation | None:
        if not isinstance(det, ir.Aggregate) or det.window.kind != "tumbling":
            self.err(
                "E142",
                "a deviation baseline compares a measure with its past windows, so it needs "
                "an aggregate with a tumbling window",
                path,
                key=True,
            )
            return None
        names = [m.name for m in det.measures] + [c for c, _ in det.compute]
        if d.measure not in names:
            self.err("E132", f"unknown measure '{d.measure}'", (*path, "measure"))
            return None
        lookback = _ms(d.lookback)
        if lookback < det.window.size_ms * d.min_history:
            self.err(
                "E140",
                f"lookback {d.lookback} holds fewer than min_history={d.min_history} windows of "
                f"{format_duration(det.window.size_ms)}",
                (*path, "lookback"),
                help=f"use a lookback of at least "
                f"{format_duration(det.window.size_ms * d.min_history)}",
            )
        if not self.deviation_form(d, path, lookback // det.window.size_ms + 1):
            return None
        return ir.Deviation(
            d.measure,
            lookback,
            d.k,
            d.percentile,
            d.min_history,
            self.span(path, key=True),
            d.ratio,
            d.direction,
            d.history == "include_current",
        )

    def deviation_form(self, d: s.DeviationM, path: Path, most: int) -> bool:
        """docs/semantics.md (deviation): one comparison per entry, and none that cannot mean
        what it says (``most``: the windows the lookback holds, the current one included)."""
        given = [n for n in ("k", "percentile", "ratio") if getattr(d, n) is not None]
        if len(given) != 1:
            what = " and ".join(given) if given else "none"
            self.err(
                "E705",
                f"a deviation needs exactly one of k, percentile, ratio (got {what})",
                path if not given else (*path, given[-1]),
                key=True,
                help="write several deviation entries to require several conditions",
            )
            return False
        if d.ratio is not None and d.ratio <= 0:
            self.err(
                "E706",
                f"ratio {format(d.ratio, 'g')}: a ratio to the mean must be positive",
                (*path, "ratio"),
                help="use a ratio of at least 1",
            )
            return False
        if d.ratio is not None and d.ratio < 1:
            self.err(
                "E706",
                f"ratio {format(d.ratio, 'g')} is below 1: a deviation ratio multiplies the mean "
                "(above) or divides it (below)",
                (*path, "ratio"),
                help=f"for a drop write direction: below with ratio: {format(1 / d.ratio, 'g')}",
            )
            return False
        if d.k is not None and d.history == "include_current" and (most - 1) ** 2 <= d.k**2 * most:
            # Samuelson: no value of n is more than (n - 1) / sqrt(n) sample stdevs from their mean
            self.err(
                "E707",
                f"k {format(d.k, 'g')} with history: include_current can never hold: the lookback "
                f"holds at most {most} windows with the current one, and none of {most} values "
                f"is more than {format((most - 1) / most**0.5, '.3g')} sample stdevs from their "
                "mean",
                (*path, "k"),
                help="use history: exclude_current, a smaller k or a longer lookback",
            )
            return False
        if d.percentile == 100 and d.direction == "above" and d.history == "include_current":
            self.err(
                "E707",
                "the 100th percentile of values that include the current one is at least the "
                "current value: the condition never holds",
                (*path, "percentile"),
                help="use history: exclude_current (above every past window) or a lower percentile",
            )
            return False
        return True
