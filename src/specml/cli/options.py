"""Options shared by several ``specml`` commands."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

WorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        envvar="SPECML_WORKSPACE",
        show_default=False,
        help="The workspace database file (or :memory:). Default: <SPECML_HOME or ~/.specml>/workspace.duckdb.",
    ),
]

#: old option spellings -> the one name, in every command that has the one name (hidden, deprecated)
ALIASES: dict[str, str] = {"--data-table": "--table", "--data": "--table", "--model-id": "--model",
                           "--out": "--output"}
#: per command (its path, e.g. ``train``): old spellings whose new name is specific to that command
COMMAND_ALIASES: dict[str, dict[str, str]] = {
    "train": {"--model": "--spec-name", "--trainer": "--trainer-name"},
    "create-model": {"--spec": "--model-spec", "--schema": "--model-spec", "-s": "--model-spec"},
    "create-trainer": {"--spec": "--trainer-spec", "--schema": "--trainer-spec", "-s": "--trainer-spec",
                       "--model": "--spec-name"},
}


def _option_names(command: Any) -> set[str]:
    names: set[str] = set()
    for p in getattr(command, "params", []):
        names.update(getattr(p, "opts", ()))
        names.update(getattr(p, "secondary_opts", ()))
    return names


def _leaf(command: Any, args: list[str], path: list[str]) -> tuple[Any, int]:
    """The command ``args`` reach from ``command`` (sub-commands of groups), and where its own args start."""
    i = 0
    while hasattr(command, "commands") and i < len(args) and args[i] in command.commands:
        path.append(args[i])
        command = command.commands[args[i]]
        i += 1
    return command, i


def rewrite_aliases(command_path: list[str], command: Any, args: list[str]) -> list[str]:
    """``args`` with deprecated option spellings replaced by the one name (a note for each on stderr)."""
    from specml.cli.output import warn

    path = list(command_path)
    leaf, start = _leaf(command, args, path)
    own = _option_names(leaf)
    aliases = {**ALIASES, **COMMAND_ALIASES.get(" ".join(path), {})}
    out = list(args[:start])
    for i in range(start, len(args)):
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        name, eq, value = arg.partition("=")
        new = aliases.get(name)
        if arg.startswith("-") and new and new in own and name not in own:
            warn(f"{name} is deprecated; use {new} (specml {' '.join(path)})")
            arg = new + eq + value
        out.append(arg)
    return out


class Group(TyperGroup):
    """The ``specml`` group: old option spellings still work, as hidden aliases with a deprecation note."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and name is not None:
            rest = rewrite_aliases([name], command, rest)
        return name, command, rest

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with its whole first sentence (wrapped, never cut with '...')."""
        rows = [(name, command.get_short_help_str(limit=10_000)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def version_callback(value: bool) -> None:
    """``--version``: print the installed version and exit."""
    if value:
        import specml

        typer.echo(f"specml {specml.__version__}")
        raise typer.Exit()
