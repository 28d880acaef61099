"""Adapters that execute compiled queries in target engines, for differential checks.

Each ``run_<engine>`` module exposes ``run(loaded, fixture, artifact) -> list[CanonicalAlert]``.
Engines are optional: a missing engine package raises :class:`EngineUnavailable` naming the pip
extra that installs it; a query the engine cannot run faithfully raises :class:`NotExecutable`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

# target -> adapter module
ENGINES: dict[str, str] = {
    "eql": "compiler.engines.run_eql",
    "sigma": "compiler.engines.run_sigma",
    "kql": "compiler.engines.run_kql",
    "esql": "compiler.engines.run_esql",
    "splunk": "compiler.engines.run_spl",
    "duckdb": "compiler.engines.run_duckdb",
}


class EngineUnavailable(RuntimeError):
    """The engine (a Python package, Node tool or source-checkout interpreter) is missing."""


class NotExecutable(RuntimeError):
    """The engine cannot execute this query faithfully (the reason says why)."""


def load_engine(target: str) -> ModuleType:
    if target not in ENGINES:
        raise ValueError(f"no engine for target '{target}'; engines: {', '.join(ENGINES)}")
    try:
        return importlib.import_module(ENGINES[target])
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("compiler.engines."):
            raise EngineUnavailable(
                f"siemc has no {target} engine adapter in this installation"
            ) from None
        raise EngineUnavailable(
            f"the {target} engine needs the Python package '{exc.name}': "
            "pip install 'siemc[engines]'"
        ) from None


def import_interpreter(module: str) -> ModuleType:
    """Import an interpreter that ships with the tests (``tests.interpreters.*``): available in
    a source checkout, where the repository root is put on ``sys.path`` if needed."""
    root = Path(__file__).resolve().parents[2]
    if (root / "tests" / "interpreters").is_dir() and str(root) not in sys.path:
        sys.path.append(str(root))
    return importlib.import_module(module)
