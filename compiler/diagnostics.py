"""Diagnostics in the style of rustc/ruff: ``path:line:col: error[code]: message``, the source
line with a caret, and a ``help:`` line where a fix is known."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Every code the loader, lowering and fixture runner can emit. docs/diagnostics.md lists them;
# a test keeps the two in step.
CODES: dict[str, str] = {
    "E001": "YAML syntax error",
    "E002": "duplicate key",
    "E003": "file cannot be read",
    "E004": "a referenced file outside its root, or not a regular file",
    "E005": "a file over its size limit",
    "E006": "YAML nested too deeply",
    "E007": "a NUL or lone surrogate character in a string",
    "E008": "too many items in one list",
    "E009": "too many YAML nodes (aliases expanded)",
    "E100": "unknown key",
    "E101": "missing required key",
    "E102": "wrong type or invalid value",
    "E103": "value not among the allowed choices",
    "E104": "exactly one of several keys is required",
    "E110": "invalid duration",
    "E111": "invalid size or number",
    "E120": "unknown stream",
    "E121": "unknown lookup or lookup column",
    "E122": "unknown sequence step alias",
    "E123": "invalid filter modifier",
    "E124": "invalid regular expression",
    "E125": "invalid CIDR network",
    "E126": "invalid filter value",
    "E127": "filter nested too deeply",
    "E128": "invalid name (field, lookup column, stream, lookup, measure or step alias)",
    "E130": "expression syntax error",
    "E131": "unknown function or wrong number of arguments",
    "E132": "unknown measure",
    "E140": "impossible window",
    "E141": "stream dependency cycle",
    "E142": "invalid baseline",
    "E150": "duplicate analytic id",
    "E160": "invalid fixture",
    "E170": "invalid ATT&CK id",
    "E715": "'count' on a step that is not a sequence step",
    "E716": "a counted sequence step's count out of range (2 to 1000 events)",
    "E200": "the target cannot express this construct",
    "E201": "this backend does not implement the construct yet",
    "E202": "an approximation that was not allowed",
    "E210": "a field the profile cannot map",
    "E211": "no data source in the profile for a logsource or for the fields needed",
    "W300": "an allowed approximation (reported)",
    "E400": "a technique or tactic missing from the bundled ATT&CK table (export)",
    "E401": "an export schedule (--every) that would miss or repeat window decisions",
    "W400": "a deprecated or revoked ATT&CK technique (export)",
    "W401": "an ATT&CK technique that belongs to none of the tactics the analytic names (export)",
    "E500": "a Sigma construct the language cannot say (import sigma)",
    "E501": "not a valid Sigma rule (import sigma)",
    "E600": "siemc new: the file to write exists (never overwritten)",
    "E601": "siemc new --from-events: sample events that cannot be read or tell nothing apart",
    "E620": "a fixture's alerts differ from its expectations (test)",
    "E621": "a fixture whose data cannot be read (test)",
    "E622": "an engine's alerts differ from the evaluator's beyond what the pair declares (test)",
    "E623": "an engine raised on a fixture (test)",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    path: str
    line: int
    col: int
    length: int = 1
    help: str | None = None
    severity: Literal["error", "warning"] = "error"

    def headline(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.severity}[{self.code}]: {self.message}"

    def render(self, source: str | None = None) -> str:
        out = [self.headline()]
        lines = source.splitlines() if source is not None else []
        if 1 <= self.line <= len(lines):
            text = lines[self.line - 1]
            gutter = str(self.line)
            pad = " " * len(gutter)
            caret = " " * (self.col - 1) + "^" * max(1, self.length)
            out += [f"{pad} |", f"{gutter} | {text}", f"{pad} | {caret}"]
        if self.help:
            out.append(f"help: {self.help}")
        return "\n".join(out)


class DiagnosticError(Exception):
    """Raised with every problem found in one unit of work (a file, a fixture, ...)."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str] | None = None):
        super().__init__("\n".join(d.headline() for d in diagnostics))
        self.diagnostics = diagnostics
        self.sources = sources or {}

    def render(self) -> str:
        return "\n\n".join(d.render(self.sources.get(d.path)) for d in self.diagnostics)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.path, d.line, d.col, d.code)
