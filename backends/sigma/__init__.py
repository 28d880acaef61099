"""The Sigma target: Sigma rules and Sigma correlation rules (specification v2.1.0), validated
with pySigma. Layers, each importing only those above it: ``writer`` (YAML text), ``fields``
(logsources, field names, escaping), ``tree`` (selections and conditions), ``support`` (what
Sigma can say), ``inline`` (derived fields, enrichments and lookups folded into filters),
``filters`` (predicates -> selections), ``streams`` (stream chains, sound relaxations),
``checks`` (refusals), ``correlation`` (correlation rules), ``backend`` (:class:`SigmaBackend`).
Inside the package ``import sigma`` still reaches pySigma: imports are absolute."""

from backends.sigma.backend import SigmaBackend

__all__ = ["SigmaBackend"]
