"""Target detection (synonyms, typos, conventional names, ambiguity), task decision, and the words
that are not understood."""

from __future__ import annotations

import pytest

from specml.compile.build import compile_spec
from specml.compile.errors import AmbiguousTarget, CompileError, TargetNotFound
from specml.compile.profile import profile_table
from specml.compile.target import decide_task, find_targets
from specml.compile.words import parse_instruction
from specml.data.workspace import Workspace


@pytest.fixture()
def ws(tmp_path):
    w = Workspace(tmp_path / "ws.duckdb")
    yield w
    w.close()


def _table(ws, name: str, columns: dict[str, str], rows: int = 60) -> None:
    ws.sql(f"CREATE OR REPLACE TABLE {name} AS SELECT "
           + ", ".join(f"{expr} AS {col}" for col, expr in columns.items()) + f" FROM range({rows}) t(i)")


def _target(ws, table: str, words: str) -> list[str]:
    req = parse_instruction(words)
    return [c.column for c in find_targets(req.targets, profile_table(ws, table), req.task)]


CALIFORNIA = {"MedInc": "1.5 + (i % 13) * 0.7", "HouseAge": "i % 52", "AveRooms": "3 + (i % 7) * 0.4",
              "AveBedrms": "1 + (i % 3) * 0.1", "Population": "100 + i * 3", "Latitude": "32 + (i % 9) * 0.5",
              "MedHouseVal": "0.5 + (i % 23) * 0.2"}


@pytest.mark.parametrize(("words", "columns", "expected"), [
    # CamelCase, snake_case, spaces and abbreviations (med/median, val/value, ave/average)
    ("predict median house value", CALIFORNIA, "MedHouseVal"),
    ("predict the house value", CALIFORNIA, "MedHouseVal"),
    ("predict MedHouseVal", CALIFORNIA, "MedHouseVal"),
    ("predict med_house_val", CALIFORNIA, "MedHouseVal"),
    ("predict average rooms", CALIFORNIA, "AveRooms"),
    ("predict house age", CALIFORNIA, "HouseAge"),
    ("predict population", CALIFORNIA, "Population"),
    ("predict the sale price", {"sqft": "i * 10", "SalePrice": "1000.5 * i"}, "SalePrice"),
    ("predict number of rooms", {"sqft": "i * 10", "num_rooms": "i % 9 + 1.5", "price": "i * 2.5"}, "num_rooms"),
    ("predict the quantity sold", {"price": "i * 1.5", "qty_sold": "i % 40 + 0.5"}, "qty_sold"),
    # simple synonyms
    ("predict revenue", {"price": "i * 1.5", "turnover": "i * 3.5"}, "turnover"),
    ("predict customer attrition", {"tenure": "i % 9", "Exited": "i % 2"}, "Exited"),
    ("predict diabetes", {"glucose": "i * 1.5", "diabetes_pedigree": "i / 7.0", "outcome": "i % 2"}, "outcome"),
    ("predict diabetes", {"glucose": "i * 1.5", "has_diabetes": "i % 2"}, "has_diabetes"),
    ("predict customer churn", {"customer_id": "i", "tenure": "i % 9", "churned": "i % 2 = 0"}, "churned"),
    ("for house prices", {"sqft": "i * 10", "rooms": "i % 5", "SalePrice": "1000.5 * i"}, "SalePrice"),
    ("predict house prices", {"sqft": "i * 10", "house_price": "1000.5 * i"}, "house_price"),
    ("predict outcome", {"x": "i * 0.5", "outcome": "i % 2"}, "outcome"),
    ("classify movie genres", {"budget": "i * 2.5", "genre": "['a','b','c'][1 + i % 3]"}, "genre"),
    ("Binary classifier for spam detection", {"word_count": "i", "is_spam": "i % 2"}, "is_spam"),
])
def test_synonyms_and_names(ws, words, columns, expected):
    _table(ws, "t", columns)
    assert _target(ws, "t", words) == [expected]


def test_words_name_input_columns(ws):
    from specml.compile.target import find_columns

    _table(ws, "r", {"user_id": "i % 20", "item_id": "i % 30", "age": "18 + i % 40", "rating": "1 + i % 5"}, rows=200)
    profile = profile_table(ws, "r")
    assert find_columns(["user", "movie"], profile, ["rating"]) == (["user_id", "item_id"], [])
    assert find_columns(["user_id", "item id", "hat"], profile, ["rating"]) == (["user_id", "item_id"], ["hat"])
    assert find_columns(["rating"], profile, ["rating"]) == ([], ["rating"])  # the target is never an input


def test_typo_is_matched_fuzzily(ws):
    _table(ws, "t", {"glucose": "i * 1.5", "outcome": "i % 2", "churned": "i % 3 = 0"})
    choice = find_targets(["diabtes"], profile_table(ws, "t"))[0]
    assert choice.column == "outcome" and "diabetes" in choice.reason
    _table(ws, "u", {"sqft": "i * 10", "price": "1000.5 * i"})
    assert _target(ws, "u", "predict the prise") == ["price"]


def test_conventional_target_is_used_and_said(ws):
    _table(ws, "t", {"a": "i * 1.5", "b": "i % 7", "label": "i % 2"})
    compiled = compile_spec("Build a 3-layer feed-forward network for prediction", profile_table(ws, "t"),
                            validate=False)
    assert compiled.target == "label"
    assert any("conventional target column 'label'" in n for n in compiled.notes)
    unmatched = compile_spec("predict happiness", profile_table(ws, "t"), validate=False)
    assert unmatched.target == "label"
    assert any("no column matches 'happiness'" in n for n in unmatched.notes)


def test_ambiguous_target_lists_candidates(ws):
    _table(ws, "t", {"sqft": "i * 10", "sale_price": "1000.5 * i", "list_price": "990.5 * i"})
    with pytest.raises(AmbiguousTarget) as err:
        _target(ws, "t", "predict house prices")
    assert err.value.candidates == ["sale_price", "list_price"]
    assert "sale_price" in str(err.value) and "list_price" in str(err.value)
    _table(ws, "c", {"x": "i * 1.5", "target": "i % 2", "label": "i % 3 = 0"})
    with pytest.raises(AmbiguousTarget) as err2:
        _target(ws, "c", "Build a model with 2 hidden layers (64, 32)")
    assert sorted(err2.value.candidates) == ["label", "target"]


def test_task_hint_breaks_a_tie(ws):
    _table(ws, "t", {"sqft": "i * 10", "sale_price": "1000.5 * i", "price_band": "['low','high'][1 + i % 2]"})
    assert _target(ws, "t", "a regression model to predict the price") == ["sale_price"]
    assert _target(ws, "t", "a binary classifier to predict the price") == ["price_band"]


def test_no_target_at_all(ws):
    _table(ws, "t", {"a": "i * 1.5", "b": "i % 7"})
    with pytest.raises(TargetNotFound) as err:
        _target(ws, "t", "Build a model with 2 hidden layers (64, 32)")
    assert "a, b" in str(err.value)


def test_two_targets(ws):
    _table(ws, "t", {"store": "i % 3", "price": "i * 1.25", "demand": "100 + i * 0.5"})
    assert _target(ws, "t", "Build a model to predict both price and demand") == ["price", "demand"]


@pytest.mark.parametrize(("expr", "kind_hint", "task"), [
    ("i % 2", None, "binary"),
    ("['yes','no'][1 + i % 2]", None, "binary"),
    ("i % 5", None, "multiclass"),
    ("['a','b','c','d'][1 + i % 4]", None, "multiclass"),
    ("i * 1.5", None, "regression"),
    ("i % 40", None, "regression"),  # 40 distinct integers: a quantity, not classes
    ("i % 40", "classification", "multiclass"),
    ("i % 5", "regression", "regression"),
])
def test_task_from_the_target(ws, expr, kind_hint, task):
    _table(ws, "t", {"x": "i * 0.5", "y": expr}, rows=80)
    assert decide_task(profile_table(ws, "t").column("y"), kind_hint)[0] == task


def test_single_valued_target_is_refused(ws):
    _table(ws, "t", {"x": "i * 0.5", "y": "1"})
    with pytest.raises(CompileError, match="fewer than 2 values"):
        decide_task(profile_table(ws, "t").column("y"), None)


@pytest.mark.parametrize(("words", "ignored"), [
    ("predict outcome, use mixup augmentation", ["use mixup augmentation"]),
    ("predict outcome with 2 hidden layers (64, 32) and label smoothing 0.1", ["label smoothing 0.1"]),
    ("Build a binary classifier to predict diabetes. Make it explainable with SHAP", ["Make it explainable with SHAP"]),
    ("Build a binary classifier to predict diabetes", []),
])
def test_words_not_understood_are_reported(words, ignored):
    assert parse_instruction(words).ignored == ignored


def test_ignored_reaches_the_compiled_result(ws):
    _table(ws, "t", {"x": "i * 0.5", "outcome": "i % 2"})
    compiled = compile_spec("predict outcome; use mixup augmentation", profile_table(ws, "t"), validate=False)
    assert compiled.ignored == ["use mixup augmentation"]


@pytest.mark.parametrize(("words", "field", "value"), [
    ("dropout 0.3 after the first, 0.2 after the second", "dropout_at", {0: 0.3, 1: 0.2}),
    ("dropout of 25%", "dropout_all", 0.25),
    ("no dropout", "dropout_all", 0.0),
    ("SGD with momentum", "momentum", 0.9),
    ("sgd with momentum 0.8", "optimizer", "sgd"),
    ("AdamW with weight decay 0.05", "weight_decay", 0.05),
    ("early stopping with patience 7", "patience", 7),
    ("without early stopping", "early_stopping", False),
    ("lr=3e-4", "lr", 3e-4),
    ("learning rate of 0.005", "lr", 0.005),
    ("batches of 256", "batch_size", 256),
    ("train for 12 epochs", "epochs", 12),
    ("tanh activations", "activation", "tanh"),
    ("leaky relu", "activation", "leaky_relu"),
    ("use BCELoss", "loss", "bce"),
    ("Huber loss", "loss", "huber"),
    ("sigmoid output", "output_activation", "sigmoid"),
    ("2 hidden layers of 64 units", "hidden", [64, 64]),
    ("hidden layers 128 -> 64 -> 32", "hidden", [128, 64, 32]),
    ("8 experts", "num_experts", 8),
    ("validation split 0.1", "validation_split", 0.1),
    ("seed 7", "seed", 7),
])
def test_explicit_settings(words, field, value):
    req = parse_instruction(words)
    assert getattr(req, field) == value
    assert req.ignored == []


def test_bad_dropout_is_an_error():
    with pytest.raises(CompileError, match="dropout 1.5"):
        parse_instruction("dropout 1.5")
