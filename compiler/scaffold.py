"""``siemc new``: analytic skeletons, one per detection shape, whose fixtures pass as written.

Each shape is a commented, working analytic in ``compiler/data/new_<shape>.yml`` (a real
detection with a positive and a negative fixture, so the author edits something that runs
instead of filling in blanks); rendering puts in the id, title and the editor's schema modeline.
``tests/test_scaffold.py`` runs every shape through ``siemc check`` and ``siemc test``.
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

from compiler.surface import ID_RE

SHAPES: dict[str, str] = {
    "match": "every event of one stream is an alert",
    "sequence": "events of several streams in order, same keys, within a time span",
    "aggregate": "sums per key in time windows, with a computed ratio and a threshold",
    "baseline": "alerts that must also be new: not seen in a history stream during a lookback",
    "absence": "an event not followed by another one with the same keys in time",
}

DEFAULT_TITLES: dict[str, str] = {
    "match": "certutil downloads a file",
    "sequence": "Office program starts a script host that connects out",
    "aggregate": "Host uploads far more than it downloads to one destination",
    "baseline": "First run of a program from a user-writable folder on a host",
    "absence": "Linux security agent stops and does not restart within five minutes",
}

SCHEMA_FILE = "analytic.schema.json"
# yaml-language-server reads this comment (anywhere in the file) to pick the JSON Schema
MODELINE = "# yaml-language-server: $schema="
_ID_RX = re.compile(ID_RE)


def default_id(path: Path) -> str | None:
    """The analytic id a file name suggests (its stem), or None when the stem is not an id."""
    return path.stem if _ID_RX.match(path.stem) else None


def find_schema(folder: Path) -> Path | None:
    """The nearest ``analytic.schema.json`` (or ``docs/analytic.schema.json``) in ``folder`` or
    one of its ancestors: where a project keeps the schema ``siemc schema -o`` wrote."""
    folder = Path(os.path.abspath(folder))
    for d in (folder, *folder.parents):
        for candidate in (d / SCHEMA_FILE, d / "docs" / SCHEMA_FILE):
            if candidate.is_file():
                return candidate
    return None


def schema_ref(target: Path, schema: Path) -> str:
    """``schema`` as the modeline of a file at ``target`` refers to it: relative to the file's
    folder, with forward slashes (the language server resolves it like a URL)."""
    folder = Path(os.path.abspath(target)).parent
    return Path(os.path.relpath(os.path.abspath(schema), folder)).as_posix()


def yaml_str(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(text, ensure_ascii=False)


def template(shape: str) -> str:
    return (resources.files("compiler.data") / f"new_{shape}.yml").read_text(encoding="utf-8")


def render(shape: str, analytic_id: str, title: str, schema: str) -> str:
    """The skeleton of ``shape`` with its id, title and schema modeline filled in."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; shapes: {', '.join(SHAPES)}")
    text = template(shape)
    return (
        text.replace("__HEADER__", MODELINE + schema)
        .replace("__ID__", yaml_str(analytic_id))
        .replace("__TITLE__", yaml_str(title))
    )
