"""The trainer spec (seed 001, Trainer Spec v1.0 §2, §3, §5, §7) through the public loader.

Every test loads a real spec with ``specml.spec.load_trainer_spec`` / ``load_spec`` (torch checks
on, no mocks) and looks at the canonical result or at the :class:`SpecError` issues it raises.
"""

from __future__ import annotations

import copy
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from specml.spec import SpecError, SpecWarning, TrainerSpec, load_spec, load_trainer_spec
from testkit import ROOT

torch.set_num_threads(1)

SEED001 = ROOT / "tests" / "fixtures" / "seed001"
SEED001_FILES = sorted(SEED001.glob("*.yaml"))


# ----------------------------------------------------------------------------------------------
# helpers


def base_spec(**config: Any) -> dict:
    """A minimal valid trainer spec (seed 001 §4.4 shape), with ``config`` entries overridden."""
    spec = {
        "model_ref": "prototype-model-v1",
        "optimizer": {"type": "torch.optim.Adam", "lr": 0.01},
        "config": {"epochs": 5, "batch_size": 128, "validation_split": 0.2, "shuffle": True},
    }
    spec["config"].update(config)
    return spec


def with_value(spec: dict, dotted: str, value: Any) -> dict:
    """A copy of ``spec`` with ``value`` written at ``a.b.c`` (containers created as needed)."""
    out = copy.deepcopy(spec)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def load_quietly(source: Any) -> TrainerSpec:
    """Load a spec that must not warn: any SpecWarning becomes a test failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        return load_trainer_spec(source)


def issues_of(source: Any) -> list:
    with pytest.raises(SpecError) as info:
        load_trainer_spec(source)
    assert info.value.issues, "a SpecError must carry at least one issue"
    return info.value.issues


def issue_at(source: Any, path: str):
    """The issue reported at ``path``; fails listing what was reported instead."""
    issues = issues_of(source)
    found = [i for i in issues if i.path == path]
    assert found, f"no issue at {path!r}; got {[(i.path, i.message) for i in issues]}"
    return found[0]


def write(tmp_path: Path, text: str, name: str = "trainer.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# §5.2 / §5.3 rules: one valid and one invalid value per rule

VALID_VALUES = [
    ("optimizer.lr", 0.001),
    ("optimizer.lr", 1e-8),
    ("optimizer.lr", 2),
    ("config.epochs", 1),
    ("config.epochs", 500),
    ("config.batch_size", 1),
    ("config.batch_size", 4096),
    ("config.validation_split", 0.0),
    ("config.validation_split", 0.2),
    ("config.validation_split", 0.99),
    ("config.device", "auto"),
    ("config.device", "cpu"),
    ("config.device", "cuda"),
    ("config.device", "mps"),
    ("config.early_stopping_patience", 3),
    ("config.early_stopping_patience", None),
    ("config.early_stopping_mode", "min"),
    ("config.early_stopping_mode", "max"),
    ("config.gradient_clip_val", 0.5),
    ("config.gradient_clip_norm", 1.0),
    ("config.accumulate_grad_batches", 1),
    ("config.accumulate_grad_batches", 8),
]

INVALID_VALUES = [
    ("optimizer.lr", 0),
    ("optimizer.lr", -0.001),
    ("optimizer.lr", "fast"),
    ("config.epochs", 0),
    ("config.epochs", -5),
    ("config.epochs", 2.5),
    ("config.epochs", "many"),
    ("config.batch_size", 0),
    ("config.batch_size", -32),
    ("config.batch_size", 16.5),
    ("config.validation_split", 1.0),
    ("config.validation_split", -0.1),
    ("config.validation_split", 1.5),
    ("config.device", "gpu"),
    ("config.device", "CUDA:0"),
    ("config.early_stopping_patience", 0),
    ("config.early_stopping_patience", -1),
    ("config.early_stopping_patience", 2.5),
    ("config.early_stopping_mode", "maximum"),
    ("config.early_stopping_mode", "auto"),
    ("config.gradient_clip_val", 0),
    ("config.gradient_clip_val", -1.0),
    ("config.gradient_clip_norm", 0.0),
    ("config.gradient_clip_norm", -0.5),
    ("config.accumulate_grad_batches", 0),
    ("config.accumulate_grad_batches", -2),
    ("config.accumulate_grad_batches", 1.5),
]


@pytest.mark.parametrize(("path", "value"), VALID_VALUES, ids=[f"{p}={v!r}" for p, v in VALID_VALUES])
def test_rule_accepts_valid_value(path, value):
    spec = load_quietly(with_value(base_spec(), path, value))
    section, field = path.split(".")
    assert getattr(getattr(spec, section), field) == value


@pytest.mark.parametrize(("path", "value"), INVALID_VALUES, ids=[f"{p}={v!r}" for p, v in INVALID_VALUES])
def test_rule_rejects_invalid_value(path, value):
    issues = issues_of(with_value(base_spec(), path, value))
    assert [i.path for i in issues] == [path]
    assert issues[0].message


# YAML 1.1 reads `yes`/`on`/`true` as booleans; a boolean is not a count, a size or a rate.
BOOLEAN_VALUES = [
    "config.epochs",
    "config.batch_size",
    "config.early_stopping_patience",
    "config.accumulate_grad_batches",
    "optimizer.lr",
    "config.gradient_clip_norm",
]


@pytest.mark.parametrize("path", BOOLEAN_VALUES)
def test_boolean_is_not_a_number(path):
    issue_at(with_value(base_spec(), path, True), path)


def test_boolean_epochs_from_yaml_yes_is_rejected(tmp_path):
    path = write(tmp_path, """
        optimizer: {type: torch.optim.Adam, lr: 0.01}
        config:
          epochs: yes
          batch_size: 32
    """)
    issue = issue_at(path, "config.epochs")
    assert issue.line == 3


@pytest.mark.parametrize(
    ("path", "value", "hint"),
    [
        ("config.device", "cdua", "did you mean 'cuda'?"),
        ("config.device", "cpuu", "did you mean 'cpu'?"),
        ("config.early_stopping_mode", "mx", "did you mean 'max'?"),
    ],
)
def test_enum_typo_gets_did_you_mean(path, value, hint):
    issue = issue_at(with_value(base_spec(), path, value), path)
    assert issue.hint == hint
    assert repr(value) in issue.message


def test_all_config_problems_are_reported_at_once():
    spec = base_spec(epochs=0, batch_size=-1, device="gpu", validation_split=1.0)
    paths = {i.path for i in issues_of(spec)}
    assert paths == {"config.epochs", "config.batch_size", "config.device", "config.validation_split"}


@pytest.mark.parametrize("missing", ["config.epochs", "config.batch_size", "optimizer.lr", "optimizer.type"])
def test_required_fields(missing):
    spec = base_spec()
    section, field = missing.split(".")
    del spec[section][field]
    issue = issue_at(spec, missing)
    assert "missing" in issue.message


# ----------------------------------------------------------------------------------------------
# §5.2 optimizer: a real torch.optim class, params its constructor accepts


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("torch.optim.Adam", "torch.optim.Adam"),
        ("Adam", "torch.optim.Adam"),
        ("adam", "torch.optim.Adam"),
        ("torch.optim.SGD", "torch.optim.SGD"),
        ("sgd", "torch.optim.SGD"),
        ("AdamW", "torch.optim.AdamW"),
        ("torch.optim.RMSprop", "torch.optim.RMSprop"),
        ("rmsprop", "torch.optim.RMSprop"),
        ("torch.optim.Adagrad", "torch.optim.Adagrad"),
        ("Adamw", "torch.optim.AdamW"),
        ("RMSProp", "torch.optim.RMSprop"),
    ],
)
def test_optimizer_type_resolves_and_is_canonicalized(written, canonical):
    spec = load_quietly(with_value(base_spec(), "optimizer.type", written))
    assert spec.optimizer.type == canonical


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("torch.optim.Adamm", "torch.optim.Adam"),
        ("Adamm", "torch.optim.Adam"),
        ("torch.optim.SDG", "torch.optim.SGD"),
        ("torch.optim.RMSpro", "torch.optim.RMSprop"),
    ],
)
def test_optimizer_type_typo_gets_did_you_mean(written, suggested):
    spec = with_value(base_spec(), "optimizer.type", written)
    issue = issue_at(spec, "optimizer.type")
    assert written in issue.message
    assert issue.hint == f"did you mean '{suggested}'?"


@pytest.mark.parametrize("written", ["torch.nn.Linear", "torch.optim.Optimizer", "os.system", "Optimizer"])
def test_optimizer_type_must_be_a_torch_optimizer(written):
    issue = issue_at(with_value(base_spec(), "optimizer.type", written), "optimizer.type")
    assert "not a torch.optim optimizer" in issue.message


def test_optimizer_params_accepted_by_constructor():
    spec = load_quietly(
        with_value(
            with_value(base_spec(), "optimizer.type", "torch.optim.SGD"),
            "optimizer.params",
            {"momentum": 0.9, "weight_decay": 1e-4, "nesterov": True},
        )
    )
    assert spec.optimizer.params == {"momentum": 0.9, "weight_decay": 1e-4, "nesterov": True}


def test_optimizer_unknown_param_is_error_with_did_you_mean():
    spec = with_value(base_spec(), "optimizer.type", "torch.optim.SGD")
    spec = with_value(spec, "optimizer.params", {"momentun": 0.9})
    issue = issue_at(spec, "optimizer.params.momentun")
    assert issue.hint == "did you mean 'momentum'?"
    assert "momentun" in issue.message


@pytest.mark.parametrize(
    ("opt_type", "params"),
    [
        ("torch.optim.Adam", {"betas": [0.9]}),
        ("torch.optim.Adam", {"betas": [0.9, 1.5]}),
        ("torch.optim.Adam", {"eps": -1.0}),
        ("torch.optim.SGD", {"momentum": -0.5}),
        ("torch.optim.SGD", {"nesterov": True}),  # nesterov needs momentum > 0
    ],
)
def test_optimizer_bad_param_value_is_error_at_params(opt_type, params):
    spec = with_value(with_value(base_spec(), "optimizer.type", opt_type), "optimizer.params", params)
    issue = issue_at(spec, "optimizer.params")
    assert opt_type in issue.message


def test_optimizer_good_betas_accepted():
    spec = load_quietly(with_value(base_spec(), "optimizer.params", {"betas": [0.8, 0.99]}))
    assert list(spec.optimizer.params["betas"]) == [0.8, 0.99]


def test_lr_inside_params_is_moved_to_optimizer_lr():
    spec = base_spec()
    del spec["optimizer"]["lr"]
    spec["optimizer"]["params"] = {"lr": 0.005, "weight_decay": 0.01}
    loaded = load_quietly(spec)
    assert loaded.optimizer.lr == 0.005
    assert loaded.optimizer.params == {"weight_decay": 0.01}


# ----------------------------------------------------------------------------------------------
# §3 defaults

DEFAULTS = [
    ("early_stopping_min_delta", 0.001),
    ("early_stopping_monitor", "val_loss"),
    ("early_stopping_mode", "min"),
    ("early_stopping_patience", None),
    ("device", "auto"),
    ("num_workers", 0),
    ("pin_memory", False),
    ("log_every", 10),
    ("verbose", True),
    ("accumulate_grad_batches", 1),
    ("gradient_clip_val", None),
    ("gradient_clip_norm", None),
    ("seed", None),
]


@pytest.mark.parametrize(("field", "default"), DEFAULTS, ids=[f for f, _ in DEFAULTS])
def test_config_default(field, default):
    spec = base_spec()
    spec["config"] = {"epochs": 5, "batch_size": 128}
    loaded = load_quietly(spec)
    assert getattr(loaded.config, field) == default
    assert type(getattr(loaded.config, field)) is type(default)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("early_stopping_min_delta", 0.0001),
        ("early_stopping_monitor", "val_accuracy"),
        ("early_stopping_mode", "max"),
        ("device", "cpu"),
        ("num_workers", 4),
        ("pin_memory", True),
        ("log_every", 50),
        ("verbose", False),
        ("accumulate_grad_batches", 4),
    ],
)
def test_config_default_is_overridden_when_written(field, value):
    assert getattr(load_quietly(base_spec(**{field: value})).config, field) == value


def test_optimizer_params_and_scheduler_default_to_empty():
    loaded = load_quietly(base_spec())
    assert loaded.optimizer.params == {}
    assert loaded.scheduler is None


# ----------------------------------------------------------------------------------------------
# unknown keys anywhere are errors with a did-you-mean


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("modle_ref", "did you mean 'model_ref'?"),
        ("schedular", "did you mean 'scheduler'?"),
        ("optimizer.lrr", "did you mean 'lr'?"),
        ("optimizer.parms", "did you mean 'params'?"),
        ("config.early_stoping_patience", "did you mean 'early_stopping_patience'?"),
        ("config.batchsize", "did you mean 'batch_size'?"),
        ("config.validaton_split", "did you mean 'validation_split'?"),
        ("scheduler.intervall", "did you mean 'interval'?"),
        ("scheduler.monitr", "did you mean 'monitor'?"),
    ],
)
def test_unknown_key_is_error_with_did_you_mean(path, hint):
    spec = base_spec()
    if path.startswith("scheduler."):
        spec["scheduler"] = {"type": "torch.optim.lr_scheduler.ReduceLROnPlateau"}
    issue = issue_at(with_value(spec, path, 3), path)
    assert issue.hint == hint
    assert "unknown key" in issue.message


def test_unknown_top_level_key_without_close_match_lists_allowed_keys():
    issue = issue_at(with_value(base_spec(), "hooks", []), "hooks")
    assert "unknown key" in issue.message
    assert "optimizer" in (issue.hint or "")


def test_misspelled_section_is_reported_not_silently_dropped():
    spec = base_spec()
    spec["optimiser"] = spec.pop("optimizer")
    issue = issue_at(spec, "optimiser")
    assert issue.hint == "did you mean 'optimizer'?"


# ----------------------------------------------------------------------------------------------
# a setting stated twice


def test_lr_stated_twice_with_different_values_is_error():
    spec = with_value(base_spec(learning_rate=0.02), "optimizer.lr", 0.01)
    issues = issues_of(spec)
    assert [i.path for i in issues] == ["config.learning_rate"]
    assert "optimizer.lr" in issues[0].message


def test_lr_stated_twice_with_equal_values_warns():
    spec = with_value(base_spec(learning_rate=0.01), "optimizer.lr", 0.01)
    with pytest.warns(SpecWarning, match=r"optimizer\.lr"):
        loaded = load_trainer_spec(spec)
    assert loaded.optimizer.lr == 0.01


def test_lr_stated_twice_equal_int_and_float_warns_not_errors():
    spec = with_value(base_spec(learning_rate=1), "optimizer.lr", 1.0)
    with pytest.warns(SpecWarning, match=r"config\.learning_rate"):
        assert load_trainer_spec(spec).optimizer.lr == 1.0


def test_config_learning_rate_alone_becomes_optimizer_lr():
    spec = base_spec(learning_rate=0.02)
    del spec["optimizer"]["lr"]
    assert load_quietly(spec).optimizer.lr == 0.02


def test_config_learning_rate_error_names_where_it_was_written():
    spec = base_spec(learning_rate=-0.02)
    del spec["optimizer"]["lr"]
    issue = issue_at(spec, "config.learning_rate")
    assert "greater than 0" in issue.message


def test_optimizer_config_variant_from_yaml(tmp_path):
    path = write(tmp_path, """
        model_ref: some-model
        optimizer:
          type: adam
          config:
            learning_rate: 1e-3
            weight_decay: 1e-5
        config:
          epochs: 3
          batch_size: 8
    """)
    spec = load_quietly(path)
    assert spec.optimizer.type == "torch.optim.Adam"
    assert spec.optimizer.lr == 0.001
    assert isinstance(spec.optimizer.params["weight_decay"], float)
    assert spec.optimizer.params == {"weight_decay": 1e-5}


def test_optimizer_config_variant_contradicting_lr_is_error(tmp_path):
    path = write(tmp_path, """
        optimizer:
          type: adam
          lr: 0.01
          config:
            learning_rate: 1e-3
        config:
          epochs: 3
          batch_size: 8
    """)
    issue = issue_at(path, "optimizer.config.learning_rate")
    assert "optimizer.lr" in issue.message
    assert issue.line == 5


def test_seed000_root_level_loop_settings_move_into_config():
    spec = {
        "optimizer": {"type": "torch.optim.Adam", "params": {"lr": 0.001}},
        "epochs": 50,
        "batch_size": 32,
    }
    loaded = load_quietly(spec)
    assert loaded.config.epochs == 50
    assert loaded.config.batch_size == 32
    assert loaded.optimizer.lr == 0.001
    assert loaded.optimizer.params == {}


def test_seed000_root_level_setting_contradicting_config_is_error():
    spec = base_spec()
    spec["epochs"] = 50
    issue = issue_at(spec, "epochs")
    assert "config.epochs" in issue.message


def test_seed000_root_level_bad_value_is_reported_where_written():
    spec = {"optimizer": {"type": "torch.optim.Adam", "lr": 0.01}, "epochs": 0, "batch_size": 32}
    issues = issues_of(spec)
    assert [i.path for i in issues] == ["epochs"]


# ----------------------------------------------------------------------------------------------
# §7 schedulers


def sched_spec(scheduler: dict, **config: Any) -> dict:
    spec = base_spec(**config)
    spec["scheduler"] = scheduler
    return spec


@pytest.mark.parametrize(
    ("scheduler", "canonical"),
    [
        ({"type": "torch.optim.lr_scheduler.CosineAnnealingLR", "params": {"T_max": 100, "eta_min": 1e-5}},
         "torch.optim.lr_scheduler.CosineAnnealingLR"),
        ({"type": "CosineAnnealingLR", "params": {"T_max": 10}}, "torch.optim.lr_scheduler.CosineAnnealingLR"),
        ({"type": "torch.optim.lr_scheduler.StepLR", "params": {"step_size": 10, "gamma": 0.5}},
         "torch.optim.lr_scheduler.StepLR"),
        ({"type": "torch.optim.lr_scheduler.ExponentialLR", "params": {"gamma": 0.9}},
         "torch.optim.lr_scheduler.ExponentialLR"),
        ({"type": "torch.optim.lr_scheduler.ReduceLROnPlateau", "monitor": "val_loss",
          "params": {"mode": "min", "factor": 0.5, "patience": 5}}, "torch.optim.lr_scheduler.ReduceLROnPlateau"),
        ({"type": "ReduceLROnPlateau"}, "torch.optim.lr_scheduler.ReduceLROnPlateau"),
        ({"type": "ReduceLROnPlateau", "monitor": "val_accuracy", "params": {"mode": "max"}},
         "torch.optim.lr_scheduler.ReduceLROnPlateau"),
    ],
)
def test_scheduler_accepted(scheduler, canonical):
    loaded = load_quietly(sched_spec(scheduler))
    assert loaded.scheduler is not None
    assert loaded.scheduler.type == canonical
    assert loaded.scheduler.params == scheduler.get("params", {})
    assert loaded.scheduler.monitor == scheduler.get("monitor")


def test_scheduler_defaults():
    loaded = load_quietly(sched_spec({"type": "CosineAnnealingLR", "params": {"T_max": 10}}))
    assert loaded.scheduler.interval == "epoch"
    assert loaded.scheduler.frequency == 1
    assert loaded.scheduler.monitor is None


def test_steplr_missing_step_size_is_error_at_params():
    issue = issue_at(sched_spec({"type": "torch.optim.lr_scheduler.StepLR"}), "scheduler.params")
    assert "step_size" in issue.message


def test_scheduler_unknown_param_gets_did_you_mean():
    spec = sched_spec({"type": "torch.optim.lr_scheduler.CosineAnnealingLR", "params": {"T_mx": 10}})
    issue = issue_at(spec, "scheduler.params.T_mx")
    assert issue.hint == "did you mean 'T_max'?"


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("torch.optim.lr_scheduler.CosineAnealingLR", "torch.optim.lr_scheduler.CosineAnnealingLR"),
        ("torch.optim.lr_scheduler.StepLr2", "torch.optim.lr_scheduler.StepLR"),
        ("ReduceLROnPlateu", "torch.optim.lr_scheduler.ReduceLROnPlateau"),
    ],
)
def test_unknown_scheduler_type_gets_did_you_mean(written, suggested):
    issue = issue_at(sched_spec({"type": written, "params": {"T_max": 10}}), "scheduler.type")
    assert issue.hint == f"did you mean '{suggested}'?"
    assert written in issue.message


def test_scheduler_type_outside_lr_scheduler_is_refused():
    issue = issue_at(sched_spec({"type": "torch.optim.Adam"}), "scheduler.type")
    assert "not a torch.optim.lr_scheduler scheduler" in issue.message


@pytest.mark.parametrize(
    ("monitor", "hint"),
    [("val_los", "did you mean 'val_loss'?"), ("val_acuracy", "did you mean 'val_accuracy'?")],
)
def test_plateau_monitor_typo_gets_did_you_mean(monitor, hint):
    spec = sched_spec({"type": "torch.optim.lr_scheduler.ReduceLROnPlateau", "monitor": monitor})
    issue = issue_at(spec, "scheduler.monitor")
    assert issue.hint == hint


@pytest.mark.parametrize("scheduler_type", ["StepLR", "torch.optim.lr_scheduler.CosineAnnealingLR"])
def test_monitor_on_non_plateau_scheduler_is_error(scheduler_type):
    params = {"step_size": 3} if "Step" in scheduler_type else {"T_max": 3}
    spec = sched_spec({"type": scheduler_type, "params": params, "monitor": "val_loss"})
    issue = issue_at(spec, "scheduler.monitor")
    assert "ReduceLROnPlateau" in issue.message


def test_plateau_stepped_per_batch_is_error():
    spec = sched_spec({"type": "ReduceLROnPlateau", "interval": "step"})
    issue_at(spec, "scheduler.interval")


@pytest.mark.parametrize(
    "scheduler_type",
    ["torch.optim.lr_scheduler.LambdaLR", "LambdaLR", "MultiplicativeLR", "torch.optim.lr_scheduler.SequentialLR"],
)
def test_callable_schedulers_are_refused_with_a_message(scheduler_type):
    issue = issue_at(sched_spec({"type": scheduler_type}), "scheduler.type")
    assert "YAML" in issue.message or "callable" in issue.message
    assert issue.hint


@pytest.mark.parametrize(
    ("field", "value"),
    [("interval", "batch"), ("frequency", 0)],
)
def test_scheduler_field_values_checked(field, value):
    spec = sched_spec({"type": "CosineAnnealingLR", "params": {"T_max": 3}, field: value})
    issue_at(spec, f"scheduler.{field}")


# ----------------------------------------------------------------------------------------------
# cross-field rules


def test_early_stopping_on_val_metric_needs_validation_data():
    issue = issue_at(base_spec(validation_split=0.0, early_stopping_patience=5), "config.early_stopping_monitor")
    assert "validation_split" in issue.message


@pytest.mark.parametrize(
    "config",
    [
        {"validation_split": 0.0, "early_stopping_patience": 5, "early_stopping_monitor": "train_loss"},
        {"validation_split": 0.0, "early_stopping_patience": None},
        {"validation_split": 0.1, "early_stopping_patience": 5},
    ],
)
def test_early_stopping_without_validation_data_ok_cases(config):
    loaded = load_quietly(base_spec(**config))
    assert loaded.config.validation_split == config["validation_split"]


@pytest.mark.parametrize(
    ("metrics", "bad_index", "hint"),
    [
        (["accuracy", "acuracy"], 1, "did you mean 'accuracy'?"),
        (["recal"], 0, "did you mean 'recall'?"),
        (["auc", "precison"], 1, "did you mean 'precision'?"),
    ],
)
def test_unknown_metric_is_error_with_did_you_mean(metrics, bad_index, hint):
    issues = issues_of(base_spec(metrics=metrics))
    assert [i.path for i in issues] == [f"config.metrics[{bad_index}]"]
    assert issues[0].hint == hint


def test_known_metrics_accepted():
    metrics = ["accuracy", "precision", "recall", "f1", "auc", "pr_auc", "log_loss", "mse", "rmse", "mae", "r2"]
    assert load_quietly(base_spec(metrics=metrics)).config.metrics == metrics


@pytest.mark.parametrize(
    ("monitor", "hint"),
    [
        ("val_acuracy", "did you mean 'val_accuracy'?"),
        ("val_los", "did you mean 'val_loss'?"),
        ("validation_loss", None),
    ],
)
def test_unknown_early_stopping_monitor_is_error(monitor, hint):
    issue = issue_at(base_spec(early_stopping_monitor=monitor, early_stopping_patience=3),
                     "config.early_stopping_monitor")
    assert monitor in issue.message
    if hint is not None:
        assert issue.hint == hint


@pytest.mark.parametrize("monitor", ["val_loss", "train_loss", "val_accuracy", "val_auc", "train_f1", "val_r2"])
def test_known_early_stopping_monitor_accepted(monitor):
    loaded = load_quietly(base_spec(early_stopping_monitor=monitor, early_stopping_patience=3))
    assert loaded.config.early_stopping_monitor == monitor


# ----------------------------------------------------------------------------------------------
# errors point at the file and the line


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ("""
            model_ref: m
            optimizer:
              type: torch.optim.Adam
              lr: 0.001
            config:
              epochs: 3
              batch_size: 8
              device: cdua
         """, "config.device", 8),
        ("""
            optimizer:
              type: torch.optim.Adam
              lr: -1.0
            config:
              epochs: 3
              batch_size: 8
         """, "optimizer.lr", 3),
        ("""
            optimizer:
              type: torch.optim.Adamm
              lr: 0.001
            config:
              epochs: 3
              batch_size: 8
         """, "optimizer.type", 2),
        ("""
            optimizer:
              type: SGD
              lr: 0.01
              params:
                momentun: 0.9
            config:
              epochs: 3
              batch_size: 8
         """, "optimizer.params.momentun", 5),
        ("""
            optimizer:
              type: torch.optim.Adam
              lr: 0.01
            config:
              epochs: 3
              batch_size: 8
              early_stoping_patience: 4
         """, "config.early_stoping_patience", 7),
        ("""
            optimizer:
              type: torch.optim.Adam
              lr: 0.01
            config:
              epochs: 3
              batch_size: 8
              learning_rate: 0.02
         """, "config.learning_rate", 7),
        ("""
            optimizer:
              type: torch.optim.Adam
              lr: 0.01
            scheduler:
              type: torch.optim.lr_scheduler.ReduceLROnPlateau
              monitor: val_los
            config:
              epochs: 3
              batch_size: 8
         """, "scheduler.monitor", 6),
        ("""
            optimizer:
              type: torch.optim.Adam
              lr: 0.01
            config:
              epochs: 3
              batch_size: 8
              epochs: 4
         """, "config.epochs", 7),
    ],
    ids=["enum", "lr", "optimizer-type", "optimizer-param", "unknown-key", "duplicate-setting",
         "scheduler-monitor", "yaml-duplicate-key"],
)
def test_error_carries_file_and_line(tmp_path, text, path, line):
    file = write(tmp_path, text)
    issue = issue_at(file, path)
    assert issue.file == str(file)
    assert issue.line == line
    assert f"{file}:{line}" in str(issue)


def test_all_issues_of_a_file_carry_the_file(tmp_path):
    file = write(tmp_path, """
        optimizer:
          type: torch.optim.Adam
          lr: 0
        config:
          epochs: 0
          batch_size: 8
          device: gpu
    """)
    with pytest.raises(SpecError) as info:
        load_trainer_spec(file)
    issues = info.value.issues
    assert {i.path: i.line for i in issues} == {"optimizer.lr": 3, "config.epochs": 5, "config.device": 7}
    assert all(i.file == str(file) for i in issues)
    assert str(file) in str(info.value)


def test_duplicate_setting_warning_names_file(tmp_path):
    file = write(tmp_path, """
        optimizer:
          type: torch.optim.Adam
          lr: 0.01
        config:
          epochs: 3
          batch_size: 8
          learning_rate: 0.01
    """)
    with pytest.warns(SpecWarning) as record:
        loaded = load_trainer_spec(file)
    assert loaded.optimizer.lr == 0.01
    texts = [str(w.message) for w in record if issubclass(w.category, SpecWarning)]
    assert any(str(file) in t and "optimizer.lr" in t for t in texts), texts


def test_missing_file_is_spec_error(tmp_path):
    issues = issues_of(tmp_path / "nope.yaml")
    assert issues[0].file == str(tmp_path / "nope.yaml")


def test_model_file_is_not_a_trainer_spec():
    with pytest.raises(SpecError):
        load_trainer_spec(ROOT / "examples" / "logistic" / "model.yaml", check=False)


# ----------------------------------------------------------------------------------------------
# seed 001's four examples


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_seed001_fixtures_present():
    assert len(SEED001_FILES) == 4


@pytest.mark.parametrize("path", SEED001_FILES, ids=[p.stem for p in SEED001_FILES])
def test_seed001_example_loads_with_yaml_values(path):
    raw = _raw(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecWarning)
        result = load_spec(path)
    assert result.kind == "trainer"
    spec = result.trainer
    assert spec.model_ref == raw["model_ref"]
    assert spec.optimizer.type == raw["optimizer"]["type"]
    assert spec.optimizer.lr == raw["optimizer"]["lr"]
    assert {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.optimizer.params.items()} == \
        raw["optimizer"].get("params", {})
    for key, value in raw["config"].items():
        assert getattr(spec.config, key) == value, key
    assert spec.scheduler is None
    # the same file through load_trainer_spec gives the same spec
    assert load_quietly(path) == spec


def test_seed001_example3_values():
    spec = load_quietly(SEED001 / "example3_adamw_accumulation.yaml")
    assert spec.optimizer.type == "torch.optim.AdamW"
    assert spec.optimizer.lr == 0.0003
    assert list(spec.optimizer.params["betas"]) == [0.9, 0.999]
    assert spec.optimizer.params["eps"] == 1e-8
    assert spec.optimizer.params["weight_decay"] == 0.01
    assert spec.config.accumulate_grad_batches == 8
    assert spec.config.batch_size == 16
    assert spec.config.gradient_clip_norm == 1.0
    assert spec.config.device == "cuda"
    assert spec.config.seed == 123


def test_seed001_example2_values():
    spec = load_quietly(SEED001 / "example2_sgd_momentum_clipping.yaml")
    assert spec.optimizer.type == "torch.optim.SGD"
    assert spec.optimizer.params == {"momentum": 0.9, "weight_decay": 0.0001, "nesterov": True}
    assert spec.config.early_stopping_min_delta == 0.0001
    assert spec.config.validation_split == 0.15
    assert spec.config.pin_memory is True


def test_seed001_example4_minimal_uses_defaults():
    spec = load_quietly(SEED001 / "example4_minimal.yaml")
    assert (spec.config.epochs, spec.config.batch_size) == (5, 128)
    assert spec.config.early_stopping_patience is None
    assert spec.config.device == "auto"
    assert spec.config.log_every == 10


@pytest.mark.parametrize("example", sorted(p.parent.name for p in (ROOT / "examples").glob("*/trainer.yaml")))
def test_example_trainer_specs_load(example):
    path = ROOT / "examples" / example / "trainer.yaml"
    spec = load_quietly(path)
    raw = _raw(path)
    assert spec.config.epochs == raw["config"]["epochs"]
    assert spec.optimizer.lr == raw["optimizer"]["lr"]
