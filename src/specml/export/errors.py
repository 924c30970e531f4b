"""The error of an export that cannot be done (a user error: said in one line, exit 1)."""

from __future__ import annotations

from specml.errors import SpecmlError


class ExportError(SpecmlError, ValueError):
    """A model that cannot be exported in the format asked for, and why."""
