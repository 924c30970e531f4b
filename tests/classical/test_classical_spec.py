"""The estimator spec: seed 003's keys, the allow-list, params checked against the class, JSON Schema."""

from __future__ import annotations

import jsonschema
import pytest

from specml.spec import SpecError, load_spec
from specml.spec.load import load_estimator_spec
from specml.spec.schema import json_schema
from specml.spec.yaml_io import parse_yaml
from testkit import ROOT

EXAMPLES = sorted((ROOT / "examples" / "classical").glob("*.yaml"))

SEED_003 = """
estimator: {type: RandomForestClassifier, params: {n_estimators: 10}}
target: outcome
test_size: 0.2
validation_size: 0.1
stratify: true  # For classification
shuffle: true
random_state: 42
cross_validation:
  enabled: false
  folds: 5
  strategy: "stratified"  # kfold, stratified, timeseries
imbalance_handling:
  auto_detect: true
  method: "class_weight"  # smote, undersample, oversample, class_weight
early_stopping:
  enabled: true  # For gradient boosting models
  rounds: 50
save_model: true
save_path: "models/"
verbose: 1
"""


def _write(tmp_path, text: str):
    path = tmp_path / "e.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _issues(tmp_path, text: str):
    with pytest.raises(SpecError) as info:
        load_spec(_write(tmp_path, text))
    return info.value.issues


def test_examples_load_as_estimator_specs():
    assert len(EXAMPLES) >= 3
    for path in EXAMPLES:
        spec = load_spec(path)
        assert spec.kind == "estimator" and spec.model is None and spec.trainer is None
        assert spec.estimator.target == "outcome"


def test_seed_003_configuration_is_accepted_verbatim(tmp_path):
    spec = load_estimator_spec(_write(tmp_path, SEED_003))
    assert spec.cross_validation.strategy == "stratified" and spec.early_stopping.rounds == 50
    assert spec.imbalance_handling.method == "class_weight" and spec.level == 1


def test_defaults_are_seed_003s(tmp_path):
    spec = load_estimator_spec(_write(tmp_path, "estimator: {type: LogisticRegression}\ntarget: y\n"))
    assert (spec.test_size, spec.validation_size, spec.stratify, spec.shuffle, spec.random_state) == \
        (0.2, 0.1, True, True, 42)
    assert spec.cross_validation.enabled is False and spec.cross_validation.folds == 5
    assert spec.imbalance_handling.auto_detect is True and spec.early_stopping.enabled is True


def test_param_typo_gets_did_you_mean_with_line(tmp_path):
    issues = _issues(tmp_path, "target: y\nestimator:\n  type: xgboost.XGBClassifier\n  params:\n"
                               "    n_estimator: 10\n    max_depht: 3\n")
    by_path = {i.path: i for i in issues}
    assert by_path["estimator.params.n_estimator"].hint == "did you mean 'n_estimators'?"
    assert by_path["estimator.params.n_estimator"].line == 5
    assert by_path["estimator.params.max_depht"].hint == "did you mean 'max_depth'?"


@pytest.mark.parametrize("typed, expected", [
    ("RandomForestClasifier", "RandomForestClassifier"),
    ("lightgbm.LGBMClasifier", "lightgbm.LGBMClassifier"),
    ("sklearn.linear_model.LogisticRegresion", "LogisticRegression"),
])
def test_unknown_type_gets_did_you_mean(tmp_path, typed, expected):
    (issue,) = _issues(tmp_path, f"target: y\nestimator:\n  type: {typed}\n")
    assert issue.path == "estimator.type" and issue.line == 3
    assert "is not allowed" in issue.message and expected in issue.hint


def test_anything_outside_the_allow_list_is_refused(tmp_path):
    for typed in ("os.system", "sklearn.ensemble.StackingClassifier", "sklearn.preprocessing.StandardScaler"):
        (issue,) = _issues(tmp_path, f"target: y\nestimator: {{type: {typed}}}\n")
        assert issue.path == "estimator.type" and "not allowed" in issue.message


def test_type_names_resolve_in_every_accepted_form():
    from specml.spec.estimator import resolve_estimator

    assert resolve_estimator("RandomForestClassifier").name == "sklearn.ensemble.RandomForestClassifier"
    assert resolve_estimator("sklearn.ensemble.RandomForestClassifier").family == "sklearn"
    assert resolve_estimator("sklearn.linear_model._logistic.LogisticRegression").cls_name == "LogisticRegression"
    assert resolve_estimator("XGBRegressor").name == "xgboost.XGBRegressor"
    assert resolve_estimator("lightgbm.LGBMRegressor").kind == "regressor"


def test_unknown_keys_and_bad_values(tmp_path):
    issues = _issues(tmp_path, "target: y\nestimator: {type: Ridge}\ncross_validaton: {folds: 3}\n"
                               "imbalance_handling: {method: smot}\ntest_size: 0.6\nvalidation_size: 0.5\n")
    text = "\n".join(str(i) for i in issues)
    assert "unknown key 'cross_validaton'" in text and "did you mean 'cross_validation'?" in text
    assert "imbalance_handling.method" in text and "did you mean 'smote'?" in text


def test_split_sizes_must_leave_training_rows(tmp_path):
    (issue,) = _issues(tmp_path, "target: y\nestimator: {type: Ridge}\ntest_size: 0.6\nvalidation_size: 0.5\n")
    assert "test_size + validation_size must be below 1" in issue.message


def test_task_must_fit_the_estimator(tmp_path):
    (issue,) = _issues(tmp_path, "target: y\nestimator: {type: Ridge}\ntask: binary\n")
    assert issue.path == "task" and "regressor" in issue.message


def test_missing_catboost_is_a_clear_error(tmp_path):
    try:
        import catboost  # noqa: F401
    except ImportError:
        (issue,) = _issues(tmp_path, "target: y\nestimator: {type: catboost.CatBoostClassifier}\n")
        assert "specml[catboost]" in (issue.hint or "")
    else:
        issues = _issues(tmp_path, "target: y\nestimator:\n  type: catboost.CatBoostClassifier\n"
                                   "  params: {iterations: 10, depht: 3}\n")
        assert [i.hint for i in issues] == ["did you mean 'depth'?"]


def test_json_schema_is_valid_and_accepts_the_examples():
    schema = json_schema("estimator")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        data, _ = parse_yaml(path.read_text(encoding="utf-8"))
        assert list(validator.iter_errors(data)) == []
    assert list(validator.iter_errors({"target": "y"}))  # estimator is required


def test_catboost_not_installed_says_which_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "catboost", None)  # `import catboost` now fails
    (issue,) = _issues(tmp_path, "target: y\nestimator: {type: catboost.CatBoostRegressor}\n")
    assert issue.path == "estimator.type" and "not installed" in issue.message
    assert issue.hint == "install specml[catboost]"
