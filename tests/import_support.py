"""Helpers of the `siemc import sigma` tests: import hand-written rules, load the analytics
through compiler.lower, run the reference evaluator on events."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml

from compiler import ir
from compiler.evaluator.engine import evaluate, make_events
from compiler.importers.sigma import Result, import_sigma
from compiler.lower import load_text

T0 = "2024-01-01T00:00:"


def run(tmp: Path, *docs: str) -> Result:
    """Import the Sigma documents (one file, separated by ---) written under ``tmp``."""
    src = tmp / "rules"
    src.mkdir(exist_ok=True)
    (src / "rule.yml").write_text(
        "\n---\n".join(textwrap.dedent(d).strip() for d in docs) + "\n", encoding="utf-8"
    )
    return import_sigma([src])


def analytic(tmp: Path, *docs: str, index: int = 0) -> ir.Analytic:
    """The ``index``-th analytic of the import, loaded as `siemc check` loads it (lookups are
    written beside it)."""
    res = run(tmp, *docs)
    assert not res.refused, [r.diagnostic.headline() for r in res.refused]
    out = tmp / "out"
    for rel, text in res.files().items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    imp = res.imported[index]
    return load_text(str(out / imp.file), imp.text, out).analytic


def data(tmp: Path, *docs: str, index: int = 0) -> dict[str, Any]:
    res = run(tmp, *docs)
    assert not res.refused, [r.diagnostic.headline() for r in res.refused]
    loaded: dict[str, Any] = yaml.safe_load(res.imported[index].text)
    return loaded


def alerts(a: ir.Analytic, events: list[dict[str, Any]]) -> list[Any]:
    docs = []
    for i, e in enumerate(events):
        docs.append({"@timestamp": f"{T0}{i:02d}Z", "event.id": f"e{i}", **e})
    return evaluate(a, make_events(docs, "t"))


def proc(**fields: Any) -> dict[str, Any]:
    """A Windows process-creation event (the ECS condition of the logsource)."""
    return {"event.category": "process", "event.type": "start", "host.os.type": "windows", **fields}


def rule(detection: str, logsource: str = "{category: process_creation, product: windows}") -> str:
    body = textwrap.indent(textwrap.dedent(detection).strip(), "  ")
    return (
        "title: Test rule\nid: 5f0e1a9c-0000-4000-8000-000000000001\ndescription: a test\n"
        f"author: Tester\nlogsource: {logsource}\nlevel: high\ndetection:\n{body}\n"
    )
