"""The ``specml`` command: a thin layer over the Python API.

Nothing here imports torch at module level: ``specml --help`` stays fast, and ``specml validate``
imports torch only for the checks that need it (after the structural checks pass).
"""

from __future__ import annotations

import json
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from specml.cli.options import Group, version_callback
from specml.cli.output import console, esc, fail, report, user_errors, warn

app = typer.Typer(
    name="specml",
    help="Models and training recipes as reviewable YAML, trained from tables.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    cls=Group,
)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Models and training recipes as reviewable YAML, trained from tables."""


class Kind(str, Enum):
    model = "model"
    trainer = "trainer"
    estimator = "estimator"


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Spec files (model, trainer or single-file specs).")],
    as_json: Annotated[bool, typer.Option("--json",
                                          help="Print a JSON list, one object per file, instead of text.")] = False,
    deep: Annotated[bool, typer.Option("--deep/--no-deep",
                                       help="Build the model and run a dry forward pass; build the optimizer.")] = True,
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Merge a preset first (specml presets).")] = None,
) -> None:
    """Validate spec files; the kind (model, trainer or estimator) is detected. Exit 1 if any is invalid.
    Overrides (path=value, +path=value, ~path) may follow the files; they apply to the files together."""
    from specml.cli.search import preset_overrides
    from specml.spec import SpecError, load_spec
    from specml.spec.overrides import Overrides, looks_like_override

    edits = preset_overrides(preset, [str(f) for f in files if looks_like_override(str(f))])
    files = [f for f in files if not looks_like_override(str(f))]
    edited = Overrides(edits, files=files) if edits else None
    try:
        if edited is not None:
            edited.check()   # a bad override or preset is said once, not once per file
    except SpecError as err:
        fail(err)
    results = []
    failed = False
    for path in files:
        entry: dict = {"file": str(path), "valid": True, "kind": None, "errors": [], "warnings": []}
        error = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                loaded = load_spec(path, check=deep, overrides=edited)
            except SpecError as err:
                entry["valid"] = False
                entry["errors"] = [i.to_dict() for i in err.issues]
                failed = True
                error = err
        entry["warnings"] = [str(w.message) for w in caught]
        if error is None:
            entry["kind"] = loaded.kind
            entry["summary"] = _summary(loaded)
        results.append((entry, error))

    if as_json:
        typer.echo(json.dumps([e for e, _ in results], indent=2))
    else:
        out = console()
        for entry, error in results:
            for text in entry["warnings"]:
                warn(text)
            if error is None:
                out.print(f"[green]ok[/green] {esc(entry['file'])}: {esc(entry['summary'])}")
            else:
                report(error)
    raise typer.Exit(1 if failed else 0)


def _summary(loaded) -> str:
    if getattr(loaded, "estimator", None) is not None:
        e = loaded.estimator
        return (f"estimator spec: {e.estimator.type} -> '{e.target}'"
                + (f", time column '{e.time_column}'" if e.time_column else ""))
    parts = []
    if loaded.model is not None:
        m = loaded.model
        text = f"model spec '{m.name or '(unnamed)'}': {len(m.inputs)} input(s), {len(m.graph)} node(s), " \
               f"{len(m.outputs)} output(s)"
        if loaded.checked is not None and loaded.checked.model is not None:
            n = sum(p.numel() for p in loaded.checked.model.parameters())
            text += f", {n:,} parameters"
        if not m.losses:
            text += ", no loss (training will need --target)"
        parts.append(text)
    if loaded.trainer is not None:
        t = loaded.trainer
        parts.append(f"trainer spec: {t.optimizer.type} lr={t.optimizer.lr:g}, {t.config.epochs} epochs, "
                     f"batch {t.config.batch_size}")
    return "; ".join(parts)


@app.command()
@user_errors
def describe(
    spec: Annotated[Path, typer.Argument(help="A model spec file.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Overrides: path=value, +path=value, ~path.",
                                                          show_default=False)] = None,
    trainer_spec: Annotated[Path | None, typer.Option("--trainer-spec", "-T",
                                                      help="The trainer spec (for trainer.* overrides).")] = None,
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Merge a preset first (specml presets).")] = None,
    resolved: Annotated[bool, typer.Option("--resolved", help="Print the specs after overrides, presets and "
                                                              "${...} references, as YAML.")] = False,
) -> None:
    """Show a model spec as a table: node, type, output shape, parameter count, and totals."""
    from rich.table import Table

    from specml.cli.search import preset_overrides
    from specml.preflight import spec_kind
    from specml.spec import SpecError, load_spec
    from specml.spec.overrides import Overrides, resolved_namespace

    kind = spec_kind(spec)  # from the file's keys: a trainer spec is refused before torch is imported
    if "model" not in kind.split("+"):
        fail(f"{spec}: this is {'an' if kind == 'estimator' else 'a'} {kind} spec; describe takes a model spec")
    edits = Overrides(preset_overrides(preset, overrides), files=[spec, trainer_spec])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loaded = load_spec(spec, check=True, overrides=edits)
            if trainer_spec is not None:
                load_spec(trainer_spec, check=True, overrides=edits)
            if resolved:
                from specml.spec.yaml_io import dump_yaml

                said = " ".join(edits.recorded) or "(none)"
                typer.echo(f"# {spec}{f' + {trainer_spec}' if trainer_spec else ''}; overrides: {said}\n"
                           + dump_yaml(resolved_namespace([f for f in (spec, trainer_spec) if f], edits)), nl=False)
                return
        except SpecError as err:
            fail(err)
    for w in caught:
        warn(w.message)
    checked = loaded.checked
    model = checked.model
    title = f"{loaded.model.name or spec.stem}  ({spec})"
    table = Table(title=title, title_justify="left")
    table.add_column("node")
    table.add_column("type")
    table.add_column("output shape")
    table.add_column("parameters", justify="right")
    for name, emb in model.embeddings.items():
        n = sum(p.numel() for p in emb.parameters())
        table.add_row(f"{name} (embedding)", "torch.nn.Embedding", f"{emb.num_embeddings} x {emb.embedding_dim}",
                      f"{n:,}" + (" *" if name in checked.placeholder_vocab else ""))
    for node in checked.nodes:
        table.add_row(node.name, node.type, node.shape,
                      (f"{node.params:,}" + (" *" if node.placeholder else "")) if node.params else "-")
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    table.add_section()
    table.add_row("total", "", "", f"{total:,}")
    out = console()
    out.print(table)
    outs = ", ".join(f"{k} {v}" for k, v in checked.output_shapes.items())
    out.print(f"outputs: {esc(outs)}")
    out.print(f"parameters: {total:,} ({trainable:,} trainable)")
    if loaded.model.losses:
        for loss in loaded.model.losses:
            out.print(f"loss: {loss.type} on output '{loss.inputs.input or next(iter(loaded.model.outputs))}' "
                      f"vs column '{loss.inputs.target or '--target'}'")
    if checked.placeholder_vocab:
        out.print("* vocabulary size comes from the data; counted here with a placeholder")


@app.command()
def schema(
    kind: Annotated[Kind, typer.Argument(help="model or trainer")],
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing --output file.")] = False,
) -> None:
    """Print the JSON Schema of a spec kind (for editors: yaml-language-server, VS Code)."""
    from specml.spec.schema import json_schema

    if out is not None and out.is_dir():
        fail(f"--output {out} is a directory; name a .json file")
    if out is not None and out.exists() and not replace:
        fail(f"--output {out} already exists; pass --replace to overwrite it")
    text = json.dumps(json_schema(kind.value), indent=2)
    if out is None:
        typer.echo(text)
    else:
        try:
            out.write_text(text + "\n", encoding="utf-8")
        except OSError as err:
            fail(f"cannot write {out}: {err.strerror or err}")
        typer.echo(f"wrote {out}")


def _register() -> None:
    from specml.cli.data import data_app, sql
    from specml.cli.run import demo, evaluate, models_app, predict, train

    app.add_typer(data_app, name="data")
    app.command("sql")(sql)
    app.command("train")(train)
    app.command("evaluate")(evaluate)
    app.command("predict")(predict)
    app.add_typer(models_app, name="models")
    app.command("demo")(demo)
    # each command group registers itself (no torch at import time: `specml --help` stays fast)
    import importlib

    for module in ("track", "jobs", "registry", "classical", "compile", "report", "shell", "submit", "search",
                   "export", "serve"):
        importlib.import_module(f"specml.cli.{module}").register(app)


_register()


def main() -> None:
    """The ``specml`` entry point; a user error any command lets through still ends as ``error: ...``, exit 1."""
    from specml.cli.output import USER_ERRORS, report

    try:
        app()
    except USER_ERRORS as err:
        report(err)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
