"""``specml model`` (goal in words + table -> reviewed specs -> training) and ``specml plan``."""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from specml.cli.options import Group
from specml.cli.options import WorkspaceOption as Workspace
from specml.cli.output import console, esc, fail, report, user_errors
from specml.compile.errors import AmbiguousTarget

plan_app = typer.Typer(cls=Group, help="ML plans: analyse a table for a goal, store the plan, build from it.",
                       invoke_without_command=True)


def compile_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`~specml.cli.output.user_errors`, and an ambiguous target also lists its candidate columns."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AmbiguousTarget as err:
            out = console(stderr=True)
            out.print(f"[red]error:[/red] {esc(err)}")
            out.print("candidates:")
            for c in err.candidates:
                out.print(f"  {esc(c)}")
        raise typer.Exit(1)

    return user_errors(run)


def _show(compiled, model_path: Path | None, trainer_path: Path | None) -> None:
    from rich.rule import Rule
    from rich.syntax import Syntax

    out = console()
    for title, text, path in (("model.yaml", compiled.model_yaml(), model_path),
                              ("trainer.yaml", compiled.trainer_yaml(), trainer_path)):
        out.print(Rule(esc(path or title), align="left"))
        if out.is_terminal:
            out.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default", word_wrap=True))
        else:  # piped: the exact YAML, never wrapped or cut
            out.file.write(text if text.endswith("\n") else text + "\n")
    out.print(esc(compiled.rationale))
    for note in compiled.notes:
        out.print(f"[yellow]note:[/yellow] {esc(note)}")
    for phrase in compiled.ignored:
        out.print(f"[yellow]ignored:[/yellow] {esc(repr(phrase))} (not understood; say it differently or edit "
                  "the specs)")


def _edit(paths: list[Path]) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    subprocess.run([*shlex.split(editor), *map(str, paths)], check=False)


def _revalidate(model_path: Path, trainer_path: Path) -> bool:
    from specml.spec import SpecError, load_spec

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_spec(model_path, check=True)
            load_spec(trainer_path, check=True)
    except SpecError as err:
        report(err)  # the review goes on: the user edits the files again
        return False
    return True


def _review(model_path: Path, trainer_path: Path) -> bool:
    """Ask on the terminal; True = train. 'e' opens $EDITOR on both files, then validates them again."""
    while True:
        answer = typer.prompt("Train with these specs? [y/N/e(dit)]", default="n", show_default=False).strip().lower()
        if answer in ("y", "yes"):
            if _revalidate(model_path, trainer_path):
                return True
            continue
        if answer in ("e", "edit"):
            _edit([model_path, trainer_path])
            if _revalidate(model_path, trainer_path):
                from rich.syntax import Syntax

                for p in (model_path, trainer_path):
                    console().print(Syntax(p.read_text(encoding="utf-8"), "yaml", theme="ansi_dark",
                                           background_color="default"))
            continue
        return False


@compile_errors
def model(
    name: Annotated[str, typer.Option("--name", "-n", help="Name of the model (models/<name>/).")],
    instruction: Annotated[str, typer.Option("--instruction", "-i", help="The goal in plain words.")],
    data_table: Annotated[str, typer.Option("--table", "-t", help="Workspace table to learn from.")],
    plan_id: Annotated[str | None, typer.Option("--plan-id", help="Build from a stored plan (specml plan).")] = None,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write the specs here instead of "
                                                                  "<SPECML_HOME>/models/<name>/.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write and show the specs; do not train.")] = False,
    review: Annotated[bool, typer.Option("--review", help="Ask before training (needs a terminal); "
                                                          "'e' opens $EDITOR.")] = False,
    background: Annotated[bool, typer.Option("--background", help="Train as a background job; print its id "
                                                                  "(specml jobs list|status|logs|cancel).")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Build and train again under a taken name (the old "
                                                            "model is kept under models/.replaced/); with --output, "
                                                            "overwrite the specs there.")] = False,
    families: Annotated[str | None, typer.Option("--families", help="Train several model families on one split "
                                                 "and keep the best: comma-separated nn, gbm (LightGBM), xgboost, "
                                                 "linear (each saved as <name>-<family>).")] = None,
    time_limit: Annotated[float | None, typer.Option("--time-limit", min=1, help="Seconds for all families together "
                                                     "(the network stops after the epoch that runs out of time).")
                          ] = None,
    ensemble: Annotated[bool, typer.Option("--ensemble", help="Save a greedy ensemble of the families' validation "
                                                              "predictions (default families: nn,gbm,xgboost,"
                                                              "linear; the word 'ensemble' asks for it too).")
                          ] = False,
    workspace: Workspace = None,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Overrides of the built specs (Hydra's grammar): trainer.config.epochs=20 +path=value ~path.",
        show_default=False)] = None,
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Merge a preset (specml presets).")] = None,
) -> None:
    """Compile a goal in plain words and a table into model.yaml + trainer.yaml, show them, then train.
    Overrides and presets edit the built specs before they are written, shown and trained."""
    from specml.artifact import ModelArtifact, validate_name
    from specml.cli.search import preset_overrides
    from specml.compile.llm import compile_with_backend
    from specml.compile.plan import load_plan
    from specml.compile.profile import profile_table
    from specml.data.workspace import Workspace as WS
    from specml.families import FAMILIES, parse_families, wants_ensemble

    ensemble = ensemble or wants_ensemble(instruction)
    chosen = parse_families(families) if families is not None else (list(FAMILIES) if ensemble else None)
    if background and chosen is not None:
        fail("--families / --ensemble train in the foreground; run without --background")
    if review and not dry_run and not sys.stdin.isatty():
        fail("--review needs a terminal to ask for confirmation; run without --review, or use --dry-run and then "
             "`specml train`")
    validate_name(name)
    artifact = ModelArtifact.for_name(name)
    directory = out if out is not None else artifact.directory
    if out is None and artifact.exists() and not replace:
        from specml.track.names import free_name

        fail(f"model '{name}' already exists in {artifact.directory} (trained); pass --replace to build and train "
             f"it again (the old one is kept under models/.replaced/), choose another --name (e.g. "
             f"{free_name(name)}), or --output DIR for the specs")
    if out is not None and not replace:
        taken = [str(out / f) for f in ("model.yaml", "trainer.yaml") if (out / f).exists()]
        if taken:
            fail(f"{' and '.join(taken)} already exist{'s' if len(taken) == 1 else ''}; pass --replace to overwrite, "
                 "or choose another --output")
    if out is None and replace:
        from specml.track.names import claim

        kept = claim(name, replace=True)
        if kept is not None:
            console(stderr=True).print(f"the previous model '{name}' is kept in {kept}")
    words = instruction
    plan = None
    if plan_id:
        plan = load_plan(plan_id)
    with WS(workspace) as ws:
        profile = profile_table(ws, data_table)
        if plan is not None:
            from specml.compile.words import parse_instruction

            extra = parse_instruction(instruction)
            own_words = extra.understood != ["build from the plan"] or extra.ignored or extra.targets
            same_table = plan.table.lower() == profile.table.lower()
            if same_table and not own_words:
                compiled = plan.compiled_specs()
                compiled.model["name"] = name
                compiled.trainer["model_ref"] = name
                compiled.notes.append(f"specs from plan {plan.plan_id}")
            else:
                words = f"{plan.instruction}\n{instruction}"
                compiled = compile_with_backend(words, profile, name=name)
                compiled.notes.append(f"compiled from plan {plan.plan_id}'s words plus these"
                                      + ("" if same_table else f" for table '{profile.table}' "
                                                               f"(the plan was made for '{plan.table}')"))
        else:
            compiled = compile_with_backend(words, profile, name=name)
        model_path, trainer_path = compiled.write(directory)
    edits = preset_overrides(preset, overrides)
    if edits:  # the files say what will train: the overrides are written into them
        from specml.spec.overrides import Overrides, resolved_namespace

        said = Overrides(edits, files=[model_path, trainer_path])
        said.check()
        resolved = resolved_namespace([model_path, trainer_path], said)
        compiled.model, compiled.trainer = resolved["model"], resolved["trainer"]
        compiled.notes.append("overrides applied to the built specs: " + " ".join(said.recorded))
        model_path, trainer_path = compiled.write(directory)
    if chosen is not None:  # the words' "ensemble" is understood here, not by the spec compiler
        compiled.ignored = [p for p in compiled.ignored if "ensembl" not in p.lower()]
        compiled.notes.append(f"model families {', '.join(chosen)} on one split"
                              + (", blended by greedy ensemble selection" if ensemble else ", the best one kept"))

    _show(compiled, model_path, trainer_path)
    screen = console()
    screen.print(f"wrote {esc(model_path)} and {esc(trainer_path)}")
    if dry_run:
        if background:
            screen.print("[yellow]note:[/yellow] --background has no effect with --dry-run (nothing is trained)")
        screen.print(f"dry run: not trained. Train with: specml train -m {esc(model_path)} -T {esc(trainer_path)} "
                     f"-t {esc(data_table)} -n {esc(name)}")
        return
    if review and not _review(model_path, trainer_path):
        screen.print(f"not trained; the specs are in {esc(directory)}")
        raise typer.Exit(0)
    if chosen is not None:
        _train_families(name, model_path, trainer_path, data_table, chosen, ensemble, time_limit, replace, workspace)
        return
    from specml.cli.run import train

    train(model_spec=model_path, table=data_table, name=name, trainer_spec=trainer_path, target=None, device=None,
          background=background, workspace=workspace)
    if not background:
        _guard(name, model_path, trainer_path, data_table, workspace)


def _guard(name: str, model_path: Path, trainer_path: Path, table: str, workspace) -> None:
    """The trivial-baseline guard after a words-path training: a model worse than the mean / the class prior
    is said loudly, flagged in the registry, and trained once more with safer settings."""
    from specml.families import safer_specs
    from specml.guard import check, neural_validation, record

    def verdict_of():
        try:
            got = neural_validation(name, table, workspace=workspace)
        except Exception as err:  # noqa: BLE001 - the check never fails a trained model
            console(stderr=True).print(f"[yellow]note:[/yellow] the trivial-baseline check could not run: {esc(err)}")
            return None
        return None if got is None else check(got[0], got[1], got[2], got[3], got[4])

    verdict = verdict_of()
    if verdict is None:
        return
    record(verdict, name)
    if not verdict.worse:
        return
    err = console(stderr=True)
    err.print(f"[bold red]{esc(verdict.message(name))}[/bold red]")
    safer_model, safer_trainer, what = safer_specs(model_path, trainer_path)
    err.print(f"[yellow]retrying once with safer settings:[/yellow] {esc(what)} ({esc(safer_model)}, "
              f"{esc(safer_trainer)})")
    from specml.cli.run import train
    from specml.track.names import claim

    kept = claim(name, replace=True)
    if kept is not None:
        err.print(f"the diverged model is kept in {esc(kept)}")
    train(model_spec=safer_model, table=table, name=name, trainer_spec=safer_trainer, target=None, device=None,
          background=False, workspace=workspace)
    verdict = verdict_of()
    if verdict is None:
        return
    record(verdict, name)
    if verdict.worse:
        err.print(f"[bold red]{esc(verdict.message(name))} -- also after the retry; it is flagged in the registry "
                  "and the leaderboard[/bold red]")
    else:
        console().print(f"after the retry: {esc(verdict.message(name))}")


def _train_families(name: str, model_path: Path, trainer_path: Path, table: str, families: list[str], ensemble: bool,
                    time_limit: float | None, replace: bool, workspace) -> None:
    """Train the families, print their leaderboard and what was kept (see :mod:`specml.families`)."""
    from rich.table import Table

    from specml.families import train_families

    screen = console()
    result = train_families(name, model_path, trainer_path, table=table, families=families, ensemble=ensemble,
                            time_limit=time_limit, workspace=workspace, replace=replace,
                            say=lambda text: screen.print(esc(text)))
    direction = "higher is better" if result.higher_is_better else "lower is better"
    grid = Table(title=f"families on the validation rows of {table} ({result.rows['validation']:,} rows), by "
                       f"val_{result.metric} ({direction})", title_justify="left")
    for col, justify in (("model", "left"), ("family", "left"), (f"val_{result.metric}", "right"),
                         ("weight", "right"), ("seconds", "right"), ("flag", "left")):
        grid.add_column(col, justify=justify, overflow="fold")
    for r in result.board():
        grid.add_row(esc(r["model"]), r["family"], "n/a" if r["value"] is None else f"{r['value']:.4f}",
                     "" if r["weight"] is None else f"{r['weight']:.2f}", f"{r['seconds']:.1f}",
                     "WORSE THAN TRIVIAL" if r["worse_than_trivial"] else "")
    if result.trivial is not None:
        grid.add_section()
        grid.add_row("trivial", "mean" if result.task == "regression" else "class prior", f"{result.trivial:.4f}",
                     "", "", "")
    screen.print(grid)
    for note in result.notes:
        screen.print(f"[yellow]note:[/yellow] {esc(note)}")
    kept = " + ".join(f"{w:.2f} x {m}" for m, w in result.weights.items())
    what = "greedy ensemble" if result.ensemble else "best family"
    screen.print(f"saved '{esc(name)}' ({what}: {esc(kept)}); evaluate / predict / leaderboard use it like any model")


@plan_app.callback()
@compile_errors
def plan(
    ctx: typer.Context,
    instruction: Annotated[str | None, typer.Option("--instruction", "-i", help="The goal in plain words.")] = None,
    data_table: Annotated[str | None, typer.Option("--table", "-t", help="Workspace table to analyse.")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Model name used in the compiled specs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Analyse a table for a goal (target balance, missing values, leakage, split, metric, architecture,
    time estimate); store the plan and print its id. `specml plan show ID` prints a stored plan."""
    if ctx.invoked_subcommand is not None:
        return
    if not instruction or not data_table:
        fail("specml plan needs --instruction and --table (or: specml plan show ID)")
    from specml.compile.plan import make_plan, save_plan
    from specml.data.workspace import Workspace as WS

    with WS(workspace) as ws:
        made = make_plan(instruction, ws, data_table, name=name)
    save_plan(made)
    if as_json:
        typer.echo(json.dumps(made.to_dict(), indent=2, default=str))
    else:
        _print_plan(made)
        console().print(f"saved plan [bold]{made.plan_id}[/bold]. Build it with: specml model --name NAME "
                        f"--instruction \"Build the model according to the plan\" --table {esc(made.table)} "
                        f"--plan-id {made.plan_id}")


@plan_app.command("show")
@compile_errors
def plan_show(
    plan_id: Annotated[str, typer.Argument(help="A plan id (specml plan list).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Print a stored plan."""
    from specml.compile.plan import load_plan

    stored = load_plan(plan_id)
    if as_json:
        typer.echo(json.dumps(stored.to_dict(), indent=2, default=str))
    else:
        _print_plan(stored)


@plan_app.command("list")
@user_errors
def plan_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (id, instruction, table, created_at).")] = False,
) -> None:
    """The stored plans, oldest first: id, table, created, goal."""
    from rich.table import Table

    from specml.cli.jobs import local_time
    from specml.compile.plan import list_plan_entries

    entries = list_plan_entries()
    if as_json:
        typer.echo(json.dumps([{"plan_id": e.plan_id, "instruction": e.instruction, "table": e.table_name,
                                "created_at": e.created_at} for e in entries], indent=2))
        return
    if not entries:
        console().print("no plans yet (make one with: specml plan --instruction \"...\" --table TABLE)")
        return
    table = Table(title="plans", title_justify="left")
    for col in ("id", "table", "created", "goal"):
        table.add_column(col)
    for e in entries:
        goal = " ".join(e.instruction.split())
        table.add_row(e.plan_id, esc(e.table_name), local_time(e.created_at),
                      esc(goal if len(goal) <= 70 else goal[:69] + "…"))
    console().print(table)


def _print_plan(p) -> None:
    from rich.table import Table

    out = console()
    out.print(f"[bold]plan {p.plan_id}[/bold]  table {esc(p.table)} ({p.rows:,} rows), created {p.created_at}")
    out.print(f"goal: {esc(' '.join(p.instruction.split()))}")
    out.print(f"target: {esc(', '.join(p.targets))}  task: {p.task}  metric: {p.metric}  "
              f"architecture: {p.architecture}")
    for t, b in p.balance.items():
        if "counts" in b:
            shown = ", ".join(f"{k}: {v}" for k, v in list(b["counts"].items())[:10])
            warn = "  [yellow](imbalanced)[/yellow]" if b.get("imbalanced") else ""
            out.print(f"balance of {esc(t)}: {esc(shown)}; minority/majority {b['minority_to_majority']}{warn}")
        else:
            out.print(f"{esc(t)}: mean {b['mean']}, std {b['std']}, range {b['min']} .. {b['max']}")
    table = Table(title="columns", title_justify="left")
    for col in ("column", "type", "distinct", "missing"):
        table.add_column(col, justify="right" if col in ("distinct", "missing") else "left")
    for c in p.profile.get("columns", []):
        table.add_row(esc(c["name"]), c["type"], f"{c['distinct']:,}", f"{c['nulls']:,}" if c["nulls"] else "")
    out.print(table)
    for s in p.leakage:
        out.print(f"[red]leakage suspect:[/red] {esc(s['column'])}: {esc(s['reason'])} (left out of the inputs)")
    out.print(f"split: {p.split['kind']} ({esc(p.split['why'])}): {esc(p.split['command'])}")
    e = p.estimate
    out.print(f"estimated training time: ~{e['seconds']} s ({e['parameters']:,} parameters, {e['train_rows']:,} "
              f"training rows, up to {e['epochs']} epochs, batch {e['batch_size']}; {e['rule']})")
    out.print(esc(p.compiled.get("rationale", "")))
    for note in p.notes:
        out.print(f"[yellow]note:[/yellow] {esc(note)}")
    for phrase in p.ignored:
        out.print(f"[yellow]ignored:[/yellow] {esc(repr(phrase))}")


def register(app) -> None:
    """Add ``specml model`` and ``specml plan`` to the `specml` app."""
    app.command("model")(model)
    app.add_typer(plan_app, name="plan")
