"""``specml shell``: a real pseudo-terminal (pexpect, slow: each trains a job), piped stdin (in process),
and the line -> argv mapping."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from specml.cli.shell import (
    Action,
    LineError,
    ShellCompleter,
    complete,
    logical_lines,
    parse_line,
    run_argv,
    run_line,
)
from testkit import ROOT, SPECML, invoke, no_traceback, specml_env

ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>])")
MODEL_LINE = ('/ml model --name dia --instruction "Build a model to predict diabetes with 2 hidden layers (16, 8), '
              '3 epochs" --table pima')


def _env(home: Path) -> dict[str, str]:
    env = specml_env(home, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    env.pop("SPECML_LLM_BASE_URL", None)
    return env


@pytest.fixture(scope="module")
def home(pima_home) -> Path:
    return pima_home


# ----------------------------------------------------------------------------------------------
# (a) a real terminal


@pytest.mark.slow
def test_interactive_session_through_a_pseudo_terminal(home):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(str(SPECML), ["shell"], cwd=str(ROOT), env=_env(home), encoding="utf-8", timeout=60,
                          dimensions=(50, 200))
    transcript: list[str] = []

    def until(pattern: str, timeout: float = 60) -> str:
        """Everything up to and including the first match of ``pattern`` (escape codes removed)."""
        child.expect(pattern, timeout=timeout)
        text = ANSI.sub("", child.before + child.after)
        transcript.append(text)
        return text

    def command(line: str, pattern: str, timeout: float = 60) -> str:
        """Type a line; its output up to ``pattern``, then wait for the next prompt."""
        child.sendline(line)
        out = until(pattern, timeout)
        until("specml>")
        return out

    try:
        assert "/help lists the commands" in until("specml>")
        out = command(MODEL_LINE, r"completed \(exit code 0\)", timeout=240)  # the job's log until it ends
        assert "wrote " in out and "model.yaml" in out and "started job 1 (train 'dia')" in out
        assert "Epoch 3/3" in out and "trained 'dia' (binary) on 614 rows" in out

        jobs = command("/ml jobs list", r"duration.*?\n.*?\n.*?\n")
        assert re.search(r"│\s*1 │ dia\s*│ completed\s*│\s*3/3 │ val_loss 0\.\d{4}", jobs), jobs

        assert re.search(r"│\s+768 │", command("/sql SELECT COUNT(*) FROM pima", r"1 row"))

        ev = command("/ml evaluate --model dia --table pima", r"log_loss.*?\n")
        assert "dia on pima (768 rows, binary)" in ev and re.search(r"│ auc\s+│\s+0\.\d{4} │", ev), ev

        helped = command("/help", r"continues on the next line")
        assert '/ml model --name NAME --instruction "..." --table TABLE' in helped
        assert "/ml jobs list | jobs status ID" in helped and "/sql QUERY" in helped

        command("/ml jbos list", re.escape("error: unknown command 'jbos' (did you mean 'jobs'?)"))

        # Tab completes the command and the sub-command
        for keys in ("/ml jo", "\t", " li", "\t"):
            child.send(keys)
            time.sleep(0.5)  # let the completion land before the next key (it runs in a thread)
        listed = command("", r"duration.*?\n.*?\n.*?\n")
        assert re.search(r"│\s*1 │ dia\s*│ completed", listed), listed

        # an open quote continues the line
        child.sendline("/sql SELECT 'multi")
        shown = command("line' AS x, 7 * 6 AS answer", r"1 row")
        assert re.search(r"│\s+42 │", shown), shown

        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, "\n".join(transcript)
    assert "Traceback" not in "\n".join(transcript)
    history = (home / "shell_history").read_text(encoding="utf-8")
    assert "+/ml jobs list" in history and "+" + MODEL_LINE in history


@pytest.mark.slow
def test_ctrl_c_stops_showing_a_job_that_goes_on_and_ctrl_d_leaves(home):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(str(SPECML), ["shell"], cwd=str(ROOT), env=_env(home), encoding="utf-8", timeout=120,
                          dimensions=(50, 200))
    try:
        child.expect("specml>")
        child.sendline('/ml model --name long_one --instruction "predict diabetes with 2 hidden layers (8, 4), '
                       '500 epochs, no early stopping" --table pima')
        child.expect(r"started job (\d+) \(train 'long_one'\)")
        job = child.match.group(1)
        child.expect(r"Epoch 2/500")
        child.sendintr()
        child.expect_exact(f"stopped showing job {job}; it goes on: /ml jobs status {job}")
        child.expect("specml>")
        child.sendline(f"/ml jobs status {job}")
        child.expect(rf"job {job}\S*\s+long_one\s+\S*running")  # (bold escapes in between)
        child.expect("specml>")
        child.sendline(f"/ml jobs cancel {job}")
        child.expect(rf"job {job} \(long_one\): \S*cancelled")
        child.expect("specml>")
        child.sendintr()  # at the prompt: a fresh line, the shell stays
        child.expect("specml>")  # the old line, drawn once more as it is left
        child.expect("specml>")  # the new prompt (keys sent before it would reach a terminal not in raw mode)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
        from specml.track.jobs import cancel
        from specml.track.registry import Registry

        with Registry(home=home) as reg:  # never leave a training job behind when the test fails
            for j in reg.list_jobs(active=True):
                cancel(j.job_id, reg, grace=2.0)
    assert child.exitstatus == 0


# ----------------------------------------------------------------------------------------------
# (b) piped stdin


def _pipe(home: Path, text: str, *args: str):
    """``specml shell ARGS`` with ``text`` on its (piped) stdin, in this process."""
    return invoke("shell", *args, home=home, cwd=ROOT, input=text,
                  env={"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "SPECML_LLM_BASE_URL": None})


def test_piped_lines_run_in_order(home):
    script = """\
# the layout of the Arc docs: a command over several indented lines
/ml model --name piped_dry
          --instruction "Binary classifier for diabetes with 2 hidden layers (64, 32)"
          --table pima --dry-run
/sql SELECT COUNT(*) AS n FROM pima WHERE outcome = 1
/ml plan --instruction "predict diabetes with 2 hidden layers (32, 16)" --table pima
/ml plan list
/ml plan show plan-1
/ml model --name from_plan --instruction "Build the model according to the plan" --table pima
          --plan-id plan-1 --dry-run
/exit
/sql SELECT 'not reached'
"""
    done = _pipe(home, script, "--echo")
    assert done.returncode == 0, done.stdout + done.stderr
    no_traceback(done)
    out = done.stdout
    assert out.index("specml> /ml model --name piped_dry") < out.index("specml> /sql SELECT COUNT(*)")
    assert "hidden layers [64, 32]" in out and "dry run: not trained" in out
    assert (home / "models" / "piped_dry" / "model.yaml").is_file()
    assert re.search(r"│\s+268 │", out)
    assert "saved plan plan-1" in out and "balance of outcome: 0: 500, 1: 268" in out
    assert re.search(r"plan-1\s*│ pima\s*│", out)
    assert "specs from plan plan-1" in out and "hidden layers" in out
    assert "not reached" not in out


def test_piped_failures_are_reported_and_the_rest_still_runs(home):
    script = """\
/ml evaluate --model-id no_such_model --table pima
/ml jbos list
SELECT 1
/ml plan show plan-99
/sql SELECT 41 + 1 AS answer
"""
    done = _pipe(home, script)
    assert done.returncode == 1
    no_traceback(done)
    err = done.stderr
    assert "error: model 'no_such_model' not found" in err
    assert "error: unknown command 'jbos' (did you mean 'jobs'?)" in err
    assert "error: commands start with a slash; to run SQL: /sql SELECT 1" in err
    assert "plan 'plan-99' not found" in err
    assert re.search(r"│\s+42 │", done.stdout)


# ----------------------------------------------------------------------------------------------
# (c) the mapping


@pytest.mark.parametrize(("line", "argv"), [
    (MODEL_LINE, ("model", "--name", "dia", "--instruction",
                  "Build a model to predict diabetes with 2 hidden layers (16, 8), 3 epochs",
                  "--table", "pima", "--background")),
    ("/ml model --name d --instruction x --table t --dry-run",
     ("model", "--name", "d", "--instruction", "x", "--table", "t", "--dry-run")),
    ("/ml model --name d --instruction x --table t --plan-id plan-2 --background",
     ("model", "--name", "d", "--instruction", "x", "--table", "t", "--plan-id", "plan-2", "--background")),
    ("/ml jobs list", ("jobs", "list")),
    ("/ml jobs status 3", ("jobs", "status", "3")),
    ("/ml jobs logs 3 --follow", ("jobs", "logs", "3", "--follow")),
    ("/ml jobs cancel 3", ("jobs", "cancel", "3")),
    ("/ml evaluate --model dia --table pima", ("evaluate", "--model", "dia", "--table", "pima")),
    ("/ml evaluate --model=dia --table=pima --json", ("evaluate", "--model=dia", "--table=pima", "--json")),
    # old spellings pass through as they are: the CLI itself accepts them (deprecated, hidden)
    ("/ml evaluate --model-id dia --table pima", ("evaluate", "--model-id", "dia", "--table", "pima")),
    ("/ml predict --model dia --table pima --output out.csv",
     ("predict", "--model", "dia", "--table", "pima", "--output", "out.csv")),
    ("/ml predict --model dia --table pima --output runs/preds",
     ("predict", "--model", "dia", "--table", "pima", "--output", "runs/preds")),
    ("/ml predict --model dia --table pima --output scored",
     ("predict", "--model", "dia", "--table", "pima", "--output-table", "scored")),
    ("/ml train --model-spec m.yaml --trainer-spec t.yaml --table pima --name x",
     ("train", "--model-spec", "m.yaml", "--trainer-spec", "t.yaml", "--table", "pima", "--name", "x")),
    ("/ml plan --instruction 'predict y' --table t", ("plan", "--instruction", "predict y", "--table", "t")),
    ("/ml plan show plan-1", ("plan", "show", "plan-1")),
    ("/sql SELECT \"a b\", 'it''s' FROM t;", ("sql", "SELECT \"a b\", 'it''s' FROM t;")),
    ("  /sql   SELECT 1  ", ("sql", "SELECT 1")),
])
def test_line_to_argv(line, argv):
    action = parse_line(line)
    assert action.kind == "run" and action.argv == argv


def test_model_follows_its_job_and_predict_shows_its_table():
    assert parse_line(MODEL_LINE).follow_job == "dia"
    assert parse_line("/ml model -n d -i x -t t --background").follow_job is None
    assert parse_line("/ml model -n d -i x -t t --dry-run").follow_job is None
    bare = parse_line("/ml predict --model dia --table pima")
    assert bare.argv == ("predict", "--model", "dia", "--table", "pima", "--output-table", "dia_predictions")
    assert bare.then == (("sql", 'SELECT * FROM "dia_predictions" LIMIT 10'),)
    assert parse_line("/ml predict --model dia --table pima --output p.parquet").then == ()


def test_other_lines():
    assert parse_line("/help") == Action("help")
    assert parse_line("/help /ml evaluate") == Action("help", topic=("evaluate",))
    assert parse_line("/exit").kind == parse_line("/quit").kind == "exit"
    assert parse_line("").kind == parse_line("   ").kind == parse_line("# a note").kind == "nothing"
    assert parse_line("/ml jobs \\\nlist").argv == ("jobs", "list")  # a trailing backslash continues


@pytest.mark.parametrize(("line", "message"), [
    ("/ml jbos list", "unknown command 'jbos' (did you mean 'jobs'?)"),
    ("/ml jobs lst", "unknown 'jobs' command 'lst' (did you mean 'list'?)"),
    ("/sq SELECT 1", "unknown command '/sq' (did you mean '/sql'?)"),
    ("/jobs list", "unknown command '/jobs' (did you mean '/ml jobs'?)"),
    ("/ml shell", "unknown command 'shell'"),
    ("/ml", "usage: /ml COMMAND"),
    ("/sql", "usage: /sql SELECT"),
    ("select * from pima", "to run SQL: /sql select * from pima"),
    ("Build a model to predict diabetes using the processed_diabetes_data table",
     ('/ml model --name NAME --instruction "Build a model to predict diabetes using the processed_diabetes_data table"'
      " --table processed_diabetes_data")),
    ('/ml model --name x --instruction "open', "No closing quotation"),
])
def test_mistakes(line, message):
    with pytest.raises(LineError) as caught:
        parse_line(line)
    assert message in str(caught.value)


def test_continuation_rules():
    assert complete("/ml jobs list") and complete("/sql SELECT 'a' ;")
    assert not complete('/ml model --instruction "two') and not complete("/ml jobs \\")
    assert complete("/sql SELECT 'unclosed;")  # a /sql line ending in ; is done
    seed = ['/ml model --name spam_detector\n',
            '          --instruction "Binary classifier for spam detection with 2 hidden layers (64, 32)"\n',
            '          --table processed_emails\n',
            '\n',
            '/ml model --name price_predictor\n',
            '          --instruction "Regression model to predict house prices with:\n',
            '                        - 3 hidden layers: 128, 64, 32\n',
            '                        - 100 epochs"\n',
            '          --table housing_features\n',
            '/ml jobs list\n']
    joined = list(logical_lines(seed))
    assert [parse_line(j).kind for j in joined] == ["run", "nothing", "run", "run"]
    assert parse_line(joined[0]).argv[:7] == (
        "model", "--name", "spam_detector", "--instruction",
        "Binary classifier for spam detection with 2 hidden layers (64, 32)", "--table", "processed_emails")
    words = parse_line(joined[2]).argv
    assert words[3] == "--instruction" and "- 100 epochs" in words[4]
    assert words[4].startswith("Regression model to predict house prices with:\n")
    assert words[5:7] == ("--table", "housing_features")


def test_completion(specml_home):
    (specml_home / "models" / "diabetes").mkdir(parents=True)
    c = ShellCompleter()

    def texts(before: str) -> list[str]:
        return [t for t, _ in c.words(before)]

    assert texts("/") == ["/ml", "/sql", "/help", "/exit", "/quit"]
    assert texts("/ml ev") == ["evaluate"]
    assert texts("/ml jobs st") == ["status"]
    options = texts("/ml evaluate --")
    assert {"--model", "--table", "--json"} <= set(options) and "--model-id" not in options
    assert "--model" not in texts("/ml evaluate --model dia --")  # given already
    assert {"--name", "--instruction", "--table", "--plan-id", "--dry-run", "--background"} <= \
        set(texts("/ml model --"))
    assert texts("/ml evaluate --model di") == ["diabetes"]
    assert texts("/help pre") == ["predict", "presets"]


def test_run_argv_never_raises(specml_home, capsys):
    assert run_argv(["jobs", "status", "7"]) == 1
    assert "no job 7 (there are no jobs yet" in capsys.readouterr().err
    assert run_argv(["evaluate", "--nmae", "x"]) == 2
    assert "No such option: --nmae" in capsys.readouterr().err
    assert run_argv(["jobs", "list"]) == 0
    assert "no jobs yet" in capsys.readouterr().out
    assert run_line("/exit") == (0, True)
    assert run_line("/ml jobs list") == (0, False)
