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
    from specml.track.registry import RegistryError
    from specml.train.checkpoint import CheckpointError
    from specml.train.engine import TrainingError

    return SpecError, DataError, TrainingError, ArtifactError, RegistryError, CheckpointError, FileNotFoundError


def train(
    table: Annotated[str, typer.Option("--table", "-t", help="Workspace table to train on.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the trained model (models/<name>/).")],
    model_spec: Annotated[Path | None, typer.Option("--model-spec", "-m",
                                                    help="Model spec (may carry a training: section).")] = None,
    trainer_spec: Annotated[Path | None, typer.Option("--trainer-spec", "-T", help="Trainer spec.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="A model spec registered with create-model.")] = None,
    trainer: Annotated[str | None, typer.Option("--trainer",
                                                help="A trainer spec registered with create-trainer.")] = None,
    estimator_spec: Annotated[Path | None, typer.Option(
        "--estimator-spec", "-e", help="Train a classical model (scikit-learn, XGBoost, LightGBM) instead.")] = None,
    cv: Annotated[int | None, typer.Option("--cv", help="Estimator specs: cross-validate with K folds first.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Target column when no loss names one.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Override config.device (auto, cpu, cuda, mps).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the model's last run from its last checkpoint "
                                                          "(refused when the specs or data changed).")] = False,
    background: Annotated[bool, typer.Option("--background", help="Run as a background job; print its id "
                                                                  "(specml jobs list|status|logs|cancel).")] = False,
    tensorboard: Annotated[bool | None, typer.Option(
        "--tensorboard/--no-tensorboard", help="Serve TensorBoard over the runs while training "
                                               "(default: on a terminal, never in CI).")] = None,
    workspace: Workspace = None,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Overrides (Hydra's grammar): trainer.config.epochs=20 +path=value ~path; with --multirun, "
             "a,b / range() / choice() sweeps.", show_default=False)] = None,
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Merge a preset first (specml presets).")] = None,
    multirun: Annotated[bool, typer.Option("--multirun", help="Train every point of the overrides' grid "
                                                              "(a sweep: specml sweeps show ID).")] = False,
    jobs: Annotated[int, typer.Option("--jobs", help="--multirun: points trained at a time.", min=1)] = 1,
) -> None:
    """Train a model on a workspace table: from spec files, registered specs (--model/--trainer) or an
    estimator spec. Every run gets runs/<time>_<name>/ (facts, figures, TensorBoard, checkpoints, log)."""
    sources = [x for x in (model_spec, model, estimator_spec) if x is not None]
    if len(sources) != 1:
        raise _fail(ValueError("give one of --model-spec FILE, --model NAME (registered) or --estimator-spec FILE"))
    if trainer is not None and model is None:
        raise _fail(ValueError("--trainer NAME goes with --model NAME (registered specs); with spec files use "
                               "--trainer-spec FILE"))
    from specml.cli.search import estimator_with_overrides, preset_overrides, run_multirun

    edits = preset_overrides(preset, overrides)
    if multirun:
        if model is not None:
            from specml.track.registry import resolve_registered

            try:
                model_spec, trainer_spec = resolve_registered(model, trainer)
            except _user_errors() as err:
                raise _fail(err) from None
        run_multirun(table=table, name=name, model_spec=model_spec, trainer_spec=trainer_spec,
                     estimator_spec=estimator_spec, target=target, device=device, workspace=workspace, cv=cv,
                     overrides=edits, jobs=jobs)
        return
    if background:
        _start_background({**locals(), "overrides": edits})
        return
    if estimator_spec is not None:
        from specml.cli.classical import run_train_estimator

        try:
            with estimator_with_overrides(estimator_spec, edits) as spec_file:
                run_train_estimator(spec_file, table, name, cv, workspace)
        except _user_errors() as err:
            raise _fail(err) from None
        return
    from specml import api

    console = _console()
    tb = None
    try:
        if model is not None:
            from specml.track.registry import resolve_registered

            model_spec, trainer_spec = resolve_registered(model, trainer)
        if tensorboard is not False:
            from specml.cli.track import tensorboard_for_training
            from specml.track.run import runs_dir

            tb = tensorboard_for_training(runs_dir(), tensorboard)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = api.train(model_spec, trainer_spec, table=table, name=name, target=target,
                               workspace=workspace, device=device, resume=resume, overrides=edits or None,
                               model_spec_name=model, trainer_spec_name=trainer)
    except _user_errors() as err:
        raise _fail(err) from None
    finally:
        if tb is not None:
            from specml.track.tensorboard import stop

            stop(tb)
            _console(stderr=True).print("TensorBoard stopped; `specml tensorboard` serves every run again")
    for w in caught:
        if "SpecWarning" in type(w.message).__name__:
            _console(stderr=True).print(f"[yellow]warning[/yellow] {w.message}")
    for note in result.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    best = ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if k.startswith("val_") and v is not None) or \
        ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if v is not None)
    console.print(f"trained '{result.name}' ({result.task}) on {result.rows['train']} rows, validated on "
                  f"{result.rows['validation']}: best epoch {result.best_epoch}: {best}")
    console.print(f"saved to {result.directory} in {result.seconds:.1f} s (run: {result.run_dir})")


def _start_background(params: dict) -> None:
    """Re-issue this train command as a background job (same options, without --background)."""
    from specml.track.jobs import start_background

    flags = {"table": "--table", "name": "--name", "model_spec": "--model-spec", "trainer_spec": "--trainer-spec",
             "model": "--model", "trainer": "--trainer", "estimator_spec": "--estimator-spec", "cv": "--cv",
             "target": "--target", "device": "--device", "workspace": "--workspace"}
    argv = ["train"]
    for key, flag in flags.items():
        value = params.get(key)
        if value is not None:
            value = str(Path(value).resolve()) if isinstance(value, Path) else str(value)
            argv += [flag, value]
    if params.get("resume"):
        argv.append("--resume")
    argv.append("--no-tensorboard")
    argv += params.get("overrides") or []
    try:
        job = start_background(argv, params["name"])
    except Exception as err:  # noqa: BLE001 - a bad home, the registry or the process could not start
        raise _fail(err) from None
    _console().print(f"started job {job} (train '{params['name']}'): specml jobs status {job} | "
                     f"specml jobs logs {job} --follow")


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
