"""``specml train | evaluate | predict | models | demo``: thin wrappers over :mod:`specml.api`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer

from specml.cli.options import Group
from specml.cli.options import WorkspaceOption as Workspace
from specml.cli.output import console, fail, spec_warnings, user_errors, warn

models_app = typer.Typer(cls=Group, help="Trained models in the specml home.", no_args_is_help=True)


@user_errors
def train(
    table: Annotated[str, typer.Option("--table", "-t", help="Workspace table to train on.")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Name of the trained model (models/<name>/); "
                                                                  "default with --spec-name: that name.")] = None,
    model_spec: Annotated[Path | None, typer.Option("--model-spec", "-m",
                                                    help="Model spec (may carry a training: section).")] = None,
    trainer_spec: Annotated[Path | None, typer.Option("--trainer-spec", "-T", help="Trainer spec.")] = None,
    model: Annotated[str | None, typer.Option("--spec-name",
                                                help="A model spec registered with create-model.")] = None,
    trainer: Annotated[str | None, typer.Option("--trainer-name",
                                                help="A trainer spec registered with create-trainer.")] = None,
    estimator_spec: Annotated[Path | None, typer.Option(
        "--estimator-spec", "-e", help="Train a classical model (scikit-learn, XGBoost, LightGBM) instead.")] = None,
    cv: Annotated[int | None, typer.Option("--cv", help="Cross-validate with K folds first (K trainings, mean ± std "
                                                         "of each metric), then train the final model.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Target column when no loss names one.")] = None,
    device: Annotated[str | None, typer.Option("--device",
                                               help="Override config.device (auto, cpu, cuda, mps).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the model's last run from its last checkpoint "
                                                          "(refused when the specs or data changed).")] = False,
    background: Annotated[bool, typer.Option("--background", help="Run as a background job; print its id "
                                                                  "(specml jobs list|status|logs|cancel).")] = False,
    tensorboard: Annotated[bool | None, typer.Option(
        "--tensorboard/--no-tensorboard", help="Serve TensorBoard over the runs while training "
                                               "(default: on a terminal, never in CI).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Train again under a taken name (the old model is "
                                                            "kept under models/.replaced/).")] = False,
    mlflow: Annotated[str | None, typer.Option("--mlflow", help="Log the run to MLflow at this tracking URI (or "
                                                                "tracking.mlflow in the trainer spec); needs "
                                                                "pip install 'specml[mlflow]'.")] = None,
    nproc: Annotated[int | None, typer.Option("--nproc", help="Train with torch DDP in N processes on this node, "
                                                              "started through torchrun (docs/distributed.md).",
                                              rich_help_panel="Distributed")] = None,
    nnodes: Annotated[int, typer.Option("--nnodes", help="Nodes taking part (run the same command on each).",
                                        rich_help_panel="Distributed")] = 1,
    node_rank: Annotated[int | None, typer.Option("--node-rank", help="This node's rank (0..nnodes-1).",
                                                  rich_help_panel="Distributed")] = None,
    rdzv_endpoint: Annotated[str | None, typer.Option("--rdzv-endpoint", help="HOST:PORT of the c10d rendezvous, "
                                                                              "the same on every node.",
                                                      rich_help_panel="Distributed")] = None,
    max_restarts: Annotated[int, typer.Option("--max-restarts", help="Restart the group up to N times when a "
                                                                     "worker dies; it resumes from the last "
                                                                     "checkpoint.", rich_help_panel="Distributed")] = 0,
    workspace: Workspace = None,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Overrides (Hydra's grammar): trainer.config.epochs=20 +path=value ~path; with --multirun, "
             "a,b / range() / choice() sweeps.", show_default=False)] = None,
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Merge a preset first (specml presets).")] = None,
    multirun: Annotated[bool, typer.Option("--multirun", help="Train every point of the overrides' grid "
                                                              "(a sweep: specml sweeps show ID).")] = False,
    jobs: Annotated[int, typer.Option("--jobs", help="--multirun: points trained at a time.", min=1)] = 1,
) -> None:
    """Train a model on a workspace table: from spec files, registered specs (--spec-name/--trainer-name) or an
    estimator spec. Every run gets runs/<time>_<name>/ (facts, figures, TensorBoard, checkpoints, log)."""
    params = dict(locals())
    sources = [x for x in (model_spec, model, estimator_spec) if x is not None]
    if len(sources) != 1:
        fail("give one of --model-spec FILE, --spec-name NAME (registered) or --estimator-spec FILE")
    if trainer is not None and model is None:
        fail("--trainer-name NAME goes with --spec-name NAME (registered specs); "
             "with spec files use --trainer-spec FILE")
    if name is None:  # a registered model's name is the obvious name of what it trains into
        if model is None:
            fail("say what to call the trained model: --name NAME (with --spec-name NAME, that name is the default)")
        name = params["name"] = model
    from specml.cli.search import estimator_with_overrides, preset_overrides, run_multirun

    edits = params["overrides"] = preset_overrides(preset, overrides)
    if model is not None:
        from specml.track.registry import resolve_registered

        model_spec, trainer_spec = resolve_registered(model, trainer)
    if multirun:
        run_multirun(table=table, name=name, model_spec=model_spec, trainer_spec=trainer_spec,
                     estimator_spec=estimator_spec, target=target, device=device, workspace=workspace, cv=cv,
                     overrides=edits, jobs=jobs)
        return
    # cheap checks first: spec kinds, overrides, model_ref, the table and its columns, before torch is imported
    from specml import preflight

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the training reads the specs again and says their warnings then
        if estimator_spec is not None:
            with estimator_with_overrides(estimator_spec, edits) as spec_file:
                preflight.check_estimator_training(spec_file, table=table, workspace=workspace)
        else:
            preflight.check_training(model_spec, trainer_spec, table=table, workspace=workspace, target=target,
                                     registered_model=model, overrides=edits)
    tracker = None
    if mlflow is not None or estimator_spec is None:  # MLflow: --mlflow URI or tracking.mlflow, checked up front
        from specml.track import mlflow as mlflow_tracking

        if estimator_spec is not None:
            mlflow_tracking.require_mlflow()
        else:
            tracker = mlflow_tracking.tracker_for(mlflow, model_spec, trainer_spec, name)
    claim_name(name, replace=replace, resume=resume)
    launch = _launch(params, model_spec, trainer_spec)
    if launch is not None and estimator_spec is not None:
        fail("--nproc/--nnodes train a network with torch DDP; estimator specs train in one process")
    if background:
        _start_background(params)
        return
    if launch is not None:
        from specml.cli import launch as launcher

        raise typer.Exit(launcher.run(launch, _argv(params, launcher=False)))
    if estimator_spec is not None:
        from specml.classical.train import train_estimator

        with estimator_with_overrides(estimator_spec, edits) as spec_file:
            done = train_estimator(spec_file, table=table, name=name, workspace=workspace, cv=cv)
            if mlflow is not None:
                run_id = mlflow_tracking.log_classical(mlflow, spec_file, done)
                console().print(f"logged to MLflow {mlflow}: run {run_id}")
        return
    folds = None
    if cv:  # --cv 0: off
        if cv < 2:
            fail(f"--cv {cv}: cross-validation needs at least 2 folds (0 turns it off)")
        if resume:
            fail("--cv and --resume do not go together: a resumed run continues one training")
        folds = _cross_validate(model_spec, trainer_spec, table=table, k=cv, target=target, device=device,
                                workspace=workspace, overrides=edits or None)
    result = _train(model_spec, trainer_spec, table=table, name=name, target=target, device=device, resume=resume,
                    tensorboard=tensorboard, workspace=workspace, model_spec_name=model, trainer_spec_name=trainer,
                    overrides=edits or None, callbacks=[tracker] if tracker is not None else None)
    if tracker is not None and result is not None:
        run_id = tracker.finish(result.name, result.directory, result.run_dir, best=result.best)
        console().print(f"logged to MLflow {tracker.uri}: run {run_id}")
    if folds is not None:
        from specml.data.files import atomic_write_json

        where = result.run_dir / "facts" / "cv.json"
        where.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(where, folds.to_dict())
        console().print(f"cross-validation ({folds.folds} folds) kept in {where}; the model saved is the final "
                        "training above, on the whole table with its own validation split")


def _cross_validate(model_spec: Path, trainer_spec: Path | None, *, k: int, **options):
    """K trainings on K folds (:mod:`specml.train.cv`), reported as the classical path reports its folds."""
    from specml.train.cv import cross_validate

    out = console()
    out.print(f"Cross-validation: {k} folds")

    def on_fold(i: int, total: int, main: str, scores: dict, seconds: float) -> None:
        value = scores.get(main)
        shown = "n/a" if value is None or value != value else f"{value:.4f}"
        out.print(f"Fold {i}: {main} = {shown} (completed in {seconds:.2f}s)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the final training reads the specs again and says their warnings
        result = cross_validate(model_spec, trainer_spec, k=k, on_fold=on_fold, **options)
    out.print(f"({result.method} folds; each metric at its fold's best epoch)")
    for line in result.lines():
        out.print(line)
    out.print("Training the final model on the whole table")
    return result


def claim_name(name: str, *, replace: bool, resume: bool) -> None:
    """One rule for taken names (:func:`specml.track.names.claim`); say where a replaced model went."""
    from specml.track.names import claim

    kept = claim(name, replace=replace, resume=resume)
    if kept is not None:
        console(stderr=True).print(f"the previous model '{name}' is kept in {kept}")


def _train(model_spec: Path, trainer_spec: Path | None, *, tensorboard: bool | None, **options):
    """Run :func:`specml.api.train` (with TensorBoard beside it when asked) and print the outcome."""
    import os

    from specml import api

    tb = None
    worker = int(os.environ.get("RANK", "0"))  # under torchrun only rank 0 speaks
    try:
        if tensorboard is not False and worker == 0:
            from specml.cli.track import tensorboard_for_training
            from specml.track.run import runs_dir

            tb = tensorboard_for_training(runs_dir(), tensorboard)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = api.train(model_spec, trainer_spec, **options)
    finally:
        if tb is not None:
            from specml.track.tensorboard import stop

            stop(tb)
            console(stderr=True).print("TensorBoard stopped; `specml tensorboard` serves every run again")
    if worker != 0:
        return
    spec_warnings(caught)
    out = console()
    for note in result.notes:
        out.print(f"[yellow]note[/yellow] {note}")
    best = ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if k.startswith("val_") and v is not None) or \
        ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if v is not None)
    out.print(f"trained '{result.name}' ({result.task}) on {result.rows['train']} rows, validated on "
              f"{result.rows['validation']}: best epoch {result.best_epoch}: {best}")
    out.print(f"saved to {result.directory} in {result.seconds:.1f} s (run: {result.run_dir})")
    return result


_FLAGS = {"table": "--table", "name": "--name", "model_spec": "--model-spec", "trainer_spec": "--trainer-spec",
          "model": "--spec-name", "trainer": "--trainer-name", "estimator_spec": "--estimator-spec", "cv": "--cv",
          "target": "--target", "device": "--device", "workspace": "--workspace", "mlflow": "--mlflow"}
# --replace is not passed on: the launching process has claimed the name (moved the old model away) already
_LAUNCH_FLAGS = {"nproc": "--nproc", "nnodes": "--nnodes", "node_rank": "--node-rank",
                 "rdzv_endpoint": "--rdzv-endpoint", "max_restarts": "--max-restarts"}


def _argv(params: dict, launcher: bool = True) -> list[str]:
    """This train command as arguments of ``specml`` (paths made absolute; no --background, no TensorBoard
    server); ``launcher=False`` leaves out the torchrun options (what each DDP worker runs)."""
    argv = ["train"]
    for key, flag in {**_FLAGS, **(_LAUNCH_FLAGS if launcher else {})}.items():
        value = params.get(key)
        if isinstance(value, bool):
            raise TypeError(f"{key}: a switch, not a value; pass it on as a flag")  # a bug here, never user input
        if value is not None:
            value = str(Path(value).resolve()) if isinstance(value, Path) else str(value)
            argv += [flag, value]
    if params.get("resume"):
        argv.append("--resume")
    return [*argv, "--no-tensorboard", *(params.get("overrides") or [])]


def _launch(params: dict, model_spec: Path | None, trainer_spec: Path | None):
    """The torchrun launch this command asks for (--nproc, --nnodes, or config.distributed with world_size),
    or None: one process, or already a torchrun worker."""
    import os

    from specml.cli.launch import Launch

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 or os.environ.get("TORCHELASTIC_RUN_ID"):
        return None  # a worker: torchrun started it
    nproc = params.get("nproc")
    if nproc is None and model_spec is not None:
        from specml import preflight

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, spec = preflight.check_spec_kinds(model_spec, trainer_spec, deep=False,
                                                 overrides=params.get("overrides") or None)
        if spec.config.distributed and spec.config.world_size:
            nproc = spec.config.world_size
    if nproc is None and params.get("nnodes", 1) == 1 and params.get("rdzv_endpoint") is None:
        return None
    return Launch(nproc or 1, params.get("nnodes", 1), params.get("node_rank"), params.get("rdzv_endpoint"),
                  rdzv_id=params["name"], max_restarts=params.get("max_restarts", 0)).check()


def _start_background(params: dict) -> None:
    """Re-issue this train command as a background job (same options, without --background)."""
    from specml.track.jobs import start_background

    argv = _argv(params)
    try:
        job = start_background(argv, params["name"])
    except Exception as err:  # noqa: BLE001 - a bad home, the registry or the process could not start
        fail(err)
    console().print(f"started job {job} (train '{params['name']}'): specml jobs status {job} | "
                    f"specml jobs logs {job} --follow")


@user_errors
def evaluate(
    model: Annotated[str, typer.Option("--model", help="Name of a trained model.")],
    table: Annotated[str, typer.Option("--table", "-t", help="Table holding the features and the target.")],
    threshold: Annotated[str | None, typer.Option(
        "--threshold", help="Binary models: the decision threshold: a number, or f1 / youden for the one chosen "
                            "on the validation rows at training (default: 0.5).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Metrics of a trained model on a table; for classifiers also the confusion matrix, per-class support
    and the threshold used. Warns when the rows are rows the model trained or validated on."""
    from specml import api, preflight
    from specml.evaluation import seen_warning

    preflight.check_scoring(model, table, workspace=workspace)  # the model, table and columns, before torch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = api.evaluate(model, table, workspace=workspace, threshold=threshold)
    for w in caught:
        warn(w.message)
    said = seen_warning(model, table, report.get("seen"))
    if said:
        warn(said)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    print_evaluation(report)


def print_evaluation(report: dict) -> None:
    """Metrics, then (classifiers) the threshold, the confusion matrix with support, then the figures."""
    from rich.table import Table

    out = console()
    grid = Table(title=f"{report['model']} on {report['table']} ({report['rows']} rows, {report['task']})",
                 title_justify="left")
    grid.add_column("metric")
    grid.add_column("value", justify="right")
    for k, v in report["metrics"].items():
        grid.add_row(k, "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v))
    out.print(grid)
    details = report.get("details") or ({"": report} if report.get("confusion_matrix") else {})
    for task, d in details.items():
        prefix = f"{task}: " if task else ""
        if d.get("threshold") is not None:
            at = d.get("at_threshold") or {}
            out.print(f"{prefix}threshold {d['threshold']:g} (positive class '{d['classes'][-1]}' above it): "
                      + ", ".join(f"{k} {v:.4f}" for k, v in at.items()))
            chosen = d.get("chosen_threshold")
            if chosen:
                out.print(f"{prefix}chosen on the validation rows at training: f1 {chosen['f1']:.4g}, youden "
                          f"{chosen['youden']:.4g} (use one with --threshold f1 or --threshold youden)")
        if d.get("confusion_matrix"):
            cm = Table(title=f"{prefix}confusion matrix (rows: true class, columns: predicted)", title_justify="left")
            cm.add_column("true class")
            for c in d["classes"]:
                cm.add_column(str(c), justify="right")
            cm.add_column("support", justify="right")
            for c, row in zip(d["classes"], d["confusion_matrix"], strict=True):
                cm.add_row(str(c), *(str(n) for n in row), str(d["support"][str(c)]))
            out.print(cm)
    for path in report.get("figures") or []:
        out.print(f"figure: {path}")


@user_errors
def predict(
    model: Annotated[str, typer.Option("--model", help="Name of a trained model.")],
    table: Annotated[str, typer.Option("--table", "-t", help="Table holding the features.")],
    output_table: Annotated[str | None, typer.Option("--output-table", help="Write predictions to this table.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write predictions to a .csv or .parquet file.")] = None,
    keep: Annotated[str | None, typer.Option("--keep", help="Comma-separated columns to copy "
                                                            "(default: non-feature columns).")] = None,
    keep_all: Annotated[bool, typer.Option("--keep-all", help="Copy every column of the table.")] = False,
    threshold: Annotated[str | None, typer.Option(
        "--threshold", help="Binary models: the decision threshold: a number, or f1 / youden for the one chosen "
                            "on the validation rows at training (default: 0.5).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite the output table or file if it exists.")]
    = False,
    workspace: Workspace = None,
) -> None:
    """Predict every row of a table: key columns, the predicted label and every class's probability."""
    from specml import api, preflight

    if not output_table and not output:
        fail("say where the predictions go: --output-table NAME or --output FILE.csv|.parquet")
    if keep and keep_all:
        fail("give --keep COLS or --keep-all, not both")
    preflight.check_scoring(model, table, workspace=workspace, targets=False)  # before torch
    result = api.predict(model, table, output_table=output_table, output=output, workspace=workspace,
                         keep=[c.strip() for c in keep.split(",") if c.strip()] if keep else None,
                         keep_all=keep_all, threshold=threshold, replace=replace)
    where = " and ".join(x for x in (f"table '{output_table}'" if output_table else "",
                                     str(output) if output else "") if x)
    console().print(f"{result.num_rows} predictions ({', '.join(result.column_names)}) written to {where}")


@models_app.command("list")
@user_errors
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
    console().print(out)


@models_app.command("show")
@user_errors
def models_show(name: Annotated[str, typer.Argument(help="Model name.")],
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Everything recorded about a trained model."""
    from specml import api

    meta = api.show_model(name)
    if as_json:
        typer.echo(json.dumps(meta, indent=2, default=str))
        return
    out = console()
    out.print(f"[bold]{name}[/bold]  {meta['directory']}")
    for key in ("task", "table", "target", "rows", "epochs", "monitor", "metrics", "seed", "device", "timings"):
        if key in meta:
            out.print(f"  {key}: {json.dumps(meta[key], default=str)}")


@user_errors
def demo(workspace: Workspace = None) -> None:
    """The Pima walk-through: load the bundled data, split, train the example MLP, evaluate, predict."""
    from specml.demo import run_demo

    run_demo(workspace)
