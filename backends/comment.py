"""Text that goes into a comment or a one-line header of an emitted artifact.

A title, a path or a note ends up after a line-comment marker (``//``, ``#``) or inside an
inline comment. Any character a target's lexer may take as the end of a line would let the
rest of the text run as query code (a title ``"x\\nlet DeviceProcessEvents = ... | where
false;"`` silences a KQL rule). Kusto, YAML and Splunk disagree on what breaks a line (YAML
1.1 also breaks on U+0085, U+2028 and U+2029; Kusto on U+2028/U+2029 too), so every control
and separator character is written as a visible escape instead.
"""

from __future__ import annotations

import unicodedata

# Cc: C0/C1 controls (\t \n \v \f \r U+0085 ...); Zl/Zp: U+2028, U+2029; Cf: bidi overrides
# and other invisible format characters that make a comment read differently than it runs.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cf", "Cs", "Co", "Cn"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def one_line(text: str) -> str:
    """``text`` on one line, with every unsafe character as ``\\n``, ``\\r``, ``\\t`` or
    ``\\uXXXX`` (backslashes doubled so the escape stays unambiguous)."""
    out: list[str] = []
    for ch in text:
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif unicodedata.category(ch) in _UNSAFE_CATEGORIES:
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)
