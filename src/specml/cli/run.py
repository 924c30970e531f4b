"""``specml train | evaluate | predict | models | demo``: thin wrappers over :mod:`specml.api`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(help="Trained models in the specml home.", no_args_is_help=True)

Workspace = Annotated[str | None, typer.Option("--workspace", envvar="SPECML_WORKSPACE",
                                               help="Workspace database (default: <SPECML_HOME>/workspace.duckdb).")]


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _fail(err: BaseException) -> typer.Exit:
    """User mistakes end with a clear message and exit 1, never a traceback."""
    from rich.markup import escape

    from specml.spec import SpecError

    console = _console(stderr=True)
    if isinstance(err, SpecError):
        for issue in err.issues:
            hint = f" ({issue.hint})" if issue.hint else ""
            console.print(f"[red]error[/red] {escape(issue.where())}: [bold]{escape(issue.path)}[/bold]: "
                          f"{escape(issue.message + hint)}")
    else:
        console.print(f"[red]error:[/red] {escape(str(err))}")
    return typer.Exit(1)


def _user_errors() -> tuple[type[BaseException], ...]:
    from specml.artifact import ArtifactError
    from specml.data.workspace import DataError
    from specml.spec import SpecError
    from specml.train.engine import TrainingError

    return SpecError, DataError, TrainingError, ArtifactError, FileNotFoundError


def train(
    model_spec: Annotated[Path, typer.Option("--model-spec", "-m", help="Model spec (may carry a training: section).")],
    table: Annotated[str, typer.Option("--table", "-t", help="Workspace table to train on.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the trained model (models/<name>/).")],
    trainer_spec: Annotated[Path | None, typer.Option("--trainer-spec", "-T", help="Trainer spec.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Target column when no loss names one.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Override config.device (auto, cpu, cuda, mps).")] = None,
    workspace: Workspace = None,
) -> None:
    """Train a model from a spec on a workspace table; save weights, specs and metadata."""
    from specml import api

    console = _console()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = api.train(model_spec, trainer_spec, table=table, name=name, target=target,
                               workspace=workspace, device=device)
    except _user_errors() as err:
        raise _fail(err) from None
    for w in caught:
        if "SpecWarning" in type(w.message).__name__:
            _console(stderr=True).print(f"[yellow]warning[/yellow] {w.message}")
    for note in result.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    best = ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if k.startswith("val_")) or \
        ", ".join(f"{k} {v:.4f}" for k, v in result.best.items())
    console.print(f"trained '{result.name}' ({result.task}) on {result.rows['train']} rows, validated on "
                  f"{result.rows['validation']}: best epoch {result.best_epoch}: {best}")
    console.print(f"saved to {result.directory} in {result.seconds:.1f} s")


def evaluate(
    model: Annotated[str, typer.Option("--model", help="Name of a trained model.")],
    table: Annotated[str, typer.Option("--table", "-t", help="Table holding the features and the target.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Metrics of a trained model on a table (scikit-learn metrics)."""
    from specml import api

    try:
        report = api.evaluate(model, table, workspace=workspace)
    except _user_errors() as err:
        raise _fail(err) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from rich.table import Table

    out = Table(title=f"{model} on {table} ({report['rows']} rows, {report['task']})", title_justify="left")
    out.add_column("metric")
    out.add_column("value", justify="right")
    for k, v in report["metrics"].items():
        out.add_row(k, "n/a" if v is None else f"{v:.4f}")
    _console().print(out)


def predict(
    model: Annotated[str, typer.Option("--model", help="Name of a trained model.")],
    table: Annotated[str, typer.Option("--table", "-t", help="Table holding the features.")],
    output_table: Annotated[str | None, typer.Option("--output-table", help="Write predictions to this table.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write predictions to a .csv or .parquet file.")] = None,
    keep: Annotated[str | None, typer.Option("--keep", help="Comma-separated columns to copy (default: non-feature columns).")] = None,
    workspace: Workspace = None,
) -> None:
    """Predict every row of a table: key columns + prediction (+ probabilities for classification)."""
    from specml import api

    if not output_table and not output:
        raise _fail(ValueError("say where the predictions go: --output-table NAME or --output FILE.csv|.parquet"))
    try:
        result = api.predict(model, table, output_table=output_table, output=output, workspace=workspace,
                             keep=[c.strip() for c in keep.split(",")] if keep else None)
    except _user_errors() as err:
        raise _fail(err) from None
    where = " and ".join(x for x in (f"table '{output_table}'" if output_table else "",
                                     str(output) if output else "") if x)
    _console().print(f"{result.num_rows} predictions ({', '.join(result.column_names)}) written to {where}")


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Trained models: name, task, table, best metric, when."""
    from specml import api

    rows = api.list_models()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.table import Table

    out = Table(title="models", title_justify="left")
    for col in ("name", "task", "table", "best", "updated"):
        out.add_column(col)
    for r in rows:
        metric, value = r.get("best_metric"), r.get("best_value")
        best = "" if metric is None else f"{metric} {value:.4f}" if isinstance(value, float) else str(metric)
        out.add_row(str(r.get("name")), str(r.get("task", "")), str(r.get("table", "")), best,
                    str(r.get("updated_at") or r.get("created_at") or ""))
    _console().print(out)


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="Model name.")],
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Everything recorded about a trained model."""
    from specml import api

    try:
        meta = api.show_model(name)
    except _user_errors() as err:
        raise _fail(err) from None
    if as_json:
        typer.echo(json.dumps(meta, indent=2, default=str))
        return
    console = _console()
    console.print(f"[bold]{name}[/bold]  {meta['directory']}")
    for key in ("task", "table", "target", "rows", "epochs", "monitor", "metrics", "seed", "device", "timings"):
        if key in meta:
            console.print(f"  {key}: {json.dumps(meta[key], default=str)}")


def demo(workspace: Workspace = None) -> None:
    """The Pima walk-through: load the bundled data, split, train the example MLP, evaluate, predict."""
    from specml.demo import run_demo

    try:
        run_demo(workspace)
    except _user_errors() as err:
        raise _fail(err) from None
