"""specml.spec.metrics: the one metrics catalogue, and every path that reads it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from specml.spec import metrics as catalogue
from specml.spec.metrics import (
    CATALOGUE,
    HIGHER_IS_BETTER,
    METRICS,
    check_monitor,
    main_metric,
    metric_of,
    metrics_for,
    mode_of,
    with_monitored,
)


def test_the_catalogue_is_consistent():
    assert set(HIGHER_IS_BETTER) == {*METRICS, "loss"}
    for task, entry in CATALOGUE.items():
        assert set(entry.default) <= set(entry.allowed), task
        assert entry.main in entry.allowed and set(entry.compiled) <= set(entry.allowed), task


def test_the_engine_reads_the_catalogue():
    from specml.train import metrics as engine_metrics

    assert engine_metrics.ALLOWED is catalogue.ALLOWED
    assert engine_metrics.HIGHER_IS_BETTER is catalogue.HIGHER_IS_BETTER
    assert engine_metrics.metrics_for is catalogue.metrics_for
    assert engine_metrics.TASKS == tuple(CATALOGUE)


def test_the_trainer_spec_reads_the_catalogue():
    from specml.spec.trainer import METRICS as spec_metrics
    from specml.spec.trainer import TrainerConfig

    assert spec_metrics is METRICS
    assert ", ".join(METRICS) in TrainerConfig.model_fields["metrics"].description


def test_the_classical_path_ranks_by_the_main_metric():
    from specml.classical.score import MAIN_METRIC

    assert MAIN_METRIC == {t: main_metric(t) for t in ("binary", "multiclass", "regression")}
    assert MAIN_METRIC["regression"] == ("rmse", False)


def test_estimator_scoring_is_checked_against_the_catalogue():
    from specml.spec import SpecError, load_spec

    spec = {"estimator": {"type": "LogisticRegression"}, "target": "y", "task": "binary",
            "cross_validation": {"enabled": True, "scoring": "rmse"}}
    with pytest.raises(SpecError, match="'rmse' is not a binary metric"):
        load_spec(spec)


def test_the_compiler_and_the_planner_read_the_catalogue():
    import specml.compile.build as build
    import specml.compile.plan as plan

    assert not hasattr(build, "METRICS") and not hasattr(plan, "METRIC")  # no private copies left
    assert CATALOGUE["multiclass"].compiled == ("accuracy", "f1")


@pytest.mark.parametrize(("key", "metric", "mode"), [("val_auc", "auc", "max"), ("train_loss", "loss", "min"),
                                                     ("val_diabetes_pr_auc", "pr_auc", "max"),
                                                     ("val_bmi_rmse", "rmse", "min"), ("val_log_loss", "log_loss",
                                                                                       "min")])
def test_monitor_keys(key, metric, mode):
    assert metric_of(key) == metric and mode_of(key) == mode and check_monitor(key) is None


def test_metrics_for_checks_and_defaults():
    assert metrics_for("binary", None) == ["accuracy", "auc"]
    assert metrics_for("regression", ["r2", "r2", "mae"]) == ["r2", "mae"]
    with pytest.raises(ValueError, match="does not apply to a regression task"):
        metrics_for("regression", ["auc"])
    with pytest.raises(ValueError, match="did you mean 'accuracy'"):
        metrics_for("binary", ["acuracy"])
    with pytest.raises(ValueError, match="unknown task 'binry'"):
        metrics_for("binry", None)


def test_with_monitored_adds_what_a_monitor_watches():
    assert with_monitored("binary", None, ["val_f1", None]) == ["accuracy", "auc", "f1"]
    assert with_monitored("binary", ["auc"], ["val_rmse"]) == ["auc"]  # not a binary metric: left to the engine
    assert with_monitored("binary", ["nope"], ["val_f1"]) == ["nope"]  # invalid: the engine says so


def test_the_catalogue_imports_neither_torch_nor_sklearn():
    code = ("import sys, specml.spec.metrics, specml.data.task, specml.data.split; "
            "print('torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
