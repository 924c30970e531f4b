"""``specml data ...`` and ``specml sql``, run in this process (typer's ``CliRunner``).

Each test gets its own specml home (``SPECML_HOME=tmp_path``), so the default workspace is
``tmp_path/workspace.duckdb``; exit codes, stdout and stderr are read as a user would see them. The
import-time check of ``--help`` runs the installed console script in a subprocess.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

import testkit
from testkit import PIMA, invoke, ok, specml_env


def run(home: Path, *args: str | Path, env: dict | None = None):
    """``specml ARGS`` in this process with ``SPECML_HOME=home``; ``env``: variables to set for the call."""
    return invoke(*args, home=home, env=env)


def failed(result, code: int = 1) -> str:
    return testkit.failed(result, code, prefix="error: ")


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path


def preload(home: Path, source: Path, table: str) -> None:
    """Load a table into the default workspace in this process (faster than the CLI; closed before it runs)."""
    from specml.data.workspace import Workspace

    with Workspace(home / "workspace.duckdb") as ws:
        ws.load(source, table)


@pytest.fixture
def small(home) -> Path:
    """A workspace table 'small' (id, name, score with a null)."""
    path = home / "small.csv"
    path.write_text("id,name,score\n1,ann,0.5\n2,bob,\n3,cy,2.25\n4,bob,1.0\n")
    preload(home, path, "small")
    return path


@pytest.fixture
def pima(home) -> Path:
    preload(home, PIMA, "pima")
    return PIMA


def test_data_commands_are_listed(home):
    result = ok(run(home, "data", "--help"))
    for command in ("load", "tables", "describe", "split"):
        assert re.search(rf"^\W*{command}\s", result.stdout, re.M), result.stdout


def test_help_lists_data_and_sql_without_importing_duckdb_or_pyarrow(home):
    result = testkit.specml(home, "--help", env=specml_env(home, PYTHONPROFILEIMPORTTIME="1"))  # a fresh process
    assert result.returncode == 0, result.stderr
    assert re.search(r"^\W*data\s", result.stdout, re.M) and re.search(r"^\W*sql\s", result.stdout, re.M)
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "specml.cli.data" in imported, "the import-time log did not record the data CLI module"
    heavy = [m for m in imported if m.split(".")[0] in ("duckdb", "_duckdb", "pyarrow", "torch", "sklearn")]
    assert not heavy, heavy[:5]


def test_load_tables_describe(home, small):
    result = ok(testkit.specml(home, "data", "load", small, "--table", "again"))  # the console script, end to end
    assert re.search(r"loaded 4 rows, 3 columns from .*small\.csv into table 'again'", result.stdout), result.stdout
    assert (home / "workspace.duckdb").exists()  # the default workspace under SPECML_HOME

    out = ok(run(home, "data", "tables")).stdout
    assert re.search(r"│ again\s+│\s+4 │\s+3 │", out), out
    assert re.search(r"│ small\s+│\s+4 │\s+3 │", out), out

    out = ok(run(home, "data", "describe", "small")).stdout
    assert "small: 4 rows, 3 columns" in out
    assert re.search(r"│ id\s+│ BIGINT\s+│\s+0 │\s+4 │\s+1 │\s+4 │", out), out
    assert re.search(r"│ name\s+│ VARCHAR\s+│\s+0 │\s+3 │\s+ann │\s+cy │", out), out
    assert re.search(r"│ score\s+│ DOUBLE\s+│\s+1 │\s+3 │\s+0\.5 │\s+2\.25 │", out), out


def test_tables_on_an_empty_workspace(home):
    out = ok(run(home, "data", "tables")).stdout
    assert "no tables" in out


def test_load_errors(home, small):
    err = failed(run(home, "data", "load", home / "missing.csv", "--table", "t"))
    assert "file not found" in err and "missing.csv" in err
    err = failed(run(home, "data", "load", small, "--table", "small"))
    assert "already exists" in err and "--replace" in err
    (home / "bigger.csv").write_text("id\n7\n8\n9\n")
    out = ok(run(home, "data", "load", home / "bigger.csv", "--table", "small", "--replace")).stdout
    assert "loaded 3 rows, 1 columns" in out
    err = failed(run(home, "data", "load", str(home / "nothing*.csv"), "--table", "t"))
    assert "no files match" in err


def test_load_a_glob(home):
    (home / "p1.csv").write_text("a,b\n1,2\n")
    (home / "p2.csv").write_text("a,b\n3,4\n5,6\n")
    out = ok(run(home, "data", "load", str(home / "p*.csv"), "--table", "parts")).stdout
    assert "loaded 3 rows, 2 columns" in out


def test_describe_missing_table_suggests(home, small):
    err = failed(run(home, "data", "describe", "smal"))
    assert "table 'smal' not found (did you mean 'small'?)" in err


def test_sql_table_json_csv(home, small):
    out = ok(run(home, "sql", "SELECT id, name, score FROM small ORDER BY id")).stdout
    assert re.search(r"│\s+2 │ bob\s+│\s+NULL │", out), out
    assert "4 rows" in out

    data = json.loads(ok(run(home, "sql", "SELECT id, name, score FROM small ORDER BY id", "--json")).stdout)
    assert data == [{"id": 1, "name": "ann", "score": 0.5}, {"id": 2, "name": "bob", "score": None},
                    {"id": 3, "name": "cy", "score": 2.25}, {"id": 4, "name": "bob", "score": 1.0}]

    text = ok(run(home, "sql", "SELECT id, name, 'a,b' AS tricky FROM small ORDER BY id", "--csv")).stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0] == {"id": "1", "name": "ann", "tricky": "a,b"}
    assert len(parsed) == 4

    data = json.loads(ok(run(home, "sql", "SELECT DATE '2024-03-01' AS d, 'nan'::DOUBLE AS x, [1, 2] AS l",
                             "--json")).stdout)
    assert data == [{"d": "2024-03-01", "x": None, "l": [1, 2]}]


def test_sql_limit(home):
    out = ok(run(home, "sql", "SELECT range AS n FROM range(120)")).stdout
    body = [line for line in out.splitlines() if re.match(r"^│\s+\d+ │$", line)]
    assert len(body) == 50 and body[-1].split()[1] == "49"
    assert "120 rows, showing the first 50" in out
    out = ok(run(home, "sql", "SELECT range AS n FROM range(120)", "--limit", "5")).stdout
    assert len([line for line in out.splitlines() if re.match(r"^│\s+\d+ │$", line)]) == 5
    assert len(json.loads(ok(run(home, "sql", "SELECT range FROM range(120)", "--json")).stdout)) == 120


def test_sql_errors(home, small):
    err = failed(run(home, "sql", "SELECT * FROM smal"))
    assert "Catalog Error" in err and "smal" in err
    err = failed(run(home, "sql", "SELEC 1"))
    assert "syntax error" in err
    err = failed(run(home, "sql", "SELECT 1", "--json", "--csv"), code=2)
    assert "cannot be used together" in err


def test_sql_markup_is_not_interpreted(home):
    out = ok(run(home, "sql", "SELECT '[bold]x[/bold]' AS \"[red]c\"")).stdout
    assert "[bold]x[/bold]" in out and "[red]c" in out


def test_workspace_option_and_envvar(home, tmp_path):
    (home / "t.csv").write_text("a\n1\n2\n")
    elsewhere = tmp_path / "other" / "w.duckdb"
    ok(run(home, "data", "load", home / "t.csv", "--table", "t", "--workspace", elsewhere))
    assert elsewhere.exists() and not (home / "workspace.duckdb").exists()
    data = json.loads(ok(run(home, "sql", "SELECT count(*) AS n FROM t", "--json", "--workspace", elsewhere)).stdout)
    assert data == [{"n": 2}]
    result = run(home, "data", "tables", env={"SPECML_WORKSPACE": str(elsewhere)})
    assert re.search(r"│ t\s+│\s+2 │", ok(result).stdout)
    failed(run(home, "data", "describe", "t"))  # the default workspace does not have it


def test_split_stratified(home, pima):
    out = ok(run(home, "data", "split", "pima", "--test-size", "0.2", "--stratify", "outcome", "--seed", "1")).stdout
    assert re.search(r"train: 'pima_train' 614 rows", out), out
    assert re.search(r"test:\s+'pima_test' 154 rows", out), out
    assert re.search(r"│ 0\s+│\s+400 \(65\.1%\) │\s+100 \(64\.9%\) │", out), out
    assert re.search(r"│ 1\s+│\s+214 \(34\.9%\) │\s+54 \(35\.1%\) │", out), out

    err = failed(run(home, "data", "split", "pima", "--stratify", "outcome"))
    assert "already exists" in err
    out = ok(run(home, "data", "split", "pima", "--time-column", "age", "--replace", "--test-size", "0.25")).stdout
    assert "'pima_train' 576 rows" in out and "'pima_test' 192 rows" in out
    data = json.loads(ok(run(home, "sql", "SELECT (SELECT max(age) FROM pima_train) AS tr_max, "
                                          "(SELECT min(age) FROM pima_test) AS te_min, "
                                          "(SELECT count(*) FROM pima_test) AS te_n", "--json")).stdout)
    assert data[0]["tr_max"] <= data[0]["te_min"] and data[0]["te_n"] == 192


def test_split_errors(home, small):
    err = failed(run(home, "data", "split", "small", "--stratify", "name", "--time-column", "id"))
    assert "cannot be used together" in err
    err = failed(run(home, "data", "split", "small", "--stratify", "nme"))
    assert "did you mean 'name'?" in err
