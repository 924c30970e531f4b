"""``specml report``: a model card as one self-contained HTML page (:mod:`specml.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from specml.cli.options import WorkspaceOption as Workspace
from specml.cli.output import console, user_errors, warn


@user_errors
def report(
    model: Annotated[str, typer.Option("--model", help="Name of a trained model.")],
    table: Annotated[str | None, typer.Option("--table", "-t", help="Evaluate the model on this table first (its "
                                                                    "metrics and figures go on the page).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the page here (default: "
                                                                       "models/<name>/report.html).")] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing --output file.")] = False,
    workspace: Workspace = None,
) -> None:
    """Write a model card (task, data, specs, training curves, evaluations, lineage, environment) as one HTML
    page and print its path."""
    import warnings

    from specml import report as card
    from specml.artifact import ModelArtifact

    ModelArtifact.for_name(model).read_metadata()  # a missing model is an error before any work
    card.check_output(output, replace)
    if table is not None:
        from specml import api, preflight
        from specml.evaluation import seen_warning

        preflight.check_scoring(model, table, workspace=workspace)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            evaluated = api.evaluate(model, table, workspace=workspace)
        for w in caught:
            warn(w.message)
        said = seen_warning(model, table, evaluated.get("seen"))
        if said:
            warn(said)
    path = card.write(model, output, replace=replace)
    console().print(f"model report: {path}")
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def register(app) -> None:
    """Add ``specml report`` to the app."""
    app.command("report")(report)
