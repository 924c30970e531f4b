"""Search-space files (specml.search.space): the forms they take, conditions, grids, and their errors."""

from __future__ import annotations

import optuna
import pytest
import yaml

from specml.search.space import load_space, parse_space
from specml.spec import SpecError


def space(text: str):
    return parse_space(yaml.safe_load(text), "space.yaml")


def test_every_form_of_a_distribution():
    s = space("""
params:
  trainer.optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
  trainer.config.batch_size: [32, 64]
  model.graph.h1.params.out_features: {type: int, low: 8, high: 64, step: 8}
  trainer.config.early_stopping_patience: choice(5, 10)
  trainer.optimizer.params.weight_decay: tag(log, interval(1e-6, 1e-2))
  trainer.config.epochs: range(2, 8, 2)
  trainer.config.validation_split: interval(0.1, 0.3)
""")
    kinds = {p.path: (p.kind, p.low, p.high, p.log, p.step, p.choices) for p in s.params}
    assert kinds["trainer.optimizer.lr"] == ("float", 1e-4, 1e-1, True, None, ())
    assert kinds["trainer.config.batch_size"] == ("categorical", None, None, False, None, (32, 64))
    assert kinds["model.graph.h1.params.out_features"] == ("int", 8, 64, False, 8, ())
    assert kinds["trainer.config.early_stopping_patience"][5] == (5, 10)
    assert kinds["trainer.optimizer.params.weight_decay"] == ("float", 1e-6, 1e-2, True, None, ())
    assert kinds["trainer.config.epochs"] == ("int", 2, 6, False, 2, ())
    assert kinds["trainer.config.validation_split"][:4] == ("float", 0.1, 0.3, False)


def test_sampled_values_become_overrides_and_conditions_hold():
    s = space("""
params:
  trainer.optimizer.type: [torch.optim.AdamW, torch.optim.SGD]
  +trainer.optimizer.params.momentum:
    {type: float, low: 0.5, high: 0.9, when: {trainer.optimizer.type: torch.optim.SGD}}
""")
    sgd = s.sample(optuna.trial.FixedTrial({"trainer.optimizer.type": "torch.optim.SGD",
                                            "trainer.optimizer.params.momentum": 0.7}))
    assert sgd == {"trainer.optimizer.type": "torch.optim.SGD", "trainer.optimizer.params.momentum": 0.7}
    assert s.overrides(sgd) == ["trainer.optimizer.type='torch.optim.SGD'", "+trainer.optimizer.params.momentum=0.7"]
    adamw = s.sample(optuna.trial.FixedTrial({"trainer.optimizer.type": "torch.optim.AdamW"}))
    assert adamw == {"trainer.optimizer.type": "torch.optim.AdamW"}


def test_grid_values():
    s = space("params: {a.b: {type: int, low: 1, high: 3}, c.d: {type: float, low: 0.0, high: 1.0, step: 0.5}, "
              "e.f: [x, y]}")
    assert s.grid() == {"a.b": [1, 2, 3], "c.d": [0.0, 0.5, 1.0], "e.f": ["x", "y"]}
    with pytest.raises(SpecError, match="the grid sampler needs a finite set of values"):
        space("params: {a.b: {type: float, low: 0.0, high: 1.0}}").grid()


@pytest.mark.parametrize("text, message", [
    ("parms: {a.b: [1]}", "unknown key 'parms' (did you mean 'params'?)"),
    ("params: {}", "params: expected a mapping of override path -> distribution"),
    ("params: {a.b: {type: flaot, low: 1, high: 2}}", "expected one of float, int, categorical, got 'flaot' "
                                                      "(did you mean 'float'?)"),
    ("params: {a.b: {type: float, low: 1, hihg: 2}}", "unknown key 'hihg' (did you mean 'high'?)"),
    ("params: {a.b: {type: float, low: 2, high: 1}}", "low (2) is above high (1)"),
    ("params: {a.b: {type: float, low: 0, high: 1, log: true}}", "a log range needs low > 0, got 0"),
    ("params: {a.b: {type: int, low: 1.5, high: 3}}", "params['a.b'].low: expected an integer, got 1.5"),
    ("params: {a.b: {type: categorical, choices: []}}", "a categorical parameter needs a non-empty list of choices"),
    ("params: {a.b: '0.5'}", "'0.5' is one value, not a distribution"),
    ("params: {a.b: {type: int, low: 1, high: 3, when: {c.d: 1}}, c.d: [1, 2]}",
     "'c.d' is not a parameter listed before this one"),
    ("direction: up\nparams: {a.b: [1]}", "expected maximize or minimize, got 'up'"),
    ("params: {a.b: [1]}\nenqueue: [{a.c: 1}]", "'a.c' is not a searched parameter (did you mean 'a.b'?)"),
])
def test_mistakes_are_one_line_each(text, message):
    with pytest.raises(SpecError) as caught:
        space(text)
    assert message in str(caught.value)


def test_errors_carry_the_file_and_line(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("params:\n  a.b: [1, 2]\n  c.d: {type: int, low: 1}\n")
    with pytest.raises(SpecError) as caught:
        load_space(path)
    assert str(caught.value) == f"{path}:3: params['c.d'].high: expected an integer, got None"
