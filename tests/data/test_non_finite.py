"""NaN, inf and values too large for float32 in a feature, or NaN in a class target, are refused with a count at
train, evaluate and predict time — never NaN predictions with an accuracy printed beside them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from specml import api
from specml.data.errors import DataError
from specml.data.workspace import Workspace

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
PIMA = ROOT / "src" / "specml" / "sample_data" / "pima_diabetes.csv"
EXAMPLE = ROOT / "examples" / "pima_mlp"
TRAINER = "optimizer: {type: torch.optim.Adam, lr: 0.01}\nconfig: {epochs: 2, batch_size: 64, seed: 3, tensorboard: false}\n"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    ws = Workspace(home / "workspace.duckdb")
    ws.load(PIMA, "pima")
    for name, value in (("nan", "'nan'::DOUBLE"), ("inf", "'inf'::DOUBLE"), ("huge", "1e308")):
        ws.sql(f"CREATE TABLE pima_{name} AS SELECT * REPLACE (CASE WHEN rowid % 50 = 0 THEN {value} ELSE "
               "bmi::DOUBLE END AS bmi) FROM pima")
    ws.sql("CREATE TABLE pima_nan_target AS SELECT * REPLACE (CASE WHEN rowid % 100 = 0 THEN 'nan'::DOUBLE ELSE "
           "outcome::DOUBLE END AS outcome) FROM pima")
    ws.close()
    (home / "trainer.yaml").write_text(TRAINER)
    api.train(EXAMPLE / "model.yaml", home / "trainer.yaml", table="pima", name="ok", home=home,
              workspace=home / "workspace.duckdb", verbose=False)
    return home


@pytest.mark.parametrize("table", ["pima_nan", "pima_inf", "pima_huge"])
def test_non_finite_features_are_refused_everywhere(home, table):
    ws = home / "workspace.duckdb"
    with pytest.raises(DataError, match=r"16 value\(s\) that are NaN, infinite or too large for float32 \('bmi': 16\)"):
        api.train(EXAMPLE / "model.yaml", home / "trainer.yaml", table=table, name=f"t_{table}", home=home,
                  workspace=ws, verbose=False)
    with pytest.raises(DataError, match=r"'bmi': 16"):
        api.evaluate("ok", table, home=home, workspace=ws)
    with pytest.raises(DataError, match=r"'bmi': 16"):
        api.predict("ok", table, home=home, workspace=ws)


def test_a_nan_class_target_is_refused_with_its_count(home):
    with pytest.raises(DataError, match=r"target column 'outcome' has 8 NaN value\(s\) of 768 rows"):
        api.evaluate("ok", "pima_nan_target", home=home, workspace=home / "workspace.duckdb")
