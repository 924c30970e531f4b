"""Bad data on the classical path: clean errors with counts, never a traceback or a silent answer."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from specml.classical.errors import ClassicalError
from specml.classical.frame import Features, target_values, to_matrix
from testkit import failed, invoke, ok


def test_infinite_and_too_large_features_are_refused_with_their_count():
    data = pa.table({"a": [1.0, float("inf"), 3.0, 1e300], "b": [1.0, 2.0, float("nan"), 4.0]})
    with pytest.raises(ClassicalError, match=r"column 'a' has 2 infinite or too large value\(s\)"):
        to_matrix(data, Features(["a", "b"], ["a", "b"], []))
    ok = to_matrix(pa.table({"b": [1.0, float("nan")]}), Features(["b"], ["b"], []))  # NaN = missing: allowed
    assert ok.shape == (2, 1)


@pytest.mark.parametrize("column", [pa.array(["x", "y"]), pa.array([[1], [2]])])
def test_a_column_of_the_wrong_type_is_refused_by_name(column):
    with pytest.raises(ClassicalError, match="column 'a' holds"):
        to_matrix(pa.table({"a": column}), Features(["a"], ["a"], []))
    if pa.types.is_list(column.type):
        with pytest.raises(ClassicalError, match="column 'a' holds"):
            to_matrix(pa.table({"a": column}), Features(["a"], [], ["a"]))


def test_null_targets_are_refused_with_their_count():
    col = pa.chunked_array([pa.array([0, None, 1, None])])
    with pytest.raises(ClassicalError, match=r"target 'y' has 2 NULL value\(s\); drop or fill those rows first"):
        target_values(col, estimator_kind="classifier", task=None, name="y")


def test_nan_targets_are_refused_with_their_count():
    col = pa.chunked_array([pa.array([0.0, 1.0, float("nan"), 1.0])])
    with pytest.raises(ClassicalError, match=r"target 'y' has 1 NaN value\(s\); a classifier"):
        target_values(col, estimator_kind="classifier", task=None, name="y")
    with pytest.raises(ClassicalError, match=r"target 'y' has 1 NaN value\(s\)"):
        target_values(col, estimator_kind="regressor", task=None, name="y")


# ----------------------------------------------------------------------------------------------
# through the CLI (issue 15): each of these was a traceback


ESTIMATOR = "estimator: {type: %s, params: {%s}}\ntarget: outcome\ntest_size: 0.2\nrandom_state: 1\n"


@pytest.fixture(scope="module")
def home(pima_home, tmp_path_factory):
    """Pima with a string, an infinite and a list column in place of bmi, a 1-row table, and LogisticRegression
    trained on Pima as 'lr'."""
    from specml.data.workspace import Workspace

    with Workspace(pima_home / "workspace.duckdb") as ws:
        ws.sql("CREATE TABLE pima_str AS SELECT * REPLACE (CAST(bmi AS VARCHAR) || 'x' AS bmi) FROM pima")
        ws.sql("CREATE TABLE pima_inf AS SELECT * REPLACE (CASE WHEN rowid % 50 = 0 THEN 'inf'::DOUBLE "
               "ELSE bmi::DOUBLE END AS bmi) FROM pima")
        ws.sql("CREATE TABLE pima_list AS SELECT * REPLACE ([bmi, bmi] AS bmi) FROM pima")
        ws.sql("CREATE TABLE pima_one AS SELECT * FROM pima LIMIT 1")
    spec = tmp_path_factory.mktemp("specs") / "lr.yaml"
    spec.write_text(ESTIMATOR % ("LogisticRegression", "max_iter: 200"), encoding="utf-8")
    ok(invoke("train-estimator", "-e", spec, "-t", "pima", "-n", "lr", home=pima_home))
    return pima_home


@pytest.mark.parametrize("table, message", [
    ("pima_str", "column 'bmi' holds string values where the model was trained on numbers"),
    ("pima_inf", r"column 'bmi' has 16 infinite or too large value\(s\)"),
    ("pima_list", "column 'bmi' holds list<.*> values where the model was trained on numbers"),
])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_bad_column_at_evaluate_and_predict_is_one_line(home, table, message, command):
    where = ["--output-table", f"out_{table}"] if command == "predict" else []
    assert re.search(message, failed(invoke(command, "--model", "lr", "--table", table, *where, home=home)))


def test_a_null_target_at_evaluate_is_one_line(home):
    from specml.data.workspace import Workspace

    with Workspace(home / "workspace.duckdb") as ws:
        ws.sql("CREATE TABLE pima_null AS SELECT * REPLACE (CASE WHEN rowid % 100 = 0 THEN NULL ELSE outcome END "
               "AS outcome) FROM pima")
    said = failed(invoke("evaluate", "--model", "lr", "--table", "pima_null", home=home))
    assert "target 'outcome' has 8 NULL value(s) in table 'pima_null'" in said


def test_training_on_infinite_values_is_one_line(home, tmp_path):
    spec = tmp_path / "lr.yaml"
    spec.write_text(ESTIMATOR % ("LogisticRegression", ""), encoding="utf-8")
    said = failed(invoke("train-estimator", "-e", spec, "-t", "pima_inf", "-n", "inf", home=home))
    assert "column 'bmi' has 16 infinite or too large value(s)" in said


def test_a_one_row_table_trains_nothing_and_is_scored(home, tmp_path):
    spec = tmp_path / "lr.yaml"
    spec.write_text(ESTIMATOR % ("LogisticRegression", ""), encoding="utf-8")
    assert "nothing to classify" in failed(invoke("train-estimator", "-e", spec, "-t", "pima_one", "-n", "one",
                                                  home=home))
    assert "(1 rows, binary)" in ok(invoke("evaluate", "--model", "lr", "--table", "pima_one", home=home)).stdout
    ok(invoke("predict", "--model", "lr", "--table", "pima_one", "--output-table", "one_scored", home=home))


@pytest.mark.parametrize("estimator, message", [
    ("LGBMClassifier", "fitting LGBMClassifier failed: Unknown objective type name: nonsense"),
    ("XGBClassifier", "fitting XGBClassifier failed: Unknown objective function: `nonsense` (known: binary:hinge"),
])
def test_an_unknown_gbm_objective_is_one_line(home, tmp_path, estimator, message):
    spec = tmp_path / "gbm.yaml"
    spec.write_text(ESTIMATOR % (estimator, "objective: nonsense, n_estimators: 3, n_jobs: 1"), encoding="utf-8")
    said = failed(invoke("train-estimator", "-e", spec, "-t", "pima", "-n", "gbm", home=home))
    assert message in said and "Stack trace" not in said and len(said.splitlines()) == 1


def test_classical_evaluation_figures_stay_home_whatever_the_table_is_called(home):
    from specml.data.workspace import Workspace

    with Workspace(home / "workspace.duckdb") as ws:
        ws.sql('CREATE TABLE "../../../outside/x" AS SELECT * FROM pima LIMIT 100')
    ok(invoke("evaluate", "--model", "lr", "--table", "../../../outside/x", home=home))
    assert not (home.parent / "outside").exists() and not (home.parent.parent / "outside").exists()
    assert list(home.glob("runs/*/figures/evaluate__.._.._outside_x/*.png"))
