"""The KQL oracle: Microsoft's Kusto.Language analyzer (npm ``@kusto/language-service-next``).

``validate(queries)`` returns, per query, the error diagnostics of
``KustoCode.ParseAndAnalyze(query, globals).GetDiagnostics()``, where ``globals`` declares the MDE
tables, the ASIM parser functions and Sentinel's ``_GetWatchlist`` (``kusto/schemas.json``). One
Node process serves the whole test session (the library loads in ~0.25 s, then ~7 ms a query).

Set up once with ``npm ci --prefix tests/oracles/kusto``. Without it, ``require_oracle()`` skips
the calling test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "kusto"
SETUP = "npm ci --prefix tests/oracles/kusto"


class OracleUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class KqlError:
    code: str
    message: str
    start: int
    length: int

    def show(self, query: str) -> str:
        snippet = query[max(0, self.start - 30) : self.start + self.length + 30]
        return f"{self.code} at {self.start}: {self.message}\n    ...{snippet}..."


def missing_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (Node 20 runs the Kusto.Language validator)"
    if not (HERE / "node_modules" / "@kusto" / "language-service-next").is_dir():
        return f"the Kusto validator is not installed: run `{SETUP}` in the repository root"
    return None


class _Server:
    def __init__(self) -> None:
        reason = missing_reason()
        if reason:
            raise OracleUnavailable(reason)
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["node", str(HERE / "validate.js"), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        atexit.register(self.close)

    def ask(self, request: dict[str, Any]) -> Any:
        with self.lock:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise OracleUnavailable("the Kusto validator process exited")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


_server: _Server | None = None


def _get() -> _Server:
    global _server
    if _server is None:
        _server = _Server()
    return _server


def validate(queries: list[str], watchlist_columns: tuple[str, ...] = ()) -> list[list[KqlError]]:
    """Errors (severity Error) of each query; an empty list means the query is valid KQL that
    resolves against the declared Sentinel schemas. ``watchlist_columns`` adds CSV columns to
    the ``_GetWatchlist`` result beyond those of the bundled lookups and of the Public Suffix
    List watchlist registered_domain() reads (backends/sentinel/psl.py), and the CSV row number
    of a lookup's watchlist (backends/sentinel/streams.py)."""
    from backends.sentinel.psl import lookup
    from backends.sentinel.streams import ROW

    columns = list(dict.fromkeys((*watchlist_columns, ROW, *lookup().columns)))
    answer = _get().ask({"queries": queries, "watchlist_columns": columns})
    return [
        [
            KqlError(d["code"], d["message"], d["start"], d["length"])
            for d in diags
            if d["severity"] == "Error"
        ]
        for diags in answer
    ]


def require_oracle() -> None:
    """Skip the calling test when the validator is not installed; fail under CI=true."""
    import pytest

    reason = missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
