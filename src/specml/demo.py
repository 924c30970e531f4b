"""The Pima walk-through behind ``make demo`` / ``specml demo``.

Creates the workspace, loads the bundled Pima Indians Diabetes data, splits it (stratified), trains
the example MLP, evaluates it on the held-back split, writes predictions, and says where it all is.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

SAMPLE = files("specml") / "sample_data"
TABLE, MODEL = "pima", "pima_mlp"


def sample_path(name: str) -> Path:
    return Path(str(SAMPLE / name))


def run_demo(workspace: Any = None, home: Any = None, *, verbose: bool = True) -> dict:
    from rich.console import Console

    from specml import api
    from specml.data.workspace import Workspace
    from specml.home import models_dir

    console = Console(highlight=False)
    say = console.print if verbose else (lambda *a, **k: None)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    say(f"[bold]1. workspace[/bold] {ws.path}")
    rows = ws.load(sample_path("pima_diabetes.csv"), TABLE, replace=True)
    say(f"[bold]2. loaded[/bold] {rows} rows into table '{TABLE}'")
    train_t, test_t, n_train, n_test = ws.split(TABLE, test_size=0.2, stratify="outcome", seed=42, replace=True)
    say(f"[bold]3. split[/bold] '{train_t}' ({n_train} rows) / '{test_t}' ({n_test} rows), stratified on outcome")
    say(f"[bold]4. train[/bold] {sample_path('pima_mlp.model.yaml').name} + {sample_path('pima_mlp.trainer.yaml').name}")
    result = api.train(sample_path("pima_mlp.model.yaml"), sample_path("pima_mlp.trainer.yaml"), table=train_t,
                       name=MODEL, workspace=ws, home=home, verbose=verbose)
    report = api.evaluate(MODEL, test_t, workspace=ws, home=home)
    metrics = report["metrics"]
    say(f"[bold]5. evaluate[/bold] on '{test_t}': " + ", ".join(
        f"{k} {v:.3f}" for k, v in metrics.items() if v is not None))
    out_table = f"{TABLE}_predictions"
    predictions = api.predict(MODEL, test_t, output_table=out_table, workspace=ws, home=home)
    say(f"[bold]6. predict[/bold] {predictions.num_rows} rows -> table '{out_table}' "
        f"(columns: {', '.join(predictions.column_names)})")
    say("\nwhere everything is:")
    say(f"  workspace   {ws.path}   (specml data tables / specml sql \"select * from {out_table} limit 5\")")
    say(f"  model       {result.directory}   (specml models show {MODEL})")
    say(f"  best epoch  {result.best_epoch}: " + ", ".join(
        f"{k} {v:.3f}" for k, v in result.best.items() if k.startswith("val_")))
    return {"train": result, "evaluation": report, "predictions": predictions, "models": models_dir(home)}
