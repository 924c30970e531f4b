"""CLI commands (placeholder: filled in by the work on its issue)."""

from __future__ import annotations


def register(app) -> None:
    """Add this module's commands to the `specml` app."""
