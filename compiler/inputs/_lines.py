"""JSON Lines decoded with orjson, record for record equal to the stdlib reading it replaces.

The reference reading decodes the file as UTF-8 text (``utf-8-sig``, ``errors="replace"``,
universal newlines) and gives each stripped, non-blank line to ``json.loads``
(``_common._line``). Reading bytes and decoding with orjson is faster (1.7x on bench/run.py's
ECS lines), and gives the same value for every line orjson accepts, with one exception found by
testing: orjson turns an integer literal beyond 64 bits into a float, where the stdlib keeps the
exact integer. Every line with such a literal possible (a run of 19 digits anywhere) and every
line orjson refuses (NaN, Infinity, lone surrogates, invalid UTF-8, blank or text lines, syntax
errors) goes through the reference code, and so does every byte line holding a lone carriage
return (several text lines), so values, line numbers and error messages are the same as before.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import orjson

# Digits -> '0', everything else -> '.': a 19-digit run is then a substring search (C speed);
# a regex over every line costs more than the decoding itself.
_DIGIT_MASK = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2E for b in range(256))
_LONG_DIGITS = b"0" * 19
_BOM = b"\xef\xbb\xbf"

SlowLine = Callable[[int, str], Iterator[tuple[int, Any]]]
Sieve = Callable[[bytes], bool]

# No log format nests objects anywhere near this deep (ECS: about 6); the limit keeps a hostile
# document from exhausting the stack or building field names of quadratic length.
MAX_NESTING = 64


class Checked:
    """A record of :func:`iter_json_lines` given a sieve: a JSON object whose ``@timestamp`` is
    text and whose objects nest at most :data:`MAX_NESTING` deep (its line has no more ``{``
    than that), so reading its time and flattening it cannot fail. ``wanted`` is False when
    the sieve rejected the line: only its time is to be read then, for its other values are
    orjson's, which may differ from the reference reading (integers beyond 64 bits)."""

    __slots__ = ("doc", "wanted")

    def __init__(self, doc: dict[str, Any], wanted: bool) -> None:
        self.doc = doc
        self.wanted = wanted


def text_lines(raw: bytes) -> list[str]:
    """The text lines the reference reader sees in one ``\\n``-terminated byte line: it decodes
    with ``errors="replace"`` and also ends lines at a lone ``\\r``."""
    text = raw.decode("utf-8", "replace")
    if "\r" not in text:
        return [text]
    return list(io.StringIO(text, newline=""))


def iter_json_lines(
    fh: Any, lineno: int, allow_text: bool, slow: SlowLine, sieve: Sieve | None = None
) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for the rest of the binary stream ``fh``, whose next line is number
    ``lineno + 1``. ``slow(line, text)`` is the reference handling of one text line.

    ``sieve(raw)``: False for a line whose record cannot be wanted. With a sieve, a record
    that qualifies comes as :class:`Checked`, any other as without one."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    mask, long_digits = _DIGIT_MASK, _LONG_DIGITS
    n = lineno
    for raw in fh:
        cr = raw.find(b"\r")
        if cr != -1 and cr != len(raw) - 2:  # not just a CRLF line end
            for text in text_lines(raw):
                n += 1
                yield from slow(n, text)
            continue
        n += 1
        try:
            value = loads(raw)
        except decode_error:
            yield from slow(n, raw.decode("utf-8", "replace"))
            continue
        if (
            sieve is not None
            and type(value) is dict
            and type(value.get("@timestamp")) is str
            and raw.count(b"{") <= MAX_NESTING  # each level of nesting opens with one
        ):
            if not sieve(raw):
                yield n, Checked(value, False)
                continue
            if long_digits not in raw.translate(mask):
                yield n, Checked(value, True)
                continue
        if (allow_text and type(value) is not dict) or long_digits in raw.translate(mask):
            yield from slow(n, raw.decode("utf-8", "replace"))
            continue
        yield n, value


def strip_bom(raw: bytes) -> bytes:
    return raw[3:] if raw.startswith(_BOM) else raw
