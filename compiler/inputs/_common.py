"""Helpers shared by the input profiles: reading JSON records with line numbers, flattening,
and small value coercions."""

from __future__ import annotations

import io
import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# MAX_NESTING is re-exported: it was defined here before
from compiler.inputs._lines import MAX_NESTING as MAX_NESTING
from compiler.inputs._lines import Checked, Sieve, iter_json_lines, strip_bom, text_lines
from compiler.safe_files import open_bounded
from compiler.timeutil import format_timestamp, parse_timestamp

Record = dict[str, Any]
Admits = Callable[[Any], bool]  # an entry condition on the fields (compiler.evaluator)


@dataclass(frozen=True)
class Reading:
    """What an evaluation tells the ECS reader about the records it wants, with its entry
    condition (``admits``): ``sieve``, a test of a line's bytes that is False only when
    ``admits`` cannot hold on its record (compiler.evaluator.sieve; None: no test); ``fields``,
    every field name the evaluation may read (compiler.evaluator.reads; None: all of them)."""

    sieve: Sieve | None = None
    fields: frozenset[str] | None = None


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted keys; lists stay lists; already-dotted keys stay as they
    are (``{"a": {"b.c": 1}}`` -> ``{"a.b.c": 1}``). Empty mappings vanish. ValueError for
    mappings nested deeper than :data:`MAX_NESTING`."""
    out: dict[str, Any] = {}
    _flatten_into(out, doc, prefix, 1)
    return out


# Values decoded from JSON are one of these or a dict; only anything else (an inline fixture's
# mapping type) needs the isinstance(Mapping) check, which costs more than the rest of the loop.
_LEAVES = frozenset({str, int, float, bool, list, type(None)})


def _flatten_into(out: dict[str, Any], doc: Mapping[str, Any], prefix: str, depth: int) -> None:
    if depth > MAX_NESTING:
        raise ValueError(f"objects nested more than {MAX_NESTING} levels deep")
    leaves = _LEAVES
    for key, value in doc.items():
        kind = type(value)
        if kind is dict or (kind not in leaves and isinstance(value, Mapping)):
            inner = f"{prefix}{key}."
            if depth == MAX_NESTING:
                _flatten_into(out, value, inner, depth + 1)  # raises
            # One level inline: ECS objects are mostly one level of leaves (a call per
            # object costs more than its loop).
            for key2, value2 in value.items():
                kind = type(value2)
                if kind is dict or (kind not in leaves and isinstance(value2, Mapping)):
                    _flatten_into(out, value2, f"{inner}{key2}.", depth + 2)
                else:
                    out[f"{inner}{key2}"] = value2
        else:
            out[f"{prefix}{key}"] = value


def fail(path: Path, line: int, message: str) -> ValueError:
    return ValueError(f"{path}:{line}: {message}")


def open_text(path: Path, limit: int | None = None) -> Any:
    """``path`` as text; with ``limit``, a regular file never read past ``limit`` bytes
    (compiler.safe_files.open_bounded: fixture inputs from untrusted analytics)."""
    # utf-8-sig: exports from Windows tools often start with a BOM
    if limit is None:
        return path.open("r", encoding="utf-8-sig", errors="replace", newline="")
    return io.TextIOWrapper(
        open_bounded(path, limit), encoding="utf-8-sig", errors="replace", newline=""
    )


def open_binary(path: Path, limit: int | None = None) -> Any:
    """``path`` as bytes; with ``limit``, never read past ``limit`` bytes (as open_text)."""
    return path.open("rb") if limit is None else open_bounded(path, limit)


def iter_json(
    path: Path, allow_text: bool = False, limit: int | None = None, sieve: Sieve | None = None
) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for every record of a JSON Lines file or of a file holding one JSON
    array. Blank lines are skipped. Decoding errors name ``path:line``. With ``allow_text``,
    a line that does not start with ``{`` is yielded as a string (raw syslog, audit.log).

    The file is read as UTF-8 (a leading BOM dropped, undecodable bytes replaced) with universal
    line ends; JSON Lines go through orjson (compiler.inputs._lines), each line it cannot decode
    exactly as the stdlib would through :func:`_line`."""

    def slow(n: int, text: str) -> Iterator[tuple[int, Any]]:
        return _line(path, n, text, allow_text)

    with open_binary(path, limit) as fh:
        lineno = 0
        for i, raw in enumerate(fh):
            lines = text_lines(strip_bom(raw) if i == 0 else raw)
            for k, text in enumerate(lines):
                lineno += 1
                if not text.strip():
                    continue
                if text.strip().startswith("["):
                    # Padding with newlines keeps line numbers right in error messages
                    rest = "".join(lines[k + 1 :]) + fh.read().decode("utf-8", "replace")
                    yield from _iter_array(path, "\n" * (lineno - 1) + text + rest)
                    return
                for text in lines[k:]:
                    yield from slow(lineno, text)
                    lineno += 1
                yield from iter_json_lines(fh, lineno - 1, allow_text, slow, sieve)
                return


def _line(path: Path, n: int, line: str, allow_text: bool) -> Iterator[tuple[int, Any]]:
    """One text line of a JSON Lines file, read with the stdlib (the reference reading)."""
    text = line.strip()
    if not text:
        return
    if allow_text and not text.startswith("{"):
        yield n, text
        return
    try:
        yield n, json.loads(line)
    except json.JSONDecodeError as exc:
        raise fail(path, n, f"invalid JSON: {exc.msg} (column {exc.colno})") from exc
    except RecursionError as exc:
        raise fail(path, n, _TOO_DEEP) from exc


_TOO_DEEP = "invalid JSON: nested too deeply for the decoder (about 1,000 levels)"


def _iter_array(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1

    def skip(p: int) -> int:
        while p < len(text) and text[p] in " \t\r\n":
            p += 1
        return p

    def line_of(p: int) -> int:
        return text.count("\n", 0, p) + 1

    pos = skip(pos)
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise fail(path, exc.lineno, f"invalid JSON: {exc.msg}") from exc
            except RecursionError as exc:
                raise fail(path, line_of(pos), _TOO_DEEP) from exc
            yield line_of(pos), value
            pos = skip(end)
            if pos < len(text) and text[pos] == ",":
                pos = skip(pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            raise fail(path, line_of(pos), "invalid JSON array: expected ',' or ']'")
    if skip(pos) != len(text):
        raise fail(path, line_of(skip(pos)), "unexpected data after the JSON array")


def iter_objects(
    path: Path, limit: int | None = None, sieve: Sieve | None = None
) -> Iterator[tuple[int, Any]]:
    """``(line, object)`` for the records of :func:`iter_json`, each a dict, or with a
    ``sieve`` a :class:`Checked` one (compiler.inputs._lines)."""
    for lineno, value in iter_json(path, limit=limit, sieve=sieve):
        if type(value) is not Checked and not isinstance(value, dict):
            raise fail(path, lineno, f"expected a JSON object, got {type(value).__name__}")
        yield lineno, value


def timestamp(value: object) -> str:
    return format_timestamp(parse_timestamp(value))


def to_int(value: Any) -> int | None:
    """An int for ints and integral numeric strings; None for '-', '' and other text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def clean_ip(value: Any) -> str | None:
    """An IP address as text, IPv4-mapped IPv6 (``::ffff:1.2.3.4``, as Sysmon writes) reduced
    to IPv4 so that 5-tuples compare equal across sources; None when not an address."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.lower().startswith("::ffff:") and "." in text:
        text = text[7:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def put(doc: Record, key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is missing: None, '' or Sysmon's '-' placeholder."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "-")):
        return
    doc[key] = value


class IdDeduper:
    """Makes ``event.id`` unique within one file: the second ``X`` becomes ``X#2``."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, value: str) -> str:
        n = self._seen.get(value, 0) + 1
        self._seen[value] = n
        return value if n == 1 else f"{value}#{n}"
