"""Overrides in Hydra's grammar, presets and ``${...}`` references (specml.spec.overrides, spec.presets).

Each case loads the tiny test specs with overrides, the way ``specml train`` does, and checks the
value that reaches the validated spec or the one-line message a user reads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from specml.api import resolve_specs
from specml.spec import SpecError, load_spec
from specml.spec.overrides import Overrides, format_value, looks_like_override, parse_override, resolved_namespace

torch.set_num_threads(1)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODEL, TRAINER = FIXTURES / "model.yaml", FIXTURES / "trainer.yaml"


def specs(*overrides: str, check: bool = False, presets: tuple[str, ...] = ()):
    return resolve_specs(MODEL, TRAINER, check=check, overrides=[*(f"+experiment={p}" for p in presets), *overrides])


def error(*overrides: str, check: bool = False) -> str:
    with pytest.raises(SpecError) as caught:
        specs(*overrides, check=check)
    assert len(caught.value.issues) == 1, str(caught.value)
    return str(caught.value)


# ----------------------------------------------------------------------------------------------
# setting values


def test_set_nested_values_typed_as_yaml():
    model, trainer = specs("trainer.config.epochs=20", "trainer.optimizer.lr=3e-4", "trainer.config.shuffle=false",
                           "trainer.config.seed=null")
    assert trainer.config.epochs == 20 and isinstance(trainer.config.epochs, int)
    assert trainer.optimizer.lr == pytest.approx(3e-4)
    assert trainer.config.shuffle is False and trainer.config.seed is None


def test_prefix_may_be_left_out_for_sections_of_one_spec():
    model, trainer = specs("config.batch_size=128", "optimizer.lr=0.5", "graph.h1.params.out_features=3")
    assert trainer.config.batch_size == 128 and trainer.optimizer.lr == 0.5
    assert model.graph[0].params["out_features"] == 3


def test_a_schema_field_not_written_in_the_file_can_be_set():
    _, trainer = specs("trainer.config.gradient_clip_norm=1.5")
    assert trainer.config.gradient_clip_norm == 1.5


def test_graph_nodes_are_addressed_by_name():
    model, _ = specs("model.graph.h1.params.out_features=16", check=True)
    assert model.graph[0].params == {"in_features": 8, "out_features": 16}
    assert model.graph[2].params["in_features"] == 16   # ${model.graph.h1.params.out_features} followed


def test_lists_and_mappings_as_values():
    model, trainer = specs("trainer.config.metrics=[accuracy,auc,f1]", "trainer.scheduler.params={T_max: 4}")
    assert trainer.config.metrics == ["accuracy", "auc", "f1"]
    assert trainer.scheduler.params == {"T_max": 4}


def test_add_with_plus_and_force_with_double_plus():
    _, trainer = specs("+trainer.optimizer.params.weight_decay=0.01", "++trainer.config.epochs=2")
    assert trainer.optimizer.params == {"weight_decay": 0.01}
    assert trainer.config.epochs == 2


def test_add_a_graph_node_and_delete_one():
    model, _ = specs("~model.graph.act", "model.graph.out.inputs.input=h1.output", check=True)
    assert [n.name for n in model.graph] == ["h1", "out"]
    with pytest.warns(UserWarning, match="node 'extra' does not feed any output"):
        model, _ = specs("+model.graph.extra={type: torch.nn.ReLU, inputs: {input: out.output}}")
    assert [n.name for n in model.graph] == ["h1", "act", "out", "extra"]


def test_delete_a_section_and_a_value():
    _, trainer = specs("~trainer.scheduler")
    assert trainer.scheduler is None
    _, trainer = specs("~trainer.config.seed=0")
    assert trainer.config.seed is None


# ----------------------------------------------------------------------------------------------
# mistakes: one line each, naming the override


def test_typo_in_a_key_gets_did_you_mean():
    assert error("trainer.config.epohcs=3") == ("override 'trainer.config.epohcs=3': trainer.config.epohcs: unknown "
                                                "key 'epohcs' (did you mean 'epochs'?)")
    assert "unknown key 'confg' (did you mean 'config'?)" in error("trainer.confg.epochs=3")
    assert "did you mean 'trainer.config.epochs'?" in error("epochs=3")
    assert "unknown key 'schedular' (did you mean 'scheduler'?)" in error("~trainer.schedular")


def test_typo_in_a_node_name_gets_did_you_mean():
    assert error("model.graph.outt.params.out_features=4") == (
        "override 'model.graph.outt.params.out_features=4': model.graph.outt: no node named 'outt' in model.graph "
        "(did you mean 'out'?)")
    assert error("model.graph.zz.params.out_features=4").endswith("no node named 'zz' in model.graph (names: h1, "
                                                                   "act, out)")


def test_a_free_form_key_that_is_not_there_needs_plus():
    assert error("trainer.optimizer.params.momentum=0.9").endswith(
        "'momentum' is not set in trainer.optimizer.params (add it with +trainer.optimizer.params.momentum=VALUE)")


def test_add_of_a_key_that_is_there_is_refused():
    assert "is already set (to 6) (change it with trainer.config.epochs=VALUE, or ++trainer.config.epochs=VALUE)" \
        in error("+trainer.config.epochs=3")


def test_type_errors_are_reported_against_the_override():
    assert error("trainer.config.epochs=abc") == ("override 'trainer.config.epochs=abc': trainer.config.epochs: "
                                                  "expected an integer, got 'abc'")
    assert error("trainer.config.shuffle=maybe").endswith("trainer.config.shuffle: expected true or false, got 'maybe'")
    assert "trainer.config.epochs: expected greater than 0, got 0" in error("trainer.config.epochs=0")
    assert "is 6, not a mapping: 'x' cannot be set inside it" in error("trainer.config.epochs.x=1")
    assert "is 6, not 7: not deleted" in error("~trainer.config.epochs=7")


def test_an_override_that_breaks_the_model_is_caught_by_the_deep_check():
    text = error("~model.graph.act", check=True)   # out reads act.output, which is gone
    assert "act" in text


def test_syntax_errors_name_the_override():
    assert "override 'a..b=1'" in error("a..b=1") and "not an override" in error("a..b=1")
    assert "missing EQUAL" in error("trainer.config.epochs")


def test_a_sweep_needs_multirun():
    assert "a sweep of values runs several trainings (run it with --multirun" in error("trainer.optimizer.lr=1e-3,1e-2")


def test_an_override_for_a_spec_that_is_not_there():
    with pytest.raises(SpecError, match="there is no trainer spec here"):
        load_spec(MODEL, check=False, overrides=["trainer.config.epochs=3"])


def test_parse_keeps_the_parts():
    ov = parse_override("+trainer.optimizer.params.betas=[0.9,0.99]")
    assert (ov.op, ov.path, ov.value) == ("add", ("trainer", "optimizer", "params", "betas"), [0.9, 0.99])
    sweep = parse_override("config.batch_size=range(16,65,16)")
    assert sweep.sweep == tuple(f"config.batch_size={n}" for n in (16, 32, 48, 64))
    assert looks_like_override("a.b=1") and looks_like_override("~x") and not looks_like_override("model.yaml")


@pytest.mark.parametrize("value", [1, -3, 0.1, 1e-5, 3.0000000000000004e-05, True, False, None, "torch.optim.SGD",
                                   "it's", "a\\b", "end\\", "1", "null", [1, "a", None], {"a": 1, "b": [1.5]}])
def test_values_round_trip_through_the_grammar(value):
    assert parse_override(f"a.b={format_value(value)}").value == value


# ----------------------------------------------------------------------------------------------
# ${...} references


def test_a_reference_follows_its_source():
    _, trainer = specs()
    assert trainer.scheduler.params["T_max"] == 6
    _, trainer = specs("trainer.config.epochs=3")
    assert trainer.scheduler.params["T_max"] == 3


def test_a_reference_across_files(tmp_path):
    model = tmp_path / "model.yaml"
    model.write_text(MODEL.read_text().replace("out_features: 8}", "out_features: \"${trainer.config.batch_size}\"}")
                     .replace('in_features: "${model.graph.h1.params.out_features}"', "in_features: 64"))
    built, _ = resolve_specs(model, TRAINER, check=True)
    assert built.graph[0].params["out_features"] == 64


def test_a_broken_reference_names_file_line_and_the_near_key(tmp_path):
    trainer = tmp_path / "trainer.yaml"
    trainer.write_text(TRAINER.read_text().replace("${trainer.config.epochs}", "${trainer.config.epoch}"))
    with pytest.raises(SpecError) as caught:
        load_spec(trainer, check=False)
    assert str(caught.value) == (f"{trainer}:6: scheduler.params.T_max: cannot resolve ${{trainer.config.epoch}}: no "
                                 "key 'epoch' in trainer.config (did you mean 'epochs'?)")


# ----------------------------------------------------------------------------------------------
# presets


def test_quick_preset_then_overrides():
    _, trainer = specs("trainer.config.epochs=4", presets=("quick",))
    assert trainer.config.epochs == 4 and trainer.config.tensorboard is False
    assert trainer.config.early_stopping_patience is None


def test_long_preset_replaces_the_scheduler_and_its_horizon_follows_epochs(tmp_path):
    plateau = tmp_path / "trainer.yaml"
    plateau.write_text(TRAINER.read_text().replace(
        "type: torch.optim.lr_scheduler.CosineAnnealingLR\n  params: {T_max: \"${trainer.config.epochs}\"}",
        "type: torch.optim.lr_scheduler.ReduceLROnPlateau\n  params: {mode: min, factor: 0.5}"))
    _, trainer = resolve_specs(MODEL, plateau, check=True, overrides=["+experiment=long", "trainer.config.epochs=50"])
    assert trainer.scheduler.type.endswith("CosineAnnealingLR")
    assert trainer.scheduler.params == {"T_max": 50, "eta_min": 0.0}
    assert trainer.config.early_stopping_patience == 30


def test_presets_from_the_project_the_home_and_a_path(tmp_path, monkeypatch):
    project, home = tmp_path / "project", tmp_path / "home"
    (project / "presets").mkdir(parents=True)
    (home / "presets").mkdir(parents=True)
    (project / "presets" / "quick.yaml").write_text("config: {epochs: 7}\n")       # hides the shipped one
    (home / "presets" / "wide.yaml").write_text("model: {graph: [{name: h1}]}\n")
    (tmp_path / "big.yaml").write_text("trainer: {config: {batch_size: 256}}\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("SPECML_HOME", str(home))
    _, trainer = specs(presets=("quick", str(tmp_path / "big.yaml")))
    assert trainer.config.epochs == 7 and trainer.config.batch_size == 256
    with pytest.raises(SpecError, match=r"no preset named 'quik' \(did you mean 'quick'\?\)"):
        specs(presets=("quik",))


def test_a_bad_value_in_a_preset_is_reported_against_the_preset(tmp_path):
    (tmp_path / "bad.yaml").write_text("trainer: {config: {epochs: -1}}\n")
    with pytest.raises(SpecError) as caught:
        specs(presets=(str(tmp_path / "bad.yaml"),))
    assert str(caught.value) == (f"preset '{tmp_path / 'bad.yaml'}': trainer.config.epochs: expected greater than 0, "
                                 "got -1")


# ----------------------------------------------------------------------------------------------
# estimator specs and the CLI


def test_estimator_spec_overrides():
    spec = load_spec(FIXTURES / "estimator.yaml", check=True, overrides=["estimator.params.max_depth=5"]).estimator
    assert spec.estimator.params["max_depth"] == 5
    with pytest.raises(SpecError, match=r"unknown key 'max_dept' \(did you mean 'max_depth'\?\)"):
        load_spec(FIXTURES / "estimator.yaml", overrides=["estimator.params.max_dept=5"])


def test_resolved_namespace_shows_what_runs():
    data = resolved_namespace([MODEL, TRAINER], Overrides(["trainer.config.epochs=3"], presets=["quick"]))
    assert data["trainer"]["config"]["epochs"] == 3
    assert data["trainer"]["scheduler"]["params"]["T_max"] == 3
    assert data["model"]["graph"][2]["params"]["in_features"] == 8


def test_cli_validate_and_describe_take_overrides(tmp_path):
    from specml.cli.app import app

    runner = CliRunner()
    bad = runner.invoke(app, ["validate", str(MODEL), str(TRAINER), "trainer.config.epohcs=3"])
    assert bad.exit_code == 1
    assert bad.output.strip() == ("error override 'trainer.config.epohcs=3': trainer.config.epohcs: unknown key "
                                  "'epohcs' (did you mean 'epochs'?)")
    good = runner.invoke(app, ["validate", str(MODEL), str(TRAINER), "trainer.config.epochs=3", "--preset", "quick"])
    assert good.exit_code == 0, good.output
    assert "3 epochs" in good.output
    shown = runner.invoke(app, ["describe", str(MODEL), "-T", str(TRAINER), "model.graph.h1.params.out_features=4",
                                "config.epochs=5", "--resolved"])
    assert shown.exit_code == 0, shown.output
    assert "overrides: model.graph.h1.params.out_features=4 config.epochs=5" in shown.output
    assert "T_max: 5" in shown.output and "in_features: 4" in shown.output
    table = runner.invoke(app, ["describe", str(MODEL), "model.graph.h1.params.out_features=4"])
    assert table.exit_code == 0 and "41" in table.output   # 8*4+4 + 4*1+1 parameters


def test_copied_specs_behave_the_same(tmp_path):
    model = Path(shutil.copy(MODEL, tmp_path / "m.yaml"))
    trainer = Path(shutil.copy(TRAINER, tmp_path / "t.yaml"))
    _, built = resolve_specs(model, trainer, check=False, overrides=["trainer.config.epochs=2"])
    assert built.scheduler.params["T_max"] == 2
