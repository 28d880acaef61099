"""The Elasticsearch EQL target: ``EqlBackend`` (backend.py) and its parts by concern: the
support table (support.py), filters as EQL conditions (predicates.py), literal text
(text.py), baselines dropped as supersets (relaxation.py) and sequences keyed on the process
identity (process.py).

No module here is named ``eql_*``: the ``eql`` package imports such modules as plugins.
"""

from backends.elastic_eql.backend import EqlBackend

__all__ = ["EqlBackend"]
