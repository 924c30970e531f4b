"""Options shared by several ``specml`` commands."""

from __future__ import annotations

from typing import Annotated

import typer

WorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        envvar="SPECML_WORKSPACE",
        show_default=False,
        help="The workspace database file (or :memory:). Default: <SPECML_HOME or ~/.specml>/workspace.duckdb.",
    ),
]
