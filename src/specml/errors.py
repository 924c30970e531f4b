"""The one parent of every error a user can act on (no torch, no third-party import).

Every user-facing error class derives from :class:`SpecmlError` (keeping its other bases, so
``except ValueError`` still catches a :class:`~specml.data.errors.DataError`). The CLI turns any of
them into ``error: <message>`` and exit 1 (:func:`specml.cli.output.user_errors`), never a traceback.
"""

from __future__ import annotations


class SpecmlError(Exception):
    """A mistake in what the user asked for: ``message`` says what, ``hint`` (optional) what to do.

    ``str(err)`` is the message, then ``"\\n  hint: <hint>"`` when a hint was given here.
    """

    hint: str | None = None

    def __init__(self, message: str = "", hint: str | None = None) -> None:
        super().__init__(*((message,) if hint is None else (message, hint)))
        self.hint = hint

    def __str__(self) -> str:
        if len(self.args) == 2 and isinstance(self.args[1], str):
            return f"{self.args[0]}\n  hint: {self.args[1]}"
        return super().__str__()
