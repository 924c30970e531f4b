"""One vocabulary: every command's options, walked; a clash fails here."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from specml.cli.app import app
from specml.cli.options import ALIASES, COMMAND_ALIASES

#: what each shared long option means; a command whose help says otherwise is a clash
MEANINGS = {
    "--table": ("table",),
    "--model": ("trained model",),
    "--model-spec": ("model spec",),
    "--trainer-spec": ("trainer spec",),
    "--estimator-spec": ("estimator spec", "classical model"),
    "--spec-name": ("registered", "model spec"),
    "--workspace": ("workspace",),
}


def _commands(command=None, path=()):
    """(path, click command) of every leaf command of ``specml``."""
    command = command or typer.main.get_command(app)
    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _commands(sub, (*path, name))
    if path and (not subs or getattr(command, "invoke_without_command", False) or command.callback):
        yield " ".join(path), command


def _options(command):
    for p in command.params:
        if getattr(p, "param_type_name", "") == "option" and not p.hidden:
            yield p


def test_short_flags_and_long_names_mean_one_thing_everywhere():
    short: dict[str, set[str]] = {}
    kinds: dict[str, dict[str, str]] = {}
    problems = []
    for path, command in _commands():
        for p in _options(command):
            longs = [o for o in p.opts if o.startswith("--")]
            for s in (o for o in p.opts if not o.startswith("--")):
                short.setdefault(s, set()).update(longs)
            for name in longs:
                kind = "flag" if p.is_flag else "value"
                kinds.setdefault(name, {})[path] = kind
                words = MEANINGS.get(name)
                if words and not any(w in (p.help or "").lower() for w in words):
                    problems.append(f"specml {path} {name}: help {p.help!r} does not say {' or '.join(words)}")
                if name in ALIASES or name in COMMAND_ALIASES.get(path, {}):
                    problems.append(f"specml {path} shows the old spelling {name}")
    for s, longs in short.items():
        if len(longs) > 1:
            problems.append(f"short flag {s} means {sorted(longs)}")
    for name, by_path in kinds.items():
        if len(set(by_path.values())) > 1:
            problems.append(f"{name} is a flag in some commands and takes a value in others: {by_path}")
    assert not problems, "\n".join(problems)


def test_every_command_has_help_and_h():
    runner = CliRunner()
    for path, _ in _commands():
        result = runner.invoke(app, [*path.split(), "-h"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output and "<bool>" not in result.output, path
        assert "…" not in result.output, f"{path}: help cut"


@pytest.mark.parametrize(("argv", "said"), [
    (["evaluate", "--model-id", "nope", "--data-table", "t"], "--model-id is deprecated; use --model"),
    (["plan", "--instruction", "x", "--data", "nope"], "--data is deprecated; use --table"),
    (["train", "--model", "nope", "--table", "t", "--name", "x"], "--model is deprecated; use --spec-name"),
    (["create-model", "--name", "x", "--spec", "nope.yaml"], "--spec is deprecated; use --model-spec"),
    (["schema", "model", "--out", "/nonexistent-dir/x.json"], "--out is deprecated; use --output"),
])
def test_old_spellings_still_work_with_a_note(tmp_path, monkeypatch, argv, said):
    monkeypatch.setenv("SPECML_HOME", str(tmp_path))
    result = CliRunner().invoke(app, argv)
    assert said in result.stderr, result.stderr
    assert "No such option" not in result.stderr


def test_the_shell_passes_old_spellings_to_the_same_parser():
    from specml.cli.shell import parse_line

    argv = parse_line("/ml evaluate --model-id m --data-table t").argv
    result = CliRunner().invoke(app, list(argv))
    assert "--model-id is deprecated" in result.stderr and "No such option" not in result.stderr


def test_version_and_completion():
    result = CliRunner().invoke(app, ["--version"])
    from specml import __version__

    assert result.exit_code == 0 and result.stdout.strip() == f"specml {__version__}"
    out = CliRunner().invoke(app, ["--help"]).stdout
    assert "--install-completion" in out and "--show-completion" in out


def test_completion_script_and_completions():
    """What --install-completion installs for bash, and what it then completes (commands and options)."""
    script = CliRunner().invoke(app, ["--show-completion", "bash"]).stdout
    assert "complete -o default -F _specml_completion specml" in script

    def complete(words: str) -> list[str]:
        env = {"_SPECML_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        return CliRunner().invoke(app, [], env=env, prog_name="specml").stdout.split()

    assert complete("specml tra") == ["train", "train-estimator"]
    assert complete("specml evaluate --ta") == ["--table"]


def test_help_piped_is_not_cut():
    done = subprocess.run([sys.executable, "-m", "specml", "train", "--help"], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0 and "…" not in done.stdout and "..." not in _without_variadic(done.stdout)
    assert "--resume " in done.stdout and "<bool>" not in done.stdout


def _without_variadic(text: str) -> str:
    """Help text without click's marks of an argument that takes many values (``[OVERRIDES]...``,
    ``overrides...``) and of optional repeats (``...]``): any ``...`` left is a cut."""
    import re

    return re.sub(r"\]\.\.\.|\w\.\.\.(?= )|\.\.\.\]", "", text)
