"""Convert Sigma rule files with the released pySigma backends (run in .venv-pysigma1).

Run by bench/vs_pysigma.py with the interpreter of ``.venv-pysigma1`` (pySigma 1.5.x: the
released Splunk, Elasticsearch and Kusto backends need pySigma < 2), so it imports nothing
from siemc. Usage: ``python bench/pysigma_convert.py FILE...``. For each file, the rule to
convert is the file's last document (a correlation rule after the rules it reads, or a single
rule); the whole file is one collection, so references resolve. Prints one JSON object:
versions, and per file and target the query (or the error) and the conversion time of
``backend.convert(collection)`` alone (the file's rules; the last query is the rule's;
parsing the YAML is not timed, as on siemc's side).

Backends and pipelines, as a user of each backend would set them up for Windows data:
splunk: ``SplunkBackend()`` with no pipeline (Sigma's Sysmon field names as the Splunk Add-on
for Sysmon extracts them); esql / eql: ``ESQLBackend`` / ``EqlBackend`` with ``ecs_windows()``
(and ``ecs_zeek_beats()`` for Zeek rules); kql: ``KustoBackend`` with
``microsoft_xdr_pipeline()`` (the Defender XDR tables).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sigma.backends.elasticsearch import EqlBackend, ESQLBackend
from sigma.backends.kusto import KustoBackend
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.pipelines.elasticsearch.windows import ecs_windows
from sigma.pipelines.elasticsearch.zeek import ecs_zeek_beats
from sigma.pipelines.microsoftxdr import microsoft_xdr_pipeline
from sigma.rule import SigmaRule

PACKAGES = (
    "pysigma",
    "pysigma-backend-splunk",
    "pysigma-backend-elasticsearch",
    "pysigma-backend-kusto",
)


def _product(rule: Any) -> str | None:
    if isinstance(rule, SigmaRule):
        return rule.logsource.product
    for ref in rule.rules or []:
        base = getattr(ref, "rule", None)
        if isinstance(base, SigmaRule):
            return base.logsource.product
    return None


def backends(product: str | None) -> dict[str, Any]:
    ecs = ecs_zeek_beats() if product == "zeek" else ecs_windows()
    return {
        "splunk": SplunkBackend(),
        "esql": ESQLBackend(ecs),
        "eql": EqlBackend(ecs),
        "kql": KustoBackend(microsoft_xdr_pipeline()),
    }


def _load(text: str) -> tuple[SigmaCollection, Any]:
    collection = SigmaCollection.from_yaml(text)
    collection.resolve_rule_references()
    return collection, collection.rules[-1]


def convert(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        _, rule = _load(text)
    except Exception as exc:  # the rule does not load: every target fails alike
        return {"load_error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {}
    for target, backend in backends(_product(rule)).items():
        # a fresh copy per backend: processing pipelines rewrite the rule objects in place
        collection, _ = _load(text)
        t0 = time.perf_counter()
        try:
            # as sigma-cli converts a file: the collection, whose base rules a correlation
            # reads are not output on their own (generate: false)
            queries = backend.convert(collection)
            took = time.perf_counter() - t0
            if not queries:
                raise ValueError("the backend produced no query")
            out[target] = {"query": str(queries[-1]), "seconds": took}
        except Exception as exc:  # what a user of the backend would see
            took = time.perf_counter() - t0
            text_ = " ".join(str(exc).split())
            out[target] = {"error": f"{type(exc).__name__}: {text_}"[:400], "seconds": took}
    return out


def main(paths: list[str]) -> None:
    files = {p: convert(Path(p)) for p in paths}
    print(json.dumps({"versions": {p: version(p) for p in PACKAGES}, "files": files}))


if __name__ == "__main__":
    main(sys.argv[1:])
