"""Target backends. ``get_backend(target)`` returns the backend instance for a target name."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.base import Backend

# target -> (module, class). Module names avoid the names of the target libraries themselves
# (``eql``, ``esql``, ``sigma``): the eql package imports any module named ``eql_*``.
TARGETS: dict[str, tuple[str, str]] = {
    "splunk": ("backends.splunk", "SplunkBackend"),
    "eql": ("backends.elastic_eql", "EqlBackend"),
    "esql": ("backends.elastic_esql", "EsqlBackend"),
    "kql": ("backends.sentinel", "KqlBackend"),
    "sigma": ("backends.sigma", "SigmaBackend"),
}

# Local engines: targets of `siemc compile -t` and `siemc test --engines`, but not SIEMs, so
# not among the TARGETS that `siemc build`, `export` and `fidelity --catalog` iterate.
ENGINE_TARGETS: dict[str, tuple[str, str]] = {
    "duckdb": ("backends.duckdb", "DuckdbBackend"),
}


def get_backend(target: str) -> Backend:
    known = TARGETS | ENGINE_TARGETS
    if target not in known:
        raise ValueError(f"unknown target '{target}'; targets: {', '.join(known)}")
    module, cls = known[target]
    backend: Backend = getattr(importlib.import_module(module), cls)()
    return backend
