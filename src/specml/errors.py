"""specml's error type: every mistake a user can make derives from :class:`SpecmlError`.

The CLI prints a SpecmlError as ``error: ...`` and exits 1, never with a traceback. This module imports
nothing heavy, so an error path never imports torch.
"""

from __future__ import annotations


class SpecmlError(Exception):
    """A user-facing error; ``hint`` says how to fix it."""

    def __init__(self, message: str = "", hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class TrainingError(SpecmlError, RuntimeError):
    """A run that cannot go on: a bad monitor name, a diverged loss, a device that is not there."""


class DataError(SpecmlError, ValueError):
    """A table, column or file that cannot be used as asked."""
