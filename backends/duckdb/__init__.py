"""DuckDB: analytics as DuckDB SQL, run locally (``siemc test --engines duckdb``, ``siemc run``).

Not one of the SIEM targets ``siemc build`` and ``export`` iterate: it is registered in
``backends.ENGINE_TARGETS``. docs/duckdb.md says what it runs and what it refuses.
"""

from backends.duckdb.backend import DuckdbBackend, columns

__all__ = ["DuckdbBackend", "columns"]
