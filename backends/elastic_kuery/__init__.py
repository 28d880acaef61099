"""Stream filters as the query of a native Elastic detection rule (``threshold``, ``new_terms``):
Kibana's query language (KQL, ``language: kuery``) or, where KQL cannot say a predicate exactly,
Lucene query syntax (``language: lucene``).

How Kibana runs the query (Kibana's kbn-es-query ``kuery`` functions, and the detection engine's
``getQueryFilter``, which builds it without ``caseInsensitive`` and with ``dateFormatTZ: Zulu``):

* ``field: "value"`` is a ``term`` query on a keyword field: exact and **case-sensitive**;
  quoted, ``*`` is a literal. ``field: va*ue`` (unquoted, ``*``) is a ``wildcard`` query, also
  case-sensitive. ``field: *`` is an ``exists`` query. ``field >= 3`` is a ``range`` query.
  ``not`` is ``bool.must_not``: it holds on a document without the field, as siemc's ``not``
  does (docs/semantics.md, *Missing fields*). A multi-valued field matches when one of its values
  does, and ``not`` negates that, as in siemc.
* Lucene (``query_string``) adds regular expressions (``field:/[tT][cC][pP]/``, Lucene RegExp
  syntax, matched against each whole term), which spell siemc's case-insensitive equality and
  substrings on keyword fields letter by letter. Exact on text without the letters whose case
  mappings differ (docs/semantics.md, *Case and non-ASCII letters*), as every other target.

Field types come from the ``ecs`` profile (``types``; unlisted fields are keyword, as ECS maps
most fields). A predicate neither language says exactly raises :class:`Declined` with the
reason, and the export keeps its ES|QL or EQL rule: regular expressions (siemc's are Python
``re.search``), lookups, case-insensitive or substring tests on fields that are not keyword,
numeric-looking values on keyword fields (siemc compares them as numbers), booleans on fields
that are not boolean.
"""

from backends.elastic_kuery.lower import Declined, lower_predicate
from backends.elastic_kuery.nodes import Node
from backends.elastic_kuery.render import Query, render

__all__ = ["Declined", "Node", "Query", "lower_predicate", "render"]
