"""Splunk SPL target: raw searches over a field profile (``cim``: CIM names; ``sysmon``: the
Sysmon add-ons' raw fields), base searches as macros (ESCU convention).

Modules by concern: :mod:`backend` (detections, baselines), :mod:`streams` (base searches,
stream pipelines, joins), :mod:`expr` (predicate and expression text), :mod:`macros` (base
search and filter macros and their definitions).
"""

from backends.splunk.backend import SplunkBackend

__all__ = ["SplunkBackend"]
