"""What every ``specml`` command prints: the console, ``error: ...`` with exit 1, warnings.

A user's mistake is a :class:`~specml.errors.SpecmlError` (or a missing file); :func:`user_errors`
turns it into ``error: <message>`` on stderr and exit 1, never a traceback. A spec error prints one
``error FILE:LINE: field.path: message (hint)`` line per issue. rich is imported on first use, so
importing this module (which ``specml --help`` does) stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, TypeVar

import typer

from specml.errors import SpecmlError

F = TypeVar("F", bound=Callable[..., Any])

#: what a command reports as ``error: ...`` (exit 1) instead of a traceback
#: a file-system refusal (a home that is a file, no permission, a full disk) is the user's to fix too
USER_ERRORS: tuple[type[BaseException], ...] = (SpecmlError, OSError)


def console(stderr: bool = False):
    """A rich console on stdout (or stderr): no highlighting, long lines never cut."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def esc(text: object) -> str:
    """``text`` with rich markup escaped."""
    from rich.markup import escape

    return escape(str(text))


def report(err: BaseException | str, hint: str | None = None) -> None:
    """Print a user error on stderr: one line per issue of a spec error, else ``error: <message>``
    (then ``  hint: <hint>`` when ``hint`` is given)."""
    out = console(stderr=True)
    issues = getattr(err, "issues", None) if isinstance(err, SpecmlError) else None
    if issues:
        for issue in issues:
            said = f" [dim]({esc(issue.hint)})[/dim]" if issue.hint else ""
            out.print(f"[red]error[/red] {esc(issue.where())}: [bold]{esc(issue.path)}[/bold]: "
                      f"{esc(issue.message)}{said}")
        return
    if isinstance(err, OSError) and not isinstance(err, SpecmlError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        text = f"{err.strerror}{where}" + (f"\n  hint: {hint}" if hint else "")
        out.print(f"[red]error:[/red] {esc(text)}")
        return
    text = str(err) + (f"\n  hint: {hint}" if hint else "")
    out.print(f"[red]error:[/red] {esc(text)}")


def fail(message: BaseException | str, hint: str | None = None, code: int = 1) -> NoReturn:
    """Report ``message`` (a text or a user error) on stderr and exit with ``code`` (1: a user mistake)."""
    report(message, hint)
    raise typer.Exit(code)


def user_errors(command: F) -> F:
    """Decorate a command: a :data:`USER_ERRORS` exception ends it as ``error: ...`` and exit 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as err:
            report(err)
        raise typer.Exit(1)

    return run  # type: ignore[return-value]


def warn(text: object) -> None:
    """``warning <text>`` on stderr."""
    console(stderr=True).print(f"[yellow]warning[/yellow] {esc(text)}")


def spec_warnings(caught: Iterable[Any]) -> None:
    """Print the spec warnings among recorded ``warnings``, each text once (a file read twice warns twice)."""
    for text in dict.fromkeys(str(w.message) for w in caught if "SpecWarning" in type(w.message).__name__):
        warn(text)
