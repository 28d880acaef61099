"""A small deterministic YAML writer for Sigma rules.

PyYAML's emitter mis-quotes some characters (U+0085, U+2028 and U+2029 in single-quoted
scalars do not survive a round trip), so rule text is written here: plain scalars when they
read back as the same string, single quotes when every character is printable, double quotes
with escapes otherwise.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

_PLAIN = re.compile(r"[A-Za-z0-9_(/\\][A-Za-z0-9_ .,/\\%|()+=@~-]*")
# printable characters YAML keeps verbatim (no line breaks: U+0085, U+2028, U+2029 are breaks)
_PRINTABLE = re.compile(
    r"[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*"
)
_ESC = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _double(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESC:
            out.append(_ESC[ch])
        elif _PRINTABLE.fullmatch(ch):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


# YAML 1.2 readers take these as numbers even where PyYAML (YAML 1.1) keeps a string
_NUMBERISH = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


@functools.lru_cache(maxsize=4096)
def _reads_back(text: str) -> bool:
    if _NUMBERISH.fullmatch(text):
        return False
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def scalar(value: Any) -> str:
    """One YAML scalar on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and not text.endswith(" ") and _reads_back(text):
        return text
    if _PRINTABLE.fullmatch(text):
        return "'" + text.replace("'", "''") + "'"
    return _double(text)


STEP = 4  # the indentation SigmaHQ's rules use


def block(value: Any, indent: int = 0) -> str:
    """A mapping or list in block style, every line indented by ``indent`` spaces."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        if not value:
            return pad + "{}"
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{scalar(k)}:")
                lines.append(block(v, indent + STEP))
            else:
                lines.append(f"{pad}{scalar(k)}: {inline(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                nested = block(item, indent + 2)
                lines.append(pad + "- " + nested[indent + 2 :])
            elif isinstance(item, list) and item:
                lines.append(pad + "-")
                lines.append(block(item, indent + STEP))
            else:
                lines.append(f"{pad}- {inline(item)}")
    else:
        return pad + scalar(value)
    return "\n".join(lines)


def inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    return scalar(value)
