"""Jinja2 envelopes of the exported files (templates in compiler/export/templates)."""

from __future__ import annotations

from collections.abc import Sequence

import jinja2

from compiler.export.common import Package

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("compiler.export", "templates"),
    autoescape=False,  # .conf, YAML and Markdown: escaping is done per format in Python
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)


def conf(purpose: str, stanzas: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    """A Splunk .conf file: ``[stanza]`` then ``key = value`` lines."""
    return ENV.get_template("stanzas.conf.j2").render(purpose=purpose, stanzas=stanzas)


def readme(pkg: Package, title: str, intro: str, exported: Sequence[str]) -> str:
    return ENV.get_template("README.md.j2").render(
        title=title,
        vendor=pkg.vendor,
        intro=intro,
        exported=exported,
        skipped=pkg.skipped,
        notes=pkg.notes,
    )
