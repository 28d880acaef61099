"""Pydantic validation errors -> positioned diagnostics."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from compiler import surface
from compiler.diagnostics import Diagnostic, sort_key
from compiler.source import Path, SourceDoc


def _vocabulary() -> list[str]:
    words: set[str] = set()
    for obj in vars(surface).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            for name, f in obj.model_fields.items():
                words.add(f.alias or name)
    return sorted(words)


_VOCAB = _vocabulary()


def _data_path(loc: tuple[int | str, ...], data: Any) -> tuple[Path, bool]:
    """Walk pydantic's ``loc`` over the data, skipping union tags and member names."""
    path: list[str | int] = []
    cur = data
    is_key = False
    for part in loc:
        if part == "[key]":
            is_key = True
            continue
        in_dict = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        # Anything else is a discriminator tag or union member name with no place in the data.
        if in_dict or in_list:
            path.append(part)
            cur = cur[part]
    return tuple(path), is_key


_CODES = {
    "extra_forbidden": "E100",
    "missing": "E101",
    "duration": "E110",
    "attack_id": "E170",
    "literal_error": "E103",
    "enum": "E103",
    "one_of": "E104",
    "union_tag_invalid": "E104",
    "union_tag_not_found": "E104",
    "fixture": "E160",
    "identifier": "E128",
}


def pydantic_diagnostics(exc: ValidationError, doc: SourceDoc) -> list[Diagnostic]:
    out: dict[tuple[str, int, int, str], Diagnostic] = {}
    errors = exc.errors(include_url=False)
    for e in errors:
        loc = tuple(e["loc"])
        path, is_key = _data_path(loc, doc.data)
        etype = e["type"]
        code = _CODES.get(etype, "E102")
        msg = str(e["msg"])
        help_: str | None = None
        key = is_key
        if etype == "extra_forbidden":
            name = str(loc[-1])
            msg = f"unknown key '{name}'"
            close = difflib.get_close_matches(name, [w for w in _VOCAB if w != name], n=1)
            help_ = f"did you mean '{close[0]}'?" if close else "remove it"
            key = True
        elif etype == "missing":
            name = str(loc[-1])
            msg = f"missing required key '{name}'"
            key = bool(path)
        elif etype == "literal_error":
            expected = e.get("ctx", {}).get("expected", "")
            msg = f"invalid value {e.get('input')!r}: expected {expected}"
        elif etype in (
            "string_type",
            "int_type",
            "float_type",
            "bool_type",
            "list_type",
            "dict_type",
            "model_type",
            "int_parsing",
            "float_parsing",
        ):
            msg = f"{msg} (got {type(e.get('input')).__name__} {e.get('input')!r})"
            if len(msg) > 160:
                msg = msg[:157] + "..."
        elif etype == "string_pattern_mismatch":
            msg = f"invalid value {e.get('input')!r}: {msg}"
        d = doc.diag(code, msg, path, key=key, help=help_)
        out.setdefault((d.path, d.line, d.col, d.message), d)
    return sorted(out.values(), key=sort_key)
