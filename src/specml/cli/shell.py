"""``specml shell``: an interactive prompt for ``/ml ...``, ``/sql ...`` and ``/help``.

Every line becomes the argv of a ``specml`` command, run in this process through the same typer
app as the CLI (:func:`parse_line` maps a line, :func:`run_argv` runs it)::

    /ml model --name dia --instruction "..." --table pima   ->  specml model ... --background,
                                                                then the job's log until it ends
    /ml evaluate --model dia --table pima                   ->  specml evaluate --model dia --table pima
    /ml predict --model dia --table pima --output out.csv   ->  specml predict ... --output out.csv
    /sql SELECT COUNT(*) FROM pima                               ->  specml sql "SELECT COUNT(*) FROM pima"

On a terminal: prompt_toolkit with history (``<home>/shell_history``) and completion. Otherwise the
lines of stdin run in order and the exit code is 1 if any failed. A user mistake prints
``error: ...`` and the shell goes on.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from specml.cli.options import ALIASES as _OPTION_ALIASES
from specml.cli.output import console, esc, report
from specml.errors import SpecmlError

PROMPT = "specml> "
SHELL_COMMANDS = {
    "/ml": "a specml command: /ml model, plan, jobs, train, evaluate, predict, ... (/help ml)",
    "/sql": "run SQL in the workspace: /sql SELECT ... (the rest of the line is the query)",
    "/help": "this help; /help COMMAND shows a command's options (e.g. /help evaluate)",
    "/exit": "leave the shell (also /quit or Ctrl-D)",
    "/quit": "leave the shell",
}
#: the commands of the seed and their usual forms, shown first by /help
FEATURED = (
    ("model", 'model --name NAME --instruction "..." --table TABLE [--plan-id P] [--dry-run]',
     "build a model from words and train it as a job, showing its log (Ctrl-C stops showing, the job goes on)"),
    ("plan", 'plan --instruction "..." --table TABLE | plan show ID | plan list',
     "analyse a table for a goal and store an ML plan"),
    ("jobs", "jobs list | jobs status ID | jobs logs ID [--follow] | jobs cancel ID", "background jobs"),
    ("train", "train --model-spec M.yaml --trainer-spec T.yaml --table TABLE --name NAME | "
              "train --spec-name NAME [--trainer-name T] --table TABLE [--target COL]",
     "train from spec files, or from registered specs (the model's name is the default --name)"),
    ("evaluate", "evaluate --model NAME --table TABLE", "metrics of a trained model on a table"),
    ("predict", "predict --model NAME --table TABLE [--output FILE.csv|FILE.parquet|TABLE]",
     "predictions; without --output they go to table NAME_predictions and the first rows are shown"),
)
#: old option spellings (``--data-table``, ``--model-id``, ``--data``): the CLI itself accepts them as hidden,
#: deprecated aliases (:mod:`specml.cli.options`), so a line means the same in the shell and on the command line
ALIASES = _OPTION_ALIASES
HIDDEN = {"shell"}  # not offered inside the shell
SQL_WORDS = {"select", "with", "show", "describe", "create", "insert", "update", "delete", "drop", "alter",
             "pragma", "from", "summarize", "copy", "explain", "values", "table", "attach"}
_FILE_SUFFIX = re.compile(r"\.[A-Za-z0-9]+$")


class LineError(SpecmlError, ValueError):
    """A line the shell cannot turn into a command."""


@dataclass(frozen=True)
class Action:
    """What a line asks for. kind: ``run`` (argv of specml), ``help``, ``exit``, ``nothing``."""

    kind: str
    argv: tuple[str, ...] = ()
    topic: tuple[str, ...] = ()
    follow_job: str | None = None  # /ml model: show this model's new job's log until it ends
    then: tuple[tuple[str, ...], ...] = field(default=())  # commands run after argv succeeded


# ----------------------------------------------------------------------------------------------
# the specml app as click sees it


_GROUP = None


def _group():
    """The ``specml`` click group (built once)."""
    global _GROUP
    if _GROUP is None:
        import typer.main

        from specml.cli.app import app

        _GROUP = typer.main.get_command(app)
    return _GROUP


def ml_commands() -> dict[str, Any]:
    """The ``specml`` commands offered as ``/ml NAME`` (click commands by name)."""
    return {name: cmd for name, cmd in _group().commands.items() if name not in HIDDEN and not cmd.hidden}


def _subcommands(cmd) -> dict[str, Any]:
    return dict(getattr(cmd, "commands", {}) or {})


def _options(cmd) -> list[str]:
    opts = []
    for p in cmd.params:
        if getattr(p, "param_type_name", "") == "option":
            opts += [o for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    return [*opts, "--help"]


# ----------------------------------------------------------------------------------------------
# lines -> actions


def split(text: str) -> list[str]:
    """Shell-like words (quotes group, backslash escapes); LineError on an unclosed quote."""
    try:
        return shlex.split(text, posix=True)
    except ValueError as err:
        raise LineError(f"{err} in: {text.strip()}") from None


def complete(text: str) -> bool:
    """False while a line needs more input: an open quote or a trailing backslash (``/sql`` ending
    with ``;`` is always complete)."""
    stripped = text.rstrip()
    if stripped.startswith("/sql") and stripped.endswith(";"):
        return True
    if stripped.endswith("\\"):
        return False
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def _unknown(word: str, candidates: Iterable[str], what: str) -> LineError:
    from specml.spec.errors import suggestion

    hint = suggestion(word, list(candidates))
    return LineError(f"unknown {what} '{word}'" + (f" ({hint})" if hint else "; /help lists the commands"))


def _map_options(command: str, args: list[str]) -> list[str]:
    """The words as they are: old spellings are the CLI's own hidden aliases (one vocabulary)."""
    return list(args)


def _option_value(args: list[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        name, eq, value = a.partition("=")
        if name in names:
            if eq:
                return value
            if i + 1 < len(args):
                return args[i + 1]
    return None


def _predict_output(args: list[str]) -> tuple[list[str], tuple[tuple[str, ...], ...]]:
    """``--output X``: a file when X has a suffix or a folder, else a table; no output: NAME_predictions."""
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        name, eq, value = a.partition("=")
        if name == "--output" and (eq or i + 1 < len(args)):
            target = value if eq else args[i + 1]
            is_file = "/" in target or _FILE_SUFFIX.search(target) is not None
            out += ["--output" if is_file else "--output-table", target]
            i += 1 if eq else 2
            continue
        out.append(a)
        i += 1
    if "--help" in out or any(a.partition("=")[0] in ("--output", "-o", "--output-table") for a in out):
        return out, ()
    model = _option_value(out, "--model", "--model-id")
    if not model:
        return out, ()
    table = f"{model}_predictions"
    return [*out, "--output-table", table], (("sql", f'SELECT * FROM "{table}" LIMIT 10'),)


def _plain_words(line: str) -> LineError:
    first = line.split(None, 1)[0].lower().rstrip(";(")
    if first in SQL_WORDS:
        return LineError(f"commands start with a slash; to run SQL: /sql {line.strip()}")
    table = re.search(r"\b(?:using|from|on|in)\s+(?:the\s+)?([A-Za-z_][A-Za-z0-9_]*)\s+table\b", line, re.IGNORECASE)
    words = line.strip().replace('"', "'")
    return LineError('commands start with a slash (/help lists them). To build a model from words: /ml model --name '
                     f'NAME --instruction "{words}" --table {table.group(1) if table else "TABLE"}')


def parse_line(line: str) -> Action:
    """One shell line (possibly spanning several physical lines) -> what to do. LineError for mistakes."""
    text = re.sub(r"\\\r?\n", " ", line).strip()  # a backslash at a line's end continues it
    if not text or text.startswith("#"):
        return Action("nothing")
    if not text.startswith("/"):
        raise _plain_words(text)
    head = text.split(None, 1)[0]
    rest = text[len(head):].strip()
    if head == "/sql":
        if not rest:
            raise LineError("usage: /sql SELECT ... (the rest of the line is the query)")
        return Action("run", ("sql", rest))
    if head in ("/exit", "/quit"):
        return Action("exit")
    if head == "/help":
        words = [w for w in split(rest) if w not in ("/ml", "ml")]
        return Action("help", topic=tuple(words))
    if head != "/ml":
        name = head[1:]
        if name in ml_commands():
            raise LineError(f"unknown command '{head}' (did you mean '/ml {name}'?)")
        raise _unknown(head, SHELL_COMMANDS, "command")
    args = split(rest)
    commands = ml_commands()
    if not args:
        raise LineError("usage: /ml COMMAND [OPTIONS] (e.g. /ml jobs list); /help lists the commands")
    command, args = args[0], args[1:]
    if command not in commands:
        raise _unknown(command, commands, "command")
    subs = _subcommands(commands[command])
    if subs and args and not args[0].startswith("-") and args[0] not in subs:
        raise _unknown(args[0], subs, f"'{command}' command")
    args = _map_options(command, args)
    then: tuple[tuple[str, ...], ...] = ()
    follow = None
    if command == "predict":
        args, then = _predict_output(args)
    if command == "model" and not {"--dry-run", "--background", "--help"} & set(args):
        args = [*args, "--background"]
        follow = _option_value(args, "--name", "-n")
    return Action("run", (command, *args), follow_job=follow, then=then)


def logical_lines(lines: Iterable[str]) -> Iterator[str]:
    """Join physical lines into commands: an open quote or a trailing backslash continues a line, and so
    does an indented line after a slash command (the layout of the Arc docs)::

        /ml model --name spam_detector
                  --instruction "Binary classifier ..."
                  --table processed_emails
    """
    pending: str | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if pending is not None:
            if not complete(pending):
                pending = pending + "\n" + line
                continue
            if line[:1] in (" ", "\t") and line.strip() and pending.lstrip().startswith("/"):
                pending = pending + " " + line.strip()
                continue
            yield pending
        pending = line
    if pending is not None:
        yield pending


# ----------------------------------------------------------------------------------------------
# running


def _error(message: str) -> None:
    report(message)


def run_argv(argv: Iterable[str]) -> int:
    """Run ``specml <argv>`` in this process; its exit code. Never raises for a failing command."""
    argv = [str(a) for a in argv]
    try:
        rv = _group().main(args=argv, prog_name="specml", standalone_mode=False)
    except typer.TyperException as err:  # click's usage errors (vendored by typer)
        if type(err).__name__ == "NoArgsIsHelpError":
            err.show()  # prints the group's help
            return 0
        _error(err.format_message() + (f" (see /help {argv[0]})" if argv else ""))
        return getattr(err, "exit_code", 1) or 1
    except typer.Exit as err:
        return err.exit_code
    except typer.Abort:
        _error("aborted")
        return 1
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as err:  # noqa: BLE001 - the shell outlives any command
        _error(f"{type(err).__name__}: {err}")
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _latest_job_id() -> int:
    from specml.track.registry import Registry

    with Registry() as reg:
        jobs = reg.list_jobs(limit=1)
    return jobs[-1].job_id if jobs else 0


def _follow(name: str, after: int) -> int:
    """Show the log of the job that ``/ml model`` just started until it ends; its outcome as an exit code."""
    from specml.track.registry import Registry

    with Registry() as reg:
        jobs = [j for j in reg.list_jobs() if j.job_id > after and j.name == name]
    if not jobs:
        return 0
    job_id = jobs[-1].job_id
    rc = run_argv(["jobs", "logs", str(job_id), "--follow"])
    if rc == 130:
        console().print(f"stopped showing job {job_id}; it goes on: /ml jobs status {job_id} | "
                        f"/ml jobs logs {job_id} --follow | /ml jobs cancel {job_id}")
        return 0
    with Registry() as reg:
        job = reg.get_job(job_id)
    if job.status != "completed":
        _error(f"job {job_id} ({name}) {job.status}" + (f": {job.error}" if job.error else ""))
        return 1
    return rc


def execute(action: Action) -> int:
    """Do what a parsed line asks (except exit); an exit code."""
    if action.kind == "help":
        return show_help(action.topic)
    if action.kind != "run":
        return 0
    before = _latest_job_id() if action.follow_job else 0
    rc = run_argv(action.argv)
    if rc == 0 and action.follow_job:
        rc = _follow(action.follow_job, before)
    for argv in action.then if rc == 0 else ():
        rc = run_argv(argv)
    return rc


def run_line(line: str) -> tuple[int, bool]:
    """Parse and run one line: (exit code, whether the shell should end)."""
    try:
        action = parse_line(line)
    except LineError as err:
        _error(str(err))
        return 1, False
    if action.kind == "exit":
        return 0, True
    try:
        return execute(action), False
    except KeyboardInterrupt:
        _error("interrupted")
        return 130, False


def show_help(topic: tuple[str, ...] = ()) -> int:
    out = console()
    commands = ml_commands()
    if topic:
        name = topic[0].lstrip("/")
        if name == "sql":
            return run_argv(["sql", "--help"])
        if f"/{name}" in SHELL_COMMANDS:
            out.print(f"/{name}: {SHELL_COMMANDS['/' + name]}")
            return 0
        if name not in commands:
            _error(str(_unknown(name, [*commands, *(c[1:] for c in SHELL_COMMANDS)], "command")))
            return 1
        if name == "predict":
            out.print("--output X writes a file when X has a suffix (.csv, .parquet), else the table X")
        return run_argv([name, *topic[1:], "--help"])
    out.print("[bold]specml shell[/bold]")
    for name, usage, what in FEATURED:
        out.print(f"  {esc('/ml ' + usage)}\n      {esc(what)}")
    out.print("  /sql QUERY\n      run SQL in the workspace (the rest of the line is the query)")
    out.print("  /help [COMMAND]\n      this list; a command's options (/help evaluate)")
    out.print("  /exit, /quit, Ctrl-D\n      leave the shell")
    others = [n for n in commands if n not in {f[0] for f in FEATURED}]
    out.print("other /ml commands: " + ", ".join(others))
    out.print("old spellings still work (deprecated): " + ", ".join(f"{a} = {o}" for a, o in ALIASES.items()))
    out.print("Up/Down: history; Tab: completion; an open quote or a trailing \\ continues on the next line")
    return 0


# ----------------------------------------------------------------------------------------------
# completion


class ShellCompleter:
    """Completes slash commands, /ml commands and sub-commands, options (and aliases), and the values
    of a few options: model names, table names, plan ids, job ids."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def _cached(self, key: str, fetch) -> list[str]:
        import time

        hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < 5.0:
            return hit[1]
        try:
            values = list(fetch())
        except Exception:  # noqa: BLE001 - completion never fails the prompt (locked workspace, ...)
            values = []
        self._cache[key] = (time.monotonic(), values)
        return values

    def _models(self) -> list[str]:
        from specml.home import models_dir

        d = models_dir()
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def _tables(self) -> list[str]:
        from specml.data.workspace import Workspace
        from specml.home import workspace_path

        path = workspace_path()
        if str(path) == ":memory:" or not path.exists():
            return []
        with Workspace(path, read_only=True) as ws:
            return [t.name for t in ws.tables()]

    def _plans(self) -> list[str]:
        from specml.compile.plan import list_plans

        return list_plans()

    def _jobs(self) -> list[str]:
        from specml.track.registry import Registry

        with Registry() as reg:
            return [str(j.job_id) for j in reg.list_jobs(limit=50)]

    def words(self, before: str) -> list[tuple[str, str]]:
        """Candidates (text, meta) for the word being typed at the end of ``before``."""
        parts = before.split()
        current = "" if before[-1:].isspace() or not before else parts[-1]
        done = parts if not current else parts[:-1]
        if not done:
            return [(c, m) for c, m in SHELL_COMMANDS.items() if c.startswith(current)]
        head = done[0]
        if head == "/help":
            return [(n, "") for n in ml_commands() if n.startswith(current)] if len(done) == 1 else []
        if head != "/ml":
            return []
        commands = ml_commands()
        if len(done) == 1:
            return [(n, (c.get_short_help_str(60) or "")) for n, c in commands.items() if n.startswith(current)]
        name = done[1]
        cmd = commands.get(name)
        if cmd is None:
            return []
        subs = _subcommands(cmd)
        rest = done[2:]
        if subs and not rest and not current.startswith("-"):
            return [(n, (c.get_short_help_str(60) or "")) for n, c in subs.items() if n.startswith(current)]
        if subs and rest and rest[0] in subs:
            cmd, rest = subs[rest[0]], rest[1:]
            if name == "jobs" and not rest and not current.startswith("-"):
                return [(j, "job") for j in self._cached("jobs", self._jobs) if j.startswith(current)]
            if name == "plan" and not rest and not current.startswith("-"):
                return [(p, "plan") for p in self._cached("plans", self._plans) if p.startswith(current)]
        last = done[-1]
        values = {"--model": "models", "--table": "tables", "--plan-id": "plans"}
        if last in values:
            kind = values[last]
            fetch = {"models": self._models, "tables": self._tables, "plans": self._plans}[kind]
            return [(v, kind[:-1]) for v in self._cached(kind, fetch) if v.startswith(current)]
        if current.startswith("-") or not current:
            used = set(done)
            return [(o, "") for o in dict.fromkeys(_options(cmd)) if o.startswith(current) and o not in used]
        return []

    def completer(self):
        from prompt_toolkit.completion import Completer, Completion

        outer = self

        class _Completer(Completer):
            def get_completions(self, document, complete_event):
                before = document.text_before_cursor
                if "\n" in before:
                    before = before.replace("\n", " ")
                current = "" if before[-1:].isspace() or not before else before.split()[-1]
                for text, meta in outer.words(before):
                    yield Completion(text, start_position=-len(current), display_meta=meta)

        return _Completer()


# ----------------------------------------------------------------------------------------------
# the loop


def interactive() -> int:
    """The prompt on a terminal; returns when the user leaves."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.application.current import get_app
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.filters import Condition
    from prompt_toolkit.history import FileHistory

    from specml.home import specml_home

    home = specml_home()
    home.mkdir(parents=True, exist_ok=True)
    session = PromptSession(
        history=FileHistory(str(home / "shell_history")),
        completer=ShellCompleter().completer(),
        complete_while_typing=False,  # Tab completes (as in bash); typing stays quiet
        auto_suggest=AutoSuggestFromHistory(),
        multiline=Condition(lambda: not complete(get_app().current_buffer.text)),
        prompt_continuation=lambda width, line_number, wrap_count: "." * (width - 1) + " ",
    )
    console().print(f"specml shell ({home}): /help lists the commands; /exit or Ctrl-D leaves")
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        _, leave = run_line(line)
        if leave:
            break
    return 0


def piped(stream: Iterable[str], echo: bool = False) -> int:
    """Run the lines of a non-terminal stdin in order; 1 if any command failed, else 0."""
    failed = False
    for line in logical_lines(stream):
        if echo and line.strip():
            print(PROMPT + line, flush=True)
        rc, leave = run_line(line)
        failed = failed or rc != 0
        if leave:
            break
    return 1 if failed else 0


def shell(
    echo: Annotated[bool, typer.Option("--echo", help="Without a terminal: print each command before its output.")]
    = False,
) -> None:
    """An interactive prompt: /ml model|plan|jobs|train|evaluate|predict ..., /sql QUERY, /help, /exit.
    Without a terminal it runs the lines of stdin (exit 1 if any failed)."""
    if sys.stdin.isatty():
        interactive()
        return
    raise typer.Exit(piped(sys.stdin, echo=echo))


def register(app) -> None:
    """Add ``specml shell`` to the `specml` app."""
    app.command("shell")(shell)
