"""JUnit XML for CI systems: one test case per (analytic, fixture), classname = analytic id."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from compiler.diagnostics import Diagnostic
from compiler.engine_check import EngineResult
from compiler.testing import FixtureResult

# XML 1.0 cannot hold these characters at all, not even as character references
# (https://www.w3.org/TR/xml/#charsets): C0 controls but tab, line feed and carriage return,
# lone surrogates, U+FFFE and U+FFFF. A test name or message holding one (a control character in
# a fixture name) would make the whole report unreadable to CI; each is written as its code
# point instead, so the name stays recognisable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _sanitize(elem: ET.Element) -> None:
    for e in elem.iter():
        if e.text:
            e.text = xml_safe(e.text)
        if e.tail:
            e.tail = xml_safe(e.tail)
        for k, v in e.attrib.items():
            e.set(k, xml_safe(v))


def write_junit(
    path: Path,
    results: Sequence[FixtureResult],
    invalid: Sequence[Diagnostic] = (),
    engines: Sequence[EngineResult] = (),
) -> None:
    text = junit_xml(results, invalid, engines)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def junit_xml(
    results: Sequence[FixtureResult],
    invalid: Sequence[Diagnostic] = (),
    engines: Sequence[EngineResult] = (),
) -> str:
    suites = ET.Element("testsuites", name="siemc")
    suite = ET.SubElement(suites, "testsuite", name="siemc test")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total = 0.0
    for d in invalid:
        # An analytic that does not load is a test error at its source position, so that CI
        # shows it next to the fixtures that could not run.
        case = ET.SubElement(suite, "testcase", classname=d.path, name=f"load {d.path}", time="0")
        err = ET.SubElement(case, "error", message=d.headline(), type=d.code)
        err.text = d.render()
        counts["tests"] += 1
        counts["errors"] += 1
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=r.analytic,
            name=f"{r.fixture.kind}/{r.fixture.data}: {r.fixture.name}",
            file=r.fixture.span.path,
            line=str(r.fixture.span.line),
            time=f"{r.seconds:.3f}",
        )
        counts["tests"] += 1
        total += r.seconds
        if r.status == "failed":
            f = ET.SubElement(case, "failure", message=r.message, type="AlertMismatch")
            f.text = r.detail
            counts["failures"] += 1
        elif r.status == "error":
            e = ET.SubElement(case, "error", message=r.message, type="FixtureError")
            e.text = r.message
            counts["errors"] += 1
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", message=r.message)
            counts["skipped"] += 1
    for eng in engines:
        # one case per (analytic, fixture, engine): the engine is in the name
        case = ET.SubElement(
            suite,
            "testcase",
            classname=eng.analytic,
            name=f"engine:{eng.target} {eng.fixture.kind}/{eng.fixture.data}: {eng.fixture.name}",
            time=f"{eng.seconds:.3f}",
        )
        counts["tests"] += 1
        total += eng.seconds
        if eng.status == "failed":
            f = ET.SubElement(case, "failure", message=eng.message, type="EngineMismatch")
            f.text = f"query:\n{eng.query}\n{eng.detail}"
            counts["failures"] += 1
        elif eng.status == "error":
            # the engine run itself broke: an error, not a failure of the translation
            kind = eng.message.partition(":")[0] or "EngineError"
            e = ET.SubElement(case, "error", message=eng.message, type=kind)
            e.text = f"{eng.message}\nquery:\n{eng.query}" if eng.query else eng.message
            counts["errors"] += 1
        elif eng.status in ("not_executable", "not_compiled"):
            ET.SubElement(case, "skipped", message=eng.message)
            counts["skipped"] += 1
        elif eng.status == "approximate":
            out = ET.SubElement(case, "system-out")
            out.text = f"differs as declared: {eng.message}\n{eng.detail}"
    for k, v in counts.items():
        suite.set(k, str(v))
    suite.set("time", f"{total:.3f}")
    _sanitize(suites)
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return "<?xml version='1.0' encoding='utf-8'?>\n" + body + "\n"
