"""What a test does when data or a tool outside the repository is missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def skip_unless_ci(msg: str) -> NoReturn:
    """Skip with ``msg`` on a developer's machine; fail under ``CI=true``, where everything the
    suite reads must be there (a green CI must not hide a missing install step)."""
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)
