"""``specml data ...`` and ``specml sql``: the workspace from the command line (filled in by the workspace work)."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Tables in the workspace: load, list, describe, split.", no_args_is_help=True)


def sql(query: str = typer.Argument(..., help="A SQL query run in the workspace.")) -> None:
    """Run SQL in the workspace and show the result."""
    raise typer.Exit(2)
