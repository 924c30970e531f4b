"""The workspace's user error, importable without duckdb (re-exported by :mod:`specml.data.workspace`)."""

from __future__ import annotations

from specml.errors import SpecmlError


class DataError(SpecmlError, ValueError):
    """A mistake in what the user asked of the workspace: the message says what and where."""
