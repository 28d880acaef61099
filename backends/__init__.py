"""Target backends. ``get_backend(target)`` returns the backend instance for a target name."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends.base import Backend

# target -> (module, class). Module names avoid the names of the target libraries themselves
# (``eql``, ``esql``, ``sigma``): the eql package imports any module named ``eql_*``.
TARGETS: dict[str, tuple[str, str]] = {
    "splunk": ("backends.splunk_spl", "SplunkBackend"),
    "eql": ("backends.elastic_eql", "EqlBackend"),
    "esql": ("backends.elastic_esql", "EsqlBackend"),
    "kql": ("backends.sentinel", "KqlBackend"),
    "sigma": ("backends.sigma_rules", "SigmaBackend"),
}


def get_backend(target: str) -> Backend:
    if target not in TARGETS:
        raise ValueError(f"unknown target '{target}'; targets: {', '.join(TARGETS)}")
    module, cls = TARGETS[target]
    backend: Backend = getattr(importlib.import_module(module), cls)()
    return backend
