"""The words path's default tabular recipe: what the generated specs hold (quantile scaling, PLR, id
embeddings, AdamW, cosine schedule, an epoch budget that follows the data), which columns are embedded or
left out, and that a cross network on heavy-tailed inputs trains to a finite loss that beats the mean."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from specml.compile.build import MAX_EPOCHS, MIN_EPOCHS, compile_spec
from specml.compile.profile import profile_table
from specml.data.workspace import Workspace


@pytest.fixture()
def ws(tmp_path):
    w = Workspace(tmp_path / "ws.duckdb")
    yield w
    w.close()


def _table(ws, name: str, columns: dict[str, str], rows: int) -> None:
    ws.sql(f"CREATE OR REPLACE TABLE {name} AS SELECT "
           + ", ".join(f"{expr} AS {col}" for col, expr in columns.items()) + f" FROM range({rows}) t(i)")


RATINGS = {"row_id": "i", "user_id": "i % 97", "movie_id": "(i * 7) % 211", "age": "18 + (i * 13) % 50",
           "ts": "978300000 + i * 37", "occupation": "['a', 'b', 'c', 'd'][1 + i % 4]",
           "rating": "1 + (i * 31 + (i % 97) * 3) % 5"}


def _node(compiled, type_: str) -> dict:
    return next(n for n in compiled.model["graph"] if n["type"] == type_)


def test_default_recipe_is_in_the_specs_and_the_rationale(ws):
    _table(ws, "t", {"a": "i * 0.5", "b": "(i * 17) % 13 * 1.0", "y": "(i * 7) % 2"}, rows=300)
    c = compile_spec("predict y", profile_table(ws, "t"))
    feats = c.model["inputs"]["features"]
    assert feats["normalize"] == "quantile"
    plr = _node(c, "specml.layers.PeriodicEmbedding")
    assert plr["inputs"] == {"input": "features"} and plr["params"]["in_features"] == 2
    first = next(n for n in c.model["graph"] if n["name"] == "hidden1")
    assert first["params"]["in_features"] == 2 * plr["params"]["embedding_dim"]
    opt = c.trainer["optimizer"]
    assert opt["type"] == "torch.optim.AdamW" and opt["params"]["weight_decay"] > 0
    cfg = c.trainer["config"]
    assert c.trainer["scheduler"]["type"] == "CosineAnnealingLR"
    assert c.trainer["scheduler"]["params"]["T_max"] == cfg["epochs"]
    assert cfg["early_stopping_patience"] == 16 and cfg["early_stopping_monitor"] == "val_loss"
    for said in ("quantile", "PLR", "AdamW", "cosine", "weight_decay", "early stopping"):
        assert said in c.rationale, said


def test_the_epoch_budget_follows_the_data(ws):
    epochs = {}
    for rows in (300, 20_000, 400_000):
        _table(ws, "t", {"a": "i * 0.5", "y": "(i * 7) % 2"}, rows=rows)
        c = compile_spec("predict y", profile_table(ws, "t"), validate=False)
        epochs[rows] = c.trainer["config"]["epochs"]
    assert epochs[300] == MAX_EPOCHS  # 8 batches per epoch: the cap
    assert MIN_EPOCHS < epochs[20_000] < MAX_EPOCHS  # 63 batches of 256: ~10,000 steps
    assert epochs[400_000] == MIN_EPOCHS  # 625 batches of 512: the floor
    said = compile_spec("predict y, train for 7 epochs", profile_table(ws, "t"), validate=False)
    assert said.trainer["config"]["epochs"] == 7 and said.trainer["scheduler"]["params"]["T_max"] == 7


def test_words_change_the_recipe(ws):
    _table(ws, "t", {"a": "i * 0.5", "b": "(i * 17) % 13 * 1.0", "y": "i * 0.25 + (i % 3)"}, rows=300)
    c = compile_spec("predict y with robust scaling, no numeric embeddings and a constant learning rate, Adam",
                     profile_table(ws, "t"))
    assert c.model["inputs"]["features"]["normalize"] == "robust"
    assert not any(n["type"] == "specml.layers.PeriodicEmbedding" for n in c.model["graph"])
    assert "scheduler" not in c.trainer and c.trainer["optimizer"]["type"] == "torch.optim.Adam"
    assert c.model["loss"]["target_normalize"] == "standard"  # a regression target is trained standardized
    assert c.ignored == []
    tabm = compile_spec("predict y with TabM", profile_table(ws, "t"))
    head = _node(tabm, "specml.layers.BatchEnsembleMLP")
    assert head["name"] == "head" and tabm.model["outputs"] == {"prediction": "head.output"}


def test_repeating_ids_are_embedded_and_unique_ids_and_timestamps_left_out(ws):
    _table(ws, "ratings", RATINGS, rows=2000)
    c = compile_spec("predict rating, a regression", profile_table(ws, "ratings"))
    inputs = c.model["inputs"]
    for col, distinct in (("user_id", 97), ("movie_id", 211)):
        assert inputs[col]["categorical"] is True and inputs[col]["dtype"] == "int64"
        assert inputs[col]["embedding_dim"] == min(32, round(1.6 * (distinct + 1) ** 0.56))
    assert c.features["embedded_ids"] == ["user_id", "movie_id"]
    assert c.features["categorical"] == ["occupation"] and c.features["numeric"] == ["age"]
    assert c.features["left_out"] == ["row_id", "ts"]
    said = " ".join(c.notes)
    assert "'row_id': looks like an identifier" in said and "'ts': a timestamp" in said
    assert "identifier column(s) embedded" in c.rationale


def test_a_plan_splits_by_an_epoch_timestamp(ws):
    from specml.compile.plan import make_plan

    _table(ws, "ratings", RATINGS, rows=400)
    plan = make_plan("predict rating, a regression", ws, "ratings")
    assert plan.split["kind"] == "time" and plan.split["column"] == "ts"


def test_words_that_name_id_columns(ws):
    _table(ws, "ratings", RATINGS, rows=2000)
    profile = profile_table(ws, "ratings")
    c = compile_spec("predict rating using user and movie embeddings", profile)
    assert c.features["embedded_ids"] == ["user_id", "movie_id"] and c.ignored == []
    only = compile_spec("predict rating from user_id and movie_id", profile)
    assert set(only.model["inputs"]) == {"user_id", "movie_id"}
    assert set(only.features["left_out"]) == {"row_id", "age", "ts", "occupation"}
    missing = compile_spec("predict rating using user and hat embeddings", profile, validate=False)
    assert any("'hat embeddings'" in n for n in missing.notes)


def _heavy_tailed(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = np.exp(rng.normal(0.0, 2.5, size=n))  # lognormal: the largest values are hundreds of stds out
    x3 = rng.standard_cauchy(size=n)
    y = 2.0 * x1 + np.log1p(x2) + np.tanh(x3) + 0.1 * rng.normal(size=n)
    return pa.table({"x1": x1, "x2": x2, "x3": x3, "y": y})


@pytest.mark.slow  # trains a small DCN-v2 for a few seconds
def test_a_cross_network_on_heavy_tailed_inputs_does_not_diverge(tmp_path, monkeypatch):
    import torch
    import yaml

    from specml import api
    from specml.train.inference import load_trained

    torch.set_num_threads(1)
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    ws = Workspace(tmp_path / "ws.duckdb")
    table = _heavy_tailed(600, seed=3)
    assert float(np.max(np.abs((table["x2"].to_numpy() - table["x2"].to_numpy().mean()))
                        / table["x2"].to_numpy().std())) > 15
    ws.con.register("heavy_df", table)
    ws.con.execute("CREATE TABLE heavy AS SELECT * FROM heavy_df")
    compiled = compile_spec("predict y with a DCN-v2", profile_table(ws, "heavy"), name="heavy")
    assert compiled.architecture == "dcn" and compiled.trainer["config"]["gradient_clip_norm"] == 1.0
    model_path, trainer_path = compiled.write(tmp_path / "specs")
    trainer = yaml.safe_load(trainer_path.read_text())
    trainer["config"].update(epochs=12, verbose=False)
    trainer["scheduler"]["params"]["T_max"] = 12
    trainer_path.write_text(yaml.safe_dump(trainer))
    result = api.train(model_path, trainer_path, table="heavy", name="heavy", workspace=ws, verbose=False,
                       progress=False)
    y = table["y"].to_numpy()
    rmse = result.best["val_rmse"]
    assert np.isfinite(rmse) and rmse < 0.3 * y.std(), (rmse, y.std())  # far better than the mean (standard: 0.57)
    # predict applies the same quantile scaling: unseen extreme inputs give finite predictions
    extreme = pa.table({"x1": [0.0, 1.0], "x2": [1e12, 0.0], "x3": [-1e9, 1e9], "y": [0.0, 0.0]})
    scores = np.asarray(api.scores(load_trained("heavy"), extreme))
    ws.close()
    assert np.isfinite(scores).all() and np.abs(scores).max() < 50


@pytest.mark.slow  # trains twice for a few seconds
def test_id_embeddings_are_used(tmp_path, monkeypatch):
    """Ratings that are a user bias plus a movie bias: the id embeddings learn them, the mean cannot."""
    import torch

    from specml import api

    torch.set_num_threads(1)
    monkeypatch.setenv("SPECML_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(1)
    n, users, movies = 3000, 40, 60
    u, m = rng.integers(0, users, n), rng.integers(0, movies, n)
    rating = rng.normal(size=users)[u] + rng.normal(size=movies)[m] + 0.1 * rng.normal(size=n)
    ws = Workspace(tmp_path / "ws.duckdb")
    ws.con.register("r_df", pa.table({"user_id": u, "movie_id": m, "noise": rng.normal(size=n), "rating": rating}))
    ws.con.execute("CREATE TABLE r AS SELECT * FROM r_df")
    compiled = compile_spec("predict rating using user and movie embeddings, train for 6 epochs",
                            profile_table(ws, "r"), name="ids")
    assert compiled.features["embedded_ids"] == ["user_id", "movie_id"]
    model_path, trainer_path = compiled.write(tmp_path / "specs")
    result = api.train(model_path, trainer_path, table="r", name="ids", workspace=ws, verbose=False, progress=False)
    ws.close()
    assert result.best["val_rmse"] < 0.5 * rating.std(), (result.best, rating.std())


def test_a_column_named_like_a_module_attribute_gets_an_input_name_that_builds(ws):
    # the nursery table has a text column "children": as an input name it would shadow nn.Module.children
    _table(ws, "kids", {"children": "['1', '2', '3', 'more'][1 + i % 4]", "train": "['a', 'b', 'c'][1 + i % 3]",
                        "x": "i * 0.1", "y": "(i * 7) % 2"}, rows=200)
    c = compile_spec("predict y", profile_table(ws, "kids"))
    assert {"children_col", "train_col"} <= set(c.model["inputs"]), c.model["inputs"]
    assert c.model["inputs"]["children_col"]["columns"] == ["children"]
    from specml.spec import load_spec

    assert load_spec(c.model, check=True).model is not None  # builds: no clash with a torch attribute
