"""Microsoft Sentinel KQL target (``kql``; profiles ``mde`` and ``asim``).

Modules by concern: :mod:`.backend` (the backend: streams, sources, joins, enrichments),
:mod:`.detect` (detections and baselines), :mod:`.expr` (predicates and expressions),
:mod:`.text` (escaping and literals).
"""

from backends.sentinel.backend import KqlBackend

__all__ = ["KqlBackend"]
