"""``specml train-estimator`` and ``specml leaderboard``: classical models through the same verbs.

Nothing here imports scikit-learn, XGBoost or torch at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from specml.cli.options import WorkspaceOption as Workspace
from specml.cli.output import console, esc, user_errors


def run_train_estimator(estimator_spec: Path, table: str, name: str, cv: int | None = None,
                        workspace: str | None = None) -> None:
    """Train a classical model and print its report. The spec's kind, the table and its columns are
    checked first, before scikit-learn (or torch) is imported."""
    from specml.preflight import check_estimator_training

    check_estimator_training(estimator_spec, table=table, workspace=workspace)
    from specml.classical.train import train_estimator

    train_estimator(estimator_spec, table=table, name=name, workspace=workspace, cv=cv)


@user_errors
def train_estimator_command(
    estimator_spec: Annotated[Path, typer.Option("--estimator-spec", "-e", help="Estimator spec (YAML).")],
    table: Annotated[str, typer.Option("--table", "-t", help="Workspace table to train on.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the trained model (models/<name>/).")],
    cv: Annotated[int | None, typer.Option("--cv", help="Cross-validate with K folds first (0: off); "
                                                         "overrides the spec.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Train again under a taken name (the old model is "
                                                            "kept under models/.replaced/).")] = False,
    workspace: Workspace = None,
) -> None:
    """Train a classical model (scikit-learn, XGBoost, LightGBM, CatBoost) from an estimator spec."""
    from specml.preflight import check_estimator_training

    check_estimator_training(estimator_spec, table=table, workspace=workspace)
    from specml.cli.run import claim_name

    claim_name(name, replace=replace, resume=False)
    run_train_estimator(estimator_spec, table, name, cv, workspace)


@user_errors
def leaderboard_command(
    table: Annotated[str, typer.Option("--table", "-t", help="Table to evaluate every model on.")],
    models: Annotated[str | None, typer.Option("--models", help="Comma-separated model names (default: all).")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Rank by this metric (default: auc / accuracy "
                                                                "/ rmse by task).")] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Evaluate every model now (default: read the stored "
                                                            "evaluations that are still current).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Compare trained models (neural and classical) on one table, with the trivial baseline: metric, fit
    time, predict time, size."""
    import warnings

    from specml.classical.leaderboard import leaderboard

    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # figures and registry notes of the evaluations: `specml evaluate` says them
        board = leaderboard(table, names, workspace=workspace, metric=metric, refresh=refresh)
    if as_json:
        typer.echo(json.dumps(board, indent=2, default=str))
        return
    from rich.table import Table

    out = console()
    if not out.is_terminal:
        out.width = 400  # piped: each row on one line at its natural width (names are never cut)
    if not board["rows"]:
        out.print(f"no model could be evaluated on table '{esc(table)}'")
    else:
        direction = "higher is better" if board["higher_is_better"] else "lower is better"
        grid = Table(title=f"leaderboard on {table}: {board['task']} models of '{board['target']}', by "
                           f"{board['metric']} ({direction})", title_justify="left")
        for col, justify in (("#", "right"), ("model", "left"), ("kind", "left"), ("type", "left"),
                             (str(board["metric"]), "right"), ("fit s", "right"), ("predict s", "right"),
                             ("size", "right"), ("flag", "left")):
            grid.add_column(col, justify=justify, overflow="fold")  # names wrap, never cut
        for r in board["rows"]:
            predict_s = "n/a" if r["predict_s"] is None else f"{r['predict_s']:.3f}"
            grid.add_row(str(r["rank"]), esc(r["name"]), r["kind"], esc(str(r["type"])), _value(r["value"]),
                         "n/a" if r["fit_s"] is None else f"{r['fit_s']:.2f}",
                         predict_s + (" (stored)" if r.get("stored") else ""), _size(r["size_bytes"]), _flag(r))
        base = board.get("baseline")
        if base is not None:
            grid.add_section()
            grid.add_row("", "baseline", "trivial", "majority class / prior" if board["task"] != "regression"
                         else "mean", _value(base["value"]), "", "", "", "")
        out.print(grid)
    for s in board["skipped"]:
        console(stderr=True).print(f"[yellow]skipped[/yellow] {esc(s['name'])}: {esc(s['reason'])}")
    if not board["rows"]:
        raise typer.Exit(1)


def _flag(row: dict) -> str:
    """WORSE THAN TRIVIAL when the guard flagged the model at training (registry) or it loses to the
    trivial baseline on this table."""
    said = []
    if row.get("worse_than_trivial"):
        said.append("WORSE THAN TRIVIAL (validation)")
    if row.get("below_baseline"):
        said.append("below the baseline here")
    return "; ".join(said)


def _value(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def register(app) -> None:
    """Add this module's commands to the `specml` app."""
    app.command("train-estimator")(train_estimator_command)
    app.command("leaderboard")(leaderboard_command)
