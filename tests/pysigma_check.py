"""Load and convert siemc's emitted Sigma rules with whatever pySigma this interpreter has.

Run as a script by tests/test_pysigma_range.py, in the main venv (pySigma 2.x) and in
.venv-pysigma1 (pySigma 1.5.x), so it imports nothing from siemc. Usage:
``python tests/pysigma_check.py RULE.yml...``; prints one JSON object: the pySigma version,
and per file the number of queries the SQLite backend made, the problems found (none =
accepted) and what the backend release could not convert although pySigma loaded it.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import version
from pathlib import Path

from sigma.backends.sqlite import sqliteBackend  # type: ignore[attr-defined]
from sigma.collection import SigmaCollection
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import WildcardPlaceholderTransformation


def check(text: str) -> tuple[int, list[str], list[str]]:
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except Exception as exc:  # a YAML error, before any rule exists
        return 0, [f"{type(exc).__name__}: {exc}"], []
    problems = [f"{type(e).__name__}: {e}" for e in collection.errors]
    for rule in collection.rules:
        problems += [f"{rule.title}: {type(e).__name__}: {e}" for e in rule.errors]
    if problems:
        return 0, problems, []
    try:
        collection.resolve_rule_references()
        # lookups are %placeholders%: the values do not matter to whether a backend accepts
        # the rule, so they become wildcards
        pipeline = ProcessingPipeline([ProcessingItem(WildcardPlaceholderTransformation())])
        queries = sqliteBackend(pipeline).convert(collection)  # type: ignore[no-untyped-call]
    except NotImplementedError as exc:
        # pySigma accepted the rules; this release of the SQLite backend cannot convert them
        # (pysigma-backend-sqlite 1.2.4 has no extended temporal conditions)
        return 0, [], [f"{type(exc).__name__}: {exc}"]
    except Exception as exc:
        return 0, [f"{type(exc).__name__}: {exc}"], []
    return len(queries), [], []


def main(paths: list[str]) -> None:
    files = {}
    for p in paths:
        n, problems, unconverted = check(Path(p).read_text(encoding="utf-8"))
        files[Path(p).name] = {"queries": n, "problems": problems, "unconverted": unconverted}
    print(json.dumps({"pysigma": version("pysigma"), "files": files}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
