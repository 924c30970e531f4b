"""``specml create-model | create-trainer | registry list | registry lineage``: the spec registry."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer

from specml.cli.options import Group
from specml.cli.output import console, esc, spec_warnings, user_errors

registry_app = typer.Typer(cls=Group, help="Registered model and trainer specs, and lineage of trained models.",
                           no_args_is_help=True)


@user_errors
def create_model(
    name: Annotated[str, typer.Option("--name", "-n", help="Name to register the model spec under.")],
    spec: Annotated[Path, typer.Option("--model-spec", "-m", help="The model spec file.")],
    replace: Annotated[bool, typer.Option("--replace", help="Register a new version under a taken name.")] = False,
) -> None:
    """Validate a model spec and register it by name (for create-trainer and train --spec-name)."""
    from specml.track.registry import Registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = Registry().register_model_spec(name, spec, replace=replace)
    spec_warnings(caught)  # a file is read twice (registry checks, then the torch checks): each said once
    loss = "has a loss" if entry.has_loss else "no loss (a trainer registered for it must bring one)"
    console().print(f"registered model spec '{esc(entry.name)}' "
                    f"({esc(entry.spec_name or 'unnamed')}, {loss}, sha256 {entry.spec_hash[:12]}) "
                    f"from {esc(spec)}")


@user_errors
def create_trainer(
    name: Annotated[str, typer.Option("--name", "-n", help="Name to register the trainer spec under.")],
    spec: Annotated[Path, typer.Option("--trainer-spec", "-T", help="The trainer spec file.")],
    model: Annotated[str | None, typer.Option(
        "--spec-name", help="The registered model spec it trains (default: its model_ref).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Register a new version under a taken name.")] = False,
) -> None:
    """Validate a trainer spec and register it for a registered model (checks model_ref and the loss)."""
    from specml.track.registry import Registry

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = Registry().register_trainer_spec(name, spec, model, replace=replace)
    spec_warnings(caught)
    console().print(f"registered trainer spec '{esc(entry.name)}' for model '{esc(entry.model_ref)}' "
                    f"(sha256 {entry.spec_hash[:12]}) from {esc(spec)}")


@registry_app.command("list")
@user_errors
def registry_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Registered model specs and trainer specs."""
    from rich.table import Table

    from specml.cli.jobs import local_time
    from specml.track.registry import Registry

    reg = Registry()
    models, trainers = reg.list_model_specs(), reg.list_trainer_specs()
    if as_json:
        def strip(entry) -> dict:
            return {k: v for k, v in entry.to_dict().items() if k != "spec_text"}

        typer.echo(json.dumps({"models": [strip(m) for m in models], "trainers": [strip(t) for t in trainers]},
                              indent=2))
        return
    out = console()
    if not models and not trainers:
        out.print("nothing registered yet (specml create-model --name NAME --model-spec MODEL.yaml)")
        return
    table = Table(title="model specs", title_justify="left")
    for col in ("name", "spec name", "loss", "sha256", "registered", "from"):
        table.add_column(col)
    for m in models:
        table.add_row(esc(m.name), esc(m.spec_name or ""), "yes" if m.has_loss else "no", m.spec_hash[:12],
                      local_time(m.updated_at), esc(m.source_path or ""))
    out.print(table)
    table = Table(title="trainer specs", title_justify="left")
    for col in ("name", "model", "loss", "sha256", "registered", "from"):
        table.add_column(col)
    for t in trainers:
        table.add_row(esc(t.name), esc(t.model_ref), "yes" if t.has_loss else "", t.spec_hash[:12],
                      local_time(t.updated_at), esc(t.source_path or ""))
    out.print(table)


@registry_app.command("lineage")
@user_errors
def registry_lineage(
    name: Annotated[str, typer.Argument(help="A trained model's name (specml train --name).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which model spec, trainer spec (names and sha256), table and data trained a model; its evaluations."""
    from specml.cli.jobs import local_time
    from specml.track.registry import Registry

    lineage = Registry().lineage(name)
    if as_json:
        typer.echo(json.dumps(lineage, indent=2))
        return
    out = console()
    out.print(f"[bold]{esc(name)}[/bold]: {len(lineage['runs'])} run(s), "
              f"{len(lineage['evaluations'])} evaluation(s)")

    def spec(kind: str, run: dict) -> str:
        spec_name, h, current = run[f"{kind}_spec_name"], run[f"{kind}_spec_hash"], run[f"{kind}_spec_current"]
        if not h and not spec_name:
            return "-"
        text = f"{spec_name or '(file)'} sha256 {h[:12] if h else '?'}"
        return text + (" (since replaced)" if current is False else "")

    for run in lineage["runs"]:
        out.print(f"  run {esc(run['run_id'])}: {run['status']}, started {local_time(run['started_at'])}"
                  + (f", job {run['job_id']}" if run["job_id"] is not None else ""))
        out.print(f"    model spec:   {esc(spec('model', run))}")
        out.print(f"    trainer spec: {esc(spec('trainer', run))}")
        data = run["table_name"] or "-"
        if run["data_rows"] is not None:
            data += f" ({run['data_rows']} rows" + (f", {run['data_hash']}" if run["data_hash"] else "") + ")"
        out.print(f"    data:         {esc(data)}")
        if run["best_metric"] is not None and run["best_value"] is not None:
            out.print(f"    best:         {esc(run['best_metric'])} {run['best_value']:.4f}"
                      + (f" ({run['epochs_done']}/{run['epochs_total']} epochs)" if run["epochs_done"] else ""))
        for key in ("run_dir", "model_dir", "error"):
            if run[key]:
                out.print(f"    {key.replace('_', ' ') + ':':<14}{esc(str(run[key]))}")
    for ev in lineage["evaluations"]:
        metrics = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in ev["metrics"].items())
        out.print(f"  evaluated on {esc(ev['table_name'])} {local_time(ev['created_at'])}: {esc(metrics)}")


def register(app) -> None:
    """Add ``create-model``, ``create-trainer`` and ``specml registry`` to the app."""
    app.command("create-model")(create_model)
    app.command("create-trainer")(create_trainer)
    app.add_typer(registry_app, name="registry")
