"""What an importer raises for a construct it cannot import: the construct, why, and where."""

from __future__ import annotations

from typing import Any

# A path of keys and list indexes into one YAML document: ("detection", "selection", "Image").
DocPath = tuple[Any, ...]


class Refusal(Exception):
    """A rule (or one construct of it) that cannot become an analytic. ``construct`` is a short
    stable name (the per-reason counts of bench/import_sigma.py group by it); ``where`` is the
    place in the rule document, ``key`` whether it names the key rather than its value."""

    def __init__(self, construct: str, message: str, where: DocPath = (), *, key: bool = True):
        super().__init__(message)
        self.construct = construct
        self.message = message
        self.where = where
        self.key = key
        # the rule document the construct is in, when not the one being imported (a rule
        # a correlation reads)
        self.doc: Any = None
