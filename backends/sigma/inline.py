"""Derived fields, enrichments and lookups inlined into the filters of a Sigma rule.

A Sigma rule matches fields as logged and has no lookup tables: :mod:`backends.inline` rewrites
each filter into a plain predicate over logged fields, which
:class:`backends.sigma.filters.FilterTranslator` writes. Two things are Sigma's own: a lookup
over the row limit with one column on a logged field stays a ``%placeholder%`` the
deployment's pySigma pipeline binds, and an existence test on a Sigma field that several
siemc fields share (a path and its last part) is declared.
"""

from __future__ import annotations

from backends.base import Context
from backends.inline import FALSE, TRUE, Env, Inliner, Leaf, Limits
from backends.sigma.fields import SourceMap
from compiler import ir

__all__ = ["FALSE", "LOOKUP_ROW_LIMIT", "TRUE", "Env", "SigmaInliner"]

# More rows than this stay a `%placeholder%` (one column) or are refused (several columns): a
# rule listing thousands of values is no rule an engineer would deploy.
LOOKUP_ROW_LIMIT = 200
LIMITS = Limits(
    "Sigma",
    LOOKUP_ROW_LIMIT,
    "compile to esql (EVAL), kql (extend) or splunk (eval), which compute fields",
    "compile to splunk (lookup), kql (watchlist) or esql (LOOKUP JOIN)",
)


class SigmaInliner(Inliner):
    """The inliner for one Sigma rule's stream (``src``: its logsource's field map)."""

    def __init__(self, ctx: Context, env: Env, src: SourceMap | None = None) -> None:
        super().__init__(ctx, env, LIMITS)
        self.src = src

    def big_lookup(self, p: ir.InLookup, rows: int) -> ir.Predicate:
        fields = [f for _, f in p.match]
        if len(fields) == 1 and not self.env.computed(fields[0]):
            return p  # a placeholder the deployment's pySigma pipeline binds
        return super().big_lookup(p, rows)

    def stored(self, name: str, p: Leaf, neg: bool) -> None:
        if isinstance(p, ir.Exists):
            self.shared_exists(name, p, neg, p.present)
        elif isinstance(p, ir.Eq) and None in p.values:
            # `Field: null` is the missing test of the shared field
            self.shared_exists(name, p, neg, False)

    def shared_exists(self, name: str, p: Leaf, neg: bool, present: bool) -> None:
        others = self.src.shared(name) if self.src is not None else []
        if not others:
            return
        assert self.src is not None
        sigma = self.src.fields[name]
        sigma = sigma if isinstance(sigma, str) else sigma["field"]
        self.approximate(
            f"existence of {name}",
            f"{name} and {', '.join(others)} are both kept in {sigma} (a path and its last "
            f"part), so {sigma}|exists also holds on an event that logs only "
            f"{', '.join(others)}",
            p.span,
            "superset" if present else "subset",
            neg,
        )
