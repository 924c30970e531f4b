"""The error a classical run raises for a user's mistake (caught by the CLI: message, exit 1)."""

from __future__ import annotations

from specml.data.errors import DataError


class ClassicalError(DataError):
    """A classical training or scoring run that cannot go on: the message says why and what to change."""
