"""The CLI's one output module: a user error is ``error: ...`` and exit 1, never a traceback (in process)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from specml.cli.output import fail, user_errors
from specml.errors import SpecmlError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pima_mlp"


def toy_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @user_errors
    def go(what: str = typer.Option("ok", "--what", help="Which outcome.")) -> None:
        """Do one thing, or fail the way --what says."""
        from specml.spec.errors import SpecError, SpecIssue

        if what == "hint":
            raise SpecmlError("table 'x' not found", hint="load it first")
        if what == "spec":
            raise SpecError([SpecIssue(("graph", 0, "type"), "unknown type 'Lineer'", "did you mean 'Linear'?",
                                       "m.yaml", 5), SpecIssue(("outputs",), "is empty", None, "m.yaml", 9)])
        if what == "file":
            raise FileNotFoundError("model.yaml: no such file")
        if what == "usage":
            fail("--json and --csv cannot be used together", code=2)
        if what == "bug":
            raise RuntimeError("a bug, not a user error")
        typer.echo(f"did {what}")

    @app.command()
    def other() -> None:
        """A second command, so that `go` is a subcommand."""

    return app


def invoke(app, *args: str, **kwargs):
    return CliRunner().invoke(app, list(args), **kwargs)


def test_a_user_error_is_one_line_and_exit_1():
    result = invoke(toy_app(), "go", "--what", "hint")
    assert result.exit_code == 1
    assert result.stderr == "error: table 'x' not found\n  hint: load it first\n"
    assert result.stdout == ""
    assert isinstance(result.exception, SystemExit)


def test_a_spec_error_is_one_line_per_issue():
    result = invoke(toy_app(), "go", "--what", "spec")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error m.yaml:5: graph[0].type: unknown type 'Lineer' (did you mean "
                                          "'Linear'?)", "error m.yaml:9: outputs: is empty"]


def test_a_missing_file_is_a_user_error():
    result = invoke(toy_app(), "go", "--what", "file")
    assert (result.exit_code, result.stderr) == (1, "error: model.yaml: no such file\n")


def test_fail_takes_an_exit_code():
    result = invoke(toy_app(), "go", "--what", "usage")
    assert (result.exit_code, result.stderr) == (2, "error: --json and --csv cannot be used together\n")


def test_a_bug_is_not_swallowed():
    result = invoke(toy_app(), "go", "--what", "bug")
    assert isinstance(result.exception, RuntimeError)


def test_the_decorated_command_keeps_its_options_and_help():
    app = toy_app()
    assert invoke(app, "go", "--what", "thing").stdout == "did thing\n"
    shown = invoke(app, "go", "--help")
    assert shown.exit_code == 0 and "--what" in shown.stdout and "Which outcome." in shown.stdout


# ----------------------------------------------------------------------------------------------
# the real app, in process


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path))
    monkeypatch.delenv("SPECML_WORKSPACE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def specml(*args) -> object:
    from specml.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def test_cli_mistakes_say_error_and_exit_1(home):
    cases = [
        (("describe", EXAMPLE / "trainer.yaml"), "this is a trainer spec; describe takes a model spec"),
        (("train", "--table", "t", "--name", "m"), "error: give one of --model-spec FILE, --spec-name NAME"),
        (("train", "-m", EXAMPLE / "model.yaml", "-T", EXAMPLE / "trainer.yaml", "--table", "t", "--name", "m"),
         "does not exist (load a table into it first)"),
        (("evaluate", "--model", "nope", "--table", "t"), "error: model 'nope' not found"),
        (("predict", "--model", "nope", "--table", "t"), "error: say where the predictions go"),
        (("models", "show", "nope"), "error: model 'nope' not found"),
        (("registry", "lineage", "nope"), "error: "),
        (("jobs", "status", "99"), "error: "),
        (("data", "describe", "nope"), "error: "),
        (("tensorboard", "--logdir", home / "nowhere"), "error: --logdir"),
        (("plan",), "error: specml plan needs --instruction and --table"),
    ]
    for args, said in cases:
        result = specml(*args)
        assert result.exit_code == 1, (args, result.output)
        assert said in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("error"), (args, result.stderr)


def test_sql_usage_error_exits_2(home):
    result = specml("sql", "select 1", "--json", "--csv")
    assert (result.exit_code, result.stderr) == (2, "error: --json and --csv cannot be used together\n")


def test_no_cli_module_imports_a_private_name():
    for path in sorted((ROOT / "src" / "specml" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("specml"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


def test_no_cli_module_has_its_own_console_helper():
    for path in sorted((ROOT / "src" / "specml" / "cli").glob("*.py")):
        if path.name == "output.py":
            continue
        defined = {n.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if isinstance(n, ast.FunctionDef)}
        assert not defined & {"_console", "_fail", "_user_errors", "_errors", "console", "fail"}, path.name
