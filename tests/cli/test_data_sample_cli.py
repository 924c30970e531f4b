"""``specml data sample`` and ``specml data collatz``, run in this process (typer's ``CliRunner``)."""

from __future__ import annotations

import re
from pathlib import Path

import testkit
from testkit import invoke, ok


def run(home: Path, *args: str):
    return invoke(*args, home=home)


def failed(result) -> str:
    return testkit.failed(result, prefix="error: ")


def workspace(home: Path):
    from specml.data.workspace import Workspace

    return Workspace(home / "workspace.duckdb")


def test_help_lists_the_commands_and_the_datasets(tmp_path):
    out = ok(run(tmp_path, "data", "--help")).stdout
    assert re.search(r"^\W*sample\s", out, re.MULTILINE) and re.search(r"^\W*collatz\s", out, re.MULTILINE)
    out = ok(run(tmp_path, "data", "sample", "--help")).stdout
    for name in ("pima_categorical", "wine", "digits", "diabetes", "linnerud", "breast_cancer", "iris"):
        assert f"* {name}:" in out, out


def test_sample_loads_a_table_and_refuses_to_overwrite(tmp_path):
    out = ok(run(tmp_path, "data", "sample", "wine")).stdout
    assert "loaded 178 rows, 14 columns of 'wine' into table 'wine'" in out
    ok(run(tmp_path, "data", "sample", "pima_categorical", "--table", "pc"))
    with workspace(tmp_path) as ws:
        assert ws.row_count("wine") == 178
        assert ws.columns("pc")["bmi_class"] == "VARCHAR"
    err = failed(run(tmp_path, "data", "sample", "wine"))
    assert "table 'wine' already exists (pass --replace to overwrite)" in err
    ok(run(tmp_path, "data", "sample", "wine", "--replace"))


def test_sample_unknown_name_says_did_you_mean(tmp_path):
    err = failed(run(tmp_path, "data", "sample", "diabets"))
    assert "unknown dataset 'diabets' (did you mean 'diabetes'?)" in err
    assert "breast_cancer" in err  # lists what there is


def test_loading_a_bundled_file_by_name_points_to_data_sample(tmp_path):
    """The old README's first line: the CSV is only inside the package; the error says how to load it."""
    err = failed(invoke("data", "load", "pima_diabetes.csv", "--table", "pima", home=tmp_path, cwd=tmp_path))
    assert "file not found: pima_diabetes.csv" in err and "specml data sample pima" in err


def test_collatz_writes_disjoint_train_and_test_tables(tmp_path):
    out = ok(run(tmp_path, "data", "collatz", "--train", "500", "--test", "100", "--seed", "4",
                 "--max-n", "100000")).stdout
    assert "wrote 500 rows to 'collatz_train' and 100 rows to 'collatz_test'" in out
    assert "pad token 24" in out
    with workspace(tmp_path) as ws:
        assert ws.columns("collatz_test") == {"n": "BIGINT", "n_digits": "INTEGER[]", "kappa": "BIGINT",
                                              "kappa_digits": "INTEGER[]"}
        shared = ws.sql("SELECT count(*) AS c FROM collatz_train JOIN collatz_test USING (n)").column("c")
        assert shared[0].as_py() == 0
        row = ws.sql("SELECT n, n_digits, kappa FROM collatz_train WHERE n = 27").to_pylist()
        rows = ws.sql("SELECT max(n) AS hi, min(n % 2) AS odd, max(list_max(n_digits)) AS top FROM collatz_train")
        assert rows.to_pylist() == [{"hi": rows.column("hi")[0].as_py(), "odd": 1, "top": 23}]
        assert rows.column("hi")[0].as_py() <= 100000
        if row:
            assert row[0]["kappa"] == 31 and row[0]["n_digits"] == [3, 1]
    err = failed(run(tmp_path, "data", "collatz", "--train", "10", "--test", "5"))
    assert "already exists" in err
    ok(run(tmp_path, "data", "collatz", "--train", "10", "--test", "5", "--replace", "--table-prefix", "c2",
           "--order", "msb"))
    with workspace(tmp_path) as ws:
        assert ws.row_count("c2_train") == 10 and ws.row_count("c2_test") == 5


def test_collatz_bad_options(tmp_path):
    assert "did you mean 'lsb'" in failed(run(tmp_path, "data", "collatz", "--order", "lbs"))
    assert "--max-n" in failed(run(tmp_path, "data", "collatz", "--max-n", str(10**13)))
    assert "holds 5" in failed(run(tmp_path, "data", "collatz", "--train", "5", "--test", "1", "--max-n", "10"))
