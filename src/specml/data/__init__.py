"""The workspace: the user's tables in an embedded DuckDB database (:mod:`specml.data.workspace`).

``Workspace``, ``DataError``, ``TableInfo`` and ``ColumnStats`` are importable from here; they are loaded
on first use so that importing :mod:`specml.data` does not import duckdb (nor torch).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = ("ColumnStats", "DataError", "TableInfo", "Workspace")
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        from specml.data import workspace

        return getattr(workspace, name)
    raise AttributeError(f"module 'specml.data' has no attribute {name!r}")
