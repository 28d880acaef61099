"""registered_domain() on the targets: what each can use instead of siemc's Public Suffix List.

Elastic: ECS fields filled at ingest (below). The other targets have no suffix list in their
query language and cut labels (:data:`LABEL_CUT`).

ECS defines ``<entity>.registered_domain`` beside the name fields of client, server, source,
destination, url and dns.question (https://www.elastic.co/docs/reference/ecs/ecs-url,
ecs-dns, ecs-source ...). Elasticsearch's ``registered_domain`` ingest processor computes it with
the Public Suffix List (https://www.elastic.co/docs/reference/enrich-processor/registered-domain-processor)
and the Elastic Agent integrations that parse DNS, proxy and network logs run it. Where an
analytic asks for the registered domain of such a name, the Elastic backends read the filled
field instead of cutting labels, which ES|QL and EQL can only do without a suffix list.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from compiler import ir
from compiler.evaluator.values import call

# ECS name field -> the ECS field holding its registered domain.
ECS_REGISTERED_DOMAIN: dict[str, str] = {
    "client.domain": "client.registered_domain",
    "server.domain": "server.registered_domain",
    "source.domain": "source.registered_domain",
    "destination.domain": "destination.registered_domain",
    "url.domain": "url.registered_domain",
    "dns.question.name": "dns.question.registered_domain",
}

# The approximation of every target that keeps the last two labels (``%s``: the target).
LABEL_CUT = (
    "%s has no Public Suffix List function: the registered domain is cut to the last two "
    "labels, which differs from siemc's under multi-label public suffixes (news.bbc.co.uk gives "
    "co.uk, not bbc.co.uk; microsoft.github.io gives github.io) and for a single label or a "
    "public suffix itself (kept, where siemc has no registered domain). Direction: mixed - as a "
    "key (group, join, baseline) it merges the registered domains under one suffix, so a new "
    "one can look seen (subset); as a filter value it matches more names (superset)"
)

REQUIREMENT = (
    "requires {reg} filled at ingest from {src} (Elasticsearch registered_domain processor, "
    "as Elastic Agent integrations do), with the Public Suffix List"
)


def ingest_source(arg: ir.Expr) -> str | None:
    """The ECS name field whose ingest-filled registered domain equals
    ``registered_domain(arg)``, or None. ``lower()`` is looked through: registered_domain()
    lower-cases its argument anyway (``upper()`` is not: ``ß`` upper-cases to ``SS``)."""
    while isinstance(arg, ir.Call) and arg.func == "lower" and len(arg.args) == 1:
        arg = arg.args[0]
    if isinstance(arg, ir.FieldRef) and arg.step is None and arg.name in ECS_REGISTERED_DOMAIN:
        return arg.name
    return None


def _calls(e: ir.Expr) -> Iterator[ir.Call]:
    if isinstance(e, ir.Call):
        yield e
        for a in e.args:
            yield from _calls(a)
    elif isinstance(e, ir.BinOp):
        yield from _calls(e.left)
        yield from _calls(e.right)
    elif isinstance(e, ir.UnaryOp):
        yield from _calls(e.operand)


def requirements(analytic: ir.Analytic) -> list[tuple[str, str]]:
    """(registered_domain field, name field) pairs the analytic's derived fields read."""
    out: dict[tuple[str, str], None] = {}
    for stream in analytic.streams:
        for _, expr in stream.derive:
            for c in _calls(expr):
                if c.func == "registered_domain" and (src := ingest_source(c.args[0])):
                    out[(ECS_REGISTERED_DOMAIN[src], src)] = None
    return list(out)


def ingested(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` as an Elastic ingest pipeline stores them: each ECS registered-domain field
    the event lacks is filled from its name field. The engines of the differential tests load
    documents through this, as the artifacts require of the user's pipeline."""
    out = dict(fields)
    for src, reg in ECS_REGISTERED_DOMAIN.items():
        if out.get(reg) is None and (value := call("registered_domain", [out.get(src)])):
            out[reg] = value
    return out
