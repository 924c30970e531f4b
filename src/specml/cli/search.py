"""``specml tune | sweeps list | sweeps show | presets``, and ``specml train --multirun`` (a sweep).

Nothing here imports torch or Optuna at import time (``specml --help`` stays fast).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from specml.cli.output import USER_ERRORS, console, esc, fail, user_errors

sweeps_app = typer.Typer(help="Multirun sweeps (specml train ... --multirun).", no_args_is_help=True)

OverrideArgs = Annotated[list[str] | None, typer.Argument(
    help="Overrides in Hydra's grammar: path=value, +path=value (add), ~path (delete); e.g. "
         "trainer.config.epochs=20 model.graph.h1.params.out_features=64.", show_default=False)]
Presets = Annotated[list[str] | None, typer.Option("--preset", help="Merge a preset first (a name in ./presets, "
                                                                    "<SPECML_HOME>/presets or specml's, or a path).")]


def preset_overrides(presets: list[str] | None, overrides: list[str] | None) -> list[str]:
    """``--preset`` names as ``+experiment=NAME`` overrides, before the others."""
    import re

    from specml.spec.overrides import PRESET_KEY, format_value

    def value(name: str) -> str:
        return name if re.fullmatch(r"[A-Za-z0-9_.\-/]+", name) else format_value(name)

    return [*(f"+{PRESET_KEY}={value(p)}" for p in presets or []), *(overrides or [])]


# ----------------------------------------------------------------------------------------------
# train --multirun


def run_multirun(*, table: str, name: str, model_spec: Path | None, trainer_spec: Path | None,
                 estimator_spec: Path | None, target: str | None, device: str | None, workspace: str | None,
                 cv: int | None, overrides: list[str], jobs: int) -> None:
    """Run the grid of ``overrides`` as a sweep; print the ranked summary; exit 1 when a point failed."""
    from specml.search.sweep import run_sweep

    base = ["train", "--table", table]
    for flag, value in (("--model-spec", model_spec), ("--trainer-spec", trainer_spec),
                        ("--estimator-spec", estimator_spec), ("--target", target), ("--device", device),
                        ("--workspace", workspace), ("--cv", cv)):
        if value is not None:
            base += [flag, str(Path(value).resolve()) if isinstance(value, Path) else str(value)]
    base.append("--no-tensorboard")

    def check(point: list[str]) -> None:
        if estimator_spec is not None:
            from specml.spec import load_spec

            load_spec(estimator_spec, check=False, overrides=point)
        else:
            from specml.api import resolve_specs

            resolve_specs(model_spec, trainer_spec, check=False, overrides=point)

    out = console()
    try:
        sweep = run_sweep(base, overrides, name=name, jobs=jobs, check=check, echo=lambda t: out.print(esc(t)))
    except USER_ERRORS as err:
        fail(err)
    show_sweep(sweep)
    if any(p.status != "completed" for p in sweep.points):
        raise typer.Exit(1)


def show_sweep(sweep) -> None:
    from rich.table import Table

    from specml.spec.overrides import parse_override

    done = sum(p.status == "completed" for p in sweep.points)
    table = Table(title=f"sweep {sweep.sweep_id}: {done} of {len(sweep.points)} point(s) completed",
                  title_justify="left")
    axes = list(sweep.axes) or ["overrides"]
    for col in ("rank", "point", "status", "metric", "value", "epochs", "time",
                *(a.split(".", 1)[1] if a.split(".")[0] in ("model", "trainer") else a for a in axes)):
        table.add_column(col, justify="left" if col in ("status", "metric") else "right")
    for p in sweep.ranked():
        said = {o.key: o.text.split("=", 1)[1] for o in map(parse_override, p.overrides)}
        table.add_row(str(p.rank or ""), str(p.index), p.status, p.metric or "",
                      "" if p.value is None else f"{p.value:.4f}", "" if p.epochs is None else str(p.epochs),
                      "" if p.seconds is None else f"{p.seconds:.1f}s",
                      *([esc(said.get(a, "")) for a in sweep.axes] if sweep.axes else [esc(" ".join(p.overrides))]))
    out = console()
    out.print(table)
    for p in sweep.points:
        if p.status == "failed":
            out.print(f"[red]point {p.index} failed[/red]: {esc(p.error or 'see its log')} (log: {esc(p.log)})")
    out.print(f"sweep directory: {esc(sweep.directory)}")


@sweeps_app.command("list")
@user_errors
def sweeps_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Sweeps in the specml home: id, points, completed, best."""
    from dataclasses import asdict

    from rich.table import Table

    from specml.search.sweep import list_sweeps

    sweeps = list_sweeps()
    if as_json:
        typer.echo(json.dumps([asdict(s) for s in sweeps], indent=2))
        return
    table = Table(title="sweeps", title_justify="left")
    for col in ("id", "points", "completed", "failed", "best"):
        table.add_column(col)
    for s in sweeps:
        best = next((p for p in s.ranked() if p.rank == 1), None)
        table.add_row(s.sweep_id, str(len(s.points)), str(sum(p.status == "completed" for p in s.points)),
                      str(sum(p.status == "failed" for p in s.points)),
                      "" if best is None or best.value is None else f"{best.metric} {best.value:.4f} (point "
                                                                    f"{best.index})")
    console().print(table)


@sweeps_app.command("show")
@user_errors
def sweeps_show(sweep_id: Annotated[str, typer.Argument(help="Sweep id (or a unique prefix, or its name).")],
                as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """A sweep's points ranked by the monitored metric, with failures and their logs."""
    from dataclasses import asdict

    from specml.search.sweep import find_sweep

    try:
        sweep = find_sweep(sweep_id)
    except USER_ERRORS as err:
        fail(err)
    if as_json:
        typer.echo(json.dumps({**asdict(sweep), "ranked": [p.index for p in sweep.ranked()]}, indent=2))
        return
    show_sweep(sweep)


# ----------------------------------------------------------------------------------------------
# tune


def tune(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Workspace table every trial trains on.")] = None,
    space: Annotated[Path | None, typer.Option("--space", "-s", help="The search space (YAML over override paths).")]
    = None,
    model_spec: Annotated[Path | None, typer.Option("--model-spec", "-m", help="Model spec.")] = None,
    trainer_spec: Annotated[Path | None, typer.Option("--trainer-spec", "-T", help="Trainer spec.")] = None,
    estimator_spec: Annotated[Path | None, typer.Option("--estimator-spec", "-e",
                                                        help="Search a classical estimator spec instead.")] = None,
    trials: Annotated[int | None, typer.Option("--trials", help="Trials the study should have (default 20; "
                                                                     "with --resume: as recorded).")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Worker processes sharing the study.")] = 1,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage, a SQLAlchemy URL (default: "
                                                                  "sqlite in <SPECML_HOME>/studies).")] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name (default: <spec name>-<table>).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Start no trial after this many seconds.")] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="tpe, random or grid.")] = "tpe",
    pruner: Annotated[str, typer.Option("--pruner", help="median, halving (successive halving) or none.")] = "median",
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the sampler (worker i uses seed + i).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the study (after a crash or Ctrl-C).")] = False,
    retrain_best: Annotated[str | None, typer.Option("--retrain-best", help="Train the best configuration on the "
                                                                            "whole table as this model.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="Target column when no loss names one.")] = None,
    preset: Presets = None,
    workspace: Annotated[str | None, typer.Option("--workspace", envvar="SPECML_WORKSPACE",
                                                  help="Workspace database.")] = None,
    overrides: OverrideArgs = None,
) -> None:
    """Search hyperparameters with Optuna: every trial is a tracked run; a leaderboard, importances and
    plots at the end (in <SPECML_HOME>/studies/<study>/)."""
    from specml.search.study import TuneSettings
    from specml.search.tune import resume_settings
    from specml.search.tune import tune as run_tune

    out = console()
    fixed = preset_overrides(preset, overrides)
    try:
        if resume:
            name = study or (_default_study(model_spec or estimator_spec, table) if table else None)
            if name is None:
                fail("--resume needs --study NAME (or the specs and --table it was started with)")
            settings = resume_settings(name, None, trials=trials, timeout=timeout, storage=storage)
        else:
            if table is None or space is None:
                fail("give --table TABLE and --space SPACE.yaml (and --model-spec/--trainer-spec or "
                            "--estimator-spec)")
            if (model_spec is None) == (estimator_spec is None):
                fail("give --model-spec FILE (with --trainer-spec FILE) or --estimator-spec FILE")
            settings = TuneSettings(
                study=study or _default_study(model_spec or estimator_spec, table), table=table, space=str(space),
                model_spec=str(model_spec) if model_spec else None,
                trainer_spec=str(trainer_spec) if trainer_spec else None,
                estimator_spec=str(estimator_spec) if estimator_spec else None, target=target,
                workspace=str(Path(workspace).resolve()) if workspace and workspace != ":memory:" else workspace,
                storage=storage, trials=trials or 20, timeout=timeout, sampler=sampler, pruner=pruner, seed=seed,
                overrides=fixed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # Optuna's experimental-feature notes
            result = run_tune(settings, workers=workers, resume=resume, retrain_best=retrain_best,
                              echo=lambda t: out.print(esc(t)))
    except USER_ERRORS as err:
        fail(err)
    _show_study(result)


def _default_study(spec: Path | None, table: str | None) -> str:
    import re

    from specml.spec import SpecError, load_spec

    name = None
    try:
        loaded = load_spec(spec, check=False)
        holder = loaded.model or loaded.estimator
        name = getattr(holder, "name", None)
    except (SpecError, TypeError):
        pass
    name = name or (Path(spec).stem if spec else "study")
    return re.sub(r"[^A-Za-z0-9_.\-]", "-", f"{name}-{table}")


def _show_study(result) -> None:
    from rich.table import Table

    out = console()
    s = result.summary
    states = ", ".join(f"{n} {k}" for k, n in s["states"].items())
    table = Table(title=f"study {result.study}: {s['trials']} trial(s) ({states}); {result.metric} "
                        f"({result.direction})", title_justify="left")
    params = list(dict.fromkeys(k for r in result.leaderboard for k in r["params"]))
    for col in ("rank", "trial", "state", "value", "epochs", *[p.rsplit(".", 1)[-1] for p in params]):
        table.add_column(col, justify="left" if col == "state" else "right")
    for r in result.leaderboard[:15]:
        table.add_row(str(r["rank"]), str(r["trial"]), r["state"], "" if r["value"] is None else f"{r['value']:.4f}",
                      "" if r["epochs"] is None else str(r["epochs"]),
                      *[_cell(r["params"].get(p)) for p in params])
    out.print(table)
    if len(result.leaderboard) > 15:
        out.print(f"... {len(result.leaderboard) - 15} more in {result.directory / 'leaderboard.csv'}")
    if s["importances"]:
        out.print("importances: " + ", ".join(f"{k} {v:.2f}" for k, v in s["importances"].items()))
    for note in result.notes:
        out.print(f"[yellow]note[/yellow] {esc(note)}")
    best = s.get("best")
    if best:
        out.print(f"best: trial {best['trial']} {result.metric} {best['value']:.4f}: "
                      f"{esc(' '.join(best['overrides']))} (model {best['model']})")
    out.print(f"study directory: {esc(result.directory)} (plots, leaderboard.csv); TensorBoard hparams: "
                  f"specml tensorboard --logdir {esc(result.directory / 'tensorboard')}")
    if result.retrained is not None:
        for note in result.retrained.notes:
            out.print(f"[yellow]note[/yellow] {esc(note)}")
        out.print(f"retrained the best configuration as '{esc(result.retrained.name)}' "
                      f"({esc(result.retrained.directory)})")


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------------------------


def presets() -> None:
    """The presets --preset NAME can merge: the project's, yours (<SPECML_HOME>/presets) and specml's."""
    from rich.table import Table

    from specml.spec.presets import list_presets

    table = Table(title="presets", title_justify="left")
    for col in ("name", "description", "file"):
        table.add_column(col)
    for p in list_presets():
        table.add_row(p.name, esc(p.description), esc(p.path))
    console().print(table)


def register(app) -> None:
    """Add ``specml tune``, ``specml sweeps`` and ``specml presets`` to the app."""
    app.command("tune")(tune)
    app.add_typer(sweeps_app, name="sweeps")
    app.command("presets")(presets)


@contextmanager
def estimator_with_overrides(spec: Path, overrides: list[str]) -> Iterator[Path]:
    """The estimator spec with overrides applied, as a temporary file while the block runs (the classical
    trainer reads a file, and keeps its text with the model); the spec itself without overrides."""
    if not overrides:
        yield spec
        return
    import shutil
    import tempfile

    from specml.data.files import atomic_write_text
    from specml.spec import load_spec
    from specml.spec.overrides import Overrides, resolved_namespace
    from specml.spec.yaml_io import dump_yaml

    load_spec(spec, check=False, overrides=overrides)   # errors name the override
    data = resolved_namespace([spec], Overrides(overrides))
    folder = Path(tempfile.mkdtemp(prefix="specml-"))
    try:
        path = folder / Path(spec).name
        atomic_write_text(path, f"# {spec} with: {' '.join(overrides)}\n" + dump_yaml(data))
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
